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

import numpy as np

from sgdscape.core.chain_inputs import CHAIN_SAMPLINGS
from sgdscape.core.models import MODELS
from sgdscape.core.optimizers import OPTIMIZERS, SCHEDULES
from sgdscape.core.problems import PROBLEMS
from sgdscape.core.train import SAMPLINGS
from sgdscape.errors import (
    INT64_MAX,
    SgdscapeError,
    check_choice,
    check_int,
    check_number,
    shown,
)
from sgdscape.records.chain_presets import CHAIN_PRESETS, ChainsSetup
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
#: the fan of next steps: at most this many points over all steps (steps x fan size)
MAX_FAN_POINTS = 100_000
#: the fan of a run with batches > 1: this many minibatches per step (fewer for long runs)
FAN_BATCHES = 1024
#: the two views of the page (``?view=chains`` opens the chains view)
VIEWS = {"step": "two-panel step view", "chains": "many chains"}

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
    #: draw the fan of next steps on the left panel (every sample's next iterate, their mean)
    fan: bool = False
    #: which view the page shows: the step view or the chains view (:data:`VIEWS`)
    view: str = "step"

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
    "fan": ("fan", _flag),
    "view": ("view", _choice(tuple(VIEWS))),
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


# ---------------------------------------------------------------- the chains view

MAX_CHAINS = 20_000
MAX_CHAIN_STEPS = 2_000
MAX_CHAIN_WORK = 10_000_000  # chain-steps (chains x steps) per request
MAX_CHAIN_RECORDS = 41  # recorded steps, i.e. positions of the chains' slider
CHAINS_GRID = 60
#: the preset menu's entry for "no preset" (the data and window of a default RunConfig)
NO_PRESET = "none"


