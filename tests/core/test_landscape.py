import numpy as np
import pytest
import torch

import sgdscape
from seed_reference import make_grids
from sgdscape import Grid, Plane, SgdscapeError


def test_landscape_equals_the_seeds_loop_over_grid_points(seed_data):
    w1_mesh, w2_mesh, grids = make_grids(seed_data.x, seed_data.y, grid_size=40)
    result = sgdscape.landscape("relu-unit", seed_data, Grid.square(40))
    np.testing.assert_array_equal(result.w1, w1_mesh[0])
    np.testing.assert_array_equal(result.w2, w2_mesh[:, 0])
    assert result.sample_loss.shape == (100, 40, 40)
    np.testing.assert_allclose(result.sample_loss, grids.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.risk, grids.mean(0).numpy(), rtol=1e-5, atol=1e-7)


def test_rows_are_w2_and_columns_w1(seed_data):
    grid = Grid((-3.0, 3.0, 7), (-1.0, 2.0, 5))  # different sizes catch a transposition
    result = sgdscape.landscape("relu-unit", seed_data, grid)
    assert result.risk.shape == (5, 7)
    i, j = 3, 6
    w = torch.tensor([float(result.w1[j]), float(result.w2[i])])
    x, y = seed_data.x[:, 0], seed_data.y[:, 0]
    expected = ((w[0] * torch.relu(w[1] * x) - y) ** 2).mean()
    assert result.risk[i, j] == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("budget", [2**16, 2**19, 2**30])
def test_chunking_under_any_budget_gives_the_same_landscape(seed_data, budget):
    reference = sgdscape.landscape("relu-unit", seed_data, Grid.square(20), per_sample=False)
    small = sgdscape.landscape(
        "relu-unit", seed_data, Grid.square(20), per_sample=False, memory_budget=budget
    )
    np.testing.assert_allclose(small.risk, reference.risk, rtol=1e-5)


def test_risk_only_path_chunks_samples_and_never_holds_per_sample_grids(generator):
    x = torch.empty(5000).uniform_(-1, 1, generator=generator)
    data = sgdscape.Dataset.from_arrays(x, 2 * x)
    grid = Grid.square(30)
    # 5000 samples x 900 points x 4 bytes = 18 MB of per-sample grids; the budget is 1 MiB
    result = sgdscape.landscape("relu-unit", data, grid, per_sample=False, memory_budget=2**20)
    assert result.sample_loss is None
    w1, w2 = np.meshgrid(result.w1.astype(np.float64), result.w2.astype(np.float64))
    xs, ys = x.double().numpy(), 2 * x.double().numpy()
    plain = ((w1[..., None] * np.maximum(w2[..., None] * xs, 0) - ys) ** 2).mean(-1)
    np.testing.assert_allclose(result.risk, plain, rtol=1e-4, atol=1e-6)


def test_per_sample_grids_too_large_for_the_budget_is_a_clear_error(seed_data):
    with pytest.raises(SgdscapeError, match="memory budget"):
        sgdscape.landscape("relu-unit", seed_data, Grid.square(200), memory_budget=2**20)


def test_batch_loss_is_the_mean_of_the_chosen_samples(seed_data):
    result = sgdscape.landscape("relu-unit", seed_data, Grid.square(10))
    np.testing.assert_allclose(
        result.batch_loss([3, 7, -1]), (result.sample_loss[3] + result.sample_loss[7]) / 2
    )


def test_a_slice_of_a_three_parameter_model_equals_direct_evaluation(seed_data):
    model = sgdscape.get_model("relu-unit-bias")
    plane = Plane.through(model.param_names, ("w1", "b"), {"w2": 1.5})
    result = sgdscape.landscape(model, seed_data, Grid.square(9), plane=plane)
    assert result.labels == ("w1", "b")
    i, j = 2, 7
    w1, b = float(result.w1[j]), float(result.w2[i])
    x, y = seed_data.x[:, 0].double(), seed_data.y[:, 0].double()
    expected = ((w1 * torch.relu(1.5 * x + b) - y) ** 2).mean()
    assert result.risk[i, j] == pytest.approx(float(expected), rel=1e-5)


def test_a_general_plane_maps_coordinates_to_parameters():
    plane = Plane(
        torch.tensor([1.0, 0.0, 2.0]), torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, -1.0])
    )
    points = plane.points(torch.tensor([0.5, 2.0]), torch.tensor([-1.0, 3.0, 4.0]))
    assert points.shape == (3, 2, 3)
    torch.testing.assert_close(points[2, 1], torch.tensor([1.0 + 2.0, 2.0 + 4.0, 2.0 - 4.0]))
    torch.testing.assert_close(
        plane.project(points),
        torch.stack(
            torch.meshgrid(torch.tensor([0.5, 2.0]), torch.tensor([-1.0, 3.0, 4.0]), indexing="xy"),
            -1,
        ),
        atol=1e-5,
        rtol=0,
    )


def test_bad_grids_and_slices_are_clear_errors():
    with pytest.raises(SgdscapeError, match="LOW < HIGH"):
        Grid((3.0, -3.0, 10))
    with pytest.raises(SgdscapeError, match="between 2"):
        Grid((-3.0, 3.0, 1))
    with pytest.raises(SgdscapeError, match="not a parameter"):
        Plane.through(("w1", "w2", "b"), ("w1", "c"))
    with pytest.raises(SgdscapeError, match="must differ"):
        Plane.through(("w1", "w2"), ("w1", "w1"))
