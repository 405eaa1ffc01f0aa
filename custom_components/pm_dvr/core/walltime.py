"""Local wall time and epoch seconds, exact across DST changes (the process's time zone).

Clip names and day folders are in local time. A local time is one instant on almost every day;
when the clocks go back, an hour of local times happens twice (a *repeated* hour), and when they
go forward, an hour never happens (a *skipped* hour). `time.mktime` picks one reading of a
repeated time by a guess that changes from call to call, so everything here compares UTC
offsets instead: a wall time W is the instant t exactly when t + offset(t) = W.

Names of clips that start in a repeated hour carry their UTC offset (`offset_marker`), so both
passes have their own name and read back to their own instant.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
import re
import time
from typing import Final

# UTC offsets lie within ±15 h, so the instants of a wall time lie within ±15 h of it read as UTC.
_REACH: Final = (-15 * 3600, 0, 15 * 3600)
MARKER: Final = re.compile(r"_([pm])(\d{2})(\d{2})(\d{2})?")
"""`_p0200`, `_m0500`: UTC+02:00, UTC-05:00 (`_pHHMMSS` for an offset with seconds)."""


def naive(wall: Sequence[int]) -> int:
    """A wall time `(year, month, day[, hour, minute, second])` read as if it were UTC.

    Out-of-range fields carry over, as with mktime (hour 24 is the next day's 00). Raises
    ValueError or OverflowError for a year outside 1..9999.
    """
    year, month, day, *rest = wall
    hour, minute, second = (*rest, 0, 0, 0)[:3]
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def _offset(t: int) -> int:
    return time.localtime(t).tm_gmtoff


def instants(wall: Sequence[int]) -> tuple[int, ...]:
    """Every epoch second whose local time reads this wall time (see naive), oldest first.

    One on most days, two in a repeated hour, none in a skipped one.
    """
    seconds = naive(wall)
    offsets = {_offset(seconds + reach) for reach in _REACH}
    return tuple(sorted(seconds - o for o in offsets if _offset(seconds - o) == o))


def to_epoch(wall: Sequence[int]) -> float:
    """A wall time in epoch seconds: the first pass of a repeated time; a skipped time as if
    the clocks had not moved yet (so the start of a skipped hour is the change itself).

    The same choice as Python's `datetime` with `fold=0`, stable from call to call.
    """
    found = instants(wall)
    if found:
        return float(found[0])
    seconds = naive(wall)
    offsets = {_offset(seconds + reach) for reach in _REACH}
    # Read with the larger offset, the time falls before the change: that gives the older offset.
    return float(seconds - _offset(seconds - max(offsets)))


def repeated(local: time.struct_time) -> bool:
    """Whether a local time happens twice (the hour repeated when the clocks go back)."""
    return len(instants(local[:6])) > 1


def offset_marker(local: time.struct_time) -> str:
    """`_pHHMM`/`_mHHMM` (the UTC offset) for a time in a repeated hour, "" for any other.

    Not `+0200`/`-0500`: `+` is a space in a query string and `-N` already dedupes clip names.
    """
    if not repeated(local):
        return ""
    offset = local.tm_gmtoff
    sign = "p" if offset >= 0 else "m"
    hours, rest = divmod(abs(offset), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"_{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def marker_offset(sign: str, hours: str, minutes: str, seconds: str | None) -> int:
    """The UTC offset in seconds of a marker's groups (see MARKER)."""
    value = int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
    return value if sign == "p" else -value


def local_text(timestamp: float) -> str:
    """`YYYY-mm-dd HH:MM:SS`, with ` +HH:MM` added in a repeated hour so both passes differ."""
    local = time.localtime(timestamp)
    text = time.strftime("%Y-%m-%d %H:%M:%S", local)
    if repeated(local):
        offset = local.tm_gmtoff
        hours, minutes = divmod(abs(offset) // 60, 60)
        text += f" {'+' if offset >= 0 else '-'}{hours:02d}:{minutes:02d}"
    return text
