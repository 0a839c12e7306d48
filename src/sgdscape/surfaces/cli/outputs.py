"""Output helpers shared by the commands: progress bars on stderr, animations, surface pages."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgdscape.errors import SgdscapeError


def animate_with_bar(
    result: Any,
    path: Path,
    steps: Sequence[int],
    fps: float,
    size: tuple[int, int] | None,
    dpi: float,
    quiet: bool,
    fan: bool = False,
) -> None:
    """A GIF/MP4 of a run, or of a network's StochasticView, with a progress bar (``fan``:
    a run's with the fan of next steps on the left panel)."""
    import matplotlib

    matplotlib.use("Agg")
    from rich.progress import Progress

    from sgdscape.networks.recording import StochasticView
    from sgdscape.views.animation import DEFAULT_SIZE, animate

    if isinstance(result, StochasticView):
        from sgdscape.views.network_figure import FRAME_SIZE, animate_network

        draw: Any = animate_network
        size = size or FRAME_SIZE
    else:
        draw, size = functools.partial(animate, fan=fan), size or DEFAULT_SIZE
    console = progress_console()
    with Progress(transient=True, console=console, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task(path.suffix.lstrip(".").upper(), total=len(steps))
        draw(
            result,
            path,
            fps=fps,
            steps=steps,
            size=size,
            dpi=dpi,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def progress_console() -> Any:
    """Progress bars go to stderr, so stdout keeps only the results."""
    from rich.console import Console

    return Console(stderr=True)


#: seconds of work before a progress bar appears: shorter work (the seed's run and its five
#: figures) never draws one, nor pays for importing rich
BAR_DELAY_S = 1.0


class DeferredBar:
    """A progress bar on stderr that appears only once the work has run ``delay`` seconds.

    Call :meth:`update` as the work goes (it is cheap until the bar appears) and
    :meth:`close` at the end (or use it as a context manager). ``quiet``, or a stderr that
    is not a terminal, never shows one.
    """

    def __init__(self, description: str, quiet: bool, delay: float = BAR_DELAY_S) -> None:
        import sys
        import time

        quiet = quiet or not sys.stderr.isatty()
        self.description, self.quiet, self.delay = description, quiet, delay
        self._clock = time.monotonic
        self._began = self._clock()
        self._bar: Any = None
        self._task: Any = None

    def update(
        self, description: str | None = None, completed: int = 0, total: int | None = None
    ) -> None:
        """Report progress: ``completed`` of ``total`` (``None``: unknown) in stage ``description``."""
        if self.quiet:
            return
        if self._bar is None:
            if self._clock() - self._began < self.delay:
                return
            from rich.progress import Progress

            self._bar = Progress(transient=True, console=progress_console())
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total)
        self._bar.update(
            self._task,
            description=description or self.description,
            completed=completed,
            total=total,
        )

    def close(self) -> None:
        """Take the bar off the screen, if it was shown."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> DeferredBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def with_progress(work: Any, quiet: bool) -> Any:
    """``work(update)`` with ``update(stage, done, total)`` driving a :class:`DeferredBar`
    (``work(None)`` when ``quiet``)."""
    if quiet:
        return work(None)
    with DeferredBar("landscape", quiet) as bar:

        def update(stage: str, done: int, total: int) -> None:
            bar.update(stage, done, total)

        return work(update)


def write_network_surface(view: Any, path: Path) -> Path:
    """The view's 3-D surface page at ``path`` (atomically)."""
    import importlib.util

    from sgdscape.surfaces.export import export_figure_html
    from sgdscape.views.network_figure import network_surface

    if importlib.util.find_spec("plotly") is None:  # pragma: no cover - depends on the env
        raise SgdscapeError(
            "the 3-D surface needs plotly; install it with: pip install 'sgdscape[export]'."
        )
    return export_figure_html(
        network_surface(view),
        path,
        title=f"sgdscape: the loss surface of {view.info.get('name', 'a network')}",
        about="The full-data loss (log scale) on the PCA plane of the training path, and the "
        "path's projection drawn on the surface. Drag to rotate, scroll to zoom, hover for values.",
    )
