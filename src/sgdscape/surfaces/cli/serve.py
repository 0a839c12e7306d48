"""``sgdscape serve``: the web app, or a network's saved view, on a local port."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sgdscape.errors import SgdscapeError
from sgdscape.surfaces.cli.root import app

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback only by default.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8050,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in a web browser.")
    ] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow binding a non-loopback --host (anyone who can reach it can run "
            "computations on this machine).",
        ),
    ] = False,
    view_file: Annotated[
        Path | None,
        typer.Option(
            "--view",
            help="Serve a real network's saved stochastic view (network.npz from `sgdscape "
            "network`): both panels with a step slider, instead of the laboratory.",
        ),
    ] = None,
) -> None:
    """Start the web app (Dash) at http://HOST:PORT; needs the app extra (pip install sgdscape[app])."""
    if host not in LOOPBACK_HOSTS and not allow_remote:
        raise SgdscapeError(
            f"--host {host!r} is not a loopback address; binding it exposes the app to the "
            "network, so add --allow-remote to do it on purpose."
        )
    try:
        from sgdscape.surfaces.app.server import serve as serve_app
    except ImportError as error:
        raise SgdscapeError(
            f"the web app needs Dash and Plotly ({error.name} is missing); "
            "install them with: pip install 'sgdscape[app]'."
        ) from None
    if host not in LOOPBACK_HOSTS:
        typer.echo(
            f"sgdscape: warning: serving on {host}, reachable from other machines; the app has "
            "no authentication.",
            err=True,
        )
    if view_file is not None:
        from sgdscape.networks.recording import load_view
        from sgdscape.surfaces.app.view import serve_view
        from sgdscape.surfaces.export import html_page

        view = load_view(view_file)
        title = f"sgdscape: {view.info.get('name', 'network')}"
        serve_view(html_page(view), title=title, host=host, port=port, open_browser=open_browser)
        return
    serve_app(host=host, port=port, open_browser=open_browser)
