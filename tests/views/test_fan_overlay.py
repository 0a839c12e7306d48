"""The fan of next steps over the step figure's left panel: its points read back from the
drawn artists (the magnification undone) against an independent oracle, the full-data
gradient step ``w - lr grad R(w)`` by torch autograd on the whole data set; and the blitted
frame against a full draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.errors import SgdscapeError
from sgdscape.views.fan import FanOverlay
from sgdscape.views.step_figure import StepFigure


@pytest.fixture(scope="module")
def result():
    return sgdscape.run(sgdscape.RunConfig(grid=15, samples=12, epochs=2, lr=0.05))


def full_step(result, w: np.ndarray) -> np.ndarray:
    """``w - lr grad R(w)``: the seed's relu unit ``w1 relu(w2 x)``, mean squared error."""
    x = result.data.x.double().reshape(-1)
    y = result.data.y.double().reshape(-1)
    point = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    risk = ((point[0] * torch.relu(point[1] * x) - y) ** 2).mean()
    (grad,) = torch.autograd.grad(risk, point)
    return w - result.config.lr * grad.numpy()


def drawn_points(figure: StepFigure) -> np.ndarray:
    points = [c for c in figure.left.collections if c.get_gid() == "fan-points"]
    assert len(points) == 1  # the previous step's fan was removed
    return np.asarray(points[0].get_offsets(), dtype=np.float64)


def test_the_drawn_fan_is_every_sample_step_and_its_mean_the_full_gradient_step(result) -> None:
    assert result.config.model == "relu-unit" and result.config.loss_name == "mse"
    overlay = FanOverlay(result)
    figure = StepFigure(result, figsize=(8, 3.5), dpi=40, overlays=[overlay])
    for step in (0, 5, result.n_steps - 1):
        figure.draw(step)
        w = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
        drawn = drawn_points(figure)
        assert drawn.shape == (len(result.data), 2)  # batch 1: one point per sample
        scale = overlay.scale
        assert scale > 1  # magnified, as the panel's arrows are
        unmagnified = w + (drawn - w) / scale
        np.testing.assert_allclose(unmagnified.mean(axis=0), full_step(result, w), atol=1e-5)
        mean = next(line for line in figure.left.lines if line.get_gid() == "fan-mean")
        np.testing.assert_allclose(
            w + (np.asarray(mean.get_xydata())[0] - w) / scale, full_step(result, w), atol=1e-5
        )
        # the magnification is the -full-gradient arrow's: the full step lands on its tip
        tip = figure.arrows[1].tip[step]
        if np.isfinite(tip).all():
            np.testing.assert_allclose(w + scale * (full_step(result, w) - w), tip, atol=1e-4)
    plt.close(figure.fig)


def left_pixels(figure: StepFigure, rgba: np.ndarray) -> np.ndarray:
    """The pixels of the left panel (its axes box, rows counted from the top)."""
    box = figure.left.get_window_extent()
    height = rgba.shape[0]
    rows = slice(int(height - box.y1), int(np.ceil(height - box.y0)))
    return rgba[rows, int(box.x0) : int(np.ceil(box.x1))]


def test_a_rendered_frame_with_the_fan_equals_a_full_draw(result) -> None:
    def frozen(overlays) -> StepFigure:
        drawing = StepFigure(result, figsize=(8, 3.5), dpi=40, overlays=overlays)
        drawing.draw(0)
        drawing.freeze_layout()
        return drawing

    streamed, full = frozen([FanOverlay(result)]), frozen([FanOverlay(result)])
    bare = frozen([])
    for step in (2, result.n_steps - 1):
        streamed.draw(step)
        frame = streamed.render().astype(int)
        full.draw(step)
        full.fig.canvas.draw()
        reference = np.asarray(full.fig.canvas.buffer_rgba()).astype(int)
        bare.draw(step)
        bare.fig.canvas.draw()
        without = np.asarray(bare.fig.canvas.buffer_rgba()).astype(int)
        # the fan is in the picture (a frame without it differs on the left panel) ...
        assert (np.abs(left_pixels(full, reference - without)).max(axis=2) > 0).sum() > 50
        # ... and the blitted frame paints the left panel exactly as a full draw does
        differs = np.abs(left_pixels(full, frame - reference)).max(axis=2)
        assert (differs > 0).sum() <= 4, (step, (differs > 0).sum())
        # (elsewhere: only the few pixels the frame without the fan differs by too)
        assert (np.abs(frame - reference).max(axis=2) > 0).sum() <= 40
        assert len(drawn_points(streamed)) == len(result.data)
    for figure in (streamed, full, bare):
        plt.close(figure.fig)


def test_a_bigger_batch_draws_a_sample_of_minibatches() -> None:
    result = sgdscape.run(sgdscape.RunConfig(grid=11, samples=12, epochs=1, batch_size=4))
    figure = StepFigure(
        result, figsize=(8, 3.5), dpi=40, overlays=[FanOverlay(result, n_batches=300)]
    )
    figure.draw(1)
    assert drawn_points(figure).shape == (300, 2)
    plt.close(figure.fig)


