"""The web app's sharpness panel (issue 17): switched on by ``?sharpness=1`` (or its
check box), drawn from the exact Hessians; read back from the page payload's figure dicts
against ``sgdscape.curvature`` of the same run computed independently and ``2 / lr``."""

from __future__ import annotations

import numpy as np
import pytest

import sgdscape
from sgdscape.surfaces.app.compute import page_payload
from sgdscape.surfaces.app.state import AppState, parse_query, to_query


def test_the_query_switches_the_panel_on_and_round_trips() -> None:
    state, notices = parse_query("?sharpness=1&lr=0.1")
    assert notices == [] and state.sharpness and state.lr == 0.1
    assert "sharpness=1" in to_query(state)
    assert "sharpness" not in to_query(state.replace(sharpness=False))
    assert parse_query(to_query(state))[0] == state


@pytest.mark.parametrize("value", ["maybe", "2", "on%20please"])
def test_a_bad_sharpness_value_is_ignored_with_a_notice(value: str) -> None:
    state, notices = parse_query(f"?sharpness={value}&lr=0.1")
    assert not state.sharpness and state.lr == 0.1  # the rest of the link still applies
    assert len(notices) == 1 and "ignored sharpness=" in notices[0]
    assert "not a valid value" in notices[0]


def test_the_payload_draws_the_independent_curvature_and_the_2_over_lr_line() -> None:
    state = AppState(samples=30, grid=30, lr=0.08, batch=3, sharpness=True)
    payload = page_payload(state, use_cache=False)
    oracle = sgdscape.curvature(sgdscape.run(state.to_config()))
    figure = payload["figures"]["sharpness"]
    batch, risk, line, marker = figure["data"]
    np.testing.assert_allclose(np.array(risk["y"], dtype=float), oracle.lambda_max, rtol=1e-6)
    np.testing.assert_allclose(
        np.array(payload["sharpness"], dtype=float), oracle.lambda_max, rtol=1e-5
    )
    expected = oracle.batch_lambda_max
    if figure["layout"]["yaxis"]["type"] == "log":
        expected = np.where(expected > 0, expected, np.nan)
    np.testing.assert_allclose(np.array(batch["y"], dtype=float), expected, rtol=1e-6)
    np.testing.assert_allclose(np.array(line["y"], dtype=float), 2 / 0.08, rtol=1e-12)
    assert line["line"]["dash"] == "dash" and marker["x"] == []
    assert all(t["xaxis"] == "x" and t["yaxis"] == "y" for t in figure["data"])


def test_without_the_switch_there_is_no_panel_and_no_hessian_work() -> None:
    payload = page_payload(AppState(samples=30, grid=30), use_cache=False)
    assert "sharpness" not in payload["figures"] and "sharpness" not in payload
