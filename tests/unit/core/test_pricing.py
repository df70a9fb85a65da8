"""Money, time, billed seconds, amounts and the tariff index, with worked figures."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rater.core.clock import add_months, format_time, month_of, parse_time
from rater.core.money import format_money, parse_money
from tests.support.harness import Harness, dlq_code, one, t


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("12.5", 12_500_000),
        ("0.0240", 24_000),
        ("0", 0),
        ("7", 7_000_000),
        ("0.000001", 1),
        ("123456789.123456", 123_456_789_123_456),
    ],
)
def test_money_parses_exactly(text: str, micros: int) -> None:
    assert parse_money(text) == micros


@pytest.mark.parametrize(
    "bad", [1.5, 2, "1.1234567", "-1", "+1", "012", "1.", ".5", "1e3", " 1", None]
)
def test_money_rejects_non_strings_and_bad_text(bad: object) -> None:
    assert parse_money(bad) is None


@pytest.mark.parametrize(
    ("micros", "text"),
    [(12_500_000, "12.500000"), (0, "0.000000"), (-1, "-0.000001"), (-12_345_678, "-12.345678")],
)
def test_money_is_written_with_six_decimals(micros: int, text: str) -> None:
    assert format_money(micros) == text


def test_times_are_normalised_to_utc_z() -> None:
    assert format_time(t("2026-03-01T01:30:00+02:00")) == "2026-02-28T23:30:00Z"
    assert format_time(t("2026-03-01T00:00:00.5Z")) == "2026-03-01T00:00:00.500000Z"
    assert parse_time("2026-03-01T00:00:00") is None  # no offset
    assert parse_time("2026-02-30T00:00:00Z") is None
    assert parse_time("2026-03-01") is None


@pytest.mark.parametrize(
    ("start", "expiry"),
    [
        ("2024-02-29T10:00:00Z", "2025-02-28T10:00:00Z"),  # day clamped to the month's end
        ("2026-01-31T00:00:00Z", "2027-01-31T00:00:00Z"),
        ("2026-12-15T23:59:59Z", "2027-12-15T23:59:59Z"),
    ],
)
def test_lots_expire_twelve_calendar_months_later(start: str, expiry: str) -> None:
    assert format_time(add_months(t(start), 12)) == expiry


def test_add_months_clamps_short_months() -> None:
    assert format_time(add_months(t("2026-01-31T00:00:00Z"), 1)) == "2026-02-28T00:00:00Z"


def test_pool_month_is_the_utc_month() -> None:
    assert month_of(t("2026-02-01T00:30:00+01:00")) == "2026-01"


def rate_one(
    duration: int, first: int = 60, step: int = 60, rate: str = "0.024", fee: str = "0", **cdr: Any
) -> dict[str, Any]:
    """One CDR rated by the engine (through the Processor) against one tariff row."""
    h = Harness()
    h.tariff(
        "T1", rate_per_minute=rate, connection_fee=fee, first_increment_s=first, increment_s=step
    )
    h.tariff("US", prefix="1", country="US", rate_per_minute=rate, connection_fee=fee)
    h.tariff("DIAL", call_type="conference_dialout", rate_per_minute=rate)
    h.tariff("FREE", call_type="conference_tollfree_dialin", prefix="4980", rate_per_minute=rate)
    h.open("2026-01-01T00:00:00Z")
    h.event("credits_purchased", "2026-01-01T00:00:00Z", amount="1000")
    for pool in ("domestic", "international"):
        h.event(
            "minute_pool_allocated",
            "2026-01-01T00:00:00Z",
            pool=pool,
            month="2026-01",
            minutes=0,
        )
    return one(h.cdr("2026-01-02T00:00:00Z", duration, **cdr), "rated-cdrs")


@pytest.mark.parametrize(
    ("duration", "first", "step", "billed"),
    [
        (0, 60, 60, 0),
        (1, 60, 60, 60),
        (60, 60, 60, 60),
        (61, 60, 60, 120),
        (61, 30, 6, 66),  # 30 + ceil(31/6)=6 steps of 6 -> 30+36
        (125, 60, 1, 125),
        (86400, 60, 60, 86400),
    ],
)
def test_billed_seconds(duration: int, first: int, step: int, billed: int) -> None:
    rated = rate_one(duration, first, step)
    assert (rated["billed_s"], rated["chargeable_s"]) == (billed, billed)


@pytest.mark.parametrize(
    ("rate", "fee", "seconds", "amount"),
    [
        ("0.024", "0", 60, "0.024000"),  # 0.024/min * 1 min
        ("0.024", "0", 90, "0.036000"),  # 0.024 * 90/60 = 0.036
        ("0.01", "0", 1, "0.000167"),  # 0.01/60 = 0.0001666.. -> 0.000167
        # half-up ties: rate * seconds mod 60 == 30 (in micro-units)
        ("0.000003", "0", 10, "0.000001"),  # 3e-6 * 10/60 = 0.5e-6 -> 1e-6
        ("0.000001", "0", 90, "0.000002"),  # 1.5e-6 -> 2e-6
        ("0.024001", "0", 30, "0.012001"),  # 0.0120005 -> 0.012001
        ("0.024001", "0.15", 30, "0.162001"),  # the fee after rounding: 0.012001 + 0.15
        ("0.000001", "0", 89, "0.000001"),  # 1.483e-6 -> 1e-6 (below the half)
        ("0.000001", "0", 20, "0.000000"),  # 0.33e-6 -> 0: a zero amount, no fee
        ("0.024", "0.15", 60, "0.174000"),  # plus a 0.15 connection fee
        ("0.024", "0.15", 0, "0.000000"),  # no fee without chargeable seconds
    ],
)
def test_amount_rounds_half_up_to_micros(rate: str, fee: str, seconds: int, amount: str) -> None:
    rated = rate_one(seconds, first=1, step=1, rate=rate, fee=fee)
    assert rated["amount"] == amount
    assert rated["paid_from_credits"] == amount


@pytest.mark.parametrize(
    ("call_type", "plan", "origin", "destination", "pool"),
    [
        ("outbound", "domestic", "DE", "+4930123456", "domestic"),
        ("outbound", "domestic", "US", "+4930123456", None),
        ("outbound", "domestic_international", "DE", "+4930123456", "domestic"),
        ("outbound", "domestic_international", "US", "+4930123456", "international"),
        ("outbound", "domestic_international", "US", "+12125550100", "domestic"),
        ("outbound", "pay_as_you_go", "DE", "+4930123456", None),
        ("conference_dialout", "domestic", "DE", "+4930123456", None),
        ("conference_dialout", None, "DE", "+4930123456", None),
        ("conference_tollfree_dialin", None, "DE", "+4980012345", None),
    ],
)
def test_pool_choice(call_type, plan, origin, destination, pool) -> None:
    """SPEC 5.3: domestic when the tariff's country is the CDR's origin_country."""
    fields = {"call_type": call_type, "origin_country": origin, "destination": destination}
    fields["plan"] = plan if plan is not None else ...
    rated = rate_one(60, **fields)
    assert rated["pool"] == pool
    assert (rated["pool_s"], rated["chargeable_s"]) == (0, 60)  # 0 minutes allocated


def lookup(h: Harness, digits: str, at: str = "2026-06-01T00:00:00Z", call_type="outbound"):
    row = h.proc.tariffs.lookup(call_type, "EUR", digits, t(at))
    return None if row is None else row.tariff_id


def test_longest_prefix_wins() -> None:
    h = Harness()
    h.tariff("A", prefix="4")
    h.tariff("B", prefix="4930")
    h.tariff("C", prefix="49")
    assert lookup(h, "4930123456") == "B"
    assert lookup(h, "4940123456") == "C"
    assert lookup(h, "4140123456") == "A"
    assert lookup(h, "3340123456") is None


def test_tie_breaks_on_latest_start_then_smallest_id() -> None:
    h = Harness()
    h.tariff("B", effective_from="2026-01-01T00:00:00Z")
    h.tariff("C", effective_from="2026-03-01T00:00:00Z")
    h.tariff("A", effective_from="2026-03-01T00:00:00Z")
    assert lookup(h, "4930123456", "2026-02-01T00:00:00Z") == "B"
    assert lookup(h, "4930123456", "2026-03-01T00:00:00Z") == "A"


def test_effective_to_is_exclusive_and_longer_prefix_out_of_period_falls_back() -> None:
    h = Harness()
    h.tariff("SHORT", prefix="4")
    h.tariff("LONG", effective_from="2026-01-01T00:00:00Z", effective_to="2026-02-01T00:00:00Z")
    assert lookup(h, "4930123456", "2026-01-31T23:59:59Z") == "LONG"
    assert lookup(h, "4930123456", "2026-02-01T00:00:00Z") == "SHORT"
    assert lookup(h, "4930123456", "2025-12-31T23:59:59Z") == "SHORT"


def test_call_type_and_currency_must_match() -> None:
    h = Harness()
    h.tariff("USD", currency="USD")
    h.tariff("CONF", call_type="conference_dialout")
    assert lookup(h, "4930123456") is None
    assert lookup(h, "4930123456", call_type="conference_dialout") == "CONF"


def test_rows_are_replaced_and_deleted_by_tombstones() -> None:
    h = Harness()
    h.tariff("A", prefix="49")
    h.tariff("A", prefix="33")
    assert lookup(h, "4930123456") is None
    assert lookup(h, "3312345678") == "A"
    h.raw_tariff(b"A", None)
    assert lookup(h, "3312345678") is None
    assert len(h.proc.tariffs) == 0


GOOD_ROW = {
    "tariff_id": "A",
    "call_type": "outbound",
    "prefix": "33",
    "country": "FR",
    "currency": "EUR",
    "rate_per_minute": "1",
    "effective_from": "2020-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"prefix": "+49"}, "invalid_field"),
        ({"rate_per_minute": 0.024}, "invalid_field"),
        ({"rate_per_minute": "0.0000001"}, "invalid_field"),
        ({"increment_s": 0}, "invalid_field"),
        ({"effective_to": "2019-01-01T00:00:00Z"}, "invalid_field"),
        ({"effective_from": None}, "invalid_field"),
        ({"tariff_id": "OTHER"}, "key_mismatch"),
    ],
)
def test_a_bad_row_is_rejected_and_leaves_the_index_unchanged(fields, code) -> None:
    h = Harness()
    h.tariff("A", prefix="49")
    rejected = h.raw_tariff(b"A", orjson.dumps(GOOD_ROW | fields))
    assert dlq_code(rejected) == code
    assert one(rejected, "rater-dlq")["tenant_id"] is None
    assert lookup(h, "4930123456") == "A"
    assert lookup(h, "3312345678") is None


def test_malformed_row_is_invalid_json() -> None:
    h = Harness()
    assert dlq_code(h.raw_tariff(b"A", b"{not json")) == "invalid_json"
