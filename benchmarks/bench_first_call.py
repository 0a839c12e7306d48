"""First-call benchmark (issue 16): ``train`` as a user meets it, against the seed's loop.

``train("relu-unit", data, init=<K inits>, lr=0.05)`` with default options (default
recording: risk and full gradient at every iterate, engine ``auto``), ``K`` = 10,000
initialisations x 100 SGD steps on the seed's data:

- **first call**: in a fresh Python process, right after ``import sgdscape`` and making the
  data (import time is reported separately);
- **warm**: later calls in that process (best of ``--warm`` calls);

each as a ratio to the seed notebook's ``train`` (one trajectory per call, copied in
``sgdscape.surfaces.bench``) per trajectory, measured in this same run: best of
``--seed-repeats`` calls before and after each fresh process. Every round starts a new
process; the table gives each round, its 1-minute load average, and the median. Targets:
first call >= 3,000x, warm >= 10,000x.

``--before SRC`` also runs the same fresh process on another source tree (say an earlier
commit's ``src``, from ``git archive``) in every round, right after this one's, so the two
are compared under the same load.

Usage::

    PYTHONPATH=src python benchmarks/bench_first_call.py [--rounds 3] [--json out.json]
        [--before /tmp/old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from sgdscape.core.problems import ground_truth
from sgdscape.surfaces.bench import machine, seed_train, users_environment

#: what the fresh process runs: import, data, the first call, then warm calls
CHILD = """
import json, sys, time
began = time.perf_counter()
import torch
import sgdscape
imported = time.perf_counter() - began
data = sgdscape.ground_truth({samples}, seed=0)
inits = torch.empty({inits}, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(1))
start = time.perf_counter()
first = sgdscape.train("relu-unit", data, init=inits, lr=0.05)
first_seconds = time.perf_counter() - start
warm = []
for _ in range({warm}):
    start = time.perf_counter()
    sgdscape.train("relu-unit", data, init=inits, lr=0.05)
    warm.append(time.perf_counter() - start)
assert first.risk is not None and first.full_grads is not None  # default recording
print(json.dumps({{"import": imported, "first": first_seconds, "warm": min(warm),
                  "shape": list(first.iterates.shape)}}))
"""


def seed_seconds(samples: int, repeats: int) -> float:
    """Best time of the seed's ``train`` (one trajectory of ``samples`` steps)."""
    data = ground_truth(samples, seed=0)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        seed_train(data.x, data.y, lr=0.05, init=torch.FloatTensor([1.2, -2.3]))
        best = min(best, time.perf_counter() - start)
    return best


def fresh_process(
    inits: int, samples: int, warm: int, source: str | None = None
) -> dict[str, float]:
    """Run :data:`CHILD` in a new interpreter (``source`` first on its path, else this
    one's ``sys.path``)."""
    env = users_environment()  # with bytecode caches, as a user's
    paths = [source] if source else [p for p in sys.path if p] + [env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    code = CHILD.format(inits=inits, samples=samples, warm=warm)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inits", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=100, help="SGD steps (one per sample)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes [3]")
    parser.add_argument("--warm", type=int, default=5, help="warm calls per process [5]")
    parser.add_argument("--seed-repeats", type=int, default=5)
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--before", metavar="SRC", help="also time this source tree, interleaved")
    args = parser.parse_args()

    rows = []
    trees = [("this", None)] + ([("before", args.before)] if args.before else [])
    for round_ in range(args.rounds):
        before = seed_seconds(args.samples, args.seed_repeats)
        children = {
            name: fresh_process(args.inits, args.samples, args.warm, source)
            for name, source in trees
        }
        seed = min(before, seed_seconds(args.samples, args.seed_repeats))
        for name, child in children.items():
            rows.append(
                {
                    "tree": name,
                    "round": round_,
                    "load": os.getloadavg()[0],
                    "seed s/traj": seed,
                    "import s": child["import"],
                    "first call s": child["first"],
                    "warm s": child["warm"],
                    "first ratio": args.inits * seed / child["first"],
                    "warm ratio": args.inits * seed / child["warm"],
                }
            )
    print(f"machine: {machine()}")
    print(
        f"train('relu-unit', {args.inits} inits x {args.samples} steps, default recording) "
        "against the seed's train, per trajectory"
    )
    header = (
        "tree", "round", "load", "seed ms/traj", "import s", "first call s", "warm s",
        "first x", "warm x",
    )  # fmt: skip
    print("  ".join(f"{h:>12}" for h in header))
    for row in rows:
        print(
            f"{row['tree']:>12}  {row['round']:>12}  {row['load']:>12.1f}  "
            f"{row['seed s/traj'] * 1e3:>12.2f}  {row['import s']:>12.2f}  "
            f"{row['first call s']:>12.4f}  {row['warm s']:>12.4f}  "
            f"{row['first ratio']:>12.0f}  {row['warm ratio']:>12.0f}"
        )
    if args.before:
        for key in ("first ratio", "warm ratio"):
            old = statistics.median(row[key] for row in rows if row["tree"] == "before")
            print(f"before (median): {key} {old:.0f}x")
    rows_here = [row for row in rows if row["tree"] == "this"]
    first = statistics.median(row["first ratio"] for row in rows_here)
    warm = statistics.median(row["warm ratio"] for row in rows_here)
    targets = {
        "first call in a fresh process >= 3,000x the seed (median)": first >= 3000,
        "warm >= 10,000x the seed (median)": warm >= 10_000,
    }
    print(f"median ratio: first call {first:.0f}x, warm {warm:.0f}x")
    for target, met in targets.items():
        print(f"{'met    ' if met else 'NOT met'}  {target}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine(), "rows": rows, "targets": targets}, indent=2)
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
