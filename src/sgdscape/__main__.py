"""``python -m sgdscape``."""

from sgdscape.cli import main

main()
