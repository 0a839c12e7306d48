"""Curvature along a recorded run on Ray: one task per step, the same result as the local loop.

The Ray test needs ``ray`` (``sgdscape[ray]``) and a local Ray session (``ray.init(num_cpus=2)``),
skipped cleanly when either is missing; the backend check needs neither.
"""

import numpy as np
import pytest
import torch
from torch import nn

import sgdscape
from sgdscape.networks.curvature import training_curvature


def _recording():
    generator = torch.Generator().manual_seed(3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 10), nn.Tanh(), nn.Linear(10, 3))
    x = torch.randn(80, 4, generator=generator)
    y = torch.randint(0, 3, (80,), generator=generator)
    return sgdscape.record_training(
        model, nn.CrossEntropyLoss(), (x, y), lr=0.8, batch_size=16, epochs=2, max_steps=8
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ray_backend_equals_the_local_loop_step_by_step(local_ray):
    from sgdscape.core.distributed import RayBackend

    recording = _recording()
    steps = [7, 0, 3]  # given out of order: rows follow the sorted selection, 0, 3, 7
    options = {"k": 2, "trace": True, "density": True, "n_probes": 20, "density_steps": 12}
    options |= {"density_bins": 50, "seed": 5}
    local = training_curvature(recording, steps, **options)
    remote = training_curvature(recording, steps, backend=RayBackend(), **options)
    by_name = training_curvature(recording, steps, backend="ray", **options)
    np.testing.assert_array_equal(remote.steps, [0, 3, 7])
    np.testing.assert_array_equal(local.steps, [0, 3, 7])
    for result in (remote, by_name):
        for name in ("eigenvalues", "batch_eigenvalues", "trace", "trace_error"):
            np.testing.assert_allclose(getattr(result, name), getattr(local, name), rtol=1e-6)
        np.testing.assert_allclose(result.density_grid, local.density_grid, rtol=1e-6)
        np.testing.assert_allclose(result.density, local.density, rtol=1e-5, atol=1e-8)
        assert result.lr == local.lr
    # each row is its own step's curvature (not a shuffled or repeated one): a one-step local run
    for row, step in enumerate(local.steps):
        single = training_curvature(recording, [int(step)], **options)
        np.testing.assert_allclose(remote.eigenvalues[row], single.eigenvalues[0], rtol=1e-6)
        np.testing.assert_allclose(remote.trace[row], single.trace[0], rtol=1e-6)
    assert len({tuple(row) for row in remote.eigenvalues}) == len(steps)


def test_a_bad_backend_names_the_allowed_ones():
    recording = _recording()
    with pytest.raises(sgdscape.SgdscapeError, match="backend must be one of local, ray") as error:
        training_curvature(recording, [0], backend="dask")
    assert "local, ray" in str(error.value) and "'dask'" in str(error.value)
