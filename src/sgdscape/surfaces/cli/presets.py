"""``sgdscape presets``: the named presets and the behaviour each one shows."""

from __future__ import annotations

import typer

from sgdscape.surfaces.cli.root import app


@app.command()
def presets() -> None:
    """List the named presets, each a classic behaviour of stochastic optimization."""
    from sgdscape.records.chain_presets import CHAIN_PRESETS
    from sgdscape.records.presets import NETWORK_PRESETS, PRESETS

    width = max(len(name) for name in [*PRESETS, *CHAIN_PRESETS, *NETWORK_PRESETS])
    for name, preset in PRESETS.items():
        typer.echo(f"{name:<{width}}  {preset.story}")
    typer.echo("\nRun one with: sgdscape run --preset NAME")
    typer.echo("\nMany chains (SGD as a random process):")
    for name, chain_preset in CHAIN_PRESETS.items():
        typer.echo(f"{name:<{width}}  {chain_preset.story}")
    typer.echo("\nRun one with: sgdscape chains --preset NAME")
    typer.echo("\nNetwork presets (real networks, with their Hessian along training):")
    for name, network in NETWORK_PRESETS.items():
        typer.echo(f"{name:<{width}}  {network.story}")
    typer.echo("\nRun one with: sgdscape network --preset NAME")
