"""The Dash app: layout, the one server callback, clientside scrubbing, downloads.

One server round trip per control change: the callback parses the state, computes the
run and returns a compact payload to the browser's ``dcc.Store``; every step change
(slider, play, arrow keys) is drawn by clientside JavaScript (``assets/sgdscape.js``).
The server holds no per-tab state.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import dash
from dash import ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html

from sgdscape.core.models import MODELS
from sgdscape.core.optimizers import OPTIMIZERS, SCHEDULES
from sgdscape.core.problems import PROBLEMS
from sgdscape.core.train import SAMPLINGS
from sgdscape.errors import INT64_MAX, SgdscapeError, check_int, check_number, clip

from .compute import compute_result, page_payload
from .state import (
    GRID_CHOICES,
    MAX_EPOCHS,
    MAX_PINS,
    MAX_SAMPLES,
    MAX_STEPS,
    OPTIMIZER_CONTROLS,
    SCHEDULE_CONTROLS,
    AppState,
    parse_query,
    run_key,
    state_from_controls,
    to_query,
)

log = logging.getLogger("sgdscape.surfaces.app")
ASSETS = Path(__file__).parent / "assets"
_PNG_LOCK = threading.Lock()  # pyplot is not thread-safe

#: number-input controls: AppState field -> (label, step, min, max)
NUMBER_CONTROLS: dict[str, tuple[str, float | str, float | None, float | None]] = {
    "init_a": ("start (x axis)", "any", None, None),
    "init_b": ("start (y axis)", "any", None, None),
    "noise": ("noise std", "any", 0, None),
    "samples": ("samples", 1, 1, MAX_SAMPLES),
    "seed": ("seed", 1, 0, None),
    "lr": ("learning rate", "any", 0, None),
    "momentum": ("momentum", "any", 0, None),
    "beta1": ("β1", "any", 0, 1),
    "beta2": ("β2", "any", 0, 1),
    "alpha": ("α (RMS decay)", "any", 0, 1),
    "rho": ("ρ", "any", 0, 1),
    "step_size": ("step size (steps)", 1, 1, None),
    "step_gamma": ("γ per step size", "any", 0, None),
    "exp_gamma": ("γ per step", "any", 0, None),
    "eta_min": ("final lr ratio", "any", 0, None),
    "decay": ("decay", "any", 0, None),
    "batch": ("batch size", 1, 1, MAX_SAMPLES),
    "epochs": ("epochs", 1, 1, MAX_EPOCHS),
}
#: fields shown only for the optimizer or schedule that takes them
OPTIONAL_FIELDS = (
    "momentum",
    "nesterov",
    "beta1",
    "beta2",
    "alpha",
    "rho",
    "step_size",
    "step_gamma",
    "exp_gamma",
    "eta_min",
    "decay",
)
CHOICE_CONTROLS = ("problem", "model", "optimizer", "schedule", "grid", "sampling")
FIELDS = (*CHOICE_CONTROLS, *NUMBER_CONTROLS, "nesterov", "init_a", "init_b")


def _cid(name: str) -> str:
    return f"ctl-{name.replace('_', '-')}"


def _field(label: str | None, control: Any, name: str, hidden: bool = False) -> html.Div:
    head = [] if label is None else [html.Label(label, htmlFor=_cid(name))]
    return html.Div(
        [*head, control],
        className="field",
        id=f"field-{name.replace('_', '-')}",
        style={"display": "none"} if hidden else None,
    )


def _number(name: str, value: float, hidden: bool = False) -> html.Div:
    label, step, low, high = NUMBER_CONTROLS.get(name, (name, "any", None, None))
    control = dcc.Input(
        id=_cid(name),
        type="number",
        value=value,
        step=step,
        min=low,
        max=high,
        debounce=True,
        inputMode="decimal",  # type: ignore[arg-type]  # valid HTML; dash's Literal lacks it
        className="number",
    )
    return _field(label, control, name, hidden)


def _dropdown(name: str, label: str, options: list[dict[str, Any]], value: Any) -> html.Div:
    control = dcc.Dropdown(
        id=_cid(name), options=options, value=value, clearable=False, searchable=False
    )
    return _field(label, control, name)


def _options(registry: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"label": name, "value": name, "title": getattr(spec, "description", "")}
        for name, spec in registry.items()
    ]


def _section(title: str, *children: Any) -> html.Details:
    return html.Details([html.Summary(title), *children], open=True, className="section")


def _html_export() -> Any:
    """The standalone-HTML exporter from ``sgdscape.surfaces.export`` when that module provides one."""
    if importlib.util.find_spec("sgdscape.surfaces.export") is None:
        return None
    module = importlib.import_module(
        "sgdscape.surfaces.export"
    )  # a surface beside this one: a hook
    for name in ("html_page",):  # result -> the page as a string (export_html writes a file)
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    return None


def layout() -> html.Div:
    """The page: controls on the left (on top on a phone), the four panels on the right."""
    d = AppState()
    has_html = _html_export() is not None
    controls = html.Aside(
        className="controls",
        children=[
            _section(
                "Data",
                _dropdown("problem", "problem", _options(PROBLEMS), d.problem),
                _number("noise", d.noise),
                _number("samples", d.samples),
                _number("seed", d.seed),
            ),
            _section(
                "Model and start",
                _dropdown("model", "model", _options(MODELS), d.model),
                html.Div(
                    [_number("init_a", d.init[0]), _number("init_b", d.init[1])],
                    className="pair",
                ),
                html.P("or click the risk landscape", className="hint"),
                _dropdown(
                    "grid",
                    "landscape grid",
                    [{"label": f"{g}×{g}", "value": g} for g in GRID_CHOICES],
                    d.grid,
                ),
            ),
            _section(
                "Optimizer",
                _dropdown("optimizer", "optimizer", _options(OPTIMIZERS), d.optimizer),
                _number("lr", d.lr),
                _number("momentum", d.momentum),
                _field(
                    None,
                    dcc.Checklist(
                        id=_cid("nesterov"),
                        options=[{"label": " Nesterov momentum", "value": "on"}],
                        value=[],
                    ),
                    "nesterov",
                ),
                html.Div(
                    [_number("beta1", d.beta1, True), _number("beta2", d.beta2, True)],
                    className="pair",
                ),
                _number("alpha", d.alpha, True),
                _number("rho", d.rho, True),
                _dropdown("schedule", "lr schedule", _options(SCHEDULES), d.schedule),
                _number("step_size", d.step_size, True),
                _number("step_gamma", d.step_gamma, True),
                _number("exp_gamma", d.exp_gamma, True),
                _number("eta_min", d.eta_min, True),
                _number("decay", d.decay, True),
            ),
            _section(
                "Minibatches",
                html.Div(
                    [_number("batch", d.batch), _number("epochs", d.epochs)], className="pair"
                ),
                _field(
                    "sampling",
                    dcc.RadioItems(
                        id=_cid("sampling"),
                        options=[{"label": f" {s}", "value": s} for s in SAMPLINGS],
                        value=d.sampling,
                        className="radio",
                    ),
                    "sampling",
                ),
            ),
            _section(
                "Compare",
                html.P(
                    f"Pin the current run, change settings, and see up to {MAX_PINS + 1} runs.",
                    className="hint",
                ),
                html.Div(
                    [
                        html.Button("Pin this run", id="pin", n_clicks=0),
                        html.Button("Clear pins", id="clear-pins", n_clicks=0),
                    ],
                    className="buttons",
                ),
            ),
            _section(
                "Download",
                html.Div(
                    [
                        html.Button("run.npz", id="dl-npz", n_clicks=0),
                        html.Button("config.toml", id="dl-toml", n_clicks=0),
                        html.Button("PNG of this step", id="dl-png", n_clicks=0),
                        html.Button(
                            "standalone HTML",
                            id="dl-html",
                            n_clicks=0,
                            disabled=not has_html,
                            title=""
                            if has_html
                            else "needs sgdscape.surfaces.export (not in this version yet)",
                        ),
                    ],
                    className="buttons",
                ),
            ),
        ],
    )
    # the init inputs are labelled by the model's parameter names at render time
    graph_config: dcc.Graph.Config = {"displaylogo": False, "responsive": True, "scrollZoom": False}
    panels = html.Div(
        className="panels",
        children=[
            # the Graph fills its panel (responsive Graphs take height: 100%)
            html.Div(dcc.Graph(id=f"{name}-graph", config=graph_config), className="panel")
            for name in ("batch", "risk", "loss", "noise")
        ],
    )
    player = html.Div(
        className="player",
        children=[
            html.Button("▶ play", id="play", n_clicks=0, className="play", title="play/pause"),
            html.Div(
                dcc.Slider(
                    id="step-slider",
                    min=0,
                    max=99,
                    step=1,
                    value=0,
                    updatemode="drag",
                    marks=None,
                    tooltip={"placement": "bottom", "always_visible": False},
                ),
                className="slider",
            ),
            html.Span("step 0", id="step-label", className="step-label"),
        ],
    )
    return html.Div(
        className="app",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="run"),
            dcc.Store(id="state"),
            dcc.Store(
                id="meta",
                data={
                    "optimizer": {k: list(v) for k, v in OPTIMIZER_CONTROLS.items()},
                    "schedule": {k: list(v) for k, v in SCHEDULE_CONTROLS.items()},
                    "fields": list(OPTIONAL_FIELDS),
                },
            ),
            dcc.Interval(id="player", interval=90, disabled=True),
            dcc.Download(id="download"),
            html.Header(
                [
                    html.H1("sgdscape"),
                    html.Span(
                        "stochastic gradient steps on the landscape of their own minibatch",
                        className="tagline",
                    ),
                ]
            ),
            html.Div(  # dash's stubs take no aria-* props
                id="notice",
                className="notices",
                role="status",
                **{"aria-live": "polite"},  # type: ignore[arg-type]
            ),
            html.Div(
                className="body",
                children=[
                    controls,
                    html.Main(
                        [
                            player,
                            html.Div(id="run-info", className="run-info"),
                            html.P(
                                "← → step · shift ±10 · space play/pause",
                                className="hint keys",
                            ),
                            panels,
                        ]
                    ),
                ],
            ),
        ],
    )


def _notice(messages: list[str], kind: str) -> list[html.Div]:
    return [html.Div(m, className=f"notice {kind}") for m in messages]


def _control_values(state: AppState) -> list[Any]:
    values: list[Any] = []
    for name in FIELDS:
        if name == "nesterov":
            values.append(["on"] if state.nesterov else [])
        elif name == "init_a":
            values.append(round(state.init[0], 4))
        elif name == "init_b":
            values.append(round(state.init[1], 4))
        else:
            values.append(getattr(state, name))
    return values


def _state_from_values(values: list[Any], base: AppState) -> AppState:
    named = dict(zip(FIELDS, values, strict=True))
    a, b = named.pop("init_a"), named.pop("init_b")
    named["nesterov"] = bool(named["nesterov"])
    state = state_from_controls(named, base)
    if a is None or b is None:
        raise SgdscapeError("the start point is empty or not a number; enter two numbers.")
    return state.replace(
        init=(check_number("start (x axis)", a), check_number("start (y axis)", b))
    )


def step_index(step: Any, n_steps: int) -> int:
    """The slider's ``step`` as a step of a run of ``n_steps``: clipped, and 0 when it is not
    a finite number (a hand-made request can send anything)."""
    try:
        k = check_int("step", 0 if step is None else step, low=-INT64_MAX)
    except SgdscapeError as error:
        log.warning("%s; using step 0.", clip(str(error)).rstrip("."))
        k = 0
    return min(max(k, 0), max(n_steps - 1, 0))


def _clicked_point(click: Any) -> tuple[float, float]:
    """The (a, b) of a click on the risk landscape; only plain finite numbers are accepted."""
    try:
        point = click["points"][0]
        a, b = float(point["x"]), float(point["y"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise SgdscapeError(
            "could not read the clicked point; click inside the landscape."
        ) from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise SgdscapeError("the clicked point is not finite; click inside the landscape.")
    return round(a, 4), round(b, 4)


def update(
    search: str | None,
    values: list[Any],
    trigger: str | None,
    click: Any,
    step: Any,
    previous: str | None,
) -> tuple[AppState | None, list[str], list[str], bool]:
    """The new state for a callback: ``(state, info, errors, controls_changed)``.

    ``state`` is ``None`` when the controls hold an invalid value (``errors`` say why).
    """
    if trigger in (None, "url") or previous is None:
        state, notices = parse_query(search)
        return state, notices, [], True
    base, _ = parse_query(previous)
    info: list[str] = []
    try:
        state = _state_from_values(values, base)
        if step is not None:
            state = state.replace(step=step_index(step, MAX_STEPS))
        changed = False
        if trigger == "risk-graph":
            state = state.replace(init=_clicked_point(click), step=0)
            changed = True
        elif trigger == "pin":
            if len(state.pins) >= MAX_PINS:
                info.append(f"compare mode shows at most {MAX_PINS + 1} runs; clear pins first.")
            else:
                state = state.replace(pins=(*state.pins, run_key(state)))
        elif trigger == "clear-pins":
            state = state.replace(pins=())
        state.to_config()
    except SgdscapeError as error:
        return None, [], [clip(str(error))], False
    return state, info, [], changed


def create_app() -> Dash:
    """A new Dash app; call ``.run(host, port)`` to serve it."""
    app = Dash(
        __name__,
        assets_folder=str(ASSETS),
        title="sgdscape",
        update_title=None,  # type: ignore[arg-type]  # documented: None keeps the title
        serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = layout

    control_outputs = [Output(_cid(n), "value", allow_duplicate=False) for n in FIELDS]

    @app.callback(
        [
            *control_outputs,
            Output("url", "search"),
            Output("notice", "children"),
            Output("run", "data"),
            Output("state", "data"),
            Output("run-info", "children"),
        ],
        [
            Input("url", "search"),
            *[Input(_cid(n), "value") for n in FIELDS],
            Input("risk-graph", "clickData"),
            Input("pin", "n_clicks"),
            Input("clear-pins", "n_clicks"),
        ],
        [State("step-slider", "value"), State("state", "data")],
    )
    def on_change(search: str | None, *args: Any) -> list[Any]:
        values = list(args[: len(FIELDS)])
        click, _pin, _clear, step, previous = args[len(FIELDS) :]
        trigger = ctx.triggered_id if isinstance(ctx.triggered_id, str) else None
        state, info, errors, controls_changed = update(
            search, values, trigger, click, step, previous
        )
        nothing = [dash.no_update] * len(FIELDS)
        if state is None:
            return [
                *nothing,
                dash.no_update,
                _notice(errors, "error"),
                dash.no_update,
                dash.no_update,
                dash.no_update,
            ]
        started = time.perf_counter()
        try:
            payload = page_payload(state)
        except SgdscapeError as error:
            return [
                *nothing,
                dash.no_update,
                _notice([str(error)], "error"),
                dash.no_update,
                dash.no_update,
                dash.no_update,
            ]
        except Exception:  # a bug must not take the page down; the log has the traceback
            log.exception("computing a run failed")
            return [
                *nothing,
                dash.no_update,
                _notice(["internal error while computing this run (see the server log)."], "error"),
                dash.no_update,
                dash.no_update,
                dash.no_update,
            ]
        elapsed = 1000 * (time.perf_counter() - started)
        query = to_query(state)
        controls = _control_values(state) if controls_changed else nothing
        runs = f" · comparing {len(payload['pins']) + 1} runs" if payload["pins"] else ""
        run_info = f"{payload['summary']} · computed in {elapsed:.0f} ms{runs}"
        # a link is rewritten only when parts of it were dropped (so the bar shows what runs)
        url = (query if info else dash.no_update) if trigger in (None, "url") else query
        return [*controls, url, _notice(info, "info"), payload, query, run_info]

    # ------------------------------------------------------------ clientside (no round trip)
    app.clientside_callback(
        ClientsideFunction("sgdscape", "render"),
        [
            Output("batch-graph", "figure"),
            Output("risk-graph", "figure"),
            Output("loss-graph", "figure"),
            Output("noise-graph", "figure"),
            Output("step-label", "children"),
        ],
        [Input("step-slider", "value"), Input("run", "data")],
    )
    app.clientside_callback(
        ClientsideFunction("sgdscape", "slider"),
        [
            Output("step-slider", "max"),
            Output("step-slider", "value"),
            Output("step-slider", "marks"),
        ],
        [Input("run", "data"), Input("player", "n_intervals")],
        [State("step-slider", "value")],
    )
    app.clientside_callback(
        ClientsideFunction("sgdscape", "toggle_play"),
        [Output("player", "disabled"), Output("play", "children")],
        [Input("play", "n_clicks")],
        [State("player", "disabled"), State("run", "data"), State("step-slider", "value")],
    )
    app.clientside_callback(
        ClientsideFunction("sgdscape", "show_options"),
        [Output(f"field-{n.replace('_', '-')}", "style") for n in OPTIONAL_FIELDS],
        [Input(_cid("optimizer"), "value"), Input(_cid("schedule"), "value")],
        [State("meta", "data")],
    )

    # ------------------------------------------------------------ downloads (server)
    @app.callback(
        Output("download", "data"),
        [
            Input("dl-npz", "n_clicks"),
            Input("dl-toml", "n_clicks"),
            Input("dl-png", "n_clicks"),
            Input("dl-html", "n_clicks"),
        ],
        [State("state", "data"), State("step-slider", "value")],
        prevent_initial_call=True,
    )
    def download(_a: Any, _b: Any, _c: Any, _d: Any, query: str | None, step: Any) -> Any:
        what = ctx.triggered_id
        try:
            state, _ = parse_query(query)
            data = download_file(state, what, step)
        except SgdscapeError as error:
            log.warning("download failed: %s", clip(str(error)))
            notice = _notice([f"download failed: {clip(str(error))}"], "error")
            dash.set_props("notice", {"children": notice})
            return dash.no_update
        except Exception:  # any failure is said on the page, never a silent HTTP 500
            log.exception("download %s failed", what)
            message = "download failed: internal error (see the server log)."
            dash.set_props("notice", {"children": _notice([message], "error")})
            return dash.no_update
        return data

    return app


def download_file(state: AppState, what: str | None, step: Any) -> dict[str, Any]:
    """The ``dcc.Download`` data of ``run.npz``, ``config.toml``, a PNG or the HTML."""
    import tempfile

    import numpy as np

    from sgdscape.records.run import result_arrays, save_config

    result = compute_result(state)
    if what == "dl-toml":
        with tempfile.TemporaryDirectory() as folder:
            path = save_config(result.config, Path(folder) / "config.toml")
            return dcc.send_bytes(path.read_bytes(), "config.toml")
    if what == "dl-npz":
        buffer = io.BytesIO()
        arrays: dict[str, Any] = result_arrays(result)  # (stubs: a value could be allow_pickle)
        np.savez_compressed(buffer, **arrays)
        return dcc.send_bytes(buffer.getvalue(), "run.npz")
    k = step_index(step, result.n_steps)
    if what == "dl-png":
        return dcc.send_bytes(png_bytes(result, k), f"sgdscape_step_{k}.png")
    if what == "dl-html":
        exporter = _html_export()
        if exporter is None:
            raise SgdscapeError(
                "standalone HTML needs sgdscape.surfaces.export, not in this version."
            )
        html_text = exporter(result)
        data = html_text.encode() if isinstance(html_text, str) else bytes(html_text)
        return dcc.send_bytes(data, "sgdscape.html")
    raise SgdscapeError(f"unknown download {what!r}.")


def png_bytes(result: Any, step: int) -> bytes:
    """The notebook's two-panel figure of ``step`` (:func:`sgdscape.views.step_figure.plot_step`) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sgdscape.views.step_figure import plot_step

    with _PNG_LOCK:
        figure = plot_step(result, step)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
    return buffer.getvalue()


def serve(host: str = "127.0.0.1", port: int = 8050, *, open_browser: bool = False) -> None:
    """Serve the app (Flask's threaded server) until interrupted.

    Runs are small, so torch uses one intra-op thread: concurrent requests then run in
    parallel threads without oversubscribing the cores (one thread is also much faster
    on a busy 2-core machine).
    """
    import torch

    torch.set_num_threads(1)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    compute_result(AppState())  # warm torch up before the first page
    app = create_app()
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if open_browser:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    print(f"sgdscape serve: {url} (Ctrl+C to stop)", flush=True)
    app.run(host=host, port=port, debug=False, dev_tools_ui=False)
