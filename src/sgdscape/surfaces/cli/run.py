"""``sgdscape run``: one experiment (by default the seed notebook's) and its files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sgdscape.surfaces.cli.options import ModelHelp, check_out_dir, select_steps, with_run_options
from sgdscape.surfaces.cli.outputs import with_progress
from sgdscape.surfaces.cli.root import app

if TYPE_CHECKING:
    from sgdscape.records.run import RunConfig


@app.command(cls=ModelHelp)
@with_run_options
def run(
    config: RunConfig,
    preset_name: str | None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-out"),
    figures: Annotated[
        str, typer.Option(help="Steps to draw: auto, all, none, or e.g. 0,10,99.")
    ] = "auto",
    curvature: Annotated[
        bool,
        typer.Option(
            "--curvature",
            help="Also compute the exact Hessians of the risk and of each minibatch at every "
            "iterate and over the window: saved in run.npz, drawn in curvature.png.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run an experiment (by default the seed notebook's) and write run.npz, config.toml, PNGs."""
    from sgdscape.records.presets import get_preset
    from sgdscape.records.run import prepare_out_dir
    from sgdscape.records.run import run as run_experiment

    check_out_dir(out)
    if figures.strip().lower() not in {"all", "none", "auto"}:
        select_steps(figures, 10**12)  # syntax check before computing
    with_basins = preset_name is not None and get_preset(preset_name).basins
    curvature = curvature or (preset_name is not None and get_preset(preset_name).curvature)

    result = with_progress(lambda progress: run_experiment(config, progress=progress), quiet)
    if curvature:
        from sgdscape.records.run import with_curvature

        result = with_curvature(result)
    basins = None
    if with_basins:
        from sgdscape.records.basins import basins as compute_basins

        basins = compute_basins(config)
    single = result.trajectory.iterates.ndim == 2
    steps = select_steps(figures, result.n_steps) if single else []
    written = _write_outputs(result, prepare_out_dir(out), steps, quiet, basins)
    if result.data.source:  # what was read from a CSV file: rows, columns, skipped lines
        typer.echo(f"sgdscape run: {result.data.source}")
    for label, trajectory in result.trajectories:
        prefix = f"[{label}] " if result.others else ""
        typer.echo(f"sgdscape run: {prefix}{_summary(trajectory)}")
    for path in written:
        typer.echo(f"wrote {path}")


def _summary(trajectory: Any) -> str:
    import numpy as np

    diverged = np.atleast_1d(trajectory.diverged_step) >= 0
    risks = np.atleast_1d(trajectory.final_risk)
    if diverged.size == 1:
        if diverged[0]:
            step = int(np.atleast_1d(trajectory.diverged_step)[0])
            return f"diverged at step {step} (inf or NaN); recorded up to there"
        return f"{trajectory.n_steps} steps, final risk {float(risks[0]):.4g}"
    finite = risks[~diverged]
    best = (
        f", final risk min {finite.min():.4g} median {np.median(finite):.4g}" if finite.size else ""
    )
    return (
        f"{diverged.size} runs of {trajectory.n_steps} steps, {int(diverged.sum())} diverged{best}"
    )


def _write_outputs(
    result: Any, out: Path, steps: list[int], quiet: bool, basins: Any = None
) -> list[Path]:
    """Write run.npz, config.toml and the PNGs into ``out`` as one set, committed together."""
    import matplotlib

    matplotlib.use("Agg")
    from sgdscape.records.run import output_set, write_run_files
    from sgdscape.views.overlays import plot_basins, plot_compare, plot_paths
    from sgdscape.views.step_figure import plot_step, save_figure

    with output_set(out, "run") as stage:
        names = write_run_files(result, stage)
        if result.others:
            names.append(save_figure(plot_compare(result), stage / "compare.png").name)
        if result.trajectory.iterates.ndim == 3:
            names.append(save_figure(plot_paths(result), stage / "paths.png").name)
        if basins is not None:
            figure = plot_basins(basins, result.landscape)
            names.append(save_figure(figure, stage / "basins.png").name)
        if result.curvatures:
            from sgdscape.views.curvature_figure import plot_curvature, plot_stability

            names.append(save_figure(plot_curvature(result), stage / "curvature.png").name)
            if result.others:
                names.append(save_figure(plot_stability(result), stage / "stability.png").name)
        width = len(str(result.n_steps - 1))
        if steps:
            from rich.progress import track

            for step in track(steps, description="figures", disable=quiet, transient=True):
                figure = plot_step(result, step)
                names.append(save_figure(figure, stage / f"step_{step:0{width}d}.png").name)
    return [out / name for name in names]
