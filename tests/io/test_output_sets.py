"""A run's files commit together: a kill at any rename leaves the old set or the new set.

The kill is injected by strace (``inject=rename:signal=SIGKILL:when=N``) into a real
``sgdscape run`` for every rename it makes, and, without strace, by failing ``os.replace``
in-process at every step of :func:`sgdscape.io.output_set`. After each kill the
folder, as a reader sees it, holds exactly the old or exactly the new set, and it loads;
the next write cleans up what the killed one left, and the user's own file survives.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sgdscape
from sgdscape.io import COMMIT, output_set, published, record_name, recover
from sgdscape.surfaces.cli import app

OLD = ["run", "--samples", "20", "--grid", "10", "--figures", "0,5", "-q"]
NEW = ["run", "--samples", "30", "--grid", "10", "--figures", "1,3,7", "-q"]
OLD_FILES = {"run.npz", "config.toml", "step_00.png", "step_05.png"}
NEW_FILES = {"run.npz", "config.toml", "step_01.png", "step_03.png", "step_07.png"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def visible_set(out: Path, kind: str = "run") -> dict[str, str]:
    """The set a reader sees: a pending commit's files (where they are now), else the record."""
    manifest = out / COMMIT / "manifest.json"
    record = manifest if manifest.is_file() else out / record_name(kind)
    names = json.loads(record.read_text())["files"]
    return {name: digest(published(out, name)) for name in names}


def leftovers(out: Path) -> list[str]:
    return sorted(
        p.name
        for p in out.iterdir()
        if p.name.startswith(".sgdscape-stage") or p.name == COMMIT or p.name.endswith(".tmp")
    )


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An output folder holding the old set and a user's file, and the new set made apart."""
    root = tmp_path_factory.mktemp("sets")
    base, fresh = root / "base", root / "fresh"
    base.mkdir()
    (base / "notes.txt").write_text("mine")
    for folder, args in ((base, OLD), (fresh, NEW)):
        outcome = CliRunner().invoke(app, [*args, "--out", str(folder)])
        assert outcome.exit_code == 0, outcome.output
    old = {name: digest(base / name) for name in OLD_FILES}
    new = {name: digest(fresh / name) for name in NEW_FILES}
    assert visible_set(base) == old and visible_set(fresh) == new
    return {"base": base, "old": old, "new": new, "fresh": fresh}


def check_old_or_new(out: Path, sets: dict[str, object]) -> str:
    """Assert that ``out`` shows exactly one whole set; return which."""
    seen = visible_set(out)
    assert seen in (sets["old"], sets["new"]), seen
    which = "old" if seen == sets["old"] else "new"
    result = sgdscape.load(out)  # loadable, and its arrays are that set's
    expected = sgdscape.load(sets["base"] if which == "old" else sets["fresh"])
    assert result.config == expected.config
    np.testing.assert_array_equal(result.trajectory.iterates, expected.trajectory.iterates)
    np.testing.assert_array_equal(result.landscape.risk, expected.landscape.risk)
    assert (out / "notes.txt").read_text() == "mine"
    return which


def check_clean(out: Path, sets: dict[str, object], which: str) -> None:
    """After recovery: the set's files, its record and the user's file, nothing else."""
    files = OLD_FILES if which == "old" else NEW_FILES
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*files, record_name("run"), "notes.txt"]
    )
    assert {name: digest(out / name) for name in files} == sets[which]


STRACE = shutil.which("strace")


def run_under_strace(out: Path, inject: int | None) -> subprocess.CompletedProcess:
    """``sgdscape run`` (the NEW set) into ``out``, killed at its ``inject``-th rename."""
    option = ["-e", f"inject=rename,renameat,renameat2:signal=SIGKILL:when={inject}"]
    command = [STRACE, "-f", "-qq", "-o", os.devnull, "-e", "trace=rename,renameat,renameat2"]
    env = {**os.environ, "PYTHONPATH": str(Path(sgdscape.__file__).parents[1])}
    return subprocess.run(
        [
            *command,
            *(option if inject else []),
            sys.executable,
            "-m",
            "sgdscape",
            *NEW,
            "--out",
            str(out),
        ],
        capture_output=True,
        env=env,
        timeout=300,
    )


