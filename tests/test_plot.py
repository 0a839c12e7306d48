import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.plot import plot_step, safe_log


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
    np.testing.assert_allclose(
        lean.batch_landscape(step), small_run.batch_landscape(step), rtol=1e-6
    )
