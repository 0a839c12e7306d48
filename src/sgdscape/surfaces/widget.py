"""The Jupyter explorer: the seed notebook's two panels, live, with controls that recompute.

``explore(...)`` returns an :class:`Explorer`, an ``ipywidgets.VBox`` (so it renders in
JupyterLab, Notebook 7, VS Code and Colab) holding

- a play/pause button linked to a step slider,
- a Plotly ``FigureWidget``: on the left the log loss of the minibatch used at step ``k``
  with the iterate, the -minibatch-gradient arrow and the -full-gradient arrow; on the
  right the log empirical risk with the path so far (hover shows the values),
- controls for the learning rate, the init, the optimizer and the batch size; changing one
  runs ``sgdscape.run(config.replace(...))`` again.

Everything a step needs is computed once per run (:class:`Frames`); moving the slider
only swaps precomputed data into the figure with one ``plotly_update`` (one message, one
redraw in the browser), so a step costs the same at step 10 as at step 10,000. The explorer never recomputes the science: it draws
a :class:`~sgdscape.records.run.RunResult`.

``explore(view)`` with a real network's :class:`~sgdscape.networks.recording.StochasticView` (or
its saved ``network.npz``) returns a :class:`NetworkExplorer`: the same two panels and
drawing code on the PCA plane of the training path, with a step slider and no controls
(the view is recorded, not recomputed).

Needs the ``notebook`` extra (``ipywidgets``, ``plotly``, ``anywidget``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from matplotlib.colors import to_hex
from plotly.subplots import make_subplots

from sgdscape.core.optimizers import OPTIMIZERS, get_optimizer
from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import StochasticView, load_view
from sgdscape.records.run import RunConfig, RunResult, load, run
from sgdscape.views.step_figure import PATH_COLOUR as _PATH_COLOUR
from sgdscape.views.step_figure import TRUE_GRADIENT_COLOUR as _TRUE_GRADIENT_COLOUR
from sgdscape.views.step_figure import Arrows, arrow_scale, run_arrows, safe_log, slice_text

# Traces, shapes and annotations of the figure, in order. Everything that moves with the
# step is layout (shapes, annotations) except the minibatch grid, so one Plotly.update with
# one trace changes it all: one message and one redraw per step.
_LEFT_SURFACE, _RIGHT_SURFACE, _PATH_HOVER, _MINIBATCH_LEGEND, _FULL_LEGEND = range(5)
_PATH, _LEFT_MARKER, _RIGHT_MARKER = range(3)  # shapes
_MINIBATCH_ARROW, _FULL_ARROW = 2, 3  # annotations (after the two subplot titles)
#: Controls the explorer offers, beside any other :class:`RunConfig` field.
CONTROLS = ("lr", "w1", "w2", "init", "optimizer", "batch_size")
# The matplotlib figure's colours, as CSS colours for Plotly.
PATH_COLOUR = to_hex(_PATH_COLOUR)
TRUE_GRADIENT_COLOUR = to_hex(_TRUE_GRADIENT_COLOUR)


@dataclass(frozen=True)
class Frames:
    """Everything drawn at every step of a run, computed once.

    Attributes:
        path: ``(T, 2)`` iterates in plot coordinates.
        minibatch: the drawn -minibatch-gradient arrows (:func:`sgdscape.views.step_figure.arrow_rule`:
            tails, tips and legend labels of every step).
        full: the drawn -full-gradient arrows, or ``None`` if not recorded.
        scale: the arrow scale of the run (:func:`sgdscape.views.step_figure.arrow_scale`).
        surfaces: ``(U, G2, G1)`` float32 ``safe_log`` of each distinct minibatch landscape.
        surface_index: ``(T,)`` which of ``surfaces`` step ``t`` draws.
        risk_surface: ``(G2, G1)`` ``safe_log`` of the empirical risk.
        risk: ``(T,)`` empirical risk along the path; ``batch_loss``: ``(T,)`` minibatch loss.
        batches: per step, the sample indices of its minibatch.
    """

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
    def of(cls, result: RunResult) -> Frames:
        """Precompute the frames of a single-init ``result``."""
        trajectory = result.trajectory
        if trajectory.iterates.ndim != 2:
            raise SgdscapeError(
                f"explore shows one trajectory, got a batch of {trajectory.iterates.shape[0]} "
                "inits; give a single init such as init=(1.2, -2.3)."
            )
        scale = arrow_scale(result)
        minibatch, full = run_arrows(result, names=("−minibatch gradient", "−full gradient"))
        batches = tuple(trajectory.batch(t) for t in range(result.n_steps))
        keys: dict[tuple[int, ...], int] = {}
        index = np.empty(result.n_steps, dtype=np.int64)
        surfaces: list[np.ndarray] = []
        for t, batch in enumerate(batches):
            key = tuple(int(i) for i in batch)
            if key not in keys:
                keys[key] = len(surfaces)
                surfaces.append(safe_log(result.batch_landscape(t)).astype(np.float32))
            index[t] = keys[key]
        return cls(
            path=np.asarray(result.path(), dtype=np.float64),
            minibatch=minibatch,
            full=full,
            scale=scale,
            surfaces=np.stack(surfaces),
            surface_index=index,
            risk_surface=safe_log(result.landscape.risk).astype(np.float32),
            risk=np.asarray(trajectory.risk, dtype=np.float64),
            batch_loss=np.asarray(trajectory.batch_loss, dtype=np.float64),
            batches=batches,
        )

    @classmethod
    def of_view(cls, view: StochasticView) -> Frames:
        """Precompute the frames of a real network's :class:`StochasticView`.

        ``path`` and ``risk`` have ``T + 1`` rows (the final iterate last); the arrow is the
        minibatch gradient at the true iterate, projected on the plane; no full gradient is
        recorded (NaN). Steps without a stored minibatch landscape get ``surface_index -1``.
        """
        from sgdscape.views.network_figure import arrow_scale as view_arrow_scale
        from sgdscape.views.network_figure import view_arrows

        scale = view_arrow_scale(view)
        batches = tuple(view.batch(t) for t in range(view.n_steps))
        keys: dict[tuple[int, ...], int] = {}
        index = np.full(view.n_steps, -1, dtype=np.int64)
        surfaces: list[np.ndarray] = []
        for t in (int(s) for s in view.steps):
            key = tuple(int(i) for i in batches[t])
            if key not in keys:
                keys[key] = len(surfaces)
                surfaces.append(safe_log(view.batch_landscape(t)).astype(np.float32))
            index[t] = keys[key]
        return cls(
            path=np.asarray(view.path(), dtype=np.float64),
            minibatch=view_arrows(view),
            full=None,
            scale=scale,
            surfaces=np.stack(surfaces),
            surface_index=index,
            risk_surface=safe_log(view.landscape.risk).astype(np.float32),
            risk=np.asarray(view.risk, dtype=np.float64),
            batch_loss=np.asarray(view.batch_loss, dtype=np.float64),
            batches=batches,
        )


def _in_plane(result: RunResult, vectors: np.ndarray) -> np.ndarray:
    """Parameter-space vectors ``(T, p)`` expressed in the slice's plot coordinates ``(T, 2)``."""
    vectors = np.asarray(vectors, dtype=np.float64)
    plane = result.landscape.plane
    if plane is None:
        return vectors[:, :2]
    basis = np.stack([plane.d1.numpy(), plane.d2.numpy()], axis=1).astype(np.float64)  # (p, 2)
    finite = np.isfinite(vectors).all(-1)
    out = np.full((vectors.shape[0], 2), np.nan)
    if finite.any():
        out[finite] = np.linalg.lstsq(basis, vectors[finite].T, rcond=None)[0].T
    return out


