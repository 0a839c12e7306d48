"""One typed config that fully describes a run: :class:`RunConfig`, its checks, its TOML file.

``RunConfig`` validates every field on construction; :func:`load_config` reads one from a
TOML file (size- and depth-limited) and :meth:`RunConfig.to_dict` gives the TOML to write.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgdscape.core.grid import Grid, Plane
from sgdscape.core.landscape import DEFAULT_MEMORY_BUDGET
from sgdscape.core.losses import LOSSES
from sgdscape.core.models import MODELS, Model, get_model
from sgdscape.core.optimizers import OPTIMIZERS, SCHEDULES, check_schedule, make_scheduler
from sgdscape.core.problems import PROBLEMS
from sgdscape.core.train import SAMPLINGS, as_init
from sgdscape.errors import (
    SgdscapeError,
    check_choice,
    check_int,
    check_number,
    check_positive,
    check_range,
    check_seed,
    shown,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: the largest memory budget accepted, in bytes (1 PiB: any real machine has less)
MAX_MEMORY_BUDGET = 2**50
#: a config file larger than this is refused before it is read (configs are a few KiB)
MAX_CONFIG_BYTES = 1 << 20
#: tables and arrays nest at most this deep in a config (``compare`` tables of options
#: holding ``betas`` arrays nest 4 deep)
MAX_CONFIG_DEPTH = 8

#: ``init`` value that stands for the model's own default init (:attr:`Model.default_init`)
DEFAULT_INIT = "default"
#: ``init`` value that stands for ``None`` (a draw from the model's init rule) in TOML,
#: which has no null
RANDOM_INIT = "random"


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. The defaults are the seed notebook's experiment.

    Every field is validated on construction; a bad value raises :class:`SgdscapeError`
    naming the field and what is allowed.

    ``init`` left at ``"default"`` becomes the model's own default init
    (:attr:`Model.default_init`: the seed's ``(1.2, -2.3)`` for a 2-parameter model, then
    0.5 for each further parameter); ``None`` (``"random"`` in TOML) draws it from the
    model's init rule with the sampling seed.
    """

    # data
    problem: str = "linear"
    samples: int = 100  # ignored (and not saved) when `data` names a CSV file
    slope: float = 2.0
    noise_std: float = 0.1
    x_range: tuple[float, float] = (-1.0, 1.0)
    data: str | None = None
    seed: int = 0
    student_df: float = 2.0
    outlier_fraction: float = 0.1
    outlier_scale: float = 5.0
    # model and loss
    model: str = "relu-unit"
    loss: str | None = None
    # optimization
    init: tuple[float, ...] | str | None = DEFAULT_INIT
    inits: str | None = None
    lr: float = 0.05
    optimizer: str = "sgd"
    optimizer_options: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 1
    epochs: int = 1
    sampling: str = "in-order"
    schedule: str = "constant"
    schedule_options: Mapping[str, float] = field(default_factory=dict)
    sampling_seed: int | None = None
    compare: tuple[Mapping[str, Any], ...] = ()
    # landscape
    grid: int = 100
    w1_range: tuple[float, float] = (-3.0, 3.0)
    w2_range: tuple[float, float] = (-3.0, 3.0)
    slice_axes: tuple[str, str] | None = None
    slice_fixed: Mapping[str, float] = field(default_factory=dict)
    slice_directions: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # execution
    device: str = "cpu"
    memory_budget: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        check_choice("problem", self.problem, PROBLEMS)
        _set(self, "samples", check_int("samples", self.samples, low=1, high=10_000_000))
        _set(self, "slope", _finite("slope", self.slope))
        _set(self, "noise_std", check_positive("noise_std", self.noise_std, allow_zero=True))
        _set(self, "x_range", check_range("x_range", self.x_range))
        _set(self, "seed", check_seed("seed", self.seed))
        _set(self, "student_df", check_positive("student_df", self.student_df))
        _set(self, "outlier_scale", _finite("outlier_scale", self.outlier_scale))
        fraction = _finite("outlier_fraction", self.outlier_fraction)
        if not 0.0 <= fraction <= 1.0:
            raise SgdscapeError(f"outlier_fraction must be between 0 and 1, got {fraction:g}.")
        _set(self, "outlier_fraction", fraction)
        if self.sampling_seed is not None:
            _set(self, "sampling_seed", check_seed("sampling_seed", self.sampling_seed))
        if self.data is not None and not isinstance(self.data, str | os.PathLike):
            raise SgdscapeError(f"data must be a path to a CSV file, got {self.data!r}.")
        model = get_model(check_choice("model", self.model, MODELS))
        if self.loss is not None:
            check_choice("loss", self.loss, LOSSES)
        if isinstance(self.init, str):
            if self.init not in (DEFAULT_INIT, RANDOM_INIT):
                raise SgdscapeError(
                    f"init must be numbers (one per parameter of model {model.name!r}: "
                    f"{', '.join(model.param_names)}), {DEFAULT_INIT!r} or {RANDOM_INIT!r}, "
                    f"got {self.init!r}."
                )
            _set(self, "init", model.default_init if self.init == DEFAULT_INIT else None)
        if self.init is not None:
            inits = as_init(self.init, model)  # validates the shape, (p,) or (K, p), and values
            _set(self, "init", _nested_tuple(np.asarray(self.init, dtype=np.float64), inits.ndim))
        if self.inits is not None:
            parse_inits(self.inits)
        _set(self, "lr", check_positive("learning rate (lr)", self.lr))
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        for name in ("optimizer_options", "schedule_options", "slice_fixed"):
            if not isinstance(getattr(self, name), Mapping):
                raise SgdscapeError(
                    f"{name} must be a table of name = value, got {getattr(self, name)!r}."
                )
        check_optimization(
            self.optimizer, self.lr, self.optimizer_options, self.schedule, self.schedule_options
        )
        _set(self, "batch_size", check_int("batch_size", self.batch_size, low=1))
        if self.data is None and self.batch_size > self.samples:
            raise SgdscapeError(
                f"batch_size {self.batch_size} is larger than the data ({self.samples} samples); "
                f"use at most {self.samples}."
            )
        _set(self, "epochs", check_int("epochs", self.epochs, low=1, high=100_000))
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_choice("schedule", self.schedule, SCHEDULES)
        _set(self, "grid", check_int("grid", self.grid, low=2, high=4096))
        _set(self, "w1_range", check_range("w1_range", self.w1_range))
        _set(self, "w2_range", check_range("w2_range", self.w2_range))
        _set(
            self,
            "memory_budget",
            check_int("memory_budget", self.memory_budget, low=2**20, high=MAX_MEMORY_BUDGET),
        )
        if self.slice_axes is not None:
            _set(self, "slice_axes", tuple(self.slice_axes))
        if self.slice_directions is not None:
            _set(self, "slice_directions", _directions(self.slice_directions, model))
        self.plane(model)  # validates slice axes and fixed values
        _set(self, "optimizer_options", _tuples(self.optimizer_options))
        _set(self, "schedule_options", dict(self.schedule_options))
        _set(self, "slice_fixed", dict(self.slice_fixed))
        _set(self, "compare", tuple(_tuples(v) for v in _variants(self.compare)))
        for variant in self.compare:
            self.variant(variant)  # each variant must itself be a valid config

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (and validated).

        A new ``model`` without a new ``init`` takes the new model's default init when the
        old init was the old model's default (so ``--model relu-unit-bias`` alone works).
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SgdscapeError(
                f"unknown config field(s) {', '.join(sorted(unknown))}; valid fields are: "
                f"{', '.join(f.name for f in dataclasses.fields(self))}."
            )
        if (
            "init" not in changes
            and changes.get("model", self.model) != self.model
            and self.init == self.model_spec.default_init
        ):
            changes = {**changes, "init": DEFAULT_INIT}
        return dataclasses.replace(self, **changes)

    @property
    def model_spec(self) -> Model:
        """The :class:`Model` named by ``model``."""
        return get_model(self.model)

    @property
    def loss_name(self) -> str:
        """The loss used: ``loss`` or the problem's default."""
        return self.loss or PROBLEMS[self.problem].default_loss

    @property
    def grid_spec(self) -> Grid:
        """The landscape window as a :class:`Grid`."""
        return Grid((*self.w1_range, self.grid), (*self.w2_range, self.grid))

    def plane(self, model: Model | None = None) -> Plane:
        """The 2-D slice: ``slice_axes`` vary, other parameters sit at ``slice_fixed``.

        Parameters neither on the axes nor in ``slice_fixed`` sit at their init value
        (0 when the init is drawn at random).
        """
        model = model or self.model_spec
        if self.slice_directions is not None:
            origin = torch.zeros(model.n_params)
            if self.init is not None:
                origin = torch.tensor(self.first_init, dtype=torch.float32)
            d1, d2 = (torch.tensor(d, dtype=torch.float32) for d in self.slice_directions)
            return Plane(origin, d1, d2, ("a", "b"))
        fixed = dict(self.slice_fixed)
        axes = self.slice_axes or (model.param_names[0], model.param_names[1])
        first = self.first_init
        if first is not None and model.n_params > 2:
            for name, value in zip(model.param_names, first, strict=True):
                if name not in axes:
                    fixed.setdefault(name, value)
        return Plane.through(model.param_names, axes, fixed)

    @property
    def first_init(self) -> tuple[float, ...] | None:
        """The init, or the first of several inits (``init`` given as K rows)."""
        if self.init is None or not isinstance(self.init[0], tuple):
            return self.init  # type: ignore[return-value]
        return self.init[0]

    def variant(self, changes: Mapping[str, Any]) -> RunConfig:
        """The config of one compare variant: this config with ``changes`` (no nested compare)."""
        bad = sorted(set(changes) - VARIANT_FIELDS - {"label"})
        if bad:
            raise SgdscapeError(
                f"compare variants may change only {', '.join(sorted(VARIANT_FIELDS))}; "
                f"got {', '.join(bad)}."
            )
        return self.replace(compare=(), **{k: v for k, v in changes.items() if k != "label"})

    @property
    def labels(self) -> list[str]:
        """Legend labels: one for this config, then one per compare variant."""
        if not self.compare:
            return ["run"]
        keys = sorted({k for v in self.compare for k in v if k != "label"})

        def label(config: RunConfig) -> str:
            return ", ".join(
                f"{k}={_show(config.loss_name if k == 'loss' else getattr(config, k))}"
                for k in keys
            )

        return [label(self)] + [
            str(v["label"]) if "label" in v else label(self.variant(v)) for v in self.compare
        ]

    def to_dict(self) -> dict[str, Any]:
        """A TOML-ready dict (``None`` fields left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = _deep_list(value) if isinstance(value, tuple) else value
            if isinstance(value, Mapping):
                out[f.name] = dict(value)
            if f.name == "compare":
                out[f.name] = [dict(v) for v in value]
            if f.name == "slice_directions":
                out[f.name] = [list(d) for d in value]
        if self.init is None:  # TOML has no null; left out, init would read back as the default
            out["init"] = RANDOM_INIT
        if not out["compare"]:
            del out["compare"]
        if self.data is not None:
            # the file's own rows are the samples: no count to record, and an absolute
            # path, so the config reads the same file from any working directory
            del out["samples"]
            out["data"] = str(Path(self.data).absolute())
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from a dict such as a parsed TOML file; unknown keys are errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - {"runs"})
        if unknown:
            raise SgdscapeError(
                f"unknown config field(s) {', '.join(unknown)}; valid fields are: "
                f"{', '.join(f.name for f in dataclasses.fields(cls))}."
            )
        converted = {
            key: _deep_tuple(value) if isinstance(value, list) else value
            for key, value in values.items()
        }
        if "runs" in values and "compare" not in values:  # [[runs]] tables, as in the docs
            converted["compare"] = tuple(converted.pop("runs"))
        try:
            return cls(**converted)
        except TypeError as error:
            raise SgdscapeError(f"bad config: {error}.") from None


VARIANT_FIELDS = frozenset(
    [
        "init",
        "inits",
        "lr",
        "optimizer",
        "optimizer_options",
        "batch_size",
        "epochs",
        "sampling",
        "schedule",
        "schedule_options",
        "sampling_seed",
        "loss",
    ]
)


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}" if value else "default"
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _nested_tuple(values: np.ndarray, ndim: int) -> Any:
    """``(p,)`` -> tuple of floats; ``(K, p)`` -> tuple of K tuples (as TOML arrays of arrays)."""
    values = values.reshape(-1) if ndim == 1 else values.reshape(values.shape[0], -1)
    if ndim == 1:
        return tuple(float(v) for v in values)
    return tuple(tuple(float(v) for v in row) for row in values)


def _deep_list(value: Any) -> Any:
    """Tuples at any depth as lists (for TOML); mappings are left alone."""
    if isinstance(value, tuple):
        return [_deep_list(v) for v in value]
    return value


def _deep_tuple(value: Any) -> Any:
    """Lists (at any depth, as TOML gives them) as tuples; tables stay tables."""
    if isinstance(value, list):
        return tuple(_deep_tuple(v) for v in value)
    return value


def _tuples(table: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``table`` with lists (as TOML gives them) turned into tuples, recursively."""
    return {
        key: tuple(value)
        if isinstance(value, list)
        else _tuples(value)
        if isinstance(value, Mapping)
        else value
        for key, value in table.items()
    }


