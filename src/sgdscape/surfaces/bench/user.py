"""What users meet (issue 16): first calls in a fresh process and warm calls with default
options, each against its floor.
"""

from __future__ import annotations

import json
import tempfile
import time

import numpy as np
import torch

from sgdscape.surfaces.bench.measure import Row, interleaved, python_process, seconds_text
from sgdscape.surfaces.bench.seed import seed_train

_FRESH = r"""
import json, sys, time
began = time.perf_counter()
import numpy as np
import sgdscape
imported = time.perf_counter()
what, n, g = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
if what == "floor":  # the fresh-allocation floor: a new float32 array of the same size, filled
    np.ones((n, g, g), dtype=np.float32)
elif what in ("per-sample", "risk"):
    data = sgdscape.ground_truth(n, seed=0)
    grid = sgdscape.Grid.square(g)
    start = time.perf_counter()
    sgdscape.landscape("relu-unit", data, grid, per_sample=what == "per-sample")
elif what == "train":  # n inits x g SGD steps, one sample per step, default recording
    import torch
    data = sgdscape.ground_truth(g, seed=0)
    inits = torch.empty(n, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    sgdscape.train("relu-unit", data, init=inits, lr=0.05)
seconds = time.perf_counter() - start
print(json.dumps({"import": imported - began, "seconds": seconds}))
"""


def fresh_process(what: str, n: int, g: int) -> dict[str, float]:
    """One measurement in a new Python process: ``{"import", "seconds", "process"}``.

    ``seconds`` is the first call after ``import sgdscape`` (``what``: ``"floor"`` for
    ``np.ones((n, g, g))``, ``"per-sample"`` or ``"risk"`` for ``landscape`` of ``n`` samples
    on a ``g x g`` grid, ``"train"`` for ``n`` inits over ``g`` samples), with default
    options; ``process`` is the child's whole wall time, interpreter start included.
    """
    began = time.perf_counter()
    stdout = python_process(
        ["-c", _FRESH, what, str(n), str(g)], f"fresh-process benchmark {what!r} failed"
    )
    process = time.perf_counter() - began
    report = json.loads(stdout.strip().splitlines()[-1])
    return {"import": report["import"], "seconds": report["seconds"], "process": process}


def whole_cli(arguments: list[str]) -> float:
    """Wall seconds of ``python -m sgdscape ARGUMENTS`` in a new process."""
    began = time.perf_counter()
    python_process(["-m", "sgdscape", *arguments], f"sgdscape {' '.join(arguments)} failed")
    return time.perf_counter() - began


def bench_user_per_sample(n_samples: int = 1000, grid: int = 300, repeats: int = 3) -> Row:
    """``landscape("relu-unit", ground_truth(n), Grid.square(g))`` with default options,
    against the fresh-allocation floor (``np.ones`` of the same size, float32).

    First call: each in its own fresh process (the floor's first allocation too); warm:
    best of ``repeats``, ours and the floor interleaved in this process. Each output is
    new memory, as every user call's is.
    """
    from sgdscape.core.grid import Grid
    from sgdscape.core.landscape import landscape
    from sgdscape.core.problems import ground_truth

    floor = fresh_process("floor", n_samples, grid)
    first = fresh_process("per-sample", n_samples, grid)
    data, spec = ground_truth(n_samples, seed=0), Grid.square(grid)
    landscape("relu-unit", data, spec)
    warm = interleaved(
        {
            "floor": lambda: np.ones((n_samples, grid, grid), dtype=np.float32),
            "ours": lambda: landscape("relu-unit", data, spec),
        },
        repeats,
    )
    return Row(
        name="user: landscape per-sample, default options",
        device="cpu",
        sizes=f"{n_samples} x {grid}x{grid}",
        evaluations=float(n_samples * grid * grid),
        seconds=warm["ours"],
        first_call=first["seconds"],
        process=first["process"],
        floor=f"np.ones {4 * n_samples * grid * grid / 2**20:.0f} MiB float32",
        floor_first=floor["seconds"],
        floor_warm=warm["floor"],
        extra={"import sgdscape (fresh process)": seconds_text(first["import"])},
    )


