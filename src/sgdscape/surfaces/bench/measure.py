"""How the benchmarks measure: interleaved best-of timing, the machine, table rows and their output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from sgdscape.io import write_atomic


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
            f"{row.name:<34} {row.device:<6} {row.sizes:<26} {seconds_text(row.seconds):>10} "
            f"{row.rate:>9.2e} {row.baseline:<26} {ratio:>9}"
        )
        if row.floor:
            write(
                f"{'':<4}first call (fresh process) {seconds_text(row.first_call)}, "
                f"{row.first_ratio:.3g}x the floor; warm {seconds_text(row.seconds)}, "
                f"{row.warm_ratio:.3g}x the floor; floor: {row.floor} "
                f"(first {seconds_text(row.floor_first)}, warm {seconds_text(row.floor_warm)})"
            )
        if row.process == row.process:
            write(f"{'':<4}whole process: {seconds_text(row.process)}")
        for key, value in row.extra.items():
            write(f"{'':<4}{key}: {value}")


def seconds_text(value: float) -> str:
    """``value`` seconds as text in s, ms or us."""
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


#: what a developer's or CI's shell may set that a user's does not: ``PYTHONDONTWRITEBYTECODE``
#: makes every process compile sgdscape's modules from source again (0.3-0.4 s of
#: ``sgdscape run`` on the 2-core machine), where a user's first run writes the
#: ``__pycache__`` that later runs read, as ``pip install`` does for a wheel
NOT_A_USERS = ("PYTHONDONTWRITEBYTECODE",)


def users_environment() -> dict[str, str]:
    """This environment as a user's shell would have it: without :data:`NOT_A_USERS`."""
    return {key: value for key, value in os.environ.items() if key not in NOT_A_USERS}


def child_environment() -> dict[str, str]:
    """The :func:`users_environment` with the ``src`` folder holding :mod:`sgdscape` first
    on PYTHONPATH.

    The benchmarks that run in a fresh process pass it so that the child imports this copy,
    as a user's process would (with bytecode caches).
    """
    source = str(Path(__file__).resolve().parents[3])
    environment = users_environment()
    environment["PYTHONPATH"] = os.pathsep.join(
        [source, *filter(None, [environment.get("PYTHONPATH")])]
    )
    return environment


def python_process(arguments: list[str], failure: str) -> str:
    """The standard output of ``python ARGUMENTS`` run in a new process with
    :func:`child_environment`; a ``RuntimeError`` saying ``failure`` and the child's standard
    error if it exits with a nonzero status."""
    completed = subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        env=child_environment(),
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{failure}:\n{completed.stderr}")
    return completed.stdout


def sync_device(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op but on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(function: Callable[[], object], device: torch.device, repeats: int = 3) -> float:
    """Best wall time of ``function`` over ``repeats`` runs, synchronising the device."""
    best = float("inf")
    for _ in range(repeats):
        sync_device(device)
        start = time.perf_counter()
        function()
        sync_device(device)
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(device: torch.device, nbytes: int = 2**28, repeats: int = 5) -> float:
    """Measured copy bandwidth in bytes/s (read + write) between two warm buffers."""
    source = torch.ones(nbytes // 4, device=device)
    target = torch.zeros(nbytes // 4, device=device)
    seconds = best_time(lambda: target.copy_(source), device, repeats)
    return 2 * nbytes / seconds
