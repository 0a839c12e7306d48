"""sgdscape's network curvature against PyHessian, side by side in one process (digits MLP, CPU).

Both compute, on the full 1,797-sample digits set at the example's initial parameters:
- the top Hessian eigenvalue (PyHessian: power iteration, ``maxIter=100, tol=1e-3``, from a
  Gaussian start; sgdscape: Lanczos with full reorthogonalisation, ``tol=1e-3`` on the
  step-to-step change of the top Ritz value, PyHessian's criterion, from its default start, the
  unit gradient plus a unit Gaussian vector; the seed sweep also times ``start="random"``);
- the top 3 eigenvalues (PyHessian: power iteration with deflation, one run per eigenvalue;
  sgdscape: one Lanczos run);
- the Hessian trace by Hutchinson with the same number of Rademacher probes (PyHessian's
  ``trace(maxIter=n, tol=0)`` runs exactly ``n`` probes; sgdscape vmaps them in batches).

A seed sweep times both top-eigenvalue runs over the start vectors of seeds ``0 .. --seeds - 1``
(how many products each method needs depends on its start vector: PyHessian's power iteration
took 11 to 33 on the first ten, Lanczos 9 to 10 from the gradient start and 9 to 13 from a
Gaussian one; the report lists sgdscape's counts), and a further row runs PyHessian's power
iteration to ``tol=1e-5``, for the accuracy the Lanczos answer has at the default tolerance (the
relative errors against a ``tol=1e-8`` Lanczos reference are reported). It checks that the
answers agree (eigenvalue within 1% relative, traces within 4 combined standard errors) and
prints the times and their ratio. Each side is timed warm (after one untimed call, so
neither pays first-call imports such as torch._dynamo for torch.func). The two sides of each
comparison are timed interleaved, ``--rounds`` times (each time the best of ``--repeats`` calls
in a row), so that both meet the same load on a shared machine; the report gives each side's
median seconds and the median, lowest and highest of the per-round ratios (wall and CPU seconds).

    pip install pyhessian   # not a dependency of sgdscape
    python benchmarks/bench_curvature.py [--probes 100] [--rounds 7] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sgdscape.networks.curvature import hutchinson_trace, top_eigenvalues
from sgdscape.networks.examples import get_example


def _best(function: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """``(best wall seconds, best process CPU seconds, last result)`` of ``repeats`` calls."""
    wall, cpu, result = math.inf, math.inf, None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu, result


def _interleaved(
    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]], rounds: int, repeats: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Time each ``(pyhessian, sgdscape)`` pair alternately for ``rounds`` rounds.

    Returns ``(results, timings)``: the last result of every function, and per comparison the
    median seconds of each side and the median, min and max over rounds of the ratio
    ``pyhessian / sgdscape`` (wall and CPU seconds). Every function is called once first, untimed.
    """
    results: dict[str, Any] = {}
    for name, (theirs, ours) in pairs.items():
        results[name] = (theirs(), ours())
    samples: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in pairs}
    for _ in range(rounds):
        for name, (theirs, ours) in pairs.items():
            wall_theirs, cpu_theirs, got_theirs = _best(theirs, repeats)
            wall_ours, cpu_ours, got_ours = _best(ours, repeats)
            results[name] = (got_theirs, got_ours)
            samples[name].append((wall_theirs, wall_ours, cpu_theirs, cpu_ours))
    timings: dict[str, Any] = {}
    for name, rows in samples.items():
        table = np.asarray(rows)
        wall, cpu = table[:, 0] / table[:, 1], table[:, 2] / table[:, 3]
        timings[name] = {
            "pyhessian_seconds": float(np.median(table[:, 0])),
            "sgdscape_seconds": float(np.median(table[:, 1])),
            "speedup": float(np.median(wall)),
            "speedup_min_max": [float(wall.min()), float(wall.max())],
            "cpu_speedup": float(np.median(cpu)),
            "cpu_speedup_min_max": [float(cpu.min()), float(cpu.max())],
        }
    return results, timings


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=10, help="start vectors of the seed sweep")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from pyhessian import hessian as PyHessian

    example = get_example("digits-mlp")
    model, loss_fn, x, y = example.model.eval(), example.loss_fn, example.x, example.y
    n_params = sum(p.numel() for p in model.parameters())

    def pyhessian(method: str, seed: int = 0, **options: Any) -> Any:
        torch.manual_seed(seed)  # PyHessian draws from the global RNG
        with warnings.catch_warnings():
            # PyHessian calls backward(create_graph=True), on which torch warns of a reference cycle
            warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
            computer = PyHessian(model, loss_fn, data=(x, y), cuda=False)
            return getattr(computer, method)(**options)

    def pyhessian_top() -> float:
        return float(pyhessian("eigenvalues")[0][0])

    def pyhessian_top_tight() -> float:
        return float(pyhessian("eigenvalues", maxIter=1000, tol=1e-5)[0][0])

    def pyhessian_top3() -> list[float]:
        return [float(v) for v in pyhessian("eigenvalues", top_n=3)[0]]

    def ours_top3() -> list[float]:
        pairs = top_eigenvalues(model, loss_fn, (x, y), k=3, tol=1e-3, seed=0)
        return [float(v) for v in pairs.eigenvalues]

    def pyhessian_trace() -> list[float]:
        return pyhessian("trace", maxIter=args.probes, tol=0)

    def ours_top() -> float:
        return float(top_eigenvalues(model, loss_fn, (x, y), k=1, tol=1e-3, seed=0).eigenvalues[0])

    def pyhessian_top_seeds() -> list[float]:
        return [float(pyhessian("eigenvalues", seed=s)[0][0]) for s in range(args.seeds)]

    def ours_top_seeds() -> list[float]:
        return [
            float(top_eigenvalues(model, loss_fn, (x, y), k=1, tol=1e-3, seed=s).eigenvalues[0])
            for s in range(args.seeds)
        ]

    def ours_top_seeds_random() -> list[float]:
        return [
            float(
                top_eigenvalues(
                    model, loss_fn, (x, y), k=1, tol=1e-3, seed=s, start="random"
                ).eigenvalues[0]
            )
            for s in range(args.seeds)
        ]

    def ours_trace() -> Any:
        return hutchinson_trace(model, loss_fn, (x, y), n_probes=args.probes, batch=50, seed=1)

    results, timings = _interleaved(
        {
            "top_eigenvalue": (pyhessian_top, ours_top),
            "top_eigenvalue_vs_pyhessian_tol_1e-5": (pyhessian_top_tight, ours_top),
            f"top_eigenvalue_seeds_0_to_{args.seeds - 1}": (pyhessian_top_seeds, ours_top_seeds),
            f"top_eigenvalue_seeds_0_to_{args.seeds - 1}_random_start": (
                pyhessian_top_seeds,
                ours_top_seeds_random,
            ),
            "top_3": (pyhessian_top3, ours_top3),
            "trace": (pyhessian_trace, ours_trace),
        },
        args.rounds,
        args.repeats,
    )
    py_top, top = results["top_eigenvalue"]
    py_tight = results["top_eigenvalue_vs_pyhessian_tol_1e-5"][0]
    py_top3, top3 = results["top_3"]
    py_samples, trace = results["trace"]
    py_seeds, seeds = results[f"top_eigenvalue_seeds_0_to_{args.seeds - 1}"]
    seeds_random = results[f"top_eigenvalue_seeds_0_to_{args.seeds - 1}_random_start"][1]
    reference3 = top_eigenvalues(model, loss_fn, (x, y), k=3, tol=1e-8, seed=1).eigenvalues
    products = {
        start: [
            top_eigenvalues(model, loss_fn, (x, y), k=1, tol=1e-3, seed=s, start=start).n_products
            for s in range(args.seeds)
        ]
        for start in ("gradient", "random")
    }
    reference = float(reference3[0])
    py_trace = float(np.mean(py_samples))
    py_se = float(np.std(py_samples, ddof=1) / math.sqrt(len(py_samples)))
    combined = math.hypot(py_se, trace.standard_error)
    report = {
        "model": f"digits-mlp ({n_params} parameters, {x.shape[0]} samples)",
        "torch_threads": torch.get_num_threads(),
        "top_eigenvalue": {
            "pyhessian": py_top,
            "pyhessian_tol_1e-5": py_tight,
            "sgdscape": top,
            "reference_lanczos_1e-8": reference,
            "relative_error": {
                "pyhessian": abs(py_top - reference) / abs(reference),
                "pyhessian_tol_1e-5": abs(py_tight - reference) / abs(reference),
                "sgdscape": abs(top - reference) / abs(reference),
                "pyhessian_worst_over_seeds": max(abs(v - reference) for v in py_seeds)
                / abs(reference),
                "sgdscape_worst_over_seeds": max(abs(v - reference) for v in seeds)
                / abs(reference),
                "sgdscape_random_start_worst_over_seeds": max(
                    abs(v - reference) for v in seeds_random
                )
                / abs(reference),
            },
            "sgdscape_products_over_seeds": products,
        },
        "top_3": {
            "pyhessian": py_top3,
            "sgdscape": top3,
            "reference_lanczos_1e-8": [float(v) for v in reference3],
        },
        "trace": {
            "pyhessian": py_trace,
            "pyhessian_se": py_se,
            "sgdscape": trace.trace,
            "sgdscape_se": trace.standard_error,
            "probes": args.probes,
        },
        "rounds": args.rounds,
        "repeats": args.repeats,
        "load_average": list(os.getloadavg()),
        "timings": timings,
    }
    print(json.dumps(report, indent=2))
    if abs(top - py_top) > 1e-2 * abs(reference) or abs(top - reference) > 1e-3 * abs(reference):
        raise SystemExit(
            f"top eigenvalues disagree: PyHessian {py_top}, sgdscape {top}, ref {reference}"
        )
    if abs(trace.trace - py_trace) > 4 * combined:
        raise SystemExit(
            f"traces disagree beyond 4 SE: PyHessian {py_trace}, sgdscape {trace.trace}"
        )
    return report


if __name__ == "__main__":
    main()
