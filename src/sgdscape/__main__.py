"""``python -m sgdscape``."""

from sgdscape.surfaces.cli import main

main()
