"""The names the former ``sgdscape.networks.slicing`` module offered, kept importable here.

The code lives in modules along its responsibilities:

- :mod:`~sgdscape.networks.parameters`: flat parameter vectors, their layout, ``(x, y)`` data;
- :mod:`~sgdscape.networks.directions`: :class:`Directions` and the random, interpolation and
  PCA planes (Hessian planes: :mod:`~sgdscape.networks.curvature`);
- :mod:`~sgdscape.networks.losses`: losses per sample and per chunk;
- :mod:`~sgdscape.networks.evaluation`: the batched :class:`Evaluator`;
- :mod:`~sgdscape.networks.chunks`: chunk plans, checkpoints and the local run;
- :mod:`~sgdscape.networks.ray_backend`: the same chunks on a Ray cluster;
- :mod:`~sgdscape.networks.slices`: :func:`slice_landscape` and :func:`line_landscape`.
"""

from sgdscape.networks.chunks import BACKENDS, ChunkPlan, Progress, evaluate_chunks
from sgdscape.networks.directions import (
    NORMALIZATIONS,
    Directions,
    interpolation_directions,
    normalize_direction,
    pca_directions,
    random_directions,
)
from sgdscape.networks.evaluation import (
    CPU_BLOCK_BYTES,
    CPU_CHUNK_BYTES,
    PRECISIONS,
    Evaluator,
)
from sgdscape.networks.losses import LossFn
from sgdscape.networks.parameters import (
    as_flat,
    as_tensors,
    flat_parameters,
    parameter_layout,
    unflatten,
)
from sgdscape.networks.slices import (
    LineLandscape,
    grid_coords,
    line_landscape,
    slice_landscape,
)

__all__ = [
    "BACKENDS",
    "CPU_BLOCK_BYTES",
    "CPU_CHUNK_BYTES",
    "NORMALIZATIONS",
    "PRECISIONS",
    "ChunkPlan",
    "Directions",
    "Evaluator",
    "LineLandscape",
    "LossFn",
    "Progress",
    "as_flat",
    "as_tensors",
    "evaluate_chunks",
    "flat_parameters",
    "grid_coords",
    "interpolation_directions",
    "line_landscape",
    "normalize_direction",
    "parameter_layout",
    "pca_directions",
    "random_directions",
    "slice_landscape",
    "unflatten",
]
