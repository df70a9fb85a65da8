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
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_DAY_NUMBERS: dict[str, int] = {}  # "YYYY-MM-DD" -> days since the epoch; a CDR parses 1


def _day_number(date_text: str) -> int | None:
    days = _DAY_NUMBERS.get(date_text)
    if days is None:
        try:
            moment = datetime.fromisoformat(date_text + "T00:00:00+00:00")
        except ValueError:
            return None
        if len(_DAY_NUMBERS) > 100_000:
            _DAY_NUMBERS.clear()
        days = _DAY_NUMBERS[date_text] = (moment - _EPOCH).days
    return days


_MINUTES: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" -> epoch µs of that UTC minute
_SECONDS = {f":{second:02d}": second * SECOND for second in range(60)}  # ":SS" -> µs
# ":SS" plus an optional ".ffffff" and "Z", as format_time writes them -> µs into
# the minute: one probe for the rest of a text once its minute is known. Whole
# seconds are there from the start; fractions join as they are parsed, up to
# _TAILS_MAX (about 2.5 MiB), so millisecond timestamps all fit.
_TAILS = {f":{second:02d}Z": second * SECOND for second in range(60)}
_TAILS_MAX = 20_000
# (micros, text) last written by format_time, or parsed from that very text:
# a CDR's start is parsed, then written as the tenant clock and a ledger time.
_last_formatted = (-1, "")
_UTC_TAIL = re.compile(r":([0-5][0-9])(?:\.([0-9]+))?[Zz]")


def parse_time(text: object) -> int | None:
    """Parse an RFC 3339 time into epoch microseconds, or None when invalid.

    Every message carries a time, so a UTC time in a minute already seen
    costs one dictionary probe and a few string tests; anything else takes
    the full parse. Digits beyond microseconds are truncated: no rule needs
    them.
    """
    global _last_formatted
    if type(text) is not str:
        return None
    base = _MINUTES.get(text[:16])  # only "YYYY-MM-DDTHH:MM" of UTC times are there
    if base is not None:
        # The forms format_time writes (whole seconds, or 6 fractional digits
        # but not 000000, then Z) without a regex; such a text is also what
        # format_time would return, and a CDR's time is written back as its
        # rated record's "at": keep it as the last formatted.
        offset = _TAILS.get(text[16:])
        if offset is not None:
            micros = base + offset
            _last_formatted = (micros, text)
            return micros
        second = _SECONDS.get(text[16:19])
        if second is not None and len(text) == 27 and text[19] == "." and text[26] == "Z":
            fraction = text[20:26]
            if fraction.isascii() and fraction.isdigit() and fraction != "000000":
                offset = second + int(fraction)
                if len(_TAILS) < _TAILS_MAX:
                    _TAILS[text[16:]] = offset
                micros = base + offset
                _last_formatted = (micros, text)
                return micros
        tail = _UTC_TAIL.fullmatch(text, 16)
        if tail is not None:
            seconds, frac = tail.groups()
            micros = base + int(seconds) * SECOND
            if frac is not None:
                micros += int(frac[:6].ljust(6, "0"))
            return micros
    return _parse_time_fully(text)


def _parse_time_fully(text: str) -> int | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    date_text, hours, minutes, seconds, frac, sign, off_h, off_m = match.groups()
    days = _day_number(date_text)
    hours, minutes, seconds = int(hours), int(minutes), int(seconds)
    if days is None or hours > 23 or minutes > 59 or seconds > 59:
        return None
    minute = ((days * 24 + hours) * 60 + minutes) * MINUTE
    micros = minute + seconds * SECOND
    if frac is not None:
        micros += int(frac[:6].ljust(6, "0"))
    if sign is None:
        if text[10] == "T":  # the key is then as format_time writes it (see parse_time)
            if len(_MINUTES) > 100_000:
                _MINUTES.clear()
            _MINUTES[text[:16]] = minute
        return micros
    off_h, off_m = int(off_h), int(off_m)
    if off_h > 23 or off_m > 59:
        return None
    offset = (off_h * 60 + off_m) * MINUTE
    return micros - offset if sign == "+" else micros + offset


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


_CLOCK_FACES: dict[int, str] = {}  # second of the day -> "HH:MM:SS", at most 86,400


def format_time(micros: int) -> str:
    """Write a time in UTC with a ``Z`` suffix (SPEC section 2).

    Integer arithmetic, per-day and per-second caches and the last result
    kept: this runs several times per CDR, mostly for the same instant.
    """
    global _last_formatted
    last_micros, last_text = _last_formatted
    if micros == last_micros:
        return last_text
    days, rest = divmod(micros, DAY)
    second, fraction = divmod(rest, SECOND)
    face = _CLOCK_FACES.get(second)
    if face is None:
        hours, seconds = divmod(second, 3600)
        minutes, seconds = divmod(seconds, 60)
        face = _CLOCK_FACES[second] = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if fraction:
        text = f"{_date_prefix(days)}{face}.{fraction:06d}Z"
    else:
        text = _date_prefix(days) + face + "Z"
    _last_formatted = (micros, text)
    return text


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
