"""``sgdscape export``: a run or a network's view as HTML, GIF, MP4 or a 3-D surface page."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sgdscape.errors import SgdscapeError
from sgdscape.surfaces.cli.options import ModelHelp, with_run_options
from sgdscape.surfaces.cli.outputs import animate_with_bar, with_progress, write_network_surface
from sgdscape.surfaces.cli.root import app

if TYPE_CHECKING:
    from sgdscape.records.run import RunConfig

_OUTPUT_SUFFIXES = {
    "--html": (".html", ".htm"),
    "--gif": (".gif",),
    "--mp4": (".mp4",),
    "--surface": (".html", ".htm"),
}


def parse_step_range(spec: str | None) -> slice:
    """``A:B`` or ``A:B:S`` as a Python slice (steps A..B-1 every S; A or B may be left out,
    negative bounds count from the end). Malformed text or a stride below 1 is an error."""
    if spec is None:
        return slice(None)
    parts = spec.strip().split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        numbers = [int(part) if part.strip() else None for part in parts]
    except ValueError:
        raise SgdscapeError(
            f"--steps must be a range A:B or A:B:S such as 0:50 or 10: or ::2, got {spec!r}."
        ) from None
    stride = numbers[2] if len(numbers) == 3 else None
    if stride is not None and stride < 1:
        raise SgdscapeError(f"--steps needs a stride S of at least 1, got {spec!r}.")
    return slice(numbers[0], numbers[1], stride)


def resolve_step_range(spec: str | None, n_steps: int) -> range:
    """The steps of ``--steps`` for a run of ``n_steps`` steps (every step by default).

    Bounds are clipped to the run as a Python slice clips them (``0:50`` of a 7-step run
    is steps 0..6); a range that holds no step at all is an error.
    """
    chosen = range(n_steps)[parse_step_range(spec)]
    if not chosen:
        raise SgdscapeError(
            f"--steps {spec!r} selects none of the run's steps 0..{n_steps - 1}; "
            f"choose A < B within them (for example 0:{n_steps})."
        )
    return chosen


def parse_size(spec: str | None) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` in pixels, e.g. ``960x420``."""
    if spec is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", spec)
    if match is None:
        raise SgdscapeError(f"--size must be WIDTHxHEIGHT in pixels such as 960x420, got {spec!r}.")
    width, height = int(match.group(1)), int(match.group(2))
    if not (64 <= width <= 8192 and 64 <= height <= 8192):
        raise SgdscapeError(
            f"--size {spec!r}: width and height must be between 64 and 8192 pixels."
        )
    return width, height


def _check_output(option: str, path: Path) -> None:
    if path.is_dir():
        raise SgdscapeError(f"{option} {str(path)!r} is a directory; give a file name.")
    if path.suffix.lower() not in _OUTPUT_SUFFIXES[option]:
        raise SgdscapeError(
            f"{option} {str(path)!r} must end in {' or '.join(_OUTPUT_SUFFIXES[option])}."
        )
    parent = path.parent
    if not parent.is_dir():
        raise SgdscapeError(
            f"{option} {str(path)!r}: the directory {str(parent)!r} does not exist."
        )


