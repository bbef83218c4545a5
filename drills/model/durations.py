"""Durations as people write them in scenarios and policies: ``90s``, ``5m``, ``1h30m``, ``2d``.

Stored as :class:`datetime.timedelta`; serialised back to the same short form so JSON Schema, journals and
reports stay readable.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# [0-9] and re.ASCII: \d and float() also take other scripts' digits ("٣m" would be three minutes).
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)", re.ASCII)
_WHOLE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d|w))+", re.ASCII)


def parse_duration(value: object) -> timedelta:
    """Parse ``"5m"``, ``"1h30m"``, ``"90s"``; a bare number is seconds. Raises ValueError with a clear message."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError("a duration is text like '90s', '5m' or '1h', not true/false")
    elif isinstance(value, int | float):
        result = _from_seconds(value, value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text or not _WHOLE.fullmatch(text):
            raise ValueError(f"{value!r} is not a duration; write it like '90s', '5m', '1h' or '1h30m'")
        result = _from_seconds(sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text)), value)
    else:
        raise ValueError(f"a duration is text like '90s' or '5m', not {type(value).__name__}")
    if result < timedelta(0):
        raise ValueError("a duration cannot be negative")
    return result


def _from_seconds(seconds: float, written: object) -> timedelta:
    # timedelta raises OverflowError (not ValueError) past ~2.7 million years, and float() of a huge int does
    # too; validators must only raise ValueError or pydantic lets the exception escape as a crash.
    shown = repr(written) if len(repr(written)) <= 40 else repr(written)[:37] + "..."
    try:
        as_float = float(seconds)
    except OverflowError:
        raise ValueError(f"{shown} is too long to be a duration") from None
    if math.isnan(as_float):
        raise ValueError("a duration must be a number of seconds or text like '5m', not NaN")
    try:
        return timedelta(seconds=as_float)
    except OverflowError:
        raise ValueError(f"{shown} is too long to be a duration") from None


def format_duration(td: timedelta | None) -> str:
    """Short human form: ``4m05s``, ``1h02m``, ``12s``, ``850ms``; ``-`` for None."""
    if td is None:
        return "-"
    total = td.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total < 1 and total > 0:
        return f"{sign}{round(total * 1000)}ms"
    secs = round(total)
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{sign}{d}d{h:02d}h"
    if h:
        return f"{sign}{h}h{m:02d}m"
    if m:
        return f"{sign}{m}m{s:02d}s"
    return f"{sign}{s}s"


def _to_text(td: timedelta) -> str:
    secs = td.total_seconds()
    if secs != int(secs):
        return f"{round(secs * 1000)}ms"
    secs_i = int(secs)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if secs_i and secs_i % size == 0:
            return f"{secs_i // size}{unit}"
    return f"{secs_i}s"


def _validate(value: Any) -> timedelta:
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate),
    PlainSerializer(_to_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+$",
            "description": "A duration such as '90s', '5m', '1h' or '1h30m'.",
            "examples": ["30s", "5m", "1h"],
        }
    ),
]
