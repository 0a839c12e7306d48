"""Load test of the web app: N browser contexts change controls concurrently.

Each context types a new value into a control (learning rate, seed, noise, momentum or
batch size), presses Enter and waits until the page shows the new run; the latency of
that round trip (server compute + transfer + drawing) is recorded. Console errors,
page errors, HTTP errors and error notices count as errors.

    python benchmarks/load_app.py                   # starts `sgdscape serve` itself, 60 s
    python benchmarks/load_app.py --url http://127.0.0.1:8050/ --duration 60 --contexts 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOADED = (
    "() => ['batch', 'risk'].every(n => { const gd = document.querySelector("
    "'#' + n + '-graph .js-plotly-plot'); return gd && gd.data && gd.data.length > 0; })"
)


def _change(rng: random.Random) -> tuple[str, str, str]:
    """A control, a new value for it, and the URL fragment the page shows once it is applied."""
    kind = rng.choice(["lr", "seed", "noise", "momentum", "batch"])
    if kind == "lr":
        value = f"{rng.uniform(0.01, 0.3):.4f}".rstrip("0")
        return "lr", value, f"lr={value}"
    if kind == "seed":
        value = str(rng.randrange(1, 10_000))
        return "seed", value, f"seed={value}"
    if kind == "noise":
        value = f"{rng.uniform(0.01, 1.0):.3f}".rstrip("0")
        return "noise", value, f"noise={value}"
    if kind == "momentum":
        value = f"{rng.uniform(0.1, 0.95):.3f}".rstrip("0")
        return "momentum", value, f"mom={value}"
    value = str(rng.choice([2, 4, 5, 10, 20]))
    return "batch", value, f"batch={value}"


async def _open(browser, url: str, errors: list):
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on(
        "response",
        lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    await page.goto(url)
    await page.wait_for_function(LOADED, timeout=120_000)
    return context, page


async def _worker(page, seed: int, stop: float, latencies: list, errors: list, server_ms: list):
    rng = random.Random(seed)
    previous = ""
    while time.monotonic() < stop:
        control, value, fragment = _change(rng)
        if fragment == previous:
            continue
        box = page.locator(f"#ctl-{control}")
        started = time.perf_counter()
        await box.fill(value)
        await box.press("Enter")
        try:
            await page.wait_for_function(
                "f => window.location.search.includes(f)", arg=fragment, timeout=30_000
            )
        except Exception as error:  # a timeout is an error of the run, not of the script
            errors.append(f"no update for {fragment}: {error}")
            continue
        latencies.append(time.perf_counter() - started)
        previous = fragment
        info = await page.inner_text("#run-info")
        match = re.search(r"computed in (\d+) ms", info)
        if match:
            server_ms.append(float(match.group(1)))
        if await page.locator(".notice.error").count():
            errors.append(f"error notice: {await page.inner_text('#notice')}")


async def _run(url: str, contexts: int, duration: float) -> tuple[list, list, list]:
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    errors: list[str] = []
    server_ms: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        pages = await asyncio.gather(*(_open(browser, url, errors) for _ in range(contexts)))
        stop = time.monotonic() + duration  # the clock starts once every page has loaded
        await asyncio.gather(
            *(
                _worker(page, i, stop, latencies, errors, server_ms)
                for i, (_, page) in enumerate(pages)
            )
        )
        for context, _ in pages:
            await context.close()
        await browser.close()
    return latencies, errors, server_ms


def load_test(url: str, *, contexts: int = 8, duration: float = 60.0) -> dict:
    """Drive ``contexts`` browser contexts for ``duration`` seconds; latencies in seconds."""
    latencies, errors, server_ms = asyncio.run(_run(url, contexts, duration))
    array = np.asarray(latencies) * 1000
    server = np.asarray(server_ms) if server_ms else np.asarray([np.nan])
    summary = (
        f"{contexts} contexts, {duration:.0f} s: {len(array)} control changes, "
        f"{len(errors)} errors; page latency p50 {np.percentile(array, 50):.0f} ms, "
        f"p95 {np.percentile(array, 95):.0f} ms, max {array.max():.0f} ms; server compute "
        f"p50 {np.percentile(server, 50):.0f} ms, p95 {np.percentile(server, 95):.0f} ms"
        if len(array)
        else f"{contexts} contexts: no completed change, {len(errors)} errors"
    )
    return {"changes": len(array), "errors": errors, "latencies_ms": array, "summary": summary}


def _start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    process = subprocess.Popen(
        [sys.executable, "-m", "sgdscape", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("sgdscape serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app; default: start one")
    parser.add_argument("--contexts", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    process = None
    url = args.url
    if url is None:
        process, url = _start_server()
    try:
        report = load_test(url, contexts=args.contexts, duration=args.duration)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    print(report["summary"])
    for error in report["errors"][:10]:
        print("error:", error)
    sys.exit(1 if report["errors"] else 0)


if __name__ == "__main__":
    main()
