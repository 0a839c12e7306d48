"""Benchmarks: sgdscape against the seed notebook's own loops, measured in the same process.

The seed's ``make_grids`` and ``train`` are copied below, changed only as far as a modern
torch requires (no ``Variable``: ``volatile=True`` becomes ``torch.no_grad()``;
``reduce=False`` becomes ``reduction="none"``; the recorded values are read with ``.item()``
because ``tensor.data[0]`` is now a view that the optimizer would overwrite in place). They
keep one ``nn.Module`` per grid point, as in the notebook.

Every comparison runs baseline and candidate interleaved, best of ``repeats``, so the
ratio is measured under the same load (the machines we run on are shared and noisy).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn
from torch.nn import Parameter
from torch.nn.functional import mse_loss, relu
from torch.optim import SGD

from sgdscape.io import write_atomic

# ----------------------------------------------------------------- the seed's own code


class SimpleMLP(nn.Module):
    """The seed's model, ``w1 * relu(w2 * x)``, one object per parameter value."""

    def __init__(self, w=None):
        super().__init__()
        self.w1 = Parameter(torch.FloatTensor((1,)))
        self.w2 = Parameter(torch.FloatTensor((1,)))
        if w is None:
            self.reset_parameters()
        else:
            self.set_parameters(w)

    def reset_parameters(self):
        self.w1.data.uniform_(-0.1, 0.1)
        self.w2.data.uniform_(-0.1, 0.1)

    def set_parameters(self, w):
        self.w1.data[0] = w[0]
        self.w2.data[0] = w[1]

    def forward(self, x):
        return self.w1 * relu(self.w2 * x)


def seed_make_grids(x, y, grid_size=100):
    """The seed's ``make_grids``: a Python loop over grid points, one model each."""
    n_samples = len(x)
    assert len(x) == len(y)

    x_max, y_max, x_min, y_min = 3, 3, -3, -3
    w1 = np.linspace(x_min, x_max, grid_size, dtype=np.float32)
    w2 = np.linspace(y_min, y_max, grid_size, dtype=np.float32)
    W1, W2 = np.meshgrid(w1, w2)
    W = np.concatenate((W1[:, :, None], W2[:, :, None]), axis=2)
    W = torch.from_numpy(W)

    grids = torch.FloatTensor(n_samples, grid_size, grid_size)

    with torch.no_grad():  # was Variable(x, volatile=True)
        for i in range(grid_size):
            for j in range(grid_size):
                model = SimpleMLP(W[i, j])
                pred = model(x)
                loss = mse_loss(pred, y, reduction="none").data
                grids[:, i, j] = loss[:, 0]  # (n, 1) no longer broadcasts into (n,)
    return W1, W2, grids


def seed_train(x, y, init, lr=0.1):
    """The seed's ``train``: one trajectory, one sample per step, ``torch.optim.SGD``."""
    model = SimpleMLP(init)
    optimizer = SGD(model.parameters(), lr=lr)
    iterate_rec = []
    grad_rec = []
    for this_x, this_y in zip(x, y, strict=True):
        this_x = this_x[None, :]
        this_y = this_y[None, :]
        optimizer.zero_grad()
        pred = model(this_x)
        loss = mse_loss(pred, this_y)
        loss.backward()
        iterate_rec.append([model.w1.data[0].item(), model.w2.data[0].item()])
        grad_rec.append([model.w1.grad.data[0].item(), model.w2.grad.data[0].item()])
        optimizer.step()
    return np.array(iterate_rec), np.array(grad_rec)


# ----------------------------------------------------------------------- measurement


def interleaved(functions: dict[str, Callable[[], object]], repeats: int = 3) -> dict[str, float]:
    """Best wall time (s) of each function, run round-robin ``repeats`` times."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as handle:
            load = handle.read().split()[0]
    except OSError:
        load = "unknown"
    info: dict[str, object] = {
        "load_average_1min": load,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    return info


@dataclass
class Row:
    """One line of a benchmark table."""

    name: str
    device: str
    sizes: str
    evaluations: float
    seconds: float
    baseline: str = ""
    baseline_seconds: float = float("nan")
    ratio: float = float("nan")
    extra: dict[str, object] = field(default_factory=dict)
    #: what a user meets (issue 16): the first call in a fresh process with default options,
    #: the whole process where there is one, and its floor measured in the same run
    first_call: float = float("nan")
    process: float = float("nan")
    floor: str = ""
    floor_first: float = float("nan")
    floor_warm: float = float("nan")

    @property
    def rate(self) -> float:
        """Evaluations per second."""
        return self.evaluations / self.seconds if self.seconds > 0 else float("nan")

    @property
    def first_ratio(self) -> float:
        """The floor's first-call time over ours (1 = as fast as the floor)."""
        return self.floor_first / self.first_call if self.first_call > 0 else float("nan")

    @property
    def warm_ratio(self) -> float:
        """The floor's warm time over ours."""
        return self.floor_warm / self.seconds if self.seconds > 0 else float("nan")


