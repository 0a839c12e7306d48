"""GIF and MP4 animations of a run: the two-panel figure of :mod:`sgdscape.views.step_figure`, one frame a step.

Frames come from one :class:`sgdscape.views.step_figure.StepFigure` redrawn in place; each frame's
RGBA pixels are streamed into the system's ``ffmpeg``, which encodes them as they arrive
(a GIF with one palette per frame, or an H.264 MP4), so memory stays bounded for runs of
thousands of steps. Without ffmpeg, a GIF is written by Pillow, which keeps every frame
until the end (with a warning for long exports); an MP4 needs ffmpeg. The file is written
atomically: an existing file is only replaced once the whole animation is encoded.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sgdscape.errors import SgdscapeError, check_dpi, check_fps, check_int
from sgdscape.networks.recording import StochasticView
from sgdscape.records.run import RunResult, atomic_path
from sgdscape.views.step_source import step_source

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


GIF_PALETTES = "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1"
"""ffmpeg filter for GIFs: each frame gets its own 256-colour palette, computed from that
frame alone, so frames are encoded one at a time and nothing accumulates."""

Sink = Callable[[bytes], None]
"""Takes one frame: ``height x width x 4`` RGBA bytes, row-major, top row first."""


def _need_ffmpeg(kind: str) -> str:
    """The ffmpeg program's path; MP4 without it is a one-line error."""
    found = shutil.which("ffmpeg")
    if found is None and kind == "mp4":
        raise SgdscapeError(
            "MP4 export needs the ffmpeg program on PATH and none was found; install ffmpeg "
            "(e.g. apt install ffmpeg, brew install ffmpeg, conda install ffmpeg) or export a GIF."
        )
    return found or ""


@contextmanager
def _ffmpeg_sink(
    ffmpeg: str, kind: str, path: Path, size: tuple[int, int], fps: float
) -> Iterator[Sink]:
    """Stream raw RGBA frames of ``size`` (width, height) pixels into ffmpeg, which
    encodes each one as it arrives into ``path`` (GIF or MP4): memory stays bounded
    however many frames there are. On any error ffmpeg is stopped."""
    width, height = size
    if kind == "gif":  # GIF delays are whole centiseconds; browsers slow < 2 cs to 10 cs
        rate, output = min(fps, 50.0), ["-filter_complex", GIF_PALETTES, "-f", "gif"]
    else:
        rate, output = fps, ["-c:v", "h264", "-pix_fmt", "yuv420p", "-f", "mp4"]
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{width}x{height}",
        "-r", f"{rate:.6g}", "-i", "pipe:0", *output, str(path),
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=log)
        assert process.stdin is not None

        def failure(code: int | None) -> SgdscapeError:
            log.seek(0)
            said = log.read().decode(errors="replace").strip().splitlines()
            return SgdscapeError(
                f"ffmpeg could not write the {kind.upper()} (exit code {code}): "
                + (said[-1] if said else "no message")
            )

        stdin = process.stdin

        def send(frame: bytes) -> None:
            stdin.write(frame)  # (the count it returns is always all of it: a blocking pipe)

        try:
            yield send
            process.stdin.close()
            code = process.wait()
        except BaseException as error:
            process.kill()
            code = process.wait()
            with suppress(OSError):  # a broken pipe: ffmpeg is gone already
                process.stdin.close()
            if isinstance(error, BrokenPipeError):
                raise failure(code) from error
            raise
        if code != 0:
            raise failure(code)


@contextmanager
def _pillow_gif_sink(path: Path, size: tuple[int, int], fps: float) -> Iterator[Sink]:
    """GIF through Pillow, for machines without ffmpeg: Pillow writes a GIF only once it
    has every frame, so each is kept as 8-bit palette pixels (``width * height`` bytes a
    frame) until the end."""
    from PIL import Image

    frames: list[Any] = []

    def keep(rgba: bytes) -> None:
        frame = Image.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1).convert("RGB")
        frames.append(frame.quantize(256, method=Image.Quantize.MEDIANCUT))

    yield keep
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=max(round(1000 / fps), 20),
        loop=0,
    )


