"""Network slices: sgdscape vs loss-landscapes' ``random_plane``, and a ResNet-20-sized slice.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_networks.py [--grid 31] [--device cpu|cuda]

1. The digits MLP (64-32-10, 1,797 samples), the same ``grid x grid`` filter-normalised
   random plane in both libraries, timed in this process; prints the speed ratio.
2. Matmul throughput measured here, and the slice's effective FLOP rate beside it.
3. A ResNet-20-sized CNN (3 stages x 3 basic blocks, 16/32/64 channels, batch norm,
   ~0.27M parameters) on synthetic 32x32 images: a reduced slice is timed and the full
   51x51 slice on 10,000 images extrapolated linearly (points x images), said as such.

``--suite`` runs instead the rows issue 16 asks for: on the 1,797 digits, MLPs of 2, 3 and 4
``Linear`` layers (about 1.2e4, 5.1e4 and 7.4e4 parameters) and the digits CNN, at 1 and 2 torch
threads, each library's *first call in a fresh process with default options* (sgdscape:
``random_directions`` + ``slice_landscape``; loss-landscapes: ``random_plane``, filter-normalised,
the same ``grid x grid`` points) and its warm time (best of ``--repeats``) in that same process.
Every (model, threads) pair runs in two fresh processes, one per order (ours first, theirs first),
so each library's first call is timed in a process where it comes first; the warm times are the
best over both. Each row also prints its *ceiling*: loss-landscapes' warm time over the time
of every layer's products but the first at the matmul peak measured in the same process, the
most any slice that keeps the arithmetic could beat it by. Results print as a table and,
with ``--json PATH``, are written there::

    PYTHONPATH=src python benchmarks/bench_networks.py --suite [--grid 21] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

from sgdscape.core.grid import Grid
from sgdscape.networks.examples import get_example
from sgdscape.networks.slicing import random_directions, slice_landscape


def timed(work, repeat: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_loss_landscapes(model, loss_fn, x, y, grid: int):
    """loss-landscapes 3.0.6 random_plane on a deep copy, or the reason it cannot run."""
    try:
        import loss_landscapes
        import loss_landscapes.metrics
    except ImportError as error:
        return None, f"loss-landscapes not installed ({error}); pip install loss-landscapes==3.0.6"
    metric = loss_landscapes.metrics.Loss(loss_fn, x, y)
    try:
        loss_landscapes.random_plane(copy.deepcopy(model), metric, 1.0, 3, "filter", True)  # warm
        seconds, values = timed(
            repeat=3,
            work=lambda: loss_landscapes.random_plane(
                copy.deepcopy(model),
                metric,
                distance=1.0,
                steps=grid,
                normalization="filter",
                deepcopy_model=True,
            ),
        )
    except Exception as error:  # report, do not hide, why the baseline fails
        return None, f"random_plane failed: {type(error).__name__}: {error}"
    return seconds, np.asarray(values)


def matmul_gflops(device: torch.device, size: int = 1024) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    seconds, _ = timed(lambda: a @ b, repeat=5)
    return 2 * size**3 / seconds / 1e9


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet20(nn.Module):
    """He et al. (2016) CIFAR ResNet-20: 19 conv layers + 1 linear layer."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        layers, inputs = [], 16
        for outputs, stride in ((16, 1), (32, 2), (64, 2)):
            for block in range(3):
                layers.append(BasicBlock(inputs, outputs, stride if block == 0 else 1))
                inputs = outputs
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(torch.relu(self.stem(x)))
        return self.head(out.mean(dim=(2, 3)))


# ----------------------------------------------------------------------------- the suite (issue 16)

SUITE_MODELS = ("mlp-2", "mlp-3", "mlp-4", "digits-cnn")


def suite_model(name: str) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """``(model, loss_fn, x, y)`` of a suite row: an MLP on the flat digits, or the digits CNN."""
    example = get_example("digits-cnn" if name == "digits-cnn" else "digits-mlp")
    if name == "digits-cnn":
        return example.model, example.loss_fn, example.x, example.y
    widths = {"mlp-2": [64, 160, 10], "mlp-3": [64, 256, 128, 10], "mlp-4": [64, 200, 200, 100, 10]}
    layers: list[nn.Module] = []
    sizes = widths[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for index, (inputs, outputs) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(inputs, outputs))
            if index < len(sizes) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers), example.loss_fn, example.x, example.y


