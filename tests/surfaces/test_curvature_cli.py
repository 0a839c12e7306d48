"""`sgdscape run --curvature` and `sgdscape network --curvature SPEC` / `--preset NAME`:
what they write, read back from the files; bad values are one line and exit code 2."""

import numpy as np
import pytest
from typer.testing import CliRunner

import sgdscape
from sgdscape.networks.curvature import (
    CurvatureRequest,
    load_training_curvature,
    parse_curvature_spec,
)
from sgdscape.surfaces.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def one_line_error(result, pattern):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("sgdscape: error:"), lines[0]
    assert pattern in lines[0], lines[0]


def test_run_with_curvature_writes_the_hessians_and_the_figure(tmp_path):
    result = invoke(
        "run", "--model", "linear-regression", "--grid", "12", "--epochs", "1",
        "--batch-size", "20", "--lr", "0.3", "--figures", "none", "--curvature", "-q",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "curvature.png").stat().st_size > 20_000
    with np.load(tmp_path / "run.npz", allow_pickle=False) as archive:
        hessian = archive["curvature_risk_hessian"]
        x = archive["x"].astype(np.float64).ravel()
        assert hessian.shape == (*archive["iterates"].shape, 2)
        assert archive["curvature_map_kind"].shape == archive["risk"].shape
    expected = 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    np.testing.assert_allclose(hessian, np.broadcast_to(expected, hessian.shape), rtol=1e-5)
    loaded = sgdscape.load(tmp_path)
    assert len(loaded.curvatures) == 1 and loaded.curvature_map is not None


def test_the_stability_preset_computes_its_curvature_without_the_flag(tmp_path):
    result = invoke(
        "run", "--preset", "stability-threshold", "--grid", "10", "--figures", "none", "-q",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "curvature.png").is_file() and (tmp_path / "stability.png").is_file()
    loaded = sgdscape.load(tmp_path)
    assert [float(c.lr[0]) for c in loaded.curvatures] == [0.98, 1.02]


def test_a_run_without_the_flag_has_no_curvature_arrays(tmp_path):
    result = invoke("run", "--grid", "8", "--epochs", "1", "--figures", "none", "-q",
                    "--out", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "run.npz", allow_pickle=False) as archive:
        assert not [name for name in archive.files if "curvature" in name]
    assert not (tmp_path / "curvature.png").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("top-k=3,trace,density", CurvatureRequest(k=3, trace=True, density=True)),
        ("trace", CurvatureRequest(trace=True)),
        (" top-k=2 , batch, steps=4", CurvatureRequest(k=2, batch=True, steps=4)),
    ],
)
def test_the_curvature_spec(text, expected):
    assert parse_curvature_spec(text) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("top-k=0", "top-k must be an integer from 1 to 50, got '0'"),
        ("top-k=x", "got 'x'"),
        ("top-k", "unknown item 'top-k'"),
        ("trace=2", "unknown item 'trace=2'"),
        ("hessian", "unknown item 'hessian'; use a comma-separated list of: top-k=K"),
        ("", "needs at least one of"),
        ("steps=100000", "steps must be an integer from 1 to 10000"),
    ],
)
def test_bad_curvature_specs_are_one_line_before_any_training(tmp_path, spec, named):
    result = invoke("network", "--curvature", spec, "-q", "--out", str(tmp_path / "n"))
    one_line_error(result, named)
    assert not (tmp_path / "n").exists()


def test_an_unknown_network_preset_is_one_line(tmp_path):
    result = invoke("network", "--preset", "edge", "-q", "--out", str(tmp_path / "n"))
    one_line_error(result, "'edge'")


@pytest.mark.slow
def test_network_with_curvature_saves_the_spectra_in_network_npz(tmp_path):
    from sgdscape.networks.recording import load_view

    out = tmp_path / "moons"
    result = invoke(
        "network", "--example", "moons", "--grid", "7", "--steps", "1", "--epochs", "1",
        "--curvature", "top-k=2,trace,density,batch,steps=3", "-q", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = load_training_curvature(out / "network.npz")
    view = load_view(out / "network.npz")  # the view still reads as before
    assert record.eigenvalues.shape == (3, 2) and record.batch_eigenvalues.shape == (3, 2)
    assert record.steps[0] == 0 and record.steps[-1] == view.n_steps - 1
    assert (np.diff(record.eigenvalues, axis=1) <= 1e-6).all()  # descending
    assert record.trace.shape == (3,) and record.density.shape[0] == 3
    assert record.lr == pytest.approx(0.3)
    assert (out / "network_curvature.png").stat().st_size > 20_000
    assert "2/lr = 6.667" in result.output
