"""Exact mean and covariance of SGD on the convex ``linear-regression`` model.

The model is ``f(w, x) = w[0] * x + w[1]`` (parameters ``("w", "b")``), the loss the squared
error ``(f - y)^2`` averaged over a minibatch of ``B`` indices drawn uniformly **with
replacement** (``sampling="with-replacement"`` of :func:`sgdscape.core.chains.chains`). With the
features ``phi_i = (x_i, 1)`` the minibatch gradient is affine in ``w``::

    g_B(w) = A_B w - c_B,   A_B = (2/B) sum_j phi_j phi_j^T,   c_B = (2/B) sum_j y_j phi_j,

with ``(A_B, c_B)`` drawn afresh at every step, independent of ``w_t``. So the step
``w_{t+1} = P w_t + lr c_B`` with ``P = I - lr A_B`` gives exact moment recursions:

* mean: ``m_{t+1} = (I - lr H) m_t + lr b``, with ``H = E[A_B] = (2/n) sum_i phi_i phi_i^T``
  and ``b = E[c_B] = (2/n) sum_i y_i phi_i`` (the full-gradient step);
* second moment ``M_t = E[w_t w_t^T]``::

      M_{t+1} = E[P M_t P^T] + lr (E[P] m_t b^T - lr E[A_B m_t c_B^T] + transpose)
                + lr^2 E[c_B c_B^T],

  where, for ``B`` iid indices with per-sample ``a_i = 2 phi_i phi_i^T`` and
  ``c_i = 2 y_i phi_i``, ``E[A X A] = (1/B) mean_i a_i X a_i + (1 - 1/B) H X H``,
  ``E[A m c^T] = (1/B) mean_i a_i m c_i^T + (1 - 1/B) H m b^T`` and
  ``E[c c^T] = (1/B) mean_i c_i c_i^T + (1 - 1/B) b b^T``;
* covariance ``C_t = M_t - m_t m_t^T``.

The state ``z = (m, vec M, 1)`` thus follows a linear map ``z_{t+1} = G z_t``, computed once
in float64 and applied with matrix powers between requested steps.

Noise ball: for a stable ``lr`` the iterates do not converge but settle into a stationary
distribution around the least-squares solution ``w* = H^{-1} b``, with the stationary
covariance ``Sigma`` the fixed point of the recursion, a discrete Lyapunov-type equation
``Sigma = E[P Sigma P^T] + lr^2 S_B`` (``S_B`` the covariance of the minibatch gradient at
``w*``). To first order in ``lr``: ``H Sigma + Sigma H = lr S_1 / B``, so the ball's radius
grows like ``sqrt(lr / B)`` and shrinks to a point when the model interpolates the data
(zero residuals at ``w*`` make ``S_B = 0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sgdscape.core.problems import Dataset
from sgdscape.errors import SgdscapeError, check_int, check_positive


@dataclass(frozen=True)
class LinearMoments:
    """Exact moments of SGD on ``linear-regression`` at requested steps.

    Attributes:
        steps: ``(S,)`` int64 steps (the iterate after ``t`` updates).
        mean: ``(S, p)`` float64, ``E[w_t]`` in parameter units (``w``, ``b``).
        covariance: ``(S, p, p)`` float64, ``Cov[w_t]``.
        param_names: ``("w", "b")``.
    """

    steps: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    param_names: tuple[str, ...] = ("w", "b")


@dataclass(frozen=True)
class StationaryMoments:
    """The fixed point of the moment recursion (SGD's noise ball).

    Attributes:
        mean: ``(p,)`` the least-squares solution ``w* = H^{-1} b``.
        covariance: ``(p, p)`` the stationary covariance ``Sigma``.
        lr_bound: the largest learning rate for which the second moments stay bounded.
    """

    mean: np.ndarray
    covariance: np.ndarray
    lr_bound: float
    param_names: tuple[str, ...] = ("w", "b")


def _per_sample(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``a_i = 2 phi_i phi_i^T`` ``(n, p, p)`` and ``c_i = 2 y_i phi_i`` ``(n, p)``, float64."""
    x = data.x.detach().cpu().double().numpy().reshape(-1)
    y = data.y.detach().cpu().double().numpy().reshape(-1)
    phi = np.stack([x, np.ones_like(x)], axis=1)
    return 2.0 * phi[:, :, None] * phi[:, None, :], 2.0 * y[:, None] * phi


def _check_loss(loss: str) -> None:
    if loss != "mse":
        raise SgdscapeError(f"the exact theory is for loss 'mse' only, got {loss!r}.")


def moment_map(data: Dataset, lr: float, batch_size: int) -> np.ndarray:
    """The linear map ``G`` with ``z_{t+1} = G z_t`` on ``z = (m, vec M, 1)``, ``(7, 7)``.

    ``vec`` is row-major (``M.reshape(-1)``); ``p = 2``.
    """
    a, c = _per_sample(data)
    p = a.shape[1]
    inv = 1.0 / batch_size
    h, b = a.mean(axis=0), c.mean(axis=0)
    eye = np.eye(p)
    # E[A (x) A] (row-major vec: vec(A X A^T) = (A (x) A) vec X), A symmetric
    a_kron = inv * np.einsum("nij,nkl->ikjl", a, a).reshape(p * p, p * p) / a.shape[0]
    a_kron += (1 - inv) * np.kron(h, h)
    p_kron = np.kron(eye, eye) - lr * (np.kron(h, eye) + np.kron(eye, h)) + lr**2 * a_kron
    # E[A m c^T] as a linear map of m: vec -> (p*p, p)
    amc = inv * np.einsum("nij,nk->ikj", a, c).reshape(p * p, p) / a.shape[0]
    amc += (1 - inv) * np.einsum("ij,k->ikj", h, b).reshape(p * p, p)
    # vec(m b^T) = (I (x) b) m : (p*p, p)
    mb = np.einsum("ij,k->ikj", eye, b).reshape(p * p, p)
    cross = mb - lr * amc  # vec(E[P m c^T]) = vec(m b^T) - lr vec(E[A m c^T])
    transpose = np.zeros((p * p, p * p))
    for i in range(p):
        for j in range(p):
            transpose[i * p + j, j * p + i] = 1.0
    cc = inv * np.einsum("ni,nj->ij", c, c) / c.shape[0] + (1 - inv) * np.outer(b, b)
    size = p + p * p + 1
    g = np.zeros((size, size))
    g[:p, :p] = eye - lr * h
    g[:p, -1] = lr * b
    g[p:-1, :p] = lr * (cross + transpose @ cross)
    g[p:-1, p:-1] = p_kron
    g[p:-1, -1] = lr**2 * cc.reshape(-1)
    g[-1, -1] = 1.0
    return g


def _check(data: Dataset, lr: float, batch_size: int, loss: str) -> tuple[float, int]:
    _check_loss(loss)
    lr = check_positive("learning rate", lr)
    batch_size = check_int("batch size", batch_size, low=1, high=len(data))
    return lr, batch_size


def linear_regression_moments(
    data: Dataset,
    init: Sequence[float] | np.ndarray,
    lr: float,
    batch_size: int,
    steps: Sequence[int] | np.ndarray,
    loss: str = "mse",
    init_covariance: np.ndarray | None = None,
) -> LinearMoments:
    """Exact ``E[w_t]`` and ``Cov[w_t]`` of constant-``lr`` SGD with replacement.

    Args:
        data: the ``n`` samples.
        init: ``(2,)`` the start (or the mean of a random start).
        lr: learning rate (> 0).
        batch_size: ``B`` iid indices per minibatch.
        steps: ``(S,)`` steps ``t >= 0`` to report.
        init_covariance: ``(2, 2)`` covariance of a random start (default 0: a fixed start).
    """
    lr, batch_size = _check(data, lr, batch_size, loss)
    m0 = np.asarray(init, dtype=np.float64).reshape(-1)
    if m0.shape != (2,) or not np.isfinite(m0).all():
        raise SgdscapeError(f"init must be 2 finite numbers (w, b), got {init!r}.")
    c0 = np.zeros((2, 2)) if init_covariance is None else np.asarray(init_covariance, float)
    if c0.shape != (2, 2):
        raise SgdscapeError(f"init_covariance must have shape (2, 2), got {c0.shape}.")
    wanted = np.asarray(steps, dtype=np.int64).reshape(-1)
    if wanted.size == 0 or wanted.min() < 0:
        raise SgdscapeError(f"steps must be a non-empty list of integers >= 0, got {steps!r}.")
    g = moment_map(data, lr, batch_size)
    z = np.concatenate([m0, (c0 + np.outer(m0, m0)).reshape(-1), [1.0]])
    order = np.argsort(wanted, kind="stable")
    means, covariances = np.empty((wanted.size, 2)), np.empty((wanted.size, 2, 2))
    now = 0
    for index in order:
        z = np.linalg.matrix_power(g, int(wanted[index]) - now) @ z
        now = int(wanted[index])
        mean = z[:2]
        means[index] = mean
        covariances[index] = z[2:6].reshape(2, 2) - np.outer(mean, mean)
    return LinearMoments(steps=wanted, mean=means, covariance=covariances)


def _radius(g: np.ndarray) -> float:
    """Spectral radius of the moment map without its constant row and column."""
    return float(np.abs(np.linalg.eigvals(g[:-1, :-1])).max())


def stable_lr_bound(data: Dataset, batch_size: int, loss: str = "mse") -> float:
    """The largest ``lr`` whose mean and second-moment recursions contract (bisection on
    the spectral radius of :func:`moment_map`; the mean alone needs ``lr < 2 / lambda_max(H)``,
    the second moment a smaller bound that grows with ``B``)."""
    _check_loss(loss)
    a, _ = _per_sample(data)
    high = 2.0 / float(np.linalg.eigvalsh(a.mean(axis=0)).max())
    low = 0.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        if _radius(moment_map(data, middle, batch_size)) < 1.0:
            low = middle
        else:
            high = middle
    return low


def stationary_covariance(
    data: Dataset, lr: float, batch_size: int, loss: str = "mse"
) -> StationaryMoments:
    """The fixed point of the moment recursion: SGD's stationary mean and covariance.

    Solves ``(I - G) z = const`` in vec form (a ``6 x 6`` linear system). Raises
    :class:`SgdscapeError` naming the largest stable learning rate when ``lr`` is too
    large for the second moments to converge.
    """
    lr, batch_size = _check(data, lr, batch_size, loss)
    g = moment_map(data, lr, batch_size)
    if _radius(g) >= 1.0:
        bound = stable_lr_bound(data, batch_size, loss)
        raise SgdscapeError(
            f"learning rate {lr:g} makes SGD's covariance diverge for batch size {batch_size}; "
            f"use lr < {bound:.6g}."
        )
    inner = g[:-1, :-1]
    z = np.linalg.solve(np.eye(inner.shape[0]) - inner, g[:-1, -1])
    mean = z[:2]
    covariance = z[2:6].reshape(2, 2) - np.outer(mean, mean)
    return StationaryMoments(
        mean=mean,
        covariance=0.5 * (covariance + covariance.T),
        lr_bound=stable_lr_bound(data, batch_size, loss),
    )