def _finite(*values: np.ndarray) -> bool:
    return all(bool(np.isfinite(v).all()) for v in values)


class _TwoPanels:
    """The two-panel figure and its per-step drawing, shared by both explorers.

    Subclasses set ``self._frames`` (:class:`Frames`), ``self._axes`` (axis labels),
    ``self.figure`` (from :meth:`_make_figure`) and ``self.caption_widget``, and give
    ``_surface`` (the landscape on display) and ``_caption(step)``.
    """

    _frames: Frames
    _axes: tuple[str, str]
    figure: go.FigureWidget
    caption_widget: widgets.HTML
    #: the arrow rule's labels of the step shown (also in the caption), e.g. "−full gradient × 0.5"
    arrow_notes: tuple[str, ...] = ()
    #: subplot titles, the right colour bar's label, and whether the axes keep equal units
    _titles = (
        "log loss of the minibatch used at this step",
        "log empirical risk and the path so far",
    )
    _risk_label = "log empirical risk"
    _equal_aspect = True
    _minibatch_label = "−minibatch gradient"

    @property
    def _surface(self) -> Any:  # pragma: no cover - always overridden
        raise NotImplementedError

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
            (2, frames.risk_surface, self._risk_label, 1.01),
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
                line={"color": "black", "width": 1.5},
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
            equal = {"scaleanchor": f"x{suffix}", "scaleratio": 1} if self._equal_aspect else {}
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
        return go.FigureWidget(figure)

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


