"""The app's chains view: many SGD chains at once, on a slider over their recorded steps.

The user sets the chains' settings (or starts from a chains preset); one server callback
runs them (:func:`sgdscape.surfaces.app.compute.chains_payload`, memoised like the runs)
and sends the offline chains page's figure with its per-step updates; moving the slider
applies an update in the browser (``assets/sgdscape.js``), with no server round trip.
Refused settings (no chains, a negative learning rate, more chains than the app's cap)
are said in the view's notice, never as a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html

from sgdscape.core.chain_inputs import CHAIN_SAMPLINGS
from sgdscape.core.models import MODELS
from sgdscape.errors import SgdscapeError, clip
from sgdscape.records.chain_presets import CHAIN_PRESETS

from .compute import chains_payload
from .state import (
    CHAIN_CONTROL_LABELS,
    MAX_CHAIN_STEPS,
    MAX_CHAINS,
    NO_PRESET,
    ChainsAppState,
    chains_state_from_controls,
)

log = logging.getLogger("sgdscape.surfaces.app")
#: the chains view's controls, in the order its callbacks read and write them
CHAIN_FIELDS = tuple(CHAIN_CONTROL_LABELS)
#: number inputs: field -> their step (no min or max: the browser would send an out-of-range
#: value as empty, and the server's message names the allowed range)
_NUMBERS: dict[str, float | str] = {
    "n_chains": 1,
    "lr": "any",
    "batch": 1,
    "steps": 1,
    "seed": 1,
    "init_a": "any",
    "init_b": "any",
}


def chain_id(name: str) -> str:
    """The HTML id of the chains view's control of ``name`` (a :data:`CHAIN_FIELDS` entry)."""
    return f"chains-{name.replace('_', '-')}"


def control_values(state: ChainsAppState) -> list[Any]:
    """The controls' values (in :data:`CHAIN_FIELDS` order) that show ``state``."""
    named = {
        name: getattr(state, name) for name in CHAIN_FIELDS if name not in ("init_a", "init_b")
    }
    named["init_a"], named["init_b"] = state.init
    return [named[name] for name in CHAIN_FIELDS]


def _field(name: str, control: Any) -> html.Div:
    label = html.Label(CHAIN_CONTROL_LABELS[name], htmlFor=chain_id(name))
    return html.Div([label, control], className="field")


def _number(name: str, value: float) -> html.Div:
    control = dcc.Input(
        id=chain_id(name),
        type="number",
        value=value,
        step=_NUMBERS[name],
        debounce=True,
        className="number",
    )
    return _field(name, control)


def chains_view() -> html.Div:
    """The chains view (hidden until the page's view switch selects it)."""
    d = ChainsAppState()
    presets = [{"label": "none (set everything here)", "value": NO_PRESET}] + [
        {"label": name, "value": name, "title": preset.story}
        for name, preset in CHAIN_PRESETS.items()
    ]
    controls = html.Aside(
        className="controls",
        children=[
            html.Details(
                [
                    html.Summary("Chains"),
                    html.P(
                        "K copies of the same SGD from one start, each with its own "
                        "minibatches: where do they go?",
                        className="hint",
                    ),
                    _field(
                        "preset",
                        dcc.Dropdown(
                            id=chain_id("preset"),
                            options=presets,
                            value=d.preset,
                            clearable=False,
                            searchable=False,
                        ),
                    ),
                    html.P("a preset also sets the data and the window", className="hint"),
                    _field(
                        "model",
                        dcc.Dropdown(
                            id=chain_id("model"),
                            options=[{"label": name, "value": name} for name in MODELS],
                            value=d.model,
                            clearable=False,
                            searchable=False,
                        ),
                    ),
                    _number("n_chains", d.n_chains),
                    html.P(
                        f"at most {MAX_CHAINS:,} chains and {MAX_CHAIN_STEPS:,} steps here",
                        className="hint",
                    ),
                    html.Div([_number("lr", d.lr), _number("batch", d.batch)], className="pair"),
                    html.Div(
                        [_number("steps", d.steps), _number("seed", d.seed)], className="pair"
                    ),
                    _field(
                        "sampling",
                        dcc.RadioItems(
                            id=chain_id("sampling"),
                            options=[{"label": f" {s}", "value": s} for s in CHAIN_SAMPLINGS],
                            value=d.sampling,
                            className="radio",
                        ),
                    ),
                    html.Div(
                        [_number("init_a", d.init[0]), _number("init_b", d.init[1])],
                        className="pair",
                    ),
                ],
                open=True,
                className="section",
            )
        ],
    )
    player = html.Div(
        className="player",
        children=[
            html.Div(
                dcc.Slider(
                    id="chains-slider",
                    min=0,
                    max=1,
                    step=1,
                    value=0,
                    updatemode="drag",
                    marks=None,
                    allow_direct_input=False,  # its value is a record index, not a step
                ),
                className="slider",
            ),
            html.Span("step 0", id="chains-step-label", className="step-label"),
        ],
    )
    graph_config: dcc.Graph.Config = {"displaylogo": False, "responsive": True, "scrollZoom": False}
    return html.Div(
        id="chains-view",
        className="body",
        style={"display": "none"},
        children=[
            controls,
            html.Main(
                [
                    dcc.Store(id="chains"),
                    player,
                    html.Div(id="chains-info", className="run-info"),
                    html.Div(id="chains-notice", className="notices", role="status"),
                    html.Div(
                        dcc.Graph(id="chains-graph", config=graph_config),
                        className="panel chains-panel",
                    ),
                ]
            ),
        ],
    )


