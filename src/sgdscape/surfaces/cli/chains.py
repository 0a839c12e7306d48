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


@app.command(name="chains", cls=ModelHelp)
def chains_command(
    model: Annotated[str, typer.Option(help="Model: {models}.")] = "relu-unit",
    problem: Annotated[str, typer.Option(help="Data problem.")] = "linear",
    samples: Annotated[int, typer.Option(help="Number of samples.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the data; chain k samples with seed + k.")] = 0,
    init: Annotated[
        str,
        typer.Option(
            help="Start of every chain: numbers, one per parameter; 'default' the model's "
            "default; 'random' a draw per chain from the model's init rule."
        ),
    ] = "default",
    n_chains: Annotated[int, typer.Option(help="Number of chains K.")] = 10_000,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.05,
    batch_size: Annotated[int, typer.Option(help="Samples per step.")] = 1,
    sampling: Annotated[
        str, typer.Option(help="with-replacement or shuffle (a permutation per epoch).")
    ] = "with-replacement",
    steps: Annotated[int, typer.Option(help="Optimizer steps per chain.")] = 500,
    optimizer: Annotated[str, typer.Option(help="torch.optim optimizer.")] = "sgd",
    record_steps: Annotated[
        str | None,
        typer.Option(help="Steps to keep, e.g. 0,10,100 [about 50 geometrically spaced]."),
    ] = None,
    grid: Annotated[int, typer.Option(help="Landscape grid points per axis.")] = 100,
    w1_range: Annotated[str | None, typer.Option(help="w1 window LO,HI [-3,3].")] = None,
    w2_range: Annotated[str | None, typer.Option(help="w2 window LO,HI [-3,3].")] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-out"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No status line.")] = False,
) -> None:
    """SGD as a random process: run K chains at once; write chains.npz and chains.png."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from sgdscape.core.chains import chains as run_chains
    from sgdscape.records.run import (
        RunConfig,
        make_data,
        output_set,
        prepare_out_dir,
        risk_landscape,
    )
    from sgdscape.views.chains_figure import plot_chains
    from sgdscape.views.step_figure import save_figure

    check_out_dir(out)
    window: dict[str, Any] = {
        "w1_range": parse_numbers("--w1-range", w1_range, 2),
        "w2_range": parse_numbers("--w2-range", w2_range, 2),
    }
    config = RunConfig(
        problem=problem,
        samples=samples,
        seed=seed,
        model=model,
        init=init.strip().lower() if is_init_word(init) else parse_numbers("--init", init),
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        grid=grid,
        **{k: v for k, v in window.items() if v is not None},
    )
    n_chains = check_int("--n-chains", n_chains, low=1)
    steps = check_int("--steps", steps, low=0)
    record = parse_record_steps(record_steps, steps)
    data = make_data(config)

    def compute() -> Any:
        return run_chains(
            config.model,
            data,
            init=config.init,
            n_chains=n_chains,
            lr=config.lr,
            batch_size=config.batch_size,
            sampling=sampling,
            steps=steps,
            optimizer=config.optimizer,
            loss=config.loss_name,
            seed=config.seed,
            record_steps=record,
        )

    if quiet:
        result = compute()
    else:
        status = f"{n_chains} chains x {steps} steps of {config.optimizer} on {config.model}"
        with progress_console().status(status):
            result = compute()
    surface = risk_landscape(config)
    out = prepare_out_dir(out)
    with output_set(out, "chains") as stage:
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
        save_figure(plot_chains(result, surface, data), stage / "chains.png")
    diverged = int(result.diverged.sum())
    typer.echo(
        f"sgdscape chains: {result.n_chains} chains, {steps} steps, "
        f"{result.record_steps.size} recorded, {diverged} diverged"
    )
    for name in ("chains.npz", "chains.png"):
        typer.echo(f"wrote {out / name}")
