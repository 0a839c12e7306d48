"""``sgdscape network``: train a real network and draw its stochastic view."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sgdscape.errors import check_choice, check_int, check_seed
from sgdscape.surfaces.cli.options import check_out_dir
from sgdscape.surfaces.cli.outputs import animate_with_bar, with_progress, write_network_surface
from sgdscape.surfaces.cli.root import app


@app.command(name="network")
def network_command(
    example: Annotated[
        str, typer.Option(help="Network and data: digits-mlp, digits-cnn, moons or spirals.")
    ] = "digits-mlp",
    grid: Annotated[int, typer.Option(help="Grid points per axis of the PCA plane.")] = 41,
    steps: Annotated[
        int, typer.Option(help="How many steps (spread over the run) get a two-panel figure.")
    ] = 4,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (default: the example's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for data, weights and minibatches.")] = 0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-network"),
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    ray: Annotated[
        str | None,
        typer.Option(
            help="Evaluate the grid (and --curvature's steps) on a Ray cluster: auto (local or "
            "RAY_ADDRESS) or ADDRESS."
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Directory for finished chunks; a rerun resumes there.")
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="Landscape arithmetic: float32, or bfloat16 / float16 mixed precision "
            "(torch.autocast; for GPUs)."
        ),
    ] = "float32",
    surface: Annotated[
        bool,
        typer.Option(
            "--surface",
            help="Also write surface.html: the full-data landscape as an interactive 3-D "
            "surface with the projected path.",
        ),
    ] = False,
    html: Annotated[
        bool,
        typer.Option(
            "--html",
            help="Also write network.html: both panels with a step slider, a standalone page.",
        ),
    ] = False,
    gif: Annotated[
        bool, typer.Option("--gif", help="Also write network.gif: both panels, one frame a step.")
    ] = False,
    curvature: Annotated[
        str | None,
        typer.Option(
            help="Also compute Hessian spectra along the training, e.g. top-k=3,trace,density "
            "(items: top-k=K, trace, density, batch, steps=N): saved in network.npz, drawn in "
            "network_curvature.png.",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="Run a network preset instead (edge-of-stability, flat-minima): writes "
            "preset.npz and NAME.png.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a real network, then draw its stochastic view on the PCA plane of its path."""
    import matplotlib

    matplotlib.use("Agg")
    from sgdscape.networks.examples import get_example
    from sgdscape.networks.recording import record_training, save_view, stochastic_view
    from sgdscape.records.run_files import output_set, prepare_out_dir
    from sgdscape.views.network_figure import plot_network_step
    from sgdscape.views.step_figure import save_figure

    check_out_dir(out)
    check_int("--grid", grid, low=2, high=1024)
    check_int("--steps", steps, low=1, high=10_000)
    if epochs is not None:
        check_int("--epochs", epochs, low=1, high=100_000)
    check_seed("--seed", seed)
    from sgdscape.networks.slicing import PRECISIONS

    check_choice("precision", precision, PRECISIONS)
    request = None
    if curvature is not None:
        from sgdscape.networks.curvature import parse_curvature_spec

        request = parse_curvature_spec(curvature)
    if preset is not None:
        _network_preset(preset, seed, out, device)
        return
    backend: Any = "local"
    if ray is not None:
        from sgdscape.core.distributed import RayBackend

        backend = RayBackend(address=ray)
        backend.check_address()  # before loading data and training, not minutes later
    chosen = get_example(example, seed)
    recording = record_training(
        chosen.model,
        chosen.loss_fn,
        (chosen.x, chosen.y),
        optimizer=chosen.optimizer,
        lr=chosen.lr,
        batch_size=chosen.batch_size,
        epochs=epochs or chosen.epochs,
        seed=seed,
        device=device,
        name=chosen.name,
    )
    typer.echo(
        f"sgdscape network: trained {chosen.name} for {recording.n_steps} steps, "
        f"minibatch loss {recording.batch_loss[0]:.4g} -> {recording.batch_loss[-1]:.4g}"
    )

    def record_view(progress: Any) -> Any:
        def update(done: int, total: int) -> None:
            if progress is not None:
                progress("landscape chunks", done, total)

        return stochastic_view(
            recording,
            grid=grid,
            device=device,
            backend=backend,
            progress=update,
            checkpoint_dir=checkpoint,
            precision=precision,
        )

    view = with_progress(record_view, quiet)
    record = None
    if request is not None:
        from sgdscape.networks.curvature import training_curvature

        record = training_curvature(
            recording,
            request.steps,
            k=request.k,
            batch=request.batch,
            trace=request.trace,
            density=request.density,
            device=device,
            backend=backend,  # --ray: the steps' spectra as Ray tasks, like the grid's chunks
        )
    out = prepare_out_dir(out)
    with output_set(out, "network") as stage:
        extra = None if record is None else record.arrays()
        names = [save_view(view, stage / "network.npz", extra).name]
        if record is not None:
            from sgdscape.views.curvature_figure import plot_training_curvature

            figure = plot_training_curvature(record, loss=recording.batch_loss)
            names.append(save_figure(figure, stage / "network_curvature.png").name)
        width = len(str(view.n_steps - 1))
        shown = sorted({round(i * (view.n_steps - 1) / max(1, steps - 1)) for i in range(steps)})
        for step in shown:
            figure = plot_network_step(view, step)
            names.append(save_figure(figure, stage / f"network_step_{step:0{width}d}.png").name)
        if html:
            from sgdscape.surfaces.export import export_html

            names.append(export_html(view, stage / "network.html").name)
        if gif:
            animate_with_bar(view, stage / "network.gif", list(view.steps), 10.0, None, 80.0, quiet)
            names.append("network.gif")
        if surface:
            names.append(write_network_surface(view, stage / "surface.html").name)
    written = [out / name for name in names]
    variance = view.explained_variance
    typer.echo(
        f"sgdscape network: PCA plane explains {variance[0]:.1%} + {variance[1]:.1%} of the "
        f"path; full-data loss {view.risk[0]:.4g} -> {view.risk[-1]:.4g}"
    )
    if record is not None:
        typer.echo(
            f"sgdscape network: sharpness {record.sharpness[0]:.4g} -> {record.sharpness[-1]:.4g} "
            f"(2/lr = {record.stability_threshold:.4g})"
        )
    for path in written:
        typer.echo(f"wrote {path}")


def _network_preset(name: str, seed: int, out: Path, device: str) -> None:
    """``sgdscape network --preset NAME``: train its runs, write preset.npz and NAME.png."""
    from sgdscape.records.presets import (
        get_network_preset,
        train_network_preset,
        write_network_preset_arrays,
    )
    from sgdscape.records.run_files import output_set, prepare_out_dir
    from sgdscape.views.curvature_figure import plot_network_preset
    from sgdscape.views.step_figure import save_figure

    chosen = get_network_preset(name)
    result = train_network_preset(chosen, seed=seed, device=device)
    out = prepare_out_dir(out)
    with output_set(out, "preset") as stage:
        names = [write_network_preset_arrays(result, stage)]
        names.append(save_figure(plot_network_preset(result), stage / f"{name}.png").name)
    for label, record in zip(result.labels, result.curvatures, strict=True):
        typer.echo(
            f"sgdscape network: [{label}] sharpness {record.sharpness[0]:.4g} -> "
            f"{record.sharpness[-1]:.4g} (2/lr = {record.stability_threshold:.4g})"
        )
    for written in names:
        typer.echo(f"wrote {out / written}")
