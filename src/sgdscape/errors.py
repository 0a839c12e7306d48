"""The one exception type of sgdscape.

Every bad input (API argument, config field, CLI option, data file) raises
:class:`SgdscapeError`, a ``ValueError`` whose message is one sentence naming the
bad value and what is allowed. The CLI prints that sentence on one line and
exits with status 2.

Numbers are checked once, here, against what they will become: anything that ends up
in a float32 tensor must lie within float32's range (:data:`FLOAT32_MAX`), integers
within int64, and a string or a bool is never taken for a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: the largest finite float32 (``numpy.finfo(numpy.float32).max``); larger values overflow
FLOAT32_MAX = 3.4028234663852886e38
#: the largest int64: integers that become tensors or seeds stay within it
INT64_MAX = 2**63 - 1
#: seeds (of data, minibatch order, weights) are integers in ``[0, MAX_SEED]``
MAX_SEED = INT64_MAX
#: values echoed in messages are cut to this many characters
MAX_SHOWN = 80


class SgdscapeError(ValueError):
    """A bad input: the message names the bad value and the allowed values or range."""


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters (a long value is named, not echoed)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}... ({len(text)} characters)"


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was (for logs and notices)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text)} characters in all)"


def _is_number(value: object) -> bool:
    """A real number: int, float or a numeric scalar; never a bool or a string."""
    if isinstance(value, str | bytes) or type(value).__name__ in ("bool", "bool_"):
        return False
    return hasattr(type(value), "__float__") and getattr(value, "ndim", 0) == 0


def _bound(value: float) -> str:
    if abs(value) == FLOAT32_MAX:
        return f"{value:.4g} (float32's limit)"
    return f"{value:g}"


def check_number(
    name: str,
    value: object,
    *,
    low: float = -FLOAT32_MAX,
    high: float = FLOAT32_MAX,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real number in ``[low, high]``.

    ``low_open`` excludes ``low`` itself. The default bounds are float32's range, as
    every such number ends up in a float32 tensor. A string (``"0.1"``) or a bool is
    not a number. Raises :class:`SgdscapeError` naming ``name``, the value and the range.
    """
    if not _is_number(value):
        raise SgdscapeError(f"{name} must be a number, got {shown(value)}.")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = math.inf if not isinstance(value, int) or value > 0 else -math.inf
    below = number <= low if low_open else number < low
    if math.isfinite(number) and not below and number <= high:
        return number
    lower = f"> {_bound(low)}" if low_open else f">= {_bound(low)}"
    if low == -FLOAT32_MAX and high == FLOAT32_MAX:
        allowed = f"within float32's range (±{FLOAT32_MAX:.4g})"
    elif low == -FLOAT32_MAX:
        allowed = f"<= {_bound(high)}"
    else:
        allowed = f"{lower} and <= {_bound(high)}"
    raise SgdscapeError(f"{name} must be a finite number {allowed}, got {shown(value)}.")


def check_positive(
    name: str, value: object, *, allow_zero: bool = False, high: float = FLOAT32_MAX
) -> float:
    """Return ``float(value)`` if it is a finite number > 0 (or >= 0) and <= ``high``."""
    return check_number(name, value, low=0.0, high=high, low_open=not allow_zero)


def check_int(name: str, value: object, *, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` (``high`` defaults to int64's limit).

    A bool or a string is not an integer; a float is one only when it is whole.
    """
    if not _is_number(value):
        raise SgdscapeError(f"{name} must be an integer, got {shown(value)}.")
    try:
        whole = value == int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):  # NaN or infinity
        whole = False
    if not whole:
        raise SgdscapeError(f"{name} must be an integer, got {shown(value)}.")
    number = int(value)  # type: ignore[call-overload]
    top = INT64_MAX if high is None else high
    if number < low or number > top:
        if high is not None:
            allowed = f"between {low} and {high}"
        elif number < low:
            allowed = f">= {low}"
        else:
            allowed = f"at most {INT64_MAX} (int64's limit)"
        raise SgdscapeError(f"{name} must be {allowed}, got {shown(value)}.")
    return number


def check_seed(name: str, value: object) -> int:
    """A seed: an integer in ``[0, MAX_SEED]``."""
    return check_int(name, value, low=0, high=MAX_SEED)


def check_choice(kind: str, name: str, choices: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``choices``, else raise listing the valid ones."""
    valid = sorted(choices)
    if name not in valid:
        raise SgdscapeError(f"unknown {kind} {shown(name)}; choose one of: {', '.join(valid)}.")
    return name


def check_range(name: str, value: object) -> tuple[float, float]:
    """Return ``(low, high)`` as floats within float32's range with ``low < high``, or raise.

    The width ``high - low`` must stay within float32's range too (grids are spaced
    over it in float32), and ``low < high`` must still hold after rounding to float32.
    """
    given_low: object
    given_high: object
    try:
        given_low, given_high = value  # type: ignore[misc]  # any object: unpacking is the check
    except (TypeError, ValueError):
        raise SgdscapeError(f"{name} must be two numbers LOW,HIGH, got {shown(value)}.") from None
    low = check_number(f"{name} LOW", given_low)
    high = check_number(f"{name} HIGH", given_high)
    import numpy as np

    if not np.float32(low) < np.float32(high):
        raise SgdscapeError(
            f"{name} must be two finite numbers with LOW < HIGH, got ({low:g}, {high:g})."
        )
    if high - low > FLOAT32_MAX:
        raise SgdscapeError(
            f"{name} ({low:g}, {high:g}) is wider than float32's range ({FLOAT32_MAX:.4g}); "
            "choose a narrower window."
        )
    return low, high


#: frames per second of a player or an animation: a frame at least every 100 s, at most
#: 1,000 a second (a GIF's frame duration is whole milliseconds)
FPS_RANGE = (0.01, 1000.0)
#: dots per inch of a rendered frame; it sets the text size relative to the frame
DPI_RANGE = (10.0, 1000.0)


def check_fps(name: str, value: object) -> float:
    """Frames per second within :data:`FPS_RANGE`."""
    return check_number(name, value, low=FPS_RANGE[0], high=FPS_RANGE[1])


def check_dpi(name: str, value: object) -> float:
    """Dots per inch within :data:`DPI_RANGE`."""
    return check_number(name, value, low=DPI_RANGE[0], high=DPI_RANGE[1])
