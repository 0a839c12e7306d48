"""The sharpness row of the Plotly step views (issue 17): λmax of the risk and of each
minibatch against step, the dashed 2/lr line, and the marker on the shown step.

Oracles: ``sgdscape.curvature`` computed independently of the run's attached record, and
``2 / lr`` from the run's config; values are read back from the figure JSON.
"""

from __future__ import annotations

import numpy as np
import pytest

import sgdscape
from sgdscape import RunConfig
from sgdscape.records.run import with_curvature
from sgdscape.views.plotly_figures import (
    SHARPNESS_HEIGHT,
    SHARPNESS_TRACES,
    TRACES,
    player,
    step_figure,
)


@pytest.fixture(scope="module")
def plain() -> sgdscape.RunResult:
    return sgdscape.run(RunConfig(grid=20, samples=30, batch_size=3, epochs=1, lr=0.08))


@pytest.fixture(scope="module")
def curved(plain: sgdscape.RunResult) -> sgdscape.RunResult:
    return with_curvature(plain)


def trace(figure: dict, name: str) -> dict:
    return figure["data"][len(TRACES) + SHARPNESS_TRACES.index(name)]


def test_player_draws_the_independent_curvature_and_the_2_over_lr_line(plain, curved) -> None:
    oracle = sgdscape.curvature(plain)  # computed afresh, not the attached record
    figure = player(curved).figure
    assert len(figure["data"]) == len(TRACES) + len(SHARPNESS_TRACES)
    risk = trace(figure, "sharpness_risk")
    assert risk["xaxis"] == "x3" and risk["yaxis"] == "y3"
    assert risk["x"] == list(range(plain.n_steps))
    np.testing.assert_allclose(np.array(risk["y"], dtype=float), oracle.lambda_max, rtol=1e-6)
    batch = np.array(trace(figure, "sharpness_batch")["y"], dtype=float)
    expected = oracle.batch_lambda_max
    log = figure["layout"]["yaxis3"]["type"] == "log"
    if log:  # a minibatch λmax <= 0 has no place on a log axis
        expected = np.where(expected > 0, expected, np.nan)
    np.testing.assert_allclose(batch, expected, rtol=1e-6)
    line = trace(figure, "sharpness_threshold")
    assert line["line"]["dash"] == "dash"
    np.testing.assert_allclose(np.array(line["y"], dtype=float), 2 / 0.08, rtol=1e-12)
    assert "2 / lr" in line["name"]
    # the step panels keep their height; the row adds its own
    assert figure["layout"]["height"] == player(plain).figure["layout"]["height"] + SHARPNESS_HEIGHT
    assert min(figure["layout"]["yaxis"]["domain"]) > max(figure["layout"]["yaxis3"]["domain"])


def test_player_frames_put_the_marker_on_each_steps_lambda_max(plain, curved) -> None:
    oracle = sgdscape.curvature(plain)
    frames = player(curved, steps=[2, 5]).frames
    sharp = frames["sharpness"]
    assert sharp["trace"] == len(TRACES) + SHARPNESS_TRACES.index("sharpness_step")
    np.testing.assert_allclose(sharp["lambda_max"], oracle.lambda_max, rtol=1e-6)


def test_step_figure_marks_the_step(plain, curved) -> None:
    oracle = sgdscape.curvature(plain)
    figure = step_figure(curved, 4).to_dict()
    marker = trace(figure, "sharpness_step")
    assert list(marker["x"]) == [4]
    assert marker["y"][0] == pytest.approx(oracle.lambda_max[4], rel=1e-6)


def test_a_run_without_curvature_has_no_sharpness_row(plain) -> None:
    packed = player(plain)
    assert len(packed.figure["data"]) == len(TRACES)
    assert packed.frames["sharpness"] is None
    assert "xaxis3" not in packed.figure["layout"]


def test_cli_export_of_a_saved_run_with_curvature_has_the_row(tmp_path, plain, curved) -> None:
    import json
    import re

    from typer.testing import CliRunner

    from sgdscape.surfaces.cli import app

    sgdscape.save(curved, tmp_path / "saved")
    page = tmp_path / "saved.html"
    outcome = CliRunner().invoke(
        app, ["export", "--from", str(tmp_path / "saved"), "--html", str(page), "-q"]
    )
    assert outcome.exit_code == 0, outcome.output
    found = re.search(r'id="sgdscape-frames"[^>]*>(.*?)</script>', page.read_text(), re.S)
    sharp = json.loads(found.group(1))["sharpness"]
    oracle = sgdscape.curvature(plain).lambda_max
    np.testing.assert_allclose(np.array(sharp["lambda_max"], dtype=float), oracle, rtol=1e-6)
