"""Standalone exports: one self-contained HTML page that scrubs through a run's steps.

The page needs no Python, no server and no network: plotly.js (from the installed
``plotly`` package) is inlined gzipped and base64-encoded, and the run's data is packed
by :func:`sgdscape.views.plotly_figures.player` (a run and a network's stochastic view
alike). The browser unpacks both with the standard
``DecompressionStream`` (Chrome/Edge 80+, Firefox 113+, Safari 16.4+) and works from
``file://``. Animations (GIF/MP4) live in :mod:`sgdscape.views.animation`.

:func:`export_figure_html` writes any single Plotly figure (e.g. the 3-D surface of
:func:`sgdscape.views.plotly_figures.surface_figure`) as the same kind of self-contained page.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgdscape.errors import SgdscapeError, check_fps
from sgdscape.networks.recording import StochasticView
from sgdscape.records.run import RunResult, atomic_path
from sgdscape.views.plotly_figures import HEIGHT, WIDTH

if TYPE_CHECKING:
    import plotly.graph_objects as go


@functools.lru_cache(maxsize=1)
def _plotly_js_gzip_base64() -> tuple[str, str]:
    """(version, base64 of gzipped plotly.min.js) from the installed plotly package."""
    try:
        from plotly.offline import get_plotlyjs, get_plotlyjs_version
    except ImportError:  # pragma: no cover - depends on the environment
        raise SgdscapeError(
            "HTML export needs plotly; install it with pip install 'sgdscape[export]'."
        ) from None
    packed = gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)
    return get_plotlyjs_version(), base64.b64encode(packed).decode("ascii")


def _json_script(value: Any) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _head(style: str) -> str:
    """The start of a page, up to its heading; ``style``: extra CSS rules (a format string)."""
    return (
        """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="sgdscape {version} with plotly.js {plotly_version}">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1rem 1.5rem; color: #222; }}
  h1 {{ font-size: 1.15rem; font-weight: 600; margin: 0 0 .3rem; }}
  p.about {{ margin: 0 0 .6rem; font-size: .9rem; color: #555; }}
"""
        + style
        + """  #sgdscape-status {{ color: #a00; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="about">{about}</p>
"""
    )


#: page script (a format string): check the browser, unpack the inlined gzip'ed plotly.js
#: with ``gunzip(text)``, and parse the figure into ``figure``
_LOAD_PLOTLY_AND_FIGURE = """    if (typeof DecompressionStream === "undefined") {{
      throw new Error("this page needs a browser with DecompressionStream (Chrome/Edge 80+, Firefox 113+, Safari 16.4+)");
    }}
    async function gunzip(text) {{
      const binary = atob(text.trim());
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      return new Uint8Array(await new Response(stream).arrayBuffer());
    }}
    const code = new TextDecoder().decode(await gunzip(document.getElementById("sgdscape-plotlyjs").textContent));
    const script = document.createElement("script");
    script.textContent = code;
    document.head.appendChild(script);
    const figure = JSON.parse(document.getElementById("sgdscape-figure").textContent);
"""


#: the end of both pages: report a failure on the page, close the script and the page
_END_PAGE = """  }} catch (error) {{
    status.textContent = "sgdscape: cannot show the figure: " + error.message;
    throw error;
  }}
}})();
</script>
</body>
</html>
"""


_PAGE = (
    _head(
        """  #sgdscape-controls {{ display: flex; gap: .8rem; align-items: center; margin: .4rem 0; }}
  #sgdscape-step {{ flex: 1; max-width: 60rem; }}
  #sgdscape-play {{ min-width: 6.5rem; padding: .3rem .6rem; font-size: .95rem; }}
  #sgdscape-step-label {{ min-width: 6rem; font-variant-numeric: tabular-nums; }}
  #sgdscape-plot {{ width: 100%; min-height: {height}px; }}
"""
    )
    + """<div id="sgdscape-controls">
  <button id="sgdscape-play" type="button" aria-label="play or pause">&#9654; play</button>
  <input id="sgdscape-step" type="range" min="0" max="{last}" value="0" step="1" aria-label="step">
  <span id="sgdscape-step-label">loading…</span>
