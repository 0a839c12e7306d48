"""The chains' animation and slider page: what is drawn, read back from the artists, the
figure JSON and the GIF, against moments the test computes itself from the recorded iterates
(numpy) and the exact recursion."""

import json
import re

import matplotlib
import numpy as np
import pytest
from matplotlib.patches import Ellipse

import sgdscape
from sgdscape.core.chain_theory import linear_regression_moments
from sgdscape.errors import SgdscapeError
from sgdscape.records.chain_presets import ChainsSetup, get_chain_preset, simulate_chains
from sgdscape.views.chains_animation import ChainsDrawing, animate_chains
from sgdscape.views.chains_figure import EMPIRICAL_LABEL, THEORY_LABEL, ellipse_parameters
from sgdscape.views.chains_plotly import DENSITY_NAME, ELLIPSE_POINTS, MEAN_NAME, chains_player

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def linear():
    """Linear regression (exact theory applies), 3000 chains, 6 records."""
    setup = get_chain_preset("noise-ball-theory").setup.replace(
        n_chains=3000, steps=60, record_steps=(0, 1, 3, 10, 30, 60), grid=30
    )
    return simulate_chains(setup)


@pytest.fixture(scope="module")
def relu():
    """relu-unit from the hopping init: basins on the right panel."""
    setup = ChainsSetup(
        sgdscape.RunConfig(init=(-1.4, -1.4), lr=0.5, grid=20),
        n_chains=300,
        steps=200,
        record_steps=tuple(range(0, 201, 50)),
    )
    return simulate_chains(setup)


def covariance_of_ellipse(x, y):
    """Mean and covariance behind 2-sigma ellipse points ``m + 2 L u(theta_k)`` at evenly
    spaced angles: the points' mean is m and their scatter is 2 * covariance."""
    points = np.column_stack([x, y]).astype(np.float64)[:ELLIPSE_POINTS]
    centre = points.mean(axis=0)
    scatter = (points - centre).T @ (points - centre) / len(points)
    return centre, scatter / 2.0


def finite_points(run, step):
    w = run.chains.at(step).astype(np.float64)
    return w[np.isfinite(w).all(axis=1)]


def slider_traces(figure):
    """Per slider step: {trace name: (x, y, z)} after applying the step's update."""
    data = figure["data"]
    names = [trace.get("name") for trace in data]
    out = []
    for step in figure["layout"]["sliders"][0]["steps"]:
        update, layout, indices = step["args"]
        drawn = {}
        for position, index in enumerate(indices):
            drawn[names[index]] = tuple(update[key][position] for key in ("x", "y", "z"))
        out.append((int(step["label"]), drawn, layout))
    return out


def test_the_slider_pages_ellipses_are_the_chains_and_the_theorys_moments(linear):
    figure = chains_player(linear.chains, linear.landscape, linear.data).to_plotly_json()
    figure = json.loads(json.dumps(figure, default=lambda v: np.asarray(v).tolist()))
    config = linear.chains.config
    theory = linear_regression_moments(
        linear.data, (-2.0, 2.0), config.lr, config.batch_size, linear.chains.record_steps
    )
    steps = slider_traces(figure)
    assert [s for s, _, _ in steps] == [0, 1, 3, 10, 30, 60]
    for j, (step, drawn, layout) in enumerate(steps):
        assert layout["annotations[0].text"] == f"step {step}"
        if step == 0:
            continue
        points = finite_points(linear, step)
        centre, covariance = covariance_of_ellipse(*drawn[EMPIRICAL_LABEL][:2])
        np.testing.assert_allclose(centre, points.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(covariance, np.cov(points.T), rtol=1e-3, atol=1e-6)
        mean_x, mean_y, _ = drawn[MEAN_NAME]
        np.testing.assert_allclose([mean_x[0], mean_y[0]], points.mean(axis=0), atol=1e-5)
        centre, covariance = covariance_of_ellipse(*drawn[THEORY_LABEL][:2])
        np.testing.assert_allclose(centre, theory.mean[j], atol=1e-5)
        np.testing.assert_allclose(covariance, theory.covariance[j], rtol=1e-3, atol=1e-6)
        # the heatmap: log10 of chains per unit area, recounted here on the drawn bins
        x, y, z = drawn[DENSITY_NAME]
        x, y = np.asarray(x), np.asarray(y)
        dx, dy = x[1] - x[0], y[1] - y[0]
        edges = (np.append(x - dx / 2, x[-1] + dx / 2), np.append(y - dy / 2, y[-1] + dy / 2))
        counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=edges)
        z = np.array([[np.nan if v is None else v for v in row] for row in z], dtype=float)
        drawn_counts = np.where(np.isnan(z), 0.0, 10.0**z) * dx * dy * len(points)
        np.testing.assert_allclose(drawn_counts, counts.T, atol=0.05 * counts.max() + 0.5)
        lo, hi = layout["xaxis.range"]
        assert lo <= np.percentile(points[:, 0], 1) and hi >= np.percentile(points[:, 0], 99)


