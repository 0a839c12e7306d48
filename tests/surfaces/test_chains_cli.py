"""`sgdscape chains` and its figure: the archive equals a direct `sgdscape.chains` call; the
drawn ellipses and basin fractions equal what the test computes from the recorded iterates."""

import matplotlib
import numpy as np
import pytest
from matplotlib.patches import Ellipse
from typer.testing import CliRunner

import sgdscape
from sgdscape.core.chain_theory import linear_regression_moments, stationary_covariance
from sgdscape.records.run import RunConfig, risk_landscape
from sgdscape.surfaces.cli import app
from sgdscape.views.chains_figure import EMPIRICAL_LABEL, THEORY_LABEL, plot_chains

matplotlib.use("Agg")

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["chains", *args])


def test_cli_archive_equals_a_direct_chains_call(tmp_path):
    out = tmp_path / "out"
    result = invoke(
        *("--samples", "30", "--n-chains", "50", "--steps", "40", "--lr", "0.1"),
        *("--batch-size", "2", "--record-steps", "0,5,40", "--grid", "20", "--seed", "3"),
        *("--out", str(out), "-q"),
    )
    assert result.exit_code == 0, result.output
    for name in ("chains.npz", "chains.png"):
        assert (out / name).is_file() and f"wrote {out / name}" in result.output
    data = sgdscape.make_problem("linear", 30, seed=3)
    direct = sgdscape.chains(
        "relu-unit",
        data,
        init=(1.2, -2.3),
        n_chains=50,
        lr=0.1,
        batch_size=2,
        steps=40,
        seed=3,
        record_steps=[0, 5, 40],
    )
    with np.load(out / "chains.npz") as arrays:
        assert np.array_equal(arrays["record_steps"], [0, 5, 40])
        assert np.array_equal(arrays["iterates"], direct.iterates)
        assert np.array_equal(arrays["final"], direct.final)
        assert np.array_equal(arrays["diverged"], direct.diverged)
        assert arrays["risk"].shape == (20, 20)
        np.testing.assert_allclose(arrays["w1"], np.linspace(-3, 3, 20), rtol=1e-6)
        # the risk is the mean of the model's squared errors at a grid point
        w1, w2 = arrays["w1"][4], arrays["w2"][13]
        x, y = data.x.double().numpy(), data.y.double().numpy()
        expected = np.mean((w1 * np.maximum(w2 * x, 0.0) - y) ** 2)
        np.testing.assert_allclose(arrays["risk"][13, 4], expected, rtol=1e-5)


