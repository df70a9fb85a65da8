"""The pure parts of `rater dlq replay`: decoding DLQ records, choosing, topic mapping."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiokafka import ConsumerRecord
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from rater.config import Settings
from rater.core.dlq_record import parse_entry, raw_bytes, text_and_encoding
from rater.core.dlq_record import record as dlq_output
from rater.core.processor import Processor
from rater.core.tariffs import TariffIndex
from rater.dlq.plan import (
    BEFORE_SINCE,
    REPEATED,
    RETRYABLE_CODES,
    TARIFF_ROW,
    UNREADABLE,
    Planner,
    Replay,
    Selection,
    Summary,
    choose,
    input_name,
    since_ms,
)
from rater.dlq.replay import dlq
from tests.support.harness import t

PREFIX = "p-"
SETTINGS = Settings(topic_prefix=PREFIX, partitions=4)
NOW = t("2040-01-01T00:00:00Z")
CDR = {
    "cdr_id": "c1",
    "tenant_id": "acme",
    "call_type": "outbound",
    "plan": "pay_as_you_go",
    "origin_country": "DE",
    "destination": "+33612345678",
    "started_at": "2026-01-02T00:00:00Z",
    "duration_s": 90,
}
TARIFF_FR = {
    "tariff_id": "FR",
    "call_type": "outbound",
    "prefix": "33",
    "country": "FR",
    "currency": "EUR",
    "rate_per_minute": "0.12",
    "effective_from": "2020-01-01T00:00:00Z",
}


def dlq_record(
    code: str,
    key: bytes | None = b"acme",
    value: bytes | None = b"{}",
    source: str = PREFIX + "cdrs",
    partition: int = 1,
    offset: int = 7,
) -> tuple[bytes | None, bytes]:
    """A DLQ record's Kafka key and value, built by the rater's own writer."""
    _, record_key, body = dlq_output(source, partition, offset, key, value, code, "why", None)
    return record_key, orjson.dumps(body)


# --- decoding key and value -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "raw"),
    [
        (None, None, None),
        ("", "utf-8", b""),
        ('{"a": 1}', "utf-8", b'{"a": 1}'),
        ("grüße", "utf-8", "grüße".encode()),
        # "tenant01" is also canonical base64 of non-UTF-8 bytes: the encoding decides
        ("tenant01", "utf-8", b"tenant01"),
        ("tenant01", "base64", base64.b64decode("tenant01")),
        ("/w==", "base64", b"\xff"),
        ("/w==", "utf-8", b"/w=="),
    ],
)
def test_raw_bytes(text: str | None, encoding: str | None, raw: bytes | None) -> None:
    assert raw_bytes(text, encoding) == raw


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(None, "utf-8"), ("a", None), ("a", "latin-1"), ("a", "UTF-8"), ("/w", "base64")],
)
def test_raw_bytes_refuses_what_the_writer_never_writes(
    text: str | None, encoding: str | None
) -> None:
    with pytest.raises(ValueError):
        raw_bytes(text, encoding)


@given(st.binary(max_size=64))
def test_the_writer_is_reversed_exactly(raw: bytes) -> None:
    text, encoding = text_and_encoding(raw)
    assert raw_bytes(text, encoding) == raw
    try:
        assert (text, encoding) == (raw.decode(), "utf-8")
    except UnicodeDecodeError:
        assert encoding == "base64"


@given(st.one_of(st.none(), st.binary(max_size=32)), st.one_of(st.none(), st.binary(max_size=64)))
def test_a_dlq_record_gives_back_the_key_and_value_it_rejected(
    key: bytes | None, value: bytes | None
) -> None:
    record_key, body = dlq_record("invalid_json", key=key, value=value)
    assert record_key == key
    entry = parse_entry(body)
    assert entry is not None
    assert (entry.key, entry.value) == (key, value)


# --- topic mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "prefix", "name"),
    [
        ("p-cdrs", "p-", "cdrs"),
        ("p-account-events", "p-", "account-events"),
        ("p-tariffs", "p-", "tariffs"),
        ("cdrs", "p-", "cdrs"),  # a spec name means this deployment's topic
        ("cdrs", "", "cdrs"),
        ("q-cdrs", "p-", None),  # another deployment's topic
        ("p-rated-cdrs", "p-", None),
        ("p-cdrs-x", "p-", None),
    ],
)
def test_input_name(source: str, prefix: str, name: str | None) -> None:
    assert input_name(source, prefix) == name


# --- choosing ---------------------------------------------------------------------------


def test_a_retryable_record_goes_back_to_its_prefixed_topic_and_partition() -> None:
    value = orjson.dumps(CDR)
    key, body = dlq_record("no_tariff", value=value, partition=3)
    assert choose(key, body, 0, Selection(), SETTINGS) == Replay(
        "p-cdrs", 3, b"acme", value, "no_tariff"
    )


def test_a_spec_topic_name_is_mapped_to_the_prefixed_one() -> None:
    key, body = dlq_record("unknown_account", source="account-events")
    replay = choose(key, body, 0, Selection(), SETTINGS)
    assert isinstance(replay, Replay)
    assert replay.topic == "p-account-events"


@pytest.mark.parametrize("code", ["invalid_json", "invalid_field", "key_mismatch", "too_late"])
def test_deterministic_codes_are_skipped_unless_named(code: str) -> None:
    key, body = dlq_record(code)
    assert choose(key, body, 0, Selection(), SETTINGS) == f"code {code} not selected"
    assert isinstance(choose(key, body, 0, Selection(frozenset({code})), SETTINGS), Replay)


def test_default_codes_are_the_retryable_ones() -> None:
    assert Selection().codes == frozenset(RETRYABLE_CODES)
    assert "no_tariff" in RETRYABLE_CODES
    assert "unknown_account" in RETRYABLE_CODES
    assert "invalid_json" not in RETRYABLE_CODES


def test_a_binary_key_and_value_come_back_byte_for_byte() -> None:
    key, body = dlq_record("invalid_json", key=b"\xfe\xff", value=b"\x80\x81\x00")
    assert orjson.loads(body)["value"] == base64.b64encode(b"\x80\x81\x00").decode()
    assert orjson.loads(body)["value_encoding"] == "base64"
    assert orjson.loads(body)["key_encoding"] == "base64"
    replay = choose(key, body, 0, Selection(frozenset({"invalid_json"})), SETTINGS)
    assert isinstance(replay, Replay)
    assert (replay.key, replay.value) == (b"\xfe\xff", b"\x80\x81\x00")


def test_a_missing_key_or_value_stays_missing() -> None:
    key, body = dlq_record("invalid_json", key=None, value=None)
    replay = choose(key, body, 0, Selection(frozenset({"invalid_json"})), SETTINGS)
    assert isinstance(replay, Replay)
    assert (replay.key, replay.value) == (None, None)


def test_tariff_rows_are_never_replayed() -> None:
    key, body = dlq_record("invalid_field", key=b"FR", source="p-tariffs")
    assert choose(key, body, 0, Selection(frozenset({"invalid_field"})), SETTINGS) == TARIFF_ROW


def test_records_before_since_are_skipped() -> None:
    key, body = dlq_record("no_tariff")
    selection = Selection(since_ms=1000)
    assert choose(key, body, 999, selection, SETTINGS) == BEFORE_SINCE
    assert isinstance(choose(key, body, 1000, selection, SETTINGS), Replay)


def test_another_deployments_topic_is_skipped() -> None:
    key, body = dlq_record("no_tariff", source="q-cdrs")
    assert choose(key, body, 0, Selection(), SETTINGS) == (
        "source topic q-cdrs is not an input of this rater"
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"not json",
        b"[]",
        b'{"source_topic": "p-cdrs", "partition": 0, "key": null, "value": null}',
        orjson.dumps(orjson.loads(dlq_record("no_tariff")[1]) | {"partition": -1}),
        orjson.dumps(orjson.loads(dlq_record("no_tariff")[1]) | {"value": 5}),
        orjson.dumps(orjson.loads(dlq_record("no_tariff")[1]) | {"error": "no_tariff"}),
        # the encodings are required: no guessing (SPEC 8)
        orjson.dumps(orjson.loads(dlq_record("no_tariff")[1]) | {"value_encoding": None}),
        orjson.dumps(orjson.loads(dlq_record("no_tariff")[1]) | {"key_encoding": "latin-1"}),
        orjson.dumps(
            orjson.loads(dlq_record("no_tariff")[1]) | {"value": "%%", "value_encoding": "base64"}
        ),
    ],
)
def test_unreadable_records_are_skipped(value: bytes | None) -> None:
    assert choose(b"acme", value, 0, Selection(), SETTINGS) == UNREADABLE


# --- planning a run ---------------------------------------------------------------------


def consumer_record(key: bytes | None, value: bytes, offset: int = 0) -> ConsumerRecord:
    return ConsumerRecord("p-rater-dlq", 0, offset, 0, 0, key, value, None, 0, 0, ())


def planner(selection: Selection | None = None) -> Planner:
    plan = Planner(selection or Selection(), SETTINGS, Summary("p-rater-dlq"))
    plan.partitions = {"p-cdrs": 4, "p-account-events": 4}
    return plan


def test_a_message_in_the_dlq_twice_is_sent_once_per_run() -> None:
    first = dlq_record("no_tariff", value=orjson.dumps(CDR), offset=7)
    again = dlq_record("no_tariff", value=orjson.dumps(CDR), offset=9)  # failed on replay
    other = dlq_record("no_tariff", value=orjson.dumps(CDR | {"cdr_id": "c2"}), offset=8)
    plan = planner()
    todo = plan.plan([consumer_record(*first), consumer_record(*other), consumer_record(*again)])
    assert [orjson.loads(r.value)["cdr_id"] for r in todo] == ["c1", "c2"]
    assert plan.summary.replayed == {"no_tariff": 2}
    assert plan.summary.skipped == {REPEATED: 1}
    assert plan.plan([consumer_record(*again)]) == []  # remembered across batches


def test_a_partition_the_topic_does_not_have_is_skipped() -> None:
    plan = planner()
    assert plan.plan([consumer_record(*dlq_record("no_tariff", partition=4))]) == []
    assert plan.summary.skipped == {"no partition 4 in p-cdrs": 1}


def test_summary_counts_every_record_read() -> None:
    plan = planner()
    plan.plan(
        [
            consumer_record(*dlq_record("no_tariff")),
            consumer_record(*dlq_record("unknown_account", source="p-account-events")),
            consumer_record(*dlq_record("invalid_json")),
            consumer_record(*dlq_record("invalid_field", source="p-tariffs")),
        ]
    )
    summary = plan.summary
    assert summary.read == 4
    assert summary.replayed == {"no_tariff": 1, "unknown_account": 1}
    assert summary.skipped == {"code invalid_json not selected": 1, TARIFF_ROW: 1}
    text = "\n".join(summary.lines())
    assert text.startswith("p-rater-dlq: 4 records read\nreplayed 2\n")
    assert "skipped 2" in text


def test_a_dry_run_summary_says_so() -> None:
    assert Summary("d", dry_run=True).lines()[1] == "would replay 0"


# --- the whole round trip through the core ----------------------------------------------


def test_a_replayed_no_tariff_cdr_is_rated_once_by_the_core() -> None:
    """The core never remembers a rejected id and ignores an applied one (SPEC 9)."""
    proc = Processor(TariffIndex())
    opened = {"type": "account_opened", "event_id": "e1", "tenant_id": "acme"}
    opened |= {"at": "2026-01-01T00:00:00Z", "currency": "EUR"}
    bought = opened | {"type": "credits_purchased", "event_id": "e2", "amount": "10"}
    for offset, event in enumerate((opened, bought)):
        proc.account_event(b"acme", orjson.dumps(event), "p-account-events", 1, offset, NOW)
    [(topic, key, body)] = proc.cdr(b"acme", orjson.dumps(CDR), "p-cdrs", 1, 5, NOW)
    assert (topic, body["error"]["code"]) == ("rater-dlq", "no_tariff")
    proc.tariff(b"FR", orjson.dumps(TARIFF_FR), "p-tariffs", 0, 0)

    replay = choose(key, orjson.dumps(body), 0, Selection(), SETTINGS)
    assert isinstance(replay, Replay)
    assert (replay.topic, replay.partition) == ("p-cdrs", 1)
    rated = proc.cdr(replay.key, replay.value, replay.topic, replay.partition, 6, NOW)
    assert [name for name, _, _ in rated] == ["rated-cdrs", "ledger"]
    assert rated[0][2]["tariff_id"] == "FR"
    assert rated[1][2]["balance_after"] == "9.760000"  # 120 s billed at 0.12 a minute
    assert proc.cdr(replay.key, replay.value, replay.topic, replay.partition, 7, NOW) == []


# --- command line (no broker needed) ----------------------------------------------------


def test_since_is_rounded_up_to_kafka_milliseconds() -> None:
    assert since_ms("1970-01-01T00:00:01Z") == 1000
    assert since_ms("1970-01-01T00:00:01.0001Z") == 1001
    assert since_ms("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(ValueError, match="RFC 3339"):
        since_ms("yesterday")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-13-01"], "RFC 3339"),
        (["--code", "bogus"], "'bogus' is not one of"),
    ],
)
def test_bad_options_are_refused_before_connecting(args: list[str], message: str) -> None:
    result = CliRunner().invoke(dlq, ["replay", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
