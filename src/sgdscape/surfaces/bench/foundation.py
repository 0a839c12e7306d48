"""The foundation rows: the seed's loops against sgdscape's landscape and trajectories, and
the risk-only path's peak memory in a fresh process.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from sgdscape.surfaces.bench.measure import Row, interleaved, python_process, seconds_text
from sgdscape.surfaces.bench.seed import seed_make_grids, seed_train


def bench_seed_landscape(n_samples: int = 100, grid: int = 100, repeats: int = 3) -> Row:
    """The seed's ``make_grids`` against :func:`sgdscape.landscape` (per-sample grids kept)."""
    from sgdscape.core.grid import Grid
    from sgdscape.core.landscape import landscape
    from sgdscape.core.problems import ground_truth

    data = ground_truth(n_samples, seed=0)
    grid_spec = Grid.square(grid)
    seed_grids = seed_make_grids(data.x, data.y, grid)[2].numpy()
    ours = landscape("relu-unit", data, grid_spec)
    difference = float(np.abs(ours.sample_loss - seed_grids).max())
    # interleaved rounds; within a round the fast candidate is timed 10 times (best of)
    times = {"seed": float("inf"), "ours": float("inf")}
    for _ in range(repeats):
        round_times = interleaved(
            {"seed": lambda: seed_make_grids(data.x, data.y, grid)}, 1
        ) | interleaved({"ours": lambda: landscape("relu-unit", data, grid_spec)}, 10)
        times = {key: min(times[key], round_times[key]) for key in times}
    return Row(
        name="landscape per-sample (seed sizes)",
        device="cpu",
        sizes=f"{n_samples} x {grid}x{grid}",
        evaluations=float(n_samples * grid * grid),
        seconds=times["ours"],
        baseline=f"seed make_grids {seconds_text(times['seed'])}",
        baseline_seconds=times["seed"],
        ratio=times["seed"] / times["ours"],
        extra={"max |ours - seed|": f"{difference:.2e}"},
    )


_CHILD = r"""
import json, resource, sys, time
import torch
from sgdscape.core.grid import Grid
from sgdscape.core.landscape import landscape
from sgdscape.core.problems import ground_truth

n, g, budget = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def hwm():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

data = ground_truth(n, seed=0)
grid = Grid.square(g)
landscape("relu-unit", data, Grid.square(8), per_sample=False)  # warm up the code path
before = hwm()
start = time.perf_counter()
result = landscape("relu-unit", data, grid, per_sample=False, memory_budget=budget)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss": hwm(), "rss_before": before,
                  "risk_min": float(result.risk.min())}))
"""


def bench_risk_memory(
    n_samples: int = 10_000, grid: int = 1000, budget: int = 2**30, name: str = ""
) -> Row:
    """The risk-only path in a fresh process: wall time and peak resident memory."""
    stdout = python_process(
        ["-c", _CHILD, str(n_samples), str(grid), str(budget)], "risk benchmark child failed"
    )
    report = json.loads(stdout.strip().splitlines()[-1])
    peak = report["peak_rss"]
    return Row(
        name=name or "landscape risk-only (subprocess)",
        device="cpu",
        sizes=f"{n_samples} x {grid}x{grid}",
        evaluations=float(n_samples * grid * grid),
        seconds=report["seconds"],
        extra={
            "memory budget": f"{budget / 2**30:.2f} GiB",
            "peak RSS (whole process)": f"{peak / 2**30:.3f} GiB",
            "RSS before the call (torch + data)": f"{report['rss_before'] / 2**30:.3f} GiB",
            "growth during the call": f"{(peak - report['rss_before']) / 2**30:.3f} GiB",
            "within budget": (peak - report["rss_before"]) <= budget,
        },
    )


def bench_trajectories(
    n_inits: int = 10_000,
    n_samples: int = 100,
    repeats: int = 3,
    seed_repeats: int = 5,
    record_full_gradient: bool = True,
    record_risk: bool = True,
    optimizer: str = "sgd",
    optimizer_options: dict[str, object] | None = None,
    engine: str = "auto",
    device: str = "cpu",
) -> Row:
    """``n_inits`` batched trajectories of ``n_samples`` SGD steps against the seed's ``train``.

    The ratio is per-trajectory throughput: ``n_inits * t_seed / t_ours``.
    """
    from sgdscape.core.problems import ground_truth
    from sgdscape.core.train import train

    data = ground_truth(n_samples, seed=0)
    generator = torch.Generator().manual_seed(1)
    inits = torch.empty(n_inits, 2).uniform_(-3, 3, generator=generator)

    def ours():
        return train(
            "relu-unit",
            data,
            init=inits,
            lr=0.05,
            optimizer=optimizer,
            optimizer_options=optimizer_options,
            record_full_gradient=record_full_gradient,
            record_risk=record_risk,
            engine=engine,
            device=device,
        )

    def seed():
        return seed_train(data.x, data.y, lr=0.05, init=torch.FloatTensor([1.2, -2.3]))

    ours()  # warm-up (and compilation where it applies)
    best = dict.fromkeys(("seed", "ours"), float("inf"))
    for _ in range(repeats):
        best["seed"] = min(best["seed"], min(interleaved({"s": seed}, seed_repeats).values()))
        best["ours"] = min(best["ours"], interleaved({"o": ours}, seed_repeats)["o"])
    steps = n_samples
    label = optimizer + ("" if not optimizer_options else f" {optimizer_options}")
    return Row(
        name=f"trajectories {label} [{engine}]"
        + (
            ", records as the seed"
            if not (record_full_gradient or record_risk)
            else ("" if record_full_gradient else ", no full gradient")
        ),
        device=torch.device(device).type,
        sizes=f"{n_inits} inits x {steps} steps",
        evaluations=float(n_inits * steps),
        seconds=best["ours"],
        baseline=f"seed train {seconds_text(best['seed'])}/traj",
        baseline_seconds=best["seed"],
        ratio=n_inits * best["seed"] / best["ours"],
        extra={"unit": "evaluations = optimizer steps"},
    )
