"""Numbers at the edge, configs of the wrong type or shape, and config paths (issue 14).

Each bad value gives one line naming it and exit status 2 from the CLI, and a
SgdscapeError from the Python API: the checks live once, in the config objects and the
``check_*`` helpers, so both paths see the same rule.
"""

import re

import numpy as np
import pytest
from typer.testing import CliRunner

import sgdscape
from sgdscape.errors import FLOAT32_MAX, SgdscapeError, check_int, check_number, check_range
from sgdscape.records.run import RunConfig, load_config
from sgdscape.records.run_files import load
from sgdscape.surfaces.cli import app

runner = CliRunner()
SMALL = ["--samples", "12", "--grid", "8", "--figures", "none", "-q"]


def one_line_error(result, named: str) -> str:
    """Assert exit 2, one ``sgdscape: error:`` line naming ``named``, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("sgdscape: error: "), lines[0]
    assert "Traceback" not in result.output
    assert re.search(named, lines[0]), lines[0]
    return lines[0]


# (CLI arguments, a pattern naming the bad value in the one line)
RUN_CASES = [
    (["--lr", "1e39"], r"learning rate.*float32.*1e\+39"),
    (["--lr", "inf"], r"learning rate.*inf"),
    (["--x-range", "-1e39,1e39"], r"x_range.*-1e\+39"),
    (["--x-range", "-3e38,3e38"], r"x_range.*wider than float32"),
    (["--w1-range", "-1e39,1"], r"w1_range.*-1e\+39"),
    (["--w2-range", "0,1e39"], r"w2_range.*1e\+39"),
    (["--w1-range", "1,1.00000000001"], r"w1_range.*LOW < HIGH"),
    (["--memory-budget", "inf"], r"--memory-budget.*'inf'"),
    (["--memory-budget", "1e400"], r"--memory-budget.*'1e400'"),
    (["--memory-budget", "nan"], r"--memory-budget.*'nan'"),
    (["--memory-budget", "1e30"], r"memory_budget.*1000000000000000019884624838656"),
    (["--seed", str(10**30)], r"seed.*10{30}"),
    (["--seed", "-1"], r"seed.*-1"),
    (["--sampling-seed", str(10**25)], r"sampling_seed.*10{25}"),
    (["-O", "momentum=nan"], r"momentum.*nan"),
    (["-O", "momentum=inf"], r"momentum.*inf"),
    (["-O", "momentum=1e39"], r"momentum.*1e\+39"),
    (["-O", "momentum=abc"], r"momentum.*'abc'"),
    (["-O", "nesterov=1", "-O", "momentum=0.9"], r"nesterov.*true or false"),
    (["--optimizer", "adam", "-O", "betas=0.9,nan"], r"betas.*nan"),
    (["--optimizer", "adam", "-O", "eps=1e39"], r"eps.*1e\+39"),
    (["--optimizer", "adam", "-O", "betas=0.9"], r"betas must be 2 numbers"),
    (["--schedule", "exponential", "--schedule-option", "gamma=nan"], r"gamma.*nan"),
    (["--schedule", "exponential", "--schedule-option", "gamma=1e39"], r"gamma.*1e\+39"),
    (["--init", "1e39,1"], r"init.*float32.*1e\+39"),
    (["--init", "nan,1"], r"init.*NaN"),
    (["--slope", "1e39"], r"slope.*1e\+39"),
    (["--slope", "nan"], r"slope.*nan"),
    (["--noise-std", "1e39"], r"noise_std.*1e\+39"),
    (["--noise-std", "1e38", "--slope", "3e38"], r"beyond float32's range"),
    (["--outlier-scale", "1e39"], r"outlier_scale.*1e\+39"),
    (["--student-df", "1e39"], r"student_df.*1e\+39"),
    (["--outlier-fraction", "nan"], r"outlier_fraction.*nan"),
    (["--samples", str(10**30)], r"samples.*10{30}"),
    (["--grid", str(10**30)], r"grid.*10{30}"),
    (["--epochs", str(10**30)], r"epochs.*10{30}"),
    (["--batch-size", str(10**30)], r"batch_size.*10{30}"),
    (
        ["--model", "relu-unit-bias", "--init", "1,2,3", "--slice-fixed", "b=1e39"],
        r"slice_fixed b.*1e\+39",
    ),
    (
        ["--model", "relu-unit-bias", "--init", "1,2,3", "--slice-fixed", "b=nan"],
        r"slice_fixed b.*nan",
    ),
]


@pytest.mark.parametrize(("args", "named"), RUN_CASES)
def test_run_numbers_at_the_edge_are_one_line(tmp_path, args, named):
    result = runner.invoke(app, ["run", *SMALL, "--out", str(tmp_path / "o"), *args])
    one_line_error(result, named)
    assert not (tmp_path / "o").exists()


EXPORT_CASES = [
    (["--dpi", "1e308"], r"--dpi.*1e\+308"),
    (["--dpi", "0"], r"--dpi.*0"),
    (["--dpi", "nan"], r"--dpi.*nan"),
    (["--fps", "1e308"], r"--fps.*1e\+308"),
    (["--fps", "inf"], r"--fps.*inf"),
    (["--fps", "1e-300"], r"--fps.*1e-300"),
]


@pytest.mark.parametrize(("args", "named"), EXPORT_CASES)
def test_export_numbers_at_the_edge_are_one_line(tmp_path, args, named):
    gif = tmp_path / "a.gif"
    result = runner.invoke(app, ["export", "--gif", str(gif), *args])
    one_line_error(result, named)
    assert not gif.exists()


NETWORK_CASES = [
    (["--seed", str(10**30)], r"--seed.*10{30}"),
    (["--seed", "-1"], r"--seed.*-1"),
    (["--grid", str(10**30)], r"--grid.*10{30}"),
    (["--steps", str(10**30)], r"--steps.*10{30}"),
    (["--epochs", str(10**30)], r"--epochs.*10{30}"),
]


@pytest.mark.parametrize(("args", "named"), NETWORK_CASES)
def test_network_numbers_at_the_edge_are_one_line(tmp_path, args, named):
    result = runner.invoke(app, ["network", "--out", str(tmp_path / "n"), "-q", *args])
    one_line_error(result, named)


# (TOML text, a pattern naming the bad value)
TOML_CASES = [
    ('lr = "0.1"\n', r"learning rate.*'0\.1'"),
    ("samples = true\n", r"samples.*True"),
    ("epochs = 2.5\n", r"epochs.*2\.5"),
    ("seed = 1e30\n", r"seed.*1e\+30"),
    ('init = ["1", "2"]\n', r"init.*'1'"),
    ("init = [true, false]\n", r"init.*True"),
    ("lr = nan\n", r"learning rate.*nan"),
    ("lr = inf\n", r"learning rate.*inf"),
    ("lr = 1e39\n", r"learning rate.*1e\+39"),
    ("x_range = [-1e39, 1e39]\n", r"x_range.*-1e\+39"),
    ('x_range = ["a", "b"]\n', r"x_range.*'a'"),
    ("memory_budget = 1e300\n", r"memory_budget.*1e\+300"),
    ('slope = "2"\n', r"slope.*'2'"),
    ("noise_std = true\n", r"noise_std.*True"),
    ('[optimizer_options]\nmomentum = "0.9"\n', r"momentum.*'0\.9'"),
    ("[optimizer_options]\nmomentum = nan\n", r"momentum.*nan"),
    ('schedule = "step"\n[schedule_options]\ngamma = "0.5"\n', r"gamma.*'0\.5'"),
    ("schedule = 'step'\n[schedule_options]\ngamma = true\n", r"gamma.*True"),
    ('[[compare]]\nlr = "0.2"\n', r"learning rate.*'0\.2'"),
    ("slice_directions = [[1e39, 0], [0, 1]]\n", r"slice_directions.*1e\+39"),
    ("init = " + "[" * 5000 + "]" * 5000 + "\n", r"nests tables or arrays too deeply"),
    ("optimizer_options = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n", r"too deeply"),
    ("init = " + "[" * 12 + "1" + "]" * 12 + "\n", r"nests tables or arrays 9 levels deep"),
    ("# " + "x" * (2 << 20) + "\n", r"2097155 bytes.*limit is 1048576"),
]


@pytest.mark.parametrize(("text", "named"), TOML_CASES)
def test_toml_configs_are_typed_and_capped(tmp_path, text, named):
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = runner.invoke(
        app, ["run", "--config", str(config), *SMALL[4:], "--out", str(tmp_path / "o")]
    )
    one_line_error(result, named)
    with pytest.raises(SgdscapeError, match=named):
        load_config(config)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"lr": "0.1"}, r"'0\.1'"),
        ({"lr": True}, "True"),
        ({"lr": 1e39}, r"1e\+39"),
        ({"samples": True}, "True"),
        ({"seed": 10**30}, "10{30}"),
        ({"x_range": (-1e39, 1e39)}, r"-1e\+39"),
        ({"optimizer_options": {"momentum": float("nan")}}, "nan"),
        ({"optimizer_options": {"momentum": "0.9"}}, r"'0\.9'"),
        ({"memory_budget": float("inf")}, "inf"),
        ({"memory_budget": 10**30}, "10{30}"),
        ({"init": ("1", "2")}, "'1'"),
    ],
)
def test_python_api_refuses_the_same_values(changes, named):
    with pytest.raises(SgdscapeError, match=named):
        RunConfig(**changes)


def test_train_api_refuses_the_same_values():
    data = sgdscape.ground_truth(8, seed=0)
    for kwargs in (
        {"lr": 1e39},
        {"lr": "0.1"},
        {"optimizer_options": {"momentum": float("nan")}},
        {"init": (1e39, 0.0)},
        {"seed": 10**30},
    ):
        with pytest.raises(SgdscapeError):
            sgdscape.train("relu-unit", data, **({"init": (1.2, -2.3)} | kwargs))


def test_a_huge_integer_option_is_a_float_to_torch(tmp_path):
    """``eps = 10**30`` is within float32's range: it runs (torch alone overflows on the
    Python int) and gives the iterates of ``eps = 1e30``."""
    data = sgdscape.ground_truth(10, seed=0)
    as_int, as_float = (
        sgdscape.train(
            "relu-unit", data, init=(1.2, -2.3), optimizer="adam", optimizer_options={"eps": eps}
        )
        for eps in (10**30, 1e30)
    )
    np.testing.assert_array_equal(as_int.iterates, as_float.iterates)


@pytest.mark.parametrize(
    ("x", "named"),
    [
        ([1e39, 1.0], r"x holds 1e\+39, outside float32's range"),
        (["1", "2"], r"x must be numbers, got \['1', '2'\]"),
        ([True, False], r"x must be numbers"),
        ([float("nan"), 1.0], r"NaN"),
    ],
)
def test_dataset_from_arrays_names_the_bad_value(x, named):
    with pytest.raises(SgdscapeError, match=named):
        sgdscape.Dataset.from_arrays(x, [1.0, 2.0])


def test_check_helpers_agree_with_float32():
    """The bounds are float32's own: its largest value passes, the next float64 above fails."""
    top = float(np.finfo(np.float32).max)
    assert top == FLOAT32_MAX
    assert check_number("v", top) == top
    with pytest.raises(SgdscapeError, match="float32"):
        check_number("v", np.nextafter(top, np.inf))
    with pytest.raises(SgdscapeError, match="int64"):
        check_int("v", 2**63, low=0)
    assert check_int("v", 2**63 - 1, low=0) == 2**63 - 1
    assert check_int("v", np.int64(3), low=0) == 3 and check_number("v", np.float32(0.5)) == 0.5
    with pytest.raises(SgdscapeError, match="LOW < HIGH"):
        check_range("r", (1.0, 1.0 + 1e-12))  # distinct in float64, equal in float32
    with pytest.raises(SgdscapeError, match="characters"):
        check_number("v", "x" * 10**6)  # a long value is named, not echoed