def against_seed_rate(
    name: str,
    device: str,
    sizes: str,
    evaluations: float,
    seconds: float,
    seed_rate: float,
    extra: dict[str, object] | None = None,
) -> Row:
    """A row whose baseline is the seed loop's rate (evaluations/s) applied to the same work."""
    return Row(
        name,
        device,
        sizes,
        evaluations,
        seconds,
        baseline="seed loop rate",
        baseline_seconds=evaluations / seed_rate,
        ratio=evaluations / seconds / seed_rate,
        extra=extra or {},
    )


def print_table(rows: list[Row], write: Callable[[str], object] = print) -> None:
    """A plain-text table of ``rows``."""
    header = f"{'benchmark':<34} {'device':<6} {'sizes':<26} {'time':>10} {'evals/s':>9} {'baseline':<26} {'ratio':>9}"
    write(header)
    write("-" * len(header))
    for row in rows:
        ratio = "" if row.ratio != row.ratio else f"{row.ratio:,.0f}x"
        write(
            f"{row.name:<34} {row.device:<6} {row.sizes:<26} {_seconds(row.seconds):>10} "
            f"{row.rate:>9.2e} {row.baseline:<26} {ratio:>9}"
        )
        if row.floor:
            write(
                f"{'':<4}first call (fresh process) {_seconds(row.first_call)}, "
                f"{row.first_ratio:.3g}x the floor; warm {_seconds(row.seconds)}, "
                f"{row.warm_ratio:.3g}x the floor; floor: {row.floor} "
                f"(first {_seconds(row.floor_first)}, warm {_seconds(row.floor_warm)})"
            )
        if row.process == row.process:
            write(f"{'':<4}whole process: {_seconds(row.process)}")
        for key, value in row.extra.items():
            write(f"{'':<4}{key}: {value}")


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} us"


def write_json(path: str, rows: list[Row], meta: dict[str, object]) -> None:
    """Write ``{"machine": ..., "rows": [...]}`` atomically."""
    payload = {
        "machine": machine(),
        **meta,
        "rows": [
            {
                **asdict(row),
                "evaluations_per_s": row.rate,
                "first_ratio": row.first_ratio,
                "warm_ratio": row.warm_ratio,
            }
            for row in rows
        ],
    }
    write_atomic(path, json.dumps(payload, indent=2, default=float).encode())


# ------------------------------------------------------------------ the foundation set


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
        baseline=f"seed make_grids {_seconds(times['seed'])}",
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
    source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [source, *filter(None, [environment.get("PYTHONPATH")])]
    )
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n_samples), str(grid), str(budget)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"risk benchmark child failed:\n{completed.stderr}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
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


# ------------------------------------------------------------- what users meet (issue 16)

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


def _environment() -> dict[str, str]:
    source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [source, *filter(None, [environment.get("PYTHONPATH")])]
    )
    return environment


