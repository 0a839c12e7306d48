"""Real networks: slices of their loss along two directions, recordings of their training.

Layer above :mod:`sgdscape.core`, below :mod:`sgdscape.records`. ``sgdscape.networks`` keeps the
names the former ``sgdscape.networks`` module offered; they live in the modules
:mod:`~sgdscape.networks.slicing` lists (parameters, directions, losses, evaluation, chunks,
ray_backend, slices) and are re-exported from there.
"""

from sgdscape.networks import slicing
from sgdscape.networks.slicing import *  # noqa: F403  (the names listed once, in slicing)

__all__ = slicing.__all__
