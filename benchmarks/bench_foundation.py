"""Foundation benchmark (issue 2): sgdscape against the seed notebook's own loops.

Runs, in one process, the seed's ``make_grids`` and ``train`` (copied in
``sgdscape.surfaces.bench``, changed only as far as modern torch requires) and sgdscape's
``landscape`` / ``train``, interleaved, best of N, and prints the ratios:

- landscape with per-sample grids at the seed's sizes (100 samples, 100x100): target >= 100x;
- the risk-only path on 10,000 samples x 1000x1000 in a fresh process, with its peak
  resident memory against the default 1 GiB budget;
- 10,000 initialisations x 100 SGD steps batched against the seed's one-trajectory loop
  (per-trajectory throughput; issue 3 asks >= 1000x), with the default engine ("auto",
  which does not compile work this small) and the fused one (compiled; timed after a
  warm-up, so compilation is not counted).

- what users meet (issue 16): ``landscape`` per-sample 1,000 x 300x300 and risk-only
  2,000 x 1000x1000 and ``train`` of 10,000 inits with default options, each as the first
  call in a fresh process, the whole process and warm, against its floor measured in the
  same run (``np.ones`` of the same size; the seed's loops).

Usage::

    PYTHONPATH=src python benchmarks/bench_foundation.py [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse

import torch

from sgdscape.surfaces.bench import (
    bench_risk_memory,
    bench_seed_landscape,
    bench_trajectories,
    bench_user_per_sample,
    bench_user_risk,
    bench_user_train,
    machine,
    print_table,
    write_json,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="best of N [3]")
    parser.add_argument("--threads", type=int, help="torch CPU threads [torch's default]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    quick = args.quick
    rows = [
        bench_seed_landscape(100, 30 if quick else 100, repeats=args.repeats),
        bench_risk_memory(500 if quick else 10_000, 100 if quick else 1000),
        bench_trajectories(200 if quick else 10_000, 100, repeats=args.repeats),
        bench_trajectories(200 if quick else 10_000, 100, repeats=args.repeats, engine="fused"),
    ]
    fastest = min(rows[2].baseline_seconds, rows[3].baseline_seconds)
    for row in rows[2:]:  # the fastest seed time seen: the conservative baseline
        row.baseline_seconds, row.ratio = fastest, row.evaluations / 100 * fastest / row.seconds
        row.baseline = f"seed train {fastest * 1e3:.1f} ms/traj"
    seed_rate = rows[0].evaluations / rows[0].baseline_seconds
    user = [
        bench_user_per_sample(100 if quick else 1000, 100 if quick else 300, args.repeats),
        bench_user_risk(seed_rate, 200 if quick else 2000, 200 if quick else 1000, args.repeats),
        bench_user_train(fastest, 200 if quick else 10_000, 100, args.repeats),
    ]
    rows.extend(user)
    print(f"machine: {machine()}")
    print_table(rows)
    targets = {
        "landscape >= 100x the seed at its sizes": rows[0].ratio >= 100,
        "risk-only 10,000 x 1000x1000 within the 1 GiB budget": bool(
            rows[1].extra["within budget"]
        ),
        "trajectories >= 1000x per-trajectory throughput (auto engine)": rows[2].ratio >= 1000,
        "trajectories >= 1000x per-trajectory throughput (fused engine)": rows[3].ratio >= 1000,
        "per-sample landscape, first call >= 33% of the fresh-allocation floor": (
            user[0].first_ratio >= 0.33
        ),
        "per-sample landscape, warm >= 50% of the fresh-allocation floor": user[0].warm_ratio
        >= 0.5,
        "risk only, first call in a fresh process >= 1e10 evaluations/s": (
            user[1].evaluations / user[1].first_call >= 1e10
        ),
        "risk only, warm >= 3e10 evaluations/s": user[1].rate >= 3e10,
    }
    for target, met in targets.items():
        print(f"{'met    ' if met else 'NOT met'}  {target}{' (quick sizes)' if quick else ''}")
    if args.json:
        write_json(args.json, rows, {"benchmark": "foundation", "quick": quick, "targets": targets})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
