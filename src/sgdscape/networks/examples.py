"""Small real networks that ship: digits (scikit-learn's bundled copy), moons, spirals.

Each example is a registry entry: a function of a seed returning an :class:`Example`
(model, loss, data and training settings). Randomness comes from the seed only: data
from a ``torch.Generator``, weights initialised under a forked, seeded global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from sgdscape.errors import SgdscapeError


@dataclass(frozen=True)
class Example:
    """A network, its data and how to train it."""

    name: str
    description: str
    model: nn.Module
    loss_fn: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 32
    epochs: int = 2


def _init(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SgdscapeError(
            "the digits examples need scikit-learn: pip install 'sgdscape[networks]'."
        ) from None
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    return x, y


def digits_mlp(seed: int = 0) -> Example:
    """An MLP 64-32-10 on the 1,797 8x8 digits."""
    x, y = _digits()
    model = _init(seed, lambda: nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)))
    return Example(
        "digits-mlp",
        digits_mlp.__doc__ or "",
        model,
        nn.CrossEntropyLoss(),
        x,
        y,
        lr=0.2,
        batch_size=16,
        epochs=6,
    )


def digits_cnn(seed: int = 0) -> Example:
    """A small CNN (two 3x3 conv layers, 8 and 16 channels) on the 8x8 digits."""
    x, y = _digits()

    def build() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 10),
        )

    return Example(
        "digits-cnn",
        digits_cnn.__doc__ or "",
        _init(seed, build),
        nn.CrossEntropyLoss(),
        x.reshape(-1, 1, 8, 8),
        y,
        lr=0.3,
        batch_size=32,
        epochs=2,
    )


def two_moons(n: int = 512, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles, ``x: (n, 2)``, ``y: (n,)`` in {0, 1} (as scikit-learn)."""
    generator = torch.Generator().manual_seed(seed)
    half = n // 2
    t_out = torch.linspace(0, math.pi, n - half)
    t_in = torch.linspace(0, math.pi, half)
    outer = torch.stack([torch.cos(t_out), torch.sin(t_out)], dim=1)
    inner = torch.stack([1 - torch.cos(t_in), 0.5 - torch.sin(t_in)], dim=1)
    x = torch.cat([outer, inner]) + noise * torch.randn(n, 2, generator=generator)
    y = torch.cat([torch.zeros(n - half), torch.ones(half)]).long()
    order = torch.randperm(n, generator=generator)
    return x[order], y[order]


def spirals(
    n: int = 512, noise: float = 0.05, turns: float = 1.5, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals, ``x: (n, 2)``, ``y: (n,)`` in {0, 1}."""
    generator = torch.Generator().manual_seed(seed)
    half = n // 2
    t = torch.sqrt(torch.rand(half, generator=generator)) * turns * 2 * math.pi
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / (turns * 2 * math.pi)
    x = torch.cat([arm, -arm]) + noise * torch.randn(2 * half, 2, generator=generator)
    y = torch.cat([torch.zeros(half), torch.ones(half)]).long()
    order = torch.randperm(2 * half, generator=generator)
    return x[order], y[order]


def _tanh_mlp_2d(
    name: str,
    description: str,
    data: tuple[torch.Tensor, torch.Tensor],
    width: int,
    seed: int,
    *,
    lr: float,
    epochs: int,
    optimizer: str = "sgd",
) -> Example:
    """A two-class MLP ``2-width-width-2`` with tanh units on the 2-d points ``data``."""
    x, y = data
    model = _init(
        seed,
        lambda: nn.Sequential(
            nn.Linear(2, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 2)
        ),
    )
    return Example(
        name, description, model, nn.CrossEntropyLoss(), x, y, optimizer, lr, epochs=epochs
    )


def moons_example(seed: int = 0) -> Example:
    """An MLP 2-16-16-2 on 512 synthetic two-moons points."""
    return _tanh_mlp_2d(
        "moons", moons_example.__doc__ or "", two_moons(seed=seed), 16, seed, lr=0.3, epochs=4
    )


def spirals_example(seed: int = 0) -> Example:
    """An MLP 2-32-32-2 on 512 synthetic two-spirals points."""
    return _tanh_mlp_2d(
        "spirals",
        spirals_example.__doc__ or "",
        spirals(seed=seed),
        32,
        seed,
        optimizer="adam",
        lr=0.01,
        epochs=6,
    )


EXAMPLES: dict[str, Callable[[int], Example]] = {
    "digits-mlp": digits_mlp,
    "digits-cnn": digits_cnn,
    "moons": moons_example,
    "spirals": spirals_example,
}


def get_example(name: str, seed: int = 0) -> Example:
    """The example ``name`` built with ``seed``."""
    if name not in EXAMPLES:
        raise SgdscapeError(f"unknown example {name!r}; choose one of: {', '.join(EXAMPLES)}.")
    return EXAMPLES[name](seed)
