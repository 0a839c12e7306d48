import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

import sgdscape
from figure_text import layout_problems
from sgdscape.views.step_figure import StepFigure, plot_step, safe_log, slice_text, step_titles


@pytest.fixture(scope="module")
def small_run():
    return sgdscape.run(sgdscape.RunConfig(samples=20, grid=25))


def test_safe_log_has_no_holes_where_the_loss_is_zero():
    values = np.array([[0.0, 1e-3], [1.0, np.e]])
    logged = safe_log(values)
    assert np.isfinite(logged).all()
    assert logged[0, 0] == pytest.approx(np.log(1e-3))
    assert logged[1, 1] == pytest.approx(1.0)


def test_a_perfect_fit_landscape_draws_without_blank_regions():
    x = torch.linspace(-1, 1, 10)
    data = sgdscape.Dataset.from_arrays(x, torch.zeros(10))  # loss is exactly 0 on w1=0 or w2=0
    surface = sgdscape.landscape("relu-unit", data, sgdscape.Grid.square(11))
    assert (surface.risk == 0).any()
    assert np.isfinite(safe_log(surface.risk)).all()


def test_the_figure_shows_the_step_the_minibatch_and_the_path(small_run):
    step = 7
    figure = plot_step(small_run, step)
    left, right = figure.axes[0], figure.axes[1]  # the colour bars come after the panels
    assert "step 7" in left.get_title() and "[7]" in left.get_title()
    assert left.get_xlabel() == "w1" and left.get_ylabel() == "w2"
    assert right.get_xlabel() == "w1" and "empirical risk" in right.get_title()
    assert len(figure.axes) == 4  # two panels, two colour bars
    iterate = small_run.trajectory.iterates[step]
    markers = [c.get_offsets()[0] for c in left.collections if len(c.get_offsets()) == 1]
    assert any(np.allclose(m, iterate, rtol=1e-6) for m in markers)
    path_line = right.get_lines()[0]
    np.testing.assert_allclose(path_line.get_xdata(), small_run.trajectory.iterates[: step + 1, 0])
    np.testing.assert_allclose(path_line.get_ydata(), small_run.trajectory.iterates[: step + 1, 1])
    matplotlib.pyplot.close(figure)


def test_the_left_panel_is_the_minibatch_landscape_of_that_step(small_run):
    step = 4
    index = small_run.trajectory.batch(step)
    np.testing.assert_allclose(
        small_run.batch_landscape(step), small_run.landscape.sample_loss[index].mean(0)
    )
    # without stored per-sample grids, the same landscape is computed for those samples
    lean = sgdscape.RunResult(
        small_run.config,
        small_run.data,
        sgdscape.Landscape(
            small_run.landscape.w1, small_run.landscape.w2, small_run.landscape.risk
        ),
        small_run.trajectory,
    )
    # float32 sums in another order (the native risk kernel blocks its sums): rounding only
    np.testing.assert_allclose(
        lean.batch_landscape(step), small_run.batch_landscape(step), rtol=1e-5, atol=1e-7
    )


# --------------------------------------------------------------------------- arrows
# Every drawn arrow is read back from the figure's artists and checked against the
# recorded gradient (tests/arrow_oracle.py), never against the drawing code's numbers.

WINDOW = (-3.0, 3.0, -3.0, 3.0)


