"""The ``sgdscape`` command line (typer): parse, call the lower layers, report.

Every bad input ends with one line ``sgdscape: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeGuard, cast

import typer
from typer.core import TyperGroup

from sgdscape.core.models import MODELS
from sgdscape.errors import SgdscapeError, check_choice, check_int, check_seed
from sgdscape.records.run import RunConfig


def _click_exception() -> type[Exception]:
    """typer >= 0.24 vendors click: its ClickException, found through a public subclass."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException" and issubclass(cls, Exception):
            return cls
    raise ImportError("typer.BadParameter no longer derives from click's ClickException")


_CLICK_EXCEPTION = _click_exception()


class _ClickError(Protocol):
    """What the CLI reads of a ClickException."""

    exit_code: int

    def format_message(self) -> str: ...


class OneLineErrors(TyperGroup):
    """A command group whose usage errors and :class:`SgdscapeError` print one line, exit 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not windows_expand_args:  # passed on only when given (click < 8.0.1 lacks it)
            extra["windows_expand_args"] = False
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            _fail("interrupted.", code=130)
        except _CLICK_EXCEPTION as caught:
            error = cast(_ClickError, caught)
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
    except (ValueError, KeyError, OverflowError):  # OverflowError: inf, 1e400
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


def _default_inits() -> str:
    """Each model's default init, grouped: ``1.2,-2.3 (relu-unit, ...); 1.2,-2.3,0.5 (...)``."""
    groups: dict[tuple[float, ...], list[str]] = {}
    for name, model in MODELS.items():
        groups.setdefault(model.default_init, []).append(name)
    return "; ".join(
        f"{','.join(f'{v:g}' for v in start)} for {', '.join(names)}"
        for start, names in groups.items()
    )


INIT_HELP = (
    "Initial parameters, one number per parameter of the model (e.g. 1.2,-2.3 for w1,w2); "
    "'random' draws them from the model's init rule, 'default' takes the model's default. "
    "Left out: the preset's or --config's init, else the model's default, the seed's "
    f"1.2,-2.3 then 0.5 for each further parameter [{_default_inits()}]."
)


MODEL_HELP = f"Model: {', '.join(MODELS)} [relu-unit]."


def _is_init_word(text: str | None) -> TypeGuard[str]:
    return text is not None and text.strip().lower() in ("default", "random")


