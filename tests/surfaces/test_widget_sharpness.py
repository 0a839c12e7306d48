"""The explorer's sharpness row (issue 17): read back from the FigureWidget after setting
the step, against ``sgdscape.curvature`` computed independently and ``2 / lr``."""

from __future__ import annotations

import numpy as np
import pytest

import sgdscape
from sgdscape import RunConfig, SgdscapeError
from sgdscape.records.run import with_curvature

pytest.importorskip("ipywidgets")

from sgdscape.surfaces.widget import explore
from sgdscape.surfaces.widget.explorer import Explorer


@pytest.fixture(scope="module")
def plain() -> sgdscape.RunResult:
    return sgdscape.run(RunConfig(grid=16, samples=30, batch_size=3, epochs=1, lr=0.08))


def named(explorer: Explorer, text: str):
    (found,) = [t for t in explorer.figure.data if t.name and t.name.startswith(text)]
    return found


def marker(explorer: Explorer) -> tuple[float, float, bool]:
    shape = explorer.figure.layout.shapes[-1]
    assert shape.xref == "x3" and shape.yref == "y3"
    y = float(shape.yanchor)  # a pixel-sized shape's anchor is in data units, log axis or not
    return float(shape.xanchor), y, bool(shape.visible is not False)


def test_a_run_with_curvature_gets_the_row_and_the_step_moves_the_marker(plain) -> None:
    oracle = sgdscape.curvature(plain)
    explorer = Explorer(with_curvature(plain))
    risk = named(explorer, "λmax of the risk")
    np.testing.assert_allclose(np.asarray(risk.y, dtype=float), oracle.lambda_max, rtol=1e-6)
    line = named(explorer, "2 / lr")
    np.testing.assert_allclose(np.asarray(line.y, dtype=float), 2 / 0.08, rtol=1e-12)
    assert line.line.dash == "dash"
    batch = np.asarray(named(explorer, "λmax of the step's minibatch").y, dtype=float)
    expected = oracle.batch_lambda_max
    if explorer.figure.layout.yaxis3.type == "log":
        expected = np.where(expected > 0, expected, np.nan)
    np.testing.assert_allclose(batch, expected, rtol=1e-6)
    for step in (0, 6, 9):
        explorer.step = step
        x, y, visible = marker(explorer)
        assert visible and x == step
        assert y == pytest.approx(oracle.lambda_max[step], rel=1e-9)


def test_curvature_true_computes_it_and_keeps_it_through_a_recompute(plain) -> None:
    explorer = explore(plain, curvature=True)
    assert explorer.result.curvatures
    explorer.set_controls(lr=0.05)
    oracle = sgdscape.curvature(sgdscape.run(plain.config.replace(lr=0.05)))
    explorer.step = 3
    assert marker(explorer)[1] == pytest.approx(oracle.lambda_max[3], rel=1e-6)
    risk = np.asarray(named(explorer, "λmax of the risk").y, dtype=float)
    np.testing.assert_allclose(risk, oracle.lambda_max, rtol=1e-6)
    line = np.asarray(named(explorer, "2 / lr").y, dtype=float)
    np.testing.assert_allclose(line, 2 / 0.05, rtol=1e-12)


def test_without_curvature_no_row_and_a_bad_option_is_clear(plain) -> None:
    explorer = Explorer(plain)
    assert "yaxis3" not in explorer.figure.layout.to_plotly_json()
    assert not [t for t in explorer.figure.data if t.name and "λmax" in t.name]
    with pytest.raises(SgdscapeError, match="curvature must be True, False or None, got 'yes'"):
        explore(plain, curvature="yes")
