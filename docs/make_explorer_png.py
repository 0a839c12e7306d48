"""Screenshot the Jupyter explorer as it renders in a real JupyterLab, for the README.

Starts JupyterLab on a free local port with this checkout's ``src`` on the kernel's
``PYTHONPATH``, opens a scratch notebook in headless Chromium (Playwright), runs one cell
that displays ``sgdscape.explore(...)`` and screenshots the widget's output area.

    python docs/make_explorer_png.py                       # writes docs/images/explorer.png
    python docs/make_explorer_png.py --out other.png --step 40

Needs ``jupyterlab``, ``playwright`` (Python) and a Chromium at ``/usr/bin/chromium`` (or
``--chromium PATH``). ``tests/test_widget_browser.py`` drives the same session.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def lab_notebook(source: str, *, chromium: str = CHROMIUM, timeout_s: float = 120) -> Iterator[Any]:
    """Run ``source`` as the one cell of a notebook in JupyterLab; yield the Playwright page.

    The page is left with the cell executed and its first Plotly figure rendered.
    """
    import nbformat
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="sgdscape-lab-"))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    }
    nbformat.write(notebook, workdir / "explorer.ipynb")
    port, token = _free_port(), "sgdscape-screenshot"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    log = (workdir / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={workdir}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2
                ).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not start; see {workdir / 'lab.log'}"
                    ) from None
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1200})
                page.set_default_timeout(timeout_s * 1000)
                page.goto(f"http://127.0.0.1:{port}/lab/tree/explorer.ipynb?token={token}&reset")
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                # Lab may ask about a rebuild for extensions installed in this environment: never.
                for _ in range(20):
                    if page.locator(".jp-Dialog").count():
                        page.locator(".jp-Dialog .jp-mod-reject").first.click()
                    time.sleep(0.25)
                page.click(".jp-Cell .jp-InputArea-editor")
                page.keyboard.press("Shift+Enter")
                page.wait_for_selector(".jp-OutputArea-output .js-plotly-plot .heatmaplayer")
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                time.sleep(1.0)  # let Plotly finish drawing
                yield page
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "explorer.png")
    parser.add_argument("--step", type=int, default=13, help="step shown (default 13)")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    source = (
        f"import sgdscape\nexplorer = sgdscape.explore()\nexplorer.step = {args.step}\nexplorer"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with lab_notebook(source, chromium=args.chromium) as page:
        temporary = args.out.with_name(f".{args.out.name}.tmp.png")
        page.locator(".jp-OutputArea-output").first.screenshot(path=str(temporary))
        os.replace(temporary, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
