"""Exact Hessian-vector products of an ``nn.Sequential`` MLP by Pearlmutter's R-operator.

:class:`SequentialHessian` keeps the forward and backward passes at ``theta`` and computes ``H v``
(and ``v^T H v`` by forward passes only) for many vectors at once, with the first and second
derivatives of the elementwise activations written out (ReLU, tanh, sigmoid) or taken from
autograd once. :class:`sgdscape.networks.hessian.HessianOperator` uses it where it applies and
falls back to the generic ``torch.func`` products otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from sgdscape.networks.evaluation import ELEMENTWISE
from sgdscape.networks.losses import LossFn
from sgdscape.networks.parameters import unflatten

#: elementwise modules an MLP may hold between its ``Linear`` layers for the R-operator path
#: (the slice evaluator's list: their first and second derivatives come from autograd once)
MLP_ELEMENTWISE = ELEMENTWISE
#: bytes of one ``(vectors, samples, width)`` R-pass tensor: the vectors of a product go through
#: the passes in groups this size, which stay in a core's cache (on a 2 MB-L2 CPU, groups of 4
#: digits-MLP vectors ran at half the time per vector of groups of 8 or more)
RPASS_BYTES = 2**20
#: bytes of the largest ``(vectors, width, samples)`` tensor of the quadratic form's R-forward
#: pass: its vectors go in equal groups this size (digits MLP, 100 probes, one core of a
#: 2 MB-L2 CPU: groups of 4 to 10 vectors ran in about the same time, 2 at 1.1x it, 25 at 1.4x)
QUADRATIC_BYTES = 2**21


class SequentialHessian:
    """Exact ``H v`` for an ``nn.Sequential`` MLP by Pearlmutter's R-operator, batched over ``v``.

    The model is ``Linear, act, Linear, act, ..., Linear[, act]`` (``act``: elementwise modules
    of :data:`MLP_ELEMENTWISE`, composed), on inputs ``x: (n, features)``, with a mean
    ``nn.CrossEntropyLoss`` (integer targets, no weights, smoothing or ignored targets) or a mean
    ``nn.MSELoss``. The forward and backward passes at ``theta`` are kept (activations ``a_l``,
    pre-activations ``z_l``, the activation's first and second derivatives there, the
    backpropagated ``delta_l``), once per point and data, as ``(width, n)`` tensors (samples along
    the columns); a product then costs one R-forward and one R-backward pass of a few matrix
    products per layer: one vector (a Lanczos step) in that layout, ``m`` vectors at once as
    ``(m, n, width)`` tensors (from row-layout copies of the kept passes, made on first use);
    ``v^T H v`` by forward passes only, ``(m, width, n)`` tensors in the column layout. It
    computes the same Hessian as the double-backward of :class:`HessianOperator`'s generic path
    (the tests compare them), without autograd's graph of small operations. Nothing here changes
    after the build: another point or other data is another object.
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
        self.x = x
        self.weights = [params[w] for w, _ in names]
        self.biases = [None if b is None else params[b] for _, b in names]
        # the passes at theta, kept with the samples along the columns, (width, n) each: every
        # matrix product then has the n samples as its long output or inner dimension (a
        # (n, 10) output ran at a third of the rate of its (10, n) transpose on one CPU core)
        inputs: list[torch.Tensor] = []  # a_{l-1}^T: (in, n)
        first: list[torch.Tensor | None] = []  # act'(z_l)^T, None where it is one
        second: list[torch.Tensor | None] = []  # act''(z_l)^T, None where it is zero
        a = x.T
        with torch.no_grad():
            for (_, acts), weight, bias in zip(layers, self.weights, self.biases, strict=True):
                inputs.append(a)
                z = weight @ a if bias is None else torch.addmm(bias[:, None], weight, a)
                a, d1, d2 = _elementwise_derivatives(acts, z)
                first.append(d1)
                second.append(d2)
            n = x.shape[0]
            probabilities = None
            if loss == "cross-entropy":
                # softmax down the columns, written out: torch.softmax(dim=0) rounds differently
                # with the number of threads, and a result must not depend on it (Ray workers)
                probabilities = (a - a.amax(dim=0, keepdim=True)).exp_()
                probabilities /= probabilities.sum(dim=0, keepdim=True)
                ones = torch.ones((1, n), dtype=a.dtype, device=a.device)
                error = probabilities.scatter_add(0, y.long()[None], -ones)  # p - onehot
                error /= n
            else:
                self.scale = 2.0 / a.numel()
                error = self.scale * (a - y.T)
            delta = _times(error, first[-1])
            deltas = [delta]  # (dL/dz_l)^T, from the last layer down
            upstream: list[torch.Tensor] = []  # (dL/da_{l-1})^T = W_l^T delta_l^T
            for index in range(len(layers) - 1, 0, -1):
                up = self.weights[index].T @ delta
                delta = _times(up, first[index - 1])
                upstream.insert(0, up)
                deltas.insert(0, delta)
            curvature = []  # adjoint * act'', as it enters R(delta)
            for index, d2 in enumerate(second):
                adjoint = error if index == len(layers) - 1 else upstream[index]
                curvature.append(None if d2 is None else adjoint * d2)
        self.columns = _Columns(inputs, first, second, curvature, deltas, upstream, error)
        self.column_probabilities = probabilities
        # for the one-vector product: the flat vector's pieces in order (every layer's weight, then
        # its bias), as (weight piece, bias piece or None, weight shape) per layer, and views
        self._sizes: list[int] = []
        self._pieces: list[tuple[int, int | None, torch.Size]] = []
        for weight, bias in zip(self.weights, self.biases, strict=True):
            self._sizes.append(weight.numel())
            if bias is not None:
                self._sizes.append(bias.numel())
            has = bias is not None
            self._pieces.append(
                (len(self._sizes) - 1 - has, len(self._sizes) - 1 if has else None, weight.shape)
            )
        self._weights_t = [weight.T for weight in self.weights]
        self._input_rows = [a.T for a in inputs]
        if probabilities is not None:
            self._probabilities_over_n = probabilities / n

    @cached_property
    def inputs(self) -> list[torch.Tensor]:
        """``a_{l-1}: (n, in)`` of every layer (the batched passes' layout, made on first use)."""
        return [self.x] + [a.T.contiguous() for a in self.columns.inputs[1:]]

    @cached_property
    def first(self) -> list[torch.Tensor | None]:
        """``act'(z_l): (n, out)``, ``None`` where it is one."""
        return [_column(d) for d in self.columns.first]

    @cached_property
    def second(self) -> list[torch.Tensor | None]:
        """``act''(z_l): (n, out)``, ``None`` where it is zero."""
        return [_column(d) for d in self.columns.second]

    @cached_property
    def deltas(self) -> list[torch.Tensor]:
        """``delta_l = dL/dz_l: (n, out)``."""
        return [d.T.contiguous() for d in self.columns.deltas]

    @cached_property
    def upstream(self) -> list[torch.Tensor]:
        """``dL/da_{l-1} = delta_l W_l: (n, in)`` for the layers above the first."""
        return [u.T.contiguous() for u in self.columns.upstream]

    @cached_property
    def error(self) -> torch.Tensor:
        """``dL/d output: (n, classes)``."""
        return self.columns.error.T.contiguous()

    @cached_property
    def probabilities(self) -> torch.Tensor:
        """The softmax of the outputs, ``(n, classes)`` (cross-entropy only)."""
        assert self.column_probabilities is not None
        return self.column_probabilities.T.contiguous()

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
            position += math.prod(shape)
        offsets = [(starts[w], None if b is None else starts[b]) for w, b in linear_names]
        params = unflatten(theta, names, shapes)
        return cls(layers, offsets, loss, params, linear_names, x, y)

    def gradient(self) -> torch.Tensor:
        """The gradient ``(p,)`` of this data's mean loss at ``theta``, from the kept backward pass
        (``dL/dW_l = delta_l^T a_{l-1}``, ``dL/db_l`` the column sums of ``delta_l^T``)."""
        first = self.weights[0]
        out = torch.empty(sum(self._sizes), dtype=first.dtype, device=first.device)
        grad = torch.split(out, self._sizes)
        with torch.no_grad():
            for index, (w, b, shape) in enumerate(self._pieces):
                delta = self.columns.deltas[index]
                torch.mm(delta, self._input_rows[index], out=grad[w].view(shape))
                if b is not None:
                    torch.sum(delta, dim=1, out=grad[b])
        return out

    def matvec(self, vectors: torch.Tensor) -> torch.Tensor:
        """``H v`` of this data's mean loss for ``vectors: (m, p)``, shape ``(m, p)``.

        The vectors go in groups sized by :data:`RPASS_BYTES`.
        """
        if vectors.shape[0] == 1:
            return self._matvec_one(vectors[0])[None]
        samples = self.x.shape[0]
        width = max([w.shape[0] for w in self.weights] + [w.shape[1] for w in self.weights])
        group = max(1, RPASS_BYTES // (samples * width * vectors.element_size()))
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
        """``H v`` for one ``vector: (p,)``: :meth:`_matvec`'s passes as 2-D products written in
        place, with the samples along the columns (``(width, n)`` tensors), so that every matrix
        product has the ``n`` samples as its long output or inner dimension (a ``(n, 10)`` output
        ran at a third of the rate of its ``(10, n)`` transpose); a Lanczos run makes its products
        one at a time."""
        columns, pieces = self.columns, self._pieces
        out = torch.empty_like(vector)
        tangent, grad = torch.split(vector, self._sizes), torch.split(out, self._sizes)
        tangents_w = [tangent[w].view(shape) for w, _, shape in pieces]
        with torch.no_grad():
            r_inputs: list[torch.Tensor | None] = [None]  # R(a_{l-1})^T: (in, n)
            r_pre: list[torch.Tensor] = []  # R(z_l)^T: (out, n)
            for index, weight in enumerate(self.weights):
                # R(z_l)^T = V_l a_{l-1}^T + W_l R(a_{l-1})^T + v_b
                inputs, b = columns.inputs[index], pieces[index][1]
                if b is None:
                    r_z = tangents_w[index] @ inputs
                else:
                    r_z = torch.addmm(tangent[b][:, None], tangents_w[index], inputs)
                r_input = r_inputs[index]
                if r_input is not None:
                    r_z.addmm_(weight, r_input)
                r_pre.append(r_z)
                first = columns.first[index]
                r_inputs.append(r_z if first is None else r_z * first)
            r_output = r_inputs[-1]
            assert r_output is not None
            if self.column_probabilities is not None:  # softmax's Jacobian, column by column
                p, p_mean = self.column_probabilities, self._probabilities_over_n
                weighted = p_mean * r_output  # p r / n, then minus p sum(p r) / n
                r_delta = weighted.addcmul_(p, weighted.sum(dim=0, keepdim=True), value=-1.0)
            else:
                r_delta = self.scale * r_output
            if columns.first[-1] is not None:
                r_delta.mul_(columns.first[-1])
            if columns.curvature[-1] is not None:
                r_delta.addcmul_(columns.curvature[-1], r_pre[-1])
            for index in range(len(self.weights) - 1, -1, -1):
                # dV_l = R(delta_l)^T a_{l-1} + delta_l^T R(a_{l-1}); R(delta) down one layer
                w, b, shape = pieces[index]
                product = grad[w].view(shape)
                torch.mm(r_delta, self._input_rows[index], out=product)
                r_input = r_inputs[index]
                if r_input is not None:
                    product.addmm_(columns.deltas[index], r_input.T)
                if b is not None:
                    torch.sum(r_delta, dim=1, out=grad[b])
                if index == 0:
                    break
                r_upstream = torch.mm(self._weights_t[index], r_delta)
                r_upstream.addmm_(tangents_w[index].T, columns.deltas[index])
                first = columns.first[index - 1]
                if first is not None:
                    r_upstream.mul_(first)
                curvature = columns.curvature[index - 1]
                if curvature is not None:
                    r_upstream.addcmul_(curvature, r_pre[index - 1])
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
        The vectors go in equal groups sized by :data:`QUADRATIC_BYTES`.
        """
        samples = self.x.shape[0]
        rows = max(
            weight.shape[0] * (1 if index == 0 else 2) for index, weight in enumerate(self.weights)
        )
        group = max(1, QUADRATIC_BYTES // (samples * rows * vectors.element_size()))
        parts = torch.tensor_split(vectors, -(-vectors.shape[0] // group))
        # the passes' tensors, allocated once for all groups (the first pass over a fresh
        # allocation of a few MB, page faults included, took twice as long as a reused one)
        size, widths = parts[0].shape[0], [weight.shape[0] for weight in self.weights]
        pre = [vectors.new_empty((size, width, samples)) for width in widths]
        both = [vectors.new_empty((size, 2 * width, samples)) for width in widths[1:]]
        scratch = vectors.new_empty(size * max(widths) * samples)
        return torch.cat([self._quadratic(part, pre, both, scratch) for part in parts])

    @cached_property
    def _inputs_and_ones(self) -> list[torch.Tensor]:
        """``[a_{l-1}^T; 1]: (in + 1, n)`` of every layer with a bias (``a_{l-1}^T`` without), so
        that one matrix product gives ``V_l a_{l-1}^T + v_b`` for a group of vectors."""
        out = []
        for inputs, (_, bias) in zip(self.columns.inputs, self.offsets, strict=True):
            if bias is not None:
                ones = torch.ones((1, inputs.shape[1]), dtype=inputs.dtype, device=inputs.device)
                inputs = torch.cat([inputs, ones])
            out.append(inputs)
        return out

    def _quadratic(
        self,
        vectors: torch.Tensor,
        pre: list[torch.Tensor],
        both: list[torch.Tensor],
        scratch: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`quadratic_form` of one group, ``vectors: (m, p)``, in the kept passes' column
        layout: every R-forward tensor is ``(m, width, n)``, so that a layer's tangent products
        ``V_l a_{l-1}^T + v_b`` of all ``m`` vectors are one ``(m * out, in + 1) @ (in + 1, n)``
        matrix product, and ``W_l R(a_{l-1})^T`` and the bilinear term's ``V_l R(a_{l-1})^T``
        one batched product of the stacked ``[W_l; V_l]``. Sums run along tensors (torch's
        pairwise reduction, as accurate as the float allows), not as long dot products. ``pre``
        (``R(z_l)^T`` of each layer), ``both`` (each layer's but the first) and ``scratch`` hold
        at least ``m`` vectors' tensors and are overwritten."""
        columns = self.columns
        m, samples = vectors.shape[0], self.x.shape[0]
        dims = (1, 2)
        terms: list[torch.Tensor] = []
        with torch.no_grad():
            r_input: torch.Tensor | None = None  # R(a_{l-1})^T: (m, in, n)
            for index, weight in enumerate(self.weights):
                out_features, in_features = weight.shape
                w_start, b_start = self.offsets[index]
                tangent = vectors[:, w_start : w_start + weight.numel()].view(
                    m, out_features, in_features
                )
                if b_start is None:
                    stacked = tangent.reshape(m * out_features, in_features)
                else:
                    bias = vectors[:, b_start : b_start + out_features].view(m, out_features, 1)
                    stacked = torch.cat([tangent, bias], dim=2).view(m * out_features, -1)
                # R(z_l)^T = V_l a_{l-1}^T + v_b + W_l R(a_{l-1})^T
                r_z = pre[index][:m]
                torch.mm(
                    stacked, self._inputs_and_ones[index], out=r_z.view(r_z.shape[:2].numel(), -1)
                )
                if r_input is not None:
                    products = both[index - 1][:m]
                    stacked = torch.cat([weight.expand(m, -1, -1), tangent], dim=1)
                    torch.bmm(stacked, r_input, out=products)
                    r_z += products[:, :out_features]
                    # the layer's bilinear term: 2 delta_l . (V_l R(a_{l-1}))
                    bilinear = products[:, out_features:].mul_(columns.deltas[index])
                    terms.append(2 * bilinear.sum(dim=dims))
                curvature = columns.curvature[index]
                if curvature is not None:  # the activation's curvature: adjoint act'' . z'^2
                    square = torch.mul(r_z, r_z, out=scratch[: r_z.numel()].view_as(r_z))
                    terms.append(square.mul_(curvature).sum(dim=dims))
                first = columns.first[index]
                r_input = r_z if first is None else r_z.mul_(first)  # R(z_l) is used up
            assert r_input is not None
            probabilities = self.column_probabilities
            if probabilities is not None:  # sum_k p_k r_k^2 - (sum_k p_k r_k)^2 per sample
                weighted = scratch[: r_input.numel()].view_as(r_input)
                torch.mul(r_input, probabilities, out=weighted)
                mean = weighted.sum(dim=1)
                spread = weighted.mul_(r_input).sum(dim=dims) - mean.square().sum(dim=1)
                terms.append(spread / samples)
            else:
                terms.append(self.scale * r_input.square().sum(dim=dims))
        return torch.stack(terms).sum(dim=0)


@dataclass(frozen=True)
class _Columns:
    """:class:`SequentialHessian`'s passes at ``theta``, ``(width, n)`` each (samples along the
    columns), layer by layer from the first."""

    inputs: list[torch.Tensor]  # a_{l-1}^T: (in, n) (the first is a view of x)
    first: list[torch.Tensor | None]  # act'(z_l)^T, None where it is one
    second: list[torch.Tensor | None]  # act''(z_l)^T, None where it is zero
    curvature: list[torch.Tensor | None]  # (dL/da_l * act''(z_l))^T, None where act'' is zero
    deltas: list[torch.Tensor]  # delta_l^T = (dL/dz_l)^T
    upstream: list[torch.Tensor]  # (dL/da_{l-1})^T for the layers above the first
    error: torch.Tensor  # (dL/d output)^T: (classes, n)


def _column(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """``tensor.T`` laid out contiguously, or ``None``."""
    return None if tensor is None else tensor.T.contiguous()


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
    mask = torch.empty_like(z)
    torch.gt(z, 0, out=mask)  # relu'(0) = 0, as autograd's threshold_backward; written as floats
    return torch.relu(z), mask, None  # straight away (a bool mask's .to(float) took 8x as long)


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
