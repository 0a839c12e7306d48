"""Option parsing shared by the commands: numbers, sizes, steps, and every run option.

:func:`with_run_options` gives a command the whole set of run options (``--model``, ``--lr``,
``--preset``, ...) and hands it the :class:`~sgdscape.records.run.RunConfig` they describe.

Nothing here imports torch when the module loads: ``sgdscape --help`` and a mistyped option
answer in a fraction of a second. Help texts that name the models are templates that
:class:`ModelHelp` fills in when a command's help is shown.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeGuard

import typer
from typer.core import TyperCommand

from sgdscape.errors import SgdscapeError

if TYPE_CHECKING:
    from sgdscape.core.models import Model
    from sgdscape.records.run import RunConfig


def parse_numbers(
    option: str, text: str | None, count: int | None = None
) -> tuple[float, ...] | None:
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


def _default_inits(models: dict[str, Model]) -> str:
    """Each model's default init, grouped: ``1.2,-2.3 (relu-unit, ...); 1.2,-2.3,0.5 (...)``."""
    groups: dict[tuple[float, ...], list[str]] = {}
    for name, model in models.items():
        groups.setdefault(model.default_init, []).append(name)
    return "; ".join(
        f"{','.join(f'{v:g}' for v in start)} for {', '.join(names)}"
        for start, names in groups.items()
    )


def _model_help_values() -> dict[str, str]:
    """What the help templates' ``{models}`` and ``{default_inits}`` stand for."""
    from sgdscape.core.models import MODELS

    return {"{models}": ", ".join(MODELS), "{default_inits}": _default_inits(MODELS)}


class ModelHelp(TyperCommand):
    """A command whose option help may name the models (``{models}``, ``{default_inits}``).

    The model registry needs torch, so the names are filled in only when the help is shown;
    parsing the command line, and the errors it reports, stay free of it.
    """

    def format_help(self, ctx: Any, formatter: Any) -> None:  # typer's vendored click types
        values = _model_help_values()
        for param in self.params:
            text = getattr(param, "help", None)
            if text:
                for key, value in values.items():
                    text = text.replace(key, value)
                param.help = text  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)


INIT_HELP = (
    "Initial parameters, one number per parameter of the model (e.g. 1.2,-2.3 for w1,w2); "
    "'random' draws them from the model's init rule, 'default' takes the model's default. "
    "Left out: the preset's or --config's init, else the model's default, the seed's "
    "1.2,-2.3 then 0.5 for each further parameter [{default_inits}]."
)


MODEL_HELP = "Model: {models} [relu-unit]."


def is_init_word(text: str | None) -> TypeGuard[str]:
    return text is not None and text.strip().lower() in ("default", "random")


def config_options(
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
        "x_range": parse_numbers("--x-range", x_range, 2),
        "student_df": student_df,
        "outlier_fraction": outlier_fraction,
        "outlier_scale": outlier_scale,
        "seed": seed,
        "data": None if data is None else str(data),
        "model": model,
        "loss": loss,
        "init": init.strip().lower() if is_init_word(init) else parse_numbers("--init", init),
        "inits": inits,
        "lr": lr,
        "optimizer": optimizer,
        "batch_size": batch_size,
        "epochs": epochs,
        "sampling": sampling,
        "sampling_seed": sampling_seed,
        "schedule": schedule,
        "grid": grid,
        "w1_range": parse_numbers("--w1-range", w1_range, 2),
        "w2_range": parse_numbers("--w2-range", w2_range, 2),
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
        numbers = parse_numbers("a value", text)
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


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the heavy modules (torch) import.

    Importing creates hundreds of thousands of objects that live as long as the process;
    the collector, counting them, would walk them all several times on the way (about
    0.2 s of CPU for torch). Nothing is lost: the previous state is restored on the way out
    and any garbage made meanwhile is collected later as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def collector_frozen() -> Iterator[None]:
    """Leave every object that exists now out of the garbage collector's passes while the
    block runs (:func:`gc.freeze`), and let them back in afterwards (:func:`gc.unfreeze`).

    A command then makes many short-lived objects (drawing figures above all), so the
    collector runs often; each full pass would otherwise walk every object torch made, for
    nothing. Objects made inside the block are collected as usual. Nested, or inside a
    freeze of the caller's, only the outermost block unfreezes.
    """
    outermost = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        yield
    finally:
        if outermost:
            gc.unfreeze()


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command every run option: it receives ``config: RunConfig`` built from them.

    The command's own parameters come first in ``--help``; the run options follow.
    """
    own = inspect.signature(command)
    own_names = [name for name in own.parameters if name not in ("config", "preset_name")]

    @functools.wraps(command, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
    def wrapper(**kwargs: Any) -> Any:
        mine = {name: kwargs.pop(name) for name in own_names}
        with contextlib.ExitStack() as stack:
            with collector_paused():  # the options' checks import torch
                config, preset = config_options(**kwargs)
                stack.enter_context(collector_frozen())  # what it made, until the command ends
            if "preset_name" in own.parameters:
                mine["preset_name"] = preset
            return command(config=config, **mine)

    parameters = [_evaluated(own.parameters[name], command) for name in own_names] + [
        _evaluated(p, config_options) for p in inspect.signature(config_options).parameters.values()
    ]
    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def _evaluated(parameter: inspect.Parameter, function: Callable[..., Any]) -> inspect.Parameter:
    """``parameter`` with its annotation evaluated in ``function``'s module.

    Only the options typer reads are evaluated: ``config: RunConfig`` names a type that the
    command modules import for type checking only (importing it would import torch).
    """
    if not isinstance(parameter.annotation, str):
        return parameter
    annotation = eval(parameter.annotation, function.__globals__)
    return parameter.replace(annotation=annotation)


def check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SgdscapeError(
            f"--out {str(out)!r} is an existing file, not a directory; choose another path."
        )
