"""The CUDA benchmark rows, ready for whoever is lent a GPU: run this first, then commit the JSON.

Run from the repository root::

    python benchmarks/gpu_suite.py                       # every row on cuda, < 5 minutes
    python benchmarks/gpu_suite.py --device cpu --quick  # the dry run CI executes

Every row is measured three ways, each with its floor measured in the same run:

- **first call**: a fresh Python process that imports sgdscape and calls the public API once with
  default options (what a user meets); the child reports the call's wall time only;
- **warm**: the best of ``--repeats`` calls in this process, after one warm-up call;
- **floor**: device copy bandwidth for landscapes (the bytes the result must be written with),
  the seed notebook's own ``train`` for trajectories, loss-landscapes' ``random_plane`` for
  network slices (when it is installed: ``pip install loss-landscapes==3.0.6``).

Rows: the materialised per-sample landscape, the risk-only landscape (evaluations/s), 100,000
SGD trajectories of 100 steps, a digits-MLP network slice, 10^5 chains x 1,000 steps (and 10^6
chains on CUDA; issue 18), and the digits MLP's top Hessian eigenvalue and trace against
PyHessian (issue 17). Rows still pending when
``--budget`` seconds have passed are written as skipped, so the suite always ends in time.
The JSON goes to ``docs/bench/gpu-<device>.json`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from sgdscape.surfaces.bench import (
    Row,
    best_time,
    copy_bandwidth,
    interleaved,
    print_table,
    seed_train,
    write_json,
)

ROOT = Path(__file__).resolve().parent.parent

_FIRST_CALL = r"""
import json, sys, time
import sgdscape
device, code = sys.argv[1], sys.argv[2]
namespace = {"sgdscape": sgdscape, "device": device}
exec(code.split("#CALL")[0], namespace)
if device.startswith("cuda"):
    import torch; torch.cuda.synchronize()
start = time.perf_counter()
exec(code.split("#CALL")[1], namespace)
if device.startswith("cuda"):
    torch.cuda.synchronize()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def first_call_seconds(setup: str, call: str, device: str, timeout: float) -> float:
    """Wall time of ``call`` run once in a fresh process after ``setup`` (import excluded)."""
    completed = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL, device, f"{setup}\n#CALL\n{call}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"first-call child failed:\n{completed.stderr[-2000:]}")
    return float(json.loads(completed.stdout.strip().splitlines()[-1])["seconds"])


def landscape_rows(device: str, quick: bool, repeats: int, timeout: float) -> list[Row]:
    """Materialised per-sample grids against copy bandwidth; risk-only evaluations/s."""
    import sgdscape

    target = torch.device(device)
    n, g = (50, 50) if quick else (1000, 1000)
    n_risk, g_risk = (100, 60) if quick else (2000, 1000)
    setup = f"data = sgdscape.ground_truth({n}, seed=0); grid = sgdscape.Grid.square({g})"
    call = "sgdscape.landscape('relu-unit', data, grid, device=device, memory_budget=2**34)"
    first = first_call_seconds(setup, call, device, timeout)
    data, grid = sgdscape.ground_truth(n, seed=0), sgdscape.Grid.square(g)

    def materialised() -> object:
        return sgdscape.landscape("relu-unit", data, grid, device=device, memory_budget=2**34)

    materialised()
    warm = best_time(materialised, target, repeats)
    bandwidth = copy_bandwidth(target, 2**22 if quick else 2**30)
    written = 4.0 * n * g * g
    rows = []
    for label, seconds in (("first call", first), ("warm", warm)):
        rows.append(
            Row(
                f"per-sample landscape, {label}",
                target.type,
                f"{n} x {g}x{g}",
                evaluations=float(n * g * g),
                seconds=seconds,
                baseline=f"copy {written / 2**20:.0f} MiB at device bandwidth",
                baseline_seconds=2 * written / bandwidth,
                ratio=(2 * written / bandwidth) / seconds,
                extra={"device copy bandwidth (bytes/s)": f"{bandwidth:.3e}"},
            )
        )
    setup = f"data = sgdscape.ground_truth({n_risk}, seed=0); grid = sgdscape.Grid.square({g_risk})"
    call = "sgdscape.landscape('relu-unit', data, grid, per_sample=False, device=device)"
    first = first_call_seconds(setup, call, device, timeout)
    data, grid = sgdscape.ground_truth(n_risk, seed=0), sgdscape.Grid.square(g_risk)

    def risk() -> object:
        return sgdscape.landscape("relu-unit", data, grid, per_sample=False, device=device)

    risk()
    warm = best_time(risk, target, repeats)
    for label, seconds in (("first call", first), ("warm", warm)):
        rows.append(
            Row(
                f"risk only, {label}",
                target.type,
                f"{n_risk} x {g_risk}x{g_risk}",
                evaluations=float(n_risk * g_risk * g_risk),
                seconds=seconds,
            )
        )
    return rows


