"""Rejection codes of SPEC section 9, their precedence, duplicates and the id window."""

from __future__ import annotations

import orjson
import pytest

from tests.support.harness import Harness, dlq_code, on, one

CDR = {
    "cdr_id": "c1",
    "tenant_id": "acme",
    "call_type": "outbound",
    "plan": "pay_as_you_go",
    "origin_country": "DE",
    "destination": "+4930123456",
    "started_at": "2026-01-02T00:00:00Z",
    "duration_s": 60,
}


def opened(now: str = "2040-01-01T00:00:00Z") -> Harness:
    h = Harness(now)
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z")
    h.event("credits_purchased", "2026-01-01T00:00:00Z", amount="10")
    return h


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        (b"acme", b"{", "invalid_json"),
        (b"acme", b"[1, 2]", "invalid_json"),
        (b"acme", None, "invalid_json"),
        (b"acme", orjson.dumps(CDR | {"tenant_id": ""}), "invalid_field"),
        # tenant_id is judged before the key, the key before any other field
        (b"other", orjson.dumps(CDR | {"tenant_id": 7, "duration_s": -1}), "invalid_field"),
        (b"other", orjson.dumps(CDR | {"duration_s": -1}), "key_mismatch"),
        (None, orjson.dumps(CDR), "key_mismatch"),
        (b"acme", orjson.dumps(CDR | {"duration_s": 86401}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"duration_s": 60.0}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"destination": "4930123456"}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"destination": "+12345"}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"plan": None}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"call_type": "fax"}), "invalid_field"),
        # a list or object where a name is expected is a bad field, not a crash
        (b"acme", orjson.dumps(CDR | {"call_type": []}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"plan": {"a": 1}}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"started_at": "yesterday"}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"cdr_id": "x" * 129}), "invalid_field"),
        (b"acme", orjson.dumps(CDR | {"origin_country": "de"}), "invalid_field"),
        (b"nobody", orjson.dumps(CDR | {"tenant_id": "nobody"}), "unknown_account"),
        (b"acme", orjson.dumps(CDR | {"destination": "+3312345678"}), "no_tariff"),
    ],
)
def test_cdr_rejections(key: bytes | None, value: bytes | None, code: str) -> None:
    h = opened()
    before = h.proc.states["acme"].balance()
    outputs = h.raw_cdr(key, value)
    assert dlq_code(outputs) == code
    assert h.proc.states["acme"].balance() == before


def test_dlq_record_keeps_the_raw_message_and_its_position() -> None:
    h = opened()
    outputs = h.raw_cdr(b"acme", b"\xff\xfe")
    name, key, record = outputs[0]
    assert (name, key) == ("rater-dlq", b"acme")
    assert record == {
        "dlq_id": "cdrs:0:4",
        "tenant_id": None,
        "source_topic": "cdrs",
        "partition": 0,
        "offset": 4,
        "key": "acme",
        "key_encoding": "utf-8",
        "value": "//4=",
        "value_encoding": "base64",
        "error": {"code": "invalid_json", "message": record["error"]["message"]},
    }
    assert record["error"]["message"]


def test_unknown_extra_fields_are_ignored() -> None:
    h = opened()
    assert one(h.raw_cdr(b"acme", orjson.dumps(CDR | {"codec": "opus"})), "rated-cdrs")


def test_future_time_is_judged_against_the_wall_clock() -> None:
    h = opened(now="2026-01-02T00:00:00Z")
    assert dlq_code(h.cdr("2026-01-02T00:05:01Z", 60)) == "future_time"
    assert one(h.cdr("2026-01-02T00:05:00Z", 60), "rated-cdrs")


def test_too_late_is_more_than_35_days_behind_the_tenant_clock() -> None:
    h = opened()
    h.cdr("2026-03-01T00:00:00Z", 0)
    assert dlq_code(h.cdr("2026-01-24T23:59:59Z", 60)) == "too_late"
    assert one(h.cdr("2026-01-25T00:00:00Z", 60), "rated-cdrs")  # exactly 35 days


def test_a_duplicate_cdr_is_ignored_and_charges_nothing() -> None:
    h = opened()
    first = h.raw_cdr(b"acme", orjson.dumps(CDR))
    assert one(first, "rated-cdrs")
    assert h.raw_cdr(b"acme", orjson.dumps(CDR)) == []
    assert h.state().balance() == 10_000_000 - 24_000


def test_precedence_too_late_before_duplicate() -> None:
    h = opened()
    h.raw_cdr(b"acme", orjson.dumps(CDR))
    h.cdr("2026-03-01T00:00:00Z", 0)
    assert dlq_code(h.raw_cdr(b"acme", orjson.dumps(CDR))) == "too_late"


