"""The hand-written RFC 3339 parser and writer agree with ``datetime`` on every input."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from rater.core.clock import format_time, from_datetime, parse_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SHAPE = re.compile(  # RFC 3339 section 5.6, written out independently of the parser
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def reference(text: str) -> int | None:
    """What ``datetime`` makes of a text of the RFC 3339 shape (None when either refuses)."""
    shape = SHAPE.fullmatch(text)
    if shape is None:
        return None
    if shape.group(2)[0] in "+-" and int(shape.group(2)[4:]) > 59:
        return None  # RFC 3339 offsets have minutes 00-59; datetime also takes 60
    head, dot, tail = text.partition(".")
    if dot:  # datetime takes at most 6 fractional digits; the rater truncates the rest
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
        tail = digits[:6] + tail[len(digits):]
        text = f"{head}.{tail}"
    try:
        moment = datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError:
        return None
    return (moment - EPOCH) // timedelta(microseconds=1)


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 12, 31), timezones=offsets
)


@given(moments, st.sampled_from(["T", "t", " "]), st.integers(0, 9), st.booleans())
def test_valid_times_parse_like_datetime(
    moment: datetime, sep: str, frac_digits: int, zulu: bool
) -> None:
    if zulu:
        moment = moment.astimezone(UTC)
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if frac_digits:
        text += "." + f"{moment.microsecond:06d}{'123'}"[:frac_digits]
    if zulu:
        text += "Z"
    else:
        offset = moment.strftime("%z")
        text += offset[:3] + ":" + offset[3:]
    assert parse_time(text) == reference(text)
    assert parse_time(text) is not None


@given(
    st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
    st.integers(0, 99), st.integers(0, 99), st.sampled_from(["Z", "+", "-"]),
    st.integers(0, 99), st.integers(0, 99),
)
def test_out_of_range_fields_are_refused_like_datetime(
    year: int, month: int, day: int, hour: int, minute: int, second: int, sign: str,
    off_h: int, off_m: int,
) -> None:
    offset = "Z" if sign == "Z" else f"{sign}{off_h:02d}:{off_m:02d}"
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{offset}"
    assert parse_time(text) == reference(text)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31)))
def test_format_time_writes_what_parse_time_reads(moment: datetime) -> None:
    micros = from_datetime(moment.replace(tzinfo=UTC))
    text = format_time(micros)
    assert text.endswith("Z")
    assert parse_time(text) == micros
    assert datetime.fromisoformat(text) == moment.replace(tzinfo=UTC)


@given(st.lists(st.sampled_from([
    "2025-03-04T10:11:12Z", "2025-03-04T10:11:13+01:00", "2025-03-04T10:11:59.9999999z",
    "2025-03-04T10:11:60Z", "2025-03-04T10:11:1Z", "2025-03-04T10:11:12", "2025-03-04t10:11:12Z",
    "2025-03-04 10:11:12.5Z", "2025-03-04T10:11:12.Z", "2025-03-04T10:11:12-23:59",
    "2025-02-29T10:11:12Z", "2024-02-29T23:59:59Z", "2025-03-04T10:11:12Zx",
    "2025-03-04T10:11:12.500000Z", "2025-03-04T10:12:12.500000Z", "2025-03-05T10:11:12.500000Z",
    "2025-03-04T10:11:12.000000Z", "2025-03-04T10:11:12.500000+01:00", "2025-03-04T10:11:12.50000Z",
]), min_size=1, max_size=20))
def test_cached_minutes_never_change_an_answer(texts: list[str]) -> None:
    """A cached minute, or second and fraction, in other minutes, offsets and shapes."""
    for text in texts:
        assert parse_time(text) == reference(text), text


def written(micros: int) -> str:
    """SPEC 2 read literally: UTC, a fraction only when there is one, and ``Z``."""
    moment = EPOCH + timedelta(microseconds=micros)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


@given(st.lists(st.sampled_from([
    "2025-03-04T10:11:12Z", "2025-03-04T10:11:12.000000Z", "2025-03-04T10:11:12.500000Z",
    "2025-03-04t10:11:12.500000Z", "2025-03-04 10:11:12Z", "2025-03-04T10:11:12.500000z",
    "2025-03-04T10:11:12z", "2025-03-04T10:11:12.5Z", "2025-03-04T10:11:12.5000000Z",
    "2025-03-04T10:11:12+00:00", "2025-03-04T11:11:12.500000+01:00", "2025-03-04T10:12:00Z",
]), min_size=1, max_size=20), st.lists(st.integers(0, 2**42), max_size=3))
def test_a_parsed_time_is_written_as_format_time_would(texts: list[str], others: list[int]) -> None:
    """parse_time keeps a text it read as the last one written: only when it is canonical."""
    for text in texts:
        micros = parse_time(text)
        assert micros is not None
        assert format_time(micros) == written(micros), text
        for other in others:
            assert format_time(other) == written(other)
