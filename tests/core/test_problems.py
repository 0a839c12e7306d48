import numpy as np
import pytest
import torch

import sgdscape
from seed_reference import sample_from_ground_truth
from sgdscape import Dataset, SgdscapeError


@pytest.mark.parametrize("seed", [0, 1, 2024])
def test_ground_truth_draws_what_the_seed_draws_after_manual_seed(seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        x, y = sample_from_ground_truth()
    data = sgdscape.ground_truth(seed=seed)
    assert data.x.shape == (100, 1) and data.y.shape == (100, 1)
    torch.testing.assert_close(data.x, x, rtol=0, atol=0)
    torch.testing.assert_close(data.y, y, rtol=0, atol=0)


def test_ground_truth_leaves_the_global_generator_alone():
    with torch.random.fork_rng():
        torch.manual_seed(7)
        expected = torch.rand(3)
        torch.manual_seed(7)
        sgdscape.ground_truth(seed=3)
        torch.testing.assert_close(torch.rand(3), expected)


def test_ground_truth_options_follow_their_definition():
    data = sgdscape.ground_truth(500, slope=-1.5, noise_std=0.0, x_range=(2.0, 3.0), seed=5)
    x, y = data.x.numpy(), data.y.numpy()
    assert x.min() >= 2.0 and x.max() <= 3.0
    np.testing.assert_allclose(y, -1.5 * x, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(sgdscape.PROBLEMS))
def test_every_problem_draws_finite_reproducible_data(name):
    first = sgdscape.make_problem(name, 64, seed=11)
    second = sgdscape.make_problem(name, 64, seed=11)
    assert first.x.shape == (64, 1)
    torch.testing.assert_close(first.x, second.x)
    torch.testing.assert_close(first.y, second.y)


def test_positive_x_problem_draws_x_in_unit_interval():
    data = sgdscape.make_problem("positive-x", 300, seed=1)
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0


def test_blobs_labels_are_binary_and_separated_by_sign():
    data = sgdscape.make_problem(
        "blobs", 400, seed=1, options=sgdscape.ProblemOptions(noise_std=0.3)
    )
    labels = data.y.numpy().ravel()
    assert set(np.unique(labels)) == {0.0, 1.0}
    x = data.x.numpy().ravel()
    assert x[labels == 1].mean() > 0.5 and x[labels == 0].mean() < -0.5


def test_csv_with_and_without_header(tmp_path):
    with_header = tmp_path / "a.csv"
    with_header.write_text("x,y\n0.5,1.0\n-0.25,-0.5\n")
    without = tmp_path / "b.csv"
    without.write_text("0.5,1.0\n-0.25,-0.5\n")
    for path in (with_header, without):
        data = Dataset.from_csv(path)
        np.testing.assert_array_equal(data.x.numpy().ravel(), [0.5, -0.25])
        np.testing.assert_array_equal(data.y.numpy().ravel(), [1.0, -0.5])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("x,y\n", "no data rows"),
        ("x,y\n1,2\nfoo,3\n", "not numeric"),
        ("x,y\n1,nan\n", "NaN"),
        ("1\n2\n3\n", "exactly two columns"),
        ("1,2,3\n", "exactly two columns"),
    ],
)
def test_malformed_csv_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(SgdscapeError, match=message):
        Dataset.from_csv(path)


def test_missing_csv(tmp_path):
    with pytest.raises(SgdscapeError, match="does not exist"):
        Dataset.from_csv(tmp_path / "nope.csv")


def test_dataset_validation():
    with pytest.raises(SgdscapeError, match="same number of samples"):
        Dataset(torch.zeros(3, 1), torch.zeros(2, 1))
    with pytest.raises(SgdscapeError, match="shape"):
        Dataset(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(SgdscapeError, match="NaN"):
        Dataset.from_arrays([0.0, float("nan")], [1.0, 2.0])
    with pytest.raises(SgdscapeError, match="unknown problem"):
        sgdscape.make_problem("nope")
