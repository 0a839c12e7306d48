"""Hand-made callback requests to a running app: no value gives HTTP 500 (issue 14).

The requests go straight to ``/_dash-update-component`` over HTTP, as a script or a
tampered page could send them: text, NaN, infinities, lists, dicts, bools, a 1 MB string
and huge numbers in every kind of field, and in the download's step. Each is answered
with a notice (or a fallback) and a short log line.
"""

from __future__ import annotations

import importlib.util
import json
import math
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from serving import serving

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("dash") is None, reason="needs the app extra"),
]

ROOT = Path(__file__).resolve().parents[2]
#: the longest log line allowed: a value is named, never echoed whole
MAX_LOG_LINE = 400

BAD_VALUES = [
    "abc",
    math.nan,
    math.inf,
    -math.inf,
    [1, 2],
    {"a": 1},
    True,
    "",
    "x" * 1_000_000,
    1e308,
    -1e308,
    10**30,
]
NUMBER_CONTROLS = [
    "ctl-lr",
    "ctl-samples",
    "ctl-seed",
    "ctl-init-a",
    "ctl-noise",
    "ctl-momentum",
    "ctl-batch",
    "ctl-epochs",
    "ctl-step-size",
    "ctl-beta1",
]
OTHER_CONTROLS = ["ctl-grid", "ctl-problem", "ctl-nesterov", "ctl-sampling"]
DEFAULTS = {
    "url.search": "",
    "ctl-problem.value": "linear",
    "ctl-model.value": "relu-unit",
    "ctl-optimizer.value": "sgd",
    "ctl-schedule.value": "constant",
    "ctl-grid.value": 30,
    "ctl-sampling.value": "in-order",
    "ctl-init-a.value": 1.2,
    "ctl-init-b.value": -2.3,
    "ctl-noise.value": 0.1,
    "ctl-samples.value": 20,
    "ctl-seed.value": 0,
    "ctl-lr.value": 0.05,
    "ctl-momentum.value": 0.0,
    "ctl-beta1.value": 0.9,
    "ctl-beta2.value": 0.999,
    "ctl-alpha.value": 0.99,
    "ctl-rho.value": 0.9,
    "ctl-step-size.value": 25,
    "ctl-step-gamma.value": 0.5,
    "ctl-exp-gamma.value": 0.97,
    "ctl-eta-min.value": 0.0,
    "ctl-decay.value": 0.1,
    "ctl-batch.value": 1,
    "ctl-epochs.value": 1,
    "ctl-nesterov.value": [],
    "risk-graph.clickData": None,
    "pin.n_clicks": 0,
    "clear-pins.n_clicks": 0,
    "step-slider.value": 0,
    "state.data": "?n=20&grid=30",
    "dl-npz.n_clicks": 0,
    "dl-toml.n_clicks": 0,
    "dl-png.n_clicks": 1,
    "dl-html.n_clicks": 0,
}


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """`sgdscape serve` on a free loopback port; yields (url, log path)."""
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving([], log_path) as url:
        yield url, log_path


def _outputs(output: str) -> list[dict[str, str]]:
    parts = output.strip(".").split("...")
    return [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in parts]