def trajectory_rows(device: str, quick: bool, repeats: int, timeout: float) -> list[Row]:
    """100,000 SGD trajectories of 100 steps against the seed's ``train`` per trajectory."""
    import sgdscape

    target = torch.device(device)
    inits, steps = (1000, 100) if quick else (100_000, 100)
    setup = (
        f"data = sgdscape.ground_truth({steps}, seed=0)\n"
        "import torch\n"
        f"inits = torch.empty({inits}, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(1))"
    )
    call = "sgdscape.train('relu-unit', data, init=inits, lr=0.05, device=device)"
    first = first_call_seconds(setup, call, device, timeout)
    data = sgdscape.ground_truth(steps, seed=0)
    start = torch.empty(inits, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(1))

    def ours() -> object:
        return sgdscape.train("relu-unit", data, init=start, lr=0.05, device=device)

    ours()
    warm = best_time(ours, target, repeats)
    seed = interleaved(
        {"seed": lambda: seed_train(data.x, data.y, lr=0.05, init=torch.tensor([1.2, -2.3]))},
        max(3, repeats),
    )["seed"]
    return [
        Row(
            f"SGD trajectories, {label}",
            target.type,
            f"{inits} inits x {steps} steps",
            evaluations=float(inits * steps),
            seconds=seconds,
            baseline=f"seed train {seed * 1e3:.1f} ms/trajectory (CPU)",
            baseline_seconds=seed,
            ratio=inits * seed / seconds,
        )
        for label, seconds in (("first call", first), ("warm", warm))
    ]


def network_rows(device: str, quick: bool, repeats: int, timeout: float) -> list[Row]:
    """A filter-normalised random slice of the digits MLP against loss-landscapes."""
    from sgdscape.core.grid import Grid
    from sgdscape.networks.examples import get_example
    from sgdscape.networks.slicing import random_directions, slice_landscape

    target = torch.device(device)
    points = 11 if quick else 51
    example = get_example("digits-mlp")
    directions = random_directions(example.model, seed=0)

    def ours() -> object:
        return slice_landscape(
            example.model,
            example.loss_fn,
            (example.x, example.y),
            directions=directions,
            grid=Grid.square(points, -1.0, 1.0),
            device=device,
        )

    ours()
    warm = best_time(ours, target, repeats)
    baseline_seconds, baseline = float("nan"), "loss-landscapes not installed"
    try:
        import loss_landscapes
        import loss_landscapes.metrics
    except ImportError:
        pass
    else:
        model = copy.deepcopy(example.model).to(target)
        metric = loss_landscapes.metrics.Loss(
            example.loss_fn, example.x.to(target), example.y.to(target)
        )
        baseline_seconds = best_time(
            lambda: loss_landscapes.random_plane(model, metric, 1.0, points, "filter", True),
            target,
            1 if not quick else repeats,
        )
        baseline = "loss-landscapes random_plane"
    return [
        Row(
            "digits-MLP slice, warm",
            target.type,
            f"{points}x{points}, {len(example.x)} samples",
            evaluations=float(points * points * len(example.x)),
            seconds=warm,
            baseline=baseline,
            baseline_seconds=baseline_seconds,
            ratio=baseline_seconds / warm,
        )
    ]


