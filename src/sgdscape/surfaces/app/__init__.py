"""The Dash web app (``sgdscape serve``): a local laboratory in the browser.

Dash and Plotly are imported only inside :mod:`~sgdscape.surfaces.app.server` and the page
(:mod:`~sgdscape.surfaces.app.layout`) and downloads (:mod:`~sgdscape.surfaces.app.downloads`)
it builds on; this package's other modules (URL state, caps, the compact run payload) need
neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dash import Dash


def create_app() -> Dash:
    """A new Dash app (see :func:`sgdscape.surfaces.app.server.create_app`)."""
    from sgdscape.surfaces.app.server import create_app as create

    return create()


__all__ = ["create_app"]
