"""Plain SGD's options are checked by torch's rules without building a ``torch.optim.SGD``.

Building any ``torch.optim`` optimizer imports ``torch._dynamo`` (about a second of a CLI
run), so :meth:`OptimizerSpec.check` applies ``torch.optim.SGD``'s checks itself. The oracle
here is torch: on a grid of values, our check rejects exactly what ``torch.optim.SGD`` rejects,
with its message.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch

from sgdscape.core.optimizers import OPTIMIZERS
from sgdscape.errors import SgdscapeError

VALUES = (-1.0, 0.0, 0.5)


def _torch_says(lr: float, options: dict[str, object]) -> str | None:
    try:
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, **options)  # type: ignore[arg-type]
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.parametrize(
    ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    list(itertools.product(VALUES, VALUES, VALUES, VALUES, (False, True))),
)
def test_sgd_checks_agree_with_torch(lr, momentum, dampening, weight_decay, nesterov):
    options = {
        "momentum": momentum,
        "dampening": dampening,
        "weight_decay": weight_decay,
        "nesterov": nesterov,
    }
    expected = _torch_says(lr, options)
    if expected is None:
        assert OPTIMIZERS["sgd"].check(lr, options) == options
    else:
        with pytest.raises(SgdscapeError) as caught:
            OPTIMIZERS["sgd"].check(lr, options)
        assert str(caught.value) == f"bad options for optimizer 'sgd': {expected}."


def test_other_optimizers_are_still_checked_by_building_them():
    with pytest.raises(SgdscapeError, match=r"bad options for optimizer 'adam': Invalid beta"):
        OPTIMIZERS["adam"].check(0.1, {"betas": (1.5, 0.9)})


def test_the_default_run_does_not_import_torch_dynamo():
    code = (
        "import sys, sgdscape\n"
        "result = sgdscape.run(sgdscape.RunConfig(epochs=1))\n"
        "assert result.n_steps == 100\n"
        "print('torch._dynamo' in sys.modules)\n"
        "sgdscape.run(sgdscape.RunConfig(epochs=1, optimizer='adam'))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    # plain SGD never builds a torch.optim optimizer; Adam does (the control)
    assert done.stdout.split() == ["False", "True"]
