"""The ``sgdscape`` command line (typer): parse, call the lower layers, report.

One module per command (:mod:`~sgdscape.surfaces.cli.run`, ``export``, ``serve``, ``network``,
``basins``, ``bench``, ``presets``, ``chains``), each registering itself on the typer app of
:mod:`~sgdscape.surfaces.cli.root`; :mod:`~sgdscape.surfaces.cli.options` parses the options
they share and :mod:`~sgdscape.surfaces.cli.outputs` writes what they share. Every bad input
ends with one line ``sgdscape: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

# Importing a command module registers its command; this order is the order of `--help`.
# isort: off
from sgdscape.surfaces.cli import run as _run
from sgdscape.surfaces.cli import presets as _presets
from sgdscape.surfaces.cli import basins as _basins
from sgdscape.surfaces.cli import chains as _chains
from sgdscape.surfaces.cli import export as _export
from sgdscape.surfaces.cli import serve as _serve
from sgdscape.surfaces.cli import bench as _bench
from sgdscape.surfaces.cli import network as _network

# isort: on
from sgdscape.surfaces.cli.chains import parse_record_steps
from sgdscape.surfaces.cli.export import parse_size, parse_step_range, resolve_step_range
from sgdscape.surfaces.cli.options import parse_bytes, parse_compare, select_steps, with_run_options
from sgdscape.surfaces.cli.root import app, main

__all__ = [
    "app",
    "main",
    "parse_bytes",
    "parse_compare",
    "parse_record_steps",
    "parse_size",
    "parse_step_range",
    "resolve_step_range",
    "select_steps",
    "with_run_options",
]

del _run, _presets, _basins, _chains, _export, _serve, _bench, _network
