"""Named presets: the classic behaviours of stochastic optimization, one command each.

``sgdscape run --preset NAME`` runs one; ``sgdscape presets`` lists them. Each preset is a
:class:`RunConfig` (with compare variants where the story is a comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sgdscape.errors import check_choice
from sgdscape.records.run import RunConfig


@dataclass(frozen=True)
class Preset:
    """A named experiment: its one-line story, what to look at, and its config changes."""

    name: str
    story: str
    explanation: str
    changes: dict[str, Any] = field(default_factory=dict)
    basins: bool = False

    @property
    def config(self) -> RunConfig:
        """The preset's :class:`RunConfig` (the seed's defaults plus ``changes``)."""
        return RunConfig(**self.changes)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "seed",
            "the notebook's run: SGD settles on the w1*w2 = 2 branch that fits only x < 0",
            "From (1.2, -2.3) the ReLU is active only for x < 0, so SGD fits that half: it slides "
            "into the valley w1*w2 = 2 with w1, w2 < 0 and the risk stalls near 0.63, half the "
            "data's variance, far above the noise level 0.01.",
        ),
        Preset(
            "mirror-valleys",
            "sign symmetry: two mirror-image valleys of relu-unit, reached from mirrored inits",
            "w1*relu(w2*x) fits the x > 0 half when w1, w2 > 0 and the x < 0 half when "
            "w1, w2 < 0: two valleys w1*w2 = 2 in opposite quadrants with the same risk. "
            "Mirrored inits (1.2, 2.3) and (-1.2, -2.3) end in mirrored valleys.",
            {"init": (1.2, 2.3), "epochs": 3, "compare": ({"init": (-1.2, -2.3)},)},
        ),
        Preset(
            "dead-relu",
            "the dead-ReLU plateau: an init where every sample's gradient vanishes",
            "With x in [0, 1] and w2 < 0, relu(w2*x) = 0 for every sample: the loss is flat in "
            "both w1 and w2 around the init, every gradient is exactly zero and SGD never moves.",
            {"problem": "positive-x", "init": (1.5, -2.0), "epochs": 2},
        ),
        Preset(
            "disagreeing-samples",
            "per-sample landscapes disagree: the minibatch gradient can point away from the true one",
            "Each sample's loss has its own valley (w1*w2 = y/x on one side of w2 = 0). Near the "
            "risk's valley the single-sample gradients scatter around the full gradient; the "
            "cosine between them is often negative, so single steps go uphill on the risk.",
            {
                "init": (-1.0, -2.0),
                "epochs": 2,
                "sampling": "shuffle",
                "w1_range": (-1.6, -0.4),
                "w2_range": (-2.6, -1.4),
            },
        ),
        Preset(
            "noise-ball",
            "constant-step SGD keeps wandering around the minimum; a decaying schedule converges",
            "On the convex linear regression, SGD with a constant step never settles: the "
            "gradient noise at the minimum keeps it in a ball whose size grows with lr. A 1/t "
            "schedule shrinks the steps and the iterate converges to the minimum.",
            {
                "model": "linear-regression",
                "init": (-2.0, 2.0),
                "noise_std": 0.5,
                "lr": 0.2,
                "epochs": 10,
                "sampling": "shuffle",
                "compare": ({"schedule": "inverse-time", "schedule_options": {"decay": 0.05}},),
            },
        ),
        Preset(
            "too-large-lr",
            "too large a learning rate: oscillation, then divergence (recorded, not crashed)",
            "Full-batch gradient descent on linear regression is stable only for lr below "
            "2/L (L the largest curvature). Above it every step overshoots further: the iterate "
            "flips side and grows until it overflows, and the run records where it diverged.",
            {
                "model": "linear-regression",
                "init": (0.5, 0.5),
                "lr": 2.5,
                "batch_size": 100,
                "epochs": 200,
            },
        ),
        Preset(
            "batch-size-noise",
            "batch size versus noise: batch 1, 10 and full batch from the same init",
            "Averaging B samples divides the gradient noise's variance by about B: over the same "
            "500 steps batch 1 zig-zags, batch 10 is smoother, and the full batch follows the "
            "risk's gradient flow.",
            {
                "init": (2.5, -0.5),
                "epochs": 5,
                "sampling": "shuffle",
                "lr": 0.1,
                "compare": (
                    {"batch_size": 10, "epochs": 50},
                    {"batch_size": 100, "epochs": 500},
                ),
            },
        ),
        Preset(
            "momentum-overshoot",
            "momentum overshooting a valley",
            "Heavy-ball momentum (0.9) accumulates speed along the valley's slope and shoots past "
            "the minimum before coming back, where plain gradient descent slides in monotonically.",
            {
                "model": "linear-regression",
                "init": (-2.5, 2.5),
                "lr": 0.05,
                "batch_size": 100,
                "epochs": 100,
                "compare": ({"optimizer_options": {"momentum": 0.9}},),
            },
        ),
        Preset(
            "adam-sign-steps",
            "Adam's near sign-like steps on a flat region, against SGD",
            "Near (0, 0) the relu-unit's gradients are tiny, so SGD barely moves; Adam divides "
            "by the running RMS of the gradient, so its first steps have size about lr in every "
            "coordinate whatever the gradient's scale, and it leaves the flat region fast.",
            {
                "init": (0.05, 0.05),
                "lr": 0.02,
                "batch_size": 10,
                "epochs": 20,
                "compare": ({"optimizer": "adam"},),
            },
        ),
        Preset(
            "valley-of-minima",
            "linear-product: a whole valley of minima, which one you reach depends on the init",
            "w1*w2*x only depends on the product w1*w2, so every point of the hyperbola "
            "w1*w2 = 2 is a minimum. Gradient descent keeps w1^2 - w2^2 nearly constant, so "
            "different inits end at different points of the valley.",
            {
                "model": "linear-product",
                "init": (0.3, 2.5),
                "epochs": 5,
                "sampling": "shuffle",
                "compare": ({"init": (2.5, 0.3)}, {"init": (1.0, 1.2)}),
            },
        ),
        Preset(
            "outliers-huber",
            "outliers pull SGD with mse but not with huber",
            "With 10% of targets shifted by ±5, the squared loss's gradient grows with the "
            "residual, so outliers drag the fit; the Huber loss caps their pull and the fit "
            "stays near the true line y = 2x.",
            {
                "problem": "outliers",
                "model": "linear-regression",
                "init": (0.0, 0.0),
                "outlier_fraction": 0.1,
                "lr": 0.05,
                "epochs": 10,
                "sampling": "shuffle",
                "compare": ({"loss": "huber"},),
            },
        ),
        Preset(
            "basins",
            "basins of attraction: which init ends in which valley",
            "Start SGD from a grid of inits and colour each init by the valley it ends in: the "
            "two mirror valleys split the plane along the sign of w2, and the line w2 = 0 is dead.",
            {"epochs": 3, "sampling": "shuffle"},
            basins=True,
        ),
    ]
}


def get_preset(name: str) -> Preset:
    """A :class:`Preset` by name (the error lists the valid names)."""
    return PRESETS[check_choice("preset", name, PRESETS)]
