"""The two-parameter lab's engine: data, models, losses, optimizers, grids, landscapes, training.

The lowest layer above :mod:`sgdscape.io` and :mod:`sgdscape.errors`; it imports nothing above.
"""
