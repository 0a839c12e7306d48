"""Parametric models as pure functions of a parameter tensor.

A model is ``f(w, x) -> predictions`` with ``w: (..., p)`` and ``x: (n,)``; the result
has shape ``(..., n)``. Leading dimensions of ``w`` broadcast, so the same function
evaluates one iterate, a batch of initialisations, or a whole grid of parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn.functional import leaky_relu, relu

from sgdscape.errors import SgdscapeError, check_choice

ModelFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: the seed notebook's init of its two parameters ``(w1, w2)``
SEED_INIT = (1.2, -2.3)
#: the default init of every parameter after the first two (0.5 keeps a second ReLU unit
#: alive on x > 0, so two-relu-units can fit both halves of the line)
EXTRA_INIT = 0.5


@dataclass(frozen=True)
class Model:
    """A named model ``f(w, x)`` with parameter names and an init rule.

    Attributes:
        name: registry name, for example ``"relu-unit"``.
        function: ``f(w: (..., p), x: (n,)) -> (..., n)``.
        param_names: names of the ``p`` parameters, in the order of the last axis of ``w``.
        description: one line on what the model teaches.
        init_low, init_high: ``init()`` draws each parameter from ``U(init_low, init_high)``.
        default_init: the init a run uses when none is given, shape ``(p,)``; when left out,
            the seed's :data:`SEED_INIT` for the first two parameters and :data:`EXTRA_INIT`
            for each further one.
    """

    name: str
    function: ModelFunction
    param_names: tuple[str, ...]
    description: str = ""
    init_low: float = -0.1
    init_high: float = 0.1
    default_init: tuple[float, ...] = ()  # empty: filled in by __post_init__

    def __post_init__(self) -> None:
        start = self.default_init
        if not start:
            start = (*SEED_INIT, *[EXTRA_INIT] * (self.n_params - 2))[: self.n_params]
        start = tuple(float(v) for v in start)
        if len(start) != self.n_params:
            raise SgdscapeError(
                f"default_init of model {self.name!r} needs {self.n_params} values "
                f"({', '.join(self.param_names)}), got {start}."
            )
        object.__setattr__(self, "default_init", start)

    @property
    def n_params(self) -> int:
        """Number of parameters ``p``."""
        return len(self.param_names)

    def __call__(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Predictions ``(..., n)`` for parameters ``w: (..., p)`` and inputs ``x: (n,)`` or ``(n, 1)``."""
        if w.shape[-1] != self.n_params:
            raise SgdscapeError(
                f"model {self.name!r} takes {self.n_params} parameters "
                f"({', '.join(self.param_names)}), got a last axis of size {w.shape[-1]}."
            )
        return self.function(w, x.reshape(-1))

    def init(
        self, n_inits: int | None = None, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw parameters from the init rule: shape ``(p,)``, or ``(n_inits, p)``."""
        shape = (self.n_params,) if n_inits is None else (n_inits, self.n_params)
        return torch.empty(shape).uniform_(self.init_low, self.init_high, generator=generator)

    def param_index(self, name: str) -> int:
        """Position of parameter ``name`` on the last axis of ``w``."""
        check_choice(f"parameter of model {self.name!r}", name, self.param_names)
        return self.param_names.index(name)

    @classmethod
    def from_function(
        cls,
        function: ModelFunction,
        param_names: Sequence[str],
        *,
        name: str = "custom",
        description: str = "a user function",
        init_range: tuple[float, float] = (-0.1, 0.1),
    ) -> Model:
        """Wrap a user function ``f(w: (..., p), x: (n,)) -> (..., n)``."""
        if not callable(function):
            raise SgdscapeError(f"a model function must be callable, got {function!r}.")
        names = tuple(param_names)
        if not names or len(set(names)) != len(names):
            raise SgdscapeError(f"param_names must be distinct and non-empty, got {names}.")
        return cls(name, function, names, description, *init_range)

    @classmethod
    def from_module(cls, module: torch.nn.Module, *, name: str | None = None) -> Model:
        """Treat a small ``nn.Module`` mapping ``(n, 1) -> (n, 1)`` as a model of its flattened parameters.

        The module is evaluated with ``torch.func.functional_call``; it is never modified.
        Parameters are flattened in ``named_parameters()`` order. The default init draws
        each from ``U(-0.1, 0.1)``; pass ``module_parameters(module)`` as ``init`` to start
        from the module's current values.
        """
        shapes = {key: value.shape for key, value in module.named_parameters()}
        if not shapes:
            raise SgdscapeError("the module has no parameters to vary.")
        sizes = [int(torch.Size(s).numel()) for s in shapes.values()]
        names = tuple(
            f"{key}[{i}]" if size > 1 else key
            for key, size in zip(shapes, sizes, strict=True)
            for i in range(size)
        )

        def one(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            params = {
                key: chunk.reshape(shape)
                for (key, shape), chunk in zip(
                    shapes.items(), torch.split(flat, sizes), strict=True
                )
            }
            values: torch.Tensor = torch.func.functional_call(
                module, params, (x[:, None],)
            ).reshape(-1)
            return values

        batched = torch.func.vmap(one, in_dims=(0, None))

        def function(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            lead = w.shape[:-1]
            out = batched(w.reshape(-1, w.shape[-1]), x)
            return out.reshape(*lead, x.shape[0])

        return cls(name or type(module).__name__, function, names, "a user nn.Module")


def module_parameters(module: torch.nn.Module) -> torch.Tensor:
    """The module's current parameters flattened to ``(p,)``, in ``Model.from_module`` order."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def _param(w: torch.Tensor, i: int) -> torch.Tensor:
    """Parameter ``i`` of ``w: (..., p)`` as ``(..., 1)``, ready to broadcast against ``x: (n,)``."""
    return w[..., i, None]


def _relu_unit(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * relu(_param(w, 1) * x)


def _linear_product(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * (_param(w, 1) * x)


def _tanh_unit(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * torch.tanh(_param(w, 1) * x)


def _sigmoid_unit(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * torch.sigmoid(_param(w, 1) * x)


def _leaky_relu_unit(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * leaky_relu(_param(w, 1) * x, 0.1)


def _relu_unit_bias(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * relu(_param(w, 1) * x + _param(w, 2))


def _two_relu_units(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * relu(_param(w, 1) * x) + _param(w, 2) * relu(_param(w, 3) * x)


def _linear_regression(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return _param(w, 0) * x + _param(w, 1)


MODELS: dict[str, Model] = {
    m.name: m
    for m in [
        Model(
            "relu-unit",
            _relu_unit,
            ("w1", "w2"),
            "the seed's w1*relu(w2*x): non-convex, two mirror valleys, a dead-ReLU plateau",
        ),
        Model(
            "linear-product",
            _linear_product,
            ("w1", "w2"),
            "w1*w2*x: a whole hyperbola of minima, which one you reach depends on the init",
        ),
        Model(
            "tanh-unit",
            _tanh_unit,
            ("w1", "w2"),
            "w1*tanh(w2*x): smooth and odd, saturating for large |w2|",
        ),
        Model(
            "sigmoid-unit",
            _sigmoid_unit,
            ("w1", "w2"),
            "w1*sigmoid(w2*x): saturation makes flat regions with vanishing gradients",
        ),
        Model(
            "leaky-relu-unit",
            _leaky_relu_unit,
            ("w1", "w2"),
            "w1*leaky_relu(w2*x, 0.1): the dead-ReLU plateau gets a slope and SGD escapes",
        ),
        Model(
            "relu-unit-bias",
            _relu_unit_bias,
            ("w1", "w2", "b"),
            "w1*relu(w2*x + b): 3 parameters, seen through a 2-D slice",
        ),
        Model(
            "two-relu-units",
            _two_relu_units,
            ("a1", "w1", "a2", "w2"),
            "a1*relu(w1*x) + a2*relu(w2*x): 4 parameters, can fit both halves of the line",
        ),
        Model(
            "linear-regression",
            _linear_regression,
            ("w", "b"),
            "w*x + b: the convex reference, one minimum, SGD's noise ball around it",
        ),
    ]
}


def get_model(model: str | Model) -> Model:
    """A :class:`Model` from a registry name or a Model object."""
    if isinstance(model, Model):
        return model
    if isinstance(model, str):
        return MODELS[check_choice("model", model, MODELS)]
    if isinstance(model, torch.nn.Module):
        return Model.from_module(model)
    raise SgdscapeError(
        f"model must be a name ({', '.join(sorted(MODELS))}), a Model or an nn.Module, "
        f"got {type(model).__name__}."
    )
