"""Archives (``run.npz``, ``network.npz``) read against a schema, without pickle.

:func:`read_archive` is the one reader; :class:`Schema` and :class:`Spec` describe what an
archive must hold. The checks and their order are described in :mod:`sgdscape.io`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sgdscape.errors import SgdscapeError

#: default cap on the total uncompressed bytes an archive may declare (1 GiB)
MAX_ARCHIVE_BYTES = 2**30
#: the most members (arrays) an archive may hold
MAX_MEMBERS = 512
#: the longest ``.npy`` header accepted (numpy's own default)
MAX_HEADER_BYTES = 10_000
#: the most bytes a text array (a view's labels, info) may hold
MAX_TEXT_BYTES = 2**20
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def max_archive_bytes() -> int:
    """The cap on an archive's declared bytes: ``SGDSCAPE_MAX_ARCHIVE_BYTES`` or 1 GiB."""
    text = os.environ.get("SGDSCAPE_MAX_ARCHIVE_BYTES")
    if text is None:
        return MAX_ARCHIVE_BYTES
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise SgdscapeError(
            f"SGDSCAPE_MAX_ARCHIVE_BYTES must be a positive number of bytes, got {text!r}."
        )
    return value


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Spec:
    """What one array of an archive must be.

    Attributes:
        dims: the shape as symbols and sizes, e.g. ``("G2", "G1")``; ``"T+1"`` is one more
            than ``T``; a first symbol ending in ``?`` (``"K?"``) is an optional batch axis.
            A symbol takes the same value in every array it appears in.
        kind: ``"float"``, ``"int"`` or ``"str"``.
        dtype: the dtype the array is converted to after reading (``None``: kept).
        required: whether the archive must hold it.
        finite: every value must be finite.
        increasing: the values must be strictly increasing (a grid axis).
        low, high: integer values must lie in ``[low, high)`` (ints or symbols).
        rows_used: every row must hold at least one value ``>= 0`` (a minibatch).
    """

    dims: tuple[str | int, ...]
    kind: str = "float"
    dtype: str | None = "float32"
    required: bool = True
    finite: bool = False
    increasing: bool = False
    low: int | str | None = None
    high: int | str | None = None
    rows_used: bool = False


@dataclass(frozen=True)
class Schema:
    """A kind of archive: its arrays, the least size of each symbol, and how to make one.

    ``fixed`` gives symbols known beforehand (``p`` from the run's config).
    """

    kind: str
    arrays: Mapping[str, Spec]
    minimum: Mapping[str, int]
    how_to_write: str
    other_kind: str
    fixed: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


class _Fail:
    """Raises one-line errors about one file."""

    def __init__(self, path: Path, schema: Schema) -> None:
        self.path, self.schema = path, schema

    def __call__(self, what: str) -> SgdscapeError:
        return SgdscapeError(f"{str(self.path)!r} is not a valid {self.schema.kind}: {what}.")

    def unreadable(self, why: str) -> SgdscapeError:
        return SgdscapeError(
            f"{str(self.path)!r} is not a {self.schema.kind} (not a readable .npz archive: "
            f"{why}); write one with {self.schema.how_to_write}."
        )


#: errors of a damaged zip or .npy stream
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    Warning,
)


