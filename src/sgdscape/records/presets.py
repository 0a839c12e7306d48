"""Named presets: the classic behaviours of stochastic optimization, one command each.

``sgdscape run --preset NAME`` runs one; ``sgdscape presets`` lists them. Each preset is a
:class:`RunConfig` (with compare variants where the story is a comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    #: ``sgdscape run --preset NAME`` also computes the curvature along the path
    curvature: bool = False

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
        Preset(
            "stability-threshold",
            "the stability threshold: full-batch GD converges for lr just below 2/λmax, diverges just above",
            "Linear regression's risk is a quadratic whose Hessian is the same everywhere, with "
            "top eigenvalue λmax = 2.0016 on this data, so gradient descent is stable exactly "
            "while lr < 2/λmax = 0.9992: with lr = 0.98 every step shrinks the error along the "
            "sharp direction by |1 - lr λmax| = 0.96, with lr = 1.02 it grows by 1.04 a step.",
            {
                "model": "linear-regression",
                "init": (0.5, 0.5),
                "lr": 0.98,
                "batch_size": 100,
                "epochs": 300,
                "compare": ({"lr": 1.02},),
            },
            curvature=True,
        ),
    ]
}


def get_preset(name: str) -> Preset:
    """A :class:`Preset` by name (the error lists the valid names)."""
    return PRESETS[check_choice("preset", name, PRESETS)]


# --------------------------------------------------------------------------- network presets


def one_hot_mse(output: Any, target: Any) -> Any:
    """``mean_i 1/2 ||output_i - onehot(target_i)||^2``: the squared loss on class labels
    (Cohen et al. 2021 train with it to show the edge of stability cleanly)."""
    import torch

    hot = torch.nn.functional.one_hot(target, output.shape[-1]).to(output.dtype)
    return 0.5 * ((output - hot) ** 2).sum(dim=-1).mean()


#: the losses a network preset may train with
NETWORK_LOSSES = ("cross-entropy", "mse")


@dataclass(frozen=True)
class NetworkRun:
    """One training run of a network preset: its learning rate, batch size and steps
    (``batch_size=None``: full batch, i.e. gradient descent)."""

    lr: float
    batch_size: int | None
    steps: int

    def label(self, n_samples: int) -> str:
        """``"GD lr=0.2"`` or ``"SGD lr=0.5, batch 32"``."""
        if self.batch_size is None or self.batch_size >= n_samples:
            return f"GD lr={self.lr:g}"
        return f"SGD lr={self.lr:g}, batch {self.batch_size}"


@dataclass(frozen=True)
class NetworkPreset:
    """A named experiment on a real network: the same example and init trained several ways,
    with the top Hessian eigenvalue measured along each run.

    Attributes:
        runs: the trainings, all from the same init (``seed``) on the same data.
        example: a :data:`sgdscape.networks.examples.EXAMPLES` name.
        loss: ``"cross-entropy"`` (the example's) or ``"mse"`` (:func:`one_hot_mse`).
        points: how many steps of each run get their sharpness measured (evenly spaced);
            ``last`` more are measured at the end of each run (their mean is the final
            sharpness).
    """

    name: str
    story: str
    explanation: str
    runs: tuple[NetworkRun, ...]
    example: str = "digits-mlp"
    loss: str = "cross-entropy"
    points: int = 40
    last: int = 5
    seed: int = 0
    #: the figure: ``"per-run"`` (a sharpness panel per run) or ``"overlay"`` (all runs on
    #: one panel and their final sharpness side by side)
    layout: str = "per-run"

    @property
    def command(self) -> str:
        """The one-line command that runs it."""
        return f"sgdscape network --preset {self.name}"


@dataclass(frozen=True)
class NetworkPresetResult:
    """What a network preset measured: per run its recording and its sharpness record."""

    preset: NetworkPreset
    labels: tuple[str, ...]
    recordings: tuple[Any, ...]
    curvatures: tuple[Any, ...]

    def final_sharpness(self) -> np.ndarray:
        """``(runs,)`` mean top eigenvalue over the last ``preset.last`` measured steps."""
        return np.array([c.sharpness[-self.preset.last :].mean() for c in self.curvatures])

    def arrays(self) -> dict[str, np.ndarray]:
        """Named arrays: per run ``run{i}_`` + the curvature record and ``run{i}_loss``
        (the minibatch loss of every step, ``(T,)``)."""
        out: dict[str, np.ndarray] = {}
        for i, (recording, record) in enumerate(zip(self.recordings, self.curvatures, strict=True)):
            out.update(record.arrays(prefix=f"run{i}_"))
            out[f"run{i}_loss"] = np.asarray(recording.batch_loss)
            out[f"run{i}_batch_size"] = np.asarray(recording.batch_size, dtype=np.int64)
        return out


def train_network_preset(
    preset: NetworkPreset | str, *, seed: int | None = None, device: str = "cpu"
) -> NetworkPresetResult:
    """Train every run of ``preset`` from one init and measure its sharpness along the way.

    Args:
        seed: the example's seed (weights and minibatch order; default the preset's).
    """
    from sgdscape.networks.curvature import training_curvature
    from sgdscape.networks.examples import get_example
    from sgdscape.networks.recording import record_training, select_steps

    if isinstance(preset, str):
        preset = get_network_preset(preset)
    seed = preset.seed if seed is None else seed
    example = get_example(preset.example, seed)
    loss_fn = example.loss_fn if preset.loss == "cross-entropy" else one_hot_mse
    n = int(example.x.shape[0])
    recordings, records, labels = [], [], []
    for run in preset.runs:
        batch = n if run.batch_size is None else min(run.batch_size, n)
        recording = record_training(
            example.model,
            loss_fn,
            (example.x, example.y),
            lr=run.lr,
            batch_size=batch,
            epochs=-(-run.steps * batch // n),
            max_steps=run.steps,
            seed=seed,
            device=device,
            name=example.name,
        )
        spread = select_steps(preset.points, recording.n_steps)
        tail = np.arange(max(0, recording.n_steps - preset.last), recording.n_steps)
        steps = np.union1d(spread, tail)
        records.append(
            training_curvature(
                recording, [int(s) for s in steps], k=1, batch=False, max_steps=30, device=device
            )
        )
        recordings.append(recording)
        labels.append(run.label(n))
    return NetworkPresetResult(preset, tuple(labels), tuple(recordings), tuple(records))


NETWORK_PRESETS: dict[str, NetworkPreset] = {
    p.name: p
    for p in [
        NetworkPreset(
            "edge-of-stability",
            "the edge of stability: full-batch GD sharpens until λmax reaches 2/lr, then hovers there",
            "Trained by gradient descent with the squared loss, the digits MLP's sharpness λmax "
            "rises step after step (progressive sharpening) until it meets the stability edge "
            "2/lr, and then stays in a narrow band around it for the rest of training, at both "
            "learning rates, while the loss keeps falling with occasional spikes: the quadratic "
            "model says GD should diverge there, yet it self-stabilises (Cohen et al., 2021).",
            (NetworkRun(0.23, None, 400), NetworkRun(0.27, None, 400)),
            loss="mse",
        ),
        NetworkPreset(
            "flat-minima",
            "flat minima: from the same init, larger steps and smaller batches end where the loss is flatter",
            "The same digits MLP from the same init, trained 600 steps three ways: gradient "
            "descent with lr 0.1 ends with sharpness λmax near 3.7, with lr 0.5 near 2.6 (held "
            "below 2/lr = 4 by the edge of stability), and SGD with lr 0.5 on batches of 32 near "
            "1.2: the gradient noise of small batches keeps the iterate out of sharp valleys.",
            (NetworkRun(0.1, None, 600), NetworkRun(0.5, None, 600), NetworkRun(0.5, 32, 600)),
            points=30,
            layout="overlay",
        ),
    ]
}


def get_network_preset(name: str) -> NetworkPreset:
    """A :class:`NetworkPreset` by name (the error lists the valid names)."""
    return NETWORK_PRESETS[check_choice("network preset", name, NETWORK_PRESETS)]


def write_network_preset_arrays(result: NetworkPresetResult, folder: Any) -> str:
    """Write ``preset.npz`` (:meth:`NetworkPresetResult.arrays`, plain arrays: no pickle)
    into ``folder`` (a stage of :func:`sgdscape.io.output_set`); returns its name."""
    from pathlib import Path

    arrays: dict[str, Any] = result.arrays()
    with (Path(folder) / "preset.npz").open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return "preset.npz"
