import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import sgdscape
from sgdscape import RunConfig, SgdscapeError
from sgdscape.records.basins import basins, cluster_end_points
from sgdscape.records.presets import PRESETS
from sgdscape.records.run import initial_points, load_config
from sgdscape.records.run_files import load, save
from sgdscape.surfaces.cli import app

runner = CliRunner()


def one_line_error(args):
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("sgdscape: error: "), result.output
    return lines[0]


def test_compare_variants_equal_separate_runs():
    config = RunConfig(
        samples=40,
        grid=10,
        epochs=2,
        sampling="shuffle",
        compare=({"optimizer": "adam"}, {"batch_size": 4, "lr": 0.1}),
    )
    result = sgdscape.run(config)
    assert [label for label, _ in result.trajectories] == [
        "batch_size=1, lr=0.05, optimizer=sgd",
        "batch_size=1, lr=0.05, optimizer=adam",
        "batch_size=4, lr=0.1, optimizer=sgd",
    ]
    data = sgdscape.ground_truth(40, seed=0)
    for changes, trajectory in zip(
        ({}, *config.compare), (result.trajectory, *result.others), strict=True
    ):
        alone = sgdscape.train(
            "relu-unit",
            data,
            init=(1.2, -2.3),
            lr=changes.get("lr", 0.05),
            optimizer=changes.get("optimizer", "sgd"),
            batch_size=changes.get("batch_size", 1),
            epochs=2,
            shuffle=True,
            seed=0,
        )
        np.testing.assert_array_equal(trajectory.iterates, alone.iterates)


def test_compare_round_trips_through_files(tmp_path):
    config = RunConfig(samples=20, grid=8, compare=({"optimizer": "rmsprop", "label": "rms"},))
    result = sgdscape.run(config)
    save(result, tmp_path)
    loaded = load(tmp_path)
    assert loaded.config == config
    assert [label for label, _ in loaded.trajectories] == [
        label for label, _ in result.trajectories
    ]
    np.testing.assert_array_equal(loaded.others[0].iterates, result.others[0].iterates)


