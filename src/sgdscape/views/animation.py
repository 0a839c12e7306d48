"""GIF and MP4 animations of a run: the two-panel figure of :mod:`sgdscape.views.step_figure`, one frame a step.

Frames come from one :class:`sgdscape.views.step_figure.StepFigure` redrawn in place, grabbed by a
``matplotlib.animation`` writer: Pillow for GIF, the system's ``ffmpeg`` for MP4. The
file is written atomically: an existing file is only replaced once the whole animation
is encoded.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from sgdscape.errors import SgdscapeError, check_dpi, check_fps, check_int
from sgdscape.records.run import RunResult, atomic_path
from sgdscape.views.step_figure import resolve_steps

FORMATS = ("gif", "mp4")
DEFAULT_FPS = 10.0
DEFAULT_SIZE = (960, 420)
DEFAULT_DPI = 80.0

Progress = Callable[[int, int], None]


def animation_format(path: str | Path, format: str | None = None) -> str:
    """``"gif"`` or ``"mp4"`` from ``format`` or the file's extension; anything else is an error."""
    chosen = (format or Path(path).suffix.lstrip(".")).lower()
    if chosen not in FORMATS:
        raise SgdscapeError(
            f"cannot tell the animation format of {str(path)!r}: use a .gif or .mp4 file "
            f"(or format='gif'/'mp4')."
        )
    return chosen


def _writer(kind: str, fps: float) -> Any:
    from matplotlib.animation import FFMpegWriter, PillowWriter
    from PIL import Image

    if kind == "mp4":
        if shutil.which("ffmpeg") is None:
            raise SgdscapeError(
                "MP4 export needs the ffmpeg program on PATH and none was found; install ffmpeg "
                "(e.g. apt install ffmpeg, brew install ffmpeg, conda install ffmpeg) or export a GIF."
            )
        # The temporary file has no .mp4 suffix: name the container and a portable pixel format.
        return FFMpegWriter(
            fps=fps,  # type: ignore[arg-type]  # matplotlib takes float frame rates
            codec="h264",
            extra_args=["-pix_fmt", "yuv420p", "-f", "mp4"],
        )

    class GifWriter(PillowWriter):
        """PillowWriter that names the GIF format (the temporary file's suffix is not .gif)."""

        _frames: list[Any]  # set by PillowWriter.setup

        def grab_frame(self, **savefig_kwargs: Any) -> None:
            """Keep each frame as 8-bit palette pixels (as the GIF stores them): a third of
            the memory of PillowWriter's RGB frames, for exports of thousands of frames."""
            super().grab_frame(**savefig_kwargs)
            frame = self._frames[-1]
            if frame.mode == "RGB":
                self._frames[-1] = frame.quantize(256, method=Image.Quantize.MEDIANCUT)

        def finish(self) -> None:
            duration = max(round(1000 / self.fps), 20)
            self._frames[0].save(
                self.outfile,
                format="GIF",
                save_all=True,
                append_images=self._frames[1:],
                duration=duration,
                loop=0,
            )

    return GifWriter(fps=fps)  # type: ignore[arg-type]


class Drawing(Protocol):
    """A figure redrawn in place for any step (:class:`sgdscape.views.step_figure.StepFigure`, ...)."""

    fig: Any

    def draw(self, step: int) -> Any: ...

    def freeze_layout(self) -> None: ...


def animate(
    result: RunResult,
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    steps: Sequence[int] | range | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    dpi: float = DEFAULT_DPI,
    format: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the run's two-panel figure, one frame per step, as a GIF or an MP4.

    Args:
        result: a finished single-init run.
        path: output file; its extension (``.gif``/``.mp4``) picks the format unless
            ``format`` is given.
        fps: frames (steps) per second, > 0.
        steps: the steps to show, e.g. ``range(0, 50)``; default every step.
        size: ``(width, height)`` of a frame in pixels (MP4 rounds them down to even).
        dpi: dots per inch: font and line sizes relative to the frame.
        progress: called as ``progress(frames_done, frames_total)``.

    Returns:
        ``path``, written atomically.
    """
    from sgdscape.views.step_figure import StepFigure

    return animate_drawing(
        lambda figsize, dpi: StepFigure(result, figsize=figsize, dpi=dpi),
        path,
        lambda: resolve_steps(steps, result.n_steps),
        fps=fps,
        size=size,
        dpi=dpi,
        format=format,
        progress=progress,
    )


def animate_drawing(
    make_drawing: Callable[[tuple[float, float], float], Drawing],
    path: str | Path,
    steps: Callable[[], Sequence[int]],
    *,
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    dpi: float = DEFAULT_DPI,
    format: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write any :class:`Drawing` as a GIF or an MP4, one frame per step (see :func:`animate`).

    ``make_drawing(figsize_inches, dpi)`` builds the drawing once; ``steps()`` returns the
    steps to show (called after the other arguments are checked, so its errors come last).
    """
    import matplotlib

    kind = animation_format(path, format)
    fps = check_fps("fps", fps)
    dpi = check_dpi("dpi", dpi)
    width, height = (
        check_int(name, v, low=64, high=8192)
        for name, v in zip(("width", "height"), size, strict=True)
    )
    if kind == "mp4":
        width, height = width - width % 2, height - height % 2
    chosen = list(steps())
    path = Path(path)
    if path.is_dir():
        raise SgdscapeError(f"output {str(path)!r} is a directory; give a file name.")
    writer = _writer(kind, fps)

    from matplotlib import pyplot as plt

    with matplotlib.rc_context({"figure.dpi": dpi}):
        drawing = make_drawing((width / dpi, height / dpi), dpi)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            drawing.draw(chosen[0])
            drawing.freeze_layout()
        if any("constrained_layout not applied" in str(w.message) for w in caught):
            raise SgdscapeError(
                f"frames of {width}x{height} pixels at dpi {dpi:g} are too small for the "
                "figure's text; use a larger size or a smaller dpi."
            )
        for warning in caught:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        with atomic_path(path) as temporary, writer.saving(drawing.fig, str(temporary), dpi):
            for done, step in enumerate(chosen, start=1):
                drawing.draw(step)
                writer.grab_frame()
                if progress is not None:
                    progress(done, len(chosen))
    finally:
        plt.close(drawing.fig)
    return path
