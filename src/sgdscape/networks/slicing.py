"""Loss landscapes of any PyTorch model on a 2-D slice of its parameters.

A slice is the affine map ``theta(a, b) = origin + a*d1 + b*d2`` of the flattened
parameters (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"). The
model is evaluated through :func:`torch.func.functional_call` on a *copy* held in
eval mode (dropout off, batch norm on its running statistics), with the parameters
of a whole chunk of grid points stacked and mapped by :func:`torch.func.vmap`. The
user's model, its parameters and buffers are never touched.

The algebra that pays: when the model is an ``nn.Sequential`` whose first module is
``nn.Linear`` or ``nn.ConvNd``, the first layer's output is linear in its parameters,
so ``L0(x; theta0 + a d1 + b d2) = L0(x; theta0) + a L0(x; d1) + b L0(x; d2)``: three
products for the whole grid instead of one per grid point. The generic path is the
fallback (and the oracle in the tests).

Directions (:class:`Directions`) come from :func:`random_directions` (Gaussian, filter-,
layer- or model-normalised), :func:`interpolation_directions` (checkpoints) or
:func:`pca_directions` (a recorded trajectory).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdscape.core.devices import resolve_device
from sgdscape.core.grid import Grid, Plane
from sgdscape.core.landscape import DEFAULT_MEMORY_BUDGET, Landscape
from sgdscape.errors import SgdscapeError, check_choice
from sgdscape.io import Schema, Spec, read_archive, write_atomic

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NORMALIZATIONS = ("filter", "layer", "model", "none")
BACKENDS = ("local", "ray")

#: ``precision`` of a slice: float32, or mixed precision through ``torch.autocast`` (the
#: products in bfloat16 or float16, sums and the loss in float32). Meant for GPUs; on a
#: CPU bfloat16 works but is rarely faster.
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
CPU_CHUNK_BYTES = 64 * 2**20
CPU_BLOCK_BYTES = 4 * 2**20  # an MLP block's widest activation: about the size of the caches
LINEAR_FIRST = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Elementwise modules an MLP may hold between its Linear layers (dropout: eval mode).
ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Identity,
    nn.Dropout,
)
IN_PLACE = {nn.ReLU: torch.relu_, nn.Tanh: torch.tanh_, nn.Sigmoid: torch.sigmoid_}


# ----------------------------------------------------------------------------- parameters


def parameter_layout(model: nn.Module) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """Names and shapes of the model's parameters, in ``named_parameters`` order."""
    named = list(model.named_parameters())
    if not named:
        raise SgdscapeError(f"model {type(model).__name__} has no parameters to slice.")
    return tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """A float32 CPU copy of the model's parameters as one vector ``(p,)``."""
    return torch.cat([p.detach().reshape(-1).float().cpu() for p in model.parameters()])


def _as_flat(value: Any, model: nn.Module, what: str) -> torch.Tensor:
    """``value`` (a module, a state/parameter dict or a flat vector) as a flat ``(p,)`` vector."""
    names, shapes = parameter_layout(model)
    size = sum(int(np.prod(s)) for s in shapes)
    if isinstance(value, nn.Module):
        value = dict(value.named_parameters())
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        if missing:
            raise SgdscapeError(f"{what} lacks parameter(s) {', '.join(missing[:5])} of the model.")
        parts = []
        for name, shape in zip(names, shapes, strict=True):
            tensor = torch.as_tensor(value[name]).detach()
            if tuple(tensor.shape) != shape:
                raise SgdscapeError(
                    f"{what}[{name!r}] has shape {tuple(tensor.shape)}, the model has {shape}."
                )
            parts.append(tensor.reshape(-1).float().cpu())
        return torch.cat(parts)
    flat = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
    flat = flat.detach().reshape(-1).float().cpu()
    if flat.numel() != size:
        raise SgdscapeError(f"{what} has {flat.numel()} values, the model has {size} parameters.")
    return flat.clone()


