"""Oracle for drawn arrows, written without the drawing code: an arrow read back from a
figure must point along the recorded -gradient, stay in the window, and be absent (with a
label that says so) when the gradient is zero or not finite."""

from __future__ import annotations

import numpy as np


def check_arrow(
    drawn: tuple[np.ndarray, np.ndarray] | None,
    gradient: np.ndarray,
    window: tuple[float, float, float, float],
    label: str | None = None,
) -> None:
    """``drawn``: ``(tail, tip)`` read back from a figure (``None`` if no arrow is drawn);
    ``gradient``: ``(2,)`` the recorded gradient in plot coordinates; ``label``: the
    arrow's legend text, when the surface shows one."""
    gradient = np.asarray(gradient, dtype=np.float64)
    if not np.isfinite(gradient).all() or not np.any(gradient != 0):
        assert drawn is None, f"an arrow is drawn for the gradient {gradient}"
        if label is not None:
            assert "= 0" in label or "not finite" in label, label
        return
    assert drawn is not None, f"no arrow for the nonzero gradient {gradient} ({label})"
    tail, tip = (np.asarray(v, dtype=np.float64) for v in drawn)
    direction = tip - tail
    assert np.linalg.norm(direction) > 0
    cosine = direction @ -gradient / (np.linalg.norm(direction) * np.linalg.norm(gradient))
    assert cosine > 1 - 1e-5, f"arrow {direction} does not point along -{gradient}"
    x0, x1, y0, y1 = window
    slack = 1e-6 * (x1 - x0)
    for point in (tail, tip):
        assert x0 - slack <= point[0] <= x1 + slack and y0 - slack <= point[1] <= y1 + slack
    if label is not None:
        assert "×" in label, label
