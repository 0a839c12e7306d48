"""The explorers' shared part: the precomputed :class:`Frames` of a step source and the
two-panel Plotly figure that shows any of its steps (:class:`TwoPanels`).

Both explorers (:class:`~sgdscape.surfaces.widget.explorer.Explorer` for a 2-parameter
run, :class:`~sgdscape.surfaces.widget.network.NetworkExplorer` for a network's view) draw
through this code from a :class:`~sgdscape.views.step_source.StepSource`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from matplotlib.colors import to_hex
from plotly.subplots import make_subplots

from sgdscape.networks.recording import StochasticView
from sgdscape.records.run import RunResult
from sgdscape.views.plotly_figures import sharpness_of, sharpness_traces
from sgdscape.views.step_source import StepSource, from_run, from_view
from sgdscape.views.style import MARKER_EDGE_COLOUR, Arrows, safe_log
from sgdscape.views.style import PATH_COLOUR as _PATH_COLOUR
from sgdscape.views.style import TRUE_GRADIENT_COLOUR as _TRUE_GRADIENT_COLOUR

# Traces, shapes and annotations of the figure, in order. Everything that moves with the
# step is layout (shapes, annotations) except the minibatch grid, so one Plotly.update with
# one trace changes it all: one message and one redraw per step.
_LEFT_SURFACE, _RIGHT_SURFACE, _PATH_HOVER, _MINIBATCH_LEGEND, _FULL_LEGEND = range(5)
_PATH, _LEFT_MARKER, _RIGHT_MARKER = range(3)  # shapes
_MINIBATCH_ARROW, _FULL_ARROW = 2, 3  # annotations (after the two subplot titles)
# A run with curvature adds a row below: the minibatch λmax, the risk λmax and the 2/lr
# line (traces after _FULL_LEGEND) and the step's marker (a shape after _RIGHT_MARKER,
# sized in pixels and anchored at (step, λmax)).
_SHARPNESS_TRACES = 5  # index of the first of the three
_SHARPNESS_MARKER = 3  # shape
SHARPNESS_ROW_PX = 260
# The palette's colours as CSS hex colours (what the widget's traitlets keep).
PATH_COLOUR = to_hex(_PATH_COLOUR)
TRUE_GRADIENT_COLOUR = to_hex(_TRUE_GRADIENT_COLOUR)


def _widget_name(name: str) -> str:
    """An arrow's name with a typographic minus, as the explorers show it."""
    return "−" + name[1:] if name.startswith("-") else name