def test_a_growing_schedule_diverges_as_data_instead_of_overflowing():
    """gamma = 10 passes float32's limit at step 39 and Python's at step 309: the run stops
    there and says so, as any divergence does."""
    data = sgdscape.ground_truth(100, seed=0)
    trajectory = sgdscape.train(
        "relu-unit",
        data,
        init=(1.2, -2.3),
        lr=0.05,
        epochs=4,
        schedule="exponential",
        schedule_options={"gamma": 10.0},
    )
    assert 0 <= int(trajectory.diverged_step) <= 39
    finite = trajectory.lr[np.isfinite(trajectory.lr)]
    assert finite.max() <= FLOAT32_MAX


# --------------------------------------------------------------------------- config paths


def test_config_resolves_a_relative_csv_against_its_own_folder(tmp_path, monkeypatch):
    """A hand-written config beside its CSV runs from any working directory, and the
    saved config records no sample count (the file's rows are the samples)."""
    project = tmp_path / "project"
    project.mkdir()
    xs = np.linspace(-1, 1, 7)
    (project / "points.csv").write_text("".join(f"{x},{3 * x}\n" for x in xs))
    (project / "config.toml").write_text('data = "points.csv"\ngrid = 8\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(
        app, ["run", "--config", str(project / "config.toml"), "--figures", "none", "-q"]
    )
    assert result.exit_code == 0, result.output
    run = load(elsewhere / "sgdscape-out")
    np.testing.assert_allclose(run.data.x.numpy().ravel(), xs, rtol=1e-6)
    assert run.n_steps == 7
    saved = (elsewhere / "sgdscape-out" / "config.toml").read_text()
    assert "samples" not in saved
    assert str(project / "points.csv") in saved  # absolute: readable from anywhere


