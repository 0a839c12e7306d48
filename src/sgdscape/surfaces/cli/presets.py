"""``sgdscape presets``: the named presets and the behaviour each one shows."""

from __future__ import annotations

import typer

from sgdscape.surfaces.cli.root import app


@app.command()
def presets() -> None:
    """List the named presets, each a classic behaviour of stochastic optimization."""
    from sgdscape.records.presets import PRESETS

    width = max(len(name) for name in PRESETS)
    for name, preset in PRESETS.items():
        typer.echo(f"{name:<{width}}  {preset.story}")
    typer.echo("\nRun one with: sgdscape run --preset NAME")
    from sgdscape.records.presets import NETWORK_PRESETS

    typer.echo("\nNetwork presets (real networks, with their Hessian along training):")
    for name, network in NETWORK_PRESETS.items():
        typer.echo(f"{name:<{width}}  {network.story}")
    typer.echo("\nRun one with: sgdscape network --preset NAME")
