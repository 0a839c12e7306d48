"""Serve a prepared standalone page (a real network's stochastic view) with Dash.

``sgdscape serve --view network.npz`` builds the same self-contained page as
``sgdscape export --view ... --html`` (:func:`sgdscape.surfaces.export.html_page`: both panels and
a client-side step slider) and hands it here as a string; this module serves it at
``/view.html`` and shows it full-window in a Dash page. Nothing is computed per request
and the app holds no per-tab state. (The page is built by the caller because the export
module sits above the app in the package's layers.)
"""

from __future__ import annotations

import logging
import threading

from dash import Dash, html

VIEW_ROUTE = "/view.html"


def create_view_app(page: str, *, title: str = "sgdscape") -> Dash:
    """A Dash app showing ``page`` (a complete HTML document) full-window."""
    from flask import Response

    # update_title=None (documented: the title stays) is missing from dash's stubs
    app = Dash(__name__, title=title, update_title=None, serve_locally=True)  # type: ignore[arg-type]
    app.server.add_url_rule(
        VIEW_ROUTE,
        "sgdscape_view",
        lambda: Response(page, mimetype="text/html", headers={"Cache-Control": "no-cache"}),
    )
    app.layout = html.Iframe(
        id="view-frame",
        src=VIEW_ROUTE,
        title=title,
        style={
            "position": "fixed",
            "inset": "0",
            "width": "100%",
            "height": "100%",
            "border": "0",
        },
    )
    return app


def serve_view(
    page: str,
    *,
    title: str = "sgdscape",
    host: str = "127.0.0.1",
    port: int = 8050,
    open_browser: bool = False,
) -> None:
    """Serve ``page`` (Flask's threaded server) until interrupted."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_view_app(page, title=title)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if open_browser:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    print(f"sgdscape serve: {url} (Ctrl+C to stop)", flush=True)
    app.run(host=host, port=port, debug=False, dev_tools_ui=False)
