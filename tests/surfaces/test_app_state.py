"""The web app's URL state, caps and compact payload (no browser, no Dash server)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import numpy as np
import pytest

from sgdscape.core.models import MODELS
from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunConfig
from sgdscape.surfaces.app import state as app_state
from sgdscape.surfaces.app.state import (
    AppState,
    parse_query,
    run_key,
    state_from_controls,
    to_query,
)


def test_default_state_is_the_seed_run_and_has_an_empty_query():
    config = AppState().to_config()
    assert (config.lr, config.init, config.batch_size, config.optimizer) == (
        0.05,
        (1.2, -2.3),
        1,
        "sgd",
    )
    assert to_query(AppState()) == ""
    assert parse_query("") == (AppState(), [])
    assert parse_query(None) == (AppState(), [])


@pytest.mark.parametrize(
    "state",
    [
        AppState(optimizer="adam", lr=0.02, beta1=0.8, batch=5, sampling="shuffle", step=7),
        AppState(model="relu-unit-bias", init=(0.5, -1.25), schedule="step", step_gamma=0.3),
        AppState(noise=0.5, samples=40, seed=12, nesterov=True, momentum=0.9, grid=100),
    ],
)
def test_query_round_trip(state):
    parsed, notices = parse_query(to_query(state))
    assert notices == []
    assert parsed == state


def test_query_is_readable_and_holds_only_changes():
    query = to_query(AppState(lr=0.1, init=(1.0, 2.0)))
    assert parse_qs(query.lstrip("?")) == {"lr": ["0.1"], "init": ["1,2"]}


def test_pins_round_trip_and_are_capped():
    pinned = run_key(AppState(lr=0.2))
    state = AppState(pins=(pinned,))
    parsed, notices = parse_query(to_query(state))
    assert parsed.pins == (pinned,) and notices == []
    many = "&".join(["pin=" + "lr%3D0.1"] * (app_state.MAX_PINS + 2))
    parsed, notices = parse_query("?" + many)
    assert len(parsed.pins) == app_state.MAX_PINS
    assert any("keeps the first" in n for n in notices)


@pytest.mark.parametrize(
    ("query", "expected_in_notice"),
    [
        ("?lr=abc", "lr"),
        ("?lr=nan", "lr"),
        ("?n=1e400", "n"),
        ("?opt=__import__('os')", "opt"),
        ("?init=1", "init"),
        ("?step=1.5", "step"),
        ("?whatever=1", "whatever"),
    ],
)
def test_bad_values_fall_back_to_defaults_with_a_notice(query, expected_in_notice):
    parsed, notices = parse_query(query)
    assert parsed == AppState()
    assert notices and expected_in_notice in " ".join(notices)


def test_invalid_combination_falls_back_to_all_defaults():
    parsed, notices = parse_query("?lr=0.3&batch=500")  # batch > samples (100)
    assert parsed == AppState()
    assert "batch" in notices[0] and "defaults" in notices[0]


def test_overlong_query_is_refused():
    parsed, notices = parse_query("?lr=0.1&" + "x" * (app_state.MAX_QUERY_CHARS + 1))
    assert parsed == AppState() and "too long" in notices[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"samples": app_state.MAX_SAMPLES + 1}, "cap"),
        ({"grid": 70}, "grid"),
        ({"epochs": app_state.MAX_EPOCHS + 1}, "cap"),
        ({"epochs": 100, "samples": 100, "batch": 1}, "steps"),
        ({"lr": 1e6}, "cap"),
        ({"seed": 2**40}, "seed"),
        ({"nesterov": True, "momentum": 0.0}, "Nesterov"),
    ],
)
def test_caps_give_clear_errors(changes, message):
    with pytest.raises(SgdscapeError, match=message):
        AppState(**changes).to_config()


def test_frame_cap():
    app_state.check_frame_cells(100, 60)
    with pytest.raises(SgdscapeError, match="cap"):
        app_state.check_frame_cells(1000, 100)


def test_state_from_controls_converts_and_refuses_empty_values():
    state = state_from_controls({"lr": 0.2, "batch": 4.0, "nesterov": True}, AppState())
    assert (state.lr, state.batch, state.nesterov) == (0.2, 4, True)
    with pytest.raises(SgdscapeError, match="lr"):
        state_from_controls({"lr": None}, AppState())
    with pytest.raises(SgdscapeError, match=r"batch must be an integer, got 2\.5"):
        state_from_controls({"batch": 2.5}, AppState())


def test_optimizer_options_only_for_the_chosen_optimizer():
    assert AppState(optimizer="adam", beta1=0.8).optimizer_options() == {"betas": (0.8, 0.999)}
    assert AppState(optimizer="sgd", momentum=0.9).optimizer_options() == {"momentum": 0.9}
    assert AppState(optimizer="adagrad", momentum=0.9).optimizer_options() == {}
    for name, controls in app_state.OPTIMIZER_CONTROLS.items():
        AppState(optimizer=name).to_config()  # every optimizer is reachable
        assert set(controls) <= set(AppState.__dataclass_fields__)


def test_payload_decodes_to_the_minibatch_landscape():
    """The browser's decoding of the compact frames matches RunResult.batch_landscape."""
    pytest.importorskip("plotly")
    from sgdscape.surfaces.app.compute import compute_result, page_payload

    for state in (AppState(grid=30), AppState(grid=30, batch=10), AppState(grid=30, batch=100)):
        payload = page_payload(state)
        result = compute_result(state)
        frames = payload["frames"]
        codes = np.frombuffer(base64.b64decode(frames["codes"]), dtype=np.uint8)
        codes = codes.reshape(-1, *frames["shape"]).astype(np.float64)
        lo, hi = np.asarray(frames["lo"]), np.asarray(frames["hi"])
        logs = lo[:, None, None] + codes * ((hi - lo) / frames["levels"])[:, None, None]
        for step in (0, result.n_steps // 2, result.n_steps - 1):
            ids = payload["step_frames"][step]
            shown = np.log(np.exp(logs[ids]).mean(axis=0))
            truth = np.log(np.maximum(result.batch_landscape(step), 1e-30))
            # uint8 codes of the log: half a level of error, where the loss is not ~0
            tolerance = 0.5 * (hi[ids].max() - lo[ids].min()) / frames["levels"] + 1e-6
            mask = truth > np.percentile(truth, 5)
            assert np.abs(shown - truth)[mask].max() <= tolerance * 1.01
        np.testing.assert_allclose(payload["path"], result.path(), atol=1e-6)
        assert payload["n_steps"] == result.n_steps


def test_serve_refuses_a_non_loopback_host_without_the_flag():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    done = subprocess.run(
        [sys.executable, "-m", "sgdscape", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("sgdscape: error: --host '0.0.0.0'")
    assert "--allow-remote" in done.stderr and done.stderr.count("\n") == 1


def test_downloads_are_the_run_files():
    pytest.importorskip("dash")
    import io

    from sgdscape import RunConfig, load_config, run
    from sgdscape.surfaces.app.server import download_file

    state = AppState(grid=30, lr=0.1, batch=5)
    truth = run(state.to_config())

    def content(what: str) -> bytes:
        data = download_file(state, what, 3)
        return base64.b64decode(data["content"]) if data.get("base64") else data["content"]

    with np.load(io.BytesIO(content("dl-npz"))) as archive:
        np.testing.assert_array_equal(archive["iterates"], truth.trajectory.iterates)
        np.testing.assert_array_equal(archive["risk"], truth.landscape.risk)
    toml = content("dl-toml")
    from pathlib import Path
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as folder:
        (Path(folder) / "config.toml").write_bytes(toml)
        assert load_config(Path(folder) / "config.toml") == truth.config
    assert isinstance(truth.config, RunConfig)
    assert content("dl-png").startswith(b"\x89PNG")


def _every_control_setting():
    from sgdscape import MODELS, OPTIMIZERS, PROBLEMS, SCHEDULES
    from sgdscape.core.train import SAMPLINGS

    yield from (AppState(grid=30, model=m) for m in MODELS)
    yield from (AppState(grid=30, problem=p) for p in PROBLEMS)
    yield from (AppState(grid=30, optimizer=o, lr=0.01) for o in OPTIMIZERS)
    yield from (AppState(grid=30, schedule=s) for s in SCHEDULES)
    yield from (AppState(grid=30, sampling=s, batch=7, epochs=2) for s in SAMPLINGS)
    yield AppState(grid=30, optimizer="sgd", momentum=0.9, nesterov=True)


def test_every_registry_entry_gives_a_strict_json_payload():
    """Every model, problem, optimizer, schedule and sampling runs through the app."""
    pytest.importorskip("plotly")
    import json

    from sgdscape.surfaces.app.compute import page_payload

    for state in _every_control_setting():
        payload = page_payload(state)
        json.dumps(payload, allow_nan=False)  # the browser gets strict JSON
        assert payload["n_steps"] == state.n_steps()
        assert len(payload["path"]) == len(payload["step_frames"]) == payload["n_steps"]


def test_a_diverging_run_is_shown_not_an_error():
    pytest.importorskip("plotly")
    import json

    from sgdscape.surfaces.app.compute import page_payload

    payload = page_payload(AppState(grid=30, lr=50.0))
    assert payload["diverged_step"] >= 0 and "diverged" in payload["summary"]
    json.dumps(payload, allow_nan=False)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_apps_default_start_of_every_model_is_the_models_default_init(model):
    # the page sets the two plotted coordinates; the others start where the CLI's run does
    assert AppState(model=model).to_config().init == RunConfig(model=model).init


def test_the_apps_slice_of_a_bigger_model_says_where_it_is_held():
    from sgdscape.surfaces.app.compute import page_payload

    figures = page_payload(AppState(model="relu-unit-bias", grid=30))["figures"]
    for name in ("batch", "risk"):
        assert figures[name]["layout"]["xaxis"]["title"]["text"] == "w1   (slice at b = 0.5)"
