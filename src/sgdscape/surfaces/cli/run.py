"""``sgdscape run``: one experiment (by default the seed notebook's) and its files."""

from __future__ import annotations

import contextlib
import os
import signal
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sgdscape.surfaces.cli.options import (
    ModelHelp,
    check_out_dir,
    collector_frozen,
    collector_paused,
    select_steps,
    with_run_options,
)
from sgdscape.surfaces.cli.outputs import DeferredBar, with_progress
from sgdscape.surfaces.cli.root import app

if TYPE_CHECKING:
    from sgdscape.records.run import RunConfig


@app.command(cls=ModelHelp)
@with_run_options
def run(
    config: RunConfig,
    preset_name: str | None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("sgdscape-out"),
    figures: Annotated[
        str, typer.Option(help="Steps to draw: auto, all, none, or e.g. 0,10,99.")
    ] = "auto",
    curvature: Annotated[
        bool,
        typer.Option(
            "--curvature",
            help="Also compute the exact Hessians of the risk and of each minibatch at every "
            "iterate and over the window: saved in run.npz, drawn in curvature.png.",
        ),
    ] = False,
    fan: Annotated[
        bool,
        typer.Option(
            "--fan",
            help="Draw the fan of next steps on each step PNG's left panel: every sample's "
            "possible next iterate (a sample of 1024 minibatches for a bigger batch) and their "
            "mean, the full-gradient step. A single-init 2-parameter run only.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run an experiment (by default the seed notebook's) and write run.npz, config.toml, PNGs."""
    from sgdscape.records.presets import get_preset
    from sgdscape.records.run import run as run_experiment
    from sgdscape.records.run_files import prepare_out_dir

    check_out_dir(out)
    if figures.strip().lower() not in {"all", "none", "auto"}:
        select_steps(figures, 10**12)  # syntax check before computing
    with_basins = preset_name is not None and get_preset(preset_name).basins
    curvature = curvature or (preset_name is not None and get_preset(preset_name).curvature)

    result = with_progress(lambda progress: run_experiment(config, progress=progress), quiet)
    if fan:
        from sgdscape.views.fan import check_fan_run

        check_fan_run(result)  # before writing anything
    if curvature:
        from sgdscape.records.run import with_curvature

        result = with_curvature(result)
    basins = None
    if with_basins:
        from sgdscape.records.basins import basins as compute_basins

        basins = compute_basins(config)
    single = result.trajectory.iterates.ndim == 2
    steps = select_steps(figures, result.n_steps) if single else []
    with contextlib.ExitStack() as frozen:
        if _draws_anything(result, steps, basins):  # --figures none on a plain run draws nothing
            with collector_paused():  # matplotlib's objects live as long as torch's: spare them
                _drawing_modules()
                frozen.enter_context(collector_frozen())
        written = _write_outputs(result, prepare_out_dir(out), steps, quiet, basins, fan=fan)
    if result.data.source:  # what was read from a CSV file: rows, columns, skipped lines
        typer.echo(f"sgdscape run: {result.data.source}")
    for label, trajectory in result.trajectories:
        prefix = f"[{label}] " if result.others else ""
        typer.echo(f"sgdscape run: {prefix}{_summary(trajectory)}")
    for path in written:
        typer.echo(f"wrote {path}")


def _summary(trajectory: Any) -> str:
    import numpy as np

    diverged = np.atleast_1d(trajectory.diverged_step) >= 0
    risks = np.atleast_1d(trajectory.final_risk)
    if diverged.size == 1:
        if diverged[0]:
            step = int(np.atleast_1d(trajectory.diverged_step)[0])
            return f"diverged at step {step} (inf or NaN); recorded up to there"
        return f"{trajectory.n_steps} steps, final risk {float(risks[0]):.4g}"
    finite = risks[~diverged]
    best = (
        f", final risk min {finite.min():.4g} median {np.median(finite):.4g}" if finite.size else ""
    )
    return (
        f"{diverged.size} runs of {trajectory.n_steps} steps, {int(diverged.sum())} diverged{best}"
    )


def _draws_anything(result: Any, steps: list[int], basins: Any) -> bool:
    """Whether the run's outputs include a figure (``--figures none`` on a single run: none)."""
    many = result.trajectory.iterates.ndim == 3  # paths.png
    return bool(steps or many or result.others or result.curvatures or basins is not None)


def _drawing_modules() -> None:
    """Import what the outputs are drawn with: matplotlib on Agg, a figure and its canvas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.backends.backend_agg
    import matplotlib.figure

    import sgdscape.views.step_figure  # noqa: F401


def _write_outputs(
    result: Any, out: Path, steps: list[int], quiet: bool, basins: Any = None, fan: bool = False
) -> list[Path]:
    """Write run.npz, config.toml and the PNGs into ``out`` as one set, committed together."""
    from sgdscape.records.run_files import output_set, write_run_files

    with output_set(out, "run") as stage:
        names = write_run_files(result, stage)
        if not _draws_anything(result, steps, basins):
            return [out / name for name in names]  # nothing to draw: no matplotlib
        import matplotlib

        matplotlib.use("Agg")
        from sgdscape.views.overlays import plot_basins, plot_compare, plot_paths
        from sgdscape.views.step_figure import save_figure

        if result.others:
            names.append(save_figure(plot_compare(result), stage / "compare.png").name)
        if result.trajectory.iterates.ndim == 3:
            names.append(save_figure(plot_paths(result), stage / "paths.png").name)
        if basins is not None:
            figure = plot_basins(basins, result.landscape)
            names.append(save_figure(figure, stage / "basins.png").name)
        if result.curvatures:
            from sgdscape.views.curvature_figure import plot_curvature, plot_stability

            names.append(save_figure(plot_curvature(result), stage / "curvature.png").name)
            if result.others:
                names.append(save_figure(plot_stability(result), stage / "stability.png").name)
        width = len(str(result.n_steps - 1))
        if steps:
            paths = [stage / f"step_{step:0{width}d}.png" for step in steps]
            with DeferredBar("figures", quiet) as bar:
                for done, _ in enumerate(
                    write_step_figures(result, zip(steps, paths, strict=True), fan=fan), start=1
                ):
                    bar.update(completed=done, total=len(steps))
            names += [path.name for path in paths]
    return [out / name for name in names]


def write_step_figures(
    result: Any, steps_and_paths: Iterable[tuple[int, Path]], *, fan: bool = False
) -> Iterator[Path]:
    """Write the two-panel figure of each ``(step, path)`` as a PNG, atomically; yields each
    path once written. ``fan``: with the fan of next steps on the left panel
    (:class:`~sgdscape.views.fan.FanOverlay`).

    One :class:`~sgdscape.views.step_figure.StepFigure` is laid out for the first step, as
    ``savefig`` lays out ``plot_step``'s figure, and then repaints only what changes from
    step to step (its ``render``): a third of the cost of
    ``save_figure(plot_step(result, step), path)``. A step whose titles take other lines, or
    whose tick labels or titles need more room than that layout gave (a wider colour-bar
    label, say), gets a figure laid out for it alone. So each PNG is either the first step's
    layout or its own, whatever order or process drew it.

    Where the platform can fork and two CPUs are free, the later half of the steps is shared
    with one forked process that inherits the laid-out figure before anything is painted
    (:func:`_forked_share`), so the two processes paint from the start; it writes its PNGs
    beside their paths, and this process moves them into place once it has ended well, so
    every rename happens here, in order. Anything else, or the share of a child that
    failed, is drawn here.
    """
    pairs = list(steps_and_paths)
    if not pairs:
        return
    first = _LaidOut(result, pairs[0][0], fan=fan)
    theirs = pairs[(len(pairs) + 1) // 2 :] if _can_fork(result, fan, len(pairs) - 1) else []
    mine = pairs[: len(pairs) - len(theirs)]
    child = _forked_share(result, first, theirs, fan) if theirs else None
    try:
        _write_png(first, mine[0][1])  # the step it was laid out for, as it stands
        yield mine[0][1]
        yield from _write_steps(result, first, mine[1:], fan)
    except BaseException:
        if child is not None:
            os.kill(child, signal.SIGTERM)
            _joined(child, theirs)
        raise
    if child is not None and _joined(child, theirs):
        for _, path in theirs:
            os.replace(_handed_over(path, child), path)
            yield path
    else:  # no child, or it failed: draw its share here
        yield from _write_steps(result, first, theirs, fan)


def _write_steps(
    result: Any,
    first: _LaidOut,
    steps_and_paths: Sequence[tuple[int, Path]],
    fan: bool,
    write: Callable[[_LaidOut, Path], None] | None = None,
) -> Iterator[Path]:
    """Write each ``(step, path)`` in ``first``'s layout where it fits, else in its own
    (``write``: how a painted figure goes to its path; :func:`_write_png` by default)."""
    write = write or _write_png
    for step, path in steps_and_paths:
        if first.show(step):
            write(first, path)
        else:
            own = _LaidOut(result, step, fan=fan)
            write(own, path)
            own.close()
        yield path


def _save_png(laid_out: _LaidOut, path: Path) -> None:
    """Paint ``laid_out``'s figure as it stands and save it to ``path`` as a PNG."""
    from PIL import Image

    Image.fromarray(laid_out.figure.render()).save(path, format="png")


def _write_png(laid_out: _LaidOut, path: Path) -> None:
    """Paint ``laid_out``'s figure as it stands and write it to ``path`` atomically."""
    from sgdscape.io import atomic_path

    with atomic_path(path) as temporary:
        _save_png(laid_out, temporary)


def _handed_over(path: Path, child: int) -> Path:
    """Where the forked ``child`` writes ``path``'s PNG: a temporary of ``atomic_path``'s
    pattern, which :func:`sgdscape.io.clean_temporaries` removes once that process is gone."""
    return path.with_name(f".{path.name}.{child}-{0:012x}.tmp")


def _can_fork(result: Any, fan: bool, n_steps: int) -> bool:
    """Whether a forked child may draw some of ``n_steps`` further steps: the platform forks,
    two CPUs are ours, and drawing a step needs no torch in the child (the minibatch
    landscapes are sums of the stored per-sample grids; the fan would evaluate gradients, and
    torch's thread pools are not safe to use after a fork)."""
    if n_steps < 2 or fan or not hasattr(os, "fork"):
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) >= 2 and result.landscape.sample_loss is not None


def _forked_share(
    result: Any, first: _LaidOut, steps_and_paths: Sequence[tuple[int, Path]], fan: bool
) -> int | None:
    """Fork a child that draws ``steps_and_paths`` through ``first`` (laid out, not yet
    painted) into their :func:`_handed_over` files and exits; its process id, or
    ``None`` if the fork failed. The child writes nothing to the terminal, renames nothing,
    and ends with ``os._exit``: 0 when every file is written."""
    try:
        with warnings.catch_warnings():  # Python 3.12+ warns of forking a threaded process;
            warnings.simplefilter("ignore", DeprecationWarning)  # the child uses no thread pool
            child = os.fork()
    except OSError:
        return None
    if child == 0:  # pragma: no cover (the child's coverage is not collected)
        code, me = 1, os.getpid()
        try:
            for _ in _write_steps(
                result,
                first,
                steps_and_paths,
                fan,
                lambda laid_out, path: _save_png(laid_out, _handed_over(path, me)),
            ):
                pass
            code = 0
        finally:
            os._exit(code)
    return child


def _joined(child: int, steps_and_paths: Sequence[tuple[int, Path]]) -> bool:
    """Wait for the forked ``child``; whether it wrote its share (exit status 0). If not,
    whatever it left of its files is removed."""
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return True
    for _, path in steps_and_paths:
        _handed_over(path, child).unlink(missing_ok=True)
    return False


class _LaidOut:
    """A StepFigure laid out for one step, and the room that layout gives."""

    def __init__(self, result: Any, step: int, *, fan: bool = False) -> None:
        from sgdscape.views.step_figure import StepFigure

        panels: list[Any] = []
        if getattr(result, "curvatures", ()) and result.curvatures[0].lambda_max.ndim == 1:
            from sgdscape.views.curvature_figure import SharpnessPanel

            panels.append(SharpnessPanel.of(result))  # run --curvature: sharpness beside
        overlays: list[Any] = []
        if fan:
            from sgdscape.views.fan import FanOverlay

            overlays.append(FanOverlay(result))  # run --fan: the fan on the left panel
        self.figure = StepFigure(
            result, dpi=FIGURE_DPI, panels=panels, overlays=overlays, pyplot=False
        )
        self.figure.draw(step)
        fig = self.figure.fig
        # lay out once, as savefig would, without painting; then keep that layout
        engine = fig.get_layout_engine()
        assert engine is not None  # StepFigure's constrained layout
        engine.execute(fig)  # what draw_without_rendering would do first, without the draw
        fig.set_layout_engine(None)
        self.room = _room(fig)
        self.suptitle_y = _suptitle(fig).get_position()[1]

    def show(self, step: int) -> bool:
        """Draw ``step``; whether it fits this layout (if not, drop this figure)."""
        self.figure.draw(step)
        fig = self.figure.fig
        # the layout moved the suptitle to make room; draw() puts it back at its default
        fig.suptitle(fig.get_suptitle(), y=self.suptitle_y)
        return _fits(_room(fig), self.room)

    def close(self) -> None:
        """Let the figure go (pyplot never held it: nothing to close there)."""
        self.figure.fig.clear()


#: dots per inch of the run's PNGs (``save_figure``'s default)
FIGURE_DPI = 100


def _suptitle(fig: Any) -> Any:
    """The figure's suptitle artist (matplotlib has no public getter for the artist)."""
    text = fig.get_suptitle()
    return next(artist for artist in fig.texts if artist.get_text() == text)


def _room(fig: Any) -> tuple[tuple[int, ...], list[Any]]:
    """What a layout makes room for: the lines of the suptitle and of each axes title, and
    each axes' extent with its tick labels, labels and titles (display pixels)."""
    lines = tuple(t.count("\n") for t in [fig.get_suptitle(), *(a.get_title() for a in fig.axes)])
    renderer = fig.canvas.get_renderer()
    return lines, [axes.get_tightbbox(renderer, for_layout_only=True) for axes in fig.axes]


def _fits(
    needed: tuple[tuple[int, ...], list[Any]], given: tuple[tuple[int, ...], list[Any]]
) -> bool:
    """Whether a step needing ``needed`` fits the layout that made ``given`` room (to 0.5 px)."""
    if needed[0] != given[0]:
        return False
    return all(
        box.x0 >= room.x0 - 0.5
        and box.y0 >= room.y0 - 0.5
        and box.x1 <= room.x1 + 0.5
        and box.y1 <= room.y1 + 0.5
        for box, room in zip(needed[1], given[1], strict=True)
    )
