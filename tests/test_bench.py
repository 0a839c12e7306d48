"""The benchmark helpers and the `sgdscape bench` command."""

import json
import time

import numpy as np
import torch
from typer.testing import CliRunner

from sgdscape.surfaces.bench import (
    Row,
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
    names = [row["name"] for row in json.loads(path.read_text())["rows"]]
    assert names == [
        "landscape per-sample (seed sizes)",
        "copy bandwidth (read+write)",
        "per-sample grids: plain",
        "risk only: plain",
        "trajectories sgd [plain]",
    ]
    # no compiled kernel (its first compilation alone takes tens of seconds); generous for a
    # shared machine, where the full suite takes minutes
    assert seconds < 30, seconds


def test_bench_json_into_a_directory_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--json", str(tmp_path)])
    assert result.exit_code == 2