def drawn_arrows(axes) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
    """``{"orange": (tail, tip), "white": ...}`` read from the FancyArrow patches of
    ``axes``: the tail is the iterate marker's centre, the tip the arrow vertex farthest
    from it; ``None`` when no patch of that colour is drawn."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyArrow

    tail = next(c.get_offsets()[0] for c in axes.collections if len(c.get_offsets()) == 1)
    tail = np.asarray(tail, dtype=float)
    out: dict[str, tuple[np.ndarray, np.ndarray] | None] = {"orange": None, "white": None}
    for patch in axes.patches:
        if not isinstance(patch, FancyArrow):
            continue
        colour = "white" if patch.get_facecolor() == to_rgba("white") else "orange"
        vertices = np.asarray(patch.get_xy(), dtype=float)
        tip = vertices[np.argmax(np.linalg.norm(vertices - tail, axis=1))]
        assert out[colour] is None, "two arrows of one colour"
        out[colour] = (tail, tip)
    return out


def legend_texts(axes) -> list[str]:
    return [t.get_text() for t in axes.get_legend().get_texts()]


@pytest.fixture(scope="module")
def seed_run():
    """The default `sgdscape run` (the seed's experiment) on a coarser grid."""
    return sgdscape.run(sgdscape.RunConfig(grid=30))


def test_every_arrow_of_the_seed_run_points_along_minus_its_gradient(seed_run):
    from arrow_oracle import check_arrow
    from sgdscape.views.step_figure import StepFigure

    grads, full = seed_run.trajectory.grads, seed_run.trajectory.full_grads
    zero = [t for t in range(seed_run.n_steps) if not np.any(grads[t] != 0)]
    assert {25, 50, 74} <= set(zero)  # the samples that sit in the ReLU's flat half
    figure = StepFigure(seed_run)
    for step in range(seed_run.n_steps):
        figure.draw(step)
        arrows, texts = drawn_arrows(figure.left), legend_texts(figure.left)
        check_arrow(arrows["orange"], grads[step], WINDOW, texts[0])
        check_arrow(arrows["white"], full[step], WINDOW, texts[1])
    matplotlib.pyplot.close(figure.fig)


def test_step_zero_tiny_minibatch_arrow_points_up_left_at_the_stated_minimum(seed_run):
    from sgdscape.views.step_figure import MIN_VISIBLE_FRACTION

    figure = plot_step(seed_run, 0)
    tail, tip = drawn_arrows(figure.axes[0])["orange"]
    gradient = seed_run.trajectory.grads[0]
    assert gradient[0] > 0 and gradient[1] < 0  # so -gradient points up and to the left
    assert tip[0] < tail[0] and tip[1] > tail[1]
    assert np.linalg.norm(tip - tail) == pytest.approx(MIN_VISIBLE_FRACTION * 6.0, rel=1e-6)
    assert "minimum length" in legend_texts(figure.axes[0])[0]
    matplotlib.pyplot.close(figure)


def test_dead_relu_draws_no_arrow_and_says_gradient_zero():
    from sgdscape.records.presets import get_preset

    result = sgdscape.run(get_preset("dead-relu").config.replace(grid=20))
    assert not np.any(result.trajectory.grads != 0)
    figure = plot_step(result, 3)
    assert drawn_arrows(figure.axes[0]) == {"orange": None, "white": None}
    texts = legend_texts(figure.axes[0])
    assert texts == ["-minibatch gradient = 0 (no arrow)", "-full gradient = 0 (no arrow)"]
    matplotlib.pyplot.close(figure)


def test_the_full_gradient_legend_key_has_a_dark_edge(seed_run):
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    figure = plot_step(seed_run, 5)
    handles = figure.axes[0].get_legend().legend_handles
    patches = [h for h in handles if isinstance(h, Patch)]
    white = [h for h in patches if h.get_facecolor() == to_rgba("white")]
    assert white and all(h.get_edgecolor()[:3] == (0.0, 0.0, 0.0) for h in white)
    assert all(h.get_linewidth() > 0 for h in white)
    matplotlib.pyplot.close(figure)


def test_arrow_rule_zero_tiny_non_finite_and_cut_vectors():
    from arrow_oracle import check_arrow
    from sgdscape.views.step_figure import MIN_VISIBLE_FRACTION, arrow_rule

    points = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [2.9, 0.0], [0.0, 0.0], [9.0, 0.0]])
    vectors = np.array([[0.0, 0.0], [-1e-30, 2e-30], [3.0, -4.0], [1.0, 1.0], [np.nan, 1], [1, 0]])
    arrows = arrow_rule(points, vectors, 0.5, WINDOW, "-g")
    labels = arrows.labels
    assert labels[0] == "-g = 0 (no arrow)" and not arrows.drawn[0]
    check_arrow((arrows.tail[1], arrows.tip[1]), -vectors[1], WINDOW, labels[1])
    assert np.linalg.norm(arrows.tip[1]) == pytest.approx(MIN_VISIBLE_FRACTION * 6.0)
    assert "minimum length" in labels[1]
    np.testing.assert_allclose(arrows.tip[2], [2.5, -1.0])  # 1 + 0.5 * (3, -4)
    assert labels[2] == "-g × 0.5"
    np.testing.assert_allclose(arrows.tip[3], [3.0, 0.1])  # cut where it leaves the panel
    check_arrow((arrows.tail[3], arrows.tip[3]), -vectors[3], WINDOW, labels[3])
    assert "cut at the panel edge" in labels[3]
    assert labels[4] == "-g not finite (no arrow)" and not arrows.drawn[4]
    assert "outside the panel" in labels[5] and not arrows.drawn[5]


