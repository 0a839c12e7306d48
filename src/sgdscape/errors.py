"""The one exception type of sgdscape.

Every bad input (API argument, config field, CLI option, data file) raises
:class:`SgdscapeError`, a ``ValueError`` whose message is one sentence naming the
bad value and what is allowed. The CLI prints that sentence on one line and
exits with status 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class SgdscapeError(ValueError):
    """A bad input: the message names the bad value and the allowed values or range."""


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``float(value)`` if it is finite and > 0 (or >= 0), else raise :class:`SgdscapeError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SgdscapeError(f"{name} must be a number, got {value!r}.") from None
    low_ok = number >= 0 if allow_zero else number > 0
    if not math.isfinite(number) or not low_ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise SgdscapeError(f"{name} must be a finite number {bound}, got {value!r}.")
    return number


def check_int(name: str, value: object, *, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` or raise :class:`SgdscapeError`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise SgdscapeError(f"{name} must be an integer, got {value!r}.")
    number = int(value)
    if number < low or (high is not None and number > high):
        allowed = f">= {low}" if high is None else f"between {low} and {high}"
        raise SgdscapeError(f"{name} must be {allowed}, got {number}.")
    return number


def check_choice(kind: str, name: str, choices: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``choices``, else raise listing the valid ones."""
    valid = sorted(choices)
    if name not in valid:
        raise SgdscapeError(f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}.")
    return name


def check_range(name: str, value: object) -> tuple[float, float]:
    """Return ``(low, high)`` as finite floats with ``low < high`` or raise."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise SgdscapeError(f"{name} must be two numbers LOW,HIGH, got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise SgdscapeError(
            f"{name} must be two finite numbers with LOW < HIGH, got ({low:g}, {high:g})."
        )
    return low, high
