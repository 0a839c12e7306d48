"""The Dash app: the one server callback, clientside scrubbing, the download callback, serving.

One server round trip per control change: the callback parses the state, computes the
run and returns a compact payload to the browser's ``dcc.Store``; every step change
(slider, play, arrow keys) is drawn by clientside JavaScript (``assets/sgdscape.js``).
The server holds no per-tab state. The page is built in :mod:`.layout`, the files to
download in :mod:`.downloads`; their public names are importable from here too.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import dash
from dash import ClientsideFunction, Dash, Input, Output, State, ctx, html

from sgdscape.errors import SgdscapeError, check_number, clip

from . import chains_view
from .compute import compute_result, page_payload
from .downloads import download_file, png_bytes, step_index
from .layout import (
    CHOICE_CONTROLS,
    FIELDS,
    NUMBER_CONTROLS,
    OPTIONAL_FIELDS,
    SWITCHES,
    cid,
    layout,
)
from .state import (
    MAX_PINS,
    MAX_STEPS,
    VIEWS,
    AppState,
    parse_query,
    run_key,
    state_from_controls,
    to_query,
)

log = logging.getLogger("sgdscape.surfaces.app")
ASSETS = Path(__file__).parent / "assets"


def _notice(messages: list[str], kind: str) -> list[html.Div]:
    return [html.Div(m, className=f"notice {kind}") for m in messages]


def _control_values(state: AppState) -> list[Any]:
    values: list[Any] = []
    for name in FIELDS:
        if name in SWITCHES:
            values.append(["on"] if getattr(state, name) else [])
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
    for name in SWITCHES:
        named[name] = bool(named[name])
    view = named.pop("view")  # a view the page does not offer keeps the current one
    named["view"] = view if isinstance(view, str) and view in VIEWS else base.view
    state = state_from_controls(named, base)
    if a is None or b is None:
        raise SgdscapeError("the start point is empty or not a number; enter two numbers.")
    return state.replace(
        init=(check_number("start (x axis)", a), check_number("start (y axis)", b))
    )


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

    control_outputs = [Output(cid(n), "value", allow_duplicate=False) for n in FIELDS]

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
            *[Input(cid(n), "value") for n in FIELDS],
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
            Output("sharpness-graph", "figure"),
            Output("sharpness-panel", "style"),
            Output("fan-note", "children"),
            Output("batch-panel", "style"),
            Output("risk-panel", "style"),
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
        [Input(cid("optimizer"), "value"), Input(cid("schedule"), "value")],
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

    chains_view.register(app)
    return app


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
    app.logger.setLevel(logging.WARNING)  # its "Dash is running on": the line below says it once
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if open_browser:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    print(f"sgdscape serve: {url} (Ctrl+C to stop)", flush=True)
    app.run(host=host, port=port, debug=False, dev_tools_ui=False)


__all__ = [
    "CHOICE_CONTROLS",
    "FIELDS",
    "NUMBER_CONTROLS",
    "OPTIONAL_FIELDS",
    "create_app",
    "download_file",
    "layout",
    "png_bytes",
    "serve",
    "step_index",
    "update",
]