def _config_options(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML config; other options override it.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Start from a named preset (see `sgdscape presets`).")
    ] = None,
    problem: Annotated[str | None, typer.Option(help="Data problem [linear].")] = None,
    samples: Annotated[int | None, typer.Option(help="Number of samples [100].")] = None,
    slope: Annotated[float | None, typer.Option(help="Ground-truth slope [2].")] = None,
    noise_std: Annotated[float | None, typer.Option(help="Noise standard deviation [0.1].")] = None,
    x_range: Annotated[str | None, typer.Option(help="x drawn from LO,HI [-1,1].")] = None,
    student_df: Annotated[
        float | None, typer.Option(help="Degrees of freedom of student-t noise [2].")
    ] = None,
    outlier_fraction: Annotated[
        float | None, typer.Option(help="Fraction of outliers (problem outliers) [0.1].")
    ] = None,
    outlier_scale: Annotated[float | None, typer.Option(help="Outlier shift [5].")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of data and sampling [0].")] = None,
    data: Annotated[Path | None, typer.Option(help="CSV file with columns x,y.")] = None,
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    loss: Annotated[str | None, typer.Option(help="Loss name [problem's default].")] = None,
    init: Annotated[str | None, typer.Option(help=INIT_HELP)] = None,
    inits: Annotated[
        str | None, typer.Option(help="Many inits at once: grid:N (N x N) or random:K.")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate [0.05].")] = None,
    optimizer: Annotated[str | None, typer.Option(help="torch.optim optimizer [sgd].")] = None,
    optimizer_option: Annotated[
        list[str] | None,
        typer.Option(
            "--optimizer-option", "-O", help="Optimizer hyperparameter NAME=VALUE (repeatable)."
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Samples per step [1].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the data [1].")] = None,
    shuffle: Annotated[
        bool | None, typer.Option("--shuffle/--no-shuffle", help="Reshuffle every epoch.")
    ] = None,
    sampling: Annotated[
        str | None, typer.Option(help="in-order, shuffle or with-replacement [in-order].")
    ] = None,
    sampling_seed: Annotated[
        int | None, typer.Option(help="Seed of the minibatch order [the seed].")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="Learning-rate schedule: constant, step, exponential, cosine, ..."),
    ] = None,
    schedule_option: Annotated[
        list[str] | None,
        typer.Option(help="Schedule option NAME=VALUE, e.g. gamma=0.9 (repeatable)."),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            help="Overlay runs differing in one field: FIELD=V1,V2 (use ; between tuple "
            "values, e.g. init=1,1;-1,-1)."
        ),
    ] = None,
    grid: Annotated[int | None, typer.Option(help="Grid points per axis [100].")] = None,
    w1_range: Annotated[str | None, typer.Option(help="w1 window LO,HI [-3,3].")] = None,
    w2_range: Annotated[str | None, typer.Option(help="w2 window LO,HI [-3,3].")] = None,
    slice_axes: Annotated[
        str | None, typer.Option(help="Two parameters to vary in the landscape, e.g. w1,b.")
    ] = None,
    slice_fixed: Annotated[
        list[str] | None,
        typer.Option(help="Value of a parameter off the slice, NAME=VALUE (repeatable)."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto [cpu].")] = None,
    memory_budget: Annotated[
        str | None, typer.Option(help="Working memory, e.g. 1GiB [1GiB].")
    ] = None,
) -> tuple[RunConfig, str | None]:
    """Build the RunConfig that the options describe (the seed's experiment by default)."""
    from sgdscape.core.devices import resolve_device
    from sgdscape.records.presets import get_preset
    from sgdscape.records.run import RunConfig, load_config

    if config_file is not None and preset is not None:
        raise SgdscapeError("give either --config or --preset, not both.")
    if config_file is not None:
        base = load_config(config_file)
    elif preset is not None:
        base = get_preset(preset).config
    else:
        base = RunConfig()
    if data is not None and not data.is_file():
        raise SgdscapeError(f"--data file {str(data)!r} does not exist or is not a file.")
    changes: dict[str, Any] = {
        "problem": problem,
        "samples": samples,
        "slope": slope,
        "noise_std": noise_std,
        "x_range": _numbers("--x-range", x_range, 2),
        "student_df": student_df,
        "outlier_fraction": outlier_fraction,
        "outlier_scale": outlier_scale,
        "seed": seed,
        "data": None if data is None else str(data),
        "model": model,
        "loss": loss,
        "init": init.strip().lower() if _is_init_word(init) else _numbers("--init", init),
        "inits": inits,
        "lr": lr,
        "optimizer": optimizer,
        "batch_size": batch_size,
        "epochs": epochs,
        "sampling": sampling,
        "sampling_seed": sampling_seed,
        "schedule": schedule,
        "grid": grid,
        "w1_range": _numbers("--w1-range", w1_range, 2),
        "w2_range": _numbers("--w2-range", w2_range, 2),
        "slice_axes": None if slice_axes is None else _names("--slice-axes", slice_axes, 2),
        "device": device,
        "memory_budget": None if memory_budget is None else parse_bytes(memory_budget),
    }
    if shuffle is not None:
        if sampling is not None:
            raise SgdscapeError("give either --shuffle/--no-shuffle or --sampling, not both.")
        changes["sampling"] = "shuffle" if shuffle else "in-order"
    if optimizer_option:
        options = dict(base.optimizer_options) if optimizer is None else {}
        changes["optimizer_options"] = options | _assignments(
            "--optimizer-option", optimizer_option
        )
    if schedule_option:
        changes["schedule_options"] = _assignments("--schedule-option", schedule_option)
    if slice_fixed:
        changes["slice_fixed"] = _assignments("--slice-fixed", slice_fixed)
    config = base.replace(**{k: v for k, v in changes.items() if v is not None})
    if compare is not None:
        first, variants = parse_compare(compare, config)
        config = config.replace(**first, compare=variants)
    resolve_device(config.device)
    return config, preset


def _names(option: str, text: str, count: int) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    if len(names) != count or not all(names):
        raise SgdscapeError(f"{option} needs {count} comma-separated names, got {text!r}.")
    return names


def _value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.9"`` -> 0.9, ``"true"`` -> True, ``"1,2"`` -> (1.0, 2.0), else the text."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "," in text:
        numbers = _numbers("a value", text)
        return numbers
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _assignments(option: str, items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        name, sign, value = item.partition("=")
        if not sign or not name.strip() or not value.strip():
            raise SgdscapeError(f"{option} takes NAME=VALUE, got {item!r}.")
        out[name.strip()] = _value(value)
    return out


def parse_compare(text: str, config: RunConfig) -> tuple[dict[str, Any], tuple[dict, ...]]:
    """``FIELD=V1,V2,...`` -> (changes for the base run, one variant per further value).

    ``FIELD`` is a config field that compare variants may change, or an option of the
    optimizer (``momentum=0,0.9``). Values are separated by ``;`` when any contains a comma.
    """
    from sgdscape.core.optimizers import OPTIMIZERS
    from sgdscape.records.run import VARIANT_FIELDS

    name, sign, values = text.partition("=")
    name = name.strip().replace("-", "_")
    separator = ";" if ";" in values else ","
    parts = [part for part in values.split(separator) if part.strip()]
    if not sign or len(parts) < 2:
        raise SgdscapeError(f"--compare takes FIELD=V1,V2 with at least two values, got {text!r}.")
    if len(parts) > 8:
        raise SgdscapeError(f"--compare takes at most 8 values, got {len(parts)}.")
    optimizer_options = OPTIMIZERS[config.optimizer].options
    if name in VARIANT_FIELDS:
        runs = [{name: _value(part)} for part in parts]
    elif name in optimizer_options:
        runs = [
            {"optimizer_options": {**config.optimizer_options, name: _value(part)}}
            for part in parts
        ]
    else:
        raise SgdscapeError(
            f"--compare field {name!r} is not one that runs can differ in; use one of: "
            f"{', '.join(sorted(VARIANT_FIELDS))}, or an option of {config.optimizer!r}: "
            f"{', '.join(optimizer_options)}."
        )
    return runs[0], tuple(runs[1:])


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command every run option: it receives ``config: RunConfig`` built from them.

    The command's own parameters come first in ``--help``; the run options follow.
    """
    own = inspect.signature(command, eval_str=True)
    shared = inspect.signature(_config_options, eval_str=True)
    own_names = [name for name in own.parameters if name not in ("config", "preset_name")]

    @functools.wraps(command, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
    def wrapper(**kwargs: Any) -> Any:
        mine = {name: kwargs.pop(name) for name in own_names}
        config, preset = _config_options(**kwargs)
        if "preset_name" in own.parameters:
            mine["preset_name"] = preset
        return command(config=config, **mine)

    parameters = [own.parameters[name] for name in own_names] + list(shared.parameters.values())
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


@app.command()
@with_run_options
def run(
    config: RunConfig,
    preset_name: str | None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-out"),
    figures: Annotated[
        str, typer.Option(help="Steps to draw: auto, all, none, or e.g. 0,10,99.")
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run an experiment (by default the seed notebook's) and write run.npz, config.toml, PNGs."""
    from sgdscape.records.presets import get_preset
    from sgdscape.records.run import prepare_out_dir
    from sgdscape.records.run import run as run_experiment

    _check_out_dir(out)
    if figures.strip().lower() not in {"all", "none", "auto"}:
        select_steps(figures, 10**12)  # syntax check before computing
    with_basins = preset_name is not None and get_preset(preset_name).basins

    result = _with_progress(lambda progress: run_experiment(config, progress=progress), quiet)
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


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SgdscapeError(
            f"--out {str(out)!r} is an existing file, not a directory; choose another path."
        )


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


@app.command()
def presets() -> None:
    """List the named presets, each a classic behaviour of stochastic optimization."""
    from sgdscape.records.presets import PRESETS

    width = max(len(name) for name in PRESETS)
    for name, preset in PRESETS.items():
        typer.echo(f"{name:<{width}}  {preset.story}")
    typer.echo("\nRun one with: sgdscape run --preset NAME")


@app.command(name="basins")
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
    from sgdscape.records.run import output_set, prepare_out_dir, risk_landscape
    from sgdscape.views.overlays import plot_basins
    from sgdscape.views.step_figure import save_figure

    _check_out_dir(out)
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


@app.command(name="chains")
def chains_command(
    model: Annotated[str, typer.Option(help=f"Model: {', '.join(MODELS)}.")] = "relu-unit",
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
    from sgdscape.records.run import make_data, output_set, prepare_out_dir, risk_landscape
    from sgdscape.views.chains_figure import plot_chains
    from sgdscape.views.step_figure import save_figure

    _check_out_dir(out)
    window: dict[str, Any] = {
        "w1_range": _numbers("--w1-range", w1_range, 2),
        "w2_range": _numbers("--w2-range", w2_range, 2),
    }
    config = RunConfig(
        problem=problem,
        samples=samples,
        seed=seed,
        model=model,
        init=init.strip().lower() if _is_init_word(init) else _numbers("--init", init),
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
        with _progress_console().status(status):
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


_OUTPUT_SUFFIXES = {
    "--html": (".html", ".htm"),
    "--gif": (".gif",),
    "--mp4": (".mp4",),
    "--surface": (".html", ".htm"),
}


def parse_step_range(spec: str | None) -> slice:
    """``A:B`` or ``A:B:S`` as a Python slice (steps A..B-1 every S; A or B may be left out,
    negative bounds count from the end). Malformed text or a stride below 1 is an error."""
    if spec is None:
        return slice(None)
    parts = spec.strip().split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        numbers = [int(part) if part.strip() else None for part in parts]
    except ValueError:
        raise SgdscapeError(
            f"--steps must be a range A:B or A:B:S such as 0:50 or 10: or ::2, got {spec!r}."
        ) from None
    stride = numbers[2] if len(numbers) == 3 else None
    if stride is not None and stride < 1:
        raise SgdscapeError(f"--steps needs a stride S of at least 1, got {spec!r}.")
    return slice(numbers[0], numbers[1], stride)


def resolve_step_range(spec: str | None, n_steps: int) -> range:
    """The steps of ``--steps`` for a run of ``n_steps`` steps (every step by default).

    Bounds are clipped to the run as a Python slice clips them (``0:50`` of a 7-step run
    is steps 0..6); a range that holds no step at all is an error.
    """
    chosen = range(n_steps)[parse_step_range(spec)]
    if not chosen:
        raise SgdscapeError(
            f"--steps {spec!r} selects none of the run's steps 0..{n_steps - 1}; "
            f"choose A < B within them (for example 0:{n_steps})."
        )
    return chosen


def parse_size(spec: str | None) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` in pixels, e.g. ``960x420``."""
    if spec is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", spec)
    if match is None:
        raise SgdscapeError(f"--size must be WIDTHxHEIGHT in pixels such as 960x420, got {spec!r}.")
    width, height = int(match.group(1)), int(match.group(2))
    if not (64 <= width <= 8192 and 64 <= height <= 8192):
        raise SgdscapeError(
            f"--size {spec!r}: width and height must be between 64 and 8192 pixels."
        )
    return width, height


def _check_output(option: str, path: Path) -> None:
    if path.is_dir():
        raise SgdscapeError(f"{option} {str(path)!r} is a directory; give a file name.")
    if path.suffix.lower() not in _OUTPUT_SUFFIXES[option]:
        raise SgdscapeError(
            f"{option} {str(path)!r} must end in {' or '.join(_OUTPUT_SUFFIXES[option])}."
        )
    parent = path.parent
    if not parent.is_dir():
        raise SgdscapeError(
            f"{option} {str(path)!r}: the directory {str(parent)!r} does not exist."
        )


@app.command()
@with_run_options
def export(
    config: RunConfig,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a standalone interactive HTML page.")
    ] = None,
    gif: Annotated[Path | None, typer.Option("--gif", help="Write a GIF animation.")] = None,
    mp4: Annotated[
        Path | None, typer.Option("--mp4", help="Write an MP4 animation (needs ffmpeg).")
    ] = None,
    surface: Annotated[
        Path | None,
        typer.Option(
            "--surface",
            help="Write the (log) loss landscape as an interactive 3-D surface with the path "
            "(a standalone HTML page).",
        ),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Saved run directory (run.npz + config.toml) instead of running."
        ),
    ] = None,
    view_file: Annotated[
        Path | None,
        typer.Option(
            "--view",
            help="A real network's saved stochastic view (network.npz from `sgdscape network`) "
            "instead of a run.",
        ),
    ] = None,
    fps: Annotated[float, typer.Option(help="Steps per second when playing.")] = 10.0,
    steps: Annotated[
        str | None,
        typer.Option(
            help="Steps to show, A:B or A:B:S, a Python slice: bounds past the run are "
            "clipped, negative ones count from the end [all]."
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="Frame size WIDTHxHEIGHT in pixels [960x420; HTML 1200x600]."),
    ] = None,
    dpi: Annotated[float, typer.Option(help="Animation dots per inch (text size).")] = 80.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Export a run (or a network's view) as an HTML page, a GIF, an MP4 and/or a 3-D surface."""
    import shutil

    from sgdscape.errors import check_dpi, check_fps

    outputs = {
        name: path
        for name, path in (("--html", html), ("--gif", gif), ("--mp4", mp4), ("--surface", surface))
    }
    if all(path is None for path in outputs.values()):
        raise SgdscapeError(
            "export needs at least one of --html FILE, --gif FILE, --mp4 FILE, --surface FILE."
        )
    for option, path in outputs.items():
        if path is not None:
            _check_output(option, path)
    check_fps("--fps", fps)
    check_dpi("--dpi", dpi)
    parse_step_range(steps)
    frame_size = parse_size(size)
    if mp4 is not None and shutil.which("ffmpeg") is None:
        raise SgdscapeError(
            "--mp4 needs the ffmpeg program on PATH and none was found; install ffmpeg "
            "(e.g. apt install ffmpeg, brew install ffmpeg) or export a GIF."
        )
    if view_file is not None:
        if source is not None or config != RunConfig():
            raise SgdscapeError(
                "--view loads a saved network view; drop --from and the run options."
            )
        _export_view(view_file, html, gif, mp4, surface, fps, steps, frame_size, dpi, quiet)
        return
    if source is not None:
        from sgdscape.records.run import load

        if config != RunConfig():
            raise SgdscapeError(
                "--from loads a saved run; drop the run options (or drop --from to run anew)."
            )
        result = load(source)
    else:
        from sgdscape.records.run import run as run_experiment

        result = _with_progress(lambda progress: run_experiment(config, progress=progress), quiet)
    if result.trajectory.iterates.ndim != 2:
        raise SgdscapeError("export draws a single-init run; this run has a batch of inits.")
    chosen = resolve_step_range(steps, result.n_steps)

    def run_surface_page(path: Path) -> None:
        from sgdscape.surfaces.export import export_figure_html
        from sgdscape.views.plotly_figures import run_surface

        export_figure_html(
            run_surface(result),
            path,
            title=f"sgdscape: the risk surface of {result.config.model}",
            about=SURFACE_ABOUT,
        )

    _write_exports(
        result, chosen, html, gif, mp4, surface, run_surface_page, fps, frame_size, dpi, quiet
    )


def _write_exports(
    subject: Any,
    chosen: Sequence[int],
    html: Path | None,
    gif: Path | None,
    mp4: Path | None,
    surface: Path | None,
    write_surface: Callable[[Path], object],
    fps: float,
    frame_size: tuple[int, int] | None,
    dpi: float,
    quiet: bool,
) -> None:
    """Write the asked outputs of a run or a network view and say what each took.

    ``write_surface(path)`` writes the 3-D surface page, the one output that differs.
    """
    import time

    written: list[tuple[Path, float]] = []
    if html is not None:
        from sgdscape.surfaces.export import export_html
        from sgdscape.views.plotly_figures import HEIGHT as HTML_HEIGHT
        from sgdscape.views.plotly_figures import WIDTH as HTML_WIDTH

        began = time.perf_counter()
        width, height = frame_size or (HTML_WIDTH, HTML_HEIGHT)
        export_html(subject, html, steps=chosen, fps=fps, width=width, height=height)
        written.append((html, time.perf_counter() - began))
    for path in (gif, mp4):
        if path is not None:
            began = time.perf_counter()
            _animate_with_bar(subject, path, chosen, fps, frame_size, dpi, quiet)
            written.append((path, time.perf_counter() - began))
    if surface is not None:
        began = time.perf_counter()
        write_surface(surface)
        written.append((surface, time.perf_counter() - began))
    for path, seconds in written:
        typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB in {seconds:.1f} s)")


SURFACE_ABOUT = (
    "The loss (log scale) over the two plotted coordinates, and the path drawn on the "
    "surface. Drag to rotate, scroll to zoom, hover for values."
)


def _export_view(
    view_file: Path,
    html: Path | None,
    gif: Path | None,
    mp4: Path | None,
    surface: Path | None,
    fps: float,
    steps: str | None,
    frame_size: tuple[int, int] | None,
    dpi: float,
    quiet: bool,
) -> None:
    """``sgdscape export --view network.npz``: the same outputs for a network's view."""
    from sgdscape.networks.recording import load_view

    view = load_view(view_file)
    wanted = set(resolve_step_range(steps, view.n_steps))
    chosen = [int(step) for step in view.steps if int(step) in wanted]
    if not chosen:
        raise SgdscapeError(
            f"--steps {steps!r} holds none of the view's stored steps "
            f"({int(view.steps[0])}..{int(view.steps[-1])})."
        )
    _write_exports(
        view,
        chosen,
        html,
        gif,
        mp4,
        surface,
        lambda path: _write_network_surface(view, path),
        fps,
        frame_size,
        dpi,
        quiet,
    )


def _animate_with_bar(
    result: Any,
    path: Path,
    steps: Sequence[int],
    fps: float,
    size: tuple[int, int] | None,
    dpi: float,
    quiet: bool,
) -> None:
    """A GIF/MP4 of a run, or of a network's StochasticView, with a progress bar."""
    import matplotlib

    matplotlib.use("Agg")
    from rich.progress import Progress

    from sgdscape.networks.recording import StochasticView
    from sgdscape.views.animation import DEFAULT_SIZE, animate

    if isinstance(result, StochasticView):
        from sgdscape.views.network_figure import FRAME_SIZE, animate_network

        draw: Any = animate_network
        size = size or FRAME_SIZE
    else:
        draw, size = animate, size or DEFAULT_SIZE
    console = _progress_console()
    with Progress(transient=True, console=console, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task(path.suffix.lstrip(".").upper(), total=len(steps))
        draw(
            result,
            path,
            fps=fps,
            steps=steps,
            size=size,
            dpi=dpi,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def _progress_console() -> Any:
    """Progress bars go to stderr, so stdout keeps only the results."""
    from rich.console import Console

    return Console(stderr=True)


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


def _with_progress(work: Any, quiet: bool) -> Any:
    if quiet:
        return work(None)
    from rich.progress import Progress

    with Progress(transient=True, console=_progress_console()) as bar:
        task = bar.add_task("landscape", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        return work(update)


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
        width = len(str(result.n_steps - 1))
        if steps:
            from rich.progress import track

            for step in track(steps, description="figures", disable=quiet, transient=True):
                figure = plot_step(result, step)
                names.append(save_figure(figure, stage / f"step_{step:0{width}d}.png").name)
    return [out / name for name in names]


@app.command()
def bench(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the table as JSON here.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "cpu",
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A smoke test of a few seconds: small sizes, eager rows only (no compiled "
            "kernels, no fresh-process memory row).",
        ),
    ] = False,
    repeats: Annotated[int, typer.Option(help="Best of N.", min=1, max=1000)] = 3,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads [torch's default].", min=1, max=4096)
    ] = None,
) -> None:
    """Measure landscapes and trajectories against the seed's loops and the copy bandwidth."""
    import torch

    from sgdscape.core.devices import resolve_device
    from sgdscape.surfaces.bench import machine, print_table, suite, write_json

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
            help="Evaluate the grid on a Ray cluster: auto (local or RAY_ADDRESS) or ADDRESS."
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a real network, then draw its stochastic view on the PCA plane of its path."""
    import matplotlib

    matplotlib.use("Agg")
    from sgdscape.networks.examples import get_example
    from sgdscape.networks.recording import record_training, save_view, stochastic_view
    from sgdscape.records.run import output_set, prepare_out_dir
    from sgdscape.views.network_figure import plot_network_step
    from sgdscape.views.step_figure import save_figure

    _check_out_dir(out)
    check_int("--grid", grid, low=2, high=1024)
    check_int("--steps", steps, low=1, high=10_000)
    if epochs is not None:
        check_int("--epochs", epochs, low=1, high=100_000)
    check_seed("--seed", seed)
    from sgdscape.networks.slicing import PRECISIONS

    check_choice("precision", precision, PRECISIONS)
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

    def run_view(progress: Any) -> Any:
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

    view = _with_progress(run_view, quiet)
    out = prepare_out_dir(out)
    with output_set(out, "network") as stage:
        names = [save_view(view, stage / "network.npz").name]
        width = len(str(view.n_steps - 1))
        shown = sorted({round(i * (view.n_steps - 1) / max(1, steps - 1)) for i in range(steps)})
        for step in shown:
            figure = plot_network_step(view, step)
            names.append(save_figure(figure, stage / f"network_step_{step:0{width}d}.png").name)
        if html:
            from sgdscape.surfaces.export import export_html

            names.append(export_html(view, stage / "network.html").name)
        if gif:
            _animate_with_bar(
                view, stage / "network.gif", list(view.steps), 10.0, None, 80.0, quiet
            )
            names.append("network.gif")
        if surface:
            names.append(_write_network_surface(view, stage / "surface.html").name)
    written = [out / name for name in names]
    variance = view.explained_variance
    typer.echo(
        f"sgdscape network: PCA plane explains {variance[0]:.1%} + {variance[1]:.1%} of the "
        f"path; full-data loss {view.risk[0]:.4g} -> {view.risk[-1]:.4g}"
    )
    for path in written:
        typer.echo(f"wrote {path}")


def _write_network_surface(view: Any, path: Path) -> Path:
    """The view's 3-D surface page at ``path`` (atomically)."""
    import importlib.util

    from sgdscape.surfaces.export import export_figure_html
    from sgdscape.views.network_figure import network_surface

    if importlib.util.find_spec("plotly") is None:  # pragma: no cover - depends on the env
        raise SgdscapeError(
            "the 3-D surface needs plotly; install it with: pip install 'sgdscape[export]'."
        )
    return export_figure_html(
        network_surface(view),
        path,
        title=f"sgdscape: the loss surface of {view.info.get('name', 'a network')}",
        about="The full-data loss (log scale) on the PCA plane of the training path, and the "
        "path's projection drawn on the surface. Drag to rotate, scroll to zoom, hover for values.",
    )


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="sgdscape: %(message)s")
    app()


if __name__ == "__main__":
    main()
