"""The 2-parameter lab's explorer: the two panels of a run, with controls that recompute.

:class:`Explorer` draws through :class:`~sgdscape.surfaces.widget.panels.TwoPanels` from
the run's :class:`~sgdscape.views.step_source.StepSource`; changing a control runs
``sgdscape.run(config.replace(...))`` again and swaps in the new frames.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np

from sgdscape.core.optimizers import OPTIMIZERS, get_optimizer
from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult, run, with_curvature
from sgdscape.surfaces.widget.panels import (
    _LEFT_SURFACE,
    _PATH_HOVER,
    _RIGHT_SURFACE,
    _SHARPNESS_TRACES,
    Frames,
    TwoPanels,
    _path_hover,
)
from sgdscape.views.fan import check_fan_run, fan_label, fan_scales, fan_traces, magnified, run_fan
from sgdscape.views.plotly_figures import sharpness_of, sharpness_traces
from sgdscape.views.step_source import slice_text

#: Controls the explorer offers, beside any other :class:`RunConfig` field.
CONTROLS = ("lr", "w1", "w2", "init", "optimizer", "batch_size")


class Explorer(TwoPanels, widgets.VBox):
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

    def __init__(
        self,
        result: RunResult,
        *,
        play_interval: int = 60,
        curvature: bool | None = None,
        fan: bool = False,
    ) -> None:
        if fan:
            check_fan_run(result)
        self._fan_first: int | None = None  # index of the first fan trace, when shown
        self.fan_scale = 1.0  # the magnification of the fan drawn now
        # the sharpness row: on for a result that holds its curvature, or asked for
        self._curvature = bool(result.curvatures) if curvature is None else bool(curvature)
        if self._curvature and not result.curvatures:
            result = with_curvature(result)
        self._result = result
        self._frames = Frames.of(result)
        self._syncing = False
        self._elapsed: float | None = None
        n = result.n_steps
        config = result.config

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
        if fan:  # the fan of next steps on the left panel (its data comes with each step)
            self._fan_first = len(self.figure.data)
            for trace in fan_traces(run_fan(result, 0)):
                self.figure.add_trace(trace.update(xaxis="x", yaxis="y"))
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

    # ------------------------------------------------------------------ public API

    @property
    def result(self) -> RunResult:
        """The run on display."""
        return self._result

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

    def _draw(self, step: int) -> None:
        """Show ``step`` (:meth:`TwoPanels._draw`) and, when shown, its fan of next steps."""
        super()._draw(step)
        if self._fan_first is not None:
            self._draw_fan(step)

    def _draw_fan(self, step: int) -> None:
        """Replace the fan traces by ``step``'s fan, magnified as the panel's arrows are."""
        assert self._fan_first is not None
        self.fan_scale = float(fan_scales(self._source)[step])
        fan = run_fan(self._result, step)
        new = fan_traces(magnified(fan, self.fan_scale), label=fan_label(fan, self.fan_scale))
        with self.figure.batch_update():
            for trace, drawn in zip(self.figure.data[self._fan_first :], new, strict=True):
                trace.x, trace.y, trace.name = drawn.x, drawn.y, drawn.name

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
        if self._curvature:
            result = with_curvature(result)
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
            curvature = sharpness_of(frames.source)
            if curvature is not None and len(self.figure.data) > _SHARPNESS_TRACES:
                traces, log = sharpness_traces(curvature)
                for index, trace in enumerate(traces[:3], start=_SHARPNESS_TRACES):
                    drawn = self.figure.data[index]
                    drawn.x, drawn.y, drawn.name = trace["x"], trace["y"], trace["name"]
                self.figure.layout.yaxis3.type = "log" if log else "linear"
                self.figure.layout.xaxis3.range = [-0.5, curvature.n_steps - 0.5]

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