def layer_flops(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Floating-point operations (2 per multiply-add) of each ``Linear`` and ``Conv2d`` layer
    in one forward pass of ``model`` over ``x``, in the order they run."""
    flops: list[float] = []

    def count(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(layer, nn.Linear):
            flops.append(2.0 * output.numel() * layer.in_features)
        else:
            assert isinstance(layer, nn.Conv2d)
            kernel = layer.kernel_size[0] * layer.kernel_size[1]
            flops.append(2.0 * output.numel() * kernel * layer.in_channels / layer.groups)

    hooks = [
        module.register_forward_hook(count)
        for module in model.modules()
        if isinstance(module, nn.Linear | nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return flops


def ceiling(theirs_seconds: float, flops: list[float], points: int, peak_gflops: float) -> float:
    """The most any slice that keeps loss-landscapes' arithmetic could beat it by: its time
    over the time of every layer's products but the first (which the first-layer algebra
    skips; counted free here) at this core's measured matmul peak, at each of ``points``
    grid points. Losses, activations and the data's movement are left out, so the true
    bound is lower still."""
    return theirs_seconds / (sum(flops[1:]) * points / (peak_gflops * 1e9))


def suite_child(name: str, threads: int, grid: int, order: str, repeats: int) -> dict:
    """One fresh process: both libraries' first calls (in ``order``) and their warm times."""
    torch.set_num_threads(threads)
    import loss_landscapes
    import loss_landscapes.metrics

    model, loss_fn, x, y = suite_model(name)

    def ours() -> np.ndarray:
        directions = random_directions(model)
        return slice_landscape(
            model, loss_fn, (x, y), directions=directions, grid=Grid.square(grid, -1.0, 1.0)
        ).risk

    def theirs() -> np.ndarray:
        metric = loss_landscapes.metrics.Loss(loss_fn, x, y)
        return np.asarray(
            loss_landscapes.random_plane(
                copy.deepcopy(model), metric, distance=1.0, steps=grid, normalization="filter"
            )
        )

    work = {"ours": ours, "theirs": theirs}
    first, first_cpu = {}, {}
    for label in order.split(","):
        start, start_cpu = time.perf_counter(), time.process_time()
        values = work[label]()
        first[label] = time.perf_counter() - start
        first_cpu[label] = time.process_time() - start_cpu
        assert np.isfinite(values).all() and values.shape == (grid, grid)
    warm = {label: float("inf") for label in work}
    warm_cpu = dict(warm)
    for _ in range(repeats):
        for label, function in work.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            function()
            warm[label] = min(warm[label], time.perf_counter() - start)
            warm_cpu[label] = min(warm_cpu[label], time.process_time() - start_cpu)
    flops = layer_flops(model, x)
    peak = matmul_gflops(torch.device("cpu"))
    return {
        "model": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "layer_flops": flops,
        "matmul_gflops": peak,
        "theirs_gflops": sum(flops) * grid**2 / warm["theirs"] / 1e9,
        "ceiling": ceiling(warm["theirs"], flops, grid**2, peak),
        "threads": torch.get_num_threads(),
        "order": order,
        "first": first,
        "warm": warm,
        # process CPU seconds (all threads): on a shared machine wall time also counts the
        # other processes' turns
        "first_cpu": first_cpu,
        "warm_cpu": warm_cpu,
    }


