"""``sgdscape basins``: a grid of inits, and the basin each one ends in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sgdscape.surfaces.cli.options import ModelHelp, check_out_dir, with_run_options
from sgdscape.surfaces.cli.root import app

if TYPE_CHECKING:
    from sgdscape.records.run import RunConfig


@app.command(name="basins", cls=ModelHelp)
@with_run_options
def basins_command(
    config: RunConfig,
    points: Annotated[int, typer.Option(help="Inits per axis (points x points runs).")] = 25,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-out"),
) -> None:
    """Basins of attraction: run from a grid of inits and map where each one ends."""
    import matplotlib
    import numpy as np
    import tomli_w

    matplotlib.use("Agg")
    from sgdscape.records.basins import basins as compute_basins
    from sgdscape.records.run import risk_landscape
    from sgdscape.records.run_files import output_set, prepare_out_dir
    from sgdscape.views.overlays import plot_basins
    from sgdscape.views.step_figure import save_figure

    check_out_dir(out)
    result = compute_basins(config, points=points)
    surface = risk_landscape(config)
    out = prepare_out_dir(out)
    with output_set(out, "basins") as stage:
        np.savez_compressed(
            stage / "basins.npz",
            w1=result.w1,
            w2=result.w2,
            final=result.final,
            final_plane=result.final_plane,
            final_risk=result.final_risk,
            label=result.label,
            centres=result.centres,
        )
        (stage / "config.toml").write_bytes(tomli_w.dumps(config.to_dict()).encode())
        save_figure(plot_basins(result, surface), stage / "basins.png")
    written = [out / name for name in ("basins.npz", "config.toml", "basins.png")]
    typer.echo(f"sgdscape basins: {result.label.size} runs, {result.n_basins} basin(s)")
    for k, centre in enumerate(result.centres):
        share = float((result.label == k).mean())
        typer.echo(
            f"  basin {k}: ends near ({centre[0]:.3g}, {centre[1]:.3g}), {share:.0%} of inits"
        )
    for path in written:
        typer.echo(f"wrote {path}")