def count_renames(out: Path) -> int:
    trace = out.parent / "trace.txt"
    command = [STRACE, "-f", "-qq", "-o", str(trace), "-e", "trace=rename,renameat,renameat2"]
    env = {**os.environ, "PYTHONPATH": str(Path(sgdscape.__file__).parents[1])}
    subprocess.run(
        [*command, sys.executable, "-m", "sgdscape", *NEW, "--out", str(out)],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    return sum(" = 0" in line for line in trace.read_text().splitlines())


@pytest.mark.slow
@pytest.mark.skipif(STRACE is None, reason="needs strace (apt-get install strace)")
def test_a_kill_at_every_rename_leaves_the_old_or_the_new_set(sets, tmp_path) -> None:
    probe = tmp_path / "probe"
    shutil.copytree(sets["base"], probe)
    renames = count_renames(probe)
    # 3 PNGs staged, 1 commit, 5 files and 1 record moved into place
    assert renames == 10, renames
    outcomes = []
    for n in range(1, renames + 1):
        out = tmp_path / f"kill{n}"
        shutil.copytree(sets["base"], out)
        killed = run_under_strace(out, n)
        assert killed.returncode != 0, (n, killed.stderr[-500:])
        which = check_old_or_new(out, sets)
        outcomes.append(which)
        recover(out)  # what the next write into the folder does first
        check_clean(out, sets, which)
    # the kill lands on entry to the rename, before it runs: up to and including the commit
    # rename (the 4th) the old set stands; once the commit is renamed, the new one
    assert outcomes == ["old"] * 4 + ["new"] * 6, outcomes


@pytest.mark.slow
@pytest.mark.skipif(STRACE is None, reason="needs strace (apt-get install strace)")
def test_the_next_run_finishes_a_killed_commit_and_removes_a_killed_stage(sets, tmp_path) -> None:
    for n, expected in ((2, "old"), (6, "new")):  # a stage left behind; a half-moved commit
        out = tmp_path / f"kill{n}"
        shutil.copytree(sets["base"], out)
        assert run_under_strace(out, n).returncode != 0
        assert leftovers(out)
        assert check_old_or_new(out, sets) == expected
        outcome = CliRunner().invoke(app, [*OLD, "--out", str(out)])  # the following run
        assert outcome.exit_code == 0, outcome.output
        assert leftovers(out) == []
        check_clean(out, sets, "old")


def test_a_failure_at_every_publish_step_leaves_one_whole_set(tmp_path, monkeypatch) -> None:
    """The same protocol in-process: ``os.replace``/``os.rename`` fail at the n-th call."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    old = {"a.txt": b"old a", "b.txt": b"old b", "c.txt": b"old c"}
    new = {"a.txt": b"new a", "b.txt": b"new b", "d.txt": b"new d"}

    def write(files: dict[str, bytes]) -> None:
        with output_set(out, "demo") as stage:
            for name, payload in files.items():
                (stage / name).write_bytes(payload)

    def seen() -> dict[str, bytes]:
        manifest = out / COMMIT / "manifest.json"
        record = manifest if manifest.is_file() else out / record_name("demo")
        names = json.loads(record.read_text())["files"]
        return {name: published(out, name).read_bytes() for name in names}

    write(old)
    assert seen() == old
    real_replace, real_rename = os.replace, os.rename
    outcomes = []
    for n in range(1, 10):
        calls = {"count": 0}

        def failing(source, target, *, _real=None, n=n, calls=calls):
            calls["count"] += 1
            if calls["count"] == n:
                raise OSError(28, "No space left on device (injected)")
            return _real(source, target)

        monkeypatch.setattr(os, "replace", lambda s, t, f=failing: f(s, t, _real=real_replace))
        monkeypatch.setattr(os, "rename", lambda s, t, f=failing: f(s, t, _real=real_rename))
        try:
            write(new)
            failed = False
        except OSError:
            failed = True
        monkeypatch.setattr(os, "replace", real_replace)
        monkeypatch.setattr(os, "rename", real_rename)
        state = seen()
        assert state in (old, new), (n, state)
        outcomes.append(("failed-" if failed else "ok-") + ("old" if state == old else "new"))
        recover(out)
        expected = old if state == old else new
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [*expected, record_name("demo"), "mine.txt"]
        )
        assert {name: (out / name).read_bytes() for name in expected} == expected
        write(old)  # back to the old set for the next step
    # rename 1 is the commit; 2-4 move the files, 5 the record; from 6 on nothing fails
    assert outcomes == ["failed-old"] + ["failed-new"] * 4 + ["ok-new"] * 4, outcomes


def test_temporaries_of_dead_writers_are_removed_at_the_next_write(tmp_path) -> None:
    from sgdscape.io import write_atomic

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(gone.stdout)  # a process that has exited
    stale = tmp_path / f".page.html.{dead}-0123456789ab.tmp"
    live = tmp_path / f".page.html.{os.getpid()}-0123456789ab.tmp"  # a writer still running
    other = tmp_path / f".other.html.{dead}-0123456789ab.tmp"  # another target's
    for path in (stale, live, other):
        path.write_bytes(b"")
    write_atomic(tmp_path / "page.html", b"<html>")
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "page.html").read_bytes() == b"<html>"
    # a killed stage folder of the same pid is removed by the next set written there
    stage = tmp_path / f".sgdscape-stage-run-{dead}-0123456789ab"
    stage.mkdir()
    (stage / "run.npz").write_bytes(b"half")
    with output_set(tmp_path, "demo") as folder:
        (folder / "a.txt").write_text("a")
    assert not stage.exists() and not other.exists()
    assert live.exists()
