"""One step source, one figure, one player, one explorer: a 2-parameter run and a real
network's view are drawn by the same code, and every drawn arrow is read back from what
was drawn (matplotlib patches, the player's packed tips, the explorer's annotations) and
checked against the recorded -gradient (``arrow_oracle.check_arrow``).

Oracles: the run's own ``trajectory.grads``/``full_grads`` (a 2-parameter model is
plotted on its own axes) and ``result.path()``; the view's ``grads_plane`` and ``path()``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.patches import FancyArrow
from torch import nn

import sgdscape
from arrow_oracle import check_arrow
from sgdscape.errors import SgdscapeError
from sgdscape.networks.examples import two_moons
from sgdscape.networks.recording import record_training
from sgdscape.views.step_figure import StepFigure
from sgdscape.views.step_source import StepSource, step_source
from sgdscape.views.style import PATH_COLOUR, TRUE_GRADIENT_COLOUR

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def run_case():
    result = sgdscape.run(sgdscape.RunConfig(grid=15, samples=10, epochs=2))
    trajectory = result.trajectory
    plane = result.landscape.plane  # two parameters on their own axes: gradients are plot vectors
    assert plane is None or (plane.d1.tolist(), plane.d2.tolist()) == ([1, 0], [0, 1])
    return result, result.path(), trajectory.grads, trajectory.full_grads


@pytest.fixture(scope="module")
def network_case():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    recording = record_training(
        model, nn.CrossEntropyLoss(), two_moons(n=120, seed=1), lr=0.5, batch_size=20, epochs=2
    )
    view = sgdscape.stochastic_view(recording, grid=9)
    return view, view.path(), view.grads_plane, None


@pytest.fixture(params=["run", "network"])
def case(request):
    return request.getfixturevalue(f"{request.param}_case")


def _window(obj) -> tuple[float, float, float, float]:
    surface = obj.landscape
    return (surface.w1[0], surface.w1[-1], surface.w2[0], surface.w2[-1])


def test_the_source_carries_the_objects_own_arrays(case) -> None:
    obj, path, grads, full = case
    source = step_source(obj)
    assert isinstance(source, StepSource) and step_source(source) is source
    np.testing.assert_array_equal(source.path, path)
    np.testing.assert_allclose(source.minibatch_gradients, grads, rtol=1e-6)
    assert (source.true_gradients is None) == (full is None)
    assert source.n_steps == obj.n_steps == len(grads)
    for step in (0, obj.n_steps - 1):
        batch_of = obj.batch if hasattr(obj, "batch") else obj.trajectory.batch
        np.testing.assert_array_equal(source.batches[step], batch_of(step))
        np.testing.assert_array_equal(source.minibatch_landscape(step), obj.batch_landscape(step))
    assert source.projected == (full is None)  # the network's path is a projection
    with pytest.raises(SgdscapeError, match="RunResult or a StochasticView, got int"):
        step_source(3)  # type: ignore[arg-type]


def _drawn_patches(figure) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
    """The arrows drawn on the left panel, by colour: ``(tail, tip)`` read from the
    patch's polygon (the tip is its vertex farthest from the iterate marker)."""
    left = figure.axes[0]
    (marker,) = [c for c in left.collections if isinstance(c, PathCollection)]
    tail = np.asarray(marker.get_offsets()[0], dtype=np.float64)
    out: dict[str, tuple[np.ndarray, np.ndarray] | None] = {"minibatch": None, "true": None}
    for patch in left.patches:
        if not isinstance(patch, FancyArrow):
            continue
        xy = np.asarray(patch.get_xy(), dtype=np.float64)
        tip = xy[np.argmax(np.linalg.norm(xy - tail, axis=1))]
        colour = to_hex(patch.get_facecolor())
        key = {to_hex(PATH_COLOUR): "minibatch", to_hex(TRUE_GRADIENT_COLOUR): "true"}[colour]
        out[key] = (tail, tip)
    return out


def test_one_step_figure_draws_both(case) -> None:
    obj, path, grads, full = case
    drawing = StepFigure(obj)
    window = _window(obj)
    for step in (0, 3, obj.n_steps - 1):
        figure = drawing.draw(step)
        left, right = figure.axes[0], figure.axes[1]
        assert f"step {step}" in left.get_title()
        drawn = _drawn_patches(figure)
        if drawn["minibatch"] is not None:
            np.testing.assert_allclose(drawn["minibatch"][0], path[step], rtol=1e-6)
        legend = [t.get_text() for t in left.get_legend().get_texts()]
        check_arrow(drawn["minibatch"], grads[step], window)
        assert any(text.startswith("-minibatch gradient") for text in legend), legend
        if full is not None:
            check_arrow(drawn["true"], full[step], window)
        else:
            assert drawn["true"] is None
        # the path so far on the right, whatever the source
        line = next(ln for ln in right.get_lines() if ln.get_label().startswith("path so far"))
        np.testing.assert_allclose(line.get_xdata(), path[: step + 1, 0])
        np.testing.assert_allclose(line.get_ydata(), path[: step + 1, 1])
    plt.close(figure)


