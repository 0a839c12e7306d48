"""The fan of next steps in the HTML player's packed figure (``player(run, fan=True)``).

Read back from the JSON the page gets (the skeleton's traces and ``frames["fan"]``, the
points unpacked by :func:`decode_log_grids`), with the magnification undone, the fan is
checked against torch autograd on the run's data written out here (the seed's relu unit
``w1 relu(w2 x)``, squared error): every sample's step ``w - lr grad loss_i(w)``, each
minibatch's step for a bigger batch, and the full-gradient step ``w - lr grad R(w)``. The
magnification is the step PNG's (:class:`FanOverlay`'s, read from the drawn figure)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.errors import SgdscapeError
from sgdscape.views.fan import FanOverlay, run_fan
from sgdscape.views.plotly_figures import FAN_TRACES, decode_log_grids, player
from sgdscape.views.step_figure import StepFigure

pytest.importorskip("plotly")


def steps_of(result, w: np.ndarray, batches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 2)`` the SGD step of each minibatch ``batches (N, B)`` (mean loss over its
    samples) and ``(2,)`` the full-gradient step, from ``w``, by torch autograd."""
    x = result.data.x.double().reshape(-1)
    y = result.data.y.double().reshape(-1)
    point = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    losses = (point[0] * torch.relu(point[1] * x) - y) ** 2
    grads = [
        torch.autograd.grad(losses[torch.as_tensor(b)].mean(), point, retain_graph=True)[0]
        for b in batches
    ]
    (full,) = torch.autograd.grad(losses.mean(), point)
    lr = result.config.lr
    return w - lr * torch.stack(grads).numpy(), w - lr * full.numpy()


def unpacked(packed) -> tuple[dict, np.ndarray]:
    """The fan's frames after a JSON round trip (as the page parses them), and its
    points ``(S, N, 2)``."""
    frames = json.loads(json.dumps(packed.frames, allow_nan=False))["fan"]
    points = decode_log_grids(frames["points"])  # (S, 2, N)
    return frames, np.swapaxes(points, 1, 2)


@pytest.fixture(scope="module")
def result():
    """24 steps of single-sample SGD (12 samples, 2 epochs) on a 15x15 grid."""
    return sgdscape.run(sgdscape.RunConfig(grid=15, samples=12, epochs=2, lr=0.05))


def test_the_packed_fan_is_every_sample_step_magnified_as_the_png(result) -> None:
    assert result.config.model == "relu-unit" and result.config.loss_name == "mse"
    steps = range(1, 24, 5)
    plain = player(result, steps=steps)
    packed = player(result, steps=steps, fan=True)
    assert plain.frames["fan"] is None
    # the fan adds its traces after the others, on the left panel, and changes nothing else
    count = len(plain.figure["data"])
    assert packed.figure["data"][:count] == plain.figure["data"]
    added = packed.figure["data"][count:]
    assert [t["meta"] for t in added] == list(FAN_TRACES)
    assert all(t["xaxis"] == "x" and t["yaxis"] == "y" and t["x"] == [] for t in added)
    frames, points = unpacked(packed)
    assert frames["trace"] == count
    assert points.shape == (len(steps), len(result.data), 2)  # batch 1: one per sample
    overlay = FanOverlay(result)
    figure = StepFigure(result, figsize=(8, 3.5), dpi=40, overlays=[overlay])
    for i, step in enumerate(steps):
        w = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
        each, full = steps_of(result, w, np.arange(len(result.data))[:, None])
        figure.draw(step)  # the step PNG's fan, for its magnification
        scale = frames["scale"][i]
        assert scale == pytest.approx(overlay.scale, rel=1e-12) and scale > 1
        assert frames["label"][i] == f"possible next iterates (one per sample) × {scale:.3g}"
        # 16 bits over the step's coordinate span, then divided by the magnification
        bound = np.ptp(points[i]) / 131068 / scale + 1e-12
        np.testing.assert_allclose(w + (points[i] - w) / scale, each, atol=bound)
        for key in ("mean", "full_step"):
            drawn = w + (np.asarray(frames[key][i]) - w) / scale
            np.testing.assert_allclose(drawn, full, atol=1e-5, err_msg=key)
    assert frames["spokes"] >= len(result.data)
    assert len(frames["mean"]) == len(frames["label"]) == len(steps)


def test_a_bigger_batch_packs_a_sample_of_minibatch_steps() -> None:
    result = sgdscape.run(sgdscape.RunConfig(grid=15, samples=12, batch_size=3, lr=0.05))
    steps = [0, 3]
    frames, points = unpacked(player(result, steps=steps, fan=True))
    assert points.shape == (2, 1024, 2)
    for i, step in enumerate(steps):
        w = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
        batches = run_fan(result, step).batches  # the minibatches drawn (indices only)
        assert batches.shape == (1024, 3)
        each, full = steps_of(result, w, batches)
        scale = frames["scale"][i]
        assert frames["label"][i] == f"possible next iterates (1024 minibatches of 3) × {scale:.3g}"
        bound = np.ptp(points[i]) / 131068 / scale + 1e-12
        np.testing.assert_allclose(w + (points[i] - w) / scale, each, atol=bound)
        full_drawn = w + (np.asarray(frames["full_step"][i]) - w) / scale
        np.testing.assert_allclose(full_drawn, full, atol=1e-5)
        # the sample mean of 1024 minibatch steps is the full step within Monte Carlo error
        spread = each.std(axis=0) / np.sqrt(len(each))
        mean_drawn = w + (np.asarray(frames["mean"][i]) - w) / scale
        assert np.all(np.abs(mean_drawn - full) <= 5 * spread + 1e-9)


def test_a_run_without_a_fan_is_refused_before_any_work() -> None:
    many = sgdscape.run(sgdscape.RunConfig(grid=9, samples=6, inits="random:3"))
    with pytest.raises(SgdscapeError, match="single-init"):
        player(many, fan=True)
    three = sgdscape.run(
        sgdscape.RunConfig(model="relu-unit-bias", grid=9, samples=6, init=(1.0, 1.0, 0.5))
    )
    with pytest.raises(SgdscapeError, match="2-parameter model only; relu-unit-bias has 3"):
        player(three, fan=True)


def test_a_network_view_has_no_fan() -> None:
    from torch import nn

    from sgdscape.networks.examples import two_moons
    from sgdscape.networks.recording import record_training

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    recording = record_training(
        net, nn.CrossEntropyLoss(), two_moons(n=40, seed=1), lr=0.5, batch_size=20, epochs=1
    )
    view = sgdscape.stochastic_view(recording, grid=5)
    assert player(view).frames["fan"] is None
    with pytest.raises(SgdscapeError, match="not for a network's view"):
        player(view, fan=True)