def _variants(value: Any) -> tuple[Mapping[str, Any], ...]:
    if isinstance(value, Mapping):
        value = (value,)
    if not isinstance(value, tuple | list) or not all(isinstance(v, Mapping) for v in value):
        raise SgdscapeError(f"compare must be a list of tables of changes, got {value!r}.")
    if len(value) > 7:
        raise SgdscapeError(f"compare takes at most 7 variants, got {len(value)}.")
    return tuple(value)


def _directions(value: Any, model: Model) -> tuple[tuple[float, ...], tuple[float, ...]]:
    try:
        d1, d2 = (tuple(check_number("slice_directions", v) for v in d) for d in value)
    except (TypeError, ValueError) as error:
        if isinstance(error, SgdscapeError):
            raise
        raise SgdscapeError(f"slice_directions must be two vectors, got {shown(value)}.") from None
    for d in (d1, d2):
        if len(d) != model.n_params or not any(d):
            raise SgdscapeError(
                f"each slice direction needs {model.n_params} finite numbers, not all zero, "
                f"for model {model.name!r}; got {d}."
            )
    return d1, d2


def parse_inits(spec: str) -> tuple[str, int]:
    """``"grid:N"`` (an N x N grid of inits over the window) or ``"random:K"`` (K draws)."""
    kind, _, count = str(spec).partition(":")
    if kind not in ("grid", "random") or not count.isdigit() or int(count) < 1:
        raise SgdscapeError(
            f"inits must be grid:N (N x N inits over the window) or random:K (K draws of the "
            f"model's init rule), got {spec!r}."
        )
    limit = 1000 if kind == "grid" else 1_000_000
    if int(count) > limit:
        raise SgdscapeError(f"inits {spec!r} is too many; use at most {kind}:{limit}.")
    return kind, int(count)