def test_ids_are_pruned_after_the_window() -> None:
    h = opened()
    h.raw_cdr(b"acme", orjson.dumps(CDR))
    assert "c:c1" in h.state().seen
    h.cdr("2026-03-01T00:00:00Z", 0)
    assert "c:c1" not in h.state().seen


def test_no_tariff_is_not_remembered_so_a_replay_is_rated_once() -> None:
    h = opened()
    message = orjson.dumps(CDR | {"destination": "+3312345678"})
    assert dlq_code(h.raw_cdr(b"acme", message)) == "no_tariff"
    h.tariff("FR", prefix="33", country="FR")
    assert one(h.raw_cdr(b"acme", message), "rated-cdrs")
    assert h.raw_cdr(b"acme", message) == []


@pytest.mark.parametrize(
    ("type_", "fields", "code"),
    [
        ("credits_purchased", {"amount": "0"}, "invalid_field"),
        ("credits_purchased", {"amount": 5}, "invalid_field"),
        ("credits_purchased", {"amount": "5", "currency": "USD"}, "currency_mismatch"),
        ("auto_recharge_configured", {"enabled": True, "trigger_balance": "1"}, "invalid_field"),
        ("auto_recharge_configured", {"enabled": "yes", "trigger_balance": "1"}, "invalid_field"),
        (
            "minute_pool_allocated",
            {"pool": "domestic", "month": "2026-13", "minutes": 1},
            "invalid_field",
        ),
        (
            "minute_pool_allocated",
            {"pool": "local", "month": "2026-01", "minutes": 1},
            "invalid_field",
        ),
        ("billing_model_changed", {"billing_model": "postpaid"}, "invalid_field"),
        ("topup_succeeded", {"request_id": "acme:topup:1", "amount": "5"}, "unknown_topup_request"),
        (
            "topup_succeeded",
            {"request_id": "acme:topup:1", "amount": "5", "currency": "USD"},
            "currency_mismatch",
        ),
        ("topup_failed", {"request_id": "other:topup:1", "reason": "x"}, "unknown_topup_request"),
        ("contact_changed", {"contact_email": "not an email"}, "invalid_field"),
        ("contact_changed", {"contact_email": "a@b..c"}, "invalid_field"),
        ("contact_changed", {"contact_email": "a@" + "b" * 250 + ".de"}, "invalid_field"),
        ("contact_changed", {"contact_email": "a@b.de", "language": "fr"}, "invalid_field"),
        ("contact_changed", {}, "invalid_field"),
        ("account_opened", {"currency": "USD"}, "currency_mismatch"),
        ("refund", {}, "invalid_field"),
    ],
)
def test_account_event_rejections(type_: str, fields: dict, code: str) -> None:
    h = opened()
    assert dlq_code(h.event(type_, "2026-01-03T00:00:00Z", **fields)) == code


def test_events_for_an_unknown_account_are_rejected() -> None:
    h = Harness()
    outputs = h.event("credits_purchased", "2026-01-01T00:00:00Z", tenant="ghost", amount="1")
    assert dlq_code(outputs) == "unknown_account"
    assert one(outputs, "rater-dlq")["tenant_id"] == "ghost"


def test_account_opened_is_never_too_late_but_other_events_are() -> None:
    h = opened()
    h.cdr("2026-06-01T00:00:00Z", 0)
    assert h.open("2026-01-01T00:00:00Z") == []
    late = h.event("credits_purchased", "2026-01-01T00:00:00Z", amount="1")
    assert dlq_code(late) == "too_late"


def test_a_duplicate_event_is_ignored() -> None:
    h = opened()
    body = {
        "type": "credits_purchased",
        "event_id": "p1",
        "tenant_id": "acme",
        "at": "2026-01-02T00:00:00Z",
        "amount": "1",
    }
    assert one(h.raw_event(b"acme", orjson.dumps(body)), "ledger")
    assert h.raw_event(b"acme", orjson.dumps(body)) == []
    assert on(h.raw_event(b"acme", orjson.dumps(body | {"currency": "USD"})), "rater-dlq")


@pytest.mark.parametrize(
    ("kind", "field"),
    [("contact_changed", "type"), ("contact_changed", "language"),
     ("billing_model_changed", "billing_model")],
)
def test_an_unhashable_value_where_a_name_is_expected_is_a_bad_field(kind: str, field: str) -> None:
    h = opened()
    body = {"type": kind, "event_id": "e9", "tenant_id": "acme", "at": "2026-01-02T00:00:00Z",
            "contact_email": "a@b.de", "language": "de", "billing_model": "nce"}
    assert dlq_code(h.raw_event(b"acme", orjson.dumps(body | {field: ["x"]}))) == "invalid_field"