@app.command(cls=ModelHelp)
@with_run_options
def export(
    config: RunConfig,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write a standalone interactive HTML page.")
    ] = None,
    gif: Annotated[Path | None, typer.Option("--gif", help="Write a GIF animation.")] = None,
    mp4: Annotated[
        Path | None, typer.Option("--mp4", help="Write an MP4 animation (needs ffmpeg).")
    ] = None,
    surface: Annotated[
        Path | None,
        typer.Option(
            "--surface",
            help="Write the (log) loss landscape as an interactive 3-D surface with the path "
            "(a standalone HTML page).",
        ),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Saved run directory (run.npz + config.toml) instead of running."
        ),
    ] = None,
    view_file: Annotated[
        Path | None,
        typer.Option(
            "--view",
            help="A real network's saved stochastic view (network.npz from `sgdscape network`) "
            "instead of a run.",
        ),
    ] = None,
    fps: Annotated[float, typer.Option(help="Steps per second when playing.")] = 10.0,
    steps: Annotated[
        str | None,
        typer.Option(
            help="Steps to show, A:B or A:B:S, a Python slice: bounds past the run are "
            "clipped, negative ones count from the end [all]."
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="Frame size WIDTHxHEIGHT in pixels [960x420; HTML 1200x600]."),
    ] = None,
    dpi: Annotated[float, typer.Option(help="Animation dots per inch (text size).")] = 80.0,
    fan: Annotated[
        bool,
        typer.Option(
            "--fan",
            help="Draw the fan of next steps on the left panel of the HTML page and the "
            "GIF/MP4 (every sample's possible next iterate and their mean, the full-gradient "
            "step). A single-init 2-parameter run only.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Export a run (or a network's view) as an HTML page, a GIF, an MP4 and/or a 3-D surface."""
    import shutil

    from sgdscape.errors import check_dpi, check_fps
    from sgdscape.records.run import RunConfig

    outputs = {
        name: path
        for name, path in (("--html", html), ("--gif", gif), ("--mp4", mp4), ("--surface", surface))
    }
    if all(path is None for path in outputs.values()):
        raise SgdscapeError(
            "export needs at least one of --html FILE, --gif FILE, --mp4 FILE, --surface FILE."
        )
    for option, path in outputs.items():
        if path is not None:
            _check_output(option, path)
    check_fps("--fps", fps)
    check_dpi("--dpi", dpi)
    parse_step_range(steps)
    frame_size = parse_size(size)
    if fan and view_file is not None:
        raise SgdscapeError(
            "--fan draws on a 2-parameter run, not on a network's --view; drop one of them."
        )
    if fan and html is None and gif is None and mp4 is None:
        raise SgdscapeError("--fan draws on a run's --html, --gif or --mp4; give one.")
    if mp4 is not None and shutil.which("ffmpeg") is None:
        raise SgdscapeError(
            "--mp4 needs the ffmpeg program on PATH and none was found; install ffmpeg "
            "(e.g. apt install ffmpeg, brew install ffmpeg) or export a GIF."
        )
    if view_file is not None:
        if source is not None or config != RunConfig():
            raise SgdscapeError(
                "--view loads a saved network view; drop --from and the run options."
            )
        _export_view(view_file, html, gif, mp4, surface, fps, steps, frame_size, dpi, quiet)
        return
    if source is not None:
        from sgdscape.records.run_files import load

        if config != RunConfig():
            raise SgdscapeError(
                "--from loads a saved run; drop the run options (or drop --from to run anew)."
            )
        result = load(source)
    else:
        from sgdscape.records.run import run as run_experiment

        result = with_progress(lambda progress: run_experiment(config, progress=progress), quiet)
    if result.trajectory.iterates.ndim != 2:
        raise SgdscapeError("export draws a single-init run; this run has a batch of inits.")
    if fan:
        from sgdscape.views.fan import check_fan_run

        check_fan_run(result)
    chosen = resolve_step_range(steps, result.n_steps)

    def run_surface_page(path: Path) -> None:
        from sgdscape.surfaces.export import export_figure_html
        from sgdscape.views.plotly_figures import run_surface

        export_figure_html(
            run_surface(result),
            path,
            title=f"sgdscape: the risk surface of {result.config.model}",
            about=SURFACE_ABOUT,
        )

    _write_exports(
        result, chosen, html, gif, mp4, surface, run_surface_page, fps, frame_size, dpi, quiet,
        fan=fan,
    )  # fmt: skip


def _write_exports(
    subject: Any,
    chosen: Sequence[int],
    html: Path | None,
    gif: Path | None,
    mp4: Path | None,
    surface: Path | None,
    write_surface: Callable[[Path], object],
    fps: float,
    frame_size: tuple[int, int] | None,
    dpi: float,
    quiet: bool,
    fan: bool = False,
) -> None:
    """Write the asked outputs of a run or a network view and say what each took.

    ``write_surface(path)`` writes the 3-D surface page, the one output that differs.
    """
    import time

    written: list[tuple[Path, float]] = []
    if html is not None:
        from sgdscape.surfaces.export import export_html
        from sgdscape.views.plotly_figures import HEIGHT as HTML_HEIGHT
        from sgdscape.views.plotly_figures import WIDTH as HTML_WIDTH

        began = time.perf_counter()
        width, height = frame_size or (HTML_WIDTH, HTML_HEIGHT)
        export_html(subject, html, steps=chosen, fps=fps, width=width, height=height, fan=fan)
        written.append((html, time.perf_counter() - began))
    for path in (gif, mp4):
        if path is not None:
            began = time.perf_counter()
            animate_with_bar(subject, path, chosen, fps, frame_size, dpi, quiet, fan=fan)
            written.append((path, time.perf_counter() - began))
    if surface is not None:
        began = time.perf_counter()
        write_surface(surface)
        written.append((surface, time.perf_counter() - began))
    for path, seconds in written:
        typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB in {seconds:.1f} s)")


SURFACE_ABOUT = (
    "The loss (log scale) over the two plotted coordinates, and the path drawn on the "
    "surface. Drag to rotate, scroll to zoom, hover for values."
)


def _export_view(
    view_file: Path,
    html: Path | None,
    gif: Path | None,
    mp4: Path | None,
    surface: Path | None,
    fps: float,
    steps: str | None,
    frame_size: tuple[int, int] | None,
    dpi: float,
    quiet: bool,
) -> None:
    """``sgdscape export --view network.npz``: the same outputs for a network's view."""
    from sgdscape.networks.recording import load_view

    view = load_view(view_file)
    wanted = set(resolve_step_range(steps, view.n_steps))
    chosen = [int(step) for step in view.steps if int(step) in wanted]
    if not chosen:
        raise SgdscapeError(
            f"--steps {steps!r} holds none of the view's stored steps "
            f"({int(view.steps[0])}..{int(view.steps[-1])})."
        )
    _write_exports(
        view,
        chosen,
        html,
        gif,
        mp4,
        surface,
        lambda path: write_network_surface(view, path),
        fps,
        frame_size,
        dpi,
        quiet,
    )
