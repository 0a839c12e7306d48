"""The web app's whole state as a URL query string, and the caps that bound a request.

Pure Python (no Dash): parsing never evaluates page text as code; every value goes
through a typed converter and then through :class:`~sgdscape.records.run.RunConfig`, which
validates it. A malformed link falls back to defaults with a notice for the page.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sgdscape.core.models import MODELS
from sgdscape.core.optimizers import OPTIMIZERS, SCHEDULES
from sgdscape.core.problems import PROBLEMS
from sgdscape.core.train import SAMPLINGS
from sgdscape.errors import INT64_MAX, SgdscapeError, check_int, check_number, shown
from sgdscape.records.run import RunConfig

# ---------------------------------------------------------------- caps (bounded requests)
MAX_SAMPLES = 1000
MAX_STEPS = 2000
MAX_EPOCHS = 200
MAX_SEED = 2**31 - 1
MAX_LR = 100.0
MAX_NOISE = 100.0
GRID_CHOICES = (30, 40, 60, 80, 100)
DEFAULT_GRID = 60
MAX_PINS = 3  # compare mode: the current run + 3 pinned = 4 runs
MAX_FRAME_CELLS = 1_500_000  # minibatch-landscape cells sent to the browser per run
MAX_QUERY_CHARS = 8000

# per optimizer: the hyperparameters the app exposes (AppState field names)
OPTIMIZER_CONTROLS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("beta1", "beta2"),
    "adamw": ("beta1", "beta2"),
    "adamax": ("beta1", "beta2"),
    "nadam": ("beta1", "beta2"),
    "radam": ("beta1", "beta2"),
    "rmsprop": ("alpha", "momentum"),
    "adagrad": (),
    "adadelta": ("rho",),
}
SCHEDULE_CONTROLS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "step": ("step_size", "step_gamma"),
    "exponential": ("exp_gamma",),
    "cosine": ("eta_min",),
    "inverse-time": ("decay",),
}


@dataclass(frozen=True)
class AppState:
    """Everything the page shows; the defaults are the seed notebook's experiment.

    ``init`` is the start in plot coordinates ``(a, b)``; ``pins`` are the query strings
    of the runs pinned for compare mode (at most :data:`MAX_PINS`).
    """

    problem: str = "linear"
    model: str = "relu-unit"
    noise: float = 0.1
    samples: int = 100
    seed: int = 0
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    alpha: float = 0.99
    rho: float = 0.9
    schedule: str = "constant"
    step_size: int = 25
    step_gamma: float = 0.5
    exp_gamma: float = 0.97
    eta_min: float = 0.0
    decay: float = 0.1
    batch: int = 1
    epochs: int = 1
    sampling: str = "in-order"
    grid: int = DEFAULT_GRID
    init: tuple[float, float] = (1.2, -2.3)
    step: int = 0
    pins: tuple[str, ...] = field(default_factory=tuple)
    #: draw the sharpness panel (λmax of the risk and the minibatch against step, 2/lr)
    sharpness: bool = False

    def replace(self, **changes: Any) -> AppState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ to a RunConfig
    def optimizer_options(self) -> dict[str, Any]:
        """The optimizer hyperparameters, only those the chosen optimizer takes."""
        out: dict[str, Any] = {}
        names = OPTIMIZER_CONTROLS.get(self.optimizer, ())
        if "momentum" in names:
            out["momentum"] = self.momentum
        if "nesterov" in names and self.nesterov:
            out["nesterov"] = True
        if "beta1" in names:
            out["betas"] = (self.beta1, self.beta2)
        if "alpha" in names:
            out["alpha"] = self.alpha
        if "rho" in names:
            out["rho"] = self.rho
        return out

    def schedule_options(self) -> dict[str, float]:
        """The schedule's options, only those the chosen schedule takes."""
        return {
            "step": {"step_size": self.step_size, "gamma": self.step_gamma},
            "exponential": {"gamma": self.exp_gamma},
            "cosine": {"eta_min_ratio": self.eta_min},
            "inverse-time": {"decay": self.decay},
        }.get(self.schedule, {})

    def full_init(self) -> tuple[float, ...]:
        """``init`` as a full parameter vector: parameters beyond the two plotted ones at the
        model's default init (:attr:`Model.default_init`; the slice passes through them)."""
        return (*self.init, *MODELS[self.model].default_init[2:])

    def to_config(self) -> RunConfig:
        """The validated :class:`RunConfig`, after the app's caps; raises :class:`SgdscapeError`."""
        check_caps(self)
        if self.optimizer == "sgd" and self.nesterov and not self.momentum > 0:
            raise SgdscapeError(
                "Nesterov momentum needs a momentum > 0; set momentum or untick it."
            )
        return RunConfig(
            problem=self.problem,
            samples=self.samples,
            noise_std=self.noise,
            seed=self.seed,
            model=self.model,
            init=self.full_init(),
            lr=self.lr,
            optimizer=self.optimizer,
            optimizer_options=self.optimizer_options(),
            batch_size=self.batch,
            epochs=self.epochs,
            sampling=self.sampling,
            schedule=self.schedule,
            schedule_options=self.schedule_options(),
            grid=self.grid,
        )

    def n_steps(self) -> int:
        """Steps of the run: ``epochs * ceil(samples / batch)``."""
        return self.epochs * math.ceil(self.samples / max(self.batch, 1))

    def label(self) -> str:
        """A short legend label for compare mode."""
        parts = [f"{self.optimizer} lr={self.lr:g}"]
        if "momentum" in OPTIMIZER_CONTROLS[self.optimizer] and self.momentum:
            parts.append(f"mom={self.momentum:g}")
        if self.schedule != "constant":
            parts.append(self.schedule)
        parts.append(f"B={self.batch}")
        if self.sampling != "in-order":
            parts.append(self.sampling)
        parts.append(f"init=({self.init[0]:.2f}, {self.init[1]:.2f})")
        return " ".join(parts)