def fresh_process(what: str, n: int, g: int) -> dict[str, float]:
    """One measurement in a new Python process: ``{"import", "seconds", "process"}``.

    ``seconds`` is the first call after ``import sgdscape`` (``what``: ``"floor"`` for
    ``np.ones((n, g, g))``, ``"per-sample"`` or ``"risk"`` for ``landscape`` of ``n`` samples
    on a ``g x g`` grid, ``"train"`` for ``n`` inits over ``g`` samples), with default
    options; ``process`` is the child's whole wall time, interpreter start included.
    """
    began = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", _FRESH, what, str(n), str(g)],
        capture_output=True,
        text=True,
        env=_environment(),
        check=False,
    )
    process = time.perf_counter() - began
    if completed.returncode != 0:
        raise RuntimeError(f"fresh-process benchmark {what!r} failed:\n{completed.stderr}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"import": report["import"], "seconds": report["seconds"], "process": process}


def whole_cli(arguments: list[str]) -> float:
    """Wall seconds of ``python -m sgdscape ARGUMENTS`` in a new process."""
    began = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "sgdscape", *arguments],
        capture_output=True,
        text=True,
        env=_environment(),
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"sgdscape {' '.join(arguments)} failed:\n{completed.stderr}")
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
        extra={"import sgdscape (fresh process)": _seconds(first["import"])},
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
            "import sgdscape (fresh process)": _seconds(first["import"]),
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
        floor=f"the seed's train, {_seconds(seed_seconds)}/trajectory x {n_inits}",
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
        baseline=f"seed train {_seconds(best['seed'])}/traj",
        baseline_seconds=best["seed"],
        ratio=n_inits * best["seed"] / best["ours"],
        extra={"unit": "evaluations = optimizer steps"},
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


