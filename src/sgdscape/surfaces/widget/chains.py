"""The chains in Jupyter: the slider page's figure (:func:`sgdscape.views.chains_plotly.chains_player`)
as a live ``FigureWidget`` with a play button and a slider over the recorded steps.

Moving the slider applies that step's precomputed update (the density, mean, ellipses, the
step marker and the left axes' window) with one ``batch_update``; nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from sgdscape.core.chains import Chains
from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.errors import check_int
from sgdscape.views.chains_plotly import chains_player


class ChainsExplorer(widgets.VBox):
    """A play button and a slider over recorded steps, above the chains' two panels.

    Attributes:
        figure: the ``go.FigureWidget`` (left: density, mean, ellipses; right: basins or
            spread with the current step marked).
        slider: the ``IntSlider`` over record indices (its readout is the step).
        steps: the recorded steps the slider visits.
    """

    def __init__(
        self,
        chains: Chains,
        landscape: Landscape,
        data: Dataset,
        *,
        steps: Sequence[int] | None = None,
        play_interval: int = 400,
    ) -> None:
        play_interval = check_int("play_interval", play_interval, low=10)
        figure = chains_player(chains, landscape, data, steps=steps)
        updates = figure.layout.sliders[0].steps
        self._updates = [step.args for step in updates]
        self.steps = [int(step.label) for step in updates]
        figure.layout.sliders = []
        self.figure = go.FigureWidget(figure)
        self.slider = widgets.IntSlider(
            value=0, min=0, max=len(self.steps) - 1, description="record", readout=False
        )
        self._label = widgets.Label(f"step {self.steps[0]}")
        play = widgets.Play(value=0, min=0, max=len(self.steps) - 1, interval=play_interval)
        widgets.jslink((play, "value"), (self.slider, "value"))
        self.slider.observe(self._on_step, names="value")
        super().__init__([widgets.HBox([play, self.slider, self._label]), self.figure])

    @property
    def step(self) -> int:
        """The recorded step shown."""
        return self.steps[self.slider.value]

    @step.setter
    def step(self, value: int) -> None:
        if int(value) not in self.steps:
            from sgdscape.errors import SgdscapeError

            raise SgdscapeError(f"step {value} is not one of the recorded steps {self.steps}.")
        self.slider.value = self.steps.index(int(value))

    def _on_step(self, change: Mapping[str, Any]) -> None:
        index = int(change["new"])
        update, layout, traces = self._updates[index]
        with self.figure.batch_update():
            for position, trace in enumerate(traces):
                for key in ("x", "y", "z"):
                    value = update[key][position]
                    if value is not None:
                        setattr(self.figure.data[trace], key, value)
            self.figure.layout.xaxis.range = layout["xaxis.range"]
            self.figure.layout.yaxis.range = layout["yaxis.range"]
            self.figure.layout.annotations[0].text = layout["annotations[0].text"]
        self._label.value = f"step {self.steps[index]}"


def explore_chains(
    chains: Any,
    landscape: Landscape | None = None,
    data: Dataset | None = None,
    **options: Any,
) -> ChainsExplorer:
    """A :class:`ChainsExplorer` of ``chains`` (a :class:`Chains` with its landscape and
    data, or a :class:`sgdscape.records.chain_presets.ChainsRun` alone)."""
    if landscape is None or data is None:
        return ChainsExplorer(chains.chains, chains.landscape, chains.data, **options)
    return ChainsExplorer(chains, landscape, data, **options)
