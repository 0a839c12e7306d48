"""The benchmark helpers and the `sgdscape bench` command."""

import json
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sgdscape.surfaces.bench import (
    Row,
    fresh_process,
    interleaved,
    print_table,
    seed_make_grids,
    seed_train,
    write_json,
)
from sgdscape.surfaces.cli import app


def test_the_seeds_loops_run_on_modern_torch(seed_data):
    w1, w2, grids = seed_make_grids(seed_data.x, seed_data.y, grid_size=5)
    assert grids.shape == (100, 5, 5)
    w = torch.tensor([w1[2, 3], w2[2, 3]])
    expected = (w[0] * torch.relu(w[1] * seed_data.x[:, 0]) - seed_data.y[:, 0]) ** 2
    np.testing.assert_allclose(grids[:, 2, 3], expected, rtol=1e-6)
    iterates, grads = seed_train(seed_data.x, seed_data.y, init=torch.tensor([1.2, -2.3]), lr=0.05)
    assert iterates.shape == grads.shape == (100, 2)
    np.testing.assert_allclose(iterates[1], iterates[0] - 0.05 * grads[0], rtol=1e-6)


def test_interleaved_keeps_the_best_time():
    calls = []
    best = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] * 3 and set(best) == {"a", "b"}


def test_table_and_json(tmp_path):
    rows = [Row("x", "cpu", "1 x 2", 10.0, 2.0, "seed", 4.0, 2.0, {"note": "n"})]
    lines = []
    print_table(rows, lines.append)
    assert "5.00e+00" in lines[2] and lines[3].strip() == "note: n"
    path = tmp_path / "b.json"
    write_json(str(path), rows, {"benchmark": "t"})
    payload = json.loads(path.read_text())
    assert payload["rows"][0]["evaluations_per_s"] == 5.0 and payload["benchmark"] == "t"


def test_bench_command_quick_is_a_smoke_test_of_seconds(tmp_path):
    path = tmp_path / "bench.json"
    began = time.perf_counter()
    result = CliRunner().invoke(app, ["bench", "--quick", "--repeats", "1", "--json", str(path)])
    seconds = time.perf_counter() - began
    assert result.exit_code == 0, result.output
    assert "copy bandwidth" in result.output and "trajectories" in result.output
    rows = json.loads(path.read_text())["rows"]
    names = [row["name"] for row in rows]
    assert names == [
        "landscape per-sample (seed sizes)",
        "user: landscape per-sample, default options",
        "user: landscape risk only, default options",
        "copy bandwidth (read+write)",
        "per-sample grids: plain",
        "risk only: plain",
        "trajectories sgd [plain]",
    ]
    # the user rows: first call in a fresh process, whole process and warm, each against a
    # floor measured in the same run, the ratios computed from those measured numbers
    for row in rows[1:3]:
        assert row["floor"] and row["process"] > row["first_call"] > 0 and row["seconds"] > 0
        assert row["floor_first"] > 0 and row["floor_warm"] > 0
        assert row["first_ratio"] == pytest.approx(row["floor_first"] / row["first_call"])
        assert row["warm_ratio"] == pytest.approx(row["floor_warm"] / row["seconds"])
    assert "first call (fresh process)" in result.output and "whole process" in result.output
    # no compiled kernel (its first compilation alone takes tens of seconds); three fresh
    # processes import torch; generous for a shared machine, where the full suite takes minutes
    assert seconds < 60, seconds


def test_user_row_ratios_are_floor_over_ours():
    row = Row(
        "u", "cpu", "s", 100.0, 0.5, first_call=2.0, floor="f", floor_first=1.0, floor_warm=0.25
    )
    assert row.first_ratio == 0.5 and row.warm_ratio == 0.5
    lines = []
    print_table([row], lines.append)
    assert "first call (fresh process) 2.00 s, 0.5x the floor; warm 500.0 ms, 0.5x" in lines[3]


def test_a_fresh_process_measures_the_first_call_after_import():
    report = fresh_process("per-sample", 20, 12)
    assert report["process"] > report["import"] > 0 and report["seconds"] > 0


def test_bench_json_into_a_directory_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--json", str(tmp_path)])
    assert result.exit_code == 2