@dataclass(frozen=True)
class ChainsAppState:
    """The chains view's settings; the defaults are the *noise-ball-theory* preset.

    ``preset`` gives what the view has no control for (the data's noise and size, the
    landscape window); :data:`NO_PRESET` takes them from a default :class:`RunConfig`.
    ``init`` is the common start of every chain in plot coordinates ``(a, b)``.
    """

    preset: str = "noise-ball-theory"
    model: str = "linear-regression"
    n_chains: int = 20_000
    lr: float = 0.1
    batch: int = 1
    sampling: str = "with-replacement"
    steps: int = 300
    seed: int = 0
    init: tuple[float, float] = (-2.0, 2.0)

    def replace(self, **changes: Any) -> ChainsAppState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_preset(cls, name: str) -> ChainsAppState:
        """The settings of the chains preset ``name`` (:data:`CHAIN_PRESETS`)."""
        setup = CHAIN_PRESETS[check_choice("chains preset", name, CHAIN_PRESETS)].setup
        config = setup.config
        return cls(
            preset=name,
            model=config.model,
            n_chains=setup.n_chains,
            lr=float(config.lr),
            batch=int(config.batch_size),
            sampling=setup.sampling,
            steps=setup.steps,
            seed=int(config.seed),
            init=(float(config.init[0]), float(config.init[1])),  # type: ignore[index]
        )

    def record_steps(self) -> tuple[int, ...]:
        """The steps the slider visits: the preset's recorded steps (with the last step)
        when they are at most :data:`MAX_CHAIN_RECORDS`, else evenly spaced ones."""
        if self.preset in CHAIN_PRESETS:
            chosen = CHAIN_PRESETS[self.preset].setup.record_steps or ()
            kept = sorted({0, self.steps, *(s for s in chosen if s <= self.steps)})
            if len(kept) <= MAX_CHAIN_RECORDS:
                return tuple(kept)
        most = min(self.steps, MAX_CHAIN_RECORDS - 1)
        # an equal gap when one divides the steps into at least half the records (the
        # right panel then has a linear step axis), else evenly rounded steps
        parts = next((c for c in range(most, most // 2, -1) if self.steps % c == 0), most)
        return tuple(int(s) for s in np.unique(np.round(np.linspace(0, self.steps, parts + 1))))

    def to_setup(self) -> ChainsSetup:
        """The validated :class:`ChainsSetup`, after the app's caps; raises :class:`SgdscapeError`."""
        check_chain_caps(self)
        base = CHAIN_PRESETS[self.preset].setup.config if self.preset in CHAIN_PRESETS else None
        config = (base or RunConfig()).replace(
            model=self.model,
            init=(*self.init, *MODELS[self.model].default_init[2:]),
            lr=self.lr,
            batch_size=self.batch,
            seed=self.seed,
            grid=CHAINS_GRID,
        )
        return ChainsSetup(
            config,
            n_chains=self.n_chains,
            steps=self.steps,
            sampling=self.sampling,
            record_steps=self.record_steps(),
        )


def check_chain_caps(state: ChainsAppState) -> None:
    """Raise :class:`SgdscapeError` naming the value when the chains view's caps refuse it."""
    check_choice("chains preset", state.preset, (NO_PRESET, *CHAIN_PRESETS))
    check_choice("model", state.model, MODELS)
    check_choice("sampling", state.sampling, CHAIN_SAMPLINGS)
    if not 1 <= state.n_chains <= MAX_CHAINS:
        raise SgdscapeError(
            f"number of chains must be between 1 and {MAX_CHAINS} in the app, got "
            f"{state.n_chains}; the CLI (sgdscape chains) runs more."
        )
    if not 0 <= state.steps <= MAX_CHAIN_STEPS:
        raise SgdscapeError(
            f"steps must be between 0 and {MAX_CHAIN_STEPS} in the app, got {state.steps}."
        )
    if state.n_chains * state.steps > MAX_CHAIN_WORK:
        raise SgdscapeError(
            f"{state.n_chains} chains x {state.steps} steps is above the app's cap of "
            f"{MAX_CHAIN_WORK:,} chain-steps; lower the chains or the steps."
        )
    if not 0 < state.lr <= MAX_LR:  # also refuses NaN
        raise SgdscapeError(
            f"learning rate must be > 0 and at most {MAX_LR:g} in the app, got {state.lr:g}."
        )
    if state.batch < 1:
        raise SgdscapeError(f"batch size must be >= 1, got {state.batch}.")
    if not 0 <= state.seed <= MAX_SEED:
        raise SgdscapeError(f"seed must be between 0 and {MAX_SEED} in the app, got {state.seed}.")


#: the chains view's controls: ChainsAppState field -> label (errors name the label)
CHAIN_CONTROL_LABELS = {
    "preset": "preset",
    "model": "model",
    "n_chains": "number of chains",
    "lr": "learning rate",
    "batch": "batch size",
    "sampling": "sampling",
    "steps": "steps",
    "seed": "seed",
    "init_a": "start (x axis)",
    "init_b": "start (y axis)",
}


def chains_state_from_controls(values: Mapping[str, Any]) -> ChainsAppState:
    """The chains view's state from its control values (keys of :data:`CHAIN_CONTROL_LABELS`);
    raises :class:`SgdscapeError` naming an empty, non-numeric or unknown value."""
    default = ChainsAppState()
    changes: dict[str, Any] = {}
    for name, value in values.items():
        label = CHAIN_CONTROL_LABELS[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            raise SgdscapeError(f"{label} is empty or not a number; enter a value.")
        if name in ("init_a", "init_b"):
            changes[name] = check_number(label, value)
            continue
        kind = getattr(default, name)
        if isinstance(kind, int):
            changes[name] = check_int(label, value, low=-INT64_MAX)
        elif isinstance(kind, float):
            changes[name] = check_number(label, value)
        elif not isinstance(value, str) or len(value) > 100:
            raise SgdscapeError(f"{label} must be one of the offered choices, got {shown(value)}.")
        else:
            changes[name] = value
    a = changes.pop("init_a", default.init[0])
    b = changes.pop("init_b", default.init[1])
    state = default.replace(init=(a, b), **changes)
    check_chain_caps(state)
    return state