def check_optimization(
    optimizer: str,
    lr: float,
    optimizer_options: Mapping[str, Any],
    schedule: str,
    schedule_options: Mapping[str, float],
) -> None:
    """Check the optimizer's and the schedule's options so bad ones fail before any work.

    Plain SGD and the constant schedule are checked without building torch objects (building
    a ``torch.optim`` optimizer imports ``torch._dynamo``, about a second of a CLI run).
    """
    spec = OPTIMIZERS[optimizer]
    if schedule == "constant":
        spec.check(lr, optimizer_options)
        check_schedule(schedule, schedule_options)
        return
    dummy = torch.zeros(1, requires_grad=True)
    built = spec.build([dummy], lr, optimizer_options)
    make_scheduler(built, schedule, 1, schedule_options)


def _set(config: RunConfig, name: str, value: Any) -> None:
    object.__setattr__(config, name, value)


def _finite(name: str, value: Any) -> float:
    """A finite number within float32's range (the data and models are float32)."""
    return check_number(name, value)


def load_config(path: str | Path) -> RunConfig:
    """Read a :class:`RunConfig` from a TOML file.

    The file may hold at most :data:`MAX_CONFIG_BYTES` bytes and nest tables and arrays
    at most :data:`MAX_CONFIG_DEPTH` deep. A relative ``data`` path is resolved against
    the config file's folder (where the file was written), not the working directory.
    """
    path = Path(path)
    if not path.is_file():
        raise SgdscapeError(f"config file {str(path)!r} does not exist or is not a file.")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise SgdscapeError(
                f"config file {str(path)!r} has {size} bytes, more than a config needs; "
                f"the limit is {MAX_CONFIG_BYTES} bytes."
            )
        with path.open("rb") as handle:  # read at most the cap, even if the file grew
            text = handle.read(MAX_CONFIG_BYTES + 1).decode()
        if len(text) > MAX_CONFIG_BYTES:
            raise SgdscapeError(f"config file {str(path)!r} is over {MAX_CONFIG_BYTES} bytes.")
        values = tomllib.loads(text)
    except RecursionError:
        raise SgdscapeError(
            f"config file {str(path)!r} nests tables or arrays too deeply; "
            f"at most {MAX_CONFIG_DEPTH} levels are allowed."
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SgdscapeError(f"cannot read config file {str(path)!r}: {error}.") from None
    depth = _depth(values)
    if depth > MAX_CONFIG_DEPTH:
        raise SgdscapeError(
            f"config file {str(path)!r} nests tables or arrays {depth} levels deep; "
            f"at most {MAX_CONFIG_DEPTH} are allowed."
        )
    data = values.get("data")
    if isinstance(data, str) and data and not Path(data).is_absolute():
        values["data"] = str(path.parent / data)
    return RunConfig.from_dict(values)


def _depth(value: Any, limit: int = MAX_CONFIG_DEPTH + 1) -> int:
    """How deep tables (dicts) and arrays (lists) nest in ``value``, counted up to ``limit``."""
    if not isinstance(value, dict | list) or limit == 0:
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)
