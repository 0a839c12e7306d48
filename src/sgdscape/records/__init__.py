"""Runs as records: one config in, one result out, saved and loaded; presets and basins.

Above :mod:`sgdscape.networks` and :mod:`sgdscape.core`, below :mod:`sgdscape.views`.
"""