def chain_rows(device: str, quick: bool, repeats: int, timeout: float) -> list[Row]:
    """Issue 18: 10^5 chains x 1,000 steps of SGD, batch 1, on relu-unit (target on an H100/H200:
    at most 0.5 s warm), against one ``train`` call per chain measured in the same run; on CUDA
    also 10^6 chains (issue 18: "K = 10^6 works on a GPU")."""
    import sgdscape
    from sgdscape.core.train import train

    target = torch.device(device)
    n_chains, steps = (1000, 100) if quick else (100_000, 1000)
    kwargs = "init=(1.2, -2.3), lr=0.05, batch_size=1, record_steps=[0, steps // 2, steps]"
    setup = f"data = sgdscape.ground_truth(seed=0)\nsteps = {steps}"
    call = f"sgdscape.chains('relu-unit', data, n_chains={n_chains}, steps=steps, {kwargs}, device=device)"
    first = first_call_seconds(setup, call, device, timeout)
    data = sgdscape.ground_truth(seed=0)
    options: dict[str, object] = {"init": (1.2, -2.3), "lr": 0.05, "batch_size": 1}

    def run(k: int) -> Callable[[], object]:
        return lambda: sgdscape.chains(
            "relu-unit",
            data,
            n_chains=k,
            steps=steps,
            record_steps=[0, steps // 2, steps],
            device=device,
            **options,
        )

    run(n_chains)()
    warm = best_time(run(n_chains), target, repeats)
    epochs = -(-steps // len(data))  # one train call per chain: a few, per chain-step

    def one_chain() -> object:
        return train(
            "relu-unit",
            data,
            seed=0,
            epochs=epochs,
            record_full_gradient=False,
            record_risk=False,
            **options,
        )

    one_chain()
    per_train = (
        best_time(one_chain, torch.device("cpu"), max(3, repeats)) * steps / (epochs * len(data))
    )
    rows = [
        Row(
            f"chains, {label}",
            target.type,
            f"{n_chains} chains x {steps} steps",
            evaluations=float(n_chains * steps),
            seconds=seconds,
            baseline=f"one train call per chain, {per_train * 1e3:.2f} ms each (CPU)",
            baseline_seconds=per_train * n_chains,
            ratio=per_train * n_chains / seconds,
        )
        for label, seconds in (("first call", first), ("warm", warm))
    ]
    if target.type == "cuda" and not quick:
        millions = 1_000_000
        run(millions)()
        seconds = best_time(run(millions), target, 1)
        rows.append(
            Row(
                "chains 10^6, warm",
                target.type,
                f"{millions} chains x {steps} steps",
                evaluations=float(millions * steps),
                seconds=seconds,
                baseline="one train call per chain (CPU)",
                baseline_seconds=per_train * millions,
                ratio=per_train * millions / seconds,
            )
        )
    return rows


def curvature_rows(device: str, quick: bool, repeats: int, timeout: float) -> list[Row]:
    """Issue 17: the top Hessian eigenvalue and Hutchinson's trace of the digits MLP on the
    device, against PyHessian on the same device when it is installed (``pip install
    pyhessian``), each warm, best of ``repeats``."""
    import warnings

    from sgdscape.networks.curvature import hutchinson_trace, top_eigenvalues
    from sgdscape.networks.examples import get_example

    target = torch.device(device)
    example = get_example("digits-mlp")
    model, loss_fn, data = example.model, example.loss_fn, (example.x, example.y)
    probes = 10 if quick else 100

    def ours_top() -> object:
        return top_eigenvalues(model, loss_fn, data, k=1, tol=1e-3, device=device)

    def ours_trace() -> object:
        return hutchinson_trace(model, loss_fn, data, n_probes=probes, device=device)

    baselines: dict[str, Callable[[], object]] = {}
    try:
        from pyhessian import hessian as pyhessian_hessian
    except ImportError:
        pass
    else:
        moved = copy.deepcopy(model).to(target)
        on_device = (example.x.to(target), example.y.to(target))

        def pyhessian(method: str, **options: object) -> object:
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                computer = pyhessian_hessian(
                    moved, loss_fn, data=on_device, cuda=target.type == "cuda"
                )
                return getattr(computer, method)(**options)

        baselines["top eigenvalue"] = lambda: pyhessian("eigenvalues")
        baselines["trace"] = lambda: pyhessian("trace", maxIter=probes, tol=0.0)
    rows = []
    for name, ours in (("top eigenvalue", ours_top), (f"trace ({probes} probes)", ours_trace)):
        ours()
        seconds = best_time(ours, target, repeats)
        theirs = baselines.get(name.split(" (")[0])
        baseline_seconds = float("nan")
        if theirs is not None:
            theirs()
            baseline_seconds = best_time(theirs, target, repeats)
        rows.append(
            Row(
                f"digits-MLP Hessian {name}, warm",
                target.type,
                f"{sum(p.numel() for p in model.parameters())} parameters, {len(example.x)} samples",
                evaluations=1.0,
                seconds=seconds,
                baseline="PyHessian" if theirs is not None else "pyhessian not installed",
                baseline_seconds=baseline_seconds,
                ratio=baseline_seconds / seconds,
            )
        )
    return rows


SECTIONS: dict[str, Callable[[str, bool, int, float], list[Row]]] = {
    "landscapes": landscape_rows,
    "trajectories": trajectory_rows,
    "networks": network_rows,
    "chains": chain_rows,
    "curvature": curvature_rows,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a dry run in seconds")
    parser.add_argument("--repeats", type=int, default=3, help="warm calls, best of")
    parser.add_argument("--budget", type=float, default=270.0, help="seconds for all rows")
    parser.add_argument(
        "--out", default=None, help="JSON path (default docs/bench/gpu-<device>.json)"
    )
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "no CUDA device here: run on a GPU machine, or pass --device cpu --quick",
            file=sys.stderr,
        )
        return 2
    deadline = time.monotonic() + args.budget
    rows: list[Row] = []
    skipped: list[str] = []
    for name, section in SECTIONS.items():
        left = deadline - time.monotonic()
        if left <= 0:
            skipped.append(name)
            continue
        rows += section(args.device, args.quick, args.repeats, left)
    print_table(rows)
    out = Path(args.out or ROOT / "docs" / "bench" / f"gpu-{args.device.replace(':', '')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(str(out), rows, {"suite": "gpu_suite", "quick": args.quick, "skipped": skipped})
    print(f"wrote {out}" + (f"; out of time, skipped: {', '.join(skipped)}" if skipped else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
