"""Views of real networks: the 3-D surface, the HTML player's packing, the GIF, the explorer, the CLI.

Oracles: the view's own arrays (its landscape through ``np.log``, its projected path, its
stored minibatch landscapes), ``scipy.interpolate.RegularGridInterpolator`` for heights
on the surface, Pillow for GIF frames and ``plotly.io.from_json`` for the written pages.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from torch import nn
from typer.testing import CliRunner

import sgdscape
from arrow_oracle import check_arrow
from sgdscape.errors import SgdscapeError
from sgdscape.networks.examples import two_moons
from sgdscape.networks.recording import StochasticView, load_view, record_training, save_view

pytest.importorskip("plotly")


def small_mlp() -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))


@pytest.fixture(scope="module")
def view() -> StochasticView:
    """12 steps (batch 20, 2 epochs of 120 samples) on a 9x9 PCA plane, all steps stored."""
    recording = record_training(
        small_mlp(),
        nn.CrossEntropyLoss(),
        two_moons(n=120, seed=1),
        lr=0.5,
        batch_size=20,
        epochs=2,
    )
    return sgdscape.stochastic_view(recording, grid=9)


@pytest.fixture(scope="module")
def saved(view: StochasticView, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_view(view, tmp_path_factory.mktemp("view") / "network.npz")


def interpolate(surface, z: np.ndarray, points: np.ndarray) -> np.ndarray:
    from scipy.interpolate import RegularGridInterpolator

    bilinear = RegularGridInterpolator((surface.w2, surface.w1), z, method="linear")
    return bilinear(np.stack([points[:, 1], points[:, 0]], axis=1))


# --------------------------------------------------------------------------- 3-D surface


def test_network_surface_is_the_log_landscape_with_the_path_on_it(view) -> None:
    from sgdscape.views.network_figure import network_surface

    surface = view.landscape
    figure = network_surface(view, lift=0.0)
    trace = figure.data[0]
    assert trace.type == "surface"
    np.testing.assert_allclose(np.asarray(trace.z), np.log(surface.risk.astype(np.float64)))
    np.testing.assert_array_equal(np.asarray(trace.x), surface.w1)
    np.testing.assert_array_equal(np.asarray(trace.y), surface.w2)
    assert trace.colorbar.title.text == "log full-data loss"
    scene = figure.layout.scene
    assert scene.xaxis.title.text == surface.labels[0] and surface.labels[0].startswith("PC1")
    assert scene.yaxis.title.text == surface.labels[1]
    assert scene.zaxis.title.text == "log full-data loss"
    line = figure.data[1]
    assert line.type == "scatter3d"
    path = view.path()
    np.testing.assert_allclose(np.asarray(line.x), path[:, 0])
    np.testing.assert_allclose(np.asarray(line.y), path[:, 1])
    expected = interpolate(surface, np.log(surface.risk.astype(np.float64)), path)
    np.testing.assert_allclose(np.asarray(line.z), expected, rtol=1e-6, atol=1e-9)
    # by default the line is raised a little so the surface does not hide it
    lifted = np.asarray(network_surface(view).data[1].z)
    assert (lifted > expected).all()
    np.testing.assert_allclose(np.asarray(figure.data[2].x), path[:1, 0])  # start marker
    np.testing.assert_allclose(np.asarray(figure.data[3].y), path[-1:, 1])  # end marker


def test_surface_of_a_plain_slice_and_of_a_run() -> None:
    from sgdscape.views.network_figure import network_surface
    from sgdscape.views.plotly_figures import run_surface, surface_heights

    model = small_mlp()
    directions = sgdscape.random_directions(model, seed=2)
    data = two_moons(n=60, seed=2)
    surface = sgdscape.slice_landscape(
        model, nn.CrossEntropyLoss(), data, directions=directions, grid=7
    )
    figure = network_surface(surface, log=False)
    assert len(figure.data) == 1 and figure.layout.scene.zaxis.title.text == "loss"
    np.testing.assert_allclose(np.asarray(figure.data[0].z), surface.risk)
    assert figure.layout.scene.xaxis.title.text == "direction 1"

    result = sgdscape.run(sgdscape.RunConfig(grid=15, samples=10))
    figure = run_surface(result, lift=0.0)
    risk = result.landscape.risk.astype(np.float64)
    assert (risk > 0).all()
    np.testing.assert_allclose(np.asarray(figure.data[0].z), np.log(risk))
    assert figure.layout.scene.xaxis.title.text == "w1"
    assert figure.layout.scene.zaxis.title.text == "log empirical risk"
    path = result.path()
    np.testing.assert_allclose(np.asarray(figure.data[1].x), path[:, 0])
    np.testing.assert_allclose(np.asarray(figure.data[1].y), path[:, 1])
    inside = np.isfinite(np.asarray(figure.data[1].z, dtype=np.float64))
    assert inside.any()
    np.testing.assert_allclose(
        np.asarray(figure.data[1].z, dtype=np.float64)[inside],
        interpolate(result.landscape, np.log(risk), path[inside]),
        rtol=1e-6,
    )
    # heights: outside the grid and non-finite points give NaN
    w = result.landscape
    heights = surface_heights(w.w1, w.w2, risk, np.array([[99.0, 0.0], [np.nan, 0.0]]))
    assert np.isnan(heights).all()

    with pytest.raises(SgdscapeError, match="StochasticView or a Landscape, got str"):
        network_surface("network.npz")  # type: ignore[arg-type]


def test_surface_page_is_written_atomically_and_holds_the_figure(view, tmp_path) -> None:
    import plotly.io

    from sgdscape.surfaces.export import export_figure_html
    from sgdscape.views.network_figure import network_surface

    page = tmp_path / "surface.html"
    page.write_text("old")
    with pytest.raises(SgdscapeError, match=r"must end in \.html"):
        export_figure_html(network_surface(view), tmp_path / "surface.png")
    assert page.read_text() == "old" and not (tmp_path / "surface.png").exists()
    export_figure_html(network_surface(view), page, about="a <b>test</b>")
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "a &lt;b&gt;test&lt;/b&gt;" in text
    assert not re.search(r"<script[^>]+src=", text)  # nothing fetched from the network
    figure_json = re.search(
        r'<script id="sgdscape-figure" type="application/json">(.*?)</script>', text, re.S
    )
    assert figure_json is not None
    figure = plotly.io.from_json(figure_json.group(1))
    assert figure.data[0].type == "surface"
    z = figure.data[0].z
    if isinstance(z, dict):  # plotly.py >= 6 writes arrays as base64 typed arrays
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(
            [int(n) for n in str(z["shape"]).split(",")]
        )
    np.testing.assert_allclose(np.asarray(z), np.log(view.landscape.risk.astype(np.float64)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surface.html"]  # no temporary left


# --------------------------------------------------------------------------- HTML player


def test_network_player_packs_the_views_own_arrays(view) -> None:
    from sgdscape.views.network_figure import network_player
    from sgdscape.views.plotly_figures import decode_log_grids

    packed = network_player(view)
    frames = packed.frames
    assert frames["steps"] == list(range(view.n_steps))
    last = view.n_steps - 1
    np.testing.assert_allclose(np.array(frames["path"]), view.path()[: last + 1], rtol=1e-6)
    grids = decode_log_grids(frames["grids"])
    for i, step in enumerate(frames["steps"]):
        expected = np.log(view.batch_landscape(step).astype(np.float64))
        grid = grids[frames["landscape"][i]]
        np.testing.assert_allclose(grid, expected, atol=np.ptp(expected) / 60000 + 1e-6)
        tip = frames["minibatch_tip"][i]
        drawn = None if tip[0] is None else (view.path()[step], np.array(tip, dtype=float))
        surface = view.landscape
        window = (surface.w1[0], surface.w1[-1], surface.w2[0], surface.w2[-1])
        # the arrow points along the -gradient, in the panel; a zero gradient draws none
        check_arrow(drawn, view.grads_plane[step], window, frames["minibatch_label"][i])
        assert f"step {step}/{view.n_steps - 1}" in frames["title"][i]
    risk = np.log(view.landscape.risk.astype(np.float64))
    np.testing.assert_allclose(
        grids[frames["risk_landscape"]], risk, atol=np.ptp(risk) / 60000 + 1e-6
    )
    assert frames["full_tip"] is None
    subset = network_player(view, steps=[2, 5]).frames
    assert subset["steps"] == [2, 5] and len(subset["path"]) == 6


def test_only_stored_steps_are_shown(view, saved) -> None:
    from sgdscape.views.network_figure import network_player, plot_network_step

    loaded = load_view(saved)
    assert loaded.landscape.sample_loss is None  # minibatch landscapes come from the file
    few = dataclasses.replace(
        loaded, steps=loaded.steps[[1, 4]], batch_landscapes=loaded.batch_landscapes[[1, 4]]
    )
    assert network_player(few).frames["steps"] == [1, 4]
    with pytest.raises(SgdscapeError, match="step 2 has no stored minibatch landscape"):
        network_player(few, steps=[2])
    with pytest.raises(SgdscapeError, match="step 2 has no stored minibatch landscape"):
        plot_network_step(few, 2)


# --------------------------------------------------------------------------- matplotlib, GIF


def test_step_figure_redraws_in_place(view) -> None:
    from sgdscape.views.step_figure import StepFigure

    drawing = StepFigure(view)
    path = view.path()
    for step in (3, 9):
        figure = drawing.draw(step)
        left, right = figure.axes[0], figure.axes[1]
        assert f"step {step}:" in left.get_title()
        (marker,) = [c for c in left.collections if isinstance(c, PathCollection)]
        np.testing.assert_allclose(marker.get_offsets()[0], path[step], rtol=1e-6)
        line = right.get_lines()[1]  # after the faint whole path
        np.testing.assert_allclose(line.get_xdata(), path[: step + 1, 0])
        np.testing.assert_allclose(line.get_ydata(), path[: step + 1, 1])
    assert len(figure.axes) == 4  # two panels, two colour bars: not one more per redraw
    plt.close(figure)


def test_gif_has_one_frame_per_shown_step(view, tmp_path) -> None:
    from PIL import Image

    from sgdscape.views.network_figure import animate_network

    gif = tmp_path / "network.gif"
    animate_network(view, gif, steps=[0, 4, 11], size=(640, 300), dpi=50)
    with Image.open(gif) as image:
        assert image.n_frames == 3 and image.size == (640, 300)
    with pytest.raises(SgdscapeError, match="step 40"):
        animate_network(view, tmp_path / "bad.gif", steps=[40])
    assert not (tmp_path / "bad.gif").exists()


# --------------------------------------------------------------------------- explorer


def test_explorer_slider_draws_the_views_arrays(view, saved) -> None:
    pytest.importorskip("ipywidgets")
    from sgdscape.surfaces.widget import NetworkExplorer

    explorer = sgdscape.explore(view)
    assert isinstance(explorer, NetworkExplorer)
    path = view.path()
    np.testing.assert_allclose(
        explorer.drawn_right_z, np.log(view.landscape.risk.astype(np.float64)), rtol=1e-6
    )
    for step in (0, 5, view.n_steps - 1):
        explorer.slider.value = explorer.steps.index(step)  # as the user drags it
        assert explorer.step == step
        np.testing.assert_allclose(
            explorer.drawn_left_z,
            np.log(view.batch_landscape(step).astype(np.float64)),
            rtol=1e-5,
            atol=1e-6,
        )
        np.testing.assert_allclose(explorer.drawn_iterate, path[step], rtol=1e-5)
        np.testing.assert_allclose(explorer.drawn_path, path[: step + 1], rtol=1e-5)
        arrows = explorer.drawn_arrows
        assert arrows["full"] is None  # no full gradient recorded for a network
        tail, head = arrows["minibatch"]
        np.testing.assert_allclose(tail, path[step], rtol=1e-5)
        surface = view.landscape
        window = (surface.w1[0], surface.w1[-1], surface.w2[0], surface.w2[-1])
        check_arrow((tail, head), view.grads_plane[step], window, explorer.arrow_notes[0])
        assert f"step {step}/{view.n_steps - 1}" in explorer.caption
    explorer.step = 7  # the programmatic way
    assert explorer.slider.value == explorer.steps.index(7)
    with pytest.raises(SgdscapeError, match="step 99 has no stored"):
        explorer.step = 99

    from_file = sgdscape.explore(saved)
    assert isinstance(from_file, NetworkExplorer) and from_file.steps == explorer.steps
    with pytest.raises(SgdscapeError, match="recorded, not recomputed; drop lr"):
        sgdscape.explore(view, lr=0.1)


# --------------------------------------------------------------------------- CLI


def invoke(*args: str):
    from sgdscape.surfaces.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_network_writes_surface_html_and_gif(tmp_path) -> None:
    from PIL import Image

    out = tmp_path / "moons"
    outcome = invoke(
        "network",
        "--example",
        "moons",
        "--grid",
        "7",
        "--steps",
        "1",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--surface",
        "--html",
        "--gif",
        "-q",
    )
    assert outcome.exit_code == 0, outcome.output
    view = load_view(out / "network.npz")
    for name in ("surface.html", "network.html", "network.gif"):
        assert f"wrote {out / name}" in outcome.output
    assert "plotly" in (out / "surface.html").read_text()[:2000].lower()
    assert '"steps":[0,1,' in (out / "network.html").read_text()
    with Image.open(out / "network.gif") as image:
        assert image.n_frames == view.n_steps


def test_cli_export_view(saved, view, tmp_path) -> None:
    from PIL import Image

    page, gif, surface = tmp_path / "v.html", tmp_path / "v.gif", tmp_path / "s.html"
    outcome = invoke(
        "export",
        "--view",
        str(saved),
        "--html",
        str(page),
        "--gif",
        str(gif),
        "--surface",
        str(surface),
        "--steps",
        "2:8:2",
        "--size",
        "900x390",
        "-q",
    )
    assert outcome.exit_code == 0, outcome.output
    assert '"steps":[2,4,6]' in page.read_text()
    with Image.open(gif) as image:
        assert image.n_frames == 3 and image.size == (900, 390)
    assert surface.stat().st_size > 100_000

    run_surface = tmp_path / "run.html"
    outcome = invoke("export", "--grid", "8", "--samples", "6", "--surface", str(run_surface))
    assert outcome.exit_code == 0, outcome.output
    assert run_surface.exists()

    for args, message in (
        (["--view", str(saved), "--html", "x.html", "--lr", "0.1"], "drop --from and the run"),
        (["--view", str(tmp_path / "none.npz"), "--html", "x.html"], "no saved network view"),
        (["--view", str(saved), "--surface", "x.png"], "--surface 'x.png' must end in .html"),
    ):
        outcome = invoke("export", *args)
        assert outcome.exit_code == 2, outcome.output
        lines = outcome.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines


def test_cli_refuses_files_that_are_not_views_in_one_line(saved, tmp_path) -> None:
    # a text file, a run's run.npz, and a view with an array missing: each one line, exit 2
    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    run_like = tmp_path / "run.npz"
    np.savez(run_like, w1=np.zeros(3), risk=np.zeros((3, 3)))
    with np.load(saved) as archive:
        partial = {key: archive[key] for key in archive.files if key != "grads_plane"}
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **partial)
    expected = {
        text: "not a readable .npz archive",
        run_like: "it lacks",
        damaged: "it lacks grads_plane",
    }
    for path, message in expected.items():
        target = tmp_path / "out.html"
        for command in (
            ("export", "--view", str(path), "--html", str(target)),
            ("serve", "--view", str(path)),
        ):
            outcome = invoke(*command)
            assert outcome.exit_code == 2, (command, outcome.output)
            lines = outcome.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("sgdscape: error:"), lines
            assert message in lines[0]
        assert not target.exists()
