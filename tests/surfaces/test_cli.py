import re

import numpy as np
import pytest
from typer.testing import CliRunner

import sgdscape
from sgdscape.records.presets import PRESETS
from sgdscape.records.run import atomic_path, load_config
from sgdscape.records.run_files import load
from sgdscape.surfaces.cli import app, parse_bytes, select_steps

runner = CliRunner()
SMALL = ["--samples", "30", "--grid", "20", "-q"]


def invoke(*args):
    return runner.invoke(app, list(args))


def test_run_with_no_options_is_the_notebooks_experiment(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", "--out", str(out), "--figures", "0,99", "-q")
    assert result.exit_code == 0, result.output
    for name in ("run.npz", "config.toml", "step_00.png", "step_99.png"):
        assert (out / name).is_file()
        assert f"wrote {out / name}" in result.output
    with np.load(out / "run.npz") as arrays:
        names = set(arrays.files)
        assert {
            "x",
            "y",
            "w1",
            "w2",
            "sample_loss",
            "risk",
            "iterates",
            "grads",
            "batch_indices",
            "batch_loss",
            "risk_along_path",
        } <= names
        assert arrays["sample_loss"].shape == (100, 100, 100)
        assert arrays["iterates"].shape == (100, 2)
        data = sgdscape.ground_truth(seed=0)
        np.testing.assert_array_equal(arrays["x"], data.x.numpy())
        expected = sgdscape.train("relu-unit", data, init=(1.2, -2.3), lr=0.05)
        np.testing.assert_array_equal(arrays["iterates"], expected.iterates)
        np.testing.assert_allclose(arrays["risk"], arrays["sample_loss"].mean(0), rtol=1e-5)


def test_config_round_trip_reproduces_identical_arrays(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    result = invoke(
        "run",
        *SMALL,
        "--lr",
        "0.1",
        "--batch-size",
        "3",
        "--epochs",
        "2",
        "--shuffle",
        "--seed",
        "7",
        "--init",
        "0.5,1.5",
        "--optimizer",
        "adam",
        "--figures",
        "none",
        "--out",
        str(first),
    )
    assert result.exit_code == 0, result.output
    config = load_config(first / "config.toml")
    assert (config.lr, config.batch_size, config.epochs, config.sampling, config.seed) == (
        0.1,
        3,
        2,
        "shuffle",
        7,
    )
    assert config.init == (0.5, 1.5) and config.optimizer == "adam"
    result = invoke(
        "run",
        "--config",
        str(first / "config.toml"),
        "--figures",
        "none",
        "-q",
        "--out",
        str(second),
    )
    assert result.exit_code == 0, result.output
    with np.load(first / "run.npz") as a, np.load(second / "run.npz") as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_options_override_the_config_file(tmp_path):
    invoke("run", *SMALL, "--lr", "0.1", "--figures", "none", "--out", str(tmp_path / "a"))
    result = invoke(
        "run",
        "--config",
        str(tmp_path / "a" / "config.toml"),
        "--lr",
        "0.02",
        "--figures",
        "none",
        "-q",
        "--out",
        str(tmp_path / "b"),
    )
    assert result.exit_code == 0
    config = load_config(tmp_path / "b" / "config.toml")
    assert config.lr == 0.02 and config.samples == 30


def test_csv_data(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "\n".join(f"{v},{2 * v}" for v in np.linspace(-1, 1, 12)))
    result = invoke(
        "run",
        "--data",
        str(csv),
        "--grid",
        "10",
        "--figures",
        "none",
        "-q",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.exit_code == 0, result.output
    run = load(tmp_path / "o")
    np.testing.assert_allclose(run.data.x.numpy().ravel(), np.linspace(-1, 1, 12), rtol=1e-6)
    assert run.n_steps == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-1"], "learning rate"),
        (["--lr", "0"], "learning rate"),
        (["--lr", "nan"], "learning rate"),
        (["--lr", "abc"], "--lr"),
        (["--w1-range", "3,-3"], "LOW < HIGH"),
        (["--w2-range", "1,1"], "LOW < HIGH"),
        (["--w1-range", "1"], "LOW,HIGH"),
        (["--grid", "1"], "grid must be between 2"),
        (["--grid", "4000", "--samples", "100", "--memory-budget", "16MiB"], "memory budget"),
        (["--init", "1,x"], "--init must be comma-separated numbers"),
        (["--init", "1,2,3"], "init must have shape"),
        (["--batch-size", "31"], "larger than the data"),
        (["--model", "nope"], "unknown model 'nope'; choose one of: .*relu-unit"),
        (["--optimizer", "nope"], "unknown optimizer 'nope'; choose one of: adadelta"),
        (["--device", "tpu"], "unknown device"),
        (["--samples", "0"], "samples must be"),
        (["--figures", "abc"], "--figures must be"),
        (["--memory-budget", "lots"], "--memory-budget"),
        (["--config", "/nonexistent.toml"], "does not exist"),
        (["--data", "/nonexistent.csv"], "does not exist"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.npz").write_bytes(b"precious")
    result = invoke("run", *SMALL, "--out", str(out), *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("sgdscape: error: ")
    import re

    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert (out / "run.npz").read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["run.npz"]


def test_cuda_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    result = invoke("run", *SMALL, "--device", "cuda", "--out", str(tmp_path))
    assert result.exit_code == 2 and "CUDA is not available" in result.output


def test_malformed_csv_and_config(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("x,y\n1,hello\n")
    result = invoke("run", "--data", str(bad_csv), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "not numeric" in result.output
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("lr = 0.1\nmodle = 'relu-unit'\n")
    result = invoke("run", "--config", str(bad_toml), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "unknown config field(s) modle" in result.output
    bad_toml.write_text("lr = 'fast'\n")
    result = invoke("run", "--config", str(bad_toml), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "learning rate" in result.output
    assert not (tmp_path / "o").exists()


def test_out_that_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    result = invoke("run", *SMALL, "--out", str(target))
    assert result.exit_code == 2 and "is an existing file" in result.output
    assert target.read_text() == "keep me"


def test_existing_out_files_are_replaced_only_on_success(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = invoke("run", *SMALL, "--figures", "none", "--out", str(out))
    assert result.exit_code == 0
    assert (out / "notes.txt").read_text() == "mine"
    # the run's files, the user's file, and the record of the run's set (no leftovers)
    assert sorted(p.name for p in out.iterdir()) == [
        ".sgdscape-run.json",
        "config.toml",
        "notes.txt",
        "run.npz",
    ]


def test_atomic_path_leaves_the_old_file_on_error(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


def test_divergence_is_reported_not_crashed(tmp_path):
    result = invoke(
        "run", "--lr", "50", "--grid", "20", "--figures", "auto", "-q", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "diverged at step" in result.output


def test_help_and_version():
    assert invoke("--help").exit_code == 0
    result = invoke("--version")
    assert result.exit_code == 0 and sgdscape.__version__ in result.output
    assert "--memory-budget" in invoke("run", "--help").output


def test_helpers():
    assert parse_bytes("1GiB") == 2**30
    assert parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("2000") == 2000
    assert select_steps("auto", 100) == [0, 25, 50, 74, 99]
    assert select_steps("3,1", 10) == [1, 3]
    assert select_steps("none", 10) == []
    assert len(select_steps("all", 7)) == 7


def test_python_dash_m_entry_point():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "sgdscape", "run", "--lr", "-1"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "sgdscape: error: learning rate (lr) must be a finite number > 0 and <= 3.403e+38 "
        "(float32's limit), got -1.0."
    ]


# every model and every preset runs with nothing but an output directory


@pytest.mark.parametrize("name", sorted(sgdscape.MODELS))
def test_every_model_runs_with_no_options_from_its_own_default_init(tmp_path, name):
    result = invoke("run", "--model", name, "--figures", "none", "-q", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    model = sgdscape.MODELS[name]
    # the documented rule: the seed's (1.2, -2.3), then 0.5 for every further parameter
    expected = (1.2, -2.3) + (0.5,) * (model.n_params - 2)
    assert load_config(tmp_path / "config.toml").init == expected
    with np.load(tmp_path / "run.npz") as arrays:
        np.testing.assert_allclose(arrays["iterates"][0], expected, rtol=1e-6)
    assert sgdscape.RunConfig(model=name).init == expected  # the Python API agrees


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_with_no_options(tmp_path, name):
    result = invoke("run", "--preset", name, "--figures", "none", "-q", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "config.toml") == PRESETS[name].config


def test_the_help_gives_every_models_default_init():
    result = runner.invoke(app, ["run", "--help"], terminal_width=2000, max_content_width=2000)
    assert result.exit_code == 0
    for name, model in sgdscape.MODELS.items():
        start = ",".join(f"{v:g}" for v in model.default_init)
        assert re.search(rf"{start} for [a-z, -]*\b{name}\b", result.output), (name, start)
    assert "Initial parameters W1,W2 [1.2,-2.3]" not in result.output


def test_a_new_model_takes_its_own_default_init_but_an_explicit_init_stays(tmp_path):
    base = sgdscape.RunConfig(epochs=2)
    assert base.replace(model="relu-unit-bias").init == (1.2, -2.3, 0.5)
    assert base.replace(model="tanh-unit").init == (1.2, -2.3)
    moved = base.replace(init=(0.3, 0.4))
    assert moved.replace(model="tanh-unit").init == (0.3, 0.4)
    with pytest.raises(sgdscape.SgdscapeError, match=r"got \(2,\); its default init is 1.2,-2.3"):
        moved.replace(model="two-relu-units")
    # a preset's own init is kept: the error says what to give instead
    result = invoke("run", "--preset", "dead-relu", "--model", "relu-unit-bias", "-q")
    assert result.exit_code == 2
    assert "its default init is 1.2,-2.3,0.5" in result.output


def test_a_random_init_reads_back_as_random(tmp_path):
    result = invoke(
        "run", *SMALL, "--init", "random", "--figures", "none", "--out", str(tmp_path / "a")
    )
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "a" / "config.toml")
    assert config.init is None
    again = invoke(
        "run",
        "--config",
        str(tmp_path / "a" / "config.toml"),
        "--figures",
        "none",
        "-q",
        "--out",
        str(tmp_path / "b"),
    )
    assert again.exit_code == 0, again.output
    with np.load(tmp_path / "a" / "run.npz") as a, np.load(tmp_path / "b" / "run.npz") as b:
        np.testing.assert_array_equal(a["iterates"], b["iterates"])
    with pytest.raises(sgdscape.SgdscapeError, match=r"init must be numbers .* 'default' or"):
        sgdscape.RunConfig(init="sometimes")