def test_runs_tables_in_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('samples = 20\ngrid = 8\n[[runs]]\noptimizer = "adam"\n[[runs]]\nlr = 0.2\n')
    config = load_config(path)
    assert config.compare == ({"optimizer": "adam"}, {"lr": 0.2})
    result = runner.invoke(
        app, ["run", "--config", str(path), "-q", "--figures", "none", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "compare.png").is_file()
    assert result.output.count("sgdscape run: [") == 3


TINY_QUIET_RUN = ["run", "--samples", "20", "--grid", "8", "-q", "--figures", "none"]


def test_cli_compare_values_and_optimizer_options(tmp_path):
    result = runner.invoke(
        app,
        [
            *TINY_QUIET_RUN,
            "--compare",
            "momentum=0,0.9",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "config.toml")
    assert config.optimizer_options == {"momentum": 0}
    assert config.compare == ({"optimizer_options": {"momentum": 0.9}},)
    result = runner.invoke(
        app,
        [
            *TINY_QUIET_RUN,
            "--compare",
            "init=1,1;-1,-1",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "config.toml").compare == ({"init": (-1.0, -1.0)},)


def test_grid_of_inits_equals_separate_runs():
    config = RunConfig(samples=30, grid=8, inits="grid:3", w1_range=(-2, 2), w2_range=(-1, 3))
    points = initial_points(config)
    expected = torch.tensor(
        [[a, b] for b in np.linspace(-1, 3, 3) for a in np.linspace(-2, 2, 3)], dtype=torch.float32
    )
    torch.testing.assert_close(points, expected)
    result = sgdscape.run(config)
    assert result.trajectory.iterates.shape == (9, 30, 2)
    data = sgdscape.ground_truth(30, seed=0)
    for k in (0, 4, 8):
        alone = sgdscape.train("relu-unit", data, init=points[k], lr=0.05)
        np.testing.assert_allclose(
            result.trajectory.iterates[k], alone.iterates, rtol=1e-6, atol=1e-7
        )


def test_basins_cells_equal_individual_runs():
    config = RunConfig(samples=30, epochs=2)
    found = basins(config, points=5)
    data = sgdscape.ground_truth(30, seed=0)
    for i, j in [(0, 0), (4, 4), (1, 3), (2, 2)]:
        alone = sgdscape.train(
            "relu-unit", data, init=(float(found.w1[j]), float(found.w2[i])), lr=0.05, epochs=2
        )
        np.testing.assert_allclose(found.final[i, j], alone.final, rtol=1e-5, atol=1e-6)
        assert found.final_risk[i, j] == pytest.approx(float(alone.final_risk), rel=1e-5)
    # the two mirror valleys are reached: w1, w2 > 0 and w1, w2 < 0
    signs = {tuple(np.sign(c).astype(int)) for c in found.centres if np.abs(c).min() > 0.3}
    assert signs == {(1, 1), (-1, -1)}


def test_single_linkage_joins_a_chain_and_separates_far_points():
    chain = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [0.3, 0.0], [5.0, 5.0], [np.nan, 0.0]])
    labels, centres = cluster_end_points(chain, tolerance=0.15)
    assert labels.tolist() == [0, 0, 0, 0, 1, -1]
    np.testing.assert_allclose(centres, [[0.15, 0.0], [5.0, 5.0]])


def test_slice_of_a_four_parameter_model_and_its_projected_path():
    config = RunConfig(
        model="two-relu-units",
        init=(1.0, 0.5, -1.0, -0.5),
        samples=25,
        grid=6,
        slice_axes=("a1", "w1"),
        slice_fixed={"a2": -0.7},
    )
    result = sgdscape.run(config)
    assert result.landscape.labels == ("a1", "w1")
    i, j = 4, 1
    a1, w1 = float(result.landscape.w1[j]), float(result.landscape.w2[i])
    x, y = result.data.x[:, 0].double(), result.data.y[:, 0].double()
    # a2 fixed by slice_fixed, w2 at its init value (-0.5)
    prediction = a1 * torch.relu(w1 * x) + (-0.7) * torch.relu(-0.5 * x)
    assert result.landscape.risk[i, j] == pytest.approx(
        float(((prediction - y) ** 2).mean()), rel=1e-5
    )
    assert result.trajectory.iterates.shape == (25, 4)
    np.testing.assert_array_equal(result.path(), result.trajectory.iterates[:, [0, 1]])


def test_slice_along_directions():
    config = RunConfig(
        samples=10, grid=5, slice_directions=((1.0, 1.0), (1.0, -1.0)), init=(0.5, 0.5)
    )
    result = sgdscape.run(config)
    assert result.landscape.labels == ("a", "b")
    a, b = float(result.landscape.w1[3]), float(result.landscape.w2[1])
    w = np.array([0.5 + a + b, 0.5 + a - b])
    x, y = result.data.x[:, 0].double().numpy(), result.data.y[:, 0].double().numpy()
    expected = np.mean((w[0] * np.maximum(w[1] * x, 0) - y) ** 2)
    assert result.landscape.risk[1, 3] == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(result.path()[0], [0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "relu"}, "unknown model 'relu'; choose one of"),
        ({"problem": "xor"}, "unknown problem 'xor'"),
        ({"loss": "l2"}, "unknown loss 'l2'"),
        ({"schedule": "warmup"}, "unknown schedule 'warmup'"),
        ({"samples": "many"}, "samples must be an integer"),
        ({"lr": "fast"}, "learning rate"),
        ({"epochs": 0}, "epochs must be"),
        ({"outlier_fraction": 1.5}, "outlier_fraction must be between 0 and 1"),
        ({"student_df": -1}, "student_df"),
        (
            {"optimizer": "adam", "optimizer_options": {"betas": 3}},
            "optimizer option betas must be 2 numbers",
        ),
        ({"optimizer_options": {"betas": (0.9, 0.9)}}, "no option .betas."),
        ({"optimizer_options": [1, 2]}, "optimizer_options must be a table"),
        ({"slice_axes": ("w1", "w3")}, "'w3' is not a parameter"),
        ({"slice_fixed": {"c": 1.0}}, "'c' is not a parameter"),
        (
            {"model": "relu-unit-bias", "init": (1.0, 2.0, 3.0), "slice_fixed": {"w1": 1.0}},
            "slice axis and cannot also be fixed",
        ),
        ({"inits": "grid"}, "inits must be grid:N"),
        ({"compare": ({"model": "tanh-unit"},)}, "compare variants may change only"),
        ({"compare": ({"lr": -1},)}, "learning rate"),
        ({"slice_directions": ((1.0, 0.0), (0.0,))}, "each slice direction needs 2"),
    ],
)
def test_bad_configs_name_the_field(changes, message):
    with pytest.raises(SgdscapeError, match=message):
        RunConfig(**changes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; choose one of: adam-sign-steps"),
        (["--preset", "seed", "--config", "x.toml"], "either --config or --preset"),
        (["--compare", "model=a,b"], "not one that runs can differ in"),
        (["--compare", "lr=0.1"], "at least two values"),
        (["--slice-axes", "w1,q"], "'q' is not a parameter"),
        (["-O", "momentum"], "NAME=VALUE"),
        (["-O", "moment=0.9"], "no option 'moment'"),
        (["--schedule", "step", "--schedule-option", "gama=0.5"], "no option 'gama'"),
        (["--inits", "random:x"], "inits must be"),
        (["--sampling", "sometimes"], "unknown sampling"),
        (["--shuffle", "--sampling", "in-order"], "not both"),
    ],
)
def test_bad_cli_experiment_options_are_one_line(tmp_path, args, message):
    line = one_line_error(
        ["run", "--samples", "10", "--grid", "5", "--out", str(tmp_path / "o"), *args]
    )
    assert re.search(message, line), line
    assert not (tmp_path / "o").exists()


def test_every_preset_is_a_valid_config_with_a_story():
    assert len(PRESETS) >= 12
    for name, preset in PRESETS.items():
        assert preset.config.to_dict()  # validated on construction
        assert len(preset.story) > 20 and len(preset.explanation) > 60, name
    listing = runner.invoke(app, ["presets"]).output
    for name in PRESETS:
        assert name in listing


def test_basins_command(tmp_path):
    result = runner.invoke(
        app, ["basins", "--points", "4", "--samples", "20", "--grid", "8", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "basins.npz") as arrays:
        assert arrays["label"].shape == (4, 4)
    assert (tmp_path / "basins.png").is_file()


def test_a_config_can_hold_several_explicit_inits(tmp_path):
    config = RunConfig(samples=20, grid=6, init=((1.2, -2.3), (0.5, 0.5)))
    assert config.init == ((1.2, -2.3), (0.5, 0.5))
    result = sgdscape.run(config)
    assert result.trajectory.iterates.shape == (2, 20, 2)
    np.testing.assert_array_equal(
        result.trajectory.iterates[:, 0], np.float32([[1.2, -2.3], [0.5, 0.5]])
    )
    save(result, tmp_path)
    assert load_config(tmp_path / "config.toml") == config
    with pytest.raises(SgdscapeError, match="init must be numbers"):
        RunConfig(init=((1.0, 2.0), (1.0,)))  # ragged rows
    with pytest.raises(SgdscapeError, match="init must have shape"):
        RunConfig(init=((1.0, 2.0, 3.0), (1.0, 2.0, 3.0)))
