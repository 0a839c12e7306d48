"""``sgdscape run`` writes its step PNGs through one reused figure, pixel for pixel as before.

The oracle is the plain path: a fresh ``plot_step`` figure saved with ``save_figure`` (its own
constrained layout and a full draw), read back as pixels and compared with the CLI's PNGs.
"""

from __future__ import annotations

import gc
import os

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import sgdscape
from sgdscape.surfaces.cli import app
from sgdscape.surfaces.cli import run as run_command
from sgdscape.views.step_figure import plot_step, save_figure

SMALL = ["--samples", "24", "--grid", "40", "--epochs", "1"]


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGBA"))


def _run(tmp_path, *args: str):
    out = tmp_path / "out"
    shown = CliRunner().invoke(app, ["run", *SMALL, *args, "-q", "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    return out, sgdscape.run(sgdscape.load_config(out / "config.toml"))


def _assert_as_drawn_alone(out, result, steps, tmp_path) -> None:
    width = len(str(result.n_steps - 1))
    for step in steps:
        written = out / f"step_{step:0{width}d}.png"
        alone = save_figure(plot_step(result, step), tmp_path / f"alone_{step}.png")
        assert np.array_equal(_pixels(written), _pixels(alone)), step


def test_the_seed_runs_five_pngs_equal_figures_drawn_alone(tmp_path):
    out = tmp_path / "out"
    shown = CliRunner().invoke(app, ["run", "-q", "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    result = sgdscape.run(sgdscape.RunConfig())
    _assert_as_drawn_alone(out, result, [0, 25, 50, 74, 99], tmp_path)


def _drawn_alone_with_layout_of(result, step, layout_step, path):
    """``plot_step(result, step)`` drawn in full with the layout ``plot_step(result,
    layout_step)`` gets: its axes placed where that layout put them, then saved."""
    base = plot_step(result, layout_step)
    base.draw_without_rendering()
    places = [axes.get_position(original=True) for axes in base.axes]
    title = next(text for text in base.texts if text.get_text() == base.get_suptitle())
    height = title.get_position()[1]
    plt.close(base)
    figure = plot_step(result, step)
    figure.set_layout_engine(None)
    for axes, place in zip(figure.axes, places, strict=True):
        axes.set_position(place)
    figure.suptitle(figure.get_suptitle(), y=height)
    return save_figure(figure, path)


COMPARE_STEPS = ["--figures", "0,3,7,8,23", "--compare", "lr=0.05,0.2"]


def test_every_step_is_the_full_drawing_in_the_first_steps_layout_or_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(run_command, "_can_fork", lambda *args: False)  # all in this process
    laid_out = []
    real_init = run_command._LaidOut.__init__

    def init(self, result, step, **options):
        laid_out.append(step)
        real_init(self, result, step, **options)

    monkeypatch.setattr(run_command._LaidOut, "__init__", init)
    out, result = _run(tmp_path, *COMPARE_STEPS)
    assert laid_out[0] == 0 and 1 < len(laid_out) < 5  # some steps reuse it, some need their own
    for step in (0, 3, 7, 8, 23):
        layout = step if step in laid_out else 0
        written = _pixels(out / f"step_{step:02d}.png")
        drawn = _drawn_alone_with_layout_of(result, step, layout, tmp_path / f"{step}.png")
        assert np.array_equal(written, _pixels(drawn)), (step, layout)
        if step == layout:  # laid out for itself: exactly plot_step's own picture
            alone = save_figure(plot_step(result, step), tmp_path / f"alone_{step}.png")
            assert np.array_equal(written, _pixels(alone)), step


def _serial_and_forked(tmp_path, monkeypatch, *args: str):
    """The PNGs of one run drawn all in this process, and drawn with a forked child."""
    with monkeypatch.context() as serial:
        serial.setattr(run_command, "_can_fork", lambda *args: False)
        alone, _ = _run(tmp_path / "serial", *args)
    forks = []
    real_fork = os.fork

    def fork():
        forks.append(os.getpid())
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    shared, _ = _run(tmp_path / "forked", *args)
    assert forks == [os.getpid()]  # the run did fork, once
    names = sorted(path.name for path in alone.glob("step_*.png"))
    assert names == sorted(path.name for path in shared.glob("step_*.png")) and len(names) == 5
    return [(_pixels(alone / name), _pixels(shared / name)) for name in names]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the platform cannot fork")
def test_a_forked_child_draws_the_same_pngs(tmp_path, monkeypatch):
    for serial, forked in _serial_and_forked(tmp_path, monkeypatch, *COMPARE_STEPS):
        assert np.array_equal(serial, forked)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the platform cannot fork")
def test_a_failing_child_s_share_is_drawn_by_the_parent(tmp_path, monkeypatch):
    parent = os.getpid()
    real_write = run_command._write_steps

    def write(*args, **kwargs):
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        yield from real_write(*args, **kwargs)

    monkeypatch.setattr(run_command, "_write_steps", write)
    for serial, forked in _serial_and_forked(tmp_path, monkeypatch, *COMPARE_STEPS):
        assert np.array_equal(serial, forked)
    assert not list((tmp_path / "forked" / "out").glob(".*.tmp"))  # no temporary left


def test_wider_titles_or_tick_labels_do_not_fit():
    from matplotlib.transforms import Bbox

    box = Bbox.from_extents(10, 10, 100, 50)
    room = ((0, 0), [box])
    assert run_command._fits(((0, 0), [Bbox.from_extents(10.2, 12, 100.3, 50)]), room)
    assert not run_command._fits(((0, 0), [Bbox.from_extents(8, 10, 100, 50)]), room)
    assert not run_command._fits(((0, 0), [Bbox.from_extents(10, 10, 100, 52)]), room)
    assert not run_command._fits(((1, 0), [box]), room)  # a title on two lines


def test_the_garbage_collector_is_left_as_it_was(tmp_path):
    """The run pauses the collector while torch and matplotlib import and freezes what they
    made while it draws; afterwards (or after a bad option) nothing stays paused or frozen."""
    assert gc.isenabled() and gc.get_freeze_count() == 0
    _run(tmp_path, "--figures", "0,1,2")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    shown = CliRunner().invoke(app, ["run", "--lr", "-1", "--out", str(tmp_path / "bad")])
    assert shown.exit_code == 2, shown.output
    assert gc.isenabled() and gc.get_freeze_count() == 0