@dataclass(frozen=True)
class Frames:
    """Everything drawn at every step of a step source, computed once.

    Attributes:
        source: what is drawn (:class:`~sgdscape.views.step_source.StepSource`).
        path: ``(T, 2)`` or ``(T + 1, 2)`` iterates in plot coordinates.
        minibatch: the drawn -minibatch-gradient arrows (:func:`sgdscape.views.style.arrow_rule`:
            tails, tips and legend labels of every step).
        full: the drawn -full-gradient arrows, or ``None`` if not recorded.
        scale: the arrow scale (:func:`sgdscape.views.style.gradient_scale`).
        surfaces: ``(U, G2, G1)`` float32 ``safe_log`` of each distinct minibatch landscape.
        surface_index: ``(T,)`` which of ``surfaces`` step ``t`` draws (-1: none stored).
        risk_surface: ``(G2, G1)`` ``safe_log`` of the risk.
        risk: ``(T,)`` or ``(T + 1,)`` risk along the path (NaN if not recorded);
            ``batch_loss``: ``(T,)`` minibatch loss.
        batches: per step, the sample indices of its minibatch.
    """

    source: StepSource
    path: np.ndarray
    minibatch: Arrows
    full: Arrows | None
    scale: float
    surfaces: np.ndarray
    surface_index: np.ndarray
    risk_surface: np.ndarray
    risk: np.ndarray
    batch_loss: np.ndarray
    batches: tuple[np.ndarray, ...]

    @classmethod
    def of_source(cls, source: StepSource) -> Frames:
        """Precompute the frames of ``source``: each distinct minibatch's landscape once,
        for the steps that have one (``source.steps``)."""
        names = (_widget_name(source.arrow_names[0]), _widget_name(source.arrow_names[1]))
        minibatch, full = source.arrows(names)
        keys: dict[tuple[int, ...], int] = {}
        index = np.full(source.n_steps, -1, dtype=np.int64)
        surfaces: list[np.ndarray] = []
        for t in source.steps:
            key = tuple(int(i) for i in source.batches[t])
            if key not in keys:
                keys[key] = len(surfaces)
                surfaces.append(safe_log(source.minibatch_landscape(t)).astype(np.float32))
            index[t] = keys[key]
        risk = np.full(source.n_steps, np.nan) if source.risk is None else source.risk
        return cls(
            source=source,
            path=np.asarray(source.path, dtype=np.float64),
            minibatch=minibatch,
            full=full,
            scale=source.arrow_scale,
            surfaces=np.stack(surfaces),
            surface_index=index,
            risk_surface=safe_log(source.landscape.risk).astype(np.float32),
            risk=np.asarray(risk, dtype=np.float64),
            batch_loss=np.asarray(source.batch_loss, dtype=np.float64),
            batches=source.batches,
        )

    @classmethod
    def of(cls, result: RunResult) -> Frames:
        """Precompute the frames of a single-init ``result``."""
        return cls.of_source(from_run(result))

    @classmethod
    def of_view(cls, view: StochasticView) -> Frames:
        """Precompute the frames of a real network's :class:`StochasticView`.

        ``path`` and ``risk`` have ``T + 1`` rows (the final iterate last); the arrow is the
        minibatch gradient at the true iterate, projected; no full gradient is recorded.
        Steps without a stored minibatch landscape get ``surface_index -1``.
        """
        return cls.of_source(from_view(view))


def _finite(*values: np.ndarray) -> bool:
    return all(bool(np.isfinite(v).all()) for v in values)


def _path_hover(frames: Frames) -> np.ndarray:
    """``(T, 2)`` step number and risk of every iterate, for the path's hover labels."""
    return np.column_stack([np.arange(len(frames.risk)), frames.risk])