</div>
<div id="sgdscape-status"></div>
<div id="sgdscape-plot"></div>
<script id="sgdscape-plotlyjs" type="application/octet-stream">{plotly_js}</script>
<script id="sgdscape-figure" type="application/json">{figure}</script>
<script id="sgdscape-frames" type="application/json">{frames}</script>
<script>
{player_js}
(async function () {{
  const status = document.getElementById("sgdscape-status");
  try {{
"""
    + _LOAD_PLOTLY_AND_FIGURE
    + """    const frames = JSON.parse(document.getElementById("sgdscape-frames").textContent);
    await sgdscapePlayer(figure, frames, gunzip, {fps});
"""
    + _END_PAGE
)


def _describe(result: RunResult) -> str:
    config = result.config
    data = f"{len(result.data)} samples" + (
        f" from {config.data}"
        if config.data
        else f" of the {config.problem} problem (seed {config.seed})"
    )
    return (
        f"Model {config.model}, loss {config.loss_name}, {data}; {config.optimizer} with lr={config.lr:g}, "
        f"batch size {config.batch_size}, {config.epochs} epoch(s), "
        f"init {'random' if config.init is None else config.init}. "
        "Left: loss of the minibatch used at the step, with the -minibatch-gradient and "
        "-full-gradient arrows. Right: empirical risk and the path so far. Hover for values; "
        "drag the slider or press play."
    )


FAN_ABOUT = (
    " Orange dots on the left: the fan of next steps, every possible next iterate from this "
    "step's (one per sample, or a sample of minibatches), with their mean (+), which is the "
    "full-gradient step (black x), magnified as the arrows are (the legend gives the factor)."
)


def _describe_view(view: StochasticView) -> str:
    info = view.info
    variance = view.explained_variance
    return (
        f"Network {info.get('name', '?')} ({info.get('n_params', '?')} parameters) trained with "
        f"{info.get('optimizer', '?')}, lr={info.get('lr', 0):g}, batch size "
        f"{info.get('batch_size', '?')} on {info.get('n_samples', '?')} samples; seen on the "
        f"PCA plane of its path (explained variance {variance[0]:.1%} + {variance[1]:.1%}). "
        "Left: loss of the minibatch used at the step, with the projected iterate and the "
        "minibatch gradient at the true iterate, projected. Right: full-data loss and the "
        "projected path so far. Hover for values; drag the slider or press play."
    )


def html_page(
    result: RunResult | StochasticView,
    *,
    steps: Sequence[int] | range | None = None,
    fps: float = 10.0,
    title: str | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    fan: bool = False,
) -> str:
    """The standalone HTML page of ``result`` as a string (see :func:`export_html`)."""
    from sgdscape import __version__
    from sgdscape.views.plotly_figures import PLAYER_JS, player

    fps = check_fps("fps", fps)
    packed = player(result, steps=steps, width=width, height=height, fan=fan)
    if isinstance(result, StochasticView):
        info = result.info
        title = title or (
            f"sgdscape: {info.get('optimizer', '?')} on {info.get('name', 'a network')}, "
            f"{result.n_steps} steps"
        )
        about = _describe_view(result)
    else:
        config = result.config
        title = title or f"sgdscape: {config.optimizer} on {config.model}, {result.n_steps} steps"
        about = _describe(result) + (FAN_ABOUT if fan else "")
    plotly_version, plotly_js = _plotly_js_gzip_base64()
    return _PAGE.format(
        version=__version__,
        plotly_version=plotly_version,
        title=html.escape(title),
        about=html.escape(about),
        height=packed.figure["layout"]["height"],
        last=len(packed.frames["steps"]) - 1,
        plotly_js=plotly_js,
        figure=_json_script(packed.figure),
        frames=_json_script(packed.frames),
        player_js=PLAYER_JS,
        fps=json.dumps(fps),
    )


def export_html(
    result: RunResult | StochasticView,
    path: str | Path,
    *,
    steps: Sequence[int] | range | None = None,
    fps: float = 10.0,
    title: str | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    fan: bool = False,
) -> Path:
    """Write one self-contained HTML file that scrubs through the run's steps.

    Args:
        result: a finished single-init run, or a network's
            :class:`~sgdscape.networks.recording.StochasticView` (the same two panels on the PCA
            plane of its path).
        path: the ``.html`` file to write (atomically: an existing file is replaced only
            once the new one is complete).
        steps: the steps the slider visits (default all; for a network view, all steps
            with a stored minibatch landscape), e.g. ``range(0, 50)``.
        fps: steps per second when playing.
        title: page title (default names the optimizer and model).
        width: figure width in pixels.
        height: figure height in pixels.
        fan: also draw, on the left panel, the fan of next steps from each step's iterate
            (every sample's possible next iterate, or 1024 minibatches' for a bigger
            batch, and their mean, the full-gradient step), magnified as the panel's
            arrows are; a single-init 2-parameter run only (else a
            :class:`~sgdscape.errors.SgdscapeError`, before anything is written).

    Returns:
        ``path``. The page inlines plotly.js and opens from ``file://`` with no network.
    """
    path = Path(path)
    _check_html_path(path)
    page = html_page(result, steps=steps, fps=fps, title=title, width=width, height=height, fan=fan)
    with atomic_path(path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path


_FIGURE_PAGE = (
    _head("")
    + """<div id="sgdscape-status"></div>
<div id="sgdscape-plot"></div>
<script id="sgdscape-plotlyjs" type="application/octet-stream">{plotly_js}</script>
<script id="sgdscape-figure" type="application/json">{figure}</script>
<script>
(async function () {{
  const status = document.getElementById("sgdscape-status");
  try {{
"""
    + _LOAD_PLOTLY_AND_FIGURE
    + """    const plot = document.getElementById("sgdscape-plot");
    await Plotly.newPlot(plot, figure.data, figure.layout, {{displaylogo: false}});
    plot.dataset.ready = "1";
"""
    + _END_PAGE
)


def figure_page(figure: go.Figure, *, title: str | None = None, about: str = "") -> str:
    """One Plotly figure as a self-contained HTML page (see :func:`export_figure_html`)."""
    import plotly.io

    from sgdscape import __version__

    plotly_version, plotly_js = _plotly_js_gzip_base64()
    text = plotly.io.to_json(figure, validate=False, pretty=False)
    if title is None:  # the figure's own title, as plain text
        plain = re.sub(r"<br\s*/?>", " · ", figure.layout.title.text or "")
        title = re.sub(r"<[^>]+>", "", plain) or "sgdscape figure"
    return _FIGURE_PAGE.format(
        version=__version__,
        plotly_version=plotly_version,
        title=html.escape(title),
        about=html.escape(about),
        plotly_js=plotly_js,
        figure=text.replace("<", "\\u003c"),  # no "</script>" or "<!--" inside the element
    )


def _check_html_path(path: Path) -> None:
    if path.is_dir():
        raise SgdscapeError(f"output {str(path)!r} is a directory; give a file name.")
    if path.suffix.lower() not in {".html", ".htm"}:
        raise SgdscapeError(f"HTML output {str(path)!r} must end in .html or .htm.")


def export_figure_html(
    figure: go.Figure, path: str | Path, *, title: str | None = None, about: str = ""
) -> Path:
    """Write one Plotly figure as a self-contained HTML page, atomically.

    plotly.js is inlined (gzipped, unpacked in the page), so the file opens from
    ``file://`` with no network, like :func:`export_html`'s pages.

    Args:
        figure: e.g. :func:`sgdscape.views.plotly_figures.surface_figure` or
            :func:`sgdscape.views.network_figure.network_surface`.
        path: the ``.html`` file (replaced only once the new one is complete).
        title: the page's heading (default: the figure's title).
        about: a line of text under the heading.
    """
    path = Path(path)
    _check_html_path(path)
    page = figure_page(figure, title=title, about=about)
    with atomic_path(path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path