def check_caps(state: AppState) -> None:
    """Raise :class:`SgdscapeError` with a clear message when a request exceeds the app's caps."""
    if state.samples > MAX_SAMPLES:
        raise SgdscapeError(
            f"samples {state.samples} is above the app's cap of {MAX_SAMPLES}; "
            "the CLI (sgdscape run) has no such cap."
        )
    if state.grid not in GRID_CHOICES:
        raise SgdscapeError(
            f"grid {state.grid} is not one the app offers; choose one of "
            f"{', '.join(map(str, GRID_CHOICES))}."
        )
    if state.epochs > MAX_EPOCHS:
        raise SgdscapeError(f"epochs {state.epochs} is above the app's cap of {MAX_EPOCHS}.")
    if state.batch >= 1 and state.n_steps() > MAX_STEPS:
        raise SgdscapeError(
            f"this run would take {state.n_steps()} steps (epochs x ceil(samples / batch)), above "
            f"the app's cap of {MAX_STEPS}; lower the epochs or raise the batch size."
        )
    if not 0 <= state.seed <= MAX_SEED:
        raise SgdscapeError(f"seed must be between 0 and {MAX_SEED} in the app, got {state.seed}.")
    if not state.lr <= MAX_LR:
        raise SgdscapeError(f"learning rate {state.lr:g} is above the app's cap of {MAX_LR:g}.")
    if not state.noise <= MAX_NOISE:
        raise SgdscapeError(f"noise {state.noise:g} is above the app's cap of {MAX_NOISE:g}.")
    if len(state.pins) > MAX_PINS:
        raise SgdscapeError(f"compare mode shows at most {MAX_PINS + 1} runs.")


def check_frame_cells(frames: int, grid: int) -> None:
    """Raise when ``frames`` minibatch landscapes of ``grid x grid`` exceed :data:`MAX_FRAME_CELLS`."""
    cells = frames * grid * grid
    if cells > MAX_FRAME_CELLS:
        raise SgdscapeError(
            f"the minibatch landscapes of this run are {frames} grids of {grid}x{grid} "
            f"({cells / 1e6:.1f}M cells), above the app's cap of {MAX_FRAME_CELLS / 1e6:.1f}M; "
            "lower the samples or the grid, or raise the batch size."
        )


# ---------------------------------------------------------------- URL query <-> state


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _integer(text: str) -> int:
    value = _number(text)
    if value != int(value):
        raise ValueError(text)
    return int(value)


def _flag(text: str) -> bool:
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(text)


def _choice(choices: Mapping[str, Any] | tuple[Any, ...]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return convert


def _pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(text)
    return (_number(parts[0]), _number(parts[1]))


#: URL key -> (AppState field, converter). Order is the order in the URL.
URL_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "problem": ("problem", _choice(PROBLEMS)),
    "model": ("model", _choice(MODELS)),
    "noise": ("noise", _number),
    "n": ("samples", _integer),
    "seed": ("seed", _integer),
    "opt": ("optimizer", _choice(OPTIMIZERS)),
    "lr": ("lr", _number),
    "mom": ("momentum", _number),
    "nesterov": ("nesterov", _flag),
    "b1": ("beta1", _number),
    "b2": ("beta2", _number),
    "alpha": ("alpha", _number),
    "rho": ("rho", _number),
    "sched": ("schedule", _choice(SCHEDULES)),
    "step_size": ("step_size", _integer),
    "step_gamma": ("step_gamma", _number),
    "exp_gamma": ("exp_gamma", _number),
    "eta_min": ("eta_min", _number),
    "decay": ("decay", _number),
    "batch": ("batch", _integer),
    "epochs": ("epochs", _integer),
    "sampling": ("sampling", _choice(SAMPLINGS)),
    "grid": ("grid", _integer),
    "init": ("init", _pair),
    "step": ("step", _integer),
    "sharpness": ("sharpness", _flag),
}
_FIELD_TO_KEY = {name: key for key, (name, _) in URL_KEYS.items()}


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return ",".join(_format(v) for v in value)
    return str(value)


