"""Fused kernels for the hot loops, with the plain torch code as fallback and oracle.

Two kinds of work dominate: evaluating a loss on a grid of parameters (the landscape) and
stepping many initialisations at once (trajectories). For the built-in models and losses
the per-chunk landscape expression is compiled with ``torch.compile`` (inductor: C++/OpenMP
on the CPU, Triton on CUDA) into one kernel that never materialises the ``(points, samples)``
intermediate, and the materialised path writes straight into a preallocated output.

Compilation costs seconds, so it is used only where it pays: ``engine="auto"`` fuses when
the work is large (at least :data:`FUSE_MIN_EVALUATIONS` loss evaluations), never for the
seed's 100 x 100x100 interactive run. Compiled kernels are cached on disk by inductor
(its FX graph cache, under ``TORCHINDUCTOR_CACHE_DIR``; sgdscape points it at
``~/.cache/sgdscape/torchinductor`` unless it is already set), so a later process skips
code generation. When compilation is unavailable or fails, the plain path runs and one
line is logged.

Trajectories get closed-form gradients (:func:`closed_form_gradient`) for the built-in
models and losses, written in the operation order of torch's autograd so that the result
matches it bit for bit on the CPU; they live in :mod:`sgdscape.core.closed_form` and are
importable from here too.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable

import torch

# The closed-form gradients live in sgdscape.core.closed_form and are re-exported here.
from sgdscape.core.closed_form import LOSS_GRADS as LOSS_GRADS
from sgdscape.core.closed_form import MODEL_VJPS as MODEL_VJPS
from sgdscape.core.closed_form import LossGrad as LossGrad
from sgdscape.core.closed_form import ModelVjp as ModelVjp
from sgdscape.core.closed_form import closed_form_available as closed_form_available
from sgdscape.core.closed_form import closed_form_gradient as closed_form_gradient
from sgdscape.core.closed_form import is_builtin as is_builtin
from sgdscape.core.closed_form import masked_gradient as masked_gradient
from sgdscape.core.losses import Loss
from sgdscape.core.models import Model
from sgdscape.errors import SgdscapeError, check_choice

log = logging.getLogger("sgdscape")

ENGINES = {
    "auto": "the path expected to finish first for this size, start-up cost included",
    "native": "landscapes: the precompiled C kernels (sgdscape.core.native) where they apply, "
    "else plain; trajectories and chains: as auto",
    "fused": "always torch.compile'd kernels (falls back to plain if compiling fails)",
    "plain": "plain broadcast torch: the reference implementation",
}

#: ``engine="auto"`` fuses landscapes with at least this many loss evaluations.
FUSE_MIN_EVALUATIONS = int(float(os.environ.get("SGDSCAPE_FUSE_MIN_EVALUATIONS", "2e9")))

#: samples per call of the fused risk kernel (see :func:`fused_risk`).
RISK_SAMPLE_BLOCK = 4096

#: how many times each fused kernel ran (``"risk"``, ``"fill"``, ``"gradient"``): lets
#: tests and benchmarks tell a fused run from a silent fallback.
used: Counter[str] = Counter()

_compiled: dict[tuple[str, str, str], Callable[..., object]] = {}
_failed: set[tuple[str, str, str]] = set()
_warm: set[tuple[str, str, str]] = set()  # landscape kernels that have run (compiled)


def check_engine(engine: str) -> str:
    """Validate an engine name (``auto``, ``fused``, ``plain``)."""
    if not isinstance(engine, str):
        raise SgdscapeError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.")
    return check_choice("engine", engine, ENGINES)


def wants_fused(engine: str, model: Model, loss: Loss, evaluations: float) -> bool:
    """Whether to try the fused path for this much work."""
    engine = check_engine(engine)
    if engine in ("plain", "native"):
        return False
    if engine == "fused":
        return True
    return is_builtin(model, loss) and evaluations >= FUSE_MIN_EVALUATIONS


def is_warm(kind: str, model: Model, loss: Loss, device: torch.device) -> bool:
    """Whether the ``kind`` kernel for ``model`` and ``loss`` is compiled in this process
    (calling it costs no start-up)."""
    return _key_of(kind, model, loss, device) in _warm


def _set_cache_dir() -> None:
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "sgdscape", "torchinductor")


def _risk_expression(model: Model, loss: Loss) -> Callable[..., torch.Tensor]:
    def risk(wt: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # wt: (p, P) parameters as columns; result (P,): summed loss over the n samples
        return loss.function(model.function(wt.T, x), y).sum(dim=-1)

    return risk


def _fill_expression(model: Model, loss: Loss) -> Callable[..., None]:
    def fill(out: torch.Tensor, wt: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        # out: (n, P) written in place; samples on a leading axis so rows are contiguous
        values = loss.function(model.function(wt.T[None], x[:, None, None]), y[:, None, None])
        out.copy_(values[..., 0])

    return fill


#: built-in models whose prediction is one parameter times a function of the others,
#: ``f(w, x) = w[s] * h(w without s, x)``: on a grid whose first axis is ``w[s]`` the
#: hidden values ``h`` are computed once per grid row, not once per grid point
#: (:func:`scaled_risk`, :func:`scaled_fill`). Tests check the factorisation per model.
SCALE_PARAMETER: dict[str, int] = {
    "relu-unit": 0,
    "linear-product": 0,
    "tanh-unit": 0,
    "sigmoid-unit": 0,
    "leaky-relu-unit": 0,
    "relu-unit-bias": 0,
}


def _scaled_risk_expression(model: Model, loss: Loss) -> Callable[..., torch.Tensor]:
    def risk(scale: torch.Tensor, hidden: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # scale: (G1,), hidden: (G2, n) -> (G2, G1) summed loss over the n samples
        return loss.function(scale[None, :, None] * hidden[:, None, :], y).sum(dim=-1)

    return risk


def _scaled_fill_expression(model: Model, loss: Loss) -> Callable[..., None]:
    def fill(
        out: torch.Tensor, scale: torch.Tensor, hidden_t: torch.Tensor, y: torch.Tensor
    ) -> None:
        # out: (n, G2, G1) written in place, row by row; hidden_t: (n, G2), sample-major so
        # that each output row reads one hidden value and streams its G1 losses out
        out.copy_(loss.function(scale[None, None, :] * hidden_t[:, :, None], y[:, None, None]))

    return fill


_EXPRESSIONS: dict[str, Callable[[Model, Loss], Callable[..., object]]] = {
    "risk": _risk_expression,
    "fill": _fill_expression,
    "scaled-risk": _scaled_risk_expression,
    "scaled-fill": _scaled_fill_expression,
}


def _kernel(
    kind: str, model: Model, loss: Loss, device: torch.device
) -> Callable[..., object] | None:
    key = _key_of(kind, model, loss, device)
    if key in _failed:
        return None
    if key not in _compiled:
        _set_cache_dir()
        build = _EXPRESSIONS[kind]
        try:
            _compiled[key] = torch.compile(build(model, loss), dynamic=True, fullgraph=True)
        except Exception as error:  # torch.compile unavailable (platform, no compiler, ...)
            _give_up(key, error)
            return None
    return _compiled[key]


#: below this many loss evaluations a CPU kernel runs on one thread: an OpenMP region over
#: a few microseconds of work costs more than it saves, and much more on a busy machine
#: (a descheduled worker stalls the whole region).
SINGLE_THREAD_BELOW = 2**22


def _call(kernel: Callable[..., object], *args: torch.Tensor, work: float = 0.0) -> object:
    # compiling (at the first call) makes torch's internals emit deprecation warnings that
    # are no concern of the caller's; the kernels themselves are plain arithmetic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threads = torch.get_num_threads()
        if args[0].device.type != "cpu" or work >= SINGLE_THREAD_BELOW or threads == 1:
            return kernel(*args)
        torch.set_num_threads(1)
        try:
            return kernel(*args)
        finally:
            torch.set_num_threads(threads)


_noticed: set[tuple[str, str]] = set()


def _give_up(key: tuple[str, str, str], error: BaseException) -> None:
    _failed.add(key)
    _warm.discard(key)
    _compiled.pop(key, None)
    if key[1:] in _noticed:  # one line per model, loss and device is enough
        return
    _noticed.add(key[1:])
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    log.warning(
        "fused %s kernel for %s unavailable (%s: %s); using the plain torch path.",
        key[0],
        key[1].split(":")[0],
        type(error).__name__,
        reason[:160],
    )


_UNAVAILABLE = object()  # what _call_landscape_kernel returns when no fused kernel ran


def _call_landscape_kernel(
    kind: str,
    counter: str,
    model: Model,
    loss: Loss,
    device: torch.device,
    *args: torch.Tensor,
    work: float,
) -> object:
    """Run landscape kernel ``kind`` on ``args``: its result, counted in :data:`used` under
    ``counter`` and remembered as warm; :data:`_UNAVAILABLE` when there is none or it fails
    (it compiles at the first call; a failure is logged once and not retried)."""
    kernel = _kernel(kind, model, loss, device)
    if kernel is None:
        return _UNAVAILABLE
    key = _key_of(kind, model, loss, device)
    try:
        result = _call(kernel, *args, work=work)
    except Exception as error:
        _give_up(key, error)
        return _UNAVAILABLE
    used[counter] += 1
    _warm.add(key)
    return result


def fused_risk(
    model: Model, loss: Loss, wt: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor | None:
    """Summed loss over samples at each point, ``(P,)``, or ``None`` if no fused kernel.

    Keep ``n`` at most :data:`RISK_SAMPLE_BLOCK`: the compiled CPU reduction slows down
    about fivefold once ``x`` and ``y`` outgrow the L1 cache (measured: 1.6e10/s at
    n = 4000, 3.4e9/s at n = 6000), so callers sum blocks of samples.

    Args:
        wt: parameters as columns, ``(p, P)`` (contiguous rows: one per parameter).
        x, y: samples, ``(n,)``.
    """
    work = wt.shape[1] * x.shape[0]
    result = _call_landscape_kernel("risk", "risk", model, loss, wt.device, wt, x, y, work=work)
    return None if result is _UNAVAILABLE else result  # type: ignore[return-value]


def fused_fill(
    model: Model,
    loss: Loss,
    out: torch.Tensor,
    wt: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> bool:
    """Write every per-sample loss into ``out: (n, P)`` in place; ``False`` if no fused kernel."""
    result = _call_landscape_kernel(
        "fill", "fill", model, loss, wt.device, out, wt, x, y, work=out.numel()
    )
    return result is not _UNAVAILABLE


def scaled_risk(
    model: Model, loss: Loss, scale: torch.Tensor, hidden: torch.Tensor, y: torch.Tensor
) -> torch.Tensor | None:
    """Summed loss over samples ``(G2, G1)`` of the predictions ``scale[g1] * hidden[g2, i]``,
    or ``None`` if no fused kernel (see :data:`SCALE_PARAMETER`).

    Every loss is still evaluated (``n * G2 * G1`` of them); only the model's hidden
    values ``hidden: (G2, n)`` are shared along a grid row. Keep ``n`` at most
    :data:`RISK_SAMPLE_BLOCK`.
    """
    work = scale.shape[0] * hidden.numel()
    result = _call_landscape_kernel(
        "scaled-risk", "risk", model, loss, scale.device, scale, hidden, y, work=work
    )
    return None if result is _UNAVAILABLE else result  # type: ignore[return-value]


def scaled_fill(
    model: Model,
    loss: Loss,
    out: torch.Tensor,
    scale: torch.Tensor,
    hidden: torch.Tensor,
    y: torch.Tensor,
) -> bool:
    """Write ``loss(scale[g1] * hidden[g2, i], y[i])`` into ``out: (n, G2, G1)`` in place;
    ``False`` if no fused kernel. ``hidden: (G2, n)`` as for :func:`scaled_risk`."""
    columns = hidden.T.contiguous()
    result = _call_landscape_kernel(
        "scaled-fill", "fill", model, loss, scale.device, out, scale, columns, y, work=out.numel()
    )
    return result is not _UNAVAILABLE


def _key_of(kind: str, model: Model, loss: Loss, device: torch.device) -> tuple[str, str, str]:
    return (kind, f"{model.name}:{id(model.function)}:{loss.name}:{id(loss.function)}", device.type)


def reset() -> None:
    """Forget compiled kernels and failures (tests, or after changing torch settings)."""
    _compiled.clear()
    _failed.clear()
    _warm.clear()
    _noticed.clear()
    used.clear()


def _full_gradient_expression(model: Model, loss: Loss) -> Callable[..., object]:
    def full(
        w: torch.Tensor, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return closed_form_gradient(model, loss, w, x, y)

    return full


def fused_gradient(
    model: Model, loss: Loss, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`closed_form_gradient` compiled into fused reductions over the samples.

    Equal to the eager version within float rounding (the sums run in another order).
    Falls back to the eager closed form, with one logged line, if compiling fails.
    """
    key = _key_of("gradient", model, loss, w.device)
    if key not in _failed:
        if key not in _compiled:
            _set_cache_dir()
            try:
                _compiled[key] = torch.compile(
                    _full_gradient_expression(model, loss), dynamic=True, fullgraph=True
                )
            except Exception as error:
                _give_up(key, error)
        kernel = _compiled.get(key)
        if kernel is not None:
            try:
                result = _call(kernel, w.detach(), x, y, work=w.shape[0] * x.shape[0])
                used["gradient"] += 1
                return result  # type: ignore[return-value]
            except Exception as error:
                _give_up(key, error)
    return closed_form_gradient(model, loss, w, x, y)


