"""Numeric CSV files as users have them: :func:`read_csv` and its :class:`CsvReport`.

A UTF-8 byte-order mark, a header line, comma, semicolon or tab separators, blank and
``#`` comment lines are accepted; the file is parsed in blocks by numpy's C parser, and the
first bad line is named in a :class:`SgdscapeError`. :class:`sgdscape.core.problems.Dataset`
reads its files with it (``Dataset.from_csv``).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgdscape.errors import FLOAT32_MAX, SgdscapeError, shown

ByteProgress = Callable[[int, int], None]

#: bytes of a CSV file parsed at a time: memory stays bounded by the block and the result
CSV_BLOCK_BYTES = 1 << 23
#: files from this size on report progress (smaller ones read in well under a second)
LARGE_CSV_BYTES = 1 << 24
_BOM = b"\xef\xbb\xbf"
_DELIMITERS = {";": "semicolon", "\t": "tab", ",": "comma"}  # the first found separates


@dataclass(frozen=True)
class CsvReport:
    """What :func:`read_csv` read: rows, columns, and the lines it skipped (and why)."""

    path: Path
    rows: int
    columns: int
    delimiter: str
    header: str | None
    skipped: int
    bom: bool

    def __str__(self) -> str:
        notes = [f"{_DELIMITERS[self.delimiter]}-separated"]
        if self.bom:
            notes.append("a UTF-8 byte-order mark")
        if self.header is not None:
            notes.append(f"header {shown(self.header, 40)} skipped")
        if self.skipped:
            notes.append(f"{self.skipped} blank or comment line(s) skipped")
        return (
            f"read {self.rows} row{'s' * (self.rows != 1)} x {self.columns} columns from "
            f"{self.path.name} "
            f"({', '.join(notes)})"
        )


def read_csv(
    path: str | Path, *, columns: int = 2, progress: ByteProgress | None = None
) -> tuple[np.ndarray, CsvReport]:
    """Read a numeric CSV file as users have it: ``(rows, columns)`` float32 and a report.

    Accepted: a UTF-8 byte-order mark, an optional header line (a first line that is not
    numeric), comma, semicolon or tab separators (taken from the first line), CRLF or LF
    line ends, a trailing newline or none, blank lines and ``#`` comment lines (skipped
    and counted). Every value must be finite and within float32's range; the first bad
    line is reported with its line number.

    The file is parsed in blocks of :data:`CSV_BLOCK_BYTES` by numpy's C parser
    (``np.loadtxt``), so memory is the float32 result plus one block, and
    ``progress(bytes_read, bytes_total)`` is called per block for files of
    :data:`LARGE_CSV_BYTES` or more.
    """
    path = Path(path)
    if not path.is_file():
        raise SgdscapeError(f"data file {str(path)!r} does not exist or is not a file.")
    name = repr(str(path))
    blocks: list[np.ndarray] = []
    state = _CsvState()
    try:
        with path.open("rb") as handle:
            total = os.fstat(handle.fileno()).st_size
            carry, done = b"", 0
            while True:
                raw = handle.read(CSV_BLOCK_BYTES)
                done += len(raw)
                if not state.started and done == len(raw):
                    state.bom = raw.startswith(_BOM)
                    raw = raw.removeprefix(_BOM)
                raw, at_end = carry + raw, not raw
                cut = len(raw) if at_end else raw.rfind(b"\n") + 1
                if cut == 0 and not at_end:  # no line end yet: a very long line
                    if len(raw) > 16 * CSV_BLOCK_BYTES:
                        raise SgdscapeError(f"data file {name} has a line over 128 MiB.")
                    carry = raw
                    continue
                text, carry = _decode(raw[:cut], name, state.lines), raw[cut:]
                block = _parse_block(text, state, name, columns)
                if block is not None:
                    blocks.append(block)
                if progress is not None and total >= LARGE_CSV_BYTES:
                    progress(min(done, total), total)
                if at_end:
                    break
    except OSError as error:
        raise SgdscapeError(f"cannot read data file {name}: {error.strerror or error}.") from None
    rows = sum(len(b) for b in blocks)
    if rows == 0:
        raise SgdscapeError(f"data file {name} has no data rows; expected columns x,y.")
    values = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    report = CsvReport(
        path,
        rows,
        columns,
        state.delimiter or ",",
        state.header,
        state.lines - rows - (state.header is not None),
        state.bom,
    )
    return values, report


@dataclass
class _CsvState:
    """What the blocks read so far established: separator, header, lines seen."""

    started: bool = False
    delimiter: str | None = None
    header: str | None = None
    lines: int = 0
    bom: bool = False


def _decode(raw: bytes, name: str, lines_before: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = lines_before + raw[: error.start].count(b"\n") + 1
        raise SgdscapeError(
            f"data file {name}: line {line} is not UTF-8 text; save the file as UTF-8 CSV."
        ) from None


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _parse_block(text: str, state: _CsvState, name: str, columns: int) -> np.ndarray | None:
    """Parse the whole lines ``text`` (a block of the file) into float32 ``(rows, columns)``."""
    first_line = state.lines
    if not state.started:
        state.started = True
        lines = text.splitlines(keepends=True)
        first = next((i for i, line in enumerate(lines) if _content(line)), None)
        if first is None:
            state.lines += len(lines)
            state.started = False  # the separator and header are still to come
            return None
        head = lines[first].strip()
        state.delimiter = next((d for d in _DELIMITERS if d in head), ",")
        if not _numeric(_cells(head, state.delimiter)):
            state.header = head
            lines[first] = "\n"  # counted as a line, parsed as a blank one
            text = "".join(lines)
    state.lines += text.count("\n") + (not text.endswith("\n") and bool(text))
    if not any(_content(line) for line in text.splitlines()):
        return None
    try:
        values = np.loadtxt(
            # float32 directly: a value beyond its range parses as inf and is named below
            io.StringIO(text),
            delimiter=state.delimiter,
            dtype=np.float32,
            ndmin=2,
            quotechar='"',
        )
    except ValueError:  # whitespace-only lines, or a bad line: find it in Python
        values = _parse_lines(text, state.delimiter or ",", name, columns, first_line)
    if values.shape[1] != columns:
        raise SgdscapeError(
            f"data file {name} has {values.shape[1]} column(s); expected exactly two columns x,y."
        )
    bad = ~np.isfinite(values)  # NaN, infinity, or (parsed as float32) beyond its range
    if values.dtype == np.float64:  # the line-by-line path parses float64
        bad |= np.abs(values) > FLOAT32_MAX
    if bad.any():
        _raise_bad_value(text, state.delimiter or ",", name, first_line)
    return values.astype(np.float32, copy=False)


def _cells(line: str, delimiter: str) -> list[str]:
    """The cells of one line: comment cut off, whitespace and double quotes stripped."""
    return [cell.strip().strip('"') for cell in line.split("#", 1)[0].split(delimiter)]


def _numeric(cells: list[str]) -> bool:
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return True


def _parse_lines(text: str, delimiter: str, name: str, columns: int, first_line: int) -> np.ndarray:
    """The slow path: each line on its own, to skip blank ones and name the first bad one."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=first_line + 1):
        if not _content(line):
            continue
        cells = _cells(line, delimiter)
        if len(cells) != columns:
            raise SgdscapeError(
                f"data file {name}: line {number} has {len(cells)} column(s); expected "
                f"exactly two columns x,y: {shown(line.strip(), 60)}."
            )
        if not _numeric(cells):
            raise SgdscapeError(
                f"data file {name}: line {number} is not numeric: {shown(line.strip(), 60)}."
            )
        rows.append([float(cell) for cell in cells])
    return np.asarray(rows, dtype=np.float64).reshape(-1, columns)


def _raise_bad_value(text: str, delimiter: str, name: str, first_line: int) -> None:
    """Name the first line holding NaN, infinity or a value beyond float32's range."""
    for number, line in enumerate(text.splitlines(), start=first_line + 1):
        if not _content(line):
            continue
        for cell in _cells(line, delimiter):
            value = float(cell)
            if not math.isfinite(value):
                raise SgdscapeError(
                    f"data file {name}: line {number} has NaN or infinite values: "
                    f"{shown(line.strip(), 60)}."
                )
            if abs(value) > FLOAT32_MAX:
                raise SgdscapeError(
                    f"data file {name}: line {number} has {cell.strip()}, outside float32's "
                    f"range (±{FLOAT32_MAX:.4g}); rescale the data."
                )
    raise AssertionError("a bad value was flagged but not found")  # pragma: no cover