# ------------------------------------------------------------------ the performance suite


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(function: Callable[[], object], device: torch.device, repeats: int = 3) -> float:
    """Best wall time of ``function`` over ``repeats`` runs, synchronising the device."""
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        function()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(device: torch.device, nbytes: int = 2**28, repeats: int = 5) -> float:
    """Measured copy bandwidth in bytes/s (read + write) between two warm buffers."""
    source = torch.ones(nbytes // 4, device=device)
    target = torch.zeros(nbytes // 4, device=device)
    seconds = best_time(lambda: target.copy_(source), device, repeats)
    return 2 * nbytes / seconds


def suite(device: str = "cpu", quick: bool = False, repeats: int = 3) -> list[Row]:
    """The issue-7 performance table: landscapes, trajectories and memory, with baselines.

    Sizes follow the issue: materialised per-sample grids 1,000 x 300x300 on the CPU
    (1,000 x 1000x1000 on a GPU), risk-only 2,000 x 1000x1000, 10,000 initialisations x
    100 steps. ``quick`` is a smoke test of a few seconds: small sizes and only the eager
    rows (no compiled kernel, whose first compilation alone takes tens of seconds, and no
    fresh-process memory row).
    """
    from sgdscape.core import kernels
    from sgdscape.core.devices import resolve_device
    from sgdscape.core.grid import Grid
    from sgdscape.core.landscape import landscape
    from sgdscape.core.losses import get_loss
    from sgdscape.core.models import get_model
    from sgdscape.core.problems import ground_truth

    target = resolve_device(device)
    name = target.type
    gpu = name == "cuda"
    rows: list[Row] = []

    # the seed's own loop: the reference rate of every "ratio" below
    seed_row = bench_seed_landscape(100, 20 if quick else 100, repeats=repeats)
    seed_rate = seed_row.evaluations / seed_row.baseline_seconds
    rows.append(seed_row)
    if not gpu:
        rows.extend(user_rows(seed_rate, quick=quick, repeats=repeats))

    bandwidth = copy_bandwidth(target, 2**24 if quick else 2**28)
    rows.append(
        Row(
            "copy bandwidth (read+write)",
            name,
            f"{(2**24 if quick else 2**28) / 2**20:.0f} MiB",
            evaluations=float("nan"),
            seconds=float("nan"),
            extra={"bytes/s": f"{bandwidth:.3e}"},
        )
    )

    model, loss = get_model("relu-unit"), get_loss("mse")
    n_mat, g_mat = (100, 100) if quick else ((1000, 1000) if gpu else (1000, 300))
    data = ground_truth(n_mat, seed=0)
    grid = Grid.square(g_mat)
    points = grid.shape[0] * grid.shape[1]
    evaluations = float(n_mat * points)
    written = 4 * evaluations
    budget = int(written * 1.5) + 2**28

    w1, w2 = (torch.from_numpy(a).to(target) for a in grid.axes())
    wt = torch.stack(
        [w1[None, :].expand(len(w2), -1).reshape(-1), w2[:, None].expand(-1, len(w1)).reshape(-1)]
    ).contiguous()
    x, y = data.x.to(target).reshape(-1), data.y.to(target).reshape(-1)
    out = torch.empty(n_mat, points, device=target)
    # the kernel landscape() uses: the scale-split one for this model on its own axes
    from sgdscape.core.landscape import scale_split

    split = scale_split(model, wt.T.reshape(len(w2), len(w1), 2))
    if split is not None:
        scale, row_params = split
        hidden = model.function(row_params, x).contiguous()

        def fill() -> object:
            return kernels.scaled_fill(
                model, loss, out.view(n_mat, len(w2), len(w1)), scale, hidden, y
            )
    else:

        def fill() -> object:
            return kernels.fused_fill(model, loss, out, wt, x, y)

    used = kernels.used["fill"]
    times = {
        "plain": best_time(
            lambda: landscape(
                model, data, grid, engine="plain", memory_budget=budget, device=target
            ),
            target,
            repeats,
        ),
    }
    if not quick:
        fill()  # compile and fault the pages in
        used = kernels.used["fill"]
        times["fused (fresh output)"] = best_time(
            lambda: landscape(
                model, data, grid, engine="fused", memory_budget=budget, device=target
            ),
            target,
            repeats,
        )
        times["fused kernel, reused buffer"] = best_time(fill, target, repeats)
    fused_ok = kernels.used["fill"] > used
    for label, seconds in times.items():
        rows.append(
            against_seed_rate(
                f"per-sample grids: {label}",
                name,
                f"{n_mat} x {g_mat}x{g_mat}",
                evaluations,
                seconds,
                seed_rate,
                {
                    "fraction of copy bandwidth": f"{written / seconds / bandwidth:.0%}",
                    **({} if fused_ok or label == "plain" else {"note": "fell back to plain"}),
                },
            )
        )

    n_risk, g_risk = (500, 200) if quick else (2000, 1000)
    data = ground_truth(n_risk, seed=0)
    grid = Grid.square(g_risk)
    evaluations = float(n_risk * grid.shape[0] * grid.shape[1])
    small = Grid.square(max(8, g_risk // 4))
    small_evaluations = float(n_risk * small.shape[0] * small.shape[1])
    plain = best_time(
        lambda: landscape(model, data, small, per_sample=False, engine="plain", device=target),
        target,
        1 if not quick else repeats,
    )
    rows.append(
        against_seed_rate(
            "risk only: plain",
            name,
            f"{n_risk} x {small.shape[0]}x{small.shape[1]}",
            small_evaluations,
            plain,
            seed_rate,
        )
    )
    if not quick:
        landscape(model, data, Grid.square(8), per_sample=False, engine="fused", device=target)
        fused = best_time(
            lambda: landscape(model, data, grid, per_sample=False, engine="fused", device=target),
            target,
            repeats,
        )
        rows.append(
            against_seed_rate(
                "risk only: fused",
                name,
                f"{n_risk} x {g_risk}x{g_risk}",
                evaluations,
                fused,
                seed_rate,
                {"vs plain rate": f"{(evaluations / fused) / (small_evaluations / plain):.1f}x"},
            )
        )
    if not gpu and not quick:
        rows.append(
            bench_risk_memory(n_risk, g_risk, name="risk only: peak memory (fresh process)")
        )

    n_inits = 100 if quick else 10_000
    # "as the seed": iterates and minibatch gradients, what the seed's train records;
    # "all": also the full-data gradient and risk at every iterate
    optimizers: tuple[tuple[str, dict[str, object] | None], ...] = (
        ("sgd", None),
        ("sgd", {"momentum": 0.9}),
        ("adam", None),
        ("rmsprop", None),
    )
    engines: tuple[tuple[str, bool], ...] = (("plain", True), ("fused", True), ("fused", False))
    if quick:
        optimizers, engines = optimizers[:1], engines[:1]
    for optimizer, options in optimizers:
        for engine, full in engines:
            row = bench_trajectories(
                n_inits,
                100,
                repeats=repeats,
                seed_repeats=1 if quick else 5,
                optimizer=optimizer,
                optimizer_options=options,
                engine=engine,
                device=str(target),
                record_full_gradient=full,
                record_risk=full,
            )
            rows.append(row)
    # on a shared machine one slow round inflates a ratio: divide every trajectory row by the
    # fastest seed time seen (the conservative choice)
    fastest = min(r.baseline_seconds for r in rows if r.name.startswith("trajectories"))
    for row in rows:
        if row.name.startswith("trajectories"):
            row.baseline_seconds = fastest
            row.baseline = f"seed train {_seconds(fastest)}/traj"
            row.ratio = n_inits * fastest / row.seconds
    return rows