def test_the_minibatch_colour_bar_follows_the_step(seed_run):
    from sgdscape.views.step_figure import StepFigure

    data = sgdscape.ground_truth(seed=0)
    x, y = data.x.reshape(-1).double().numpy(), data.y.reshape(-1).double().numpy()
    w1, w2 = np.meshgrid(seed_run.landscape.w1, seed_run.landscape.w2)
    figure = StepFigure(seed_run)
    for step in (0, 25, 99, 3):
        figure.draw(step)
        loss = (w1 * np.maximum(w2 * x[step], 0.0) - y[step]) ** 2  # batch 1, in order
        logs = np.log(np.maximum(loss, loss[loss > 0].min()))
        low, high = figure._left_colorbar.ax.get_ylim()
        span = logs.max() - logs.min()
        # the bar spans this step's values, padded by at most one level at each end
        assert logs.min() - span / 10 <= low <= logs.min() + 1e-6 * span
        assert logs.max() - 1e-6 * span <= high <= logs.max() + span / 10
    matplotlib.pyplot.close(figure.fig)


# ---------------------------------------------------------------- titles and layout


def _steps_and_batches(result, steps):
    return [(step, result.trajectory.batch(step)) for step in steps]


@pytest.mark.parametrize("figsize", [(13, 5.6), (12, 5.25)])  # the PNG, the GIF frame
def test_a_batch_10_figure_names_its_batch_in_a_title_that_fits(figsize):
    result = sgdscape.run(sgdscape.RunConfig(batch_size=10, grid=20))
    for step, batch in _steps_and_batches(result, [0, 4, 9]):
        figure = StepFigure(result, figsize=figsize, dpi=80).draw(step)
        assert list(batch) == list(range(batch[0], batch[0] + 10))  # in order: a range
        assert figure.axes[0].get_title() == (
            f"step {step}: loss of minibatch [{batch[0]}–{batch[-1]}] (10 samples)"
        )
        assert layout_problems(figure) == []
        matplotlib.pyplot.close(figure)


def test_a_shuffled_batch_shows_its_first_indices():
    result = sgdscape.run(sgdscape.RunConfig(batch_size=10, grid=20, sampling="shuffle"))
    batch = result.trajectory.batch(3)
    assert sorted(batch) != list(batch)
    title = step_titles(result, 3)[0]
    assert f"[{batch[0]}, {batch[1]}, {batch[2]}, …] (10 samples)" in title


def test_the_default_figure_is_laid_out_cleanly(small_run):
    figure = plot_step(small_run, 5)
    assert layout_problems(figure) == []
    assert "empirical risk (mse, 20 samples)" in figure.axes[1].get_title()
    matplotlib.pyplot.close(figure)


