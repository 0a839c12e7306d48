"""The app's downloads: ``run.npz``, ``config.toml``, a PNG of a step and the standalone HTML.

Each is rebuilt from the state in the page's URL (the server keeps no per-tab state).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import logging
import threading
from pathlib import Path
from typing import Any

from dash import dcc

from sgdscape.errors import INT64_MAX, SgdscapeError, check_int, clip

from .compute import compute_result
from .state import AppState

log = logging.getLogger("sgdscape.surfaces.app")
PNG_LOCK = threading.Lock()  # pyplot is not thread-safe


def html_export() -> Any:
    """The standalone-HTML exporter from ``sgdscape.surfaces.export`` when that module provides one."""
    if importlib.util.find_spec("sgdscape.surfaces.export") is None:
        return None
    module = importlib.import_module(
        "sgdscape.surfaces.export"
    )  # a surface beside this one: a hook
    for name in ("html_page",):  # result -> the page as a string (export_html writes a file)
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    return None


def step_index(step: Any, n_steps: int) -> int:
    """The slider's ``step`` as a step of a run of ``n_steps``: clipped, and 0 when it is not
    a finite number (a hand-made request can send anything)."""
    try:
        k = check_int("step", 0 if step is None else step, low=-INT64_MAX)
    except SgdscapeError as error:
        log.warning("%s; using step 0.", clip(str(error)).rstrip("."))
        k = 0
    return min(max(k, 0), max(n_steps - 1, 0))


def download_file(state: AppState, what: str | None, step: Any) -> dict[str, Any]:
    """The ``dcc.Download`` data of ``run.npz``, ``config.toml``, a PNG or the HTML."""
    import tempfile

    import numpy as np

    from sgdscape.records.run_files import result_arrays, save_config

    result = compute_result(state)
    if what == "dl-toml":
        with tempfile.TemporaryDirectory() as folder:
            path = save_config(result.config, Path(folder) / "config.toml")
            return dcc.send_bytes(path.read_bytes(), "config.toml")
    if what == "dl-npz":
        buffer = io.BytesIO()
        arrays: dict[str, Any] = result_arrays(result)  # (stubs: a value could be allow_pickle)
        np.savez_compressed(buffer, **arrays)
        return dcc.send_bytes(buffer.getvalue(), "run.npz")
    k = step_index(step, result.n_steps)
    if what == "dl-png":
        return dcc.send_bytes(png_bytes(result, k), f"sgdscape_step_{k}.png")
    if what == "dl-html":
        exporter = html_export()
        if exporter is None:
            raise SgdscapeError(
                "standalone HTML needs sgdscape.surfaces.export, not in this version."
            )
        html_text = exporter(result)
        data = html_text.encode() if isinstance(html_text, str) else bytes(html_text)
        return dcc.send_bytes(data, "sgdscape.html")
    raise SgdscapeError(f"unknown download {what!r}.")


def png_bytes(result: Any, step: int) -> bytes:
    """The notebook's two-panel figure of ``step`` (:func:`sgdscape.views.step_figure.plot_step`) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sgdscape.views.step_figure import plot_step

    with PNG_LOCK:
        figure = plot_step(result, step)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
    return buffer.getvalue()