# ------------------------------------------------------------ fused SGD steps
#
# A trajectory is sequential, so a batched run of K initialisations costs one round of
# eager operations per step whatever K is: at 10,000 inits x 100 steps that dispatch
# overhead, not arithmetic, is the time. ``fused_sgd_steps`` unrolls a block of steps
# (closed-form minibatch gradient and the SGD update) into one compiled kernel, so the
# whole block is one pass over the K iterates.

#: steps unrolled into one compiled call; longer blocks compile more slowly.
SGD_BLOCK_STEPS = 20


class ParameterColumns:
    """Parameters held as ``p`` separate ``(K,)`` columns, indexed like a ``(K, p)`` tensor.

    The built-in models and gradients read parameter ``i`` as ``w[..., i, None]``; given
    columns, the compiler sees ``p`` contiguous vectors instead of a strided ``(K, p)``
    tensor rebuilt at every step, and fuses a whole block of steps into a few vectorised
    loops (measured about 4x faster than the ``(K, p)`` layout).
    """

    def __init__(self, columns: list[torch.Tensor]) -> None:
        self.columns = columns

    def __getitem__(self, key: tuple[object, int, None]) -> torch.Tensor:
        return self.columns[key[1]][..., None]


def _sgd_block_expression(
    model: Model,
    loss: Loss,
    steps: int,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
) -> Callable[..., tuple[torch.Tensor, ...]]:
    def block(
        wt: torch.Tensor,
        buffer: torch.Tensor,
        xb: torch.Tensor,
        yb: torch.Tensor,
        mask: torch.Tensor,
        lrs: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        # wt, buffer: (p, K); xb, yb, mask: (steps, B); lrs: (steps,)
        columns, buffers = list(wt.unbind(0)), list(buffer.unbind(0))
        iterates, grads, losses = [], [], []
        for s in range(steps):
            like_w = ParameterColumns(columns)  # read as w[..., i, None], like a (K, p) tensor
            mean, gradient = masked_gradient(model, loss, like_w, xb[s], yb[s], mask[s])  # type: ignore[arg-type]
            iterates.extend(columns)
            grads.extend(gradient)
            losses.append(mean)

            updated, new_buffers = [], []
            for w, g, b in zip(columns, gradient, buffers, strict=True):
                direction = g + weight_decay * w if weight_decay != 0 else g
                if momentum != 0:
                    b = b * momentum + (1 - dampening) * direction
                    direction = direction + momentum * b if nesterov else b
                new_buffers.append(b)
                updated.append(w - lrs[s] * direction)
            columns, buffers = updated, new_buffers
        p = len(columns)
        return (
            torch.stack(iterates).reshape(steps, p, -1),
            torch.stack(grads).reshape(steps, p, -1),
            torch.stack(losses),
            torch.stack(columns),
            torch.stack(buffers),
        )

    return block


def fused_sgd_steps(
    model: Model,
    loss: Loss,
    update: object,
    wt: torch.Tensor,
    buffer: torch.Tensor,
    xb: torch.Tensor,
    yb: torch.Tensor,
    mask: torch.Tensor,
    lrs: torch.Tensor,
) -> tuple[torch.Tensor, ...] | None:
    """``S = xb.shape[0]`` SGD steps from ``wt: (p, K)`` in one compiled call.

    Parameters are laid out ``(p, K)`` (one contiguous row per parameter) so the compiled
    loops vectorise over the ``K`` initialisations.

    Args:
        update: a :class:`sgdscape.core.optimizers.SgdUpdate` (its momentum, dampening, weight
            decay and Nesterov flag are compiled in).
        buffer: ``(p, K)`` momentum buffer (ignored without momentum).
        xb, yb: ``(S, B)`` the minibatch of every step, padded to ``B`` columns.
        mask: ``(S, B)`` 1.0 for a sample of the minibatch, 0.0 for padding.
        lrs: ``(S,)`` learning rate of every step.

    Returns:
        ``(iterates (S, p, K), grads (S, p, K), losses (S, K), w_after (p, K),
        buffer_after (p, K))``, equal to ``S`` eager steps within float rounding; ``None``
        if no compiled kernel is available (one logged line).
    """
    hyper = (
        float(update.momentum),  # type: ignore[attr-defined]
        float(update.dampening),  # type: ignore[attr-defined]
        float(update.weight_decay),  # type: ignore[attr-defined]
        bool(update.nesterov),  # type: ignore[attr-defined]
    )
    steps = int(xb.shape[0])
    base = _key_of("sgd-steps", model, loss, wt.device)
    key = (base[0], f"{base[1]}:{steps}:{hyper}", base[2])
    if key in _failed:
        return None
    if key not in _compiled:
        _set_cache_dir()
        try:
            # static shapes but for K (marked dynamic per call): a specialised minibatch
            # width B lets the compiler unroll the per-step reductions
            _compiled[key] = torch.compile(
                _sgd_block_expression(model, loss, steps, *hyper), dynamic=False, fullgraph=True
            )
        except Exception as error:
            _give_up(key, error)
            return None
    try:
        if wt.shape[1] > 1:  # sizes 0 and 1 are always specialised
            torch._dynamo.mark_dynamic(wt, 1)
            torch._dynamo.mark_dynamic(buffer, 1)
        result = _call(_compiled[key], wt, buffer, xb, yb, mask, lrs, work=wt.numel() * xb.numel())
        used["sgd-steps"] += 1
        return result  # type: ignore[return-value]
    except Exception as error:
        _give_up(key, error)
        return None
