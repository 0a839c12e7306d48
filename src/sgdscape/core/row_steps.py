"""The one-sample SGD engine: the seed's setting, on parameter rows, with no allocation.

With one sample per step (``batch_size=1``, the seed's) a batched step of ``K`` runs is
a dozen elementwise operations on ``(K,)`` vectors; at 10,000 runs each takes a few
microseconds, so the per-step engine's time goes to dispatch, temporaries and the
transposed copies between its ``(K, p)`` iterate and the time-major ``(T, p, K)`` records.
Here the iterate lives as ``(p, K)`` rows, every operation writes into a preallocated
buffer or straight into the records (``out=``), and the minibatch's ``x`` and ``y`` are
Python numbers.

Each step performs the same IEEE float operations as the closed-form gradient
(:func:`sgdscape.core.kernels.closed_form_gradient`) and :class:`SgdUpdate`, on the same
operands, so the records equal the per-step engine's bit for bit (tests compare the bits,
signs of zero included): a one-sample mean or sum is ``0 + v`` there, so it is ``0 + v``
here (``addcmul`` / ``add`` onto a zero vector).

Only models listed in :data:`ROW_STEPS` with the ``mse`` loss take this engine.

For the seed's own setting (the relu unit, plain SGD without momentum or weight decay, on
the CPU) the same steps also exist as one precompiled C loop
(:func:`sgdscape.core.native.relu_sgd_steps`: every step of a block of inits in one call,
split over threads, writing iterates, gradients and losses straight into the records).
It does the same float32 operations in the same order; where torch's kernels round a
multiply-add once (its AVX2 and AVX-512 builds of ``addcmul`` and ``add(alpha=)``) the C
loop uses ``fmaf``, otherwise two roundings, and which of the two this process's torch
does is probed once on inputs that tell them apart (:func:`mac_variant`): a torch that
matches neither keeps the torch loop. So both give the same records, bit for bit, and
``engine="auto"`` picks by time alone (:func:`native_row_steps`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.core import native
from sgdscape.core.losses import LOSSES, Loss
from sgdscape.core.models import MODELS, Model
from sgdscape.core.optimizers import SgdUpdate


@dataclass(frozen=True)
class Scratch:
    """Preallocated ``(K,)`` work vectors of one run of the engine."""

    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    zeros: torch.Tensor
    flags: torch.Tensor

    @classmethod
    def like(cls, row: torch.Tensor) -> Scratch:
        """Buffers shaped and placed like ``row: (K,)``."""
        return cls(
            torch.empty_like(row),
            torch.empty_like(row),
            torch.empty_like(row),
            torch.zeros_like(row),
            torch.empty_like(row, dtype=torch.bool),
        )


#: ``(w (p, K), x, y, grads out (p, K), loss out (K,), scratch) -> None``: one step's
#: minibatch loss and gradient at ``w`` for the sample ``(x, y)``, written into the outs
RowStep = Callable[[torch.Tensor, float, float, torch.Tensor, torch.Tensor, Scratch], None]


def _relu_unit_mse(
    w: torch.Tensor, x: float, y: float, grads: torch.Tensor, loss: torch.Tensor, s: Scratch
) -> None:
    """``w1 * relu(w2 * x)`` and squared error, in the closed form's operation order."""
    w1, w2 = w[0], w[1]
    r, g, g_z = s.a, s.b, s.c
    torch.mul(w2, x, out=r).relu_()  # r = relu(w2 * x)
    torch.mul(w1, r, out=g).sub_(y)  # g = prediction - y
    torch.mul(g, g, out=loss)  # (prediction - y) ** 2, mean of one
    g.mul_(2.0)  # d loss / d prediction (the mean's factor is 1)
    torch.addcmul(s.zeros, g, r, out=grads[0])  # sum of one: 0 + g * r
    torch.mul(g, w1, out=g_z).masked_fill_(torch.le(r, 0.0, out=s.flags), 0.0)
    torch.add(s.zeros, g_z, alpha=x, out=grads[1])  # 0 + g_z * x


#: the models this engine knows, by registry name (with the ``mse`` loss)
ROW_STEPS: dict[str, RowStep] = {"relu-unit": _relu_unit_mse}


def row_steps_available(model: Model, loss: Loss, sgd: SgdUpdate | None, batch_size: int) -> bool:
    """Whether :func:`take_row_steps` can run this: plain SGD, one sample per step, and a
    built-in model of :data:`ROW_STEPS` with the built-in ``mse`` loss."""
    builtin = MODELS.get(model.name)
    return (
        sgd is not None
        and batch_size == 1
        and model.name in ROW_STEPS
        and builtin is not None
        and builtin.function is model.function
        and loss.name == "mse"
        and LOSSES["mse"].function is loss.function
    )