class TwoPanels:
    """The two-panel figure and its per-step drawing, shared by both explorers.

    Subclasses set ``self._frames`` (:class:`Frames`, which carries the
    :class:`~sgdscape.views.step_source.StepSource`), ``self.figure`` (from
    :meth:`_make_figure`) and ``self.caption_widget``, and give ``_caption(step)``.
    Titles, labels and whether the axes keep equal units follow the source.
    """

    _frames: Frames
    figure: go.FigureWidget
    caption_widget: widgets.HTML
    #: the arrow rule's labels of the step shown (also in the caption), e.g. "−full gradient × 0.5"
    arrow_notes: tuple[str, ...] = ()

    @property
    def frames(self) -> Frames:
        """The precomputed frames of what is on display."""
        return self._frames

    @property
    def caption(self) -> str:
        """The text above the figure describing the step shown."""
        return str(self.caption_widget.value)

    @property
    def _source(self) -> StepSource:
        return self._frames.source

    @property
    def _surface(self) -> Any:
        """The landscape on display (its grid and axis labels)."""
        return self._source.landscape

    @property
    def _axes(self) -> tuple[str, str]:
        return self._source.landscape.labels

    @property
    def _titles(self) -> tuple[str, str]:
        """The subplot titles."""
        source = self._source
        return (
            "log loss of the minibatch used at this step",
            f"{source.risk_label} and the {'projected ' if source.projected else ''}path so far",
        )

    @property
    def _minibatch_label(self) -> str:
        return "−minibatch gradient" + (", projected" if self._source.projected else "")

    def _caption(self, step: int) -> str:  # pragma: no cover - always overridden
        raise NotImplementedError

    # ------------------------------------------------------------------ what is drawn

    @property
    def drawn_iterate(self) -> np.ndarray:
        """``(2,)`` the centre of the iterate marker drawn on the left panel (NaN when hidden)."""
        circle = self.figure.layout.shapes[_LEFT_MARKER]
        if circle.visible is False:
            return np.full(2, np.nan)
        return np.array([(circle.x0 + circle.x1) / 2, (circle.y0 + circle.y1) / 2], float)

    @property
    def drawn_left_z(self) -> np.ndarray:
        """``(G2, G1)`` the left panel's log minibatch loss grid as drawn."""
        return np.asarray(self.figure.data[_LEFT_SURFACE].z)

    @property
    def drawn_right_z(self) -> np.ndarray:
        """``(G2, G1)`` the right panel's log empirical risk grid as drawn."""
        return np.asarray(self.figure.data[_RIGHT_SURFACE].z)

    @property
    def drawn_path(self) -> np.ndarray:
        """``(k+1, 2)`` the vertices of the path drawn on the right panel."""
        line = self.figure.layout.shapes[_PATH]
        if line.visible is False or not line.path:
            return np.empty((0, 2))
        points = line.path.lstrip("M").split("L")
        return np.array([[float(v) for v in point.split(",")] for point in points])

    @property
    def drawn_arrows(self) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
        """``{"minibatch": (tail, head), "full": (tail, head)}``, ``None`` for a hidden arrow."""
        out: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        for name, index in (("minibatch", _MINIBATCH_ARROW), ("full", _FULL_ARROW)):
            note = self.figure.layout.annotations[index]
            out[name] = (
                None
                if note.visible is False
                else (np.array([note.ax, note.ay], float), np.array([note.x, note.y], float))
            )
        return out

    # ------------------------------------------------------------------ drawing

    def _make_figure(self) -> go.FigureWidget:
        surface = self._surface
        frames = self._frames
        names = self._axes
        figure = make_subplots(
            rows=1,
            cols=2,
            horizontal_spacing=0.16,
            subplot_titles=self._titles,
        )
        hover = f"{names[0]} %{{x:.3f}}<br>{names[1]} %{{y:.3f}}<br>"
        for col, z, label, x in (
            (1, frames.surfaces[0], "log minibatch loss", 0.43),
            (2, frames.risk_surface, self._source.risk_label, 1.01),
        ):
            figure.add_trace(
                go.Heatmap(
                    x=surface.w1,
                    y=surface.w2,
                    z=z,
                    colorscale="Viridis",
                    zsmooth="fast",
                    colorbar={"title": {"text": label, "side": "right"}, "x": x, "thickness": 14},
                    hovertemplate=hover + label + " %{z:.3f}<extra></extra>",
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
        # The whole path, invisible, only for its hover labels (step and risk); static.
        figure.add_trace(
            go.Scatter(
                x=frames.path[:, 0],
                y=frames.path[:, 1],
                customdata=_path_hover(frames),
                mode="markers",
                marker={"size": 9, "opacity": 0},
                hovertemplate="step %{customdata[0]}<br>"
                + hover
                + "risk %{customdata[1]:.4g}<extra>path</extra>",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
        for colour, label in (
            (PATH_COLOUR, self._minibatch_label),  # factors: per step, in the caption
            (TRUE_GRADIENT_COLOUR, "−full gradient"),
        ):
            figure.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="lines",
                    line={"color": colour, "width": 3},
                    name=label,
                    hoverinfo="skip",
                ),
                row=1,
                col=1,
            )
        figure.add_shape(
            type="path",
            path="M0,0",
            xref="x2",
            yref="y2",
            line={"color": PATH_COLOUR, "width": 3},
        )
        for axes in (("x", "y"), ("x2", "y2")):
            figure.add_shape(
                type="circle",
                x0=0,
                x1=0,
                y0=0,
                y1=0,
                xref=axes[0],
                yref=axes[1],
                fillcolor=PATH_COLOUR,
                line={"color": MARKER_EDGE_COLOUR, "width": 1.5},
            )
        for colour in (PATH_COLOUR, TRUE_GRADIENT_COLOUR):
            figure.add_annotation(
                x=0,
                y=0,
                ax=0,
                ay=0,
                xref="x",
                yref="y",
                axref="x",
                ayref="y",
                showarrow=True,
                arrowhead=2,
                arrowsize=1.3,
                arrowwidth=2.5,
                arrowcolor=colour,
                text="",
            )
        for axis in (1, 2):
            suffix = "" if axis == 1 else "2"
            figure.update_xaxes(
                title_text=names[0], range=[surface.w1[0], surface.w1[-1]], row=1, col=axis
            )
            # a projected path's PC2 usually spans far less than PC1: no equal units then
            equal_units = not self._source.projected
            equal = {"scaleanchor": f"x{suffix}", "scaleratio": 1} if equal_units else {}
            figure.update_yaxes(
                title_text=names[1],
                range=[surface.w2[0], surface.w2[-1]],
                row=1,
                col=axis,
                **equal,
            )
        figure.update_annotations(font={"size": 13}, selector={"showarrow": False})
        figure.update_layout(
            height=500,
            width=980,
            # a strip above the subplot titles for the mode bar (it covered them on hover)
            margin={"l": 60, "r": 30, "t": 64, "b": 40},
            legend={
                "orientation": "h",
                "x": 0.0,
                "y": -0.16,
                "xanchor": "left",
                "yanchor": "top",
                "bgcolor": "rgb(90,90,90)",
                "font": {"color": "white", "size": 12},
            },
        )
        curvature = sharpness_of(self._source)
        if curvature is not None:
            _add_sharpness_row(figure, curvature)
        widget = go.FigureWidget(figure)
        if frames.full is None:  # e.g. a network: no full gradient recorded
            widget.data[_FULL_LEGEND].showlegend = False
        return widget

    def _draw(self, step: int) -> None:
        """Show ``step``: swap in precomputed data only, in one update message.

        One message means one redraw in the browser: the minibatch grid is the only trace
        that changes (its float32 rows travel as binary buffers; a 2-D array would be
        turned into nested Python lists every step); the iterate, the arrows and the path
        are layout shapes and annotations.
        """
        frames = self._frames
        point = frames.path[step]
        visible = _finite(point)
        surface = self._surface
        radius = 0.018 * float(surface.w1[-1] - surface.w1[0])
        layout: dict[str, Any] = {}
        for shape in (_LEFT_MARKER, _RIGHT_MARKER):
            layout[f"shapes[{shape}].visible"] = visible
            if visible:
                layout[f"shapes[{shape}].x0"] = float(point[0]) - radius
                layout[f"shapes[{shape}].x1"] = float(point[0]) + radius
                layout[f"shapes[{shape}].y0"] = float(point[1]) - radius
                layout[f"shapes[{shape}].y1"] = float(point[1]) + radius
        path = frames.path[: step + 1]
        path = path[np.isfinite(path).all(-1)]  # non-finite iterates only ever end a run
        layout[f"shapes[{_PATH}].visible"] = len(path) > 0
        if len(path):
            layout[f"shapes[{_PATH}].path"] = "M" + "L".join(f"{x:.7g},{y:.7g}" for x, y in path)
        notes = []
        for note, arrows in ((_MINIBATCH_ARROW, frames.minibatch), (_FULL_ARROW, frames.full)):
            shown = arrows is not None and bool(arrows.drawn[step])
            layout[f"annotations[{note}].visible"] = shown
            if arrows is not None:
                notes.append(arrows.labels[step])
            if shown and arrows is not None:
                layout[f"annotations[{note}].ax"] = float(arrows.tail[step][0])
                layout[f"annotations[{note}].ay"] = float(arrows.tail[step][1])
                layout[f"annotations[{note}].x"] = float(arrows.tip[step][0])
                layout[f"annotations[{note}].y"] = float(arrows.tip[step][1])
        curvature = sharpness_of(self._source)
        if curvature is not None and len(self.figure.layout.shapes) > _SHARPNESS_MARKER:
            value = float(np.asarray(curvature.lambda_max)[step])
            log = self.figure.layout.yaxis3.type == "log"
            shown = np.isfinite(value) and (value > 0 or not log)
            layout[f"shapes[{_SHARPNESS_MARKER}].visible"] = bool(shown)
            if shown:
                layout[f"shapes[{_SHARPNESS_MARKER}].xanchor"] = step
                layout[f"shapes[{_SHARPNESS_MARKER}].yanchor"] = value
        grid = frames.surfaces[frames.surface_index[step]]
        finite = grid[np.isfinite(grid)]
        low = float(finite.min()) if finite.size else 0.0
        high = max(float(finite.max()) if finite.size else 1.0, low + 1e-9)
        self.figure.plotly_update(  # the colour range follows the step
            restyle_data={"z": [list(grid)], "zauto": [False], "zmin": [low], "zmax": [high]},
            relayout_data=layout,
            trace_indexes=[_LEFT_SURFACE],
        )
        # the arrow rule's labels (factor, "= 0 (no arrow)", ...) under the figure
        self.arrow_notes = tuple(notes)
        self.caption_widget.value = self._caption(step) + "<br>arrows: " + " · ".join(notes)


def _add_sharpness_row(figure: go.Figure, curvature: Any) -> None:
    """Grow the two-panel ``figure`` by :data:`SHARPNESS_ROW_PX` and draw, in a row below,
    λmax of the risk and of each minibatch against step with the dashed 2/lr line
    (:func:`sgdscape.views.plotly_figures.sharpness_traces`) and the step's marker shape."""
    height = int(figure.layout.height)
    margin = figure.layout.margin
    plot = height - int(margin.t) - int(margin.b)
    total = plot + SHARPNESS_ROW_PX
    top, bottom = SHARPNESS_ROW_PX / total, (SHARPNESS_ROW_PX - 70) / total
    traces, log = sharpness_traces(curvature)
    for trace in traces[:3]:
        figure.add_trace(trace)
    figure.update_yaxes(domain=[top, 1.0], row=1)
    figure.update_traces(
        colorbar={"y": (1.0 + top) / 2, "len": 1.0 - top, "yanchor": "middle"},
        selector={"type": "heatmap"},
    )
    figure.update_layout(
        height=height + SHARPNESS_ROW_PX,
        xaxis3={
            "title": {"text": "step"},
            "domain": [0.0, 0.9],
            "anchor": "y3",
            "range": [-0.5, curvature.n_steps - 0.5],
        },
        yaxis3={
            "title": {"text": "top Hessian eigenvalue"},
            "domain": [0.0, bottom],
            "anchor": "x3",
            "type": "log" if log else "linear",
        },
        legend={"y": -75 / total},
    )
    figure.add_annotation(
        text="sharpness along the path",
        x=0.45,
        y=bottom,
        xref="paper",
        yref="paper",
        xanchor="center",
        yanchor="bottom",
        showarrow=False,
        font={"size": 13},
    )
    figure.add_shape(
        type="circle",
        xref="x3",
        yref="y3",
        xsizemode="pixel",
        ysizemode="pixel",
        xanchor=0,
        yanchor=0,
        x0=-6,
        x1=6,
        y0=-6,
        y1=6,
        fillcolor=PATH_COLOUR,
        line={"color": MARKER_EDGE_COLOUR, "width": 1.5},
    )