def test_the_slider_pages_right_panel_shows_basin_fractions(relu):
    figure = chains_player(relu.chains, relu.landscape, relu.data).to_plotly_json()
    traces = {trace.get("name"): trace for trace in figure["data"]}
    labels = sgdscape.core.chain_stats.classify(relu.chains.iterates, relu.data)
    for basin, name in enumerate(sgdscape.core.chain_stats.BASINS["relu-unit"].names):
        if name in traces:
            np.testing.assert_allclose(traces[name]["y"], (labels == basin).mean(axis=1), atol=1e-6)
    steps = slider_traces(json.loads(json.dumps(figure, default=lambda v: np.asarray(v).tolist())))
    for step, drawn, _ in steps:
        assert drawn["current step"][0] == [step, step]


def test_the_drawing_redraws_the_chains_moments_at_each_step(linear):
    drawing = ChainsDrawing(linear.chains, linear.landscape, linear.data)
    config = linear.chains.config
    theory = linear_regression_moments(linear.data, (-2.0, 2.0), config.lr, 1, [3, 30])
    for j, step in enumerate((3, 30)):
        drawing.draw(step)
        patches = {p.get_label(): p for p in drawing.left.patches if isinstance(p, Ellipse)}
        points = finite_points(linear, step)
        expected = ellipse_parameters(np.cov(points.T))
        ellipse = patches[EMPIRICAL_LABEL]
        np.testing.assert_allclose(ellipse.center, points.mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(
            [ellipse.width, ellipse.height, ellipse.angle], expected, rtol=1e-5
        )
        exact = ellipse_parameters(theory.covariance[j])
        theory_patch = patches[THEORY_LABEL]
        np.testing.assert_allclose([theory_patch.width, theory_patch.height], exact[:2], rtol=1e-6)
        assert drawing.left.get_title().startswith(f"step {step}")
        marker = [line for line in drawing.right.lines if line.get_color() == "crimson"][-1]
        assert list(marker.get_xdata()) == [step, step]
    matplotlib.pyplot.close(drawing.fig)


def test_the_gif_has_one_frame_per_recorded_step(relu, tmp_path):
    from PIL import Image

    seen = []
    path = animate_chains(
        relu.chains, relu.landscape, relu.data, tmp_path / "chains.gif",
        size=(480, 240), progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    with Image.open(path) as gif:
        assert gif.n_frames == relu.chains.record_steps.size
    assert seen[-1] == (5, 5)


def test_bad_animation_inputs_are_named(relu, tmp_path):
    with pytest.raises(SgdscapeError, match="not recorded"):
        animate_chains(relu.chains, relu.landscape, relu.data, tmp_path / "a.gif", steps=[7])
    with pytest.raises(SgdscapeError, match=r"\.gif or \.mp4"):
        animate_chains(relu.chains, relu.landscape, relu.data, tmp_path / "a.avi")
    assert list(tmp_path.iterdir()) == []


def test_the_html_page_holds_the_figure_and_refuses_a_bad_suffix(relu, tmp_path):
    from sgdscape.surfaces.chains_export import export_chains_html

    path = export_chains_html(relu.chains, relu.landscape, relu.data, tmp_path / "c.html")
    text = path.read_text()
    figure = json.loads(
        re.search(r'id="sgdscape-figure" type="application/json">(.*?)</script>', text, re.S).group(
            1
        )
    )
    assert len(figure["layout"]["sliders"][0]["steps"]) == relu.chains.record_steps.size
    with pytest.raises(SgdscapeError, match=r"\.html"):
        export_chains_html(relu.chains, relu.landscape, relu.data, tmp_path / "c.txt")


def test_the_jupyter_explorer_draws_the_chains_moments_of_the_chosen_step(linear):
    from sgdscape.surfaces.widget.chains import explore_chains

    explorer = explore_chains(linear)
    assert explorer.steps == [0, 1, 3, 10, 30, 60]
    for step in (10, 60, 3):
        explorer.step = step
        traces = {trace.name: trace for trace in explorer.figure.data}
        centre, covariance = covariance_of_ellipse(
            traces[EMPIRICAL_LABEL].x, traces[EMPIRICAL_LABEL].y
        )
        points = finite_points(linear, step)
        np.testing.assert_allclose(centre, points.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(covariance, np.cov(points.T), rtol=1e-3, atol=1e-6)
        assert explorer.figure.layout.annotations[0].text == f"step {step}"
        assert list(traces["current step"].x) == [step, step]
    with pytest.raises(SgdscapeError, match="recorded steps"):
        explorer.step = 7