@pytest.mark.parametrize(
    ("changes", "held"),
    [
        ({"model": "relu-unit-bias"}, {"b": 0.5}),
        ({"model": "relu-unit-bias", "slice_axes": ("w1", "b")}, {"w2": -2.3}),
        ({"model": "two-relu-units"}, {"a2": 0.5, "w2": 0.5}),
    ],
)
def test_a_slice_says_where_the_other_parameters_are_held(changes, held):
    result = sgdscape.run(sgdscape.RunConfig(grid=20, **changes))
    names = result.config.model_spec.param_names
    step = 40
    iterate = result.trajectory.iterates[step]
    expected = "slice at " + ", ".join(f"{k} = {v:.3g}" for k, v in held.items())
    expected += (
        " (iterate: " + ", ".join(f"{k} = {iterate[names.index(k)]:.3g}" for k in held) + ")"
    )
    # the landscape really is the risk with those parameters held (an independent loop)
    a_name, b_name = result.landscape.labels
    i, j = 7, 12
    w = torch.zeros(len(names))
    for name, value in held.items():
        w[names.index(name)] = value
    w[names.index(a_name)] = float(result.landscape.w1[i])
    w[names.index(b_name)] = float(result.landscape.w2[j])
    prediction = result.config.model_spec(w, result.data.x)
    risk = float(((prediction - result.data.y.reshape(-1)) ** 2).mean())
    assert result.landscape.risk[j, i] == pytest.approx(risk, rel=1e-5)

    figure = plot_step(result, step)
    assert expected in figure.get_suptitle().replace("\n", " · ")
    assert layout_problems(figure) == []
    matplotlib.pyplot.close(figure)
    # the Plotly views take the same titles
    from sgdscape.views.plotly_figures import step_figure

    assert expected in step_figure(result, step).layout.title.text


def test_a_two_parameter_model_has_no_slice_text(small_run):
    assert slice_text(small_run, 3) == ""
    assert "slice" not in step_titles(small_run, 3)[2]


def test_a_slice_along_directions_gives_its_origin_and_the_iterates_distance():
    config = sgdscape.RunConfig(
        model="relu-unit-bias", grid=20, slice_directions=((1, 0, 0.3), (0, 1, -0.2))
    )
    result = sgdscape.run(config)
    step = 30
    d = np.array(config.slice_directions).T  # (3, 2)
    offset = result.trajectory.iterates[step] - np.array(config.init)
    coefficients = np.linalg.lstsq(d, offset, rcond=None)[0]
    distance = np.linalg.norm(offset - d @ coefficients)
    assert distance > 0.01  # training left the plane
    assert slice_text(result, step) == (
        f"plane through (1.2, -2.3, 0.5) along two directions (iterate {distance:.3g} off it)"
    )


def test_the_step_figures_of_a_compare_run_draw_every_run():
    config = sgdscape.RunConfig(grid=20, compare=({"lr": 0.1}, {"lr": 0.02}))
    result = sgdscape.run(config)
    step = 30
    figure = plot_step(result, step)
    right = figure.axes[1]
    legend = [text.get_text() for text in right.get_legend().get_texts()]
    assert legend == ["lr=0.05 (left panel)", "lr=0.1", "lr=0.02"]
    lines = {line.get_label(): line for line in right.get_lines()}
    for label, trajectory in zip(legend, (result.trajectory, *result.others), strict=True):
        line = lines[label]
        np.testing.assert_allclose(line.get_xdata(), trajectory.iterates[: step + 1, 0])
        np.testing.assert_allclose(line.get_ydata(), trajectory.iterates[: step + 1, 1])
    assert len({line.get_color() for line in lines.values()}) == 3
    assert "minibatch and arrows of run 1 of 3 (lr=0.05)" in figure.get_suptitle()
    assert layout_problems(figure) == []
    matplotlib.pyplot.close(figure)


def test_runs_of_different_lengths_each_draw_their_path_up_to_the_step():
    config = sgdscape.RunConfig(grid=20, samples=20, compare=({"batch_size": 10},))
    result = sgdscape.run(config)
    assert result.others[0].n_steps == 2
    figure = plot_step(result, 10)
    short = [line for line in figure.axes[1].get_lines() if line.get_label() == "batch_size=10"]
    np.testing.assert_allclose(short[0].get_xdata(), result.others[0].iterates[:, 0])
    matplotlib.pyplot.close(figure)


