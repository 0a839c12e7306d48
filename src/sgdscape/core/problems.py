"""Data: the seed's linear ground truth, other synthetic problems, and user data.

A :class:`Dataset` holds ``x`` and ``y`` of shape ``(n_samples, 1)`` (float32, as the
seed notebook). Every sampler takes its randomness from a local ``torch.Generator``
built from ``seed``; the global torch generator is never touched.
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sgdscape.errors import (
    FLOAT32_MAX,
    SgdscapeError,
    check_choice,
    check_int,
    check_range,
    check_seed,
    clip,
    shown,
)

log = logging.getLogger("sgdscape")


@dataclass(frozen=True)
class Dataset:
    """Inputs and targets of a 1-D regression or binary classification problem.

    Attributes:
        x: inputs, shape ``(n_samples, 1)``, float32.
        y: targets, shape ``(n_samples, 1)``, float32 (0/1 labels for classification).
        name: where the data came from (a problem name or a file name).
        source: for data read from a file, what was read (rows, columns, skipped lines).
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str = "data"
    source: str = ""

    def __post_init__(self) -> None:
        for label, values in (("x", self.x), ("y", self.y)):
            if not isinstance(values, torch.Tensor):
                raise SgdscapeError(f"Dataset.{label} must be a torch.Tensor, got {type(values)}.")
            if values.ndim != 2 or values.shape[1] != 1:
                raise SgdscapeError(
                    f"Dataset.{label} must have shape (n_samples, 1), got {tuple(values.shape)}."
                )
            if not torch.isfinite(values).all():
                raise SgdscapeError(f"Dataset.{label} contains NaN or infinite values.")
        if self.x.shape[0] != self.y.shape[0]:
            raise SgdscapeError(
                f"x and y must have the same number of samples, got {self.x.shape[0]} "
                f"and {self.y.shape[0]}."
            )
        if self.x.shape[0] < 1:
            raise SgdscapeError("a dataset needs at least one sample, got 0.")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples ``n``."""
        return len(self)

    def to(self, device: torch.device | str) -> Dataset:
        """The same data on ``device``."""
        return Dataset(self.x.to(device), self.y.to(device), self.name)

    @classmethod
    def from_arrays(cls, x: object, y: object, name: str = "arrays") -> Dataset:
        """Build a dataset from array-likes of shape ``(n,)`` or ``(n, 1)``."""
        tensors = []
        for label, values in (("x", x), ("y", y)):
            try:
                array = np.asarray(values)
            except (TypeError, ValueError) as error:
                raise SgdscapeError(
                    f"x and y must be numeric arrays: {clip(str(error))}."
                ) from None
            if array.dtype.kind not in "iuf":  # strings, bools and objects are not numbers
                raise SgdscapeError(f"{label} must be numbers, got {shown(values)}.")
            array = array.astype(np.float64)
            big = np.isfinite(array) & (np.abs(array) > FLOAT32_MAX)
            if big.any():
                raise SgdscapeError(
                    f"{label} holds {array[big][0]:g}, outside float32's range "
                    f"(±{FLOAT32_MAX:.4g}); rescale the data."
                )
            tensors.append(torch.from_numpy(array.astype(np.float32)).reshape(-1, 1))
        return cls(tensors[0], tensors[1], name)

    @classmethod
    def from_csv(cls, path: str | Path, *, progress: ByteProgress | None = None) -> Dataset:
        """Read a CSV file with two numeric columns ``x,y`` (see :func:`read_csv`).

        ``progress(bytes_read, bytes_total)`` is called per block for large files. What
        was read (rows, columns, skipped lines) is logged and kept in :attr:`source`.
        """
        values, report = read_csv(path, progress=progress)
        log.info("%s", report)
        return cls(
            torch.from_numpy(np.ascontiguousarray(values[:, :1])),
            torch.from_numpy(np.ascontiguousarray(values[:, 1:])),
            report.path.name,
            str(report),
        )


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


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (or from fresh OS entropy when ``None``)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(check_seed("seed", seed))
    return generator


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class ProblemOptions:
    """Knobs shared by the synthetic problems (each problem reads those it needs)."""

    slope: float = 2.0
    noise_std: float = 0.1
    x_range: tuple[float, float] = (-1.0, 1.0)
    student_df: float = 2.0
    outlier_fraction: float = 0.1
    outlier_scale: float = 5.0


Sampler = Callable[[int, torch.Generator, ProblemOptions], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Problem:
    """A named data generator with the loss it is meant for."""

    name: str
    sample: Sampler
    description: str
    default_loss: str = "mse"


def _uniform_x(n: int, generator: torch.Generator, options: ProblemOptions) -> torch.Tensor:
    low, high = options.x_range
    return torch.empty(n, 1).uniform_(low, high, generator=generator)


def _gaussian_noise(n: int, generator: torch.Generator, std: float) -> torch.Tensor:
    return torch.empty(n, 1).normal_(0.0, std, generator=generator)


def _linear(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    epsilon = _gaussian_noise(n, generator, options.noise_std)
    return x, options.slope * x + epsilon


def _student_t(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    # t = z / sqrt(chi2_df / df), with chi2 drawn as a Gamma(df/2, 2) from the same generator
    z = torch.empty(n, 1).normal_(0.0, 1.0, generator=generator)
    gamma = torch._standard_gamma(torch.full((n, 1), options.student_df / 2.0), generator=generator)
    t = z / torch.sqrt(2.0 * gamma / options.student_df)
    return x, options.slope * x + options.noise_std * t


def _outliers(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _linear(n, generator, options)
    is_outlier = torch.rand(n, 1, generator=generator) < options.outlier_fraction
    sign = torch.where(torch.rand(n, 1, generator=generator) < 0.5, -1.0, 1.0)
    return x, torch.where(is_outlier, y + sign * options.outlier_scale, y)


def _absolute(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    return x, options.slope * x.abs() + _gaussian_noise(n, generator, options.noise_std)


def _sine(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    y = options.slope * torch.sin(math.pi * x) + _gaussian_noise(n, generator, options.noise_std)
    return x, y


def _positive_x(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    return _linear(n, generator, ProblemOptions(**{**options.__dict__, "x_range": (0.0, 1.0)}))


def _blobs(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    labels = (torch.rand(n, 1, generator=generator) < 0.5).float()
    centre = options.slope / 2.0 * (2.0 * labels - 1.0)
    x = centre + torch.empty(n, 1).normal_(0.0, max(options.noise_std, 1e-6), generator=generator)
    return x, labels


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem("linear", _linear, "the seed's y = slope*x + Gaussian noise, x ~ U(x-range)"),
        Problem(
            "student-t", _student_t, "linear truth with heavy-tailed Student-t noise (df options)"
        ),
        Problem("outliers", _outliers, "linear truth where a fraction of targets jump by ±scale"),
        Problem("abs", _absolute, "nonlinear truth y = slope*|x| + noise: one ReLU cannot fit it"),
        Problem("sin", _sine, "nonlinear truth y = slope*sin(pi x) + noise"),
        Problem("positive-x", _positive_x, "linear truth with x drawn from [0, 1] only"),
        Problem(
            "blobs",
            _blobs,
            "two classes: x ~ N(±slope/2, noise-std), labels 0/1, for the logistic loss",
            default_loss="logistic",
        ),
    ]
}


def make_problem(
    name: str,
    n_samples: int = 100,
    *,
    seed: int | None = None,
    options: ProblemOptions | None = None,
) -> Dataset:
    """Draw ``n_samples`` points from the named problem (see :data:`PROBLEMS`)."""
    problem = PROBLEMS[check_choice("problem", name, PROBLEMS)]
    n = check_int("n_samples", n_samples, low=1)
    options = options or ProblemOptions()
    if not options.noise_std >= 0 or not math.isfinite(options.noise_std):
        raise SgdscapeError(f"noise_std must be a finite number >= 0, got {options.noise_std}.")
    if not 0.0 <= options.outlier_fraction <= 1.0:
        raise SgdscapeError(
            f"outlier_fraction must be between 0 and 1, got {options.outlier_fraction}."
        )
    if not options.student_df > 0:
        raise SgdscapeError(f"student_df must be > 0, got {options.student_df}.")
    check_range("x_range", options.x_range)
    x, y = problem.sample(n, make_generator(seed), options)
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise SgdscapeError(
            f"problem {name!r} with slope={options.slope:g}, noise_std={options.noise_std:g}, "
            f"x_range=({options.x_range[0]:g}, {options.x_range[1]:g}) and outlier_scale="
            f"{options.outlier_scale:g} draws values beyond float32's range "
            f"(±{FLOAT32_MAX:.4g}); use smaller values."
        )
    return Dataset(x.float(), y.float(), name)


def ground_truth(
    n_samples: int = 100,
    *,
    slope: float = 2.0,
    noise_std: float = 0.1,
    x_range: tuple[float, float] = (-1.0, 1.0),
    seed: int | None = None,
) -> Dataset:
    """The seed notebook's data: ``y = slope * x + eps``, ``x ~ U(x_range)``, ``eps ~ N(0, noise_std)``.

    For a given ``seed`` it draws exactly what the notebook's ``sample_from_ground_truth``
    draws after ``torch.manual_seed(seed)`` (x first, then the noise), from a local
    generator. Shapes: ``x, y: (n_samples, 1)``.
    """
    options = ProblemOptions(slope=float(slope), noise_std=float(noise_std), x_range=x_range)
    return make_problem("linear", n_samples, seed=seed, options=options)