def read_archive(
    path: str | Path, schema: Schema, *, max_bytes: int | None = None
) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, checked against ``schema`` (see the module).

    Args:
        max_bytes: cap on the total declared uncompressed bytes [:func:`max_archive_bytes`].

    Returns the arrays by name, converted to native byte order and the schema's dtypes.
    Raises :class:`SgdscapeError` in one line at the first violation; nothing is unpickled
    and nothing larger than the cap is allocated.
    """
    path = Path(path)
    fail = _Fail(path, schema)
    cap = max_archive_bytes() if max_bytes is None else max_bytes
    try:
        with path.open("rb") as handle:
            magic = handle.read(6)
    except OSError as error:
        raise fail.unreadable(error.strerror or str(error)) from None
    if magic == b"\x93NUMPY":
        raise fail.unreadable("it is a single .npy array, not a zip of arrays")
    if not magic.startswith(b"PK"):
        raise fail.unreadable("not a zip file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with zipfile.ZipFile(path) as archive:
                members = _members(archive, fail, cap)
                _check_names(members, schema, fail)
                headers = {name: _header(archive, info, fail) for name, info in members.items()}
                _check_kinds(headers, schema, fail)
                bound = _bind_shapes(headers, schema, fail)
                arrays = {name: _data(archive, info, fail) for name, info in members.items()}
    except SgdscapeError:
        raise
    except _READ_ERRORS as error:
        raise fail.unreadable(_one_line(error)) from None
    for name, array in arrays.items():
        arrays[name] = _check_values(name, array, schema.arrays[name], bound, fail)
    return arrays


def _one_line(error: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(error)).strip()[:200]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _members(archive: zipfile.ZipFile, fail: _Fail, cap: int) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise fail(f"it holds {len(infos)} members; at most {MAX_MEMBERS} are allowed")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        stem = info.filename[:-4] if info.filename.endswith(".npy") else ""
        if not _NAME.match(stem):
            raise fail(f"member {info.filename[:80]!r} is not an array (expected NAME.npy)")
        if stem in members:
            raise fail(f"array {stem!r} appears twice")
        if info.flag_bits & 0x1:
            raise fail(f"array {stem!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise fail(
                f"array {stem!r} uses zip compression {info.compress_type}; expected "
                "stored or deflated (as numpy writes)"
            )
        total += info.file_size
        if info.file_size > cap or total > cap:
            raise fail(
                f"array {stem!r} takes the archive to {total:,} bytes uncompressed; the cap is "
                f"{cap:,} (set SGDSCAPE_MAX_ARCHIVE_BYTES to raise it)"
            )
        members[stem] = info
    return members


def _check_names(members: Mapping[str, object], schema: Schema, fail: _Fail) -> None:
    missing = sorted(n for n, s in schema.arrays.items() if s.required and n not in members)
    if missing:
        raise SgdscapeError(
            f"{str(fail.path)!r} is not a {schema.kind} (it lacks {', '.join(missing)}); "
            f"{schema.other_kind}."
        )
    extra = sorted(set(members) - set(schema.arrays))
    if extra:
        raise fail(
            f"it holds unexpected array(s) {', '.join(repr(e) for e in extra[:5])}; a "
            f"{schema.kind} holds only {', '.join(schema.arrays)}"
        )


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, fail: _Fail) -> _Header:
    name = info.filename[:-4]
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            read = np.lib.format.read_array_header_1_0
        elif version == (2, 0):
            read = np.lib.format.read_array_header_2_0
        else:
            raise fail(f"array {name!r} has .npy format version {version}; expected 1.0 or 2.0")
        shape, _, dtype = read(stream, max_header_size=MAX_HEADER_BYTES)
        offset = stream.tell()
    if any(d < 0 for d in shape):
        raise fail(f"array {name!r} declares the negative shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if not dtype.hasobject and offset + nbytes != info.file_size:  # objects: refused later
        raise fail(
            f"array {name!r} declares {shape} {dtype} ({nbytes:,} bytes) but its member holds "
            f"{max(info.file_size - offset, 0):,} bytes of data"
        )
    return _Header(tuple(shape), dtype, nbytes)


_KINDS = {"float": "f", "int": "iu", "str": "U"}
_KIND_NAMES = {"float": "floating-point numbers", "int": "integers", "str": "text"}


def _check_kinds(headers: Mapping[str, _Header], schema: Schema, fail: _Fail) -> None:
    for name, header in headers.items():
        spec = schema.arrays[name]
        dtype = header.dtype
        if dtype.hasobject:
            raise fail(f"array {name!r} holds Python objects; expected {_KIND_NAMES[spec.kind]}")
        if (
            dtype.fields is not None
            or dtype.subdtype is not None
            or dtype.kind not in _KINDS[spec.kind]
        ):
            raise fail(f"array {name!r} has dtype {dtype}; expected {_KIND_NAMES[spec.kind]}")
        if spec.kind == "str" and header.nbytes > MAX_TEXT_BYTES:
            raise fail(
                f"array {name!r} holds {header.nbytes:,} bytes of text; at most "
                f"{MAX_TEXT_BYTES:,} are allowed"
            )
        if spec.kind == "int" and dtype.itemsize > 8:  # pragma: no cover - no such numpy ints
            raise fail(f"array {name!r} has dtype {dtype}; expected integers of at most 64 bits")


def _bind_shapes(
    headers: Mapping[str, _Header], schema: Schema, fail: _Fail
) -> dict[str, int | None]:
    """Bind every symbolic dimension, checking each array's shape against the others."""
    bound: dict[str, int | None] = dict(schema.fixed)
    origin: dict[str, str] = {symbol: "the config" for symbol in schema.fixed}
    for name, spec in schema.arrays.items():
        if name not in headers:
            continue
        shape = headers[name].shape
        dims = list(spec.dims)
        optional = bool(dims) and isinstance(dims[0], str) and dims[0].endswith("?")
        if optional:
            axis = str(dims[0])[:-1]
            present = len(shape) == len(dims)
            if len(shape) not in (len(dims), len(dims) - 1):
                raise fail(
                    f"array {name!r} has shape {shape}; expected {_pretty(spec.dims)} "
                    f"({len(dims) - 1} or {len(dims)} axes)"
                )
            if axis in bound and (bound[axis] is not None) != present:
                raise fail(
                    f"array {name!r} has shape {shape}; expected {_pretty(spec.dims)} "
                    f"{'with' if bound[axis] is not None else 'without'} the axis {axis} "
                    f"(as {origin[axis]})"
                )
            if not present:
                bound.setdefault(axis, None)
                origin.setdefault(axis, f"array {name!r}")
                dims = dims[1:]
            else:
                dims[0] = axis
        elif len(shape) != len(dims):
            raise fail(f"array {name!r} has shape {shape}; expected {_pretty(spec.dims)}")
        for size, dim in zip(shape, dims, strict=True):
            symbol, offset = _symbol(dim)
            if symbol is None:
                if size != offset:
                    raise fail(f"array {name!r} has shape {shape}; expected {_pretty(spec.dims)}")
                continue
            value = size - offset
            if symbol in bound:
                if bound[symbol] != value:
                    raise fail(
                        f"array {name!r} has shape {shape}; expected {_pretty(spec.dims)} with "
                        f"{symbol} = {bound[symbol]} (from {origin[symbol]})"
                    )
                continue
            least = schema.minimum.get(symbol, 1)
            if value < least:
                raise fail(
                    f"array {name!r} has shape {shape}; expected {_pretty(spec.dims)} with "
                    f"{symbol} >= {least}"
                )
            bound[symbol], origin[symbol] = value, f"array {name!r}"
    return bound