def test_compare_png_keeps_its_colour_bar_label_clear_of_the_right_panel():
    from sgdscape.views.overlays import plot_compare

    result = sgdscape.run(sgdscape.RunConfig(grid=20, compare=({"lr": 0.1},)))
    figure = plot_compare(result)
    assert layout_problems(figure, gap=4) == []
    _, right, bar = figure.axes
    renderer = figure.canvas.get_renderer()
    label = bar.yaxis.label.get_window_extent(renderer)
    texts = [right.yaxis.label.get_window_extent(renderer)]
    texts += [t.get_window_extent(renderer) for t in right.get_yticklabels() if t.get_text()]
    # the right panel's frame 10 px away, its texts (y-label, tick labels) at least 30 px
    assert right.get_window_extent(renderer).x0 - label.x1 >= 10
    assert all(box.x0 - label.x1 >= 30 for box in texts)
    assert right.get_ylabel() == "empirical risk (mse) at the iterate"
    matplotlib.pyplot.close(figure)


def test_compare_png_of_two_losses_labels_each_risk_with_its_loss():
    from sgdscape.records.presets import PRESETS
    from sgdscape.views.overlays import plot_compare

    result = sgdscape.run(PRESETS["outliers-huber"].config.replace(grid=20, epochs=1))
    figure = plot_compare(result)
    left, right, bar = figure.axes
    assert "mse" in left.get_title() and bar.get_ylabel() == "log empirical risk (mse)"
    assert right.get_ylabel() == "empirical risk at the iterate, each run in its own loss"
    labels = [line.get_label() for line in right.get_lines()]
    assert labels == ["loss=mse", "loss=huber"]
    # each line is that run's risk in its own loss: huber is below mse for every residual
    mse, huber = (line.get_ydata() for line in right.get_lines())
    np.testing.assert_allclose(huber, result.others[0].risk)
    assert np.median(mse) > 2 and np.median(huber) < 1
    assert layout_problems(figure, gap=4) == []
    matplotlib.pyplot.close(figure)


def test_basins_png_title_stays_clear_of_its_colour_bar():
    from sgdscape.records.basins import basins
    from sgdscape.records.run import risk_landscape
    from sgdscape.views.overlays import plot_basins

    config = sgdscape.RunConfig(grid=20, epochs=1)
    figure = plot_basins(basins(config, points=8), risk_landscape(config))
    assert layout_problems(figure) == []
    matplotlib.pyplot.close(figure)


@pytest.mark.parametrize("chars", [20, 40, 67, 120])
def test_wrapped_titles_keep_every_word_in_order_and_fit_their_width(chars):
    from sgdscape.views.step_figure import wrap_title_text

    title = (
        "linear-regression · sgd lr=0.2 · batch 1 · step 0/999\n"
        "minibatch and arrows of run 1 of 2 (schedule=constant, schedule_options=default)"
    )
    wrapped = wrap_title_text(title, chars)
    assert (
        wrapped.replace("\n", " ").replace(" · ", " ").split()
        == title.replace("\n", " ").replace(" · ", " ").split()
    )
    for line in wrapped.split("\n"):
        assert len(line) <= chars or " " not in line.replace(" · ", "")
    assert title.split("\n")[0] in wrapped.split("\n") or chars < len(title.split("\n")[0])


def test_a_run_without_its_risk_says_so_in_the_titles(small_run):
    # risk_along_path is optional in run.npz: a run loaded without it used to hit None[step]
    import dataclasses

    from sgdscape.views.step_source import run_point_text

    bare = dataclasses.replace(
        small_run, trajectory=dataclasses.replace(small_run.trajectory, risk=None)
    )
    _, right, _ = step_titles(bare, 2)
    assert right.endswith("samples): not recorded")
    assert step_titles(small_run, 2)[1].endswith(f"{small_run.trajectory.risk[2]:.3g}")
    assert run_point_text(bare, 2).endswith("risk not recorded")
    assert run_point_text(small_run, 2).endswith(f"risk = {small_run.trajectory.risk[2]:.4g}")