#: init-steps per second of the torch row loop and of the native kernel (start values,
#: measured on the loaded 2-core machine; raised to the best this process reaches), and the
#: torch loop's fixed cost per step (a dozen op dispatches)
ROW_RATES: dict[str, float] = {"torch": 1e8, "native": 4e8}
TORCH_STEP_SECONDS = 3e-5

#: the probed variant of each loaded library (tests load several)
_variants: dict[int, bool | None] = {}


def native_rows_available(model: Model, sgd: SgdUpdate, device: torch.device) -> bool:
    """Whether the native kernel knows this run: the relu unit (with the ``mse`` loss, as
    :func:`row_steps_available` checks), plain SGD without momentum or weight decay, CPU."""
    return (
        device.type == "cpu"
        and model.name == "relu-unit"
        and sgd.momentum == 0
        and sgd.weight_decay == 0
        and not sgd.nesterov
    )


def native_row_steps(
    model: Model, sgd: SgdUpdate, n_inits: int, n_steps: int, device: torch.device
) -> bool:
    """Whether ``engine="auto"`` runs the steps in the native kernel: it knows the run and
    its expected time, start-up included (:func:`sgdscape.core.native.startup_charge`: 0
    once loaded, a load when on disk, a share of the build otherwise), is below the torch
    loop's at the rates of :data:`ROW_RATES`."""
    if not native_rows_available(model, sgd, device):
        return False
    work = float(n_inits) * n_steps
    native_seconds = native.startup_charge() + work / ROW_RATES["native"]
    torch_seconds = n_steps * TORCH_STEP_SECONDS + work / ROW_RATES["torch"]
    return native_seconds < torch_seconds


def _learn(kernel: str, work: float, seconds: float) -> None:
    """Keep the best rate a kernel reached on calls of at least 1e5 init-steps."""
    if work >= 1e5 and seconds > 0:
        ROW_RATES[kernel] = max(ROW_RATES[kernel], work / seconds)


def mac_variant() -> bool | None:
    """Which native loop equals this process's torch row steps: ``True`` for ``fmaf``
    (``a * b + c`` rounded once), ``False`` for two roundings, ``None`` when the library is
    unavailable or neither matches. Probed once per process on 50 inits (a vector body and
    a scalar tail) holding products that underflow to a signed zero (``addcmul`` and
    ``add(alpha=)`` tell the two apart there) and generic updates (``add_(alpha=)``)."""
    lib = native.library()
    if lib is None:
        return None
    if id(lib) in _variants:
        return _variants[id(lib)]
    generator = torch.Generator().manual_seed(0)
    w = torch.empty(50, 2).uniform_(-3, 3, generator=generator)
    w[:4] = torch.tensor([[1e-30, 1.0], [1.0, 1e-25], [-1e-30, 1.0], [1.0, 1e-25]])
    w[-2:] = w[:2]
    x, y, lrs = [1e-20, 0.7, 1e-20], [0.2, -0.4, 0.2], [0.05, 0.3, 1e-3]
    want = _torch_probe(w, x, y, lrs)
    found: bool | None = None
    for fused in (True, False):
        got = _native_probe(w, x, y, lrs, fused)
        if all(
            np.array_equal(a.view(np.int32), b.view(np.int32))
            for a, b in zip(want, got, strict=True)
        ):
            found = fused
            break
    _variants[id(lib)] = found
    return found


def _torch_probe(
    w: torch.Tensor, x: list[float], y: list[float], lrs: list[float]
) -> list[np.ndarray]:
    n_steps, n_inits = len(lrs), w.shape[0]
    iterates, grads = torch.empty(n_steps, 2, n_inits), torch.empty(n_steps, 2, n_inits)
    loss, final = torch.empty(n_steps, n_inits), w.clone()
    _torch_steps(ROW_STEPS["relu-unit"], SgdUpdate(), final, x, y, lrs, iterates, grads, loss, 64)
    return [iterates.numpy(), grads.numpy(), loss.numpy(), final.numpy()]


def _native_probe(
    w: torch.Tensor, x: list[float], y: list[float], lrs: list[float], fused: bool
) -> list[np.ndarray]:
    n_steps, n_inits = len(lrs), w.shape[0]
    iterates, grads = (
        np.empty((n_steps, 2, n_inits), np.float32),
        np.empty((n_steps, 2, n_inits), np.float32),
    )
    loss, rows = np.empty((n_steps, n_inits), np.float32), np.ascontiguousarray(w.numpy().T)
    native.relu_sgd_steps(
        rows, iterates, grads, loss, np.asarray(x, np.float32), np.asarray(y, np.float32),
        _alphas(lrs), (0, n_steps), fused,
    )  # fmt: skip
    return [iterates, grads, loss, np.ascontiguousarray(rows.T)]


