"""Hessian spectra of real networks from Hessian-vector products, never building the Hessian.

The loss is ``L(theta) = loss_fn(model(x; theta), y)`` (a mean over the samples) as a function of
the flattened parameters ``theta: (p,)`` in ``named_parameters`` order (:mod:`sgdscape.networks.parameters`).
A Hessian-vector product is the pullback of the gradient, ``torch.func.vjp(torch.func.grad(L),
theta)`` (reverse-over-reverse; ``H`` is symmetric), built once per product call and vmapped over
several vectors at once (Hutchinson probes, stochastic Lanczos runs). Forward-over-reverse
(``jvp`` of ``grad``) gives the same numbers but scripts torch's JVP decompositions on first use
(seconds, and torch's own ``torch.jit.script`` DeprecationWarning).

- :func:`top_eigenvalues`: the k largest (algebraic) eigenvalues and eigenvectors by Lanczos with
  full reorthogonalisation;
- :func:`hutchinson_trace`: ``tr(H)`` from Rademacher probes with its standard error;
- :func:`spectral_density`: stochastic Lanczos quadrature (nodes and weights per run) and the
  Gaussian-smoothed density on a grid, as PyHessian (Yao et al., 2020) defines it;
- :func:`hessian_directions`: the top-2 eigenvectors as slice :class:`Directions`;
- :func:`training_curvature`: top-k eigenvalues of the full and the minibatch loss along a
  :class:`sgdscape.Recording`.

Randomness is passed in (``seed``); the global RNG is never used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdscape.core.devices import resolve_device
from sgdscape.errors import SgdscapeError, check_int, check_positive
from sgdscape.networks.directions import Directions
from sgdscape.networks.evaluation import ELEMENTWISE
from sgdscape.networks.parameters import as_flat, as_tensors, parameter_layout, unflatten
from sgdscape.networks.recording import Recording, select_steps

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


#: elementwise modules an MLP may hold between its ``Linear`` layers for the R-operator path
#: (the slice evaluator's list: their first and second derivatives come from autograd once)
MLP_ELEMENTWISE = ELEMENTWISE
#: bytes of one ``(vectors, samples, width)`` R-pass tensor: the vectors of a product go through
#: the passes in groups this size, which stay in a core's cache (on a 2 MB-L2 CPU, groups of 4
#: digits-MLP vectors ran at half the time per vector of groups of 8 or more)
RPASS_BYTES = 2**20


class SequentialHessian:
    """Exact ``H v`` for an ``nn.Sequential`` MLP by Pearlmutter's R-operator, batched over ``v``.

    The model is ``Linear, act, Linear, act, ..., Linear[, act]`` (``act``: elementwise modules
    of :data:`MLP_ELEMENTWISE`, composed), on inputs ``x: (n, features)``, with a mean
    ``nn.CrossEntropyLoss`` (integer targets, no weights, smoothing or ignored targets) or a mean
    ``nn.MSELoss``. The forward and backward passes at ``theta`` are kept (activations ``a_l``,
    pre-activations ``z_l``, the activation's first and second derivatives there, the
    backpropagated ``delta_l``); a product then costs one R-forward and one R-backward pass of a
    few matrix products per layer, for ``m`` vectors at once as ``(m, n, width)`` tensors. It
    computes the same Hessian as the double-backward of :class:`HessianOperator`'s generic path
    (the tests compare them), without autograd's graph of small operations.
    """

    def __init__(
        self,
        layers: list[tuple[nn.Linear, list[nn.Module]]],
        offsets: list[tuple[int, int | None]],
        loss: str,
        params: dict[str, torch.Tensor],
        names: list[tuple[str, str | None]],
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> None:
        self.loss = loss
        self.offsets = offsets
        self.weights = [params[w] for w, _ in names]
        self.biases = [None if b is None else params[b] for _, b in names]
        self.inputs: list[torch.Tensor] = []  # a_{l-1}: (n, in)
        self.pre: list[torch.Tensor] = []  # z_l: (n, out)
        self.first: list[torch.Tensor | None] = []  # act'(z_l), None where it is one
        self.second: list[torch.Tensor | None] = []  # act''(z_l), None where it is zero
        a = x
        with torch.no_grad():
            for (_, acts), weight, bias in zip(layers, self.weights, self.biases, strict=True):
                self.inputs.append(a)
                z = a @ weight.T if bias is None else torch.addmm(bias, a, weight.T)
                a, d1, d2 = _elementwise_derivatives(acts, z)
                self.pre.append(z)
                self.first.append(d1)
                self.second.append(d2)
            n = x.shape[0]
            if loss == "cross-entropy":
                self.probabilities = torch.softmax(a, dim=1)
                onehot = torch.nn.functional.one_hot(y.long(), a.shape[1]).to(a.dtype)
                error = (self.probabilities - onehot) / n
            else:
                self.scale = 2.0 / a.numel()
                error = self.scale * (a - y)
            delta = _times(error, self.first[-1])
            self.error = error
            self.deltas: list[torch.Tensor] = [delta]  # dL/dz_l, from the last layer down
            self.upstream: list[torch.Tensor] = []  # dL/da_{l-1} = delta_l W_l
            for index in range(len(layers) - 1, 0, -1):
                upstream = delta @ self.weights[index]
                delta = _times(upstream, self.first[index - 1])
                self.upstream.insert(0, upstream)
                self.deltas.insert(0, delta)

    @classmethod
    def build(
        cls,
        model: nn.Module,
        loss_fn: LossFn,
        names: Sequence[str],
        shapes: Sequence[tuple[int, ...]],
        theta: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> SequentialHessian | None:
        """The R-operator for ``model`` at flat ``theta`` on ``(x, y)``, or ``None`` where it does
        not apply (then the generic ``torch.func`` path runs)."""
        loss = _mlp_loss(loss_fn, x, y)
        if loss is None or not isinstance(model, nn.Sequential):
            return None
        layers: list[tuple[nn.Linear, list[nn.Module]]] = []
        linear_names: list[tuple[str, str | None]] = []
        for child, module in model.named_children():
            if type(module) is nn.Linear:
                layers.append((module, []))
                bias = f"{child}.bias" if module.bias is not None else None
                linear_names.append((f"{child}.weight", bias))
            elif type(module) in MLP_ELEMENTWISE and layers:
                if isinstance(module, nn.Dropout) and module.training and module.p > 0:
                    return None  # random masks: the generic path keeps the model's own behaviour
                layers[-1][1].append(module)
            else:
                return None
        expected = [n for pair in linear_names for n in pair if n is not None]
        if not layers or list(names) != expected:
            return None
        if loss == "mean-squared" and tuple(y.shape) != (x.shape[0], layers[-1][0].out_features):
            return None
        starts: dict[str, int] = {}
        position = 0
        for name, shape in zip(names, shapes, strict=True):
            starts[name] = position
            position += int(np.prod(shape))
        offsets = [(starts[w], None if b is None else starts[b]) for w, b in linear_names]
        params = unflatten(theta, names, shapes)
        return cls(layers, offsets, loss, params, linear_names, x, y)

    def matvec(self, vectors: torch.Tensor) -> torch.Tensor:
        """``H v`` of this data's mean loss for ``vectors: (m, p)``, shape ``(m, p)``.

        The vectors go in groups sized by :data:`RPASS_BYTES`.
        """
        samples = self.inputs[0].shape[0]
        width = max([w.shape[0] for w in self.weights] + [w.shape[1] for w in self.weights])
        group = max(1, RPASS_BYTES // (samples * width * vectors.element_size()))
        if vectors.shape[0] == 1:
            return self._matvec_one(vectors[0])[None]
        if vectors.shape[0] <= group:
            return self._matvec(vectors)
        return torch.cat([self._matvec(part) for part in torch.split(vectors, group)])

    def _tangents(
        self, vectors: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Each layer's ``(V_l (m, out, in), v_b (m, 1, out) | None)`` as views of ``vectors``;
        with one vector ``(out, in)`` and ``(1, out)``, so that the passes run 2-D products."""
        lead = () if vectors.shape[0] == 1 else (vectors.shape[0],)
        weights, biases = [], []
        for (w_start, b_start), weight in zip(self.offsets, self.weights, strict=True):
            size = weight.numel()
            weights.append(vectors[:, w_start : w_start + size].reshape(*lead, *weight.shape))
            biases.append(
                None
                if b_start is None
                else vectors[:, b_start : b_start + weight.shape[0]].reshape(*lead, 1, -1)
            )
        return weights, biases

    def _r_forward(
        self, tangents_w: list[torch.Tensor], tangents_b: list[torch.Tensor | None]
    ) -> tuple[list[torch.Tensor | None], list[torch.Tensor]]:
        """R(a_{l-1}) (``None`` for the inputs) and R(z_l) of every layer, ``([m,] n, width)``."""
        r_inputs: list[torch.Tensor | None] = [None]
        r_pre: list[torch.Tensor] = []
        for index, weight in enumerate(self.weights):
            # R(z_l) = R(a_{l-1}) W^T + a_{l-1} V^T + v_b;  R(a_l) = act'(z_l) R(z_l)
            r_z = torch.matmul(self.inputs[index], tangents_w[index].mT)
            r_input = r_inputs[index]
            if r_input is not None:
                r_z = r_z + torch.matmul(r_input, weight.T)
            bias = tangents_b[index]
            if bias is not None:
                r_z = r_z + bias
            r_pre.append(r_z)
            r_inputs.append(_times(r_z, self.first[index]))
        return r_inputs, r_pre

    def _matvec_one(self, vector: torch.Tensor) -> torch.Tensor:
        """``H v`` for one ``vector: (p,)``: :meth:`_matvec`'s passes as fused 2-D products
        written in place (a Lanczos run makes its products one at a time)."""
        out = torch.empty_like(vector)
        tangents_w, tangents_b = self._tangents(vector[None])
        with torch.no_grad():
            r_inputs: list[torch.Tensor | None] = [None]
            r_pre: list[torch.Tensor] = []
            for index, weight in enumerate(self.weights):
                bias = tangents_b[index]
                inputs, tangent = self.inputs[index], tangents_w[index].T
                r_z = inputs @ tangent if bias is None else torch.addmm(bias, inputs, tangent)
                r_input = r_inputs[index]
                if r_input is not None:
                    r_z.addmm_(r_input, weight.T)
                r_pre.append(r_z)
                r_inputs.append(_times(r_z, self.first[index]))
            r_output = r_inputs[-1]
            assert r_output is not None
            if self.loss == "cross-entropy":
                p = self.probabilities
                weighted = p * r_output
                r_delta = weighted.addcmul_(p, weighted.sum(dim=1, keepdim=True), value=-1.0)
                r_delta.div_(p.shape[0])
            else:
                r_delta = self.scale * r_output
            if self.first[-1] is not None:
                r_delta.mul_(self.first[-1])
            if self.second[-1] is not None:
                r_delta.addcmul_(self.error * self.second[-1], r_pre[-1])
            for index in range(len(self.weights) - 1, -1, -1):
                w_start, b_start = self.offsets[index]
                weight = self.weights[index]
                product = out[w_start : w_start + weight.numel()].view(weight.shape)
                torch.mm(r_delta.T, self.inputs[index], out=product)
                r_input = r_inputs[index]
                if r_input is not None:
                    product.addmm_(self.deltas[index].T, r_input)
                if b_start is not None:
                    torch.sum(r_delta, dim=0, out=out[b_start : b_start + weight.shape[0]])
                if index == 0:
                    break
                r_upstream = r_delta @ weight
                r_upstream.addmm_(self.deltas[index], tangents_w[index])
                first = self.first[index - 1]
                if first is not None:
                    r_upstream.mul_(first)
                second = self.second[index - 1]
                if second is not None:
                    r_upstream.addcmul_(self.upstream[index - 1] * second, r_pre[index - 1])
                r_delta = r_upstream
        return out

    def _matvec(self, vectors: torch.Tensor) -> torch.Tensor:
        single = vectors.shape[0] == 1
        out = torch.empty_like(vectors)
        tangents_w, tangents_b = self._tangents(vectors)
        with torch.no_grad():
            r_inputs, r_pre = self._r_forward(tangents_w, tangents_b)
            r_output = r_inputs[-1]
            assert r_output is not None
            if self.loss == "cross-entropy":
                p = self.probabilities
                weighted = p * r_output
                r_error = (weighted - p * weighted.sum(dim=-1, keepdim=True)) / p.shape[0]
            else:
                r_error = self.scale * r_output
            r_delta = _times(r_error, self.first[-1])
            if self.second[-1] is not None:
                r_delta = r_delta + (self.error * self.second[-1]) * r_pre[-1]
            # R-backward, from the last layer down
            for index in range(len(self.weights) - 1, -1, -1):
                w_start, b_start = self.offsets[index]
                weight = self.weights[index]
                product = torch.matmul(r_delta.mT, self.inputs[index])
                r_input = r_inputs[index]
                if r_input is not None:
                    product = product + torch.matmul(self.deltas[index].T, r_input)
                out[:, w_start : w_start + weight.numel()] = product.reshape(out.shape[0], -1)
                if b_start is not None:
                    bias_product = r_delta.sum(dim=-2)
                    out[:, b_start : b_start + weight.shape[0]] = (
                        bias_product[None] if single else bias_product
                    )
                if index == 0:
                    break
                r_upstream = torch.matmul(r_delta, weight) + torch.matmul(
                    self.deltas[index], tangents_w[index]
                )
                r_delta = _times(r_upstream, self.first[index - 1])
                second = self.second[index - 1]
                if second is not None:
                    r_delta = r_delta + (self.upstream[index - 1] * second) * r_pre[index - 1]
        return out

    def quadratic_form(self, vectors: torch.Tensor) -> torch.Tensor:
        """``v^T H v`` for ``vectors: (m, p)``, shape ``(m,)``, by forward passes only.

        The second derivative of ``t -> L(theta + t v)`` at 0: ``o'^T H_loss o'`` plus, at every
        node, its adjoint times the node's second-order part (``2 a_{l-1}' V_l^T`` of a layer,
        ``act''(z_l) z_l'^2`` of an activation); no R-backward pass and no ``(m, p)`` product.
        """
        samples = self.inputs[0].shape[0]
        width = max([w.shape[0] for w in self.weights] + [w.shape[1] for w in self.weights])
        group = max(1, RPASS_BYTES // (samples * width * vectors.element_size()))
        return torch.cat([self._quadratic(part) for part in torch.split(vectors, group)])

    def _quadratic(self, vectors: torch.Tensor) -> torch.Tensor:
        tangents_w, tangents_b = self._tangents(vectors)
        dims = (-2, -1)
        with torch.no_grad():
            r_inputs, r_pre = self._r_forward(tangents_w, tangents_b)
            total = torch.zeros(vectors.shape[0], dtype=vectors.dtype, device=vectors.device)
            last = len(self.weights) - 1
            for index in range(len(self.weights)):
                r_input = r_inputs[index]
                if r_input is not None:  # the layer's bilinear term: 2 delta_l . (a' V^T)
                    bilinear = torch.matmul(r_input, tangents_w[index].mT)
                    total += 2 * (self.deltas[index] * bilinear).sum(dim=dims)
                second = self.second[index]
                if second is not None:  # the activation's curvature: adjoint . act'' z'^2
                    adjoint = self.error if index == last else self.upstream[index]
                    total += ((adjoint * second) * r_pre[index].square()).sum(dim=dims)
            r_output = r_inputs[-1]
            assert r_output is not None
            if self.loss == "cross-entropy":
                p = self.probabilities
                spread = (p * r_output.square()).sum(dim=-1) - (p * r_output).sum(dim=-1).square()
                total += spread.sum(dim=-1) / p.shape[0]
            else:
                total += self.scale * r_output.square().sum(dim=dims)
        return total


def _times(tensor: torch.Tensor, factor: torch.Tensor | None) -> torch.Tensor:
    """``tensor * factor``, or ``tensor`` where the factor is all ones (``None``)."""
    return tensor if factor is None else tensor * factor


def _mlp_loss(loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> str | None:
    """``"cross-entropy"`` or ``"mean-squared"`` when the R-operator path knows ``loss_fn``."""
    if x.dim() != 2:
        return None
    if (
        type(loss_fn) is nn.CrossEntropyLoss
        and loss_fn.reduction == "mean"
        and loss_fn.weight is None
        and float(loss_fn.label_smoothing) == 0.0
        and y.dim() == 1
        and not y.is_floating_point()
        and not bool((y == loss_fn.ignore_index).any())
    ):
        return "cross-entropy"
    if type(loss_fn) is nn.MSELoss and loss_fn.reduction == "mean" and y.is_floating_point():
        return "mean-squared"
    return None


def _relu(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    mask = (z > 0).to(z.dtype)  # relu'(0) = 0, as autograd's threshold_backward
    return z * mask, mask, None


def _tanh(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    value = torch.tanh(z)
    first = 1 - value.square()
    return value, first, -2 * value * first


def _sigmoid(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    value = torch.sigmoid(z)
    first = value * (1 - value)
    return value, first, first * (1 - 2 * value)


#: activations whose derivatives are written out (others come from autograd)
CLOSED_FORM: dict[
    type[nn.Module],
    Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]],
] = {
    nn.ReLU: _relu,
    nn.Tanh: _tanh,
    nn.Sigmoid: _sigmoid,
}


def _elementwise_derivatives(
    modules: Sequence[nn.Module], z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(act(z), act'(z) or None where it is one, act''(z) or None where it vanishes)`` of the composed elementwise
    ``modules`` (identity when empty), from autograd: the Jacobian of an elementwise map is
    diagonal, so the gradient of ``act(z).sum()`` is ``act'(z)`` and that of ``act'(z).sum()``
    is ``act''(z)``."""
    if not modules:
        return z, None, None
    if len(modules) == 1 and type(modules[0]) in CLOSED_FORM:
        return CLOSED_FORM[type(modules[0])](z)
    with torch.enable_grad():
        point = z.detach().requires_grad_(True)
        value = point
        for module in modules:
            value = module(value)
        (first,) = torch.autograd.grad(value.sum(), point, create_graph=True)
        second = None
        if first.requires_grad:
            (second,) = torch.autograd.grad(first.sum(), point, allow_unused=True)
    if second is not None and not bool(second.any()):
        second = None
    return value.detach(), first.detach(), second


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(check_int("seed", seed, low=0))


def _rademacher(m: int, p: int, generator: torch.Generator) -> torch.Tensor:
    """``(m, p)`` float64 entries ±1 from ``generator`` (CPU)."""
    return torch.randint(0, 2, (m, p), generator=generator).to(torch.float64) * 2 - 1


def lanczos(
    operator: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    steps: int,
    *,
    on_step: Callable[[torch.Tensor, torch.Tensor, int], bool] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched Lanczos with full reorthogonalisation, ``r`` independent runs in lockstep.

    Args:
        operator: ``(r, p) -> (r, p)`` symmetric products (any dtype; the basis is float64).
        start: ``(r, p)`` start vectors (normalised here).
        steps: at most this many Lanczos steps ``m`` (``<= p``).
        on_step: called with ``(alpha (r, j), beta (r, j), j)`` after step ``j``; returning
            True stops early.

    Returns:
        ``(alpha (r, m), beta (r, m), basis (r, m, p))``: the tridiagonal matrix of each run is
        ``alpha`` on the diagonal and ``beta[:, :m - 1]`` beside it; ``beta[:, m - 1]`` is the
        norm of the next residual (the coupling to the rest of the space, 0 when the Krylov
        space closed). A run whose space closes early keeps zero vectors and coefficients beyond.
    """
    q = start.to(torch.float64)
    q = q / torch.linalg.vector_norm(q, dim=1, keepdim=True)
    r, p = q.shape
    steps = min(steps, p)
    basis = torch.zeros(r, steps, p, dtype=torch.float64, device=q.device)
    alphas: list[torch.Tensor] = []
    betas: list[torch.Tensor] = []
    beta = torch.zeros(r, dtype=torch.float64, device=q.device)
    previous = torch.zeros_like(q)
    for j in range(steps):
        basis[:, j] = q
        w = operator(q).to(torch.float64)
        alpha = (w * q).sum(dim=1)
        w = w - alpha[:, None] * q - beta[:, None] * previous
        span = basis[:, : j + 1]
        column = w[:, :, None]
        for _ in range(2):  # full reorthogonalisation against every earlier vector, twice
            column = torch.baddbmm(column, span.mT, torch.bmm(span, column), alpha=-1.0)
        w = column[:, :, 0]
        norm = torch.linalg.vector_norm(w, dim=1)
        closed = norm <= 1e-10 * alpha.abs().clamp_min(1e-30)
        beta = norm.masked_fill(closed, 0.0)
        alphas.append(alpha)
        betas.append(beta)
        stop = on_step is not None and on_step(torch.stack(alphas, 1), torch.stack(betas, 1), j + 1)
        if stop or bool(closed.all()) or j == steps - 1:
            basis = basis[:, : j + 1]
            break
        previous = q
        q = (w / norm.clamp_min(1e-300)[:, None]).masked_fill_(closed[:, None], 0.0)
    return torch.stack(alphas, 1), torch.stack(betas, 1), basis


def _tridiagonal(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``(r, m, m)`` symmetric tridiagonal matrices from ``alpha (r, m)``, ``beta (r, m - 1)``."""
    return torch.diag_embed(alpha) + torch.diag_embed(beta, 1) + torch.diag_embed(beta, -1)


@dataclass(frozen=True)
class Eigenpairs:
    """Top-k Hessian eigenpairs.

    Attributes:
        eigenvalues: ``(k,)`` descending (loss units per parameter unit squared).
        eigenvectors: ``(k, p)`` unit float32 vectors (sign: largest-magnitude entry positive).
        residuals: ``(k,)`` ``||H v - lambda v||`` bounds from the Lanczos recurrence.
        n_products: Hessian-vector products used.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    n_products: int


def top_eigenvalues(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    theta: Any | None = None,
    *,
    k: int = 1,
    max_steps: int = 100,
    tol: float = 1e-6,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    chunk_size: int | None = None,
) -> Eigenpairs:
    """The ``k`` largest (algebraic) Hessian eigenvalues at ``theta`` by Lanczos.

    Stops when the top-k Ritz values change by at most ``tol`` (relative) from one Lanczos step
    to the next (PyHessian's criterion for power iteration), when the Krylov space closes, or
    after ``max_steps`` products. Start vector: Gaussian from
    ``torch.Generator().manual_seed(seed)``, so the result is deterministic given the seed.
    """
    operator = HessianOperator(
        model, loss_fn, data, theta, device=device, dtype=dtype, chunk_size=chunk_size
    )
    k = check_int("k", k, low=1, high=operator.size)
    max_steps = check_int("max_steps", max_steps, low=k)
    check_positive("tol", tol)
    generator = _generator(seed, operator.device)
    start = torch.randn(1, operator.size, generator=generator, dtype=torch.float64)

    history: list[np.ndarray] = []

    def converged(alpha: torch.Tensor, beta: torch.Tensor, j: int) -> bool:
        # stop when the top-k Ritz values moved by <= tol (relative) since the last step
        if j < k:
            return False
        # a j x j matrix: numpy's eigvalsh costs a fraction of torch's per-call overhead
        diagonal, off = alpha[0].cpu().numpy(), beta[0, : j - 1].cpu().numpy()
        matrix = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
        top = np.linalg.eigvalsh(matrix)[-k:]
        history.append(top)
        if len(history) < 2:
            return False
        change = np.abs(history[-1] - history[-2])
        return bool((change <= tol * np.maximum(np.abs(top), 1e-12)).all())

    alpha, beta, basis = lanczos(
        lambda v: operator.matvec(v.to(dtype)),
        start.to(operator.device),
        max_steps,
        on_step=converged,
    )
    m = alpha.shape[1]
    beta_last = float(beta[0, m - 1])
    values, vectors = torch.linalg.eigh(_tridiagonal(alpha, beta[:, : m - 1]))
    order = torch.arange(m - 1, m - 1 - min(k, m), -1)
    ritz = torch.einsum("mp,mk->kp", basis[0], vectors[0][:, order])
    ritz = ritz / ritz.norm(dim=1, keepdim=True)
    flip = torch.sign(ritz.gather(1, ritz.abs().argmax(dim=1, keepdim=True)))
    ritz = ritz * flip
    # the Lanczos residual ||H u - theta u|| = |beta_m s_m| of each Ritz pair (exact arithmetic)
    residuals = (beta_last * vectors[0, -1, order]).abs()
    return Eigenpairs(
        eigenvalues=values[0, order].cpu().numpy(),
        eigenvectors=ritz.float().cpu().numpy(),
        residuals=residuals.cpu().numpy(),
        n_products=m,
    )


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson's estimate of ``tr(H)``.

    Attributes:
        trace: the mean of ``v^T H v`` over the probes.
        standard_error: ``std(v^T H v, ddof=1) / sqrt(n_probes)``.
        samples: ``(n_probes,)`` the individual ``v^T H v``.
    """

    trace: float
    standard_error: float
    samples: np.ndarray


def hutchinson_trace(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    theta: Any | None = None,
    *,
    n_probes: int = 100,
    batch: int = 50,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    chunk_size: int | None = None,
) -> TraceEstimate:
    """``tr(H)`` from ``n_probes`` Rademacher vectors ``v`` (unbiased: ``E[v^T H v] = tr H``).

    ``batch`` probes share one pass: forward passes only for the MLPs the R-operator covers
    (:meth:`SequentialHessian.quadratic_form`), one vmapped Hessian-vector pass otherwise.
    """
    operator = HessianOperator(
        model, loss_fn, data, theta, device=device, dtype=dtype, chunk_size=chunk_size
    )
    n_probes = check_int("n_probes", n_probes, low=2)
    batch = check_int("batch", batch, low=1)
    probes = _rademacher(n_probes, operator.size, _generator(seed, operator.device))
    samples = []
    for start in range(0, n_probes, batch):
        v = probes[start : start + batch].to(operator.device)
        samples.append(operator.quadratic_form(v.to(dtype)).to(torch.float64))
    values = torch.cat(samples).cpu().numpy()
    return TraceEstimate(
        float(values.mean()), float(values.std(ddof=1) / math.sqrt(n_probes)), values
    )


@dataclass(frozen=True)
class SpectralDensity:
    """Stochastic Lanczos quadrature of the Hessian spectrum.

    Attributes:
        nodes: ``(runs, m)`` Ritz values of each run (eigenvalue units).
        weights: ``(runs, m)`` quadrature weights (each row sums to 1).
        grid: ``(n_bins,)`` eigenvalue axis of the smoothed density.
        density: ``(n_bins,)`` Gaussian-smoothed density, normalised to unit integral on
            ``grid`` (PyHessian's ``density_generate``).
        sigma_squared: the Gaussian kernel's variance used.
    """

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma_squared: float

    def moment(self, order: int) -> np.ndarray:
        """``(runs,)`` each run's estimate of ``tr(H^order) / p``."""
        moments: np.ndarray = (self.weights * self.nodes**order).sum(axis=1)
        return moments


def smoothed_density(
    nodes: np.ndarray,
    weights: np.ndarray,
    *,
    n_bins: int = 10_000,
    sigma_squared: float = 1e-5,
    overhead: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, float]:
    """PyHessian's ``density_generate``: Gaussian kernels at the nodes, averaged over runs.

    Returns ``(grid (n_bins,), density (n_bins,), variance)``; the grid runs from the mean of the
    runs' smallest node minus ``overhead`` to the mean of their largest plus ``overhead``, the
    variance is ``sigma_squared * max(1, width)``, and the density integrates to 1 on the grid.
    """
    high = float(np.mean(np.max(nodes, axis=1))) + overhead
    low = float(np.mean(np.min(nodes, axis=1))) - overhead
    grid = np.linspace(low, high, n_bins)
    variance = sigma_squared * max(1.0, high - low)
    kernel = np.exp(-((grid[:, None, None] - nodes[None]) ** 2) / (2 * variance))
    kernel /= np.sqrt(2 * np.pi * variance)
    density = (kernel * weights[None]).sum(axis=2).mean(axis=1)
    density = density / (density.sum() * (grid[1] - grid[0]))
    return grid, density, variance


def spectral_density(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    theta: Any | None = None,
    *,
    runs: int = 1,
    steps: int = 100,
    n_bins: int = 1_000,
    sigma_squared: float = 1e-5,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    chunk_size: int | None = None,
) -> SpectralDensity:
    """Spectral density by stochastic Lanczos quadrature, as PyHessian's ``density``.

    Each of ``runs`` runs starts from a normalised Rademacher vector (``seed``) and takes
    ``steps`` Lanczos steps (the runs go in lockstep, one vmapped product per step); its nodes
    are the tridiagonal's eigenvalues and its weights the squared first components of their
    eigenvectors.
    """
    operator = HessianOperator(
        model, loss_fn, data, theta, device=device, dtype=dtype, chunk_size=chunk_size
    )
    runs = check_int("runs", runs, low=1)
    steps = check_int("steps", steps, low=2)
    start = _rademacher(runs, operator.size, _generator(seed, operator.device))
    alpha, beta, _ = lanczos(
        lambda v: operator.matvec(v.to(dtype)), start.to(operator.device), steps
    )
    values, vectors = torch.linalg.eigh(_tridiagonal(alpha, beta[:, :-1]))
    nodes = values.cpu().numpy()
    weights = (vectors[:, 0, :] ** 2).cpu().numpy()
    grid, density, variance = smoothed_density(
        nodes, weights, n_bins=n_bins, sigma_squared=sigma_squared
    )
    return SpectralDensity(nodes, weights, grid, density, variance)


def hessian_directions(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    theta: Any | None = None,
    *,
    seed: int = 0,
    max_steps: int = 100,
    device: str | torch.device = "cpu",
    chunk_size: int | None = None,
) -> Directions:
    """The plane of steepest curvature: the top-2 Hessian eigenvectors at ``theta`` as Directions.

    ``d1, d2`` are unit vectors (not filter-normalised), sign fixed so each one's largest-magnitude
    entry is positive; the labels carry the eigenvalues. Slice it with
    :func:`sgdscape.slice_landscape` like random or PCA directions.
    """
    pairs = top_eigenvalues(
        model,
        loss_fn,
        data,
        theta,
        k=2,
        max_steps=max_steps,
        seed=seed,
        device=device,
        chunk_size=chunk_size,
    )
    names, shapes = parameter_layout(model)
    origin = as_flat(model if theta is None else theta, model, "theta")
    d1, d2 = (torch.from_numpy(v.copy()) for v in pairs.eigenvectors)
    labels = (
        f"Hessian λ1 = {pairs.eigenvalues[0]:.4g}",
        f"Hessian λ2 = {pairs.eigenvalues[1]:.4g}",
    )
    return Directions(origin, d1, d2, names, shapes, labels, kind="hessian")


@dataclass(frozen=True)
class TrainingCurvature:
    """Hessian spectra along a recorded training run, at the chosen steps ``S``.

    Attributes:
        steps: ``(S,)`` the recorded steps examined.
        eigenvalues: ``(S, k)`` of the full-data loss at each step's iterate, descending.
        batch_eigenvalues: ``(S, k)`` of that step's minibatch loss (``None`` if not asked).
        lr: the learning rate of the run.
        trace: ``(S,)`` Hutchinson's ``tr H`` of the full-data loss (``None`` if not asked).
        trace_error: ``(S,)`` its standard error.
        density_grid: ``(S, D)`` eigenvalue axis of each step's smoothed spectral density.
        density: ``(S, D)`` the density (unit integral on its grid; ``None`` if not asked).
    """

    steps: np.ndarray
    eigenvalues: np.ndarray
    batch_eigenvalues: np.ndarray | None
    lr: float
    trace: np.ndarray | None = None
    trace_error: np.ndarray | None = None
    density_grid: np.ndarray | None = None
    density: np.ndarray | None = None

    @property
    def sharpness(self) -> np.ndarray:
        """``(S,)`` the top eigenvalue of the full-data loss."""
        return self.eigenvalues[:, 0]

    @property
    def stability_threshold(self) -> float:
        """``2 / lr``: the sharpness above which GD on the local quadratic diverges."""
        return 2.0 / self.lr

    def arrays(self, prefix: str = "curvature_") -> dict[str, np.ndarray]:
        """The record as named arrays (``prefix`` + field name), the ones present only."""
        values = {
            "steps": self.steps,
            "eigenvalues": self.eigenvalues,
            "batch_eigenvalues": self.batch_eigenvalues,
            "lr": np.asarray(self.lr, dtype=np.float64),
            "trace": self.trace,
            "trace_error": self.trace_error,
            "density_grid": self.density_grid,
            "density": self.density,
        }
        return {prefix + k: np.asarray(v) for k, v in values.items() if v is not None}

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], prefix: str = "curvature_"
    ) -> TrainingCurvature | None:
        """The record stored by :meth:`arrays` (``None`` when ``arrays`` hold none)."""
        if prefix + "steps" not in arrays:
            return None

        def get(name: str) -> np.ndarray | None:
            return arrays.get(prefix + name)

        return cls(
            steps=arrays[prefix + "steps"],
            eigenvalues=arrays[prefix + "eigenvalues"],
            batch_eigenvalues=get("batch_eigenvalues"),
            lr=float(arrays[prefix + "lr"]),
            trace=get("trace"),
            trace_error=get("trace_error"),
            density_grid=get("density_grid"),
            density=get("density"),
        )


def training_curvature(
    recording: Recording,
    steps: Sequence[int] | int | None = 10,
    *,
    k: int = 1,
    batch: bool = True,
    trace: bool = False,
    density: bool = False,
    max_steps: int = 100,
    n_probes: int = 100,
    density_steps: int = 60,
    density_bins: int = 400,
    seed: int = 0,
    device: str | torch.device = "cpu",
    chunk_size: int | None = None,
) -> TrainingCurvature:
    """Top-k eigenvalues of the full loss and of each chosen step's minibatch loss.

    Args:
        recording: from :func:`sgdscape.record_training`.
        steps: step numbers, a count (evenly spaced, first and last included) or ``None`` (all).
        batch: also the minibatch loss of each step (its samples from ``batch_indices``).
        trace: also Hutchinson's trace of the full loss (``n_probes`` probes) at each step.
        density: also the spectral density of the full loss (one SLQ run of
            ``density_steps`` Lanczos steps, smoothed on ``density_bins`` points) at each step.
    """
    chosen = select_steps(steps, recording.n_steps)
    full, minibatch, traces, errors, grids, densities = [], [], [], [], [], []
    data = (recording.x, recording.y)
    for step in chosen:
        theta = torch.from_numpy(np.asarray(recording.iterates[step], dtype=np.float32))
        common: dict[str, Any] = {"seed": seed, "device": device}
        full.append(
            top_eigenvalues(
                recording.model,
                recording.loss_fn,
                data,
                theta,
                k=k,
                max_steps=max_steps,
                chunk_size=chunk_size,
                **common,
            ).eigenvalues
        )
        if batch:
            index = torch.from_numpy(recording.batch(int(step)).astype(np.int64))
            subset = (recording.x[index], recording.y[index])
            minibatch.append(
                top_eigenvalues(
                    recording.model,
                    recording.loss_fn,
                    subset,
                    theta,
                    k=k,
                    max_steps=max_steps,
                    **common,
                ).eigenvalues
            )
        if trace:
            estimate = hutchinson_trace(
                recording.model,
                recording.loss_fn,
                data,
                theta,
                n_probes=n_probes,
                chunk_size=chunk_size,
                **common,
            )
            traces.append(estimate.trace)
            errors.append(estimate.standard_error)
        if density:
            spectrum = spectral_density(
                recording.model,
                recording.loss_fn,
                data,
                theta,
                steps=density_steps,
                n_bins=density_bins,
                chunk_size=chunk_size,
                **common,
            )
            grids.append(spectrum.grid)
            densities.append(spectrum.density)
    return TrainingCurvature(
        steps=chosen,
        eigenvalues=np.stack(full),
        batch_eigenvalues=np.stack(minibatch) if batch else None,
        lr=float(recording.lr),
        trace=np.asarray(traces) if trace else None,
        trace_error=np.asarray(errors) if trace else None,
        density_grid=np.stack(grids) if density else None,
        density=np.stack(densities) if density else None,
    )


@dataclass(frozen=True)
class CurvatureRequest:
    """What ``sgdscape network --curvature SPEC`` computes along the recorded training.

    Attributes:
        k: top eigenvalues per step (``top-k=K``).
        trace: Hutchinson's trace too (``trace``).
        density: the SLQ spectral density too (``density``).
        batch: each step's minibatch eigenvalues too (``batch``).
        steps: how many steps, evenly spaced, first and last included (``steps=N``).
    """

    k: int = 1
    trace: bool = False
    density: bool = False
    batch: bool = False
    steps: int = 10


#: the words of a ``--curvature`` spec
CURVATURE_SPEC_WORDS = ("top-k=K", "trace", "density", "batch", "steps=N")


def parse_curvature_spec(text: str) -> CurvatureRequest:
    """Parse ``"top-k=3,trace,density"`` (any order, comma-separated; see
    :data:`CURVATURE_SPEC_WORDS`) into a :class:`CurvatureRequest`.

    Raises :class:`SgdscapeError` naming the bad item and the allowed ones.
    """
    values: dict[str, Any] = {}
    allowed = ", ".join(CURVATURE_SPEC_WORDS)
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise SgdscapeError(f"--curvature needs at least one of: {allowed}; got {text!r}.")
    for item in items:
        key, _, number = item.partition("=")
        key = key.strip().lower()
        if key in ("trace", "density", "batch") and not number:
            values[key] = True
        elif key in ("top-k", "steps") and number:
            high = 50 if key == "top-k" else 10_000
            try:
                count = int(number)
            except ValueError:
                count = 0
            if not 1 <= count <= high:
                raise SgdscapeError(
                    f"--curvature {key} must be an integer from 1 to {high}, got {number!r}."
                )
            values["k" if key == "top-k" else "steps"] = count
        else:
            raise SgdscapeError(
                f"--curvature has an unknown item {item!r}; use a comma-separated list of: {allowed}."
            )
    return CurvatureRequest(**values)


def load_training_curvature(path: str | Path) -> TrainingCurvature | None:
    """The curvature record a ``network.npz`` holds (``None`` if it was written without
    ``--curvature``); the archive is checked and read without pickle."""
    from sgdscape.io import published, read_archive
    from sgdscape.networks.recording import VIEW_SCHEMA

    path = Path(path)
    arrays = read_archive(published(path.parent, path.name), VIEW_SCHEMA)
    return TrainingCurvature.from_arrays(arrays)
