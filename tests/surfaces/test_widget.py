"""The Jupyter explorer, driven programmatically: what it draws against independent oracles."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

import sgdscape
from arrow_oracle import check_arrow
from sgdscape import RunConfig, SgdscapeError
from sgdscape.surfaces.widget import Explorer, explore
from sgdscape.views.step_figure import arrow_scale, safe_log

SMALL = RunConfig(grid=30)


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return explore(SMALL)


def seed_sample_loss(w1: np.ndarray, w2: np.ndarray, x: float, y: float) -> np.ndarray:
    """The seed model's squared error on one sample, on the grid (rows = w2), by hand."""
    W1, W2 = np.meshgrid(w1.astype(np.float64), w2.astype(np.float64))
    return (W1 * np.maximum(W2 * x, 0.0) - y) ** 2


def test_explore_returns_a_widget_showing_step_zero(explorer: Explorer) -> None:
    import ipywidgets

    assert isinstance(explorer, ipywidgets.VBox)
    assert explorer.step == 0
    assert explorer.slider.max == explorer.play.max == explorer.n_steps - 1 == 99
    np.testing.assert_allclose(explorer.drawn_iterate, [1.2, -2.3], rtol=1e-6)
    assert explorer.drawn_path.shape == (1, 2)
    # The right panel is the log empirical risk of the same data, by hand.
    data = sgdscape.ground_truth(seed=0)
    surface = explorer.result.landscape
    risk = np.mean(
        [
            seed_sample_loss(surface.w1, surface.w2, float(x), float(y))
            for x, y in zip(data.x.reshape(-1), data.y.reshape(-1), strict=True)
        ],
        axis=0,
    )
    np.testing.assert_allclose(np.exp(explorer.drawn_right_z), risk, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("step", [0, 1, 37, 99])
def test_setting_the_step_changes_the_drawn_iterate_and_landscape(
    explorer: Explorer, step: int
) -> None:
    result = explorer.result
    explorer.step = step
    assert explorer.slider.value == step
    path = result.path()
    np.testing.assert_allclose(explorer.drawn_iterate, path[step], rtol=1e-6)
    np.testing.assert_allclose(explorer.drawn_path, path[: step + 1], rtol=1e-6)
    np.testing.assert_allclose(
        explorer.drawn_left_z, safe_log(result.batch_landscape(step)), rtol=1e-5, atol=1e-5
    )
    # Independent oracle: with batch size 1 and in-order sampling, step k uses sample k.
    data = sgdscape.ground_truth(seed=0)
    by_hand = seed_sample_loss(
        result.landscape.w1, result.landscape.w2, float(data.x[step]), float(data.y[step])
    )
    shown = np.exp(explorer.drawn_left_z.astype(np.float64))
    resolved = by_hand > 1e-4  # safe_log clips values below the grid's smallest positive
    np.testing.assert_allclose(shown[resolved], by_hand[resolved], rtol=1e-3)
    assert f"step {step}/99" in explorer.caption
    assert f"minibatch [{step}]" in explorer.caption


def test_different_steps_draw_different_landscapes(explorer: Explorer) -> None:
    explorer.step = 3
    first = explorer.drawn_left_z.copy()
    explorer.step = 4
    assert not np.allclose(first, explorer.drawn_left_z)
    explorer.step = 3
    np.testing.assert_array_equal(first, explorer.drawn_left_z)


def test_arrows_are_minus_the_scaled_gradients_by_hand(explorer: Explorer) -> None:
    step = 12
    explorer.step = step
    data = sgdscape.ground_truth(seed=0)
    x, y = data.x.reshape(-1).double(), data.y.reshape(-1).double()
    w1, w2 = (float(v) for v in explorer.result.path()[step])
    scale = arrow_scale(explorer.result)

    def gradient(xs: torch.Tensor, ys: torch.Tensor) -> np.ndarray:
        residual = w1 * torch.relu(w2 * xs) - ys
        active = (w2 * xs > 0).double()
        return np.array(
            [
                float((2 * residual * torch.relu(w2 * xs)).mean()),
                float((2 * residual * w1 * xs * active).mean()),
            ]
        )

    arrows = explorer.drawn_arrows
    window = (-3.0, 3.0, -3.0, 3.0)
    for name, expected, note in zip(
        ("minibatch", "full"),
        (gradient(x[step : step + 1], y[step : step + 1]), gradient(x, y)),
        explorer.arrow_notes,
        strict=True,
    ):
        tail, head = arrows[name]
        np.testing.assert_allclose(tail, [w1, w2], rtol=1e-6)
        assert note in explorer.caption_widget.value
        check_arrow((tail, head), expected, window, note)
        factor = float(note.split("× ")[1].split()[0])
        assert factor >= 0.99 * float(f"{scale:.2g}")  # the run's scale, or raised


def test_zero_gradients_draw_no_arrow_and_say_so(explorer: Explorer) -> None:
    grads = explorer.result.trajectory.grads
    zero = [t for t in range(len(grads)) if not np.any(grads[t] != 0)]
    assert zero, "the seed run has steps whose sample has a zero gradient"
    explorer.step = zero[0]
    assert explorer.drawn_arrows["minibatch"] is None
    assert explorer.arrow_notes[0] == "−minibatch gradient = 0 (no arrow)"
    assert "−minibatch gradient = 0 (no arrow)" in explorer.caption_widget.value


def test_scrubbing_uses_precomputed_frames_only(
    explorer: Explorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("scrubbing recomputed something")

    import sgdscape.surfaces.widget.explorer as widget_module
    import sgdscape.surfaces.widget.panels as panels_module

    monkeypatch.setattr(widget_module, "run", forbidden)
    monkeypatch.setattr(type(explorer.result), "batch_landscape", forbidden)
    monkeypatch.setattr(type(explorer.result), "path", forbidden)
    monkeypatch.setattr(panels_module, "safe_log", forbidden)
    for step in range(explorer.n_steps):
        explorer.step = step
    assert explorer.drawn_path.shape == (explorer.n_steps, 2)


def test_thousand_steps_share_the_distinct_minibatch_grids() -> None:
    explorer = explore(SMALL.replace(epochs=10))
    assert explorer.n_steps == 1000
    # In-order sampling revisits the same 100 single-sample minibatches every epoch.
    assert explorer.frames.surfaces.shape == (100, 30, 30)
    explorer.step = 999
    np.testing.assert_allclose(
        explorer.drawn_left_z, safe_log(explorer.result.batch_landscape(999)), atol=1e-5
    )
    np.testing.assert_allclose(explorer.drawn_iterate, explorer.result.path()[999], rtol=1e-6)


def independent_path(lr: float, init: tuple[float, float] = (1.2, -2.3), **options: object):
    return sgdscape.train(
        "relu-unit", sgdscape.ground_truth(seed=0), init=init, lr=lr, **options
    ).iterates


def test_changing_the_learning_rate_recomputes_the_trajectory() -> None:
    explorer = explore(SMALL)
    before = explorer.result.path().copy()
    explorer.step = 50
    explorer.set_controls(lr=0.2)
    assert explorer.result.config.lr == 0.2
    assert explorer.lr_control.value == pytest.approx(0.2)
    expected = independent_path(0.2)
    np.testing.assert_allclose(explorer.result.path(), expected, rtol=1e-6)
    assert not np.allclose(expected, before)
    # The view follows: same step, new iterate, new path.
    assert explorer.step == 50
    np.testing.assert_allclose(explorer.drawn_iterate, expected[50], rtol=1e-6)
    explorer.step = 99
    np.testing.assert_allclose(explorer.drawn_path, expected, rtol=1e-6)


def test_the_learning_rate_widget_recomputes_too() -> None:
    explorer = explore(SMALL)
    explorer.lr_control.value = 0.02
    expected = independent_path(explorer.lr_control.value)
    np.testing.assert_allclose(explorer.result.path(), expected, rtol=1e-6)
    explorer.step = 99
    np.testing.assert_allclose(explorer.drawn_iterate, expected[99], rtol=1e-6)


def test_init_optimizer_and_batch_size_controls_recompute() -> None:
    explorer = explore(SMALL.replace(optimizer_options={"momentum": 0.9}))
    explorer.init_controls[0].value = -1.0
    explorer.init_controls[1].value = 0.5
    assert explorer.result.config.init == (-1.0, 0.5)
    np.testing.assert_allclose(explorer.drawn_path[0], [-1.0, 0.5])
    np.testing.assert_allclose(
        explorer.result.path(),
        independent_path(0.05, (-1.0, 0.5), optimizer_options={"momentum": 0.9}),
        rtol=1e-6,
    )
    # Adam has no momentum option: the explorer drops it instead of failing.
    explorer.optimizer_control.value = "adam"
    assert explorer.result.config.optimizer == "adam"
    assert dict(explorer.result.config.optimizer_options) == {}
    np.testing.assert_allclose(
        explorer.result.path(),
        independent_path(0.05, (-1.0, 0.5), optimizer="adam"),
        rtol=1e-5,
    )
    explorer.batch_control.value = 10
    assert explorer.n_steps == 10 == explorer.slider.max + 1
    explorer.step = 3
    assert "(10 sample(s))" in explorer.caption
    np.testing.assert_allclose(
        explorer.drawn_left_z,
        safe_log(explorer.result.landscape.sample_loss[30:40].mean(0)),
        atol=1e-5,
    )


def test_bad_control_values_leave_the_explorer_as_it_was() -> None:
    explorer = explore(SMALL)
    result = explorer.result
    with pytest.raises(SgdscapeError, match="learning rate"):
        explorer.set_controls(lr=-1.0)
    with pytest.raises(SgdscapeError, match="batch_size"):
        explorer.set_controls(batch_size=1000)
    assert explorer.result is result
    explorer.batch_control.max = 1000
    explorer.batch_control.value = 1000  # through the widget: reported, not raised
    assert explorer.result is result
    assert "sgdscape: error" in explorer.status.value


def test_a_diverging_run_is_shown_not_crashed() -> None:
    explorer = explore(SMALL.replace(lr=10.0))
    trajectory = explorer.result.trajectory
    assert trajectory.diverged
    assert "diverged at step" in explorer.caption
    for step in range(explorer.n_steps):
        explorer.step = step
        point = explorer.drawn_iterate
        assert np.isfinite(point).all() or np.isnan(point).all()


def test_explore_accepts_a_result_a_config_or_a_saved_run(tmp_path) -> None:
    result = sgdscape.run(SMALL)
    assert explore(result).result is result
    changed = explore(result, lr=0.1)
    assert changed.result.config == SMALL.replace(lr=0.1)
    sgdscape.save(result, tmp_path / "run")
    loaded = explore(tmp_path / "run")
    np.testing.assert_array_equal(loaded.result.path(), result.path())
    assert sgdscape.explore(SMALL, lr=0.1).result.config.lr == 0.1


def test_explore_rejects_bad_inputs() -> None:
    with pytest.raises(SgdscapeError, match="explore takes"):
        explore(42)  # type: ignore[arg-type]
    result = sgdscape.run(SMALL)
    batched = sgdscape.train("relu-unit", result.data, init=[[1.2, -2.3], [0.5, 0.5]], lr=0.05)
    with pytest.raises(SgdscapeError, match="one trajectory"):
        explore(dataclasses.replace(result, trajectory=batched))
    with pytest.raises(SgdscapeError, match="unknown config field"):
        explore(SMALL, learning_rate=0.1)
    with pytest.raises(SgdscapeError, match="step must be between"):
        explore(SMALL).step = 100


def test_step_updates_are_one_message_of_sendable_binary_buffers() -> None:
    """A step sends one update (one redraw) whose arrays travel as contiguous binary buffers.

    A strided array (a column view) cannot be sent over the kernel's socket; a 2-D array
    would be turned into nested lists on every step.
    """
    from ipywidgets.widgets.widget import _remove_buffers
    from plotly.serializers import _py_to_js

    explorer = explore(SMALL)
    sent = []
    for name in ("_py2js_update", "_py2js_restyle", "_py2js_relayout"):
        explorer.figure.observe(lambda change: sent.append(change["new"]), names=name)
    explorer.step = 40
    messages = [message for message in sent if message is not None]
    assert len(messages) == 1
    state, _, buffers = _remove_buffers({"message": _py_to_js(messages[0], None)})
    assert len(buffers) == 30  # the 30 rows of the grid
    assert all(memoryview(buffer).c_contiguous for buffer in buffers)
    # Plotly.js would set a property sent as "undefined" to its default (a heatmap's x!).
    assert "_undefined_" not in repr(state)


def test_the_caption_of_a_slice_says_where_the_other_parameters_are_held() -> None:
    explorer = explore(SMALL.replace(model="relu-unit-bias"))
    explorer.step = 30
    b = explorer.result.trajectory.iterates[30][2]
    assert f"slice at b = 0.5 (iterate: b = {b:.3g})" in explorer.caption
    assert "slice" not in explore(SMALL).caption


def test_init_controls_follow_the_plotted_parameters_of_a_slice() -> None:
    config = SMALL.replace(model="relu-unit-bias", init=(1.2, -2.3, 0.1), slice_axes=("w1", "b"))
    explorer = explore(config)
    assert [c.description for c in explorer.init_controls] == ["init w1", "init b"]
    explorer.set_controls(w2=0.5)  # the second plotted axis: b
    assert explorer.result.config.init == (1.2, -2.3, 0.5)
    np.testing.assert_allclose(explorer.drawn_path[0], [1.2, 0.5])


@pytest.mark.parametrize("step", [0, 25, 99])
def test_the_minibatch_colour_range_follows_the_step(explorer: Explorer, step: int) -> None:
    explorer.step = step
    data = sgdscape.ground_truth(seed=0)
    surface = explorer.result.landscape
    x, y = data.x.reshape(-1)[step], data.y.reshape(-1)[step]  # batch 1, in order
    by_hand = seed_sample_loss(surface.w1, surface.w2, float(x), float(y))
    logs = np.log(np.maximum(by_hand, by_hand[by_hand > 0].min()))
    trace = explorer.figure.data[0]
    assert trace.zmin == pytest.approx(logs.min(), abs=1e-3 * np.ptp(logs))
    assert trace.zmax == pytest.approx(logs.max(), abs=1e-3 * np.ptp(logs))