def bench_user_risk(
    seed_rate: float, n_samples: int = 2000, grid: int = 1000, repeats: int = 3
) -> Row:
    """``landscape(..., per_sample=False)`` with default options: first call in a fresh
    process (any kernel build or load included), whole process, warm; the floor is the seed
    loop's rate (``seed_rate``, evaluations/s) applied to the same work."""
    from sgdscape.core.grid import Grid
    from sgdscape.core.landscape import landscape
    from sgdscape.core.problems import ground_truth

    evaluations = float(n_samples * grid * grid)
    first = fresh_process("risk", n_samples, grid)
    data, spec = ground_truth(n_samples, seed=0), Grid.square(grid)
    landscape("relu-unit", data, spec, per_sample=False)
    warm = interleaved(
        {"ours": lambda: landscape("relu-unit", data, spec, per_sample=False)}, repeats
    )
    seed_seconds = evaluations / seed_rate
    return Row(
        name="user: landscape risk only, default options",
        device="cpu",
        sizes=f"{n_samples} x {grid}x{grid}",
        evaluations=evaluations,
        seconds=warm["ours"],
        first_call=first["seconds"],
        process=first["process"],
        floor="the seed's make_grids loop, same work",
        floor_first=seed_seconds,
        floor_warm=seed_seconds,
        extra={
            "first call evaluations/s": f"{evaluations / first['seconds']:.2e}",
            "whole process evaluations/s": f"{evaluations / first['process']:.2e}",
            "import sgdscape (fresh process)": seconds_text(first["import"]),
        },
    )


def bench_user_train(
    seed_seconds: float, n_inits: int = 10_000, n_samples: int = 100, repeats: int = 3
) -> Row:
    """``train("relu-unit", data, init=K inits, lr=0.05)`` with default options (default
    recording): first call in a fresh process and warm, against the seed's ``train``
    (``seed_seconds`` per trajectory) times ``n_inits``."""
    from sgdscape.core.problems import ground_truth
    from sgdscape.core.train import train

    first = fresh_process("train", n_inits, n_samples)
    data = ground_truth(n_samples, seed=0)
    inits = torch.empty(n_inits, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(1))
    train("relu-unit", data, init=inits, lr=0.05)
    warm = interleaved({"ours": lambda: train("relu-unit", data, init=inits, lr=0.05)}, repeats)
    return Row(
        name="user: trajectories, default options",
        device="cpu",
        sizes=f"{n_inits} inits x {n_samples} steps",
        evaluations=float(n_inits * n_samples),
        seconds=warm["ours"],
        first_call=first["seconds"],
        process=first["process"],
        floor=f"the seed's train, {seconds_text(seed_seconds)}/trajectory x {n_inits}",
        floor_first=seed_seconds * n_inits,
        floor_warm=seed_seconds * n_inits,
    )


def bench_user_cli(arguments: list[str], name: str, repeats: int = 1) -> Row:
    """The whole process of ``sgdscape ARGUMENTS``; the floor: a process that only starts
    Python and imports sgdscape."""
    import_only = min(fresh_process("none", 1, 1)["process"] for _ in range(repeats))
    seconds = min(whole_cli(arguments) for _ in range(repeats))
    return Row(
        name=name,
        device="cpu",
        sizes=" ".join(arguments),
        evaluations=float("nan"),
        seconds=seconds,
        first_call=seconds,
        process=seconds,
        floor="python -c 'import sgdscape' (whole process)",
        floor_first=import_only,
        floor_warm=import_only,
    )


def user_rows(seed_rate: float, quick: bool = False, repeats: int = 3) -> list[Row]:
    """The issue-16 rows: what a user meets with default options, each against its floor.

    Full: per-sample grids 1,000 x 300x300, risk only 2,000 x 1000x1000, 10,000
    trajectories x 100 steps, and the whole ``sgdscape run`` process for 2,000 samples on
    a 1000x1000 grid. Quick: the two landscape rows at small sizes.
    """
    if quick:
        return [
            bench_user_per_sample(100, 100, repeats),
            bench_user_risk(seed_rate, 200, 200, repeats),
        ]
    from sgdscape.core.problems import ground_truth

    data = ground_truth(100, seed=0)
    seed_seconds = interleaved(
        {"s": lambda: seed_train(data.x, data.y, init=torch.FloatTensor([1.2, -2.3]), lr=0.05)},
        5,
    )["s"]
    rows = [
        bench_user_per_sample(1000, 300, repeats),
        bench_user_risk(seed_rate, 2000, 1000, repeats),
        bench_user_train(seed_seconds, 10_000, 100, repeats),
    ]
    with tempfile.TemporaryDirectory() as out:
        arguments = ["run", "--samples", "2000", "--grid", "1000", "--figures", "none", "-q"]
        rows.append(
            bench_user_cli(
                [*arguments, "--out", out], "user: sgdscape run, 2000 samples, 1000x1000 grid"
            )
        )
        rows[-1].sizes = " ".join(arguments)
    return rows
