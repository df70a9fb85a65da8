"""Times as integer microseconds since the Unix epoch, UTC.

Integers compare and subtract cheaply on the hot path; ``datetime`` is used
only to parse RFC 3339 text and to do calendar arithmetic (months).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# RFC 3339 date-time: a full date, a full time with seconds, and an offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.(\d+))?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def parse_time(text: object) -> int | None:
    """Parse an RFC 3339 time into epoch microseconds, or None when invalid.

    Digits beyond microseconds are truncated: no billing rule needs them.
    """
    if type(text) is not str or _RFC3339.fullmatch(text) is None:
        return None
    frac = _RFC3339.fullmatch(text).group(1)  # type: ignore[union-attr]
    if frac is not None and len(frac) > 6:
        text = text.replace(frac, frac[:6], 1)
    try:
        parsed = datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError:
        return None
    return (parsed - _EPOCH) // _ONE_US


def to_datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


_DATES: dict[int, str] = {}  # day number -> "YYYY-MM-DDT"; a CDR writes 2-3 times


def _date_prefix(days: int) -> str:
    prefix = _DATES.get(days)
    if prefix is None:
        if len(_DATES) > 100_000:
            _DATES.clear()
        prefix = _DATES[days] = (_EPOCH + timedelta(days=days)).date().isoformat() + "T"
    return prefix


def format_time(micros: int) -> str:
    """Write a time in UTC with a ``Z`` suffix (SPEC section 2).

    Integer arithmetic plus a per-day cache: this runs several times per CDR.
    """
    days, rest = divmod(micros, DAY)
    seconds, fraction = divmod(rest, SECOND)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if fraction:
        return f"{_date_prefix(days)}{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction:06d}Z"
    return f"{_date_prefix(days)}{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def from_datetime(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_US


def add_months(micros: int, months: int) -> int:
    """Add calendar months, clamping the day to the target month's end."""
    moment = to_datetime(micros)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return from_datetime(moment.replace(year=year, month=month, day=day))


def month_of(micros: int) -> str:
    """The UTC calendar month (``YYYY-MM``) a time falls in: the pool month."""
    return _date_prefix(micros // DAY)[:7]
