"""Optimizers and learning-rate schedules, by name, from ``torch.optim``.

Every optimizer here is elementwise, so one instance over a ``(n_inits, p)`` parameter
tensor runs ``n_inits`` independent optimizations when the loss is summed over inits.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from sgdscape.errors import FLOAT32_MAX, SgdscapeError, check_choice, check_number, shown

OptimizerFactory = Callable[..., torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerSpec:
    """A named ``torch.optim`` optimizer and the hyperparameters it accepts."""

    name: str
    cls: type[torch.optim.Optimizer]
    description: str

    @property
    def options(self) -> tuple[str, ...]:
        """Hyperparameter names accepted besides ``lr`` (from the class signature)."""
        signature = inspect.signature(self.cls.__init__)
        skip = {"self", "params", "lr", "foreach", "maximize", "capturable", "differentiable"}
        skip |= {"fused", "decoupled_weight_decay"}
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return tuple(
            name
            for name, parameter in signature.parameters.items()
            if name not in skip and parameter.kind in kinds
        )

    def build(
        self, params: list[torch.Tensor], lr: float, options: Mapping[str, object]
    ) -> torch.optim.Optimizer:
        """Instantiate on ``params`` after checking every option (see :meth:`check_options`)."""
        checked = self.check_options(options)
        try:
            build: Callable[..., torch.optim.Optimizer] = self.cls  # each class its own options
            return build(params, lr=lr, **checked)
        except (TypeError, ValueError) as error:
            raise SgdscapeError(f"bad options for optimizer {self.name!r}: {error}.") from None

    def check(self, lr: float, options: Mapping[str, object]) -> dict[str, object]:
        """``options`` checked (see :meth:`check_options`) and validated as :meth:`build` would.

        For ``torch.optim.SGD`` torch's own checks are applied without building the optimizer:
        building any ``torch.optim`` optimizer imports ``torch._dynamo`` (about a second), and
        the inlined SGD (:class:`SgdUpdate`) never needs one. Other optimizers are built on a
        one-element tensor. Raises :class:`SgdscapeError` as :meth:`build` does.
        """
        checked = self.check_options(options)
        if self.cls is not torch.optim.SGD:
            self.build([torch.zeros(1, requires_grad=True)], lr, checked)
            return checked
        problem = sgd_option_problem(lr, checked)
        if problem is not None:
            raise SgdscapeError(f"bad options for optimizer {self.name!r}: {problem}.")
        return checked

    def check_options(self, options: Mapping[str, object]) -> dict[str, object]:
        """``options`` checked: every one known and of its default's type, numbers as floats.

        A flag (``nesterov``) is a bool, a pair (``betas``) is that many numbers, any other
        option a finite number within float32's range (it multiplies float32 tensors); a
        string is never a number, and NaN never passes (torch's own range checks let it by).
        Numbers are returned as floats (torch cannot take a Python int beyond int64).
        Raises :class:`SgdscapeError` naming the option and the value.
        """
        checked: dict[str, object] = {}
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(self.cls.__init__).parameters.items()
        }
        for key, value in options.items():
            if key not in self.options:
                raise SgdscapeError(
                    f"optimizer {self.name!r} has no option {shown(key)}; its options are: "
                    f"{', '.join(self.options)}."
                )
            default, label = defaults.get(key), f"optimizer option {key}"
            checked[key] = value
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise SgdscapeError(f"{label} must be true or false, got {shown(value)}.")
            elif isinstance(default, tuple):
                if not isinstance(value, tuple | list) or len(value) != len(default):
                    raise SgdscapeError(
                        f"{label} must be {len(default)} numbers, got {shown(value)}."
                    )
                checked[key] = tuple(check_number(label, item) for item in value)
            elif isinstance(default, int | float):
                checked[key] = check_number(label, value)
        return checked


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in [
        OptimizerSpec("sgd", torch.optim.SGD, "(stochastic) gradient descent; momentum, nesterov"),
        OptimizerSpec("adam", torch.optim.Adam, "Adam: per-coordinate steps of about lr"),
        OptimizerSpec("adamw", torch.optim.AdamW, "Adam with decoupled weight decay"),
        OptimizerSpec("adamax", torch.optim.Adamax, "Adam with an infinity-norm second moment"),
        OptimizerSpec("nadam", torch.optim.NAdam, "Adam with Nesterov momentum"),
        OptimizerSpec("radam", torch.optim.RAdam, "rectified Adam: a warm-up built in"),
        OptimizerSpec("rmsprop", torch.optim.RMSprop, "RMSprop: steps scaled by a running RMS"),
        OptimizerSpec("adagrad", torch.optim.Adagrad, "Adagrad: steps shrink with summed g^2"),
        OptimizerSpec("adadelta", torch.optim.Adadelta, "Adadelta: unit-free Adagrad variant"),
    ]
}


def get_optimizer(optimizer: str | type[torch.optim.Optimizer] | OptimizerSpec) -> OptimizerSpec:
    """An :class:`OptimizerSpec` from a name, a ``torch.optim.Optimizer`` subclass, or a spec."""
    if isinstance(optimizer, OptimizerSpec):
        return optimizer
    if isinstance(optimizer, str):
        return OPTIMIZERS[check_choice("optimizer", optimizer, OPTIMIZERS)]
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return OptimizerSpec(optimizer.__name__.lower(), optimizer, "a user optimizer class")
    raise SgdscapeError(
        f"optimizer must be a name ({', '.join(sorted(OPTIMIZERS))}) or a torch.optim.Optimizer "
        f"subclass, got {optimizer!r}."
    )


SGD_OPTIONS = frozenset({"momentum", "dampening", "weight_decay", "nesterov"})


def sgd_option_problem(lr: float, options: Mapping[str, object]) -> str | None:
    """What ``torch.optim.SGD(params, lr, **options)`` would reject, in torch's words, or ``None``.

    The same rules as ``torch.optim.SGD.__init__`` (tests compare the two on a grid of values);
    ``options`` are already checked by :meth:`OptimizerSpec.check_options`.
    """
    momentum = float(options.get("momentum", 0.0))  # type: ignore[arg-type]
    dampening = float(options.get("dampening", 0.0))  # type: ignore[arg-type]
    weight_decay = float(options.get("weight_decay", 0.0))  # type: ignore[arg-type]
    if lr < 0.0:
        return f"Invalid learning rate: {lr}"
    if momentum < 0.0:
        return f"Invalid momentum value: {momentum}"
    if weight_decay < 0.0:
        return f"Invalid weight_decay value: {weight_decay}"
    if options.get("nesterov", False) and (momentum <= 0 or dampening != 0):
        return "Nesterov momentum requires a momentum and zero dampening"
    return None


@dataclass
class SgdUpdate:
    """``torch.optim.SGD``'s update of one tensor, without the optimizer's per-step bookkeeping.

    The same operations in the same order as torch's single-tensor SGD (momentum buffer
    cloned from the first gradient, Nesterov, weight decay, dampening), so the iterates
    equal ``torch.optim.SGD``'s bit for bit; tests hold it to that. It exists because
    ``optimizer.step()`` costs tens of microseconds of Python per call, which is most of a
    small run's time (the seed's run takes a few microseconds of arithmetic per step).
    """

    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    buffer: torch.Tensor | None = None

    @classmethod
    def matching(cls, spec: OptimizerSpec, options: Mapping[str, object]) -> SgdUpdate | None:
        """An update equal to ``spec`` with ``options``, or ``None`` if it is not plain SGD."""
        if spec.cls is not torch.optim.SGD or not set(options) <= SGD_OPTIONS:
            return None
        return cls(
            momentum=float(options.get("momentum", 0.0)),  # type: ignore[arg-type]
            dampening=float(options.get("dampening", 0.0)),  # type: ignore[arg-type]
            weight_decay=float(options.get("weight_decay", 0.0)),  # type: ignore[arg-type]
            nesterov=bool(options.get("nesterov", False)),
        )

    def step(self, param: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        """Update ``param`` in place with gradient ``grad`` and learning rate ``lr``."""
        if self.weight_decay != 0:
            grad = grad.add(param, alpha=self.weight_decay)
        if self.momentum != 0:
            if self.buffer is None:
                self.buffer = grad.detach().clone()
            else:
                self.buffer.mul_(self.momentum).add_(grad, alpha=1 - self.dampening)
            grad = grad.add(self.buffer, alpha=self.momentum) if self.nesterov else self.buffer
        param.add_(grad, alpha=-lr)


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ScheduleSpec:
    """A named learning-rate schedule: ``factor(step, total_steps, options) -> lr multiplier``."""

    name: str
    factor: Callable[[int, int, Mapping[str, float]], float]
    options: tuple[str, ...]
    description: str


SCHEDULES: dict[str, ScheduleSpec] = {
    spec.name: spec
    for spec in [
        ScheduleSpec("constant", lambda t, total, o: 1.0, (), "the same lr at every step"),
        ScheduleSpec(
            "step",
            lambda t, total, o: o.get("gamma", 0.5) ** (t // int(o.get("step_size", 25))),
            ("step_size", "gamma"),
            "multiply lr by gamma every step_size steps",
        ),
        ScheduleSpec(
            "exponential",
            lambda t, total, o: o.get("gamma", 0.97) ** t,
            ("gamma",),
            "multiply lr by gamma at every step",
        ),
        ScheduleSpec(
            "cosine",
            lambda t, total, o: (
                o.get("eta_min_ratio", 0.0)
                + (1 - o.get("eta_min_ratio", 0.0))
                * (1 + math.cos(math.pi * t / max(total, 1)))
                / 2
            ),
            ("eta_min_ratio",),
            "cosine annealing from lr to eta_min_ratio*lr over the run",
        ),
        ScheduleSpec(
            "inverse-time",
            lambda t, total, o: 1.0 / (1.0 + o.get("decay", 0.1) * t),
            ("decay",),
            "lr / (1 + decay*t): the 1/t decay that makes SGD converge",
        ),
    ]
}


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    total_steps: int,
    options: Mapping[str, float] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """A ``torch.optim.lr_scheduler.LambdaLR`` following the named schedule.

    ``None`` for the constant schedule: a scheduler wraps ``optimizer.step`` and would
    only add its bookkeeping to every step.
    """
    spec, options = check_schedule(schedule, options)
    if schedule == "constant":
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: spec.factor(t, total_steps, options)
    )


def learning_rates(
    lr: float, schedule: str, total_steps: int, options: Mapping[str, float] | None = None
) -> list[float]:
    """The learning rate of every step, ``total_steps`` floats.

    The same numbers as :func:`make_scheduler`'s ``LambdaLR`` (``lr * factor(t)``), computed
    up front so a training loop needs no scheduler object per step.
    """
    spec, options = check_schedule(schedule, options)
    return [_saturated(lr, spec.factor, t, total_steps, options) for t in range(total_steps)]


def _saturated(
    lr: float,
    factor: Callable[[int, int, Mapping[str, float]], float],
    t: int,
    total_steps: int,
    options: Mapping[str, float],
) -> float:
    """``lr * factor(t)``, or infinity where that leaves float32's range.

    A growing schedule (``gamma > 1``) can pass float32's limit and then Python's; the
    run then diverges at that step, as data, instead of raising an overflow error.
    """
    try:
        value = lr * factor(t, total_steps, options)
    except OverflowError:
        return math.inf
    return value if value <= FLOAT32_MAX else math.inf


def check_schedule(
    schedule: str, options: Mapping[str, float] | None = None
) -> tuple[ScheduleSpec, dict[str, float]]:
    """The schedule's spec and its options, validated (unknown names or bad values raise)."""
    spec = SCHEDULES[check_choice("schedule", schedule, SCHEDULES)]
    options = dict(options or {})
    for key, value in options.items():
        if key not in spec.options:
            allowed = ", ".join(spec.options) or "none"
            raise SgdscapeError(
                f"schedule {schedule!r} has no option {key!r}; its options are: {allowed}."
            )
        check_number(f"schedule option {key}", value, low=0.0)
    if schedule == "step" and options.get("step_size", 25) < 1:
        raise SgdscapeError(f"step_size must be >= 1, got {options['step_size']}.")
    return spec, options