def test_the_fan_is_refused_for_many_inits() -> None:
    many = sgdscape.run(
        sgdscape.RunConfig(grid=11, samples=8, epochs=1, init=((1.2, -2.3), (0.5, -1.0)))
    )
    with pytest.raises(SgdscapeError, match="single-init"):
        FanOverlay(many)


def test_run_with_fan_draws_it_on_the_step_pngs_left_panel(tmp_path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from sgdscape.surfaces.cli import app

    runner = CliRunner()
    common = ["--grid", "21", "--samples", "20", "--epochs", "1", "--figures", "0,4", "-q"]
    plain = runner.invoke(app, ["run", *common, "--out", str(tmp_path / "plain")])
    fan = runner.invoke(app, ["run", *common, "--fan", "--out", str(tmp_path / "fan")])
    assert plain.exit_code == 0 and fan.exit_code == 0, (plain.output, fan.output)
    for name in ("step_00.png", "step_04.png"):
        with_fan = np.asarray(Image.open(tmp_path / "fan" / name)).astype(int)
        without = np.asarray(Image.open(tmp_path / "plain" / name)).astype(int)
        assert with_fan.shape == without.shape
        changed = np.abs(with_fan - without).max(axis=2) > 0
        columns = np.flatnonzero(changed.any(axis=0))
        # the fan (points, spokes, legend entries) is on the left panel; the right is untouched
        assert changed.sum() > 100 and columns.max() < with_fan.shape[1] // 2, name


def test_run_with_fan_refuses_many_inits_in_one_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from sgdscape.surfaces.cli import app

    result = CliRunner().invoke(
        app, ["run", "--grid", "11", "--inits", "random:3", "--epochs", "1", "--fan", "-q",
              "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "single-init" in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_export_gif_with_fan_draws_it_on_the_left_panel_of_each_frame(tmp_path) -> None:
    from PIL import Image, ImageSequence
    from typer.testing import CliRunner

    from sgdscape.surfaces.cli import app

    runner = CliRunner()
    common = ["--grid", "15", "--samples", "12", "--epochs", "1", "--steps", "0:3", "-q"]
    common += ["--size", "480x210", "--dpi", "40"]
    for name, extra in (("plain.gif", []), ("fan.gif", ["--fan"])):
        out = runner.invoke(app, ["export", *common, *extra, "--gif", str(tmp_path / name)])
        assert out.exit_code == 0, out.output

    def frames(name):
        with Image.open(tmp_path / name) as gif:
            return [np.asarray(f.convert("RGB")).astype(int) for f in ImageSequence.Iterator(gif)]

    plain, fan = frames("plain.gif"), frames("fan.gif")
    assert len(plain) == len(fan) == 3
    for without, with_fan in zip(plain, fan, strict=True):
        # (a GIF's palette shifts every colour a little: count clear changes only)
        changed = np.abs(with_fan - without).max(axis=2) > 80
        half = with_fan.shape[1] // 2
        assert changed[:, :half].sum() > 30, changed[:, :half].sum()
        assert changed[:, half:].sum() <= 3, changed[:, half:].sum()
    refused = runner.invoke(
        app, ["export", *common, "--fan", "--surface", str(tmp_path / "a.html")]
    )
    assert refused.exit_code == 2 and "--fan" in refused.output, refused.output


def test_the_explorer_with_fan_draws_every_sample_step_updated_with_the_step(result) -> None:
    pytest.importorskip("ipywidgets")
    from sgdscape.surfaces.widget import explore
    from sgdscape.views.fan import FAN_LABEL, MEAN_LABEL

    explorer = explore(result, fan=True)
    for step in (0, 7, result.n_steps - 1):
        explorer.step = step
        w = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
        traces = {trace.name.split(" (")[0]: trace for trace in explorer.figure.data if trace.name}
        points = np.column_stack([traces[FAN_LABEL].x, traces[FAN_LABEL].y]).astype(float)
        assert points.shape == (len(result.data), 2)  # batch 1: one point per sample
        assert traces[FAN_LABEL].xaxis == "x"  # on the left panel
        scale = explorer.fan_scale
        assert scale > 1
        oracle = full_step(result, w)
        np.testing.assert_allclose((w + (points - w) / scale).mean(axis=0), oracle, atol=1e-5)
        mean = np.array([traces[MEAN_LABEL].x[0], traces[MEAN_LABEL].y[0]], dtype=float)
        np.testing.assert_allclose(w + (mean - w) / scale, oracle, atol=1e-5)
        # magnified as the panel's arrows: the full step lands on the -full-gradient arrow's tip
        full = explorer.drawn_arrows["full"]
        if full is not None:
            np.testing.assert_allclose(full[0], w, atol=1e-5)
            np.testing.assert_allclose(full[1], w + scale * (oracle - w), atol=1e-4)
    plain = explore(result)
    assert not any((trace.name or "").startswith(FAN_LABEL) for trace in plain.figure.data)
