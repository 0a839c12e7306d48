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

The package's modules: :mod:`~sgdscape.surfaces.widget.panels` (the frames and the
two-panel drawing both explorers share), :mod:`~sgdscape.surfaces.widget.explorer` (the
lab's :class:`Explorer`), :mod:`~sgdscape.surfaces.widget.network` (the network's
:class:`NetworkExplorer`); :func:`explore` here picks one.

Needs the ``notebook`` extra (``ipywidgets``, ``plotly``, ``anywidget``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import StochasticView, load_view
from sgdscape.records.run import RunConfig, RunResult, run
from sgdscape.records.run_files import load
from sgdscape.surfaces.widget.explorer import CONTROLS, Explorer
from sgdscape.surfaces.widget.network import NetworkExplorer
from sgdscape.surfaces.widget.panels import PATH_COLOUR, TRUE_GRADIENT_COLOUR, Frames

__all__ = [
    "CONTROLS",
    "PATH_COLOUR",
    "TRUE_GRADIENT_COLOUR",
    "Explorer",
    "Frames",
    "NetworkExplorer",
    "explore",
]


def explore(
    result_or_config: RunResult | RunConfig | StochasticView | str | Path | None = None,
    *,
    play_interval: int = 60,
    curvature: bool | None = None,
    fan: bool = False,
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
        curvature: draw the sharpness row (λmax of the risk and of each minibatch against
            step, with the 2/lr line), computing the run's curvature if it holds none;
            default: on when the run holds its curvature (``sgdscape run --curvature``).
        fan: draw the fan of next steps on the left panel (every sample's possible next
            iterate, or a sample of minibatches, and their mean, the full-gradient step),
            updated with the step; a single-init 2-parameter run only.
        **config_changes: :class:`RunConfig` fields to change (then the run is recomputed),
            for example ``lr=0.1, batch_size=10, optimizer="adam"``.

    Returns:
        An :class:`Explorer` (an ``ipywidgets.VBox``): display it as the last expression
        of a cell.
    """
    if isinstance(result_or_config, str | Path) and Path(result_or_config).suffix == ".npz":
        result_or_config = load_view(result_or_config)
    if isinstance(result_or_config, StochasticView):
        if fan:
            raise SgdscapeError("the fan of next steps is drawn for a 2-parameter run only.")
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
    if curvature is not None and not isinstance(curvature, bool):
        raise SgdscapeError(f"curvature must be True, False or None, got {curvature!r}.")
    return Explorer(result, play_interval=play_interval, curvature=curvature, fan=fan)


def _check_interval(play_interval: object) -> None:
    if isinstance(play_interval, bool) or not isinstance(play_interval, int) or play_interval < 1:
        raise SgdscapeError(
            f"play_interval must be a positive integer (ms), got {play_interval!r}."
        )
