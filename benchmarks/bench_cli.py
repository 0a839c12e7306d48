"""The command line as users meet it: whole processes, default options (issue 16, item 4).

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_cli.py [--repeat 5] [--json cli.json]
        [--baseline-src OLD/src]

Times, in fresh processes, ``sgdscape --help``, an argument error, ``sgdscape run`` with no
options (the seed's experiment and its five PNGs) and ``sgdscape run --figures none``, beside
their floors measured in the same run: ``python -c pass`` (the interpreter) and
``python -c "import typer"`` (the CLI framework). Each row gives the median and the best of
``--repeat`` runs, wall-clock and CPU (user + system, from ``getrusage`` of the children), and
the median's ratio to ``python -c pass``. The processes run as a user's would, with
bytecode caches (``users_environment``), which the untimed first run of each row writes. With ``--baseline-src`` every ``sgdscape`` row is
also run on that source tree (``PYTHONPATH``), interleaved run by run, for a before/after in
one run. The load average is printed beside it: on a shared machine the wall times move with
it, the CPU times much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sgdscape.surfaces.bench import users_environment


def _command() -> list[str]:
    """The ``sgdscape`` console script beside this interpreter, else ``python -m sgdscape``."""
    script = Path(sys.executable).with_name("sgdscape")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sgdscape"]


def _once(argv: list[str], expect: int, src: str | None = None) -> tuple[float, float]:
    """Run ``argv`` once (on the source tree ``src`` if given); return (wall seconds, CPU
    seconds of the child)."""
    env = users_environment()
    if src is not None:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-run", action="store_true", help="only the start-up rows")
    parser.add_argument("--baseline-src", default=None, help="an older src/ to compare with")
    args = parser.parse_args()

    cli = _command()
    out = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    rows: list[tuple[str, list[str], int]] = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"], 0),
        ("python -c 'import typer' (floor)", [sys.executable, "-c", "import typer"], 0),
        ("sgdscape --help", [*cli, "--help"], 0),
        ("sgdscape run --grid abc (argument error)", [*cli, "run", "--grid", "abc"], 2),
    ]
    if not args.skip_run:
        rows += [
            ("sgdscape run --figures none", [*cli, "run", "--figures", "none", "-q", "--out",
                                             str(out / "none")], 0),
            ("sgdscape run (no options: 5 PNGs)", [*cli, "run", "-q", "--out", str(out / "run")],
             0),
        ]  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; {args.repeat} runs each")
    print(f"{'command':<48} {'wall med':>9} {'wall best':>9} {'CPU med':>8} {'x pass':>7}")
    results = []
    floor = None
    for name, argv, expect in rows:
        trees: list[tuple[str, str | None]] = [("", None)]
        if args.baseline_src is not None and argv[0] != sys.executable:
            trees.append((" [baseline]", str(Path(args.baseline_src).resolve())))
        times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in trees}
        for _, src in trees:
            _once(argv, expect, src)  # warm the file cache, write the bytecode caches
        for _ in range(args.repeat):
            for label, src in trees:
                times[label].append(_once(argv, expect, src))
        for label, _ in trees:
            walls, cpus = [t[0] for t in times[label]], [t[1] for t in times[label]]
            median = statistics.median(walls)
            floor = floor or median
            row = {
                "command": name + label,
                "wall_median_s": median,
                "wall_best_s": min(walls),
                "cpu_median_s": statistics.median(cpus),
                "ratio_to_python": median / floor,
            }
            results.append(row)
            print(
                f"{row['command']:<48} {median:9.3f} {min(walls):9.3f} "
                f"{row['cpu_median_s']:8.3f} {row['ratio_to_python']:7.1f}"
            )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    shutil.rmtree(out, ignore_errors=True)
    if args.json is not None:
        meta = {"benchmark": "cli", "load_average": os.getloadavg(), "cpus": os.cpu_count()}
        args.json.write_text(json.dumps({"meta": meta, "rows": results}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
