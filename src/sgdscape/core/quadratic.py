"""The local quadratic model at an iterate, as data to draw: eigen-axes and a level-set ellipse.

Given a ``(2, 2)`` Hessian (:class:`sgdscape.core.curvature.CurvatureMap` at a point, or a
2-parameter :class:`sgdscape.core.curvature.Curvature` row), the gradient and the loss at a
point, :func:`quadratic_model` returns ``q(d) = value + g.d + d^T H d / 2`` with its
principal axes, its ellipse when convex and its stationary (Newton) point. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.errors import SgdscapeError, check_int, check_positive


@dataclass(frozen=True)
class QuadraticModel:
    """The local quadratic model ``q(d) = value + g.d + d^T H d / 2`` at ``center``, as data to draw.

    Attributes:
        center: ``(2,)`` the iterate (plane coordinates).
        value: the loss at the center.
        gradient: ``(2,)``.
        hessian: ``(2, 2)``.
        eigenvalues: ``(2,)`` ascending; eigenvectors: ``(2, 2)``, column k for eigenvalue k.
        axes: ``(2, 2, 2)``: ``axes[k]`` is the segment ``[center - h_k v_k, center + h_k v_k]``
            along eigenvector k with half-length ``h_k = radius / sqrt(|lambda_k|)`` (a flat
            direction, ``|lambda_k| <= tol``, gets ``h_k = radius / sqrt(tol)``, capped by
            ``max_half_length``).
        ellipse: ``(n_points, 2)`` the closed curve ``{center + h_1 cos(t) v_1 + h_2 sin(t) v_2}``;
            when both eigenvalues are > tol this is the level set ``d^T H d / 2 = radius^2 / 2``
            of the quadratic part. ``None`` when the Hessian is not positive definite.
        newton_point: ``(2,)`` the quadratic's stationary point ``center - H^{-1} g`` (``None``
            when ``H`` is singular within tol).
    """

    center: np.ndarray
    value: float
    gradient: np.ndarray
    hessian: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    axes: np.ndarray
    ellipse: np.ndarray | None
    newton_point: np.ndarray | None

    def evaluate(self, points: np.ndarray) -> np.ndarray:
        """``q`` at ``points: (..., 2)``, shape ``(...)``."""
        d = np.asarray(points, dtype=np.float64) - self.center
        q: np.ndarray = (
            self.value
            + d @ self.gradient
            + 0.5 * np.einsum("...i,ij,...j->...", d, self.hessian, d)
        )
        return q


def quadratic_model(
    hessian: np.ndarray | torch.Tensor,
    gradient: np.ndarray | torch.Tensor,
    value: float,
    center: np.ndarray | torch.Tensor | tuple[float, float] = (0.0, 0.0),
    *,
    radius: float = 1.0,
    tol: float = 1e-9,
    max_half_length: float = 10.0,
    n_points: int = 100,
) -> QuadraticModel:
    """The local quadratic model at an iterate: eigen-axes and (if convex) a level-set ellipse.

    Args:
        hessian: ``(2, 2)`` (e.g. :attr:`CurvatureMap.hessian` at a point or a 2-parameter
            :attr:`Curvature.risk_hessian` row).
        gradient: ``(2,)``; value: the loss at ``center``.
        center: ``(2,)`` where the model is taken.
        radius: the axes' half-lengths are ``radius / sqrt(|lambda|)`` (a sqrt of loss units).
        n_points: points on the ellipse.
    """
    h = np.asarray(hessian, dtype=np.float64)
    g = np.asarray(gradient, dtype=np.float64)
    c = np.asarray(center, dtype=np.float64)
    if h.shape != (2, 2) or g.shape != (2,) or c.shape != (2,):
        raise SgdscapeError(
            f"quadratic_model takes hessian (2, 2), gradient (2,), center (2,); "
            f"got {h.shape}, {g.shape}, {c.shape}."
        )
    if not (np.isfinite(h).all() and np.isfinite(g).all() and np.isfinite(c).all()):
        raise SgdscapeError("quadratic_model needs finite hessian, gradient and center values.")
    check_positive("radius", radius)
    n_points = check_int("n_points", n_points, low=3)
    h = 0.5 * (h + h.T)
    values, vectors = np.linalg.eigh(h)
    half = np.minimum(radius / np.sqrt(np.maximum(np.abs(values), tol)), max_half_length)
    axes = np.stack(
        [np.stack([c - half[k] * vectors[:, k], c + half[k] * vectors[:, k]]) for k in range(2)]
    )
    ellipse = None
    if values[0] > tol:
        t = np.linspace(0.0, 2 * np.pi, n_points)
        ellipse = (
            c
            + np.outer(half[0] * np.cos(t), vectors[:, 0])
            + np.outer(half[1] * np.sin(t), vectors[:, 1])
        )
    newton = None if np.min(np.abs(values)) <= tol else c - np.linalg.solve(h, g)
    return QuadraticModel(c, float(value), g, h, values, vectors, axes, ellipse, newton)
