"""``sgdscape chains``: SGD as a random process, K chains at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sgdscape.errors import SgdscapeError, check_int
from sgdscape.surfaces.cli.options import ModelHelp, check_out_dir, is_init_word, parse_numbers
from sgdscape.surfaces.cli.outputs import progress_console
from sgdscape.surfaces.cli.root import app


def parse_record_steps(text: str | None, steps: int) -> Any:
    """``--record-steps`` ``0,10,100`` as an ``(S,)`` int64 array (``None``: the default
    geometric spacing of :func:`sgdscape.core.chains.default_record_steps`)."""
    import numpy as np

    from sgdscape.core.chains import default_record_steps

    if text is None:
        return default_record_steps(steps)
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SgdscapeError(
            f"--record-steps needs comma-separated whole steps such as 0,10,100, got {text!r}."
        ) from None
    if not values or min(values) < 0 or max(values) > steps:
        raise SgdscapeError(
            f"--record-steps must name steps between 0 and --steps {steps}, got {text!r}."
        )
    return np.unique(np.asarray(values, dtype=np.int64))


#: file suffixes each output option accepts
CHAINS_OUTPUTS = {"--gif": (".gif", ".mp4"), "--html": (".html", ".htm")}


def _check_output(option: str, path: Path | None) -> None:
    if path is None:
        return
    if path.suffix.lower() not in CHAINS_OUTPUTS[option]:
        raise SgdscapeError(
            f"{option} {str(path)!r} must end in {' or '.join(CHAINS_OUTPUTS[option])}."
        )
    if path.is_dir():
        raise SgdscapeError(f"{option} {str(path)!r} is a directory; give a file name.")


@app.command(name="chains", cls=ModelHelp)
def chains_command(
    preset: Annotated[
        str | None,
        typer.Option(
            help="Start from a chains preset: noise-ball-theory, valley-hopping, fan-of-steps; "
            "other options override it."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model: {models} [relu-unit].")] = None,
    problem: Annotated[str | None, typer.Option(help="Data problem [linear].")] = None,
    samples: Annotated[int | None, typer.Option(help="Number of samples [100].")] = None,
    noise_std: Annotated[
        float | None, typer.Option(help="Noise standard deviation of the data [0.1].")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the data; chain k samples with seed + k [0].")
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Start of every chain: numbers, one per parameter; 'default' the model's "
            "default; 'random' a draw per chain from the model's init rule [default]."
        ),
    ] = None,
    n_chains: Annotated[int | None, typer.Option(help="Number of chains K [10000].")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate [0.05].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Samples per step [1].")] = None,
    sampling: Annotated[
        str | None,
        typer.Option(
            help="with-replacement or shuffle (a permutation per epoch) [with-replacement]."
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps per chain [500].")] = None,
    optimizer: Annotated[str | None, typer.Option(help="torch.optim optimizer [sgd].")] = None,
    record_steps: Annotated[
        str | None,
        typer.Option(help="Steps to keep, e.g. 0,10,100 [about 50 geometrically spaced]."),
    ] = None,
    grid: Annotated[int | None, typer.Option(help="Landscape grid points per axis [100].")] = None,
    w1_range: Annotated[str | None, typer.Option(help="w1 window LO,HI [-3,3].")] = None,
    w2_range: Annotated[str | None, typer.Option(help="w2 window LO,HI [-3,3].")] = None,
    gif: Annotated[
        Path | None,
        typer.Option(help="Also write an animation over the recorded steps (.gif or .mp4)."),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Also write a standalone page with a slider over the recorded steps."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-out"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """SGD as a random process: run K chains at once; write chains.npz and chains.png.

    A preset also writes its own figure (hopping.png, fan.png); --gif and --html write the
    density of the chains over the risk on the recorded steps.

    """
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from sgdscape.records.chain_presets import ChainsSetup, get_chain_preset, simulate_chains
    from sgdscape.records.run import RunConfig
    from sgdscape.records.run_files import output_set, prepare_out_dir

    check_out_dir(out)
    _check_output("--gif", gif)
    _check_output("--html", html)
    chosen = None if preset is None else get_chain_preset(preset)
    base = ChainsSetup(RunConfig()) if chosen is None else chosen.setup
    changes: dict[str, Any] = {
        "model": model,
        "problem": problem,
        "samples": samples,
        "noise_std": noise_std,
        "seed": seed,
        "init": None
        if init is None
        else (init.strip().lower() if is_init_word(init) else parse_numbers("--init", init)),
        "lr": lr,
        "optimizer": optimizer,
        "batch_size": batch_size,
        "grid": grid,
        "w1_range": parse_numbers("--w1-range", w1_range, 2),
        "w2_range": parse_numbers("--w2-range", w2_range, 2),
        "n_chains": None if n_chains is None else check_int("--n-chains", n_chains, low=1),
        "steps": None if steps is None else check_int("--steps", steps, low=0),
        "sampling": sampling,
    }
    setup = base.replace(**{k: v for k, v in changes.items() if v is not None})
    if record_steps is not None:
        setup = setup.replace(
            record_steps=tuple(int(s) for s in parse_record_steps(record_steps, setup.steps))
        )
    run = _with_chains_bar(simulate_chains, setup, quiet)
    result = run.chains
    out = prepare_out_dir(out)
    from sgdscape.views.chains_figure import plot_chains
    from sgdscape.views.step_figure import save_figure

    names = ["chains.npz", "chains.png"]
    note = None
    with output_set(out, "chains") as stage:
        surface = run.landscape
        np.savez_compressed(
            stage / "chains.npz",
            record_steps=result.record_steps,
            iterates=result.iterates,
            final=result.final,
            diverged=result.diverged,
            w1=surface.w1,
            w2=surface.w2,
            risk=surface.risk,
        )
        save_figure(plot_chains(result, surface, run.data), stage / "chains.png")
        if chosen is not None and chosen.figure != "theory":
            from sgdscape.views.chain_presets_figure import preset_figure

            drawn = _with_chains_bar(
                lambda progress: preset_figure(chosen, run, progress=progress), None, quiet
            )
            save_figure(drawn.figure, stage / drawn.name)
            names.append(drawn.name)
            note = drawn.note
        elif chosen is not None:
            from sgdscape.views.chain_presets_figure import theory_note

            note = theory_note(run)
    written = [out / name for name in names]
    if gif is not None:
        _animate_with_bar(run, gif, quiet)
        written.append(gif)
    if html is not None:
        from sgdscape.surfaces.chains_export import export_chains_html

        written.append(export_chains_html(result, run.landscape, run.data, html))
    diverged = int(result.diverged.sum())
    typer.echo(
        f"sgdscape chains: {result.n_chains} chains, {setup.steps} steps, "
        f"{result.record_steps.size} recorded, {diverged} diverged"
    )
    if note:
        typer.echo(note)
    for path in written:
        typer.echo(f"wrote {path}")


def _with_chains_bar(work: Any, argument: Any, quiet: bool) -> Any:
    """``work(argument, progress=...)`` (or ``work(progress)`` when ``argument`` is None)
    with a transient rich progress bar on stderr, off with ``quiet`` or off a terminal."""
    from rich.progress import Progress

    console = progress_console()
    with Progress(transient=True, console=console, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task("chains" if argument is not None else "sweep", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if argument is None:
            return work(update)
        return work(argument, progress=update)


def _animate_with_bar(run: Any, path: Path, quiet: bool) -> None:
    from rich.progress import Progress

    from sgdscape.views.chains_animation import animate_chains

    console = progress_console()
    with Progress(transient=True, console=console, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task(path.suffix.lstrip(".").upper(), total=None)
        animate_chains(
            run.chains,
            run.landscape,
            run.data,
            path,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