PILLOW_FRAMES_NOTICE = 500
"""Above this many frames, a GIF written without ffmpeg warns about its memory."""


class Drawing(Protocol):
    """A figure redrawn in place for any step (:class:`sgdscape.views.step_figure.StepFigure`, ...).

    A drawing may also have ``render() -> (H, W, 4) uint8 RGBA`` pixels of the current
    step, cheaper than a full draw (StepFigure repaints only what changes); without it
    each frame is a full ``fig.canvas.draw()``.
    """

    fig: Any

    def draw(self, step: int) -> Any: ...

    def freeze_layout(self) -> None: ...


def animate(
    result: RunResult | StochasticView,
    path: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    steps: Sequence[int] | range | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    dpi: float = DEFAULT_DPI,
    format: str | None = None,
    progress: Progress | None = None,
    fan: bool = False,
) -> Path:
    """Write the run's two-panel figure, one frame per step, as a GIF or an MP4.

    Args:
        result: a finished single-init run, or a network's stochastic view (whose steps
            default to those with a stored minibatch landscape).
        path: output file; its extension (``.gif``/``.mp4``) picks the format unless
            ``format`` is given.
        fps: frames (steps) per second, > 0.
        steps: the steps to show, e.g. ``range(0, 50)``; default every step.
        size: ``(width, height)`` of a frame in pixels (MP4 rounds them down to even).
        dpi: dots per inch: font and line sizes relative to the frame.
        progress: called as ``progress(frames_done, frames_total)``.
        fan: draw the fan of next steps on the left panel
            (:class:`sgdscape.views.fan.FanOverlay`; a single-init 2-parameter run only).

    Returns:
        ``path``, written atomically.
    """
    from sgdscape.views.step_figure import StepFigure

    def overlays() -> list[Any]:
        if not fan:
            return []
        from sgdscape.views.fan import FanOverlay

        if not isinstance(result, RunResult):
            raise SgdscapeError("the fan of next steps is drawn for a 2-parameter run only.")
        return [FanOverlay(result)]

    if fan:
        overlays()  # a run that cannot have a fan fails before anything is written
    source = functools.cache(lambda: step_source(result))  # built once, after the checks
    return animate_drawing(
        lambda figsize, dpi: StepFigure(source(), figsize=figsize, dpi=dpi, overlays=overlays()),
        path,
        lambda: source().resolve_steps(steps),
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
    ffmpeg = _need_ffmpeg(kind)
    if kind == "gif" and not ffmpeg and len(chosen) > PILLOW_FRAMES_NOTICE:
        warnings.warn(
            f"no ffmpeg on PATH: the GIF's {len(chosen)} frames are kept in memory until the "
            f"end (about {width * height * len(chosen) / 1e6:.0f} MB); install ffmpeg to "
            "stream them to the file instead.",
            stacklevel=3,
        )

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
        render = getattr(drawing, "render", None) or _render(drawing.fig)
        frame_height, frame_width = render().shape[:2]  # figsize * dpi may round down
        if kind == "mp4":  # yuv420p needs even sides
            frame_height, frame_width = (
                frame_height - frame_height % 2,
                frame_width - frame_width % 2,
            )
        size = (frame_width, frame_height)
        with atomic_path(path) as temporary:
            sink = (
                _ffmpeg_sink(ffmpeg, kind, temporary, size, fps)
                if ffmpeg
                else _pillow_gif_sink(temporary, size, fps)
            )
            with sink as write:
                for done, step in enumerate(chosen, start=1):
                    drawing.draw(step)
                    write(render()[:frame_height, :frame_width].tobytes())
                    if progress is not None:
                        progress(done, len(chosen))
    finally:
        plt.close(drawing.fig)
    return path


def _render(fig: Any) -> Callable[[], np.ndarray]:
    """Draw ``fig`` on its Agg canvas and return its pixels, ``(H, W, 4)`` uint8 RGBA (a
    view of the canvas, valid until the next draw)."""

    def render() -> np.ndarray:
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba())

    return render
