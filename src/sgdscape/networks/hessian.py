"""Hessian-vector products of a network's loss, never building the Hessian.

The loss is ``L(theta) = loss_fn(model(x; theta), y)`` (a mean over the samples) as a function of
the flattened parameters ``theta: (p,)`` in ``named_parameters`` order (:mod:`sgdscape.networks.parameters`).
A Hessian-vector product is the pullback of the gradient, ``torch.func.vjp(torch.func.grad(L),
theta)`` (reverse-over-reverse; ``H`` is symmetric), built once per product call and vmapped over
several vectors at once (Hutchinson probes, stochastic Lanczos runs). Forward-over-reverse
(``jvp`` of ``grad``) gives the same numbers but scripts torch's JVP decompositions on first use
(seconds, and torch's own ``torch.jit.script`` DeprecationWarning). For an ``nn.Sequential`` MLP
the products come from Pearlmutter's R-operator instead (:mod:`sgdscape.networks.r_operator`).
The spectra built on these products are in :mod:`sgdscape.networks.curvature`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from sgdscape.core.devices import resolve_device
from sgdscape.errors import check_int
from sgdscape.networks.losses import LossFn
from sgdscape.networks.parameters import as_flat, as_tensors, parameter_layout, unflatten
from sgdscape.networks.r_operator import SequentialHessian


class HessianOperator:
    """``v -> H v`` for the loss of ``model`` on ``(x, y)`` at flat parameters ``theta``.

    Args:
        model: the architecture (never modified; evaluated with ``functional_call``).
        loss_fn: the mean loss ``loss_fn(output, target) -> ()``.
        data: ``(x, y)`` or a DataLoader.
        theta: the parameters (flat ``(p,)``, a state dict or a module; default: the model's own).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``; dtype: the computation's precision
            (default float32).
        chunk_size: samples per HVP pass (``None``: all at once). With chunks the product is the
            sample-weighted mean of the chunks' products, exact for a mean loss.
        use_algebra: for an ``nn.Sequential`` MLP with a cross-entropy or squared loss, compute
            the products by the R-operator (:class:`SequentialHessian`); ``False`` always takes
            the generic ``torch.func`` path (the oracle in the tests).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        theta: Any | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        chunk_size: int | None = None,
        use_algebra: bool = True,
    ) -> None:
        self.names, self.shapes = parameter_layout(model)
        self.model = model
        self.loss_fn = loss_fn
        self.device = resolve_device(device)
        self.dtype = dtype
        x, y = as_tensors(data)
        self.x = x.to(self.device, dtype if x.is_floating_point() else x.dtype)
        self.y = y.to(self.device, dtype if y.is_floating_point() else y.dtype)
        flat = as_flat(model if theta is None else theta, model, "theta")
        self.theta = flat.to(self.device, dtype)
        self.buffers = {k: b.to(self.device) for k, b in model.named_buffers()}
        n = self.x.shape[0]
        size = n if chunk_size is None else check_int("chunk_size", chunk_size, low=1)
        self.chunks = [(i, min(i + size, n)) for i in range(0, n, size)]
        self.n_samples = n
        self._cached: dict[int, Callable[[torch.Tensor], tuple[torch.Tensor]]] = {}
        self.use_algebra = bool(use_algebra)
        self._algebra: dict[int, SequentialHessian | None] = {}

    @property
    def size(self) -> int:
        """Number of parameters ``p``."""
        return int(self.theta.numel())

    def loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss ``()`` at flat ``theta: (p,)`` on ``(x, y)``."""
        params = unflatten(theta, self.names, self.shapes)
        output = torch.func.functional_call(self.model, (params, self.buffers), (x,))
        return self.loss_fn(output, y)

    def matvec(self, vectors: torch.Tensor) -> torch.Tensor:
        """``H v`` for ``vectors: (m, p)`` at once, shape ``(m, p)`` (in ``self.dtype``)."""
        v = vectors.to(self.device, self.dtype)
        if len(self.chunks) == 1 and (algebra := self._sequential(0)) is not None:
            return algebra.matvec(v)
        out = torch.zeros_like(v)
        for index, (start, stop) in enumerate(self.chunks):
            algebra = self._sequential(index)
            if algebra is not None:
                out += (stop - start) / self.n_samples * algebra.matvec(v)
                continue
            pullback = self._pullback(index)
            if v.shape[0] == 1:  # one vector: skip vmap's batching overhead
                products = pullback(v[0])[0][None]
            else:
                (products,) = torch.func.vmap(pullback)(v)  # H v for every row at once
            out += (stop - start) / self.n_samples * products
        return out

    def gradient(self) -> torch.Tensor:
        """The gradient ``(p,)`` of the mean loss at ``theta`` (in ``self.dtype``): from the
        R-operator's kept backward pass where it applies, else one ``torch.func.grad`` per chunk."""
        out = torch.zeros_like(self.theta)
        for index, (start, stop) in enumerate(self.chunks):
            algebra = self._sequential(index)
            if algebra is not None:
                part = algebra.gradient()
            else:
                data = (self.x[start:stop], self.y[start:stop])
                part = torch.func.grad(self.loss)(self.theta, *data).detach()
            out += (stop - start) / self.n_samples * part
        return out

    def quadratic_form(self, vectors: torch.Tensor) -> torch.Tensor:
        """``v^T H v`` for ``vectors: (m, p)`` at once, shape ``(m,)`` (in ``self.dtype``).

        The R-operator path computes it by forward passes only
        (:meth:`SequentialHessian.quadratic_form`); otherwise it is ``(H v) . v``.
        """
        v = vectors.to(self.device, self.dtype)
        total = torch.zeros(v.shape[0], device=self.device, dtype=self.dtype)
        for index, (start, stop) in enumerate(self.chunks):
            algebra = self._sequential(index)
            if algebra is None:
                return (self.matvec(v) * v).sum(dim=1)
            total += (stop - start) / self.n_samples * algebra.quadratic_form(v)
        return total

    def _sequential(self, index: int) -> SequentialHessian | None:
        """The R-operator of chunk ``index`` (built once, kept), or ``None`` for the generic path."""
        if not self.use_algebra:
            return None
        if index not in self._algebra:
            start, stop = self.chunks[index]
            self._algebra[index] = SequentialHessian.build(
                self.model,
                self.loss_fn,
                self.names,
                self.shapes,
                self.theta,
                self.x[start:stop],
                self.y[start:stop],
            )
        return self._algebra[index]

    def _pullback(self, index: int) -> Callable[[torch.Tensor], tuple[torch.Tensor]]:
        """``v -> (H_chunk v,)``: the pullback of the gradient on chunk ``index``.

        With a single chunk it is built once (one forward and backward pass) and reused by every
        later product, as PyHessian reuses its gradient graph; with several chunks it is rebuilt
        per call so that only one chunk's graph is held at a time.
        """
        cached = self._cached.get(index)
        if cached is not None:
            return cached
        start, stop = self.chunks[index]
        x, y = self.x[start:stop], self.y[start:stop]
        grad = torch.func.grad(lambda t: self.loss(t, x, y))
        pullback = torch.func.vjp(grad, self.theta)[1]
        if len(self.chunks) == 1:
            self._cached[index] = pullback
        return pullback

    def dense(self) -> torch.Tensor:
        """The full ``(p, p)`` Hessian from ``p`` products (small networks and tests only)."""
        return self.matvec(torch.eye(self.size, device=self.device, dtype=self.dtype))
