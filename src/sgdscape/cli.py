"""The ``sgdscape`` command line (typer): parse, call the lower layers, report.

Every bad input ends with one line ``sgdscape: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sgdscape.errors import SgdscapeError
from sgdscape.run import RunConfig

# typer >= 0.24 vendors click; find its ClickException through a public subclass.
_CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(TyperGroup):
    """A command group whose usage errors and :class:`SgdscapeError` print one line, exit 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            _fail("interrupted.", code=130)
        except _CLICK_EXCEPTION as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # bare `sgdscape`: show the help
                typer.echo(error.format_message())
                sys.exit(0)
            _fail(_one_line(error.format_message()), code=error.exit_code)
        except SgdscapeError as error:
            _fail(_one_line(str(error)))
        except OSError as error:
            _fail(_one_line(f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")))
        if isinstance(result, int) and result != 0:
            sys.exit(result)
        return result


def _one_line(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"sgdscape: error: {message}", err=True)
    sys.exit(code)


app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="See how stochastic gradient methods move on loss landscapes.",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version as package_version

        typer.echo(f"sgdscape {package_version('sgdscape')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """See how stochastic gradient methods move on loss landscapes."""


def _numbers(option: str, text: str | None, count: int | None = None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise SgdscapeError(
            f"{option} must be comma-separated numbers such as 1.2,-2.3, got {text!r}."
        ) from None
    if count is not None and len(values) != count:
        raise SgdscapeError(f"{option} needs {count} numbers LOW,HIGH, got {text!r}.")
    return values


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """``"1GiB"``, ``"512MB"``, ``"1e9"`` -> bytes."""
    match = _SIZE.match(text.replace("e", "E") if "e" in text.lower() else text)
    try:
        if match is None:
            return int(float(text))
        number, unit = float(match.group(1)), (match.group(2) or "").upper().rstrip("B")
        power = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "KI": 1, "MI": 2, "GI": 3, "TI": 4}[unit]
        return int(number * (1024 if "I" in unit or unit else 1) ** power)
    except (ValueError, KeyError):
        raise SgdscapeError(
            f"--memory-budget must be a size such as 1GiB or 512MiB, got {text!r}."
        ) from None


def select_steps(spec: str, n_steps: int) -> list[int]:
    """Steps to draw: ``all``, ``none``, ``auto`` (five spread over the run) or ``0,10,99``."""
    spec = spec.strip().lower()
    if spec == "none":
        return []
    if spec == "all":
        return list(range(n_steps))
    if spec == "auto":
        return sorted({round(i * (n_steps - 1) / 4) for i in range(5)})
    try:
        steps = sorted({int(part) for part in spec.split(",")})
    except ValueError:
        raise SgdscapeError(
            f"--figures must be all, none, auto or step numbers such as 0,10,99, got {spec!r}."
        ) from None
    bad = [s for s in steps if not 0 <= s < n_steps]
    if bad:
        raise SgdscapeError(f"--figures step {bad[0]} is outside the run's steps 0..{n_steps - 1}.")
    return steps


def _config_options(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML config; other options override it.")
    ] = None,
    samples: Annotated[int | None, typer.Option(help="Number of samples [100].")] = None,
    slope: Annotated[float | None, typer.Option(help="Ground-truth slope [2].")] = None,
    noise_std: Annotated[float | None, typer.Option(help="Noise standard deviation [0.1].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of data and sampling [0].")] = None,
    data: Annotated[Path | None, typer.Option(help="CSV file with columns x,y.")] = None,
    problem: Annotated[str | None, typer.Option(help="Data problem [linear].")] = None,
    model: Annotated[str | None, typer.Option(help="Model name [relu-unit].")] = None,
    loss: Annotated[str | None, typer.Option(help="Loss name [problem's default].")] = None,
    init: Annotated[str | None, typer.Option(help="Initial parameters W1,W2 [1.2,-2.3].")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate [0.05].")] = None,
    optimizer: Annotated[str | None, typer.Option(help="torch.optim optimizer [sgd].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Samples per step [1].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the data [1].")] = None,
    shuffle: Annotated[
        bool | None, typer.Option("--shuffle/--no-shuffle", help="Reshuffle every epoch.")
    ] = None,
    grid: Annotated[int | None, typer.Option(help="Grid points per axis [100].")] = None,
    w1_range: Annotated[str | None, typer.Option(help="w1 window LO,HI [-3,3].")] = None,
    w2_range: Annotated[str | None, typer.Option(help="w2 window LO,HI [-3,3].")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto [cpu].")] = None,
    memory_budget: Annotated[
        str | None, typer.Option(help="Working memory, e.g. 1GiB [1GiB].")
    ] = None,
) -> RunConfig:
    """Build the RunConfig that the options describe (the seed's experiment by default)."""
    from sgdscape.devices import resolve_device
    from sgdscape.run import RunConfig, load_config

    base = load_config(config_file) if config_file is not None else RunConfig()
    if data is not None and not data.is_file():
        raise SgdscapeError(f"--data file {str(data)!r} does not exist or is not a file.")
    changes: dict[str, Any] = {
        "samples": samples,
        "slope": slope,
        "noise_std": noise_std,
        "seed": seed,
        "data": None if data is None else str(data),
        "problem": problem,
        "model": model,
        "loss": loss,
        "init": _numbers("--init", init),
        "lr": lr,
        "optimizer": optimizer,
        "batch_size": batch_size,
        "epochs": epochs,
        "grid": grid,
        "w1_range": _numbers("--w1-range", w1_range, 2),
        "w2_range": _numbers("--w2-range", w2_range, 2),
        "device": device,
        "memory_budget": None if memory_budget is None else parse_bytes(memory_budget),
    }
    if shuffle is not None:
        changes["sampling"] = "shuffle" if shuffle else "in-order"
    config = base.replace(**{k: v for k, v in changes.items() if v is not None})
    resolve_device(config.device)
    return config


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command every run option: it receives ``config: RunConfig`` built from them.

    The command's own parameters come first in ``--help``; the run options follow.
    """
    own = inspect.signature(command, eval_str=True)
    shared = inspect.signature(_config_options, eval_str=True)
    own_names = [name for name in own.parameters if name != "config"]

    @functools.wraps(command, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
    def wrapper(**kwargs: Any) -> Any:
        mine = {name: kwargs.pop(name) for name in own_names}
        return command(config=_config_options(**kwargs), **mine)

    parameters = [own.parameters[name] for name in own_names] + list(shared.parameters.values())
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


@app.command()
@with_run_options
def run(
    config: RunConfig,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-out"),
    figures: Annotated[
        str, typer.Option(help="Steps to draw: auto, all, none, or e.g. 0,10,99.")
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run an experiment (by default the seed notebook's) and write run.npz, config.toml, PNGs."""
    from sgdscape.run import prepare_out_dir
    from sgdscape.run import run as run_experiment

    if out.exists() and not out.is_dir():
        raise SgdscapeError(
            f"--out {str(out)!r} is an existing file, not a directory; choose another path."
        )
    if figures.strip().lower() not in {"all", "none", "auto"}:
        select_steps(figures, 10**12)  # syntax check before computing

    result = _with_progress(lambda progress: run_experiment(config, progress=progress), quiet)
    steps = select_steps(figures, result.n_steps)
    written = _write_outputs(result, prepare_out_dir(out), steps, quiet)
    trajectory = result.trajectory
    summary = (
        f"{result.n_steps} steps, final risk {float(trajectory.final_risk):.4g}"
        if not trajectory.diverged
        else f"diverged at step {int(trajectory.diverged_step)} (inf or NaN); recorded up to there"
    )
    typer.echo(f"sgdscape run: {summary}")
    for path in written:
        typer.echo(f"wrote {path}")


def _with_progress(work: Any, quiet: bool) -> Any:
    if quiet:
        return work(None)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("landscape", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        return work(update)


def _write_outputs(result: Any, out: Path, steps: list[int], quiet: bool) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from sgdscape.plot import plot_step, save_figure
    from sgdscape.run import save

    written = save(result, out)
    width = len(str(result.n_steps - 1))
    if steps:
        from rich.progress import track

        for step in track(steps, description="figures", disable=quiet, transient=True):
            figure = plot_step(result, step)
            written.append(save_figure(figure, out / f"step_{step:0{width}d}.png"))
    return written


@app.command()
def bench(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the table as JSON here.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes: a smoke test.")] = False,
    repeats: Annotated[int, typer.Option(help="Best of N.", min=1)] = 3,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads [torch's default].", min=1)
    ] = None,
) -> None:
    """Measure landscapes and trajectories against the seed's loops and the copy bandwidth."""
    import torch

    from sgdscape.bench import machine, print_table, suite, write_json
    from sgdscape.devices import resolve_device

    if json_path is not None and json_path.is_dir():
        raise SgdscapeError(f"--json {str(json_path)!r} is a directory; give a file name.")
    resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    rows = suite(device, quick=quick, repeats=repeats)
    typer.echo(f"machine: {machine()}")
    print_table(rows, typer.echo)
    if json_path is not None:
        write_json(str(json_path), rows, {"benchmark": "suite", "quick": quick})
        typer.echo(f"wrote {json_path}")


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="sgdscape: %(message)s")
    app()


if __name__ == "__main__":
    main()
