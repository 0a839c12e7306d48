"""Print one of the README's two commands, so CI runs exactly what a new user is told to run.

    python3 .ci/readme_commands.py run      # the install-and-run command
    python3 .ci/readme_commands.py test     # the install-and-test command
    python3 .ci/readme_commands.py extras   # the extras the test command installs

The commands are the lines that follow ``# install and run`` and ``# run the test suite`` in the
first ``bash`` block of README.md. Standard library only: it runs before any install.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
MARKERS = {"run": "# install and run", "test": "# run the test suite"}


def readme_command(which: str, text: str | None = None) -> str:
    """The command line that follows the comment ``MARKERS[which]`` in the README's first block."""
    text = README.read_text(encoding="utf-8") if text is None else text
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    if block is None:
        raise SystemExit("README.md has no ```bash block with the two commands")
    lines = block.group(1).splitlines()
    for number, line in enumerate(lines[:-1]):
        if line.startswith(MARKERS[which]):
            return lines[number + 1].strip()
    raise SystemExit(f"README.md's first bash block has no line starting {MARKERS[which]!r}")


def test_extras(text: str | None = None) -> str:
    """The comma-separated extras that the README's test command installs."""
    found = re.search(r'-e "\.\[([^\]]+)\]"', readme_command("test", text))
    if found is None:
        raise SystemExit('the README test command installs no `-e ".[extras]"`')
    return found.group(1)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which == "extras":
        print(test_extras())
    elif which in MARKERS:
        print(readme_command(which))
    else:
        raise SystemExit("usage: readme_commands.py run|test|extras")