def to_query(state: AppState, *, with_step: bool = True, with_pins: bool = True) -> str:
    """The query string (with ``?``) holding ``state``; only fields that differ from the defaults."""
    default = AppState()
    pairs: list[tuple[str, str]] = []
    for key, (name, _) in URL_KEYS.items():
        if name == "step" and not with_step:
            continue
        value = getattr(state, name)
        if value != getattr(default, name):
            pairs.append((key, _format(value)))
    if with_pins:
        pairs.extend(("pin", pin) for pin in state.pins)
    return "?" + urlencode(pairs) if pairs else ""


def run_key(state: AppState) -> str:
    """A canonical key of the run ``state`` describes (step and pins left out)."""
    return to_query(state, with_step=False, with_pins=False) or "?"


def parse_query(search: str | None, *, allow_pins: bool = True) -> tuple[AppState, list[str]]:
    """The state a query string describes, and notices about what was ignored.

    Every value is converted by a typed parser (never evaluated); a bad value falls
    back to its default, and a combination that :class:`RunConfig` or the caps refuse
    falls back to all defaults. The notices say what happened, for the page to show.
    """
    notices: list[str] = []
    if search is not None and not isinstance(search, str):
        return AppState(), ["the link's settings could not be read; showing the defaults."]
    text = (search or "").lstrip("?")
    if len(text) > MAX_QUERY_CHARS:
        return AppState(), [f"the link is too long ({len(text)} characters); showing the defaults."]
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return AppState(), ["the link's settings could not be read; showing the defaults."]
    values: dict[str, Any] = {}
    pins: list[str] = []
    unknown: list[str] = []
    for key, raw in pairs:
        if key == "pin" and allow_pins:
            pins.append(raw)
            continue
        if key not in URL_KEYS:
            unknown.append(key)
            continue
        name, convert = URL_KEYS[key]
        try:
            values[name] = convert(raw.strip())
        except (ValueError, OverflowError):
            notices.append(f"ignored {key}={raw[:40]!r} from the link (not a valid value).")
    if unknown:
        shown = ", ".join(sorted({k[:20] for k in unknown})[:5])
        notices.append(f"ignored unknown setting(s) in the link: {shown}.")
    state = AppState(**values)
    try:
        state.to_config()
    except SgdscapeError as error:
        notices.append(f"the link's settings are not valid ({error}) Showing the defaults.")
        state = AppState()
    pins = _parse_pins(pins, notices)
    return state.replace(pins=tuple(pins)), notices


def _parse_pins(pins: list[str], notices: list[str]) -> list[str]:
    if len(pins) > MAX_PINS:
        notices.append(f"the link pins {len(pins)} runs; compare mode keeps the first {MAX_PINS}.")
        pins = pins[:MAX_PINS]
    kept = []
    for pin in pins:
        pinned, problems = parse_query(pin, allow_pins=False)
        if problems:
            notices.append("dropped a pinned run whose settings are not valid.")
            continue
        kept.append(run_key(pinned))
    return kept


def state_from_controls(values: Mapping[str, Any], base: AppState) -> AppState:
    """Build a state from control values (``AppState`` field names); raise on empty or bad ones.

    Number inputs give ``None`` when their text is not a number.
    """
    changes: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(AppState(), name)
        if value is None or (isinstance(value, str) and not value.strip()):
            key = _FIELD_TO_KEY.get(name, name)
            raise SgdscapeError(f"{key} is empty or not a number; enter a value.")
        if isinstance(default, bool):
            changes[name] = bool(value)
        elif isinstance(default, int):
            changes[name] = check_int(name, value, low=-INT64_MAX)
        elif isinstance(default, float):
            changes[name] = check_number(name, value)
        elif isinstance(default, tuple):
            if not isinstance(value, list | tuple) or len(value) != len(default):
                raise SgdscapeError(f"{name} must be {len(default)} numbers, got {shown(value)}.")
            changes[name] = tuple(check_number(name, v) for v in value)
        else:
            if not isinstance(value, str) or len(value) > 100:
                raise SgdscapeError(
                    f"{name} must be one of the offered choices, got {shown(value)}."
                )
            changes[name] = value
    return base.replace(**changes)
