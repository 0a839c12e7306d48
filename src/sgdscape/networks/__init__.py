"""Real networks: slices of their loss along two directions, recordings of their training.

Layer above :mod:`sgdscape.core`, below :mod:`sgdscape.records`. ``sgdscape.networks`` keeps the
names the former ``sgdscape.networks`` module offered; they live in the modules
:mod:`~sgdscape.networks.slicing` lists (parameters, directions, losses, evaluation, chunks,
ray_backend, slices) and are re-exported from there.
"""

from sgdscape.networks.slicing import (
    BACKENDS,
    CPU_BLOCK_BYTES,
    CPU_CHUNK_BYTES,
    NORMALIZATIONS,
    PRECISIONS,
    ChunkPlan,
    Directions,
    Evaluator,
    LineLandscape,
    as_tensors,
    flat_parameters,
    grid_coords,
    interpolation_directions,
    line_landscape,
    normalize_direction,
    parameter_layout,
    pca_directions,
    random_directions,
    run_local,
    slice_landscape,
    unflatten,
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
    "as_tensors",
    "flat_parameters",
    "grid_coords",
    "interpolation_directions",
    "line_landscape",
    "normalize_direction",
    "parameter_layout",
    "pca_directions",
    "random_directions",
    "run_local",
    "slice_landscape",
    "unflatten",
]
