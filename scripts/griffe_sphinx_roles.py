"""A griffe extension for the docs site: Sphinx roles in docstrings as inline code.

sgdscape's docstrings cross-reference with Sphinx roles (``:func:`sgdscape.train```,
``:class:`~sgdscape.records.run.RunResult```), which mkdocstrings would print literally. This turns
each into inline code of the name a reader would see: ``sgdscape.train``, ``RunResult``
(a ``~`` keeps the last part, as in Sphinx). Loaded by mkdocs.yml
(``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|obj|exc):`([^`]+)`")


def plain_role(match: re.Match[str]) -> str:
    """The inline code shown for one role: its title, or its target (last part after ``~``)."""
    text = match.group(1)
    titled = re.fullmatch(r"(.*?)\s*<(.+)>", text)
    if titled:
        return f"`{titled.group(1)}`"
    if text.startswith("~"):
        return f"`{text[1:].rsplit('.', 1)[-1]}`"
    return f"`{text}`"


def without_roles(text: str) -> str:
    """``text`` with every Sphinx role replaced by inline code."""
    return ROLE.sub(plain_role, text)


class SphinxRolesAsCode(griffe.Extension):
    """Rewrite the docstring of every object as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = without_roles(obj.docstring.value)