def test_a_saved_config_with_relative_data_rereads_the_same_file(tmp_path, monkeypatch):
    """``--data`` relative to the working directory is saved so that ``--config`` of the
    saved file finds the same CSV from another directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("x,y\n0,1\n1,3\n2,5\n")
    first = runner.invoke(app, ["run", "--data", "d.csv", "--grid", "8", "-q", "--out", "a"])
    assert first.exit_code == 0, first.output
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    again = runner.invoke(
        app, ["run", "--config", str(tmp_path / "a" / "config.toml"), "-q", "--out", "b"]
    )
    assert again.exit_code == 0, again.output
    with np.load(tmp_path / "a" / "run.npz") as a, np.load(other / "b" / "run.npz") as b:
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["iterates"], b["iterates"])
    assert load_config(other / "b" / "config.toml").data == str(tmp_path / "d.csv")


# --------------------------------------------------------------------------- CSV files

FOUR_ROWS = [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0)]
BOM = b"\xef\xbb\xbf"


def _csv(rows, separator=b",", newline=b"\n", header=None, bom=False, trailing=True) -> bytes:
    lines = [separator.join(f"{v:g}".encode() for v in row) for row in rows]
    if header is not None:
        lines.insert(0, header)
    body = newline.join(lines) + (newline if trailing else b"")
    return (BOM if bom else b"") + body


CSV_SHAPES = {
    f"{'bom' if bom else 'plain'}-{'header' if header else 'bare'}-{name}-{end}": _csv(
        FOUR_ROWS,
        separator=separator,
        newline=newline,
        header=(b"x" + separator + b"y") if header else None,
        bom=bom,
        trailing=end == "trailing",
    )
    for bom in (True, False)
    for header in (True, False)
    for name, separator in (("comma", b","), ("semicolon", b";"))
    for end, newline in (("trailing", b"\n"), ("crlf", b"\r\n"), ("none", b"\n"))
}


@pytest.mark.parametrize("name", sorted(CSV_SHAPES))
def test_csv_as_users_have_it(tmp_path, name):
    """Every mix of BOM, header, separator and line end reads the same four rows, and the
    report says what was read (the first row is never taken for a header)."""
    path = tmp_path / "d.csv"
    path.write_bytes(CSV_SHAPES[name])
    data = sgdscape.Dataset.from_csv(path)
    np.testing.assert_array_equal(data.x.numpy().ravel(), [r[0] for r in FOUR_ROWS])
    np.testing.assert_array_equal(data.y.numpy().ravel(), [r[1] for r in FOUR_ROWS])
    assert data.source.startswith("read 4 rows x 2 columns from d.csv")
    assert ("semicolon-separated" in data.source) == ("semicolon" in name)
    assert ("byte-order mark" in data.source) == name.startswith("bom")
    assert ("header" in data.source) == ("-header-" in name)


def test_a_bom_csv_without_header_runs_one_step_per_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(_csv(FOUR_ROWS, bom=True))
    result = runner.invoke(
        app, ["run", "--data", str(path), "--grid", "8", "-q", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert load(tmp_path / "o").n_steps == 4
    assert "sgdscape run: read 4 rows x 2 columns from d.csv" in result.output


def test_skipped_lines_are_counted(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n\n1,2\n   \n# a comment\n3,4\n\n")
    data = sgdscape.Dataset.from_csv(path)
    np.testing.assert_array_equal(data.x.numpy().ravel(), [1.0, 3.0])
    assert "header 'x,y' skipped" in data.source
    assert "4 blank or comment line(s) skipped" in data.source


BAD_CSV = [
    ("x,y\n1,2\n3,1e39\n", r"line 3 has 1e39, outside float32's range"),
    ("x,y\n1,-1e39\n", r"line 2 has -1e39, outside float32's range"),
    ("1,2\n3,nan\n", r"line 2 has NaN or infinite"),
    ("1,2\ninf,3\n", r"line 2 has NaN or infinite"),
    ("x,y\n1,2\nfoo,3\n", r"line 3 is not numeric: 'foo,3'"),
    ("1,2\n3,4,5\n", r"line 2 has 3 column\(s\)"),
    ("1,2\n3\n", r"line 2 has 1 column\(s\)"),
    ("1,2,3\n4,5,6\n", r"has 3 column\(s\); expected exactly two"),
    ("1\n2\n", r"has 1 column\(s\); expected exactly two"),
    ("x,y\n", r"no data rows"),
    ("", r"no data rows"),
    ("\n\n# only comments\n", r"no data rows"),
]


@pytest.mark.parametrize(("text", "named"), BAD_CSV)
def test_bad_csv_names_the_line_and_value(tmp_path, text, named):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SgdscapeError, match=named):
        sgdscape.Dataset.from_csv(path)
    result = runner.invoke(app, ["run", "--data", str(path), "--out", str(tmp_path / "o")])
    one_line_error(result, named)


def test_a_csv_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"x,y\n1,2\n\xe9,3\n")
    result = runner.invoke(app, ["run", "--data", str(path), "--out", str(tmp_path / "o")])
    one_line_error(result, r"line 3 is not UTF-8")


def test_csv_blocks_join_lines_cut_at_a_block_edge(tmp_path, monkeypatch):
    """With tiny blocks every line straddles a block edge: the rows, the header and the
    line numbers of errors are still those of the file."""
    from sgdscape.core import csv_data

    monkeypatch.setattr(csv_data, "CSV_BLOCK_BYTES", 7)
    rng = np.random.default_rng(1)
    rows = np.round(rng.uniform(-9, 9, (200, 2)), 3)
    path = tmp_path / "d.csv"
    path.write_bytes(_csv(rows.tolist(), header=b"x;y", separator=b";", bom=True))
    values, report = csv_data.read_csv(path)
    np.testing.assert_array_equal(values, rows.astype(np.float32))
    assert (report.rows, report.header, report.skipped, report.bom) == (200, "x;y", 0, True)
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n" + "1,2\n" * 50 + "1,1e39\n")
    with pytest.raises(SgdscapeError, match="line 52 has 1e39"):
        csv_data.read_csv(bad)
    calls = []
    monkeypatch.setattr(csv_data, "LARGE_CSV_BYTES", 0)
    csv_data.read_csv(tmp_path / "d.csv", progress=lambda done, total: calls.append((done, total)))
    size = (tmp_path / "d.csv").stat().st_size
    assert calls[-1] == (size, size) and len(calls) > 10
    assert calls == sorted(calls)


MEASURE_CSV = """
import resource, sys, time
import numpy as np
import torch
from sgdscape.core.problems import Dataset
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
data = Dataset.from_csv(sys.argv[1])
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = data.x.numpy().ravel().astype(np.float64)
print(len(data), x.sum(), float(data.y[-1, 0]), (peak - before) * 1024, seconds)
"""


@pytest.mark.slow
def test_ten_million_rows_read_fast_in_bounded_memory(tmp_path):
    """A 10-million-row CSV (about 190 MB) is read in blocks: its rows and values arrive
    whole, and the reader's peak memory stays near the float32 result (80 MB), not the
    several GB of a row-by-row parse."""
    import io
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    block = rng.uniform(-1, 1, (100_000, 2))
    text = io.BytesIO()
    np.savetxt(text, block, fmt="%.6f", delimiter=",")
    path = tmp_path / "big.csv"
    with path.open("wb") as handle:
        handle.write(b"x,y\n")
        for _ in range(100):
            handle.write(text.getvalue())
    expected = np.loadtxt(io.BytesIO(text.getvalue()), delimiter=",", dtype=np.float32)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_CSV, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    rows, x_sum, last_y, extra_bytes, seconds = (float(v) for v in done.stdout.split())
    assert rows == 10_000_000
    assert x_sum == pytest.approx(100 * expected[:, 0].astype(np.float64).sum(), rel=1e-9)
    assert last_y == expected[-1, 1]
    assert extra_bytes < 512 * 2**20, f"peak memory grew by {extra_bytes / 2**20:.0f} MiB"
    assert seconds < 45, f"took {seconds:.1f} s"
