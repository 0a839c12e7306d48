"""Benchmarks: sgdscape against the seed notebook's own loops, measured in the same process.

The seed's ``make_grids`` and ``train`` are copied into :mod:`.seed`, changed only as far as
a modern torch requires (no ``Variable``: ``volatile=True`` becomes ``torch.no_grad()``;
``reduce=False`` becomes ``reduction="none"``; the recorded values are read with ``.item()``
because ``tensor.data[0]`` is now a view that the optimizer would overwrite in place). They
keep one ``nn.Module`` per grid point, as in the notebook.

Every comparison runs baseline and candidate interleaved, best of ``repeats``, so the
ratio is measured under the same load (the machines we run on are shared and noisy).

The parts, each importing only those after it: :mod:`.suite` (the ``sgdscape bench``
table), :mod:`.foundation` (seed loops against ours, peak memory) and :mod:`.user` (what
users meet, against floors), :mod:`.measure` (timing, rows, output) and :mod:`.seed`.
Everything is importable from here.
"""

from __future__ import annotations

from sgdscape.surfaces.bench.foundation import (
    bench_risk_memory,
    bench_seed_landscape,
    bench_trajectories,
)
from sgdscape.surfaces.bench.measure import (
    Row,
    against_seed_rate,
    best_time,
    child_environment,
    copy_bandwidth,
    interleaved,
    machine,
    print_table,
    seconds_text,
    sync_device,
    users_environment,
    write_json,
)
from sgdscape.surfaces.bench.seed import SimpleMLP, seed_make_grids, seed_train
from sgdscape.surfaces.bench.suite import suite
from sgdscape.surfaces.bench.user import (
    bench_user_cli,
    bench_user_per_sample,
    bench_user_risk,
    bench_user_train,
    fresh_process,
    user_rows,
    whole_cli,
)

__all__ = [
    "Row",
    "SimpleMLP",
    "against_seed_rate",
    "bench_risk_memory",
    "bench_seed_landscape",
    "bench_trajectories",
    "bench_user_cli",
    "bench_user_per_sample",
    "bench_user_risk",
    "bench_user_train",
    "best_time",
    "child_environment",
    "copy_bandwidth",
    "fresh_process",
    "interleaved",
    "machine",
    "print_table",
    "seconds_text",
    "seed_make_grids",
    "seed_train",
    "suite",
    "sync_device",
    "user_rows",
    "users_environment",
    "whole_cli",
    "write_json",
]
