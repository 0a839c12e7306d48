"""sgdscape's network curvature against PyHessian, side by side in one process (digits MLP, CPU).

Both compute, on the full 1,797-sample digits set at the example's initial parameters:
- the top Hessian eigenvalue (PyHessian: power iteration, ``maxIter=100, tol=1e-3``; sgdscape:
  Lanczos with full reorthogonalisation, ``tol=1e-3`` on the Ritz residual);
- the top 3 eigenvalues (PyHessian: power iteration with deflation, one run per eigenvalue;
  sgdscape: one Lanczos run);
- the Hessian trace by Hutchinson with the same number of Rademacher probes (PyHessian's
  ``trace(maxIter=n, tol=0)`` runs exactly ``n`` probes; sgdscape vmaps them in batches).

A third row runs PyHessian's power iteration to ``tol=1e-5``, for the accuracy the Lanczos answer
has at the default tolerance (the relative errors against a ``tol=1e-8`` Lanczos reference are
reported). It checks that the answers agree (eigenvalue within 1% relative, traces within 4 combined standard
errors) and prints the times and their ratio. Each side is timed warm (after one untimed call, so
neither pays first-call imports such as torch._dynamo for torch.func), best of ``--repeats``.

    pip install pyhessian   # not a dependency of sgdscape
    python benchmarks/bench_curvature.py [--probes 100] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sgdscape.networks.curvature import hutchinson_trace, top_eigenvalues
from sgdscape.networks.examples import get_example

CPU_SECONDS: dict[str, float] = {}


def _best(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """``(best wall seconds, last result)`` of ``repeats`` timed calls after one warm-up call.

    The best process CPU seconds of the same calls go into :data:`CPU_SECONDS` under the
    function's name (on a shared machine, wall time also counts other processes' turns).
    """
    result = function()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_SECONDS[function.__name__] = min(cpu)
    return min(times), result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from pyhessian import hessian as PyHessian

    example = get_example("digits-mlp")
    model, loss_fn, x, y = example.model.eval(), example.loss_fn, example.x, example.y
    n_params = sum(p.numel() for p in model.parameters())

    def pyhessian(method: str, **options: Any) -> Any:
        torch.manual_seed(0)  # PyHessian draws from the global RNG
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

    def ours_trace() -> Any:
        return hutchinson_trace(model, loss_fn, (x, y), n_probes=args.probes, batch=50, seed=1)

    t_py_top, py_top = _best(pyhessian_top, args.repeats)
    t_top, top = _best(ours_top, args.repeats)
    t_py_tight, py_tight = _best(pyhessian_top_tight, args.repeats)
    t_py_top3, py_top3 = _best(pyhessian_top3, args.repeats)
    t_top3, top3 = _best(ours_top3, args.repeats)
    t_py_trace, py_samples = _best(pyhessian_trace, args.repeats)
    t_trace, trace = _best(ours_trace, args.repeats)
    reference3 = top_eigenvalues(model, loss_fn, (x, y), k=3, tol=1e-8, seed=1).eigenvalues
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
            },
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
        "seconds": {
            "pyhessian_top": t_py_top,
            "pyhessian_top_tol_1e-5": t_py_tight,
            "sgdscape_top": t_top,
            "pyhessian_top_3": t_py_top3,
            "sgdscape_top_3": t_top3,
            "pyhessian_trace": t_py_trace,
            "sgdscape_trace": t_trace,
        },
        "speedup": {
            "top_eigenvalue": t_py_top / t_top,
            "top_eigenvalue_vs_pyhessian_tol_1e-5": t_py_tight / t_top,
            "top_3": t_py_top3 / t_top3,
            "trace": t_py_trace / t_trace,
            "both": (t_py_top + t_py_trace) / (t_top + t_trace),
        },
        "cpu_seconds": dict(CPU_SECONDS),
        "cpu_speedup": {
            "top_eigenvalue": CPU_SECONDS["pyhessian_top"] / CPU_SECONDS["ours_top"],
            "top_3": CPU_SECONDS["pyhessian_top3"] / CPU_SECONDS["ours_top3"],
            "trace": CPU_SECONDS["pyhessian_trace"] / CPU_SECONDS["ours_trace"],
        },
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
