"""Parameter grids and 2-D slices of parameter space.

A :class:`Grid` is the window of the two plotted coordinates ``(a, b)``. A
:class:`Plane` maps them to full parameter vectors: ``w(a, b) = origin + a*d1 + b*d2``.
For a two-parameter model the default plane is the identity (``a = w1``, ``b = w2``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.errors import SgdscapeError, check_int, check_number, check_range

MAX_GRID_POINTS = 4096


@dataclass(frozen=True)
class Grid:
    """A regular grid ``w1 x w2`` given as ``(low, high, points)`` per axis, as ``np.linspace``.

    Axes are float32 ``np.linspace`` values, exactly as the seed notebook builds them.
    Rows of every landscape are ``w2`` and columns ``w1``.
    """

    w1: tuple[float, float, int] = (-3.0, 3.0, 100)
    w2: tuple[float, float, int] = (-3.0, 3.0, 100)

    def __post_init__(self) -> None:
        for label in ("w1", "w2"):
            spec = getattr(self, label)
            try:
                low, high, points = spec
            except (TypeError, ValueError):
                raise SgdscapeError(
                    f"grid axis {label} must be (low, high, points), got {spec!r}."
                ) from None
            low, high = check_range(f"grid range of {label}", (low, high))
            points = check_int(f"grid points of {label}", points, low=2, high=MAX_GRID_POINTS)
            object.__setattr__(self, label, (low, high, points))

    @classmethod
    def square(cls, points: int = 100, low: float = -3.0, high: float = 3.0) -> Grid:
        """The same axis for ``w1`` and ``w2``."""
        return cls((low, high, points), (low, high, points))

    @property
    def shape(self) -> tuple[int, int]:
        """``(G2, G1)``: rows are w2, columns w1."""
        return (self.w2[2], self.w1[2])

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The coordinates ``(w1: (G1,), w2: (G2,))`` as float32 arrays."""
        return tuple(  # type: ignore[return-value]
            np.linspace(low, high, points, dtype=np.float32)
            for low, high, points in (self.w1, self.w2)
        )


@dataclass(frozen=True)
class Plane:
    """The affine map ``w(a, b) = origin + a*d1 + b*d2`` from plot coordinates to parameters.

    Attributes:
        origin, d1, d2: float32 tensors of shape ``(p,)``.
        labels: axis labels for ``a`` and ``b``.
    """

    origin: torch.Tensor
    d1: torch.Tensor
    d2: torch.Tensor
    labels: tuple[str, str] = ("w1", "w2")

    def __post_init__(self) -> None:
        shapes = {tuple(t.shape) for t in (self.origin, self.d1, self.d2)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise SgdscapeError(f"origin, d1 and d2 must share one shape (p,), got {shapes}.")

    @property
    def is_axis_aligned(self) -> bool:
        """True when ``d1`` and ``d2`` are two distinct unit coordinate vectors."""
        return _unit_index(self.d1) is not None and _unit_index(self.d2) is not None

    @classmethod
    def through(
        cls,
        param_names: Sequence[str],
        axes: tuple[str, str] | None = None,
        fixed: Mapping[str, float] | None = None,
    ) -> Plane:
        """The axis-aligned slice through parameters ``axes`` with the others at ``fixed``.

        Parameters not named in ``fixed`` are held at 0.
        """
        names = list(param_names)
        if len(names) < 2:
            raise SgdscapeError("a landscape needs a model with at least two parameters.")
        axes = axes or (names[0], names[1])
        for name in [*axes, *(fixed or {})]:
            if name not in names:
                raise SgdscapeError(
                    f"{name!r} is not a parameter of this model; its parameters are: "
                    f"{', '.join(names)}."
                )
        if axes[0] == axes[1]:
            raise SgdscapeError(f"the two slice axes must differ, got {axes[0]!r} twice.")
        origin = torch.zeros(len(names))
        for name, value in (fixed or {}).items():
            if name in axes:
                raise SgdscapeError(f"{name!r} is a slice axis and cannot also be fixed.")
            origin[names.index(name)] = check_number(f"slice_fixed {name}", value)
        d1 = torch.zeros(len(names))
        d2 = torch.zeros(len(names))
        d1[names.index(axes[0])] = 1.0
        d2[names.index(axes[1])] = 1.0
        return cls(origin, d1, d2, (axes[0], axes[1]))

    def points(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Parameters at the grid ``b (G2,) x a (G1,)``: shape ``(G2, G1, p)``."""
        origin, d1, d2 = (t.to(a.device, a.dtype) for t in (self.origin, self.d1, self.d2))
        i1, i2 = _unit_index(d1), _unit_index(d2)
        if i1 is not None and i2 is not None:
            # exact placement: w[..., i1] = a, w[..., i2] = b (no rounding from the products)
            w = origin.expand(b.shape[0], a.shape[0], -1).clone()
            w[..., i1] = a[None, :]
            w[..., i2] = b[:, None]
            return w
        return origin + a[None, :, None] * d1 + b[:, None, None] * d2

    def project(self, w: torch.Tensor) -> torch.Tensor:
        """Plane coordinates ``(..., 2)`` of parameters ``w: (..., p)`` (least squares)."""
        i1, i2 = _unit_index(self.d1), _unit_index(self.d2)
        if i1 is not None and i2 is not None:
            return torch.stack([w[..., i1], w[..., i2]], dim=-1)
        basis = torch.stack([self.d1, self.d2], dim=1).to(w.device, w.dtype)  # (p, 2)
        offset = w - self.origin.to(w.device, w.dtype)
        solution = torch.linalg.lstsq(basis, offset.reshape(-1, basis.shape[0]).T).solution
        coordinates: torch.Tensor = solution.T.reshape(*w.shape[:-1], 2)
        return coordinates


def _unit_index(direction: torch.Tensor) -> int | None:
    nonzero = torch.nonzero(direction).flatten()
    if nonzero.numel() == 1 and float(direction[nonzero[0]]) == 1.0:
        return int(nonzero[0])
    return None
