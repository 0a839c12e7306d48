"""Slice directions: the plane ``theta(a, b) = origin + a*d1 + b*d2`` and the ways to choose it.

:class:`Directions` come from :func:`random_directions` (Gaussian, filter-, layer- or
model-normalised, Li et al. 2018), :func:`interpolation_directions` (checkpoints) or
:func:`pca_directions` (a recorded trajectory); Hessian eigenvectors are in
:func:`sgdscape.networks.curvature.hessian_directions`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdscape.core.grid import Plane
from sgdscape.errors import SgdscapeError
from sgdscape.networks.parameters import as_flat, flat_parameters, parameter_layout, unflatten

NORMALIZATIONS = ("filter", "layer", "model", "none")


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
        o = as_flat(origin, model, "origin")
        first = as_flat(d1, model, "d1")
        second = torch.zeros_like(first) if d2 is None else as_flat(d2, model, "d2")
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
        result: np.ndarray = coords.reshape(*points.shape[:-1], 2).astype(np.float32)
        return result

    def fingerprint(self) -> str:
        """A short hash of the slice (used to match checkpoints to a run)."""
        digest = hashlib.sha256()
        for vector in (self.origin, self.d1, self.d2):
            digest.update(vector.numpy().tobytes())
        digest.update(json.dumps([self.names, self.shapes]).encode())
        return digest.hexdigest()[:16]


def is_filter_parameter(shape: tuple[int, ...]) -> bool:
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
        if not is_filter_parameter(shape) and not include_1d:
            d[name].zero_()
            continue
        if normalization == "filter" and is_filter_parameter(shape):
            rows_d = d[name].reshape(shape[0], -1)
            rows_w = w[name].reshape(shape[0], -1)
            scale = rows_w.norm(dim=1) / rows_d.norm(dim=1).clamp_min(1e-30)
            d[name].copy_((rows_d * scale[:, None]).reshape(shape))
        elif normalization in ("filter", "layer"):
            d[name].mul_(w[name].norm() / d[name].norm().clamp_min(1e-30))
    flat = torch.cat([d[n].reshape(-1) for n in names])
    if normalization == "model":
        mask = torch.cat(
            [torch.full((int(np.prod(s)),), is_filter_parameter(s) or include_1d) for s in shapes]
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
    center = flat_parameters(model) if origin is None else as_flat(origin, model, "origin")
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
    a = as_flat(start, model, "start")
    d1 = as_flat(end, model, "end") - a
    if third is not None:
        d2 = as_flat(third, model, "third") - a
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