def test_one_player_packs_both(case) -> None:
    from sgdscape.views.plotly_figures import decode_log_grids, player

    obj, path, grads, full = case
    frames = player(obj).frames
    window = _window(obj)
    grids = decode_log_grids(frames["grids"])
    for i, step in enumerate(frames["steps"]):
        tip = frames["minibatch_tip"][i]
        drawn = None if tip[0] is None else (path[step], np.array(tip, dtype=float))
        check_arrow(drawn, grads[step], window, frames["minibatch_label"][i])
        if full is not None:
            tip = frames["full_tip"][i]
            drawn = None if tip[0] is None else (path[step], np.array(tip, dtype=float))
            check_arrow(drawn, full[step], window, frames["full_label"][i])
        expected = np.log(obj.batch_landscape(step).astype(np.float64))
        np.testing.assert_allclose(
            grids[frames["landscape"][i]], expected, atol=np.ptp(expected) / 60000 + 1e-6
        )
    assert (frames["full_tip"] is None) == (full is None)


def test_one_explorer_draws_both(case) -> None:
    pytest.importorskip("ipywidgets")
    pytest.importorskip("anywidget")
    from sgdscape.surfaces.widget import explore
    from sgdscape.surfaces.widget.panels import TwoPanels

    obj, path, grads, full = case
    explorer = explore(obj)
    assert isinstance(explorer, TwoPanels)
    window = _window(obj)
    for step in (0, 5, obj.n_steps - 1):
        explorer.step = step
        arrows = explorer.drawn_arrows
        check_arrow(arrows["minibatch"], grads[step], window, explorer.arrow_notes[0])
        if full is not None:
            check_arrow(arrows["full"], full[step], window, explorer.arrow_notes[1])
        else:
            assert arrows["full"] is None
        np.testing.assert_allclose(explorer.drawn_iterate, path[step], rtol=1e-5)
        np.testing.assert_allclose(explorer.drawn_path, path[: step + 1], rtol=1e-5)
        np.testing.assert_allclose(
            explorer.drawn_left_z,
            np.log(obj.batch_landscape(step).astype(np.float64)),
            rtol=1e-5,
            atol=1e-6,
        )


def test_the_player_script_is_a_package_asset_inlined_in_the_page(run_case) -> None:
    from importlib import resources
    from pathlib import Path

    import tomllib

    from sgdscape.surfaces.export import html_page
    from sgdscape.views.plotly_figures import PLAYER_JS

    asset = resources.files("sgdscape.views").joinpath("assets/player.js").read_text("utf-8")
    assert asset.lstrip().startswith("//") and "async function sgdscapePlayer(" in asset
    assert asset == PLAYER_JS
    assert asset in html_page(run_case[0], steps=[0, 1])
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "assets/*.js" in package_data["sgdscape.views"]  # shipped in the wheel


class RiskAlongPath:
    """A test panel: the risk along the path, with a marker at the step shown."""

    def setup(self, axes, source) -> None:
        axes.plot(np.arange(len(source.risk)), source.risk, color="grey")
        (self.marker,) = axes.plot([], [], "o", color="red", markersize=12)

    def draw(self, axes, source, step):
        self.marker.set_data([step], [source.risk[step]])
        return [self.marker]


def test_a_further_panel_is_drawn_and_repainted_with_the_step(case) -> None:
    obj = case[0]
    risk = obj.risk if hasattr(obj, "risk") else obj.trajectory.risk

    def frozen() -> StepFigure:
        drawing = StepFigure(obj, figsize=(8, 3.5), dpi=40, panels=[RiskAlongPath()])
        drawing.draw(0)
        drawing.freeze_layout()
        return drawing

    streamed, full = frozen(), frozen()
    assert len(full.fig.axes) == 5  # three panels, two colour bars
    assert full.fig.get_figwidth() == pytest.approx(12)
    for step in (2, obj.n_steps - 1):
        streamed.draw(step)
        marker = streamed.panel_axes[0].get_lines()[1]
        np.testing.assert_allclose(marker.get_xydata(), [[step, risk[step]]], rtol=1e-6)
        # only the changing artists, the panel's marker among them, on the kept background
        frame = streamed.render().astype(int)
        full.draw(step)
        full.fig.canvas.draw()
        reference = np.asarray(full.fig.canvas.buffer_rgba()).astype(int)
        differs = np.abs(frame - reference).max(axis=2)
        # (a few faint pixels where tick marks meet the repainted frame lines)
        assert (differs > 0).sum() <= 24, (step, (differs > 0).sum())
    plt.close(streamed.fig)
    plt.close(full.fig)
