"""What every sharpness panel shares (matplotlib and Plotly): the legend labels and when the
y axis is logarithmic. Importable from :mod:`sgdscape.views.sharpness_figure` too."""

from __future__ import annotations

import numpy as np

__all__ = ["BATCH_LABEL", "RISK_LABEL", "THRESHOLD_LABEL", "use_log_scale"]

#: label of the stability line ``y = 2 / lr`` in a sharpness panel
THRESHOLD_LABEL = "2 / lr (GD stability edge)"
RISK_LABEL = "λmax of the risk"
BATCH_LABEL = "λmax of the step's minibatch"


def use_log_scale(*series: np.ndarray | None) -> bool:
    """Whether a y axis of these values is better logarithmic: all finite values positive and
    spanning more than a factor 10."""
    values = np.concatenate(
        [np.asarray(s, dtype=np.float64).ravel() for s in series if s is not None]
    )
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() <= 0:
        return False
    return bool(values.max() / values.min() > 10)