def test_cli_random_init_and_shuffle_equal_a_direct_call(tmp_path):
    result = invoke(
        *("--model", "linear-regression", "--samples", "20", "--n-chains", "30"),
        *("--steps", "25", "--sampling", "shuffle", "--init", "random", "--grid", "10"),
        *("--out", str(tmp_path), "-q"),
    )
    assert result.exit_code == 0, result.output
    data = sgdscape.make_problem("linear", 20, seed=0)
    direct = sgdscape.chains(
        "linear-regression", data, init=None, n_chains=30, lr=0.05, sampling="shuffle", steps=25
    )
    with np.load(tmp_path / "chains.npz") as arrays:
        assert np.array_equal(arrays["iterates"], direct.iterates)
        assert np.array_equal(arrays["record_steps"], direct.record_steps)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--n-chains", "0"], "n-chains"),
        (["--lr", "nan"], "learning rate"),
        (["--model", "no-such-model"], "no-such-model"),
        (["--record-steps", "0,99"], "record-steps"),
        (["--sampling", "in-order"], "in-order"),
        (["--batch-size", "31"], "batch"),
        (["--preset", "no-such-preset"], "noise-ball-theory"),
        (["--gif", "movie.avi"], "--gif"),
        (["--html", "page.txt"], "--html"),
        (["--preset", "noise-ball-theory", "--lr", "-1"], "learning rate"),
        (["--preset", "valley-hopping", "--record-steps", "0,5000"], "record-steps"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, args, needle):
    out = tmp_path / "out"
    out.mkdir()
    (out / "chains.npz").write_bytes(b"precious")
    result = invoke("--samples", "30", "--n-chains", "5", "--steps", "10", "--out", str(out), *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sgdscape: error: "), result.output
    assert needle in lines[0]
    assert (out / "chains.npz").read_bytes() == b"precious"


def _ellipses(ax, label):
    return [p for p in ax.patches if isinstance(p, Ellipse) and p.get_label() == label]


def _assert_is_two_sigma_ellipse(patch, mean, covariance):
    """Points drawn on the patch satisfy (v - mean)^T C^-1 (v - mean) = 2^2."""
    np.testing.assert_allclose(patch.center, mean, rtol=1e-9, atol=1e-12)
    t = np.linspace(0, 2 * np.pi, 64)
    angle = np.radians(patch.angle)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    local = np.stack([patch.width / 2 * np.cos(t), patch.height / 2 * np.sin(t)])
    offsets = (rotation @ local).T
    form = np.einsum("ni,ij,nj->n", offsets, np.linalg.inv(covariance), offsets)
    np.testing.assert_allclose(form, 4.0, rtol=1e-6)


def test_linear_regression_figure_draws_empirical_and_exact_ellipses():
    data = sgdscape.make_problem("linear", 30, seed=0)
    steps = [1, 10, 60]
    run = sgdscape.chains(
        "linear-regression",
        data,
        init=(1.2, -2.3),
        n_chains=2000,
        lr=0.2,
        steps=60,
        record_steps=[0, *steps],
    )
    surface = risk_landscape(RunConfig(model="linear-regression", samples=30, grid=20))
    fig = plot_chains(run, surface, data, steps=steps)
    # the chains start at float32 (1.2, -2.3); theory from that exact start
    theory = linear_regression_moments(data, np.float32([1.2, -2.3]), 0.2, 1, steps)
    for panel, step in enumerate(steps):
        ax = fig.axes[panel]
        points = run.iterates[run.record_steps.tolist().index(step)].astype(np.float64)
        (empirical,) = _ellipses(ax, EMPIRICAL_LABEL)
        _assert_is_two_sigma_ellipse(empirical, points.mean(axis=0), np.cov(points.T))
        (exact,) = _ellipses(ax, THEORY_LABEL)
        _assert_is_two_sigma_ellipse(exact, theory.mean[panel], theory.covariance[panel])
        assert exact.get_linestyle() == "--"
        assert ax.get_title().startswith(f"step {step}")
    noise_ball = stationary_covariance(data, 0.2, 1).covariance
    assert "stationary covariance" in fig._suptitle.get_text()
    assert f"{noise_ball[0, 0]:.3g}" in fig._suptitle.get_text()
    assert len(fig.axes) == len(steps)  # no basins for linear regression
    matplotlib.pyplot.close(fig)


def test_no_theory_ellipse_where_theory_does_not_hold():
    data = sgdscape.make_problem("linear", 30, seed=0)
    surface = risk_landscape(RunConfig(model="linear-regression", samples=30, grid=10))
    for options in ({"sampling": "shuffle"}, {"optimizer": "adam"}):
        run = sgdscape.chains(
            "linear-regression", data, init=(1.2, -2.3), n_chains=40, lr=0.1, steps=20, **options
        )
        fig = plot_chains(run, surface, data)
        assert all(not _ellipses(ax, THEORY_LABEL) for ax in fig.axes)
        assert _ellipses(fig.axes[0], EMPIRICAL_LABEL)
        matplotlib.pyplot.close(fig)


def _relu_unit_basin(w1, w2, x):
    """The seed figure's regions, written out: dead, then the two valleys, else mixed."""
    if w1 == 0 or not np.any(w2 * x > 0):
        return "dead plateau"
    if w1 > 0 and w2 > 0:
        return "w2>0 valley"
    if w1 < 0 and w2 < 0:
        return "w2<0 valley"
    return "mixed signs"


def test_basin_panel_plots_the_fraction_of_chains_in_each_basin():
    data = sgdscape.make_problem("linear", 30, seed=0)
    run = sgdscape.chains(
        "relu-unit", data, init=None, n_chains=300, lr=0.1, steps=100, record_steps=[0, 3, 30, 100]
    )
    surface = risk_landscape(RunConfig(samples=30, grid=20))
    fig = plot_chains(run, surface, data, steps=[3, 100])
    basins_ax = fig.axes[-1]
    lines = {line.get_label(): line for line in basins_ax.get_lines()}
    x = data.x.double().numpy().reshape(-1)
    names = ["w2>0 valley", "w2<0 valley", "dead plateau", "mixed signs"]
    assert set(lines) == set(names)  # no chain diverged, so no "diverged" line
    for s, step in enumerate(run.record_steps):
        labels = [_relu_unit_basin(float(w1), float(w2), x) for w1, w2 in run.iterates[s]]
        for name in names:
            np.testing.assert_array_equal(lines[name].get_xdata()[s], step)
            assert lines[name].get_ydata()[s] == pytest.approx(labels.count(name) / 300)
    # random inits land in more than one basin, so the plot shows a real split
    assert sum(lines[name].get_ydata()[-1] > 0 for name in names) >= 2
    matplotlib.pyplot.close(fig)


def test_diverging_chains_still_draw_and_say_so(tmp_path):
    """lr 3 is far above linear regression's stable bound: every chain overflows; the figure
    must still be written (huge ellipses are left out, not drawn: they hang Agg)."""
    result = invoke(
        *("--model", "linear-regression", "--lr", "3", "--samples", "30", "--n-chains", "40"),
        *("--steps", "200", "--record-steps", "1,50,200", "--grid", "10", "-q"),
        *("--out", str(tmp_path)),
    )
    assert result.exit_code == 0, result.output
    assert "40 diverged" in result.output
    with np.load(tmp_path / "chains.npz") as arrays:
        assert arrays["diverged"].all()
    data = sgdscape.make_problem("linear", 30, seed=0)
    run = sgdscape.chains(
        "linear-regression", data, init=(1.2, -2.3), n_chains=40, lr=3, steps=200,
        record_steps=[1, 50, 200],
    )  # fmt: skip
    surface = risk_landscape(RunConfig(model="linear-regression", samples=30, grid=10))
    fig = plot_chains(run, surface, data)
    last = fig.axes[-1]
    assert "40 chains diverged" in last.get_title()
    assert not last.patches
    matplotlib.pyplot.close(fig)


def test_a_preset_with_overrides_equals_a_direct_chains_call(tmp_path):
    result = invoke(
        *("--preset", "noise-ball-theory", "--n-chains", "300", "--steps", "30"),
        *("--grid", "12", "--out", str(tmp_path), "-q"),
    )
    assert result.exit_code == 0, result.output
    data = sgdscape.make_problem(
        "linear", 100, seed=0, options=sgdscape.ProblemOptions(noise_std=0.5)
    )
    direct = sgdscape.chains(
        "linear-regression", data, init=(-2.0, 2.0), n_chains=300, lr=0.1, steps=30,
        record_steps=[0, 3, 10, 30],
    )  # fmt: skip
    with np.load(tmp_path / "chains.npz") as arrays:
        assert np.array_equal(arrays["record_steps"], [0, 3, 10, 30])
        assert np.array_equal(arrays["iterates"], direct.iterates)
    assert "standard errors" in result.output  # the measured note against the exact theory


@pytest.mark.parametrize(
    ("name", "figure"), [("valley-hopping", "hopping.png"), ("fan-of-steps", "fan.png")]
)
def test_presets_write_their_own_figure(tmp_path, name, figure):
    result = invoke(
        *("--preset", name, "--n-chains", "60", "--steps", "40", "--grid", "12"),
        *("--out", str(tmp_path), "-q"),
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / figure).is_file() and f"wrote {tmp_path / figure}" in result.output
    assert "Measured" in result.output


def test_gif_and_html_outputs(tmp_path):
    from PIL import Image

    gif, page = tmp_path / "chains.gif", tmp_path / "chains.html"
    result = invoke(
        *("--samples", "30", "--n-chains", "80", "--steps", "20", "--record-steps", "0,5,10,20"),
        *("--grid", "12", "--gif", str(gif), "--html", str(page), "--out", str(tmp_path), "-q"),
    )
    assert result.exit_code == 0, result.output
    with Image.open(gif) as image:
        assert image.n_frames == 4
    assert "sliders" in page.read_text() and f"wrote {page}" in result.output