def _symbol(dim: str | int) -> tuple[str | None, int]:
    if isinstance(dim, int):
        return None, dim
    symbol, _, offset = dim.partition("+")
    return symbol.rstrip("?"), int(offset or 0)


def _pretty(dims: tuple[str | int, ...]) -> str:
    return "(" + ", ".join(str(d).rstrip("?") for d in dims) + ("," if len(dims) == 1 else "") + ")"


def _data(archive: zipfile.ZipFile, info: zipfile.ZipInfo, fail: _Fail) -> np.ndarray:
    with archive.open(info) as stream:
        array = np.lib.format.read_array(
            stream, allow_pickle=False, max_header_size=MAX_HEADER_BYTES
        )
        if stream.read(1):  # pragma: no cover - sizes were checked against the header
            raise fail(f"array {info.filename[:-4]!r} has bytes after its data")
    return array


def _check_values(
    name: str, array: np.ndarray, spec: Spec, bound: Mapping[str, int | None], fail: _Fail
) -> np.ndarray:
    if spec.kind == "str":
        return np.asarray(array.astype(array.dtype.newbyteorder("=")))
    if spec.kind == "int" and array.size:
        low, high = (bound.get(v) if isinstance(v, str) else v for v in (spec.low, spec.high))
        smallest, largest = int(array.min()), int(array.max())
        if (low is not None and smallest < low) or (high is not None and largest >= high):
            allowed = f"in [{low}, {high})" if high is not None else f">= {low}"
            raise fail(
                f"array {name!r} holds values from {smallest} to {largest}; expected values "
                f"{allowed}"
            )
        if spec.rows_used and not (array >= 0).any(axis=-1).all():
            row = int(np.flatnonzero(~(array >= 0).any(axis=-1))[0])
            raise fail(
                f"array {name!r} row {row} names no sample; expected at least one index >= 0"
            )
    if spec.dtype is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            array = array.astype(spec.dtype, copy=False)
    elif not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if spec.finite and not np.isfinite(array).all():
        raise fail(f"array {name!r} holds NaN or infinite values; expected finite numbers")
    if spec.increasing and array.size > 1:
        if not (np.diff(array) > 0).all():
            raise fail(f"array {name!r} is not strictly increasing; expected increasing values")
        span = float(array[-1]) - float(array[0])
        if array.dtype.kind == "f" and span > float(np.finfo(array.dtype).max):
            raise fail(
                f"array {name!r} spans {span:.3g}, more than {array.dtype} holds; expected a "
                "narrower window"
            )
    return array
