"""Hostile bytes on every input topic (SPEC 2, 9; RFC 8259): one DLQ record each, nothing else.

Whatever a producer sends (not JSON, JSON that RFC 8259 forbids, nesting
deeper than the parser allows, invalid UTF-8 in the value or the key, a
tombstone, an empty value, huge strings and numbers, wrong types, wrong
keys), the core answers with exactly one ``rater-dlq`` record carrying the
code SPEC 9 gives, its raw key and value recoverable from the record, and no
state changes; it never raises, so the shell never has to call it an
``internal_error``. Valid messages sent between them are still rated.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rater.core.dlq_record import parse_entry
from rater.core.errors import CODES, INTERNAL_ERROR, Rejected
from rater.core.messages import decode_cdr, decode_cdr_strictly
from tests.support.harness import Harness, on

CDR = {
    "cdr_id": "c-1",
    "tenant_id": "acme",
    "call_type": "outbound",
    "plan": "pay_as_you_go",
    "origin_country": "DE",
    "destination": "+4930123456",
    "started_at": "2026-01-02T00:00:00Z",
    "duration_s": 60,
}
EVENT = {
    "type": "credits_purchased",
    "event_id": "e-9",
    "tenant_id": "acme",
    "at": "2026-01-02T00:00:00Z",
    "amount": "1",
}
TARIFF = {
    "tariff_id": "T2",
    "call_type": "outbound",
    "prefix": "33",
    "country": "FR",
    "currency": "EUR",
    "rate_per_minute": "0.1",
    "effective_from": "2020-01-01T00:00:00Z",
}
BIG = "x" * 200_000  # 200 kB
DEEP = b"[" * 2_000 + b"]" * 2_000  # orjson allows 1,024 levels


def opened() -> Harness:
    h = Harness()
    h.tariff("T1")
    h.open()
    h.event("credits_purchased", "2026-01-01T00:00:00Z", amount="10")
    return h


def send(h: Harness, topic: str, key: bytes | None, value: bytes | None) -> list:
    if topic == "cdrs":
        return h.raw_cdr(key, value)
    if topic == "account-events":
        return h.raw_event(key, value)
    return h.raw_tariff(key, value)


def rejected_once(h: Harness, topic: str, key: bytes | None, value: bytes | None) -> str:
    """Send one message; it must give one DLQ record that keeps its bytes, and change nothing."""
    before = (h.state().balance(), h.state().clock, len(h.proc.tariffs))
    outputs = send(h, topic, key, value)
    assert [name for name, _, _ in outputs] == ["rater-dlq"], outputs
    _, record_key, record = outputs[0]
    assert record_key == key
    entry = parse_entry(orjson.dumps(record))  # written as JSON the replay tool reads back
    assert entry is not None and (entry.key, entry.value) == (key, value)
    assert (h.state().balance(), h.state().clock, len(h.proc.tariffs)) == before
    code = record["error"]["code"]
    assert code in CODES and code != INTERNAL_ERROR
    return code


def with_field(base: dict, name: str, raw: bytes) -> bytes:
    """``base`` as JSON with field ``name`` holding the raw JSON text ``raw``."""
    body = orjson.dumps({k: v for k, v in base.items() if k != name})
    return body[:-1] + b',"' + name.encode() + b'":' + raw + b"}"


# --- the cases the issue names ----------------------------------------------------------

TOPICS = [("cdrs", CDR, b"acme"), ("account-events", EVENT, b"acme"), ("tariffs", TARIFF, b"T2")]
NOT_JSON = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"",
    b" ",
    b"\xef\xbb\xbf{}",  # a byte order mark
    b"\xff\xfe\x00",
    b"{",
    b"[]",
    b'"text"',
    b"null",
    DEEP,
    b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
]


@pytest.mark.parametrize(("topic", "base", "key"), TOPICS)
@pytest.mark.parametrize("value", NOT_JSON, ids=lambda v: repr(v[:12]))
def test_what_is_no_json_object_is_invalid_json(
    topic: str, base: dict, key: bytes, value: bytes
) -> None:
    assert rejected_once(opened(), topic, key, value) == "invalid_json"


@pytest.mark.parametrize(("topic", "base", "key"), TOPICS)
@pytest.mark.parametrize(
    "raw",
    [b"NaN", b"Infinity", b"-Infinity", b"1e400", b'"\xff"', b'"\\ud800"', b'"\xed\xa0\x80"'],
    ids=lambda v: repr(v),
)
def test_json_rfc_8259_forbids_anywhere_in_an_object_is_invalid_json(
    topic: str, base: dict, key: bytes, raw: bytes
) -> None:
    for name in (next(iter(base)), "unknown_extra"):  # a field that counts, and one ignored
        assert rejected_once(opened(), topic, key, with_field(base, name, raw)) == "invalid_json"


@pytest.mark.parametrize(("topic", "base", "key"), TOPICS[:2])
def test_a_tombstone_on_an_input_topic_is_invalid_json(topic: str, base: dict, key: bytes) -> None:
    assert rejected_once(opened(), topic, key, None) == "invalid_json"


@pytest.mark.parametrize("key", [None, b"", b"\xff\xfe", b"x" * 129])
def test_a_tariff_tombstone_whose_key_names_no_row_is_rejected(key: bytes | None) -> None:
    assert rejected_once(opened(), "tariffs", key, None) == "key_mismatch"


def test_a_tariff_tombstone_deletes_its_row() -> None:
    h = opened()
    assert h.raw_tariff(b"T1", None) == []
    assert len(h.proc.tariffs) == 0


@pytest.mark.parametrize(("topic", "base", "key"), TOPICS)
@pytest.mark.parametrize("bad_key", [None, b"", b"\xff", b"\xc0\x80", b"x" * 200_000])
def test_a_key_that_is_not_the_id_is_key_mismatch(
    topic: str, base: dict, key: bytes, bad_key: bytes | None
) -> None:
    assert rejected_once(opened(), topic, bad_key, orjson.dumps(base)) == "key_mismatch"


@pytest.mark.parametrize(("topic", "base", "key"), TOPICS)
def test_200_kb_strings_in_checked_fields_are_invalid_fields(
    topic: str, base: dict, key: bytes
) -> None:
    for name in base:
        code = rejected_once(opened(), topic, key, orjson.dumps(base | {name: BIG}))
        assert code == "invalid_field", name


def test_a_200_kb_string_in_a_field_the_spec_does_not_name_is_ignored() -> None:
    h = opened()
    outputs = h.raw_cdr(b"acme", orjson.dumps(CDR | {"codec": BIG, "user_id": BIG}))
    assert len(on(outputs, "rated-cdrs")) == 1


# --- generated: anything at all, and valid messages with one field made hostile ---------

HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from([BIG, "9" * 5_000, "1" * 16, "0.0000001", "-1", "+4", "2026-13-01T00:00:00Z",
                     "2026-01-02T00:00:00." + "9" * 10_000 + "Z", "\x00", "\ud7ff", "\u2028"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=50),
)


def dumps(body: dict) -> bytes:
    """JSON of ``body`` as any producer may write it: integers of any size, too."""
    return json.dumps(body, ensure_ascii=False).encode()


def outcome(h: Harness, topic: str, key: bytes | None, value: bytes | None) -> list:
    before = (h.state().balance(), h.state().clock)
    outputs = send(h, topic, key, value)
    names = [name for name, _, _ in outputs]
    if "rater-dlq" in names:
        assert names == ["rater-dlq"]
        code = outputs[0][2]["error"]["code"]
        assert code in CODES and code != INTERNAL_ERROR
        assert (h.state().balance(), h.state().clock) == before
        entry = parse_entry(orjson.dumps(outputs[0][2]))
        assert entry is not None and (entry.key, entry.value) == (key, value)
    return outputs


@given(
    st.sampled_from(["cdrs", "account-events", "tariffs"]),
    st.one_of(st.none(), st.binary(max_size=12), st.sampled_from([b"acme", b"T2"])),
    st.one_of(st.none(), st.binary(max_size=64)),
)
def test_any_bytes_give_one_dlq_record_or_a_valid_result(
    topic: str, key: bytes | None, value: bytes | None
) -> None:
    outcome(opened(), topic, key, value)


@given(
    st.sampled_from(TOPICS),
    st.dictionaries(st.sampled_from(sorted(set(CDR) | set(EVENT) | set(TARIFF) | {"x"})),
                    HOSTILE_VALUES, min_size=1, max_size=3),
    st.sets(st.sampled_from(sorted(set(CDR) | set(EVENT) | set(TARIFF))), max_size=2),
    st.sampled_from([None, b"acme", b"T2", b"\xff", b""]),
)
def test_valid_messages_with_hostile_fields_are_rejected_with_a_code_or_rated(
    case: tuple, changes: dict, removed: set, key: bytes | None
) -> None:
    topic, base, _ = case
    body = {name: value for name, value in (base | changes).items() if name not in removed}
    h = opened()
    outputs = outcome(h, topic, key, dumps(body))
    if topic == "cdrs" and outputs and outputs[0][0] != "rater-dlq":
        # accepted: then the fast decoder and the field-by-field one agree it is valid
        assert decode_cdr(key, dumps(body)).cdr_id == body["cdr_id"]
    # a valid CDR sent after any of it is still rated
    assert on(h.cdr("2026-01-03T00:00:00Z", 60), "rated-cdrs")


@given(st.dictionaries(st.sampled_from(sorted(CDR)), HOSTILE_VALUES, min_size=1, max_size=3),
       st.sampled_from([b"acme", None, b"\xff"]))
def test_the_fast_cdr_decoder_agrees_with_the_strict_one_on_hostile_fields(
    changes: dict, key: bytes | None
) -> None:
    value = dumps(CDR | changes)

    def judge(decode: Any) -> tuple:
        try:
            cdr = decode(key, value)
        except Rejected as rejected:
            return ("rejected", rejected.code, rejected.message)
        return ("cdr", *(getattr(cdr, name) for name in type(cdr).__slots__))

    assert judge(decode_cdr) == judge(decode_cdr_strictly)
