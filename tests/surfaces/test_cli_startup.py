"""The command line starts light: ``--help`` and argument errors never import torch.

Each check runs a fresh ``python -X importtime`` process, whose stderr names every module the
process imported; that list, not a timing, is what is asserted (``benchmarks/bench_cli.py``
measures the seconds). A positive control shows the probe does see torch when it is imported.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sgdscape
from sgdscape.surfaces.cli import app

HEAVY = ("torch", "numpy", "matplotlib", "plotly", "dash", "ray", "scipy", "rich")
PLOTTING_AND_SERVING = ("matplotlib", "plotly", "dash", "ray")
ENV = {**os.environ, "PYTHONPATH": str(Path(sgdscape.__file__).parents[1]), "COLUMNS": "100"}


def _imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime ARGS``; return the process and the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)\s*$", done.stderr, re.M)
    assert names, done.stderr  # the probe itself works
    return done, {name.split(".")[0] for name in names}


def _messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


def test_the_probe_sees_torch_when_it_is_imported():
    _, packages = _imported("-c", "import sgdscape; sgdscape.Grid")
    assert "torch" in packages


def test_help_imports_no_heavy_package():
    done, packages = _imported("-m", "sgdscape", "--help")
    assert done.returncode == 0, done.stderr
    for command in ("run", "presets", "basins", "chains", "export", "serve", "bench", "network"):
        assert re.search(rf"^\s+{command}\s+\S", done.stdout, re.M), command
    assert packages.isdisjoint(HEAVY), sorted(packages & set(HEAVY))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--grid", "abc"], "Invalid value for '--grid'"),
        (["run", "--no-such-option"], "No such option: --no-such-option"),
        (["chains", "--n-chains", "many"], "Invalid value for '--n-chains'"),
        (["export", "--fps"], "Option '--fps' requires an argument"),
        (["nope"], "No such command 'nope'"),
    ],
)
def test_argument_errors_answer_in_one_line_without_torch(args, message):
    done, packages = _imported("-m", "sgdscape", *args)
    assert done.returncode == 2
    lines = _messages(done.stderr)
    assert len(lines) == 1 and lines[0].startswith("sgdscape: error: "), lines
    assert message in lines[0]
    assert "torch" not in packages and packages.isdisjoint(HEAVY), sorted(packages & set(HEAVY))


def test_a_run_without_figures_imports_no_plotting_and_a_run_with_them_does(tmp_path):
    done, packages = _imported(
        "-m", "sgdscape", "run", "--figures", "none", "-q", "--out", str(tmp_path / "none")
    )
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "none").iterdir() if not p.name.startswith("."))
    assert written == ["config.toml", "run.npz"]
    assert "torch" in packages and "matplotlib" not in packages
    done, packages = _imported(
        "-m", "sgdscape", "run", "--figures", "0", "-q", "--out", str(tmp_path / "one")
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "one" / "step_00.png").stat().st_size > 0 and "matplotlib" in packages
    # a network needs nothing of a 2-parameter run's drawing
    assert "sgdscape.networks" not in done.stderr


def test_import_sgdscape_is_light_and_its_names_need_no_plotting():
    _, bare = _imported("-c", "import sgdscape")
    assert bare.isdisjoint(HEAVY), sorted(bare & set(HEAVY))
    every = "import sgdscape\nfor name in sgdscape.__all__: getattr(sgdscape, name)"
    _, loaded = _imported("-c", every)
    assert "torch" in loaded
    assert loaded.isdisjoint(PLOTTING_AND_SERVING), sorted(loaded & set(PLOTTING_AND_SERVING))


def test_the_lazy_front_door_gives_every_name():
    assert set(sgdscape.__all__) <= set(dir(sgdscape))
    for name in sgdscape.__all__:
        value = getattr(sgdscape, name)
        assert value is not None
        if callable(value) and hasattr(value, "__module__"):
            module = sys.modules[value.__module__]
            assert getattr(module, getattr(value, "__name__", name), None) is value, name
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = sgdscape.no_such_name
    with pytest.raises(ImportError):
        from sgdscape import no_such_name  # noqa: F401


def test_model_names_are_filled_into_every_help():
    from typer.testing import CliRunner

    runner = CliRunner()
    for command in ("run", "basins", "chains", "export"):
        shown = runner.invoke(app, [command, "--help"], terminal_width=2000)
        assert shown.exit_code == 0, shown.output
        assert "{models}" not in shown.output and "{default_inits}" not in shown.output
        for name in sgdscape.MODELS:
            assert name in shown.output, (command, name)


#: a probe's preamble: an exit handler that prints whether the collector was frozen by then,
#: and leaves on a module an object whose finaliser writes "torn down" when the interpreter
#: tears the modules down after the exit handlers (which the quick end skips)
_EXIT_PROBE = (
    "import atexit, gc, os, sys, threading, time, types\n"
    "from sgdscape.surfaces.cli import main\n"
    "class Marker:\n"
    "    def __del__(self, write=os.write):  # the module's names may be gone by then\n"
    "        write(2, b'torn down\\n')\n"
    "holder = sys.modules['teardown_probe'] = types.ModuleType('teardown_probe')\n"
    "def at_exit():\n"
    "    print('exit handler ran, frozen', gc.get_freeze_count() > 1000)\n"
    "    holder.marker = Marker()  # made after any freeze: torn down with its module\n"
    "atexit.register(at_exit)\n"
)


def _probe(body: str) -> subprocess.CompletedProcess[str]:
    """Run the probe; its output streams buffered, as in a pipe (PYTHONUNBUFFERED, which CI
    sets, would unbuffer C's stdout too, and nothing would be left to flush)."""
    env = {key: value for key, value in ENV.items() if key != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", _EXIT_PROBE + body],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("argv", "status", "stderr"),
    [(["--version"], 0, ""), (["run", "--grid", "abc"], 2, "Invalid value for '--grid'")],
)
def test_a_finished_command_ends_quickly_and_loses_nothing(argv, status, stderr):
    """The entry point runs the exit handlers, flushes what was printed and keeps the exit
    status, and skips the module teardown (the marker's finaliser never runs)."""
    done = _probe(
        "import ctypes\n"
        "ctypes.CDLL(None).printf(b'from C, ')  # C's stdout buffer, as a C library prints\n"
        "print('unflushed', end='')\n"
        f"sys.argv = ['sgdscape', *{argv!r}]\n"
        "main()\n"
    )
    assert done.returncode == status, done.stderr
    assert "unflushed" in done.stdout and "from C, " in done.stdout
    assert "exit handler ran" in done.stdout
    assert stderr in done.stderr
    assert "torn down" not in done.stderr  # the quick end was taken


def test_with_a_thread_still_at_work_the_process_ends_as_usual():
    """A Python thread still running when the command ends is waited for, as the interpreter
    would, and the objects are frozen for the last collections (the teardown runs)."""
    done = _probe(
        "worker = threading.Thread(target=lambda: (time.sleep(0.5), print('thread done')))\n"
        "worker.start()\n"
        "sys.argv = ['sgdscape', '--version']\n"
        "main()\n"
    )
    assert done.returncode == 0, done.stderr
    assert "thread done" in done.stdout
    assert "exit handler ran, frozen True" in done.stdout
    assert "torn down" in done.stderr  # the positive control: the usual end tears down


def test_a_message_as_the_status_and_a_failed_flush_are_reported_as_the_interpreter_does():
    from_message = _probe("from sgdscape.surfaces.cli.root import end_process\nend_process('no')\n")
    assert from_message.returncode == 1
    assert from_message.stderr.splitlines()[0] == "no"
    broken_pipe = _probe(
        "import io\n"
        "from sgdscape.surfaces.cli.root import end_process\n"
        "class Closed(io.StringIO):\n"
        "    def flush(self):\n"
        "        raise BrokenPipeError\n"
        "sys.stdout = Closed()\n"
        "end_process(0)\n"
    )
    assert broken_pipe.returncode == 120
    assert "torn down" not in broken_pipe.stderr
