"""Every crafted bad archive (tests/archive_corpus.py) is refused in one line, fast and small.

The Python loaders raise :class:`SgdscapeError`; ``sgdscape export`` and ``sgdscape serve
--view`` print one ``sgdscape: error:`` line and exit with status 2. Valid archives, also
big-endian and Fortran-ordered ones, load with the same values as numpy's own reader.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import archive_corpus  # tests/ is on the path, as for tests/chromium.py
import sgdscape
from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import load_view

pytestmark = pytest.mark.slow
GIB = 2**30


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[archive_corpus.Case]:
    return archive_corpus.build(tmp_path_factory.mktemp("corpus"))


def loader(case: archive_corpus.Case):
    return sgdscape.load if case.kind == "run" else load_view


def test_the_corpus_is_large_and_covers_both_kinds(corpus) -> None:
    kinds = [case.kind for case in corpus]
    assert len(corpus) >= 60
    assert kinds.count("run") >= 30 and kinds.count("view") >= 30
    names = {case.name for case in corpus}
    for needed in ("truncated_half", "renamed_npy", "huge_header", "deflate_bomb", "info_list"):
        assert needed in names


def test_python_loaders_raise_one_line_naming_file_and_array(corpus) -> None:
    handled = []
    for case in corpus:
        tracemalloc.start()
        began = time.perf_counter()
        with pytest.raises(SgdscapeError) as error:
            loader(case)(case.path)
        seconds = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        message = str(error.value)
        assert "\n" not in message, (case.name, message)
        assert str(case.archive) in message, (case.name, message)
        assert case.expect in message, (case.name, message)
        assert seconds < 5, (case.name, seconds)
        assert peak < GIB // 8, (case.name, peak)  # nothing near the declared gigabytes
        handled.append(case.name)
    assert len(handled) == len(corpus)


def test_bombs_allocate_nothing_of_their_declared_size(corpus) -> None:
    bombs = [c for c in corpus if c.name in ("deflate_bomb", "huge_header", "lying_zip_size")]
    assert len(bombs) == 6
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for case in bombs:
        assert case.archive.stat().st_size < 8 * 2**20  # small files ...
        began = time.perf_counter()
        with pytest.raises(SgdscapeError, match=r"cap is|declares"):
            loader(case)(case.path)
        assert time.perf_counter() - began < 1
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert growth < 100 * 2**20  # ... that declare gigabytes: the high-water mark barely moves


def cli(monkeypatch: pytest.MonkeyPatch, *args: str):
    import sgdscape.surfaces.app.view

    def never(*_: object, **__: object) -> None:
        raise AssertionError("a bad archive reached the server")

    monkeypatch.setattr(sgdscape.surfaces.app.view, "serve_view", never)
    from sgdscape.surfaces.cli import app

    return CliRunner().invoke(app, list(args))


def test_export_and_serve_refuse_every_case_in_one_line(corpus, tmp_path, monkeypatch) -> None:
    target = tmp_path / "page.html"
    for case in corpus:
        source = ("--from", str(case.path)) if case.kind == "run" else ("--view", str(case.path))
        commands = [
            ("export", *source, "--html", str(target), "-q"),
            ("serve", "--view", str(case.archive)),
        ]
        for command in commands:
            began = time.perf_counter()
            outcome = cli(monkeypatch, *command)
            assert time.perf_counter() - began < 5, (case.name, command)
            assert outcome.exit_code == 2, (case.name, command, outcome.output)
            lines = outcome.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("sgdscape: error: "), (case.name, lines)
            if command[0] == "export" or case.kind == "view":
                assert case.expect in lines[0], (case.name, lines[0])
        assert not target.exists()


#: runs argv[2:] as a child and writes its peak resident set (KiB, from wait4) to argv[1];
#: exits with the child's status
PEAK_LAUNCHER = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def test_the_console_script_refuses_bombs_in_one_line_and_little_memory(corpus, tmp_path) -> None:
    by_name = {(c.kind, c.name): c for c in corpus}
    runs = [by_name["run", "deflate_bomb"], by_name["run", "huge_header"]]
    views = [by_name["view", "deflate_bomb"]]
    env = {**os.environ, "PYTHONPATH": str(Path(sgdscape.__file__).parents[1])}
    commands = [["export", "--from", str(c.path), "--html", str(tmp_path / "x.html")] for c in runs]
    for case in views:
        commands.append(["export", "--view", str(case.path), "--html", str(tmp_path / "x.html")])
        commands.append(["serve", "--view", str(case.path), "--port", "0"])
    for index, command in enumerate(commands):
        # Linux keeps a process's pre-exec RSS high-water mark in its ru_maxrss, and a child
        # forked from this (by now large) pytest process starts with pytest's: a small
        # launcher process forks the command instead and writes that child's own peak
        report = tmp_path / f"peak-{index}.txt"
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PEAK_LAUNCHER,
                str(report),
                sys.executable,
                "-m",
                "sgdscape",
                *command,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        guard = threading.Timer(120, os.killpg, (child.pid, signal.SIGKILL))  # a started server
        guard.start()
        out, err = child.stdout.read(), child.stderr.read()
        child.wait()
        guard.cancel()
        child.stdout.close()
        child.stderr.close()
        peak = int(report.read_text()) * 1024
        assert child.returncode == 2, (command, err)
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sgdscape: error: "), lines
        assert out == b""
        assert peak < GIB, (command, peak)


def test_valid_archives_load_with_numpys_values(corpus, tmp_path) -> None:
    folder = corpus[0].path.parent
    run_dir, view_file = folder / "valid_run", folder / "valid_view" / "network.npz"
    expected = archive_corpus.arrays_of(run_dir / "run.npz")
    result = sgdscape.load(run_dir)
    np.testing.assert_array_equal(result.landscape.risk, expected["risk"])
    np.testing.assert_array_equal(result.trajectory.iterates, expected["iterates"])
    np.testing.assert_array_equal(result.trajectory.batch_indices, expected["batch_indices"])
    np.testing.assert_array_equal(result.data.x.numpy(), expected["x"])

    # big-endian, Fortran-ordered copies are accepted: converted to native order, same values
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    (swapped / "config.toml").write_bytes((run_dir / "config.toml").read_bytes())
    archive_corpus.big_endian_copy(run_dir / "run.npz", swapped / "run.npz")
    with np.load(swapped / "run.npz") as raw:
        assert raw["risk"].dtype.byteorder == ">"
    again = sgdscape.load(swapped)
    for name, array in (
        ("risk", again.landscape.risk),
        ("sample_loss", again.landscape.sample_loss),
        ("iterates", again.trajectory.iterates),
        ("lr", again.trajectory.lr),
        ("batch_indices", again.trajectory.batch_indices),
    ):
        assert array.dtype.isnative and array.dtype == expected[name].dtype, name
        np.testing.assert_array_equal(array, expected[name])

    view_arrays = archive_corpus.arrays_of(view_file)
    view = load_view(view_file)
    np.testing.assert_array_equal(view.landscape.risk, view_arrays["risk"])
    np.testing.assert_array_equal(view.batch_landscapes, view_arrays["batch_landscapes"])
    swapped_view = tmp_path / "view.npz"
    archive_corpus.big_endian_copy(view_file, swapped_view)
    again_view = load_view(swapped_view)
    np.testing.assert_array_equal(again_view.path_coords, view_arrays["path"])
    np.testing.assert_array_equal(again_view.steps, view_arrays["steps"])
    assert again_view.info == view.info


def test_the_cap_is_checked_before_reading_and_can_be_raised(corpus, monkeypatch) -> None:
    run_dir = corpus[0].path.parent / "valid_run"
    size = sum(
        info.file_size for info in __import__("zipfile").ZipFile(run_dir / "run.npz").infolist()
    )
    monkeypatch.setenv("SGDSCAPE_MAX_ARCHIVE_BYTES", str(size - 1))
    with pytest.raises(SgdscapeError, match=f"the cap is {size - 1:,}"):
        sgdscape.load(run_dir)
    monkeypatch.setenv("SGDSCAPE_MAX_ARCHIVE_BYTES", str(size))
    assert sgdscape.load(run_dir).n_steps == 10
    monkeypatch.setenv("SGDSCAPE_MAX_ARCHIVE_BYTES", "lots")
    with pytest.raises(SgdscapeError, match="SGDSCAPE_MAX_ARCHIVE_BYTES must be"):
        sgdscape.load(run_dir)


def test_the_notebook_explorer_refuses_every_case(corpus) -> None:
    pytest.importorskip("ipywidgets")
    for case in corpus:
        with pytest.raises(SgdscapeError) as error:
            sgdscape.explore(case.path)
        assert case.expect in str(error.value), (case.name, str(error.value))