def _alphas(lrs: list[float]) -> np.ndarray:
    """``-lr`` per step rounded to float32, as torch rounds ``add_``'s ``alpha``."""
    return (-np.asarray(lrs, dtype=np.float64)).astype(np.float32)


def take_row_steps(
    model: Model,
    sgd: SgdUpdate,
    w: torch.Tensor,
    x: list[float],
    y: list[float],
    lrs: list[float],
    iterates: torch.Tensor,
    grads: torch.Tensor,
    batch_loss: torch.Tensor,
    check_every: int,
    *,
    kernel: str = "auto",
    threads: int = 1,
) -> int:
    """Run SGD from ``w: (K, p)`` over the samples ``x[t], y[t]``; return the steps run.

    Records step ``t`` into ``iterates[t]``, ``grads[t]`` (``(p, K)`` each) and
    ``batch_loss[t]`` (``(K,)``), and leaves the iterate after the last step in ``w``.
    Every ``check_every`` steps, a batch whose every run has diverged stops. ``kernel``:
    ``"auto"`` (:func:`native_row_steps`), ``"native"`` (the C loop where it knows the run
    and matches torch, else the torch loop) or ``"torch"``; ``threads`` for the C loop.
    """
    n_inits, n_steps = w.shape[0], len(lrs)
    if kernel == "auto":
        kernel = "native" if native_row_steps(model, sgd, n_inits, n_steps, w.device) else "torch"
    began = time.perf_counter()
    if kernel == "native" and native_rows_available(model, sgd, w.device):
        done = _native_steps(w, x, y, lrs, iterates, grads, batch_loss, check_every, threads)
        if done is not None:
            _learn("native", float(n_inits) * done, time.perf_counter() - began)
            return done
    step = ROW_STEPS[model.name]
    done = _torch_steps(step, sgd, w, x, y, lrs, iterates, grads, batch_loss, check_every)
    seconds = time.perf_counter() - began
    _learn("torch", float(n_inits) * done, seconds - done * TORCH_STEP_SECONDS)
    if native_rows_available(model, sgd, w.device):
        native.torch_seconds_spent += seconds
    return done


def _native_steps(
    w: torch.Tensor,
    x: list[float],
    y: list[float],
    lrs: list[float],
    iterates: torch.Tensor,
    grads: torch.Tensor,
    batch_loss: torch.Tensor,
    check_every: int,
    threads: int,
) -> int | None:
    """:func:`take_row_steps` in the C loop; ``None`` (nothing written) when it cannot run."""
    records = (iterates, grads, batch_loss)
    if not all(r.is_contiguous() and r.dtype == torch.float32 for r in records):
        return None
    if w.dtype != torch.float32:
        return None
    fused = mac_variant()
    if fused is None:
        return None
    n_steps = len(lrs)
    with torch.no_grad():
        rows = w.detach().T.contiguous().numpy()  # (p, K)
        xs, ys, alphas = np.asarray(x, np.float32), np.asarray(y, np.float32), _alphas(lrs)
        its, grs, losses = (r.numpy() for r in records)
        t = 0
        while t < n_steps:
            if t and not bool(np.isfinite(rows).any()):
                break  # every run has diverged: stop, as the torch loop does
            stop = min(n_steps, t + check_every)
            native.relu_sgd_steps(rows, its, grs, losses, xs, ys, alphas, (t, stop), fused, threads)
            t = stop
        w.copy_(torch.from_numpy(rows).T)
    return t


def _torch_steps(
    step: RowStep,
    sgd: SgdUpdate,
    w: torch.Tensor,
    x: list[float],
    y: list[float],
    lrs: list[float],
    iterates: torch.Tensor,
    grads: torch.Tensor,
    batch_loss: torch.Tensor,
    check_every: int,
) -> int:
    """:func:`take_row_steps` in torch operations."""
    with torch.no_grad():
        rows = w.detach().T.contiguous()  # (p, K)
        scratch = Scratch.like(rows[0])
        t = 0
        for t in range(len(lrs)):
            if t and t % check_every == 0 and not bool(torch.isfinite(rows).any()):
                break
            iterates[t].copy_(rows)
            step(rows, x[t], y[t], grads[t], batch_loss[t], scratch)
            sgd.step(rows, grads[t], lrs[t])
        else:
            t = len(lrs)
        w.copy_(rows.T)
    return t
