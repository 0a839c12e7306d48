"""A real network's explorer: the two panels of a recorded view, with a step slider.

:class:`NetworkExplorer` draws through the same
:class:`~sgdscape.surfaces.widget.panels.TwoPanels` as the lab's explorer, from the view's
:class:`~sgdscape.views.step_source.StepSource`; nothing is recomputed.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import StochasticView
from sgdscape.surfaces.widget.panels import Frames, TwoPanels


class NetworkExplorer(TwoPanels, widgets.VBox):
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

    def __init__(self, view: StochasticView, *, play_interval: int = 60) -> None:
        self._view = view
        self._frames = Frames.of_view(view)
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
        super().__init__(
            [
                widgets.HBox([self.play, self.slider, self.step_label]),
                self.caption_widget,
                self.figure,
            ]
        )
        self._draw(self._stored[0])

    @property
    def view(self) -> StochasticView:
        """The view on display."""
        return self._view

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
