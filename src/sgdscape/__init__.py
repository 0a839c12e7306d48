"""sgdscape: see how stochastic gradient methods move on loss landscapes.

The public API; everything else may move between releases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sgdscape.core.chain_stats import basin_fractions, chain_moments, fan_of_steps, first_passage
from sgdscape.core.chain_theory import linear_regression_moments, stationary_covariance
from sgdscape.core.chains import Chains, chains
from sgdscape.core.curvature import Curvature, CurvatureMap, curvature, curvature_map, hessians
from sgdscape.core.devices import resolve_device
from sgdscape.core.grid import Grid, Plane
from sgdscape.core.landscape import Landscape, landscape
from sgdscape.core.losses import LOSSES, Loss, get_loss
from sgdscape.core.models import MODELS, Model, get_model, module_parameters
from sgdscape.core.optimizers import OPTIMIZERS, SCHEDULES, get_optimizer
from sgdscape.core.problems import PROBLEMS, Dataset, ProblemOptions, ground_truth, make_problem
from sgdscape.core.train import Trajectory, train
from sgdscape.errors import SgdscapeError
from sgdscape.networks.curvature import (
    hessian_directions,
    hutchinson_trace,
    spectral_density,
    top_eigenvalues,
    training_curvature,
)
from sgdscape.networks.recording import Recording, StochasticView, record_training, stochastic_view
from sgdscape.networks.slicing import (
    Directions,
    interpolation_directions,
    line_landscape,
    pca_directions,
    random_directions,
    slice_landscape,
)
from sgdscape.records.run import RunConfig, RunResult, load, load_config, run, save

if TYPE_CHECKING:
    from sgdscape.surfaces.widget import Explorer, NetworkExplorer


def explore(*args: Any, **kwargs: Any) -> Explorer | NetworkExplorer:
    """The Jupyter explorer (see :func:`sgdscape.surfaces.widget.explore`); needs ``sgdscape[notebook]``.

    Imported on first call so that ``import sgdscape`` stays light.
    """
    from sgdscape.surfaces.widget import explore as _explore

    return _explore(*args, **kwargs)


__all__ = [
    "LOSSES",
    "MODELS",
    "OPTIMIZERS",
    "PROBLEMS",
    "SCHEDULES",
    "Chains",
    "Curvature",
    "CurvatureMap",
    "Dataset",
    "Directions",
    "Grid",
    "Landscape",
    "Loss",
    "Model",
    "Plane",
    "ProblemOptions",
    "Recording",
    "RunConfig",
    "RunResult",
    "SgdscapeError",
    "StochasticView",
    "Trajectory",
    "basin_fractions",
    "chain_moments",
    "chains",
    "curvature",
    "curvature_map",
    "explore",
    "fan_of_steps",
    "first_passage",
    "get_loss",
    "get_model",
    "get_optimizer",
    "ground_truth",
    "hessian_directions",
    "hessians",
    "hutchinson_trace",
    "interpolation_directions",
    "landscape",
    "line_landscape",
    "linear_regression_moments",
    "load",
    "load_config",
    "make_problem",
    "module_parameters",
    "pca_directions",
    "random_directions",
    "record_training",
    "resolve_device",
    "run",
    "save",
    "slice_landscape",
    "spectral_density",
    "stationary_covariance",
    "stochastic_view",
    "top_eigenvalues",
    "train",
    "training_curvature",
]
__version__ = "0.1.0"
