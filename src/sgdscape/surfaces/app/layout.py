"""The app's page: the controls (one per :class:`AppState` field) and the four panels.

:data:`FIELDS` fixes the order of the controls that the server callback reads and writes;
:func:`cid` names their HTML ids.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from sgdscape.core.models import MODELS
from sgdscape.core.optimizers import OPTIMIZERS, SCHEDULES
from sgdscape.core.problems import PROBLEMS
from sgdscape.core.train import SAMPLINGS

from .chains_view import chains_view
from .downloads import html_export
from .state import (
    GRID_CHOICES,
    MAX_EPOCHS,
    MAX_PINS,
    MAX_SAMPLES,
    OPTIMIZER_CONTROLS,
    SCHEDULE_CONTROLS,
    VIEWS,
    AppState,
)

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
#: on/off switches (checklists whose value is ``["on"]`` or ``[]``)
SWITCHES = ("nesterov", "sharpness", "fan")
FIELDS = (
    *CHOICE_CONTROLS,
    *NUMBER_CONTROLS,
    "nesterov",
    "init_a",
    "init_b",
    "sharpness",
    "fan",
    "view",
)


def cid(name: str) -> str:
    """The HTML id of the control of the AppState field ``name``."""
    return f"ctl-{name.replace('_', '-')}"


def _field(label: str | None, control: Any, name: str, hidden: bool = False) -> html.Div:
    head = [] if label is None else [html.Label(label, htmlFor=cid(name))]
    return html.Div(
        [*head, control],
        className="field",
        id=f"field-{name.replace('_', '-')}",
        style={"display": "none"} if hidden else None,
    )


def _number(name: str, value: float, hidden: bool = False) -> html.Div:
    label, step, low, high = NUMBER_CONTROLS.get(name, (name, "any", None, None))
    control = dcc.Input(
        id=cid(name),
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
        id=cid(name), options=options, value=value, clearable=False, searchable=False
    )
    return _field(label, control, name)


def _options(registry: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"label": name, "value": name, "title": getattr(spec, "description", "")}
        for name, spec in registry.items()
    ]


def _section(title: str, *children: Any) -> html.Details:
    return html.Details([html.Summary(title), *children], open=True, className="section")


def layout() -> html.Div:
    """The page: controls on the left (on top on a phone), the four panels on the right."""
    d = AppState()
    has_html = html_export() is not None
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
                _field(
                    None,
                    dcc.Checklist(
                        id=cid("sharpness"),
                        options=[{"label": " sharpness panel (λmax vs step, 2/lr)", "value": "on"}],
                        value=[],
                    ),
                    "sharpness",
                ),
                _field(
                    None,
                    dcc.Checklist(
                        id=cid("fan"),
                        options=[
                            {
                                "label": " fan of next steps (left panel, and its mean)",
                                "value": "on",
                            }
                        ],
                        value=[],
                    ),
                    "fan",
                ),
                html.Div(id="fan-note", className="fan-note"),
                _number("momentum", d.momentum),
                _field(
                    None,
                    dcc.Checklist(
                        id=cid("nesterov"),
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
                        id=cid("sampling"),
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
            html.Div(
                dcc.Graph(id=f"{name}-graph", config=graph_config),
                id=f"{name}-panel",
                className="panel",
            )
            for name in ("batch", "risk", "loss", "noise")
        ]
        + [
            # switched on by the "sharpness panel" box (URL ?sharpness=1), across both columns
            html.Div(
                dcc.Graph(id="sharpness-graph", config=graph_config),
                id="sharpness-panel",
                className="panel",
                style={"display": "none"},
            )
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
    modes = html.Div(
        dcc.RadioItems(
            id=cid("view"),
            options=[{"label": f" {text}", "value": name} for name, text in VIEWS.items()],
            value=d.view,
            className="radio",
        ),
        className="modes",
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
            modes,
            html.Div(
                id="step-view",
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
            chains_view(),
        ],
    )
