"""The digits CNN's second convolution (8 -> 16 channels, 3x3, on 4x4 maps) at many grid points,
three ways, one thread: how fast torch runs the layer that dominates the CNN's slice.

Run from the repository root::

    python benchmarks/conv_forms.py [--points 25] [--threads 1]

Each grid point has its own weights (a point of the plane), so the layer is ``points``
convolutions of the 1,797 digits' 8-channel maps: a loop of ``conv2d`` (what a per-point
forward does), one grouped ``conv2d`` (``groups=points``), and ``unfold`` + ``bmm``. The
rates say what a slice of the CNN could gain from evaluating the layer otherwise
(docs/networks.md, issue 16's network rows).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F


def best_seconds(work, repeats: int = 3) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), torch.empty(0)
    for _ in range(repeats):
        start = time.perf_counter()
        out = work()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    samples, points = 1797, args.points
    generator = torch.Generator().manual_seed(0)
    maps = torch.randn(points, samples, 8, 4, 4, generator=generator)
    weights = torch.randn(points, 16, 8, 3, 3, generator=generator)

    def loop() -> torch.Tensor:
        return torch.stack([F.conv2d(maps[p], weights[p], padding=1) for p in range(points)])

    def grouped() -> torch.Tensor:
        stacked = maps.permute(1, 0, 2, 3, 4).reshape(samples, points * 8, 4, 4)
        out = F.conv2d(stacked, weights.reshape(points * 16, 8, 3, 3), padding=1, groups=points)
        return out.reshape(samples, points, 16, 4, 4).permute(1, 0, 2, 3, 4)

    def unfold_bmm() -> torch.Tensor:
        columns = F.unfold(maps.reshape(points * samples, 8, 4, 4), 3, padding=1)
        columns = columns.reshape(points, samples, 72, 16).transpose(2, 3)
        out = torch.bmm(
            columns.reshape(points, samples * 16, 72), weights.reshape(points, 16, 72).mT
        )
        return out.reshape(points, samples, 4, 4, 16).permute(0, 1, 4, 2, 3)

    flops = 2.0 * points * samples * 16 * 16 * 72  # outputs x channels x taps, 2 per multiply-add
    reference = None
    for name, work in (
        ("loop of conv2d", loop),
        ("grouped conv2d", grouped),
        ("unfold + bmm", unfold_bmm),
    ):
        seconds, out = best_seconds(work)
        reference = out if reference is None else reference
        error = (out - reference).abs().max().item()
        print(
            f"{name:<16} {seconds * 1e3:7.1f} ms  {flops / seconds / 1e9:5.1f} GFLOP/s  (max diff {error:.1e})"
        )


if __name__ == "__main__":
    main()
