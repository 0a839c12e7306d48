"""sgdscape: see how stochastic gradient methods move on loss landscapes.

The public API; everything else may move between releases.

``import sgdscape`` is light: the names of ``__all__`` are imported on first use (PEP 562), so
the command line's ``--help`` and argument errors never import torch, and nothing here imports
plotting, Dash or Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sgdscape.core.chain_stats import (
        basin_fractions,
        chain_moments,
        fan_of_steps,
        first_passage,
    )
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
    from sgdscape.networks.recording import (
        Recording,
        StochasticView,
        record_training,
        stochastic_view,
    )
    from sgdscape.networks.slicing import (
        Directions,
        interpolation_directions,
        line_landscape,
        pca_directions,
        random_directions,
        slice_landscape,
    )
    from sgdscape.records.run import RunConfig, RunResult, load_config, run
    from sgdscape.records.run_files import load, save
    from sgdscape.surfaces.widget import Explorer, NetworkExplorer

#: where each lazily imported public name is defined
_LAZY: dict[str, str] = {
    "Chains": "sgdscape.core.chains",
    "Curvature": "sgdscape.core.curvature",
    "CurvatureMap": "sgdscape.core.curvature",
    "Dataset": "sgdscape.core.problems",
    "Directions": "sgdscape.networks.slicing",
    "Grid": "sgdscape.core.grid",
    "LOSSES": "sgdscape.core.losses",
    "Landscape": "sgdscape.core.landscape",
    "Loss": "sgdscape.core.losses",
    "MODELS": "sgdscape.core.models",
    "Model": "sgdscape.core.models",
    "OPTIMIZERS": "sgdscape.core.optimizers",
    "PROBLEMS": "sgdscape.core.problems",
    "Plane": "sgdscape.core.grid",
    "ProblemOptions": "sgdscape.core.problems",
    "Recording": "sgdscape.networks.recording",
    "RunConfig": "sgdscape.records.run",
    "RunResult": "sgdscape.records.run",
    "SCHEDULES": "sgdscape.core.optimizers",
    "SgdscapeError": "sgdscape.errors",
    "StochasticView": "sgdscape.networks.recording",
    "Trajectory": "sgdscape.core.train",
    "basin_fractions": "sgdscape.core.chain_stats",
    "chain_moments": "sgdscape.core.chain_stats",
    "chains": "sgdscape.core.chains",
    "curvature": "sgdscape.core.curvature",
    "curvature_map": "sgdscape.core.curvature",
    "fan_of_steps": "sgdscape.core.chain_stats",
    "first_passage": "sgdscape.core.chain_stats",
    "get_loss": "sgdscape.core.losses",
    "get_model": "sgdscape.core.models",
    "get_optimizer": "sgdscape.core.optimizers",
    "ground_truth": "sgdscape.core.problems",
    "hessian_directions": "sgdscape.networks.curvature",
    "hessians": "sgdscape.core.curvature",
    "hutchinson_trace": "sgdscape.networks.curvature",
    "interpolation_directions": "sgdscape.networks.slicing",
    "landscape": "sgdscape.core.landscape",
    "line_landscape": "sgdscape.networks.slicing",
    "linear_regression_moments": "sgdscape.core.chain_theory",
    "load": "sgdscape.records.run_files",
    "load_config": "sgdscape.records.run",
    "make_problem": "sgdscape.core.problems",
    "module_parameters": "sgdscape.core.models",
    "pca_directions": "sgdscape.networks.slicing",
    "random_directions": "sgdscape.networks.slicing",
    "record_training": "sgdscape.networks.recording",
    "resolve_device": "sgdscape.core.devices",
    "run": "sgdscape.records.run",
    "save": "sgdscape.records.run_files",
    "slice_landscape": "sgdscape.networks.slicing",
    "spectral_density": "sgdscape.networks.curvature",
    "stationary_covariance": "sgdscape.core.chain_theory",
    "stochastic_view": "sgdscape.networks.recording",
    "top_eigenvalues": "sgdscape.networks.curvature",
    "train": "sgdscape.core.train",
    "training_curvature": "sgdscape.networks.curvature",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use, and keep it (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sgdscape' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy ones included."""
    return sorted({*globals(), *__all__})


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
