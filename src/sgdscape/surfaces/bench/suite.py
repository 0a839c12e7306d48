"""The performance suite behind ``sgdscape bench``: every row with its baseline, in one table."""

from __future__ import annotations

import torch

from sgdscape.surfaces.bench import foundation, measure
from sgdscape.surfaces.bench.user import user_rows


def suite(device: str = "cpu", quick: bool = False, repeats: int = 3) -> list[measure.Row]:
    """The issue-7 performance table: landscapes, trajectories and memory, with baselines.

    Sizes follow the issue: materialised per-sample grids 1,000 x 300x300 on the CPU
    (1,000 x 1000x1000 on a GPU), risk-only 2,000 x 1000x1000, 10,000 initialisations x
    100 steps. ``quick`` is a smoke test of a few seconds: small sizes and only the eager
    rows (no compiled kernel, whose first compilation alone takes tens of seconds, and no
    fresh-process memory row).
    """
    from sgdscape.core import kernels
    from sgdscape.core.devices import resolve_device
    from sgdscape.core.grid import Grid
    from sgdscape.core.landscape import landscape
    from sgdscape.core.losses import get_loss
    from sgdscape.core.models import get_model
    from sgdscape.core.problems import ground_truth

    target = resolve_device(device)
    name = target.type
    gpu = name == "cuda"
    rows: list[measure.Row] = []

    # the seed's own loop: the reference rate of every "ratio" below
    seed_row = foundation.bench_seed_landscape(100, 20 if quick else 100, repeats=repeats)
    seed_rate = seed_row.evaluations / seed_row.baseline_seconds
    rows.append(seed_row)
    if not gpu:
        rows.extend(user_rows(seed_rate, quick=quick, repeats=repeats))

    bandwidth = measure.copy_bandwidth(target, 2**24 if quick else 2**28)
    rows.append(
        measure.Row(
            "copy bandwidth (read+write)",
            name,
            f"{(2**24 if quick else 2**28) / 2**20:.0f} MiB",
            evaluations=float("nan"),
            seconds=float("nan"),
            extra={"bytes/s": f"{bandwidth:.3e}"},
        )
    )

    model, loss = get_model("relu-unit"), get_loss("mse")
    n_mat, g_mat = (100, 100) if quick else ((1000, 1000) if gpu else (1000, 300))
    data = ground_truth(n_mat, seed=0)
    grid = Grid.square(g_mat)
    points = grid.shape[0] * grid.shape[1]
    evaluations = float(n_mat * points)
    written = 4 * evaluations
    budget = int(written * 1.5) + 2**28

    w1, w2 = (torch.from_numpy(a).to(target) for a in grid.axes())
    wt = torch.stack(
        [w1[None, :].expand(len(w2), -1).reshape(-1), w2[:, None].expand(-1, len(w1)).reshape(-1)]
    ).contiguous()
    x, y = data.x.to(target).reshape(-1), data.y.to(target).reshape(-1)
    out = torch.empty(n_mat, points, device=target)
    # the kernel landscape() uses: the scale-split one for this model on its own axes
    from sgdscape.core.landscape import scale_split

    split = scale_split(model, wt.T.reshape(len(w2), len(w1), 2))
    if split is not None:
        scale, row_params = split
        hidden = model.function(row_params, x).contiguous()

        def fill() -> object:
            return kernels.scaled_fill(
                model, loss, out.view(n_mat, len(w2), len(w1)), scale, hidden, y
            )
    else:

        def fill() -> object:
            return kernels.fused_fill(model, loss, out, wt, x, y)

    used = kernels.used["fill"]
    times = {
        "plain": measure.best_time(
            lambda: landscape(
                model, data, grid, engine="plain", memory_budget=budget, device=target
            ),
            target,
            repeats,
        ),
    }
    if not quick:
        fill()  # compile and fault the pages in
        used = kernels.used["fill"]
        times["fused (fresh output)"] = measure.best_time(
            lambda: landscape(
                model, data, grid, engine="fused", memory_budget=budget, device=target
            ),
            target,
            repeats,
        )
        times["fused kernel, reused buffer"] = measure.best_time(fill, target, repeats)
    fused_ok = kernels.used["fill"] > used
    for label, seconds in times.items():
        rows.append(
            measure.against_seed_rate(
                f"per-sample grids: {label}",
                name,
                f"{n_mat} x {g_mat}x{g_mat}",
                evaluations,
                seconds,
                seed_rate,
                {
                    "fraction of copy bandwidth": f"{written / seconds / bandwidth:.0%}",
                    **({} if fused_ok or label == "plain" else {"note": "fell back to plain"}),
                },
            )
        )

    n_risk, g_risk = (500, 200) if quick else (2000, 1000)
    data = ground_truth(n_risk, seed=0)
    grid = Grid.square(g_risk)
    evaluations = float(n_risk * grid.shape[0] * grid.shape[1])
    small = Grid.square(max(8, g_risk // 4))
    small_evaluations = float(n_risk * small.shape[0] * small.shape[1])
    plain = measure.best_time(
        lambda: landscape(model, data, small, per_sample=False, engine="plain", device=target),
        target,
        1 if not quick else repeats,
    )
    rows.append(
        measure.against_seed_rate(
            "risk only: plain",
            name,
            f"{n_risk} x {small.shape[0]}x{small.shape[1]}",
            small_evaluations,
            plain,
            seed_rate,
        )
    )
    if not quick:
        landscape(model, data, Grid.square(8), per_sample=False, engine="fused", device=target)
        fused = measure.best_time(
            lambda: landscape(model, data, grid, per_sample=False, engine="fused", device=target),
            target,
            repeats,
        )
        rows.append(
            measure.against_seed_rate(
                "risk only: fused",
                name,
                f"{n_risk} x {g_risk}x{g_risk}",
                evaluations,
                fused,
                seed_rate,
                {"vs plain rate": f"{(evaluations / fused) / (small_evaluations / plain):.1f}x"},
            )
        )
    if not gpu and not quick:
        rows.append(
            foundation.bench_risk_memory(
                n_risk, g_risk, name="risk only: peak memory (fresh process)"
            )
        )

    n_inits = 100 if quick else 10_000
    # "as the seed": iterates and minibatch gradients, what the seed's train records;
    # "all": also the full-data gradient and risk at every iterate
    optimizers: tuple[tuple[str, dict[str, object] | None], ...] = (
        ("sgd", None),
        ("sgd", {"momentum": 0.9}),
        ("adam", None),
        ("rmsprop", None),
    )
    engines: tuple[tuple[str, bool], ...] = (("plain", True), ("fused", True), ("fused", False))
    if quick:
        optimizers, engines = optimizers[:1], engines[:1]
    for optimizer, options in optimizers:
        for engine, full in engines:
            row = foundation.bench_trajectories(
                n_inits,
                100,
                repeats=repeats,
                seed_repeats=1 if quick else 5,
                optimizer=optimizer,
                optimizer_options=options,
                engine=engine,
                device=str(target),
                record_full_gradient=full,
                record_risk=full,
            )
            rows.append(row)
    # on a shared machine one slow round inflates a ratio: divide every trajectory row by the
    # fastest seed time seen (the conservative choice)
    fastest = min(r.baseline_seconds for r in rows if r.name.startswith("trajectories"))
    for row in rows:
        if row.name.startswith("trajectories"):
            row.baseline_seconds = fastest
            row.baseline = f"seed train {measure.seconds_text(fastest)}/traj"
            row.ratio = n_inits * fastest / row.seconds
    return rows