def _body(dependency: dict, changes: dict, changed: str) -> dict:
    """The request Dash's renderer would send for ``dependency``, with ``changes``."""

    def item(spec: dict) -> dict:
        key = f"{spec['id']}.{spec['property']}"
        return {**spec, "value": changes.get(key, DEFAULTS.get(key))}

    outputs = _outputs(dependency["output"])
    return {
        "output": dependency["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [item(i) for i in dependency["inputs"]],
        "state": [item(s) for s in dependency["state"]],
        "changedPropIds": [changed],
    }


def _post(url: str, payload: dict) -> tuple[int, bytes]:
    data = json.dumps(payload, allow_nan=True).encode()  # NaN and Infinity as JS sends them
    request = urllib.request.Request(
        url + "_dash-update-component", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _cases(dependencies: list[dict]) -> list[tuple[str, str, dict]]:
    """(kind, name, request body) for every bad value in every field."""
    change = next(
        d
        for d in dependencies
        if "ctl-problem.value" in d["output"] and d.get("clientside_function") is None
    )
    download = next(d for d in dependencies if d["output"] == "download.data")
    cases = []
    for control in NUMBER_CONTROLS + OTHER_CONTROLS:
        key = f"{control}.value"
        for value in BAD_VALUES:
            cases.append(("control", f"{key}={str(value)[:20]}", _body(change, {key: value}, key)))
    for key in ("state.data", "step-slider.value", "url.search", "risk-graph.clickData"):
        trigger = key if key == "risk-graph.clickData" else "ctl-lr.value"
        for value in [*BAD_VALUES, None]:
            name = f"{key}={str(value)[:20]}"
            cases.append(("state", name, _body(change, {key: value}, trigger)))
    for key in ("step-slider.value", "state.data"):
        for value in [*BAD_VALUES, None, -5, 10**6]:
            name = f"download {key}={str(value)[:20]}"
            cases.append(("download", name, _body(download, {key: value}, "dl-png.n_clicks")))
    return cases


def test_no_value_gives_http_500_and_logs_stay_short(app_url):
    url, log_path = app_url
    dependencies = json.load(urllib.request.urlopen(url + "_dash-dependencies", timeout=10))
    cases = _cases(dependencies)
    assert len(cases) >= 200
    failures, answered = [], 0
    for kind, name, payload in cases:
        status, body = _post(url, payload)
        if status >= 500:
            failures.append(f"{status} {name}")
            continue
        answered += 1
        refusable = kind == "control" and not name.startswith(("ctl-nesterov", "ctl-sampling"))
        if refusable and status == 200:  # a bad number or choice: a notice, or a valid run
            text = body.decode()
            assert "notice error" in text or '"run"' in text, (name, text[:300])
        if kind == "download" and "step-slider" in name:
            assert status in (200, 204), (name, status)
            if status == 200:  # a bad step falls back to step 0: a PNG is still sent
                assert json.loads(body)["response"]["download"]["data"]["filename"].endswith(".png")
    assert not failures, f"{len(failures)} of {len(cases)} requests answered 5xx: {failures}"
    assert answered == len(cases)
    lines = log_path.read_text(errors="replace").splitlines()
    longest = max((len(line) for line in lines), default=0)
    assert longest <= MAX_LOG_LINE, f"a log line of {longest} characters"
    assert "Traceback" not in log_path.read_text(errors="replace")


def test_the_server_says_where_it_runs_once(app_url):
    url, log_path = app_url
    text = log_path.read_text(errors="replace")
    assert f"sgdscape serve: {url} (Ctrl+C to stop)" in text
    assert text.count(url.rstrip("/")) == 1, text  # not again by Dash, nor through logging


def test_a_bad_number_is_named_in_the_notice(app_url):
    url, _ = app_url
    dependencies = json.load(urllib.request.urlopen(url + "_dash-dependencies", timeout=10))
    change = next(
        d
        for d in dependencies
        if "ctl-problem.value" in d["output"] and d.get("clientside_function") is None
    )
    for key, value, named in [
        ("ctl-lr.value", "abc", "lr must be a number, got 'abc'"),
        ("ctl-lr.value", math.nan, "lr must be a finite number"),
        ("ctl-seed.value", math.inf, "seed must be an integer, got inf"),
        ("ctl-batch.value", [1, 2], "batch must be an integer"),
        ("ctl-momentum.value", {"a": 1}, "momentum must be a number"),
        ("ctl-samples.value", "x" * 1_000_000, "1000002 characters"),
    ]:
        status, body = _post(url, _body(change, {key: value}, key))
        assert status == 200, (key, value, body[:300])
        notice = json.loads(body)["response"]["notice"]["children"][0]["props"]
        assert notice["className"] == "notice error"
        assert named in notice["children"], notice["children"]
        assert len(notice["children"]) < 300