class Explorer(_TwoPanels, widgets.VBox):
    """Interactive two-panel view of a run (see the module docstring).

    Programmatic use (what the tests do)::

        explorer = explore(lr=0.05)
        explorer.step = 40                 # same as moving the slider
        explorer.drawn_iterate             # (2,) the iterate marker drawn now
        explorer.drawn_left_z              # (G2, G1) the left panel's log-loss grid
        explorer.drawn_path                # (k+1, 2) the path drawn on the right
        explorer.set_controls(lr=0.1)      # recompute, as the controls do
        explorer.result                    # the RunResult on display
    """

    def __init__(self, result: RunResult, *, play_interval: int = 60) -> None:
        self._result = result
        self._frames = Frames.of(result)
        self._syncing = False
        self._elapsed: float | None = None
        n = result.n_steps
        config = result.config
        self._axes = result.landscape.labels

        self.play = widgets.Play(
            value=0, min=0, max=n - 1, step=1, interval=play_interval, description="play"
        )
        self.slider = widgets.IntSlider(
            value=0,
            min=0,
            max=n - 1,
            description="step",
            continuous_update=True,
            layout=widgets.Layout(width="60%"),
        )
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_step, names="value")

        start = result.path()[0]
        self.lr_control = widgets.FloatLogSlider(
            value=config.lr,
            base=10,
            min=min(-4.0, math.floor(math.log10(config.lr))),
            max=max(1.0, math.ceil(math.log10(config.lr))),
            step=0.05,
            description="lr",
            readout_format=".3g",
            continuous_update=False,
        )
        self.init_controls = tuple(
            widgets.FloatSlider(
                value=float(np.clip(start[i], *limits)),
                min=limits[0],
                max=limits[1],
                step=(limits[1] - limits[0]) / 200,
                description=f"init {name}",
                readout_format=".2f",
                continuous_update=False,
            )
            for i, (name, limits) in enumerate(
                zip(self._axes, (config.w1_range, config.w2_range), strict=True)
            )
        )
        for control in self.init_controls:
            control.disabled = self._axis_indices() is None
        self.optimizer_control = widgets.Dropdown(
            options=sorted(OPTIMIZERS), value=config.optimizer, description="optimizer"
        )
        self.batch_control = widgets.BoundedIntText(
            value=config.batch_size, min=1, max=len(result.data), description="batch size"
        )
        self.lr_control.observe(lambda c: self._on_control({"lr": c["new"]}), names="value")
        for i, control in enumerate(self.init_controls):
            control.observe(lambda c, i=i: self._on_control({f"w{i + 1}": c["new"]}), names="value")
        self.optimizer_control.observe(
            lambda c: self._on_control({"optimizer": c["new"]}), names="value"
        )
        self.batch_control.observe(
            lambda c: self._on_control({"batch_size": c["new"]}), names="value"
        )
        self.status = widgets.HTML()
        self.caption_widget = widgets.HTML()

        self.figure = self._make_figure()
        super().__init__(
            [
                widgets.HBox([self.play, self.slider]),
                self.caption_widget,
                self.figure,
                widgets.HBox([self.lr_control, self.optimizer_control, self.batch_control]),
                widgets.HBox(list(self.init_controls)),
                self.status,
            ]
        )
        self._draw(0)
        self._show_status()

    @property
    def _surface(self) -> Any:
        return self._result.landscape

    # ------------------------------------------------------------------ public API

    @property
    def result(self) -> RunResult:
        """The run on display."""
        return self._result

    @property
    def frames(self) -> Frames:
        """The precomputed frames of the run on display."""
        return self._frames

    @property
    def n_steps(self) -> int:
        """Number of steps of the run on display."""
        return self._result.n_steps

    @property
    def step(self) -> int:
        """The step shown (the slider's value)."""
        return int(self.slider.value)

    @step.setter
    def step(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise SgdscapeError(f"step must be an integer, got {value!r}.")
        if not 0 <= value < self.n_steps:
            raise SgdscapeError(f"step must be between 0 and {self.n_steps - 1}, got {value}.")
        self.slider.value = int(value)  # the observer draws

    def set_controls(self, **changes: Any) -> RunResult:
        """Change controls and recompute the run, as the widgets do.

        Accepts ``lr``, ``w1``, ``w2`` (the init along the two plotted axes), ``init``,
        ``optimizer``, ``batch_size`` and any other :class:`RunConfig` field. Bad values
        raise :class:`SgdscapeError` and leave the explorer as it was.
        """
        result = self._recompute(changes)
        self._sync_controls()
        return result

    @property
    def caption(self) -> str:
        """The text above the figure describing the step shown."""
        return str(self.caption_widget.value)

    def _caption(self, step: int) -> str:
        frames, config = self._frames, self._result.config
        trajectory = self._result.trajectory
        batch = frames.batches[step]
        shown = ", ".join(str(i) for i in batch[:6]) + (", …" if len(batch) > 6 else "")
        diverged = (
            f" · <b>diverged at step {int(trajectory.diverged_step)}</b>"
            if trajectory.diverged
            else ""
        )
        return (
            f"<b>{config.model}</b> · {config.optimizer} lr={config.lr:g} · batch "
            f"{config.batch_size} · <b>step {step}/{self.n_steps - 1}</b>{diverged}<br>"
            f"minibatch [{shown}] ({len(batch)} sample(s)) · minibatch loss "
            f"{frames.batch_loss[step]:.4g} · empirical risk {frames.risk[step]:.4g}"
        ) + (f"<br>{held}" if (held := slice_text(self._result, step)) else "")

    def _on_step(self, change: Mapping[str, Any]) -> None:
        self._draw(int(change["new"]))

    # ------------------------------------------------------------------ recomputing

    def _config_changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        config = self._result.config
        out = dict(changes)
        axis_values = {k: out.pop(k) for k in ("w1", "w2") if k in out}
        if axis_values:
            model = config.model_spec
            if "init" in out:
                raise SgdscapeError("give either init or w1/w2, not both.")
            start = (
                np.asarray(config.init, dtype=np.float64)
                if config.init is not None
                else np.asarray(self._result.trajectory.iterates[0], dtype=np.float64)
            ).copy()
            if start.shape != (model.n_params,):
                raise SgdscapeError("explore needs a single init.")
            axes = self._axis_indices()
            if axes is None:
                raise SgdscapeError(
                    "w1/w2 set the init along the plotted axes, but this slice is not "
                    "axis-aligned; give the full init=(...) instead."
                )
            for key, value in axis_values.items():
                try:
                    start[axes[int(key[1]) - 1]] = float(value)
                except (TypeError, ValueError):
                    raise SgdscapeError(f"{key} must be a number, got {value!r}.") from None
            out["init"] = tuple(float(v) for v in start)
        if "optimizer" in out and "optimizer_options" not in out and config.optimizer_options:
            accepted = get_optimizer(out["optimizer"]).options
            out["optimizer_options"] = {
                key: value for key, value in config.optimizer_options.items() if key in accepted
            }
        return out

    def _axis_indices(self) -> tuple[int, int] | None:
        """Parameter indices of the two plotted axes; ``None`` for a slice along directions."""
        plane = self._result.landscape.plane
        if plane is not None and not plane.is_axis_aligned:
            return None
        names = self._result.config.model_spec.param_names
        labels = self._result.landscape.labels
        if all(label in names for label in labels):
            return names.index(labels[0]), names.index(labels[1])
        return 0, 1

    def _recompute(self, changes: Mapping[str, Any]) -> RunResult:
        config = self._result.config.replace(**self._config_changes(changes))
        began = time.perf_counter()
        result = run(config)
        frames = Frames.of(result)
        self._elapsed = time.perf_counter() - began
        self._result, self._frames = result, frames
        step = min(self.step, result.n_steps - 1)
        self._syncing = True
        try:
            self.slider.max = self.play.max = result.n_steps - 1
            self.slider.value = self.play.value = step
        finally:
            self._syncing = False
        self._redraw_run()
        self._draw(step)
        self._show_status()
        return result

    def _redraw_run(self) -> None:
        """Update what belongs to the whole run (risk surface, path hover, arrow legend)."""
        frames, surface = self._frames, self._result.landscape
        with self.figure.batch_update():
            for index in (_LEFT_SURFACE, _RIGHT_SURFACE):
                self.figure.data[index].x = surface.w1
                self.figure.data[index].y = surface.w2
            self.figure.data[_RIGHT_SURFACE].z = frames.risk_surface
            hover = self.figure.data[_PATH_HOVER]
            hover.x, hover.y = frames.path[:, 0], frames.path[:, 1]
            hover.customdata = _path_hover(frames)

    def _sync_controls(self) -> None:
        config = self._result.config
        start = self._frames.path[0]
        self._syncing = True
        try:
            self.lr_control.min = min(self.lr_control.min, math.floor(math.log10(config.lr)))
            self.lr_control.max = max(self.lr_control.max, math.ceil(math.log10(config.lr)))
            self.lr_control.value = config.lr
            for control, value in zip(self.init_controls, start, strict=True):
                if math.isfinite(value):
                    control.value = float(np.clip(value, control.min, control.max))
            self.optimizer_control.value = config.optimizer
            self.batch_control.max = len(self._result.data)
            self.batch_control.value = config.batch_size
        finally:
            self._syncing = False

    def _on_control(self, changes: Mapping[str, Any]) -> None:
        if self._syncing:
            return
        try:
            self._recompute(changes)
        except SgdscapeError as error:
            self.status.value = f"<span style='color:#b00'>sgdscape: error: {error}</span>"

    def _show_status(self) -> None:
        trajectory = self._result.trajectory
        assert trajectory.final_risk is not None  # the widget's runs record the risk
        risk = float(trajectory.final_risk)
        text = f"{self.n_steps} steps · final risk {risk:.4g}"
        if trajectory.diverged:
            text += f" · <b>diverged at step {int(trajectory.diverged_step)}</b>"
        elapsed = self._elapsed
        if elapsed is not None:
            text += f" · recomputed in {elapsed:.2f} s"
        self.status.value = f"<span style='font-family:monospace'>{text}</span>"


class NetworkExplorer(_TwoPanels, widgets.VBox):
    """The two panels of a real network's :class:`StochasticView`, with a step slider.

    Left: the log loss of the minibatch used at the step on the PCA plane, with the
    projected iterate and the minibatch gradient at the true iterate, projected. Right:
    the log full-data loss with the projected path so far. The slider visits the steps
    with a stored minibatch landscape (``view.steps``); nothing is recomputed.

    Programmatic use (what the tests do)::

        explorer = explore(view)
        explorer.step = 40                 # a stored step; same as moving the slider
        explorer.drawn_iterate, explorer.drawn_left_z, explorer.drawn_path
    """

    _titles = (
        "log loss of the minibatch used at this step",
        "log full-data loss and the projected path so far",
    )
    _risk_label = "log full-data loss"
    _equal_aspect = False  # PC2 usually spans far less than PC1
    _minibatch_label = "−minibatch gradient, projected"

    def __init__(self, view: StochasticView, *, play_interval: int = 60) -> None:
        self._view = view
        self._frames = Frames.of_view(view)
        self._axes = view.landscape.labels
        self._stored = [int(s) for s in view.steps]
        last = len(self._stored) - 1
        self.play = widgets.Play(
            value=0, min=0, max=last, step=1, interval=play_interval, description="play"
        )
        self.slider = widgets.IntSlider(
            value=0,
            min=0,
            max=last,
            description="step",
            readout=False,
            continuous_update=True,
            layout=widgets.Layout(width="60%"),
        )
        self.step_label = widgets.Label()
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(lambda change: self._draw(self._stored[change["new"]]), names="value")
        self.caption_widget = widgets.HTML()
        self.figure = self._make_figure()
        self.figure.data[_FULL_LEGEND].showlegend = False  # no full gradient for a network
        super().__init__(
            [
                widgets.HBox([self.play, self.slider, self.step_label]),
                self.caption_widget,
                self.figure,
            ]
        )
        self._draw(self._stored[0])

    @property
    def _surface(self) -> Any:
        return self._view.landscape

    @property
    def view(self) -> StochasticView:
        """The view on display."""
        return self._view

    @property
    def frames(self) -> Frames:
        """The precomputed frames of the view."""
        return self._frames

    @property
    def steps(self) -> list[int]:
        """The steps the slider visits (those with a stored minibatch landscape)."""
        return list(self._stored)

    @property
    def step(self) -> int:
        """The step shown."""
        return self._stored[int(self.slider.value)]

    @step.setter
    def step(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise SgdscapeError(f"step must be an integer, got {value!r}.")
        if int(value) not in self._stored:
            shown = ", ".join(str(s) for s in self._stored[:10])
            raise SgdscapeError(
                f"step {value} has no stored minibatch landscape; stored steps: {shown}"
                f"{', …' if len(self._stored) > 10 else ''}."
            )
        self.slider.value = self._stored.index(int(value))  # the observer draws

    @property
    def caption(self) -> str:
        """The text above the figure describing the step shown."""
        return str(self.caption_widget.value)

    def _caption(self, step: int) -> str:
        view, frames = self._view, self._frames
        info = view.info
        batch = frames.batches[step]
        shown = ", ".join(str(i) for i in batch[:6]) + (", …" if len(batch) > 6 else "")
        self.step_label.value = f"step {step} / {view.n_steps - 1}"
        return (
            f"<b>{info.get('name', 'network')}</b> ({info.get('n_params', '?')} parameters) · "
            f"{info.get('optimizer', '?')} lr={info.get('lr', 0):g} · batch "
            f"{info.get('batch_size', '?')} · <b>step {step}/{view.n_steps - 1}</b><br>"
            f"minibatch [{shown}] ({len(batch)} samples) · minibatch loss "
            f"{frames.batch_loss[step]:.4g} · full-data loss {frames.risk[step]:.4g} · "
            f"iterate {float(view.off_plane[step]):.3g} off the plane"
        )


def _path_hover(frames: Frames) -> np.ndarray:
    """``(T, 2)`` step number and risk of every iterate, for the path's hover labels."""
    return np.column_stack([np.arange(len(frames.risk)), frames.risk])


def explore(
    result_or_config: RunResult | RunConfig | StochasticView | str | Path | None = None,
    *,
    play_interval: int = 60,
    **config_changes: Any,
) -> Explorer | NetworkExplorer:
    """An interactive explorer of a run, or of a real network's stochastic view.

    Args:
        result_or_config: a finished :class:`RunResult`, a :class:`RunConfig`, the
            directory of a saved run, or ``None`` for the seed notebook's defaults; or a
            real network's :class:`~sgdscape.networks.recording.StochasticView` (or the path of
            its saved ``.npz``, from ``sgdscape network``), shown by a
            :class:`NetworkExplorer` (no controls, nothing recomputed).
        play_interval: milliseconds between frames when playing.
        **config_changes: :class:`RunConfig` fields to change (then the run is recomputed),
            for example ``lr=0.1, batch_size=10, optimizer="adam"``.

    Returns:
        An :class:`Explorer` (an ``ipywidgets.VBox``): display it as the last expression
        of a cell.
    """
    if isinstance(result_or_config, str | Path) and Path(result_or_config).suffix == ".npz":
        result_or_config = load_view(result_or_config)
    if isinstance(result_or_config, StochasticView):
        if config_changes:
            raise SgdscapeError(
                "a network's view is recorded, not recomputed; drop "
                f"{', '.join(sorted(config_changes))}."
            )
        _check_interval(play_interval)
        return NetworkExplorer(result_or_config, play_interval=play_interval)
    if isinstance(result_or_config, str | Path):
        result_or_config = load(result_or_config)
    if isinstance(result_or_config, RunResult):
        result = (
            run(result_or_config.config.replace(**config_changes))
            if config_changes
            else result_or_config
        )
    elif result_or_config is None or isinstance(result_or_config, RunConfig):
        config = result_or_config or RunConfig()
        result = run(config.replace(**config_changes) if config_changes else config)
    else:
        raise SgdscapeError(
            "explore takes a RunResult, a RunConfig, a saved run directory or nothing, got "
            f"{type(result_or_config).__name__}."
        )
    _check_interval(play_interval)
    return Explorer(result, play_interval=play_interval)


def _check_interval(play_interval: object) -> None:
    if isinstance(play_interval, bool) or not isinstance(play_interval, int) or play_interval < 1:
        raise SgdscapeError(
            f"play_interval must be a positive integer (ms), got {play_interval!r}."
        )
