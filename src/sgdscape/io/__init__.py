"""sgdscape's files: archives read against a schema, and outputs written atomically.

**Reading.** :func:`read_archive` is the one reader of ``run.npz`` and ``network.npz``. It
checks, in this order, and raises :class:`SgdscapeError` in one line naming the file, the
array and what was expected at the first violation:

1. the format: a zip of ``NAME.npy`` members (never unpickled), at most
   :data:`MAX_MEMBERS` of them, stored or deflated, not encrypted, no duplicate names;
2. the sizes, before anything is decompressed: each member's declared uncompressed size,
   the ``.npy`` header's ``shape x itemsize`` (which must match it) and their total against
   a cap (:data:`MAX_ARCHIVE_BYTES`, raised with ``SGDSCAPE_MAX_ARCHIVE_BYTES``);
3. the names (required ones present, no others), the dtypes (numbers of the expected kind,
   text only where text belongs, never objects; big-endian arrays are accepted and converted
   to native order), and the shapes against the schema's symbolic dimensions, so that
   ``risk`` is ``(G2, G1)`` for the lengths of ``w2`` and ``w1``, ``iterates`` is ``(T, p)``
   for the ``T`` of ``lr``, and so on;
4. only then the data, and on it the values: finite where required, grid axes strictly
   increasing, indices in their range.

**Writing.** :func:`atomic_path` replaces one file atomically. :func:`output_set` commits a
*set* of files (a run's ``run.npz``, ``config.toml`` and PNGs) together, in a folder that may
hold other files of the user's, which are never touched:

1. the files are written into a stage folder ``OUT/.sgdscape-stage-<kind>-<pid>-<token>/``;
   a ``manifest.json`` listing them (and the previous set's files to drop) is written last;
2. **commit point**: one rename turns the stage into ``OUT/.sgdscape-commit/``;
3. each file is moved to its place with ``os.replace``, the previous set's files that the new
   set lacks are removed, and the manifest is moved to ``OUT/.sgdscape-<kind>.json`` (the
   record of the set now in place); the empty commit folder is removed.

A kill before step 2 leaves the old set in place and a stage folder that the next write into
``OUT`` removes; a kill after it leaves a commit folder that the next write finishes
(:func:`recover`), and readers (:func:`published`) see the new set meanwhile. So a reader
always gets the complete old set or the complete new set.

The parts: :mod:`.archives` (reading), :mod:`.atomic` (one file) and :mod:`.output_set`
(a set of files); every public name is importable from ``sgdscape.io``.
"""

from __future__ import annotations

from sgdscape.io.archives import (
    MAX_ARCHIVE_BYTES,
    MAX_HEADER_BYTES,
    MAX_MEMBERS,
    MAX_TEXT_BYTES,
    Schema,
    Spec,
    max_archive_bytes,
    read_archive,
)
from sgdscape.io.atomic import atomic_path, clean_temporaries, process_alive, write_atomic
from sgdscape.io.output_set import (
    COMMIT,
    MANIFEST,
    STAGE,
    output_set,
    published,
    published_files,
    record_name,
    recover,
)

__all__ = [
    "COMMIT",
    "MANIFEST",
    "MAX_ARCHIVE_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_MEMBERS",
    "MAX_TEXT_BYTES",
    "STAGE",
    "Schema",
    "Spec",
    "atomic_path",
    "clean_temporaries",
    "max_archive_bytes",
    "output_set",
    "process_alive",
    "published",
    "published_files",
    "read_archive",
    "record_name",
    "recover",
    "write_atomic",
]
