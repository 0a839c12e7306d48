"""The curvature views draw what the numbers say: values read back from the artists, checked
against formulas computed here (numpy), not against the code under test."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import sgdscape
from sgdscape.core.curvature import quadratic_model
from sgdscape.networks.curvature import TrainingCurvature
from sgdscape.views.curvature_figure import (
    RISK_LABEL,
    THRESHOLD_LABEL,
    curvature_map_panel,
    plot_curvature,
    plot_training_curvature,
    quadratic_axes,
    run_quadratic_model,
    sharpness_panel,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def _moment_lambda_max(data):
    """lambda_max of R(w, b) = mean (w x + b - y)^2: 2 x the top eigenvalue of E[(x, 1)(x, 1)^T]."""
    x = data.x.numpy().ravel().astype(np.float64)
    moment = np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    return 2 * np.linalg.eigvalsh(moment)[-1]


def test_the_sharpness_panel_draws_lambda_max_and_the_stability_line_at_two_over_lr():
    config = sgdscape.RunConfig(
        model="linear-regression", lr=0.07, batch_size=10, epochs=1, grid=8, samples=60
    )
    result = sgdscape.run(config)
    _fig, ax = plt.subplots()
    drawn = sharpness_panel(ax, sgdscape.curvature(result))
    threshold = _line(ax, THRESHOLD_LABEL)
    np.testing.assert_allclose(threshold.get_ydata(), 2 / 0.07)
    assert drawn["threshold"] is threshold
    # the risk's lambda_max is constant for linear regression: the second-moment formula
    np.testing.assert_allclose(_line(ax, RISK_LABEL).get_ydata(), _moment_lambda_max(result.data))
    # each minibatch's lambda_max from its own samples
    batch = drawn["batch"][0].get_ydata()
    x = result.data.x.numpy().ravel().astype(np.float64)
    for t in (0, 3):
        xs = x[result.trajectory.batch(t)]
        moment = np.array([[np.mean(xs * xs), np.mean(xs)], [np.mean(xs), 1.0]])
        assert batch[t] == pytest.approx(2 * np.linalg.eigvalsh(moment)[-1], rel=1e-6)
    assert ax.get_yscale() == "log"  # 2/lr is about 15x the sharpness


def test_a_varying_learning_rate_draws_a_varying_edge():
    config = sgdscape.RunConfig(
        model="linear-regression",
        lr=0.1,
        schedule="inverse-time",
        schedule_options={"decay": 0.5},
        batch_size=20,
        epochs=1,
        grid=8,
        samples=60,
    )
    result = sgdscape.run(config)
    _fig, ax = plt.subplots()
    sharpness_panel(ax, sgdscape.curvature(result))
    np.testing.assert_allclose(_line(ax, THRESHOLD_LABEL).get_ydata(), 2 / result.trajectory.lr)


def test_eigen_axes_lie_along_the_eigenvectors_with_lengths_one_over_sqrt_lambda():
    h = np.array([[3.0, 1.2], [1.2, 0.8]])
    centre = np.array([0.4, -0.7])
    quad = quadratic_model(h, np.array([0.1, 0.2]), 1.0, centre, radius=0.3)
    _fig, ax = plt.subplots()
    drawn = quadratic_axes(ax, quad)
    values, vectors = np.linalg.eigh(h)
    for k, line in enumerate(drawn["axes"]):
        assert line.get_gid() == f"eigen-axis-{k}"
        xy = np.column_stack([line.get_xdata(), line.get_ydata()])
        direction = xy[1] - xy[0]
        np.testing.assert_allclose(xy.mean(axis=0), centre, atol=1e-12)  # centred on the iterate
        cosine = direction @ vectors[:, k] / np.linalg.norm(direction)
        assert abs(cosine) == pytest.approx(1.0, abs=1e-12)
        assert np.linalg.norm(direction) / 2 == pytest.approx(0.3 / np.sqrt(values[k]))
    ellipse = np.column_stack([drawn["ellipse"].get_xdata(), drawn["ellipse"].get_ydata()])
    d = ellipse - centre
    np.testing.assert_allclose(np.einsum("ni,ij,nj->n", d, h, d), 0.3**2)


def test_the_run_quadratic_model_is_the_hessian_at_that_iterate():
    config = sgdscape.RunConfig(model="linear-regression", lr=0.1, batch_size=10, epochs=1, grid=8)
    result = sgdscape.run(config)
    record = sgdscape.curvature(result)
    quad = run_quadratic_model(result, record, 5)
    x = result.data.x.numpy().ravel().astype(np.float64)
    expected = 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    np.testing.assert_allclose(quad.hessian, expected, rtol=1e-6)
    np.testing.assert_allclose(quad.center, result.trajectory.iterates[5], rtol=1e-6)
    with pytest.raises(sgdscape.SgdscapeError, match="between 0 and"):
        run_quadratic_model(result, record, 10_000)


def _relu_unit_hessian(w1, w2, x, y):
    """Hand Hessian of mean (w1 relu(w2 x) - y)^2 (away from the kink w2 x = 0)."""
    on = (w2 * x > 0).astype(float)
    a = np.maximum(w2 * x, 0)
    r = w1 * a - y
    h11 = 2 * np.mean(a * a)
    h22 = 2 * np.mean((w1 * x * on) ** 2)
    h12 = 2 * np.mean(a * w1 * x * on + r * x * on)
    return np.array([[h11, h12], [h12, h22]])


def test_hatched_regions_match_the_signs_of_hand_derived_eigenvalues():
    data = sgdscape.make_problem("linear", 80, seed=2)
    grid = sgdscape.Grid((-2.9, 3.1, 21), (-3.05, 2.95, 21))  # no node on w2 = 0
    found = sgdscape.curvature_map("relu-unit", data, grid, "mse")
    _fig, ax = plt.subplots()
    drawn = curvature_map_panel(ax, found, path=np.array([[1.0, 1.0], [0.5, 0.2]]))
    x = data.x.numpy().ravel().astype(np.float64)
    y = data.y.numpy().ravel().astype(np.float64)
    saddle_paths = [path for path in drawn["regions"]["saddle"].get_paths()]
    assert drawn["regions"]["saddle"].get_gid() == "region:saddle"
    checked = 0
    for j in range(1, 20):
        for i in range(1, 20):
            low, high = np.linalg.eigvalsh(_relu_unit_hessian(found.w1[i], found.w2[j], x, y))
            if min(abs(low), abs(high)) < 1e-3:
                continue  # too close to a sign change to call
            point = (found.w1[i], found.w2[j])
            hatched = any(path.contains_point(point) for path in saddle_paths)
            assert hatched == (low < 0 < high), point
            checked += 1
    assert checked > 250
    # the relu-unit's origin is a saddle: its neighbour on the active side is hatched
    assert any(path.contains_point((found.w1[10], found.w2[10])) for path in saddle_paths)
    assert found.w1[10] == pytest.approx(0.1) and found.w2[10] == pytest.approx(-0.05)
    assert (found.lambda_max == drawn["mesh"].get_array().reshape(found.lambda_max.shape)).all()


def test_the_three_panel_figure_draws_every_panel():
    result = sgdscape.run(sgdscape.RunConfig(grid=12, epochs=1))
    record = sgdscape.curvature(result)
    found = sgdscape.curvature_map("relu-unit", result.data, result.config.grid_spec, "mse")
    fig = plot_curvature(result, record, found, step=4)
    left, middle, right = fig.axes[:3]
    assert "step 4" in left.get_title()
    assert {line.get_gid() for line in left.get_lines()} >= {"eigen-axis-0", "eigen-axis-1"}
    np.testing.assert_allclose(_line(right, THRESHOLD_LABEL).get_ydata(), 2 / result.config.lr)
    assert middle.get_title() == "curvature of the risk"


def test_the_training_curvature_figure_reads_back_its_numbers():
    record = TrainingCurvature(
        steps=np.array([0, 5, 10]),
        eigenvalues=np.array([[1.0, 0.5], [3.0, 1.0], [3.9, 2.0]]),
        batch_eigenvalues=np.array([[2.0, 1.0], [5.0, 1.0], [4.0, 2.0]]),
        lr=0.5,
        trace=np.array([10.0, 20.0, 25.0]),
        trace_error=np.array([1.0, 1.0, 2.0]),
        density_grid=np.tile(np.linspace(-1, 5, 50), (3, 1)),
        density=np.tile(np.exp(-(np.linspace(-1, 5, 50) ** 2)), (3, 1)),
    )
    fig = plot_training_curvature(record, loss=np.linspace(2, 0.1, 11))
    sharp = fig.axes[0]
    np.testing.assert_allclose(_line(sharp, THRESHOLD_LABEL).get_ydata(), 4.0)
    np.testing.assert_allclose(_line(sharp, RISK_LABEL).get_ydata(), [1.0, 3.0, 3.9])
    assert len([a for a in fig.axes if a.get_title()]) == 3
    back = TrainingCurvature.from_arrays(record.arrays())
    for name in ("steps", "eigenvalues", "trace", "density"):
        np.testing.assert_array_equal(getattr(back, name), getattr(record, name))
    assert back.lr == 0.5
    assert TrainingCurvature.from_arrays({}) is None


def test_curvature_is_saved_in_run_npz_with_its_coordinates_and_read_back(tmp_path):
    from sgdscape.records.run import with_curvature

    config = sgdscape.RunConfig(
        grid=9, epochs=1, batch_size=20, compare=({"lr": 0.05},), samples=60
    )
    result = with_curvature(sgdscape.run(config))
    assert len(result.curvatures) == 2
    sgdscape.save(result, tmp_path)
    with np.load(tmp_path / "run.npz", allow_pickle=False) as archive:
        names = set(archive.files)
        # the coordinates of the step axis are the trajectory's own rows
        assert archive["curvature_risk_hessian"].shape[:-2] == archive["iterates"].shape[:-1]
        assert archive["curvature_map_eigenvalues"].shape[:2] == archive["risk"].shape
    assert {"compare1_curvature_risk_eigenvalues", "curvature_map_kind"} <= names
    back = sgdscape.load(tmp_path)
    for before, after in zip(result.curvatures, back.curvatures, strict=True):
        np.testing.assert_array_equal(before.risk_hessian, after.risk_hessian)
        np.testing.assert_array_equal(before.batch_eigenvalues, after.batch_eigenvalues)
        np.testing.assert_array_equal(before.lr, after.lr)
    np.testing.assert_array_equal(back.curvature_map.kind, result.curvature_map.kind)
    # an independent check of one stored Hessian: the relu-unit's by hand at step 0
    x = result.data.x.numpy().ravel().astype(np.float64)
    y = result.data.y.numpy().ravel().astype(np.float64)
    w = result.trajectory.iterates[0].astype(np.float64)
    np.testing.assert_allclose(
        back.curvatures[0].risk_hessian[0], _relu_unit_hessian(*w, x, y), rtol=1e-6
    )
    fig = plot_curvature(back)
    right = fig.axes[2]
    edges = sorted(
        float(line.get_ydata()[0])
        for line in right.get_lines()
        if line.get_label().startswith(THRESHOLD_LABEL)
    )
    np.testing.assert_allclose(edges, sorted([2 / config.lr, 2 / 0.05]))


def test_a_run_without_curvature_says_how_to_get_it():
    result = sgdscape.run(sgdscape.RunConfig(grid=6, epochs=1, samples=20))
    with pytest.raises(sgdscape.SgdscapeError, match="--curvature"):
        plot_curvature(result)


def test_the_sharpness_panel_switches_on_beside_the_step_view():
    from sgdscape.records.run import with_curvature
    from sgdscape.views.curvature_figure import SharpnessPanel
    from sgdscape.views.step_figure import StepFigure

    config = sgdscape.RunConfig(model="linear-regression", lr=0.2, grid=8, epochs=1, samples=40)
    result = with_curvature(sgdscape.run(config))
    plain = StepFigure(result)
    assert len(plain.fig.axes) == 3  # two panels and a colour bar
    figure = StepFigure(result, panels=[SharpnessPanel.of(result)])
    figure.draw(7)
    panel = figure.panel_axes[0]
    marker = next(line for line in panel.get_lines() if line.get_gid() == "sharpness-step")
    assert marker.get_xdata()[0] == 7
    assert marker.get_ydata()[0] == pytest.approx(_moment_lambda_max(result.data), rel=1e-6)
    np.testing.assert_allclose(_line(panel, THRESHOLD_LABEL).get_ydata(), 2 / 0.2)
    with pytest.raises(sgdscape.SgdscapeError, match="--curvature"):
        SharpnessPanel.of(sgdscape.run(config))