def unflatten(
    flat: torch.Tensor, names: Sequence[str], shapes: Sequence[tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """Split ``flat (..., p)`` into ``{name: (..., *shape)}`` views."""
    lead = flat.shape[:-1]
    out, start = {}, 0
    for name, shape in zip(names, shapes, strict=True):
        size = int(np.prod(shape))
        out[name] = flat[..., start : start + size].reshape(*lead, *shape)
        start += size
    return out


# ----------------------------------------------------------------------------- directions


@dataclass(frozen=True)
class Directions:
    """A 2-D (or 1-D) slice of parameter space: ``theta(a, b) = origin + a*d1 + b*d2``.

    Attributes:
        origin, d1, d2: float32 CPU vectors ``(p,)`` in ``named_parameters`` order (``d2``
            is zero for a 1-D line).
        names, shapes: the parameter layout the vectors follow.
        labels: axis labels of ``a`` and ``b``.
        explained_variance: for PCA directions, the explained variance ratio of the two
            components; ``None`` otherwise.
        kind: how they were made (``"random/filter"``, ``"interpolation"``, ``"pca"``, ...).
    """

    origin: torch.Tensor
    d1: torch.Tensor
    d2: torch.Tensor
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    labels: tuple[str, str] = ("a", "b")
    explained_variance: tuple[float, float] | None = None
    kind: str = "custom"

    def __post_init__(self) -> None:
        size = sum(int(np.prod(s)) for s in self.shapes)
        for label in ("origin", "d1", "d2"):
            vector = getattr(self, label)
            if tuple(vector.shape) != (size,):
                raise SgdscapeError(
                    f"direction {label} has shape {tuple(vector.shape)}, expected ({size},)."
                )

    @classmethod
    def from_dicts(
        cls,
        model: nn.Module,
        origin: Any,
        d1: Any,
        d2: Any | None = None,
        *,
        labels: tuple[str, str] = ("a", "b"),
    ) -> Directions:
        """Directions from dicts ``{name: tensor}``, modules or flat vectors (``origin`` too)."""
        names, shapes = parameter_layout(model)
        o = _as_flat(origin, model, "origin")
        first = _as_flat(d1, model, "d1")
        second = torch.zeros_like(first) if d2 is None else _as_flat(d2, model, "d2")
        return cls(o, first, second, names, shapes, labels)

    def as_dicts(self) -> tuple[dict[str, torch.Tensor], ...]:
        """``(origin, d1, d2)`` as ``{name: tensor}`` dicts."""
        return tuple(unflatten(v, self.names, self.shapes) for v in (self.origin, self.d1, self.d2))

    @property
    def plane(self) -> Plane:
        """The same slice as a :class:`sgdscape.core.grid.Plane`."""
        return Plane(self.origin, self.d1, self.d2, self.labels)

    def project(self, points: np.ndarray | torch.Tensor) -> np.ndarray:
        """Slice coordinates ``(..., 2)`` of parameter vectors ``(..., p)`` (least squares)."""
        points = np.asarray(points, dtype=np.float64)
        basis = np.stack([self.d1.double().numpy(), self.d2.double().numpy()], axis=1)
        if not np.any(basis[:, 1]):
            basis = basis[:, :1]
        offsets = (points - self.origin.double().numpy()).reshape(-1, basis.shape[0])
        coords = np.linalg.lstsq(basis, offsets.T, rcond=None)[0].T
        if coords.shape[1] == 1:
            coords = np.concatenate([coords, np.zeros_like(coords)], axis=1)
        return coords.reshape(*points.shape[:-1], 2).astype(np.float32)

    def fingerprint(self) -> str:
        """A short hash of the slice (used to match checkpoints to a run)."""
        digest = hashlib.sha256()
        for vector in (self.origin, self.d1, self.d2):
            digest.update(vector.numpy().tobytes())
        digest.update(json.dumps([self.names, self.shapes]).encode())
        return digest.hexdigest()[:16]


def _is_filter_parameter(shape: tuple[int, ...]) -> bool:
    """Weights of linear/conv layers (at least 2-D); biases and norm-layer scales are 1-D."""
    return len(shape) >= 2


def normalize_direction(
    direction: torch.Tensor,
    reference: torch.Tensor,
    names: Sequence[str],
    shapes: Sequence[tuple[int, ...]],
    normalization: str = "filter",
    *,
    include_1d: bool = False,
) -> torch.Tensor:
    """Rescale a flat direction ``(p,)`` to the scale of the parameters ``reference (p,)``.

    - ``"filter"`` (Li et al. 2018): every output filter / neuron (a slice ``[i]`` along
      the first axis of a weight of 2 or more dimensions) is rescaled to the norm of the
      same filter of the weight: ``d[i] <- d[i] / ||d[i]|| * ||w[i]||``.
    - ``"layer"``: every parameter tensor is rescaled to the norm of that tensor.
    - ``"model"``: the whole vector is rescaled to the norm of all parameters.
    - ``"none"``: unchanged.

    Biases and normalisation-layer parameters (1-D tensors) are set to zero in the
    direction by default, as in Li et al.'s ``ignore='biasbn'``; with ``include_1d`` they
    are kept and rescaled tensor-wise to the norm of the parameter (``"filter"`` and
    ``"layer"``). With ``"model"`` and ``"none"`` the 1-D parts are also zeroed unless
    ``include_1d``. Buffers (batch-norm running statistics) never move.
    """
    if normalization not in NORMALIZATIONS:
        raise SgdscapeError(
            f"unknown normalization {normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}."
        )
    d = unflatten(direction.clone().double(), names, shapes)
    w = unflatten(reference.double(), names, shapes)
    for name, shape in zip(names, shapes, strict=True):
        if not _is_filter_parameter(shape) and not include_1d:
            d[name].zero_()
            continue
        if normalization == "filter" and _is_filter_parameter(shape):
            rows_d = d[name].reshape(shape[0], -1)
            rows_w = w[name].reshape(shape[0], -1)
            scale = rows_w.norm(dim=1) / rows_d.norm(dim=1).clamp_min(1e-30)
            d[name].copy_((rows_d * scale[:, None]).reshape(shape))
        elif normalization in ("filter", "layer"):
            d[name].mul_(w[name].norm() / d[name].norm().clamp_min(1e-30))
    flat = torch.cat([d[n].reshape(-1) for n in names])
    if normalization == "model":
        mask = torch.cat(
            [torch.full((int(np.prod(s)),), _is_filter_parameter(s) or include_1d) for s in shapes]
        )
        flat = flat * (reference.double()[mask].norm() / flat.norm().clamp_min(1e-30))
    return flat.float()


def random_directions(
    model: nn.Module,
    *,
    seed: int = 0,
    normalization: str = "filter",
    include_1d: bool = False,
    origin: Any | None = None,
) -> Directions:
    """Two Gaussian directions through ``origin`` (default: the model's parameters).

    Drawn from a ``torch.Generator`` seeded with ``seed`` (never the global state) and
    normalised by :func:`normalize_direction`.
    """
    names, shapes = parameter_layout(model)
    center = flat_parameters(model) if origin is None else _as_flat(origin, model, "origin")
    generator = torch.Generator().manual_seed(int(seed))
    raw = torch.randn(2, center.numel(), generator=generator)
    d1, d2 = (
        normalize_direction(r, center, names, shapes, normalization, include_1d=include_1d)
        for r in raw
    )
    return Directions(
        center,
        d1,
        d2,
        names,
        shapes,
        ("direction 1", "direction 2"),
        kind=f"random/{normalization}",
    )


def interpolation_directions(
    model: nn.Module,
    start: Any,
    end: Any,
    third: Any | None = None,
    *,
    seed: int = 0,
) -> Directions:
    """The plane through checkpoints: ``origin = start``, ``d1 = end - start``.

    ``d2 = third - start`` when a third checkpoint is given; otherwise a filter-normalised
    random direction made orthogonal to ``d1`` and scaled to its norm, so ``(1, 0)`` is
    ``end`` and the second axis shows the landscape around the segment.
    """
    names, shapes = parameter_layout(model)
    a = _as_flat(start, model, "start")
    d1 = _as_flat(end, model, "end") - a
    if third is not None:
        d2 = _as_flat(third, model, "third") - a
        labels = ("towards end", "towards third")
    else:
        generator = torch.Generator().manual_seed(int(seed))
        raw = torch.randn(a.numel(), generator=generator)
        d2 = normalize_direction(raw, a, names, shapes, "filter").double()
        d1d = d1.double()
        if d1d.norm() > 0:
            d2 = d2 - (d2 @ d1d) / (d1d @ d1d) * d1d
            d2 = d2 * (d1d.norm() / d2.norm().clamp_min(1e-30))
        d2 = d2.float()
        labels = ("start → end", "random (orthogonal)")
    return Directions(a, d1, d2, names, shapes, labels, kind="interpolation")


def pca_directions(model: nn.Module, iterates: np.ndarray | torch.Tensor) -> Directions:
    """Top-2 principal components of a trajectory ``(T, p)`` around its final point.

    As Li et al. (2018, section 7): the matrix ``M = iterates - iterates[-1]`` (no other
    centring), its two leading right singular vectors are ``d1, d2`` (unit norm; the sign
    makes the largest-magnitude entry positive), the origin is the final point and
    ``explained_variance`` holds ``s_i^2 / sum(s^2)``.
    """
    names, shapes = parameter_layout(model)
    points = np.asarray(iterates, dtype=np.float64)
    size = sum(int(np.prod(s)) for s in shapes)
    if points.ndim != 2 or points.shape[1] != size or points.shape[0] < 3:
        raise SgdscapeError(
            f"PCA needs a trajectory of at least 3 iterates of shape (T, {size}), "
            f"got {points.shape}."
        )
    final = points[-1]
    matrix = points - final
    _, singular, vt = np.linalg.svd(matrix, full_matrices=False)
    components = vt[:2].copy()
    for row in components:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    energy = singular**2
    total = float(energy.sum()) or 1.0
    ratio = (float(energy[0] / total), float(energy[1] / total))
    labels = (f"PC1 ({ratio[0]:.1%})", f"PC2 ({ratio[1]:.1%})")
    return Directions(
        torch.from_numpy(final.astype(np.float32)),
        torch.from_numpy(components[0].astype(np.float32)),
        torch.from_numpy(components[1].astype(np.float32)),
        names,
        shapes,
        labels,
        explained_variance=ratio,
        kind="pca",
    )


# ----------------------------------------------------------------------------- data


def as_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` from a pair of tensors/arrays or a DataLoader (concatenated once)."""
    if isinstance(data, torch.utils.data.DataLoader):
        xs, ys = [], []
        for batch in data:
            x, y = batch[0], batch[1]
            xs.append(torch.as_tensor(x))
            ys.append(torch.as_tensor(y))
        if not xs:
            raise SgdscapeError("the DataLoader yielded no batches.")
        return torch.cat(xs), torch.cat(ys)
    try:
        x, y = data
    except (TypeError, ValueError):
        raise SgdscapeError(
            f"data must be (x, y) tensors or a DataLoader, got {type(data).__name__}."
        ) from None
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise SgdscapeError(
            f"data x and y must hold the same positive number of samples, got "
            f"{x.shape[0]} and {y.shape[0]}."
        )
    return x, y


def _per_sample_loss(loss_fn: LossFn) -> LossFn:
    """A version of ``loss_fn`` returning one loss per sample ``(B,)``.

    ``loss_fn`` must return the mean loss of a batch; for torch loss modules with a
    ``reduction`` attribute the copy uses ``reduction="none"``, otherwise the loss is
    mapped over samples with ``vmap``.
    """
    if isinstance(loss_fn, nn.Module) and getattr(loss_fn, "reduction", None) == "mean":
        unreduced: Any = copy.copy(loss_fn)  # a loss module: `reduction` is a plain attribute
        unreduced.reduction = "none"

        def per_sample(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            values = unreduced(output, target)
            return values.reshape(values.shape[0], -1).mean(dim=1)

        return per_sample

    def mapped(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.func.vmap(lambda o, t: loss_fn(o[None], t[None]))(output, target)

    return mapped


def _batched_loss(loss_fn: LossFn) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """Per-sample losses of a whole chunk at once, ``(C, B, ...) -> (C, B)``, or ``None``.

    For torch loss modules with ``reduction="mean"`` and no class weights, the chunk's
    outputs are flattened into one big batch and the loss kernel runs once with
    ``reduction="none"`` (much faster than mapping the loss itself over grid points).
    The mean over ``B`` is then the batch loss. Other losses are mapped with ``vmap``.
    """
    if not isinstance(loss_fn, nn.Module) or getattr(loss_fn, "reduction", None) != "mean":
        return None
    if (
        getattr(loss_fn, "weight", None) is not None
        or getattr(loss_fn, "pos_weight", None) is not None
    ):
        return None
    unreduced: Any = copy.copy(loss_fn)  # a loss module: `reduction` is a plain attribute
    unreduced.reduction = "none"
    plain_cross_entropy = (
        type(loss_fn) is nn.CrossEntropyLoss and float(loss_fn.label_smoothing) == 0.0
    )
    ignore_index = int(getattr(loss_fn, "ignore_index", -100))

    def batched(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        chunk, batch = outputs.shape[:2]
        if (
            plain_cross_entropy
            and outputs.dim() == 3
            and target.dim() == 1
            and not target.is_floating_point()
            and not bool((target == ignore_index).any())
        ):
            # logsumexp - logit of the class: ~5x faster than the CE kernel on a CPU
            picked = outputs.gather(2, target.expand(chunk, batch).unsqueeze(2)).squeeze(2)
            return torch.logsumexp(outputs, dim=2) - picked
        targets = target.unsqueeze(0).expand(chunk, *target.shape)
        values = unreduced(
            outputs.reshape(chunk * batch, *outputs.shape[2:]),
            targets.reshape(chunk * batch, *target.shape[1:]),
        )
        return values.reshape(chunk, batch, -1).mean(dim=2)

    return batched


def _loss_name(loss_fn: LossFn) -> str:
    return (
        type(loss_fn).__name__
        if isinstance(loss_fn, nn.Module)
        else getattr(loss_fn, "__name__", "loss")
    )


# ----------------------------------------------------------------------------- evaluator


def _activation_elements(model: nn.Module, x: torch.Tensor) -> int:
    """Elements of every leaf module's output per sample (a memory estimate)."""
    total = [0]

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if torch.is_tensor(output):
            total[0] += output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    except RuntimeError as error:
        message = str(error).splitlines()[0]
        raise SgdscapeError(
            f"the model cannot run on inputs of shape {tuple(x.shape)}: {message}"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    return max(1, total[0] // max(1, x.shape[0]))


class Evaluator:
    """Loss of a model at many parameter vectors: the engine behind every slice.

    Holds a private eval-mode copy of the model and the data on ``device``. Data are
    split into batches of ``batch_size`` samples and grid points into chunks, both sized
    from ``memory_budget``.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        *,
        device: str | torch.device = "cpu",
        batch_size: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        use_algebra: bool = True,
        precision: str = "float32",
    ) -> None:
        self.precision = check_choice("precision", precision, PRECISIONS)
        self.device = resolve_device(device)
        self.names, self.shapes = parameter_layout(model)
        self.n_params = sum(int(np.prod(s)) for s in self.shapes)
        # deepcopy: the user's module (parameters, buffers, training flag) stays untouched
        self.model = copy.deepcopy(model).to(self.device).float().eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.buffers = {k: v for k, v in self.model.named_buffers()}
        self.loss_fn = loss_fn
        self.sample_loss_fn = _per_sample_loss(loss_fn)
        self.batched_loss = _batched_loss(loss_fn)
        x, y = as_tensors(data)
        self.x = x.to(self.device, torch.float32 if x.is_floating_point() else x.dtype)
        self.y = y.to(self.device)
        self.n = int(self.x.shape[0])
        budget = int(memory_budget)
        if budget <= 0:
            raise SgdscapeError(f"memory_budget must be a positive number of bytes, got {budget}.")
        self.budget = budget
        act = _activation_elements(self.model, self.x[: min(self.n, 4)])
        self.bytes_per_point_sample = 4 * 3 * act  # activations + loss temporaries
        if batch_size is None:
            batch_size = max(1, min(self.n, budget // 2 // self.bytes_per_point_sample))
        elif int(batch_size) < 1:
            raise SgdscapeError(f"batch_size must be a positive integer, got {batch_size}.")
        self.batch_size = int(min(self.n, int(batch_size)))
        self.batches = [
            (start, min(start + self.batch_size, self.n))
            for start in range(0, self.n, self.batch_size)
        ]
        per_point = self.bytes_per_point_sample * self.batch_size + 8 * self.n_params
        # on a CPU, chunks whose working set stays near the caches are faster
        working = budget // 2 if self.device.type == "cuda" else min(budget // 2, CPU_CHUNK_BYTES)
        self.chunk = int(max(1, working // per_point))
        self.first = self._first_layer() if use_algebra else None
        # the MLP path writes float32 buffers: mixed precision takes the autocast paths
        use_mlp = self.first is not None and self.precision == "float32"
        self.mlp = self._mlp_layers() if use_mlp else None
        if self.mlp is not None:
            widest = max([m.out_features for _, m in self.mlp if isinstance(m, nn.Linear)] + [1])
            per_point = 4 * widest * self.batch_size
            self.block = (
                self.chunk
                if self.device.type == "cuda"
                else int(max(1, min(self.chunk, CPU_BLOCK_BYTES // per_point)))
            )
            self.chunk = max(1, self.chunk // self.block) * self.block  # whole blocks
        self._scratch: dict[tuple[Any, ...], torch.Tensor] = {}
        self._directions: tuple[Directions, str, tuple[dict[str, torch.Tensor], ...]] | None = None
        self._plain_cross_entropy = (
            type(loss_fn) is nn.CrossEntropyLoss
            and loss_fn.reduction == "mean"
            and loss_fn.weight is None
            and float(loss_fn.label_smoothing) == 0.0
            and self.y.dim() == 1
            and not self.y.is_floating_point()
            and not bool((self.y == loss_fn.ignore_index).any())
        )
        self._first_cache: dict[tuple[bytes | str, ...], list] = {}

    # -- generic path ------------------------------------------------------------------
    def _loss_at(
        self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, per_sample: bool
    ) -> torch.Tensor:
        output = torch.func.functional_call(self.model, {**params, **self.buffers}, (x,))
        return self.sample_loss_fn(output, y) if per_sample else self.loss_fn(output, y)

    def evaluate_points(
        self, points: torch.Tensor, *, per_sample: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Risk ``(C,)`` (and per-sample losses ``(n, C)``) at flat parameters ``(C, p)``."""
        points = points.to(self.device, torch.float32)
        risk = torch.zeros(points.shape[0], dtype=torch.float64, device=self.device)
        samples = torch.empty(self.n, points.shape[0], device=self.device) if per_sample else None
        with torch.no_grad():
            for c0 in range(0, points.shape[0], self.chunk):
                chunk = unflatten(points[c0 : c0 + self.chunk], self.names, self.shapes)
                for s0, s1 in self.batches:
                    x, y = self.x[s0:s1], self.y[s0:s1]
                    if self.batched_loss is not None:
                        outputs = torch.func.vmap(
                            lambda p, x=x: torch.func.functional_call(
                                self.model, {**p, **self.buffers}, (x,)
                            )
                        )(chunk)
                        values = self.batched_loss(outputs, y)
                        values = values if per_sample else values.mean(dim=1)
                    else:
                        values = torch.func.vmap(
                            lambda p, x=x, y=y: self._loss_at(p, x, y, per_sample)
                        )(chunk)
                    self._accumulate(risk, samples, values, c0, s0, s1, per_sample)
        return (risk / self.n).float(), samples

    def _accumulate(
        self,
        risk: torch.Tensor,
        samples: torch.Tensor | None,
        values: torch.Tensor,
        c0: int,
        s0: int,
        s1: int,
        per_sample: bool,
    ) -> None:
        c1 = c0 + values.shape[0]
        if per_sample:
            risk[c0:c1] += values.double().sum(dim=1)
            assert samples is not None
            samples[s0:s1, c0:c1] = values.T.float()
        else:
            risk[c0:c1] += values.double() * (s1 - s0)

    def _on_device(self, directions: Directions) -> tuple[str, tuple[dict[str, torch.Tensor], ...]]:
        """The slice's fingerprint and ``(origin, d1, d2)`` as ``{name: tensor}`` on the
        device, computed once per :class:`Directions` object (a slice calls this per chunk)."""
        cached = self._directions
        if cached is None or cached[0] is not directions:
            parts = tuple(
                {k: v.to(self.device) for k, v in part.items()} for part in directions.as_dicts()
            )
            cached = self._directions = (directions, directions.fingerprint(), parts)
        return cached[1], cached[2]

    # -- the algebra that pays ---------------------------------------------------------
    def _first_layer(self) -> tuple[str, nn.Module, nn.Module] | None:
        if not isinstance(self.model, nn.Sequential) or len(self.model) < 2:
            return None
        name, first = next(iter(self.model.named_children()))
        if type(first) not in LINEAR_FIRST:
            return None
        rest = self.model[1:]
        return name, first, rest

    def _mlp_layers(self) -> list[tuple[str, nn.Module]] | None:
        """``[(name, module), ...]`` when the model is an MLP the feature-major path runs.

        That is an ``nn.Sequential`` of ``nn.Linear`` layers (the first one included) and
        elementwise modules (:data:`ELEMENTWISE`), on inputs ``(n, features)``, with a loss
        that has a batched form.
        """
        if self.batched_loss is None or self.x.dim() != 2:
            return None
        layers = list(self.model.named_children())
        if not isinstance(layers[0][1], nn.Linear):
            return None
        if not all(type(m) is nn.Linear or type(m) in ELEMENTWISE for _, m in layers[1:]):
            return None
        return layers

    def _evaluate_mlp(
        self, directions: Directions, coords: torch.Tensor, per_sample: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first-layer algebra for an MLP, with activations kept feature-major.

        Every activation of a block of grid points is a ``(points, features, samples)``
        tensor: the first layer is ``z0 + a z1 + b z2`` (one ``(points, 3) @ (3, width *
        samples)`` product for the block, written into a reused buffer), each later
        ``Linear`` one ``baddbmm`` with the block's stacked weights ``W0 + a dW1 + b dW2``
        (``(points, out, in) @ (points, in, samples)``: wide products, unlike
        ``(samples, in) @ (in, out)`` with ``out`` = 10 classes), and the cross-entropy one
        fused call over the class axis that vectorises along the samples. Blocks are sized
        so that an activation stays about cache-sized on a CPU.
        """
        assert self.mlp is not None
        fingerprint, (origin, d1, d2) = self._on_device(directions)
        first_name = self.mlp[0][0]
        key = (fingerprint, "feature-major")
        products = self._first_cache.get(key)
        with torch.no_grad():
            if products is None:
                products = []
                for s0, s1 in self.batches:
                    xt = self.x[s0:s1].T  # (features, samples)
                    parts = []
                    for part in (origin, d1, d2):
                        weight = part[f"{first_name}.weight"]
                        bias = part.get(f"{first_name}.bias")
                        z = weight @ xt if bias is None else torch.addmm(bias[:, None], weight, xt)
                        parts.append(z.reshape(-1))  # (width * samples,)
                    products.append(torch.stack(parts))  # (3, width * samples)
                cached_bytes = sum(z.numel() * 4 for z in products)
                if cached_bytes <= self.budget // 4:
                    self._first_cache = {key: products}
            coords = coords.to(self.device)
            # (1, a, b) per point: the first layer is one product (C, 3) @ (3, width * samples)
            ones = torch.ones(coords.shape[0], 1, dtype=coords.dtype, device=self.device)
            weights = torch.cat([ones, coords], dim=1)
            total = coords.shape[0]
            risk = torch.zeros(total, dtype=torch.float64, device=self.device)
            samples = torch.empty(self.n, total, device=self.device) if per_sample else None
            first_layer = self.mlp[0][1]
            assert isinstance(first_layer, nn.Linear)  # as _mlp_layers chose
            width = first_layer.out_features
            scratch = self._scratch

            def space(tag: str, count: int, *shape: int) -> torch.Tensor:
                """A ``(count, *shape)`` buffer reused across blocks and calls (warm memory)."""
                full = scratch.get((tag, shape))
                if full is None:
                    full = torch.empty(self.block, *shape, device=self.device)
                    scratch[(tag, shape)] = full
                return full[:count]

            for c0 in range(0, total, self.block):
                ab = coords[c0 : c0 + self.block]
                count = ab.shape[0]
                a, b = ab[:, 0].reshape(count, 1, 1), ab[:, 1].reshape(count, 1, 1)
                stacked: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
                for name, module in self.mlp[1:]:
                    if isinstance(module, nn.Linear):
                        key_w, key_b = f"{name}.weight", f"{name}.bias"
                        weight = origin[key_w] + a * d1[key_w] + b * d2[key_w]  # (C, out, in)
                        bias = None
                        if key_b in origin:
                            bias = (origin[key_b] + a * d1[key_b] + b * d2[key_b]).transpose(1, 2)
                        stacked[name] = (weight, bias)  # bias: (C, out, 1)
                mix = weights[c0 : c0 + self.block]
                for (s0, s1), z012 in zip(self.batches, products, strict=True):
                    size = s1 - s0
                    h = torch.mm(mix, z012, out=space("first", count, width * size))
                    h = h.view(count, width, size)
                    for name, module in self.mlp[1:]:
                        if name in stacked:
                            weight, bias = stacked[name]
                            out = space(name, count, weight.shape[1], size)
                            h = (
                                torch.bmm(weight, h, out=out)
                                if bias is None
                                else torch.baddbmm(bias, weight, h, out=out)
                            )
                        elif type(module) in IN_PLACE:
                            IN_PLACE[type(module)](h)
                        elif not isinstance(module, nn.Identity | nn.Dropout):
                            h = module(h)
                    values = self._feature_major_loss(h, self.y[s0:s1], space)  # (C, samples)
                    self._accumulate(
                        risk,
                        samples,
                        values if per_sample else values.mean(dim=1),
                        c0,
                        s0,
                        s1,
                        per_sample,
                    )
        return (risk / self.n).float(), samples

    def _feature_major_loss(
        self,
        outputs: torch.Tensor,
        y: torch.Tensor,
        space: Callable[..., torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Per-sample losses ``(C, B)`` of feature-major outputs ``(C, classes, B)``.

        Plain cross-entropy is a log-softmax along the class axis (vectorised along the
        samples) and a gather of the targets, both written into buffers from ``space``
        (reused across blocks: a fresh buffer of a few MB per block would be mapped and
        page-faulted every time); other losses see the outputs as ``(C, B, classes)``.
        """
        if self._plain_cross_entropy:
            count, classes, size = outputs.shape
            targets = y.long().view(1, 1, size).expand(count, 1, size)
            if space is None:
                log_p = torch.log_softmax(outputs, 1)
                return -log_p.gather(1, targets)[:, 0]
            log_p = torch.log_softmax(outputs, 1, out=space("log-softmax", count, classes, size))
            picked = torch.gather(log_p, 1, targets, out=space("picked", count, 1, size))
            return picked[:, 0].neg_()
        assert self.batched_loss is not None
        return self.batched_loss(outputs.transpose(1, 2), y)

    def evaluate_plane(
        self, directions: Directions, coords: torch.Tensor, *, per_sample: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Risk ``(C,)`` (and ``(n, C)``) at slice coordinates ``coords (C, 2)``, in the
        evaluator's precision (:data:`PRECISIONS`)."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return self._evaluate_plane(directions, coords, per_sample)
        with torch.autocast(self.device.type, dtype=dtype):
            risk, samples = self._evaluate_plane(directions, coords, per_sample)
        return risk.float(), None if samples is None else samples.float()

    def _evaluate_plane(
        self, directions: Directions, coords: torch.Tensor, per_sample: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        coords = coords.to(torch.float32)
        if self.mlp is not None:
            return self._evaluate_mlp(directions, coords, per_sample)
        if self.first is None:
            points = directions.origin + coords @ torch.stack([directions.d1, directions.d2])
            return self.evaluate_points(points, per_sample=per_sample)
        name, first, rest = self.first
        prefix = f"{name}."
        fingerprint, (origin, d1, d2) = self._on_device(directions)
        first_keys = [k for k in origin if k.startswith(prefix)]
        rest_names = [k for k in self.names if not k.startswith(prefix)]
        rest_buffers = {k: v for k, v in self.buffers.items() if not k.startswith(prefix)}
        coords = coords.to(self.device)
        risk = torch.zeros(coords.shape[0], dtype=torch.float64, device=self.device)
        samples = torch.empty(self.n, coords.shape[0], device=self.device) if per_sample else None

        def layer_output(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            local = {k[len(prefix) :]: params[k] for k in first_keys}
            return torch.func.functional_call(first, local, (x,))

        def tail(
            rest_params: dict[str, torch.Tensor], z: torch.Tensor, y: torch.Tensor
        ) -> torch.Tensor:
            output = torch.func.functional_call(rest, {**rest_params, **rest_buffers}, (z,))
            return self.sample_loss_fn(output, y) if per_sample else self.loss_fn(output, y)

        key = (fingerprint,)
        products = self._first_cache.get(key)
        with torch.no_grad():
            if products is None:
                # three products per data batch, once for the whole grid
                products = []
                for s0, s1 in self.batches:
                    x = self.x[s0:s1]
                    z0 = layer_output(origin, x)
                    # the direction's first layer is linear in (W, b) with no offset
                    z1 = layer_output(d1, x).reshape(1, -1)
                    z2 = layer_output(d2, x).reshape(1, -1)
                    products.append((z0, torch.cat([z1, z2])))
                cached_bytes = sum(3 * z[0].numel() * 4 for z in products)
                if cached_bytes <= self.budget // 4:
                    self._first_cache = {key: products}
            for c0 in range(0, coords.shape[0], self.chunk):
                ab = coords[c0 : c0 + self.chunk]
                a, b = ab[:, 0], ab[:, 1]
                rest_params = {
                    k: origin[k]
                    + a.reshape(-1, *[1] * origin[k].dim()) * d1[k]
                    + b.reshape(-1, *[1] * origin[k].dim()) * d2[k]
                    for k in rest_names
                }
                for (s0, s1), (z0, z12) in zip(self.batches, products, strict=True):
                    y = self.y[s0:s1]
                    # z0 + a*z1 + b*z2 for the whole chunk in one pass: (C, B, ...)
                    z = torch.addmm(z0.reshape(1, -1), ab, z12).reshape(-1, *z0.shape)
                    if self.batched_loss is not None:
                        outputs = torch.func.vmap(
                            lambda p, zz: torch.func.functional_call(
                                rest, {**p, **rest_buffers}, (zz,)
                            )
                        )(rest_params, z)
                        values = self.batched_loss(outputs, y)
                        values = values if per_sample else values.mean(dim=1)
                    else:
                        values = torch.func.vmap(lambda p, zz, y=y: tail(p, zz, y))(rest_params, z)
                    self._accumulate(risk, samples, values, c0, s0, s1, per_sample)
        return (risk / self.n).float(), samples


# ----------------------------------------------------------------------------- slicing


def _as_grid(grid: Grid | int | None) -> Grid:
    if grid is None:
        return Grid.square(41, -1.0, 1.0)
    if isinstance(grid, Grid):
        return grid
    if isinstance(grid, int) and not isinstance(grid, bool):
        return Grid.square(grid, -1.0, 1.0)
    raise SgdscapeError(f"grid must be a Grid or a number of points per axis, got {grid!r}.")


def grid_coords(grid: Grid) -> torch.Tensor:
    """Slice coordinates of every grid point, ``(G2*G1, 2)``, rows (w2) major."""
    w1, w2 = grid.axes()
    b, a = np.meshgrid(w2, w1, indexing="ij")
    return torch.from_numpy(np.stack([a.reshape(-1), b.reshape(-1)], axis=1))


@dataclass
class ChunkPlan:
    """Grid points split into chunks, with an optional checkpoint directory."""

    coords: torch.Tensor
    chunk: int
    checkpoint_dir: Path | None = None
    fingerprint: str = ""
    per_sample: bool = False
    starts: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.starts = list(range(0, self.coords.shape[0], self.chunk))

    def chunk_coords(self, index: int) -> torch.Tensor:
        start = self.starts[index]
        return self.coords[start : start + self.chunk]

    def path(self, index: int) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        return self.checkpoint_dir / f"chunk_{index:05d}.npz"

    def prepare(self) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """Create the checkpoint directory; return the chunks already finished there."""
        if self.checkpoint_dir is None:
            return {}
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        manifest = self.checkpoint_dir / "manifest.json"
        wanted = {
            "fingerprint": self.fingerprint,
            "chunk": self.chunk,
            "points": int(self.coords.shape[0]),
            "per_sample": self.per_sample,
        }
        if manifest.exists():
            try:
                found = json.loads(manifest.read_text())
            except (OSError, UnicodeDecodeError, ValueError, RecursionError):
                raise SgdscapeError(
                    f"checkpoint directory {str(self.checkpoint_dir)!r} holds an unreadable "
                    "manifest.json; use an empty directory."
                ) from None
            if found != wanted:
                raise SgdscapeError(
                    f"checkpoint directory {str(self.checkpoint_dir)!r} holds chunks of another "
                    "slice (different model, data, directions, grid, chunk size, precision or per-sample "
                    "setting); use an "
                    "empty directory."
                )
        else:
            _atomic_write(manifest, json.dumps(wanted).encode())
        done = {}
        for index in range(len(self.starts)):
            path = self.path(index)
            if path is not None and path.exists():
                chunk = self._load_chunk(index, path)
                if chunk is not None:
                    done[index] = chunk
        return done

    def _load_chunk(self, index: int, path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
        """A finished chunk, checked like any archive; ``None`` (recompute it) if damaged."""
        schema = Schema(
            "checkpoint chunk",
            {"risk": Spec(("c",)), "samples": Spec(("n", "c"), required=self.per_sample)},
            {},
            "a run with --checkpoint",
            "it is recomputed",
            fixed={"c": int(self.chunk_coords(index).shape[0])},
        )
        try:
            arrays = read_archive(path, schema)
        except SgdscapeError as error:
            log.warning("%s; recomputing that chunk.", str(error).rstrip("."))
            return None
        return arrays["risk"], arrays.get("samples")

    def save(self, index: int, risk: np.ndarray, samples: np.ndarray | None) -> None:
        path = self.path(index)
        if path is None:
            return
        # Any: np.savez's stubs would take a dict[str, ndarray] value as its allow_pickle flag
        arrays: dict[str, Any] = {"risk": risk}
        if samples is not None:
            arrays["samples"] = samples
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _atomic_write(path, buffer.getvalue())


def _atomic_write(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file renamed on success."""
    write_atomic(path, payload)


def _fingerprint(evaluator: Evaluator, directions: Directions, coords: torch.Tensor) -> str:
    digest = hashlib.sha256(directions.fingerprint().encode())
    digest.update(coords.numpy().tobytes())
    digest.update(evaluator.x.cpu().numpy().tobytes()[: 1 << 20])
    digest.update(str((evaluator.n, tuple(evaluator.x.shape))).encode())
    if evaluator.precision != "float32":  # float32 keeps the fingerprints it always had
        digest.update(evaluator.precision.encode())
    return digest.hexdigest()[:16]


def run_local(
    evaluator: Evaluator,
    directions: Directions,
    plan: ChunkPlan,
    done: dict[int, tuple[np.ndarray, np.ndarray | None]],
    progress: Progress | None,
) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
    """Compute the missing chunks in this process, checkpointing each one."""
    total = len(plan.starts)
    for index in range(total):
        if index in done:
            continue
        risk, samples = evaluator.evaluate_plane(
            directions, plan.chunk_coords(index), per_sample=plan.per_sample
        )
        result = (risk.cpu().numpy(), None if samples is None else samples.cpu().numpy())
        plan.save(index, *result)
        done[index] = result
        if progress is not None:
            progress(len(done), total)
    return done


def slice_landscape(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    directions: Directions,
    grid: Grid | int | None = None,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    backend: str | Any = "local",
    progress: Progress | None = None,
    per_sample: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    checkpoint_dir: str | Path | None = None,
    chunk_points: int | None = None,
    use_algebra: bool = True,
    precision: str = "float32",
) -> Landscape:
    """The loss of ``model`` on the 2-D slice ``directions`` over ``grid``.

    Args:
        model: any ``nn.Module`` taking one input tensor; never modified (it is copied and
            evaluated in eval mode).
        loss_fn: ``loss_fn(output, target)`` returning the *mean* loss of a batch (e.g.
            ``nn.CrossEntropyLoss()``).
        data: ``(x, y)`` tensors or a ``DataLoader``; moved to ``device`` once.
        directions: the slice (:func:`random_directions`, :func:`pca_directions`, ...).
        grid: a :class:`Grid` of slice coordinates ``(a, b)``, or a number of points per
            axis on ``[-1, 1]^2`` (default 41).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        batch_size: samples per evaluation batch (default: sized from ``memory_budget``).
        backend: ``"local"``, ``"ray"`` or a :class:`sgdscape.core.distributed.RayBackend`.
        progress: called as ``progress(done_chunks, total_chunks)``.
        per_sample: also keep every sample's loss, ``sample_loss: (n, G2, G1)``.
        memory_budget: bytes of working memory per worker.
        checkpoint_dir: save every finished chunk there; a rerun resumes from them.
        chunk_points: grid points per chunk (default: sized from ``memory_budget``).
        use_algebra: use the first-layer algebra when the model allows it.
        precision: ``"float32"``, or ``"bfloat16"`` / ``"float16"`` for mixed precision
            through ``torch.autocast`` (for GPUs: the products in half precision, the
            losses summed in float32; expect about 1% relative error).

    Returns:
        A :class:`~sgdscape.core.landscape.Landscape`: ``w1 (G1,)``, ``w2 (G2,)`` slice
        coordinates, ``risk (G2, G1)``, ``sample_loss (n, G2, G1) | None``.
    """
    grid = _as_grid(grid)
    if (tuple(directions.names), directions.shapes) != parameter_layout(model):
        raise SgdscapeError(
            "the directions were made for another model (parameter layout differs)."
        )
    evaluator = Evaluator(
        model,
        loss_fn,
        data,
        device=device,
        batch_size=batch_size,
        memory_budget=memory_budget,
        use_algebra=use_algebra,
        precision=precision,
    )
    coords = grid_coords(grid)
    chunk = int(chunk_points) if chunk_points else evaluator.chunk
    if chunk < 1:
        raise SgdscapeError(f"chunk_points must be a positive integer, got {chunk_points}.")
    plan = ChunkPlan(
        coords,
        chunk,
        None if checkpoint_dir is None else Path(checkpoint_dir),
        per_sample=per_sample,
    )
    plan.fingerprint = _fingerprint(evaluator, directions, coords)
    done = plan.prepare()
    if done and progress is not None:
        progress(len(done), len(plan.starts))
    if backend == "local":
        done = run_local(evaluator, directions, plan, done, progress)
    else:
        from sgdscape.core.distributed import RayBackend

        if isinstance(backend, str):
            if backend != "ray":
                raise SgdscapeError(
                    f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}."
                )
            backend = RayBackend()
        if not isinstance(backend, RayBackend):
            raise SgdscapeError(f"backend must be 'local', 'ray' or a RayBackend, got {backend!r}.")
        factory = functools.partial(
            Evaluator,
            copy.deepcopy(evaluator.model).cpu(),  # actors pick their own device
            loss_fn,
            (evaluator.x.cpu(), evaluator.y.cpu()),
            batch_size=evaluator.batch_size,
            memory_budget=memory_budget,
            use_algebra=use_algebra,
            precision=precision,
        )
        done = backend.run(factory, directions, plan, done, progress)
    rows, columns = grid.shape
    risk = np.concatenate([done[i][0] for i in range(len(plan.starts))])
    samples = None
    if per_sample:
        samples = np.concatenate([done[i][1] for i in range(len(plan.starts))], axis=1)
        samples = samples.reshape(evaluator.n, rows, columns)
    w1, w2 = grid.axes()
    return Landscape(
        w1=w1,
        w2=w2,
        risk=risk.reshape(rows, columns),
        sample_loss=samples,
        labels=directions.labels,
        loss=_loss_name(loss_fn),
        model=type(model).__name__,
        plane=directions.plane,
    )


@dataclass(frozen=True)
class LineLandscape:
    """Loss along the line ``theta(t) = start + t * (end - start)``.

    Attributes:
        t: ``(G,)`` interpolation coefficients (0 = start, 1 = end).
        risk: ``(G,)`` loss there.
    """

    t: np.ndarray
    risk: np.ndarray
    label: str = "start → end"


def line_landscape(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    start: Any,
    end: Any,
    *,
    points: int = 51,
    t_range: tuple[float, float] = (-0.5, 1.5),
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> LineLandscape:
    """1-D linear interpolation between two parameter sets (modules, dicts or vectors)."""
    if int(points) < 2:
        raise SgdscapeError(f"a line needs at least 2 points, got {points}.")
    names, shapes = parameter_layout(model)
    a = _as_flat(start, model, "start")
    d = _as_flat(end, model, "end") - a
    directions = Directions(a, d, torch.zeros_like(d), names, shapes, ("t", ""), kind="line")
    evaluator = Evaluator(
        model, loss_fn, data, device=device, batch_size=batch_size, memory_budget=memory_budget
    )
    t = np.linspace(t_range[0], t_range[1], int(points), dtype=np.float32)
    coords = torch.from_numpy(np.stack([t, np.zeros_like(t)], axis=1))
    risk, _ = evaluator.evaluate_plane(directions, coords)
    return LineLandscape(t, risk.cpu().numpy())
