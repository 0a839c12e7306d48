"""Many SGD chains: 10^5 chains x 1,000 steps of SGD, batch 1, on relu-unit (issue 18).

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_chains.py [--chains 100000] [--steps 1000]
        [--device cpu|cuda] [--repeat 2]

Prints, for the batched run (warm: the best of ``--repeat`` runs after one small warm-up):
the wall time, its split into drawing the chains' minibatch indices (one seeded
``torch.Generator`` per chain, the rule that makes chain k equal ``train(seed=seed+k)``)
and stepping, and the ratio to one ``train`` call per chain, measured in the same process
by timing a few single-chain ``train`` calls of the same run and extrapolating per chain.
The load average is printed beside it: on a shared machine the times move with it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

import numpy as np
import torch

import sgdscape
from sgdscape.core import kernels
from sgdscape.core.train import train

chains_module = importlib.import_module("sgdscape.core.chains")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--single-runs", type=int, default=20)
    args = parser.parse_args()

    data = sgdscape.ground_truth(seed=0)
    kwargs = dict(init=(1.2, -2.3), lr=0.05, batch_size=1, sampling="with-replacement")
    record = [0, args.steps // 2, args.steps]

    def batched() -> object:
        return chains_module.chains(
            "relu-unit", data, n_chains=args.chains, steps=args.steps, record_steps=record,
            device=args.device, **kwargs,
        )  # fmt: skip

    # warm-up: compiles the SGD block kernel (K is a dynamic axis, so it serves every K)
    chains_module.chains(
        "relu-unit", data, n_chains=64, steps=40, device=args.device, engine="fused", **kwargs
    )
    best, result = float("inf"), None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = batched()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)

    # the index draw alone (the same generators and calls as a run), to split the time
    start = time.perf_counter()
    buffer = torch.empty((args.chains, args.steps), dtype=torch.uint8)
    for k in range(args.chains):
        buffer[k].random_(0, len(data), generator=torch.Generator().manual_seed(k))
    draw = time.perf_counter() - start

    # one train call per chain: a few of them, extrapolated to all chains
    epochs = -(-args.steps // len(data))
    train("relu-unit", data, seed=0, epochs=epochs, record_full_gradient=False, **kwargs)
    start = time.perf_counter()
    for k in range(args.single_runs):
        train(
            "relu-unit", data, seed=k, epochs=epochs, record_full_gradient=False,
            record_risk=False, **kwargs,
        )  # fmt: skip
    per_train = (time.perf_counter() - start) / args.single_runs * args.steps / (epochs * len(data))
    serial = per_train * args.chains

    assert result is not None
    print(f"load average (1, 5, 15 min): {os.getloadavg()}; cpus: {os.cpu_count()}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    print(
        f"chains: {args.chains:,} x {args.steps:,} steps of SGD batch 1 on relu-unit: "
        f"{best:.2f} s warm (best of {args.repeat}); "
        f"{args.chains * args.steps / best:.3g} chain-steps/s"
    )
    print(f"  of which drawing the per-chain indices: about {draw:.2f} s")
    print(f"  compiled SGD blocks run (warm-up and engine auto): {kernels.used['sgd-steps']}")
    print(
        f"one train call per chain: {per_train * 1e3:.2f} ms each (mean of {args.single_runs}), "
        f"{serial:.0f} s for all {args.chains:,}; batched is {serial / best:.0f}x faster"
    )
    finite = np.isfinite(result.final).all(axis=1).mean()  # type: ignore[attr-defined]
    print(f"finite chains at the end: {finite:.3f}")


if __name__ == "__main__":
    main()
