"""One file replaced atomically: :func:`atomic_path`, :func:`write_atomic`, and the cleanup of
temporaries that killed writers left (:func:`clean_temporaries`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{12}\.tmp$")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine); unknown counts as alive."""
    if pid == os.getpid() or os.name != "posix":  # on Windows os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_temporaries(directory: str | Path, target: str | None = None) -> list[Path]:
    """Remove temporary files (of ``target``, or all) that killed writers left in ``directory``.

    Only files named as :func:`atomic_path` names them, whose writing process is gone, are
    removed; the removed paths are returned.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = _TEMPORARY.match(entry.name)
            if match is None or (target is not None and match["target"] != target):
                continue
            if not process_alive(int(match["pid"])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On error the temporary file is removed and ``path`` is left as it was. Temporaries that
    a killed writer left for the same ``path`` are removed first (:func:`clean_temporaries`).
    """
    path = Path(path)
    clean_temporaries(path.parent, path.name)
    for _ in range(100):  # like mkstemp, but with the umask's permissions (mkstemp gives 0600)
        temporary = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"no free temporary name beside {str(path)!r}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically (see :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_bytes(payload)
    return path