def _notice(message: str) -> html.Div:
    return html.Div(message, className="notice error")


def compute_chains(view: Any, values: list[Any]) -> tuple[Any, Any, Any]:
    """``(payload, notice, info)`` for the chains view's callback: the chains of the
    controls' ``values`` (in :data:`CHAIN_FIELDS` order), or no update with a notice saying
    why; nothing is computed while the step view is shown."""
    if view != "chains":
        return dash.no_update, dash.no_update, dash.no_update
    try:
        state = chains_state_from_controls(dict(zip(CHAIN_FIELDS, values, strict=True)))
        payload = chains_payload(state)
    except SgdscapeError as error:
        return dash.no_update, _notice(clip(str(error))), dash.no_update  # the last run stays
    except Exception:  # a bug must not take the page down; the log has the traceback
        log.exception("computing chains failed")
        message = "internal error while running the chains (see the server log)."
        return dash.no_update, _notice(message), dash.no_update
    return payload, None, payload["summary"]


def register(app: Dash) -> None:
    """Add the chains view's callbacks to ``app``."""
    controls = [Input(chain_id(name), "value") for name in CHAIN_FIELDS]

    @app.callback(
        [Output(chain_id(name), "value") for name in CHAIN_FIELDS if name != "preset"],
        Input(chain_id("preset"), "value"),
        prevent_initial_call=True,
    )
    def on_preset(name: Any) -> list[Any]:
        keep = [dash.no_update] * (len(CHAIN_FIELDS) - 1)
        if not isinstance(name, str) or name not in CHAIN_PRESETS:
            return keep
        return control_values(ChainsAppState.from_preset(name))[1:]

    @app.callback(
        [
            Output("chains", "data"),
            Output("chains-notice", "children"),
            Output("chains-info", "children"),
        ],
        [Input("ctl-view", "value"), *controls],
    )
    def on_chains(view: Any, *values: Any) -> tuple[Any, Any, Any]:
        return compute_chains(view, list(values))

    app.clientside_callback(
        ClientsideFunction("sgdscape", "chains_slider"),
        [
            Output("chains-slider", "max"),
            Output("chains-slider", "value"),
            Output("chains-slider", "marks"),
        ],
        [Input("chains", "data")],
        [State("chains-slider", "value")],
    )
    app.clientside_callback(
        ClientsideFunction("sgdscape", "render_chains"),
        [Output("chains-graph", "figure"), Output("chains-step-label", "children")],
        [Input("chains-slider", "value"), Input("chains", "data")],
    )
    app.clientside_callback(
        ClientsideFunction("sgdscape", "show_view"),
        [Output("step-view", "style"), Output("chains-view", "style")],
        [Input("ctl-view", "value")],
    )
