"""Server-side latency of the web app: compute a new run after a control change.

Replays ~50 random control changes (learning rate, optimizer, momentum, seed, noise,
samples, batch size, schedule, start point) from the seed's experiment and times what
the app's callback does for each: validate the state, compute the run (data and
landscape memoised per data/model/grid, trajectory always new), pack the payload and
serialise it to JSON. Prints p50/p95 with the landscape memo on (as served) and off.

    PYTHONPATH=src python benchmarks/bench_app.py [--changes 50] [--grid 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np
import torch

from sgdscape.surfaces.app.compute import _data_and_landscape, _encoded_samples, page_payload
from sgdscape.surfaces.app.state import AppState


def changes(count: int, grid: int, seed: int = 0) -> list[AppState]:
    """``count`` states, each one control away from the previous one."""
    rng = random.Random(seed)
    state = AppState(grid=grid)
    out = []
    for _ in range(count):
        kind = rng.choice(
            ["lr", "lr", "optimizer", "momentum", "seed", "noise", "samples", "batch", "init"]
        )
        if kind == "lr":
            state = state.replace(lr=round(rng.uniform(0.01, 0.3), 4))
        elif kind == "optimizer":
            state = state.replace(optimizer=rng.choice(["sgd", "adam", "rmsprop", "adagrad"]))
        elif kind == "momentum":
            state = state.replace(momentum=round(rng.uniform(0.0, 0.95), 3))
        elif kind == "seed":
            state = state.replace(seed=rng.randrange(10_000))
        elif kind == "noise":
            state = state.replace(noise=round(rng.uniform(0.01, 1.0), 3))
        elif kind == "samples":
            state = state.replace(samples=rng.choice([50, 100, 150]), batch=1)
        elif kind == "batch":
            state = state.replace(batch=rng.choice([1, 2, 5, 10]))
        else:
            state = state.replace(init=(round(rng.uniform(-3, 3), 3), round(rng.uniform(-3, 3), 3)))
        out.append(state)
    return out


def measure(states: list[AppState], *, use_cache: bool) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds per change, wall-clock and CPU time of this thread.

    The work: page payload (run included) plus its JSON serialisation. On a busy shared
    machine the wall clock includes waiting for a core; the CPU time does not.
    """
    _data_and_landscape.cache_clear()
    _encoded_samples.cache_clear()
    wall, cpu = [], []
    for state in states:
        started, started_cpu = time.perf_counter(), time.thread_time()
        json.dumps(page_payload(state, use_cache=use_cache))
        wall.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.thread_time() - started_cpu))
    return np.asarray(wall), np.asarray(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--grid", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `sgdscape serve` does
    page_payload(AppState(grid=args.grid))  # warm-up (torch's first call is slow)
    states = changes(args.changes, args.grid)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} cores, load average {load:.1f}")
    for label, use_cache in (("landscape memo on (as served)", True), ("memo off", False)):
        wall, cpu = measure(states, use_cache=use_cache)
        for kind, times in (("wall", wall), ("cpu", cpu)):
            print(
                f"grid {args.grid}, {len(times)} control changes, {label}, {kind}: "
                f"p50 {np.percentile(times, 50):.0f} ms, p95 {np.percentile(times, 95):.0f} ms, "
                f"max {times.max():.0f} ms (target p95 <= 100 ms)"
            )


if __name__ == "__main__":
    main()
