"""What a step view needs, from a 2-parameter run or from a real network's recording.

The seed's two panels (the minibatch's landscape with the iterate and the -gradient arrows;
the risk with the path so far) are the same picture for a
:class:`~sgdscape.records.run.RunResult` and for a network's
:class:`~sgdscape.networks.recording.StochasticView`. :class:`StepSource` is that picture's
data; :func:`step_source` builds it from either, and every step view (the matplotlib
:class:`~sgdscape.views.step_figure.StepFigure`, the Plotly player, the Jupyter explorers)
draws from it alone, so a new capability is written once.

To add a panel or a quantity later (curvature along the path, many chains), give the source
a field (or put it in :attr:`StepSource.extras`) in both constructors and draw it in one
place.

Examples:
    >>> import sgdscape
    >>> source = step_source(sgdscape.run(sgdscape.RunConfig(epochs=1, grid=11)))
    >>> source.n_steps, source.path.shape[1], source.minibatch_gradients.shape
    (100, 2, (100, 2))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.landscape import Landscape
from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult
from sgdscape.views.style import Arrows, arrow_rule, gradient_scale, step_factors, window_of

if TYPE_CHECKING:  # a 2-parameter run never needs the networks package (about 30 ms to import)
    from sgdscape.networks.recording import StochasticView

#: the arrows' names in a 2-parameter run (minibatch, full) and in a network's view
RUN_ARROW_NAMES = ("-minibatch gradient", "-full gradient")
NETWORK_ARROW_NAME = "-minibatch gradient at the true iterate, projected"


@dataclass(frozen=True)
class StepSource:
    """Everything a two-panel step view draws, in plane coordinates.

    Attributes:
        landscape: the window: ``w1 (G1,)``, ``w2 (G2,)``, axis ``labels`` and the risk
            (full-data loss) ``risk (G2, G1)`` of the right panel.
        path: ``(T, 2)`` or ``(T + 1, 2)`` the iterates in plane coordinates (a network's
            last row is its final iterate).
        minibatch_gradients: ``(T, 2)`` the minibatch gradient of each step in the plane.
        true_gradients: ``(T, 2)`` the full-data gradient, or ``None`` if not recorded.
        batch_loss: ``(T,)`` the minibatch loss at each iterate.
        risk: ``(T,)`` or ``(T + 1,)`` the risk along the path, or ``None``.
        batches: ``T`` arrays of the sample indices of each step's minibatch.
        lr: the learning rate.
        arrow_scale: plot units per gradient unit for the whole view
            (:func:`sgdscape.views.style.gradient_scale`).
        arrow_names: legend names of the minibatch and the true-gradient arrow.
        stored: the steps that have a minibatch landscape, or ``None`` for every step.
        projected: the path is a projection of iterates that leave the plane (a network's
            PCA view): views draw the whole path faintly with its end, label the path
            "projected", and do not force equal units on the axes.
        risk_name: what the right panel shows, e.g. ``"empirical risk"``.
        others: ``(label, path (T', 2))`` of further runs drawn on the right panel (the
            variants of a compare run).
        label: the name of the run the left panel shows (a compare run's first label).
        surface_title: the title of the 3-D surface of the risk.
        extras: anything further a view may draw (a hook for new panels).
        minibatch_landscape: step -> ``(G2, G1)`` loss of that step's minibatch.
        titles: step -> ``(left, right, figure)`` titles (the figure title's second line
            follows a ``"\\n"``).
        point_text: step -> the iterate's hover text (Plotly, ``<br>`` breaks).
        point_label: step -> the iterate marker's legend text, or ``None`` for no entry.
    """

    landscape: Landscape
    path: np.ndarray
    minibatch_gradients: np.ndarray
    true_gradients: np.ndarray | None
    batch_loss: np.ndarray
    risk: np.ndarray | None
    batches: tuple[np.ndarray, ...]
    lr: float
    arrow_scale: float
    arrow_names: tuple[str, str]
    stored: tuple[int, ...] | None
    projected: bool
    risk_name: str
    others: tuple[tuple[str, np.ndarray], ...]
    label: str
    surface_title: str
    minibatch_landscape: Callable[[int], np.ndarray] = field(repr=False, compare=False)
    titles: Callable[[int], tuple[str, str, str]] = field(repr=False, compare=False)
    point_text: Callable[[int], str] = field(repr=False, compare=False)
    point_label: Callable[[int], str | None] = field(
        default=lambda step: None, repr=False, compare=False
    )
    extras: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_steps(self) -> int:
        """Number of steps ``T``."""
        return len(self.batches)

    @property
    def steps(self) -> list[int]:
        """The steps a view can show (those with a minibatch landscape), in order."""
        return list(range(self.n_steps)) if self.stored is None else list(self.stored)

    @property
    def window(self) -> tuple[float, float, float, float]:
        """The panel ``(x0, x1, y0, y1)``."""
        return window_of(self.landscape)

    @property
    def risk_label(self) -> str:
        """The right colour bar's label, e.g. ``"log empirical risk"``."""
        return f"log {self.risk_name}"

    @property
    def path_label(self) -> str:
        """The legend name of the path so far."""
        return "path so far (projected)" if self.projected else "path so far"

    def arrows(self, names: tuple[str, str] | None = None) -> tuple[Arrows, Arrows | None]:
        """The drawn ``(minibatch, true)`` -gradient arrows of every step (the arrow rule).

        ``true`` is ``None`` when the true gradient is not recorded; ``names`` replace
        :attr:`arrow_names` in the labels.
        """
        names = names or self.arrow_names
        minibatch = -np.asarray(self.minibatch_gradients, dtype=np.float64)
        true = (
            None
            if self.true_gradients is None
            else -np.asarray(self.true_gradients, dtype=np.float64)
        )
        window = self.window
        factors = step_factors(self.arrow_scale, [minibatch, true], window)
        points = np.asarray(self.path, dtype=np.float64)[: self.n_steps]
        drawn = arrow_rule(points, minibatch, factors, window, names[0])
        return drawn, None if true is None else arrow_rule(points, true, factors, window, names[1])

    def check_step(self, step: int) -> int:
        """``step`` if it is one of :attr:`steps`, else a :class:`SgdscapeError` saying which are."""
        if not 0 <= step < self.n_steps:
            raise SgdscapeError(f"step must be between 0 and {self.n_steps - 1}, got {step}.")
        if self.stored is not None and step not in self.stored:
            raise SgdscapeError(
                f"step {step} has no stored minibatch landscape; stored steps: "
                f"{_listed(self.stored)}."
            )
        return step

    def resolve_steps(self, steps: Sequence[int] | range | None) -> list[int]:
        """The steps to show: those given (each checked) or all of :attr:`steps`."""
        if steps is None:
            return self.steps
        chosen = [int(step) for step in steps]
        if not chosen:
            raise SgdscapeError(
                f"the step range is empty; choose steps within 0..{self.n_steps - 1}."
            )
        for step in chosen:
            if self.stored is None and not 0 <= step < self.n_steps:
                raise SgdscapeError(
                    f"step {step} is outside the run's steps 0..{self.n_steps - 1}."
                )
            if self.stored is not None and step not in self.stored:
                raise SgdscapeError(
                    f"step {step} has no stored minibatch landscape; stored steps: "
                    f"{_listed(self.stored)}."
                )
        return chosen


def _listed(steps: Sequence[int]) -> str:
    return ", ".join(str(s) for s in steps[:10]) + (", …" if len(steps) > 10 else "")


def step_source(obj: RunResult | StochasticView | StepSource) -> StepSource:
    """The :class:`StepSource` of a single-init run or of a network's stochastic view."""
    if isinstance(obj, StepSource):
        return obj
    if isinstance(obj, RunResult):
        return from_run(obj)
    from sgdscape.networks.recording import StochasticView

    if isinstance(obj, StochasticView):
        return from_view(obj)
    raise SgdscapeError(
        f"a step view draws a RunResult or a StochasticView, got {type(obj).__name__}."
    )


# --------------------------------------------------------------------------- a 2-parameter run


def gradient_in_plane(result: RunResult, gradient: np.ndarray) -> np.ndarray:
    """Plot coordinates of parameter-space vectors ``(..., p) -> (..., 2)`` (least squares
    on the slice's two directions; the first two parameters when there is no slice)."""
    plane = result.landscape.plane
    gradient = np.asarray(gradient, dtype=np.float64)
    if plane is None:
        return gradient[..., :2]
    basis = np.stack([plane.d1.numpy(), plane.d2.numpy()], axis=1).astype(np.float64)
    flat = gradient.reshape(-1, gradient.shape[-1])
    solved = np.linalg.lstsq(basis, flat.T, rcond=None)[0].T
    return solved.reshape(*gradient.shape[:-1], 2)


def run_arrow_scale(result: RunResult) -> float:
    """The run's arrow scale: its 95th-percentile (parameter-space) gradient spans 1/5 of
    the window."""
    width = float(result.landscape.w1[-1] - result.landscape.w1[0])
    return gradient_scale(result.trajectory.grads, width)


def batch_text(batch: np.ndarray) -> str:
    """Short text for a minibatch's sample indices: ``[7]``, ``[40–49]`` or ``[3, 17, 42, …]``.

    Consecutive indices collapse to a range, others show the first three, so that the
    title of a batch of any size fits above its panel.
    """
    indices = [int(i) for i in batch]
    if len(indices) <= 3:
        return "[" + ", ".join(str(i) for i in indices) + "]"
    if indices == list(range(indices[0], indices[0] + len(indices))):
        return f"[{indices[0]}–{indices[-1]}]"
    return "[" + ", ".join(str(i) for i in indices[:3]) + ", …]"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def slice_text(result: RunResult, step: int | None = None) -> str:
    """Where the plotted 2-D slice sits in a model with more than two parameters.

    An axis-aligned slice names the held parameters and their values, and (given
    ``step``) the iterate's own values of them, which training moves off the slice:
    ``"slice at b = 0.5 (iterate: b = 0.117)"``. A slice along two directions gives its
    origin and the iterate's distance from the plane. Empty for a two-parameter model
    plotted on its own axes.
    """
    plane = result.landscape.plane
    names = tuple(result.trajectory.param_names)
    if plane is None or len(names) <= 2:
        return ""
    d1, d2, origin = (t.numpy().astype(np.float64) for t in (plane.d1, plane.d2, plane.origin))
    iterate = None
    if step is not None:
        iterate = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
    if plane.is_axis_aligned:
        held = [i for i in range(len(names)) if d1[i] == 0 and d2[i] == 0]
        text = "slice at " + ", ".join(f"{names[i]} = {origin[i]:.3g}" for i in held)
        if iterate is not None and np.isfinite(iterate).all():
            text += " (iterate: " + ", ".join(f"{names[i]} = {iterate[i]:.3g}" for i in held)
            text += ")"
        return text
    text = "plane through (" + ", ".join(f"{v:.3g}" for v in origin) + ") along two directions"
    if iterate is not None and np.isfinite(iterate).all():
        basis = np.stack([d1, d2], axis=1)
        offset = iterate - origin
        residual = offset - basis @ np.linalg.lstsq(basis, offset, rcond=None)[0]
        text += f" (iterate {np.linalg.norm(residual):.3g} off it)"
    return text


def step_titles(result: RunResult, step: int) -> tuple[str, str, str]:
    """``(left, right, figure)`` titles of ``step`` of a run.

    The figure title names the model, optimizer and step; a second line (after ``"\\n"``;
    the Plotly views write it as ``<br>``) gives the slice of a model with more than two
    parameters (:func:`slice_text`) and, for a compare run, which run the minibatch panel
    shows.
    """
    trajectory = result.trajectory
    batch = trajectory.batch(step)
    left = f"step {step}: loss of minibatch {batch_text(batch)} ({_plural(len(batch), 'sample')})"
    config = result.config
    right = f"empirical risk ({config.loss_name}, {len(result.data)} samples): " + (
        "not recorded" if trajectory.risk is None else f"{trajectory.risk[step]:.3g}"
    )
    parts = [
        config.model,
        f"{config.optimizer} lr={config.lr:g}",
        f"batch {config.batch_size}",
        f"step {step}/{result.n_steps - 1}",
    ]
    if trajectory.diverged:
        parts.append(f"diverged at step {trajectory.diverged_step}")
    notes = [slice_text(result, step)]
    if result.others:
        notes.append(
            f"minibatch and arrows of run 1 of {len(result.trajectories)} "
            f"({result.config.labels[0]})"
        )
    lines = [" · ".join(parts), " · ".join(note for note in notes if note)]
    return left, right, "\n".join(line for line in lines if line)


def run_point_text(result: RunResult, step: int) -> str:
    """The hover text of the iterate at ``step`` of a run (Plotly)."""
    trajectory = result.trajectory
    labels = result.landscape.labels
    point = result.path()[step]
    return (
        f"step {step}<br>{labels[0]} = {point[0]:.4g}<br>{labels[1]} = {point[1]:.4g}<br>"
        f"minibatch loss = {float(trajectory.batch_loss[step]):.4g}<br>"
        + (
            "risk not recorded"
            if trajectory.risk is None
            else f"risk = {trajectory.risk[step]:.4g}"
        )
    )


def from_run(result: RunResult) -> StepSource:
    """The :class:`StepSource` of a single-init run (the first run of a compare run)."""
    trajectory = result.trajectory
    if trajectory.iterates.ndim != 2:
        raise SgdscapeError(
            "a step view draws one trajectory, got a batch of "
            f"{trajectory.iterates.shape[0]} inits (iterates of shape "
            f"{trajectory.iterates.shape}); pick one row, or give a single init such as "
            "init=(1.2, -2.3)."
        )
    config = result.config
    others = tuple(
        (label, np.asarray(result.path(other), dtype=np.float64))
        for label, other in result.trajectories[1:]
        if other.iterates.ndim == 2
    )
    return StepSource(
        landscape=result.landscape,
        path=np.asarray(result.path(), dtype=np.float64),
        minibatch_gradients=gradient_in_plane(result, trajectory.grads),
        true_gradients=(
            None
            if trajectory.full_grads is None
            else gradient_in_plane(result, trajectory.full_grads)
        ),
        batch_loss=np.asarray(trajectory.batch_loss, dtype=np.float64),
        risk=None if trajectory.risk is None else np.asarray(trajectory.risk, dtype=np.float64),
        batches=tuple(trajectory.batch(t) for t in range(result.n_steps)),
        lr=float(config.lr),
        arrow_scale=run_arrow_scale(result),
        arrow_names=RUN_ARROW_NAMES,
        stored=None,
        projected=False,
        risk_name="empirical risk",
        others=others,
        label=str(config.labels[0]),
        surface_title=(
            f"{config.model} · {config.optimizer} lr={config.lr:g} · batch "
            f"{config.batch_size}<br>{result.n_steps} steps on {len(result.data)} samples"
        ),
        minibatch_landscape=result.batch_landscape,
        titles=lambda step: step_titles(result, step),
        point_text=lambda step: run_point_text(result, step),
        extras={"result": result, **_curvature_extra(result)},
    )


def _curvature_extra(result: RunResult) -> dict[str, Any]:
    """``{"curvature": Curvature}`` of a single-init run that holds its curvature
    (:func:`~sgdscape.records.run.with_curvature`), else empty: the step views then add
    the sharpness panel."""
    curvatures = getattr(result, "curvatures", ())
    if curvatures and np.ndim(curvatures[0].lambda_max) == 1:
        return {"curvature": curvatures[0]}
    return {}


# --------------------------------------------------------------------------- a network's view


def view_heading(view: StochasticView) -> str:
    """``"name (p parameters) · optimizer lr=… · batch B"`` of a network's view."""
    info = view.info
    return (
        f"{info.get('name', 'network')} ({info.get('n_params', '?')} parameters) · "
        f"{info.get('optimizer', '?')} lr={info.get('lr', 0):g} · batch {info.get('batch_size')}"
    )


def network_titles(view: StochasticView, step: int) -> tuple[str, str, str]:
    """``(left, right, figure)`` titles of ``step`` of a network's view."""
    info = view.info
    left = (
        f"step {step}: minibatch of {len(view.batch(step))} samples, "
        f"loss {view.batch_loss[step]:.3g}"
    )
    right = (
        f"full data ({info.get('n_samples', '?')} samples), loss at step {step}: "
        f"{view.risk[step]:.3g}"
    )
    variance = view.explained_variance
    suptitle = (
        f"{view_heading(view)} · step {step}/{view.n_steps - 1} · PCA plane explains "
        f"{100 * float(np.sum(variance)):.1f}% of the path's variance"
    )
    return left, right, suptitle


def view_point_text(view: StochasticView, step: int) -> str:
    """The hover text of the projected iterate at ``step`` of a network's view (Plotly)."""
    labels = view.landscape.labels
    point = view.path()[step]
    return (
        f"step {step}<br>{labels[0]} = {point[0]:.4g}<br>{labels[1]} = {point[1]:.4g}<br>"
        f"minibatch loss = {float(view.batch_loss[step]):.4g}<br>"
        f"full-data loss = {float(view.risk[step]):.4g}<br>"
        f"{float(view.off_plane[step]):.3g} off the plane"
    )


def view_arrow_scale(view: StochasticView) -> float:
    """The view's arrow scale: its 95th-percentile projected gradient spans 1/5 of the
    window."""
    width = float(view.landscape.w1[-1] - view.landscape.w1[0])
    return gradient_scale(view.grads_plane, width)


def from_view(view: StochasticView) -> StepSource:
    """The :class:`StepSource` of a network's stochastic view (its PCA plane).

    Only the steps with a stored minibatch landscape can be shown; the arrow is the
    minibatch gradient at the true iterate, projected; no true gradient is recorded.
    """
    variance = view.explained_variance
    stored = tuple(int(s) for s in view.steps)
    return StepSource(
        landscape=view.landscape,
        path=np.asarray(view.path(), dtype=np.float64),
        minibatch_gradients=np.asarray(view.grads_plane, dtype=np.float64),
        true_gradients=None,
        batch_loss=np.asarray(view.batch_loss, dtype=np.float64),
        risk=np.asarray(view.risk, dtype=np.float64),
        batches=tuple(view.batch(t) for t in range(view.n_steps)),
        lr=float(view.info.get("lr", np.nan)),
        arrow_scale=view_arrow_scale(view),
        arrow_names=(NETWORK_ARROW_NAME, "-full gradient"),
        stored=None if stored == tuple(range(view.n_steps)) else stored,
        projected=True,
        risk_name="full-data loss",
        others=(),
        label=str(view.info.get("name", "network")),
        surface_title=(
            f"{view_heading(view)}<br>full data ({view.info.get('n_samples', '?')} samples) · "
            f"PCA plane explains {100 * float(np.sum(variance)):.1f}% of the path's variance"
        ),
        minibatch_landscape=view.batch_landscape,
        titles=lambda step: network_titles(view, step),
        point_text=lambda step: view_point_text(view, step),
        point_label=lambda step: f"iterate (projected; {view.off_plane[step]:.2g} off the plane)",
        extras={"view": view},
    )