def suite(grid: int, repeats: int, threads: list[int], out: str | None) -> list[dict]:
    """Every (model, threads) row in fresh processes; prints the table of ratios."""
    rows = []
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, {grid}x{grid} grid, load average before: {load}")
    header = (
        f"{'model':<11}{'params':>8}{'thr':>4} | {'first: ours':>11}{'theirs':>8}{'ratio':>7} | "
        f"{'warm: ours':>10}{'theirs':>8}{'ratio':>7}"
    )
    print(header)
    for name in SUITE_MODELS:
        for count in threads:
            children = []
            for order in ("ours,theirs", "theirs,ours"):
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    f"{name}:{count}:{grid}:{order}:{repeats}",
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                children.append(json.loads(done.stdout.strip().splitlines()[-1]))
            first = {
                "ours": children[0]["first"]["ours"],
                "theirs": children[1]["first"]["theirs"],
            }
            warm = {k: min(c["warm"][k] for c in children) for k in ("ours", "theirs")}
            first_cpu = {
                "ours": children[0]["first_cpu"]["ours"],
                "theirs": children[1]["first_cpu"]["theirs"],
            }
            warm_cpu = {k: min(c["warm_cpu"][k] for c in children) for k in ("ours", "theirs")}
            row = {
                "model": name,
                "parameters": children[0]["parameters"],
                "threads": count,
                "grid": grid,
                "first_seconds": first,
                "warm_seconds": warm,
                "first_ratio": first["theirs"] / first["ours"],
                "warm_ratio": warm["theirs"] / warm["ours"],
                "first_cpu_ratio": first_cpu["theirs"] / first_cpu["ours"],
                "warm_cpu_ratio": warm_cpu["theirs"] / warm_cpu["ours"],
                "ceiling": max(c["ceiling"] for c in children),
                "children": children,
            }
            rows.append(row)
            print(
                f"{name:<11}{row['parameters']:>8}{count:>4} | {first['ours']:>11.3f}"
                f"{first['theirs']:>8.3f}{row['first_ratio']:>6.1f}x | {warm['ours']:>10.3f}"
                f"{warm['theirs']:>8.3f}{row['warm_ratio']:>6.1f}x | CPU-time ratios: first "
                f"{row['first_cpu_ratio']:.1f}x, warm {row['warm_cpu_ratio']:.1f}x | ceiling "
                f"{row['ceiling']:.1f}x (theirs at {children[0]['theirs_gflops']:.0f} of "
                f"{children[0]['matmul_gflops']:.0f} GFLOP/s)",
                flush=True,
            )
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"load average after: {load}; target: ratio >= 5x in every row. ceiling: the most a "
        "slice doing loss-landscapes' products (all but the first layer's) at this core's "
        "matmul peak could beat it by (see ceiling())"
    )
    if out:
        with open(out, "w") as handle:
            json.dump({"grid": grid, "torch": torch.__version__, "rows": rows}, handle, indent=2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suite", action="store_true", help="the issue-16 rows (see the docstring)"
    )
    parser.add_argument("--suite-threads", default="1,2", help="torch thread counts of the suite")
    parser.add_argument("--repeats", type=int, default=3, help="warm repeats of the suite")
    parser.add_argument("--json", default=None, help="write the suite's rows there")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--grid", type=int, default=31, help="points per axis (digits MLP)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resnet-images", type=int, default=64)
    parser.add_argument("--resnet-grid", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads for both libraries"
    )
    args = parser.parse_args()
    if args.child:
        name, count, grid, order, repeats = args.child.split(":")
        print(json.dumps(suite_child(name, int(count), int(grid), order, int(repeats))))
        return
    if args.suite:
        threads = [int(t) for t in args.suite_threads.split(",")]
        suite(args.grid if args.grid != 31 else 21, args.repeats, threads, args.json)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else args.device
        if args.device != "auto"
        else "cpu"
    )
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}, "
        f"load average {load}"
    )

    example = get_example("digits-mlp")
    model, loss_fn, x, y = example.model, example.loss_fn, example.x, example.y
    n_params = sum(p.numel() for p in model.parameters())
    directions = random_directions(model, seed=0)
    grid = Grid.square(args.grid, -1.0, 1.0)
    slice_landscape(model, loss_fn, (x, y), directions=directions, grid=4, device=device)  # warm
    # The generic path first: after the fast path's allocations, glibc's malloc serves the
    # generic path's 9 MB chunks by mmap (page faults every chunk) and it runs ~1.6x slower;
    # in this order neither path is slowed by the other.
    generic, _ = timed(
        repeat=3,
        work=lambda: slice_landscape(
            model,
            loss_fn,
            (x, y),
            directions=directions,
            grid=grid,
            device=device,
            use_algebra=False,
        ),
    )
    ours, _ = timed(
        repeat=3,
        work=lambda: slice_landscape(
            model, loss_fn, (x, y), directions=directions, grid=grid, device=device
        ),
    )
    points = args.grid**2
    print(f"\n[digits MLP: {n_params} parameters, {len(x)} samples, {args.grid}x{args.grid} plane]")
    print(
        f"sgdscape slice_landscape (fast path):           {ours:.3f} s ({points / ours:.0f} points/s)"
    )
    print(f"sgdscape slice_landscape (generic vmap):        {generic:.3f} s")
    if device.type == "cpu":
        theirs, values = bench_loss_landscapes(model, loss_fn, x, y, args.grid)
        if theirs is None:
            print(f"loss-landscapes random_plane: could not run: {values}")
        else:
            print(
                f"loss-landscapes random_plane:                   {theirs:.3f} s "
                f"(values in [{values.min():.3g}, {values.max():.3g}])"
            )
            print(f"ratio: sgdscape is {theirs / ours:.1f}x faster (target >= 5x on CPU)")
    else:
        print("loss-landscapes random_plane: not timed on CUDA (it is CPU-only)")
    flops = 2.0 * len(x) * n_params * points
    peak = matmul_gflops(device)
    print(
        f"matmul throughput here: {peak:.1f} GFLOP/s; slice at {flops / ours / 1e9:.1f} "
        f"generic-equivalent GFLOP/s = {100 * flops / ours / 1e9 / peak:.0f}% of matmul "
        "(the first-layer algebra skips most of those FLOPs)"
    )

    resnet = ResNet20()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.resnet_images, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (args.resnet_images,), generator=generator)
    rdirections = random_directions(resnet, seed=0)
    rgrid = Grid.square(args.resnet_grid, -1.0, 1.0)
    seconds, _ = timed(
        lambda: slice_landscape(
            resnet,
            nn.CrossEntropyLoss(),
            (images, labels),
            directions=rdirections,
            grid=rgrid,
            device=device,
            batch_size=min(64, args.resnet_images),
        )
    )
    measured = args.resnet_grid**2 * args.resnet_images
    full = 51 * 51 * 10_000
    print(f"\n[ResNet-20: {sum(p.numel() for p in resnet.parameters())} parameters]")
    print(
        f"measured: {args.resnet_grid}x{args.resnet_grid} grid x {args.resnet_images} images "
        f"= {measured} forward passes in {seconds:.2f} s ({measured / seconds:.0f} images/s)"
    )
    print(
        f"extrapolated (linear, not measured): 51x51 x 10,000 images = {full} forward passes "
        f"-> {full / (measured / seconds) / 3600:.1f} h on this device"
    )


if __name__ == "__main__":
    main()
