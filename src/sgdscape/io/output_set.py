"""A *set* of output files committed together: :func:`output_set`, :func:`recover`,
:func:`published`. The protocol and what a kill leaves are described in :mod:`sgdscape.io`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sgdscape.io.atomic import clean_temporaries, process_alive

COMMIT = ".sgdscape-commit"
STAGE = ".sgdscape-stage-"
_STAGE = re.compile(r"^\.sgdscape-stage-(?P<kind>[a-z]+)-(?P<pid>\d+)-[0-9a-f]{12}$")
MANIFEST = "manifest.json"


def record_name(kind: str) -> str:
    """The file in an output folder that lists the ``kind`` set now in place."""
    return f".sgdscape-{kind}.json"


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return None
    return manifest


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def recover(out: str | Path) -> None:
    """Finish or undo what a killed writer left in the output folder ``out``.

    A commit folder (the writer passed its commit point) is rolled forward: its files are
    moved into place and the set's record written. Stage folders of dead writers (killed
    before their commit point) and their temporaries are removed. Idempotent.
    """
    out = Path(out)
    commit = out / COMMIT
    if commit.is_dir():
        manifest = _read_manifest(commit / MANIFEST)
        if manifest is None:  # pragma: no cover - the manifest is in the stage before the commit
            shutil.rmtree(commit, ignore_errors=True)
        else:
            _roll_forward(out, commit, manifest)
    with contextlib.suppress(OSError):
        for entry in os.scandir(out):
            match = _STAGE.match(entry.name)
            if match is not None and not process_alive(int(match["pid"])):
                shutil.rmtree(entry.path, ignore_errors=True)
    clean_temporaries(out)


def _roll_forward(out: Path, commit: Path, manifest: Mapping[str, Any]) -> None:
    files = [str(name) for name in manifest["files"]]
    for name in files:
        staged = commit / name
        if staged.exists():
            os.replace(staged, out / name)
    for name in manifest.get("drop", []):
        if str(name) not in files:
            with contextlib.suppress(FileNotFoundError):
                (out / str(name)).unlink()
    os.replace(commit / MANIFEST, out / record_name(str(manifest["kind"])))
    shutil.rmtree(commit, ignore_errors=True)
    _fsync(out)


def published(out: str | Path, name: str) -> Path:
    """The path of the committed ``name`` in the output folder ``out``.

    After a kill past a set's commit point and before :func:`recover` ran, the new file may
    still sit in the commit folder; readers take it there, so they see the new set.
    """
    out = Path(out)
    pending = out / COMMIT / name
    if pending.is_file() and (out / COMMIT / MANIFEST).is_file():
        return pending
    return out / name


@contextlib.contextmanager
def output_set(out: str | Path, kind: str) -> Iterator[Path]:
    """Yield a stage folder; on success its files replace the ``kind`` set in ``out`` together.

    Write every file of the set into the yielded folder (flat, plain names). When the block
    ends without error the set is committed with one rename and moved into ``out``; files of
    the previous ``kind`` set that the new set lacks are removed; other files in ``out`` are
    never touched. On error the stage is removed and ``out`` is left as it was. See the
    module docstring for the protocol and what a kill leaves.
    """
    if not re.fullmatch(r"[a-z]+", kind):  # pragma: no cover - programming error
        raise ValueError(f"kind must be lowercase letters, got {kind!r}")
    out = Path(out)
    recover(out)
    stage = out / f"{STAGE}{kind}-{os.getpid()}-{secrets.token_hex(6)}"
    stage.mkdir()
    try:
        yield stage
        files = sorted(entry.name for entry in os.scandir(stage) if entry.is_file())
        previous = _read_manifest(out / record_name(kind))
        drop = [str(n) for n in previous["files"]] if previous else []
        for name in files:
            _fsync(stage / name)
        manifest = {"kind": kind, "files": files, "drop": sorted(set(drop) - set(files))}
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _fsync(stage / MANIFEST)
        _fsync(stage)
        os.rename(stage, out / COMMIT)  # the commit point
        _roll_forward(out, out / COMMIT, manifest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def published_files(out: str | Path, kind: str) -> list[Path]:
    """The files of the ``kind`` set in ``out`` as its record lists them (empty if none)."""
    manifest = _read_manifest(Path(out) / record_name(kind))
    return [] if manifest is None else [Path(out) / str(n) for n in manifest["files"]]
