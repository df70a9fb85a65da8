"""Properties of the billing core over random event sequences (SPEC 5 to 9).

A scenario opens one to three tenants, then plays a random list of steps:
purchases, auto-recharge settings, billing-model switches, minute pools, answers
to the top-up requests the core emitted (plus unknown and repeated ones),
contact changes, CDRs of every call type, sweeps, resends of earlier messages
and broken messages. The wall clock mostly creeps forward, sometimes jumps
months ahead (lots expire) and events are sometimes late or from the future.

After every step the invariants of SPEC 6 and 8 are checked; after the whole
scenario a prefix is played a second time, which must change nothing.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from rater.core.clock import DAY, SECOND, format_time, month_of, parse_time
from rater.core.codec import decode_state, encode_state
from rater.core.money import parse_money
from rater.core.processor import Processor
from rater.core.state import ID_WINDOW
from rater.core.tariffs import TariffIndex
from rater.core.topics import ACCOUNT_EVENTS, CDRS, OUTPUT_TOPICS, TARIFFS
from tests.support import messages as m

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"
VALIDATORS = {
    topic: Draft202012Validator(json.loads((SCHEMA_DIR / f"{topic}.json").read_text("utf-8")))
    for topic in OUTPUT_TOPICS
}
ID_FIELD = {
    "rated-cdrs": "cdr_id",
    "ledger": "entry_id",
    "topup-requests": "request_id",
    "overage": "overage_id",
    "notifications": "notification_id",
    "service-state": "state_id",
    "rater-dlq": "dlq_id",
}
MONEY_FIELDS = frozenset(
    {
        "amount",
        "balance",
        "balance_after",
        "trigger_balance",
        "paid_from_credits",
        "paid_from_deficit",
        "overage_amount",
    }
)
MONEY_TEXT = re.compile(r"-?[0-9]+\.[0-9]{6}")
# A rejection whose verdict depends on state that later events change: replaying such a
# message against the final state may legitimately apply it, so the replay skips them.
STATE_DEPENDENT = frozenset(
    {"purchase_not_allowed_for_nce", "auto_recharge_not_allowed_for_nce", "unknown_topup_request"}
)

T0 = parse_time("2025-01-15T09:00:00Z")
TENANTS = (("t1", "EUR"), ("t2", "EUR"), ("t3", "USD"))
TARIFF_ROWS = [
    {"tariff_id": "out-de", "prefix": "49", "country": "DE", "rate_per_minute": "0.024"},
    # same prefix, later start: wins from July 2025 on
    {
        "tariff_id": "out-de-h2",
        "prefix": "49",
        "country": "DE",
        "rate_per_minute": "0.0199",
        "effective_from": "2025-07-01T00:00:00Z",
    },
    {
        "tariff_id": "out-de-mob",
        "prefix": "4917",
        "country": "DE",
        "rate_per_minute": "0.1",
        "connection_fee": "0.01",
        "first_increment_s": 1,
        "increment_s": 1,
    },
    {
        "tariff_id": "out-us",
        "prefix": "1",
        "country": "US",
        "rate_per_minute": "0.01",
        "first_increment_s": 6,
        "increment_s": 6,
    },
    {
        "tariff_id": "out-us-usd",
        "prefix": "1",
        "country": "US",
        "currency": "USD",
        "rate_per_minute": "0.009",
    },
    # ends: after 2026 only GB mobiles have an outbound tariff
    {
        "tariff_id": "out-gb",
        "prefix": "44",
        "country": "GB",
        "rate_per_minute": "0.02",
        "first_increment_s": 30,
        "increment_s": 6,
        "effective_to": "2026-01-01T00:00:00Z",
    },
    {
        "tariff_id": "out-gb-mob",
        "prefix": "447",
        "country": "GB",
        "rate_per_minute": "0.15",
        "connection_fee": "0.05",
        "increment_s": 1,
    },
    {
        "tariff_id": "dial-de",
        "call_type": "conference_dialout",
        "prefix": "49",
        "country": "DE",
        "rate_per_minute": "0.03",
    },
    {
        "tariff_id": "dial-gb-mob",
        "call_type": "conference_dialout",
        "prefix": "447",
        "country": "GB",
        "rate_per_minute": "0.2",
        "connection_fee": "0.1",
        "first_increment_s": 30,
        "increment_s": 30,
    },
    {
        "tariff_id": "dial-us-usd",
        "call_type": "conference_dialout",
        "prefix": "1",
        "country": "US",
        "currency": "USD",
        "rate_per_minute": "0.011",
    },
    {
        "tariff_id": "tf-de",
        "call_type": "conference_tollfree_dialin",
        "prefix": "49800",
        "country": "DE",
        "rate_per_minute": "0.045",
        "first_increment_s": 1,
        "increment_s": 1,
    },
    {
        "tariff_id": "tf-us",
        "call_type": "conference_tollfree_dialin",
        "prefix": "1800",
        "country": "US",
        "currency": "USD",
        "rate_per_minute": "0.0333",
        "connection_fee": "0.002",
    },
]
DE, DE_MOBILE, DE_FREE = "+4930123456", "+4917012345678", "+4980012345"
US, US_FREE, GB, GB_MOBILE = "+12125550100", "+18005550100", "+442071234567", "+447700900123"
FR = "+33123456789"  # no tariff for any call type
DESTINATIONS = {  # mostly destinations with a tariff for the call type, some without
    "outbound": (DE, DE_MOBILE, US, GB, GB_MOBILE, FR),
    "conference_dialout": (DE, DE_MOBILE, GB_MOBILE, US, FR),
    "conference_tollfree_dialin": (DE_FREE, DE_FREE, US_FREE, DE),
}
CALL_TYPES = ("outbound", "outbound", "conference_dialout", "conference_tollfree_dialin")
PLANS = ("domestic", "domestic_international", "pay_as_you_go")
EMAILS = ("ops@example.com", "billing@acme.example.org", "x@y.de")


def _tariff_index() -> TariffIndex:
    proc = Processor(TariffIndex())
    for offset, row in enumerate(TARIFF_ROWS):
        assert proc.tariff(*m.tariff(**row), TARIFFS, 0, offset) == []
    return proc.tariffs


INDEX = _tariff_index()
ROWS = [(row, INDEX.get(row["tariff_id"])) for row in TARIFF_ROWS]


def reference_tariff(call_type: str, currency: str, digits: str, at: int) -> str | None:
    """SPEC 5.1 by brute force: longest prefix, then latest start, then smallest id."""
    live = [
        row
        for _, row in ROWS
        if row.call_type == call_type
        and row.currency == currency
        and digits.startswith(row.prefix)
        and row.effective_from <= at
        and (row.effective_to is None or at < row.effective_to)
    ]
    if not live:
        return None
    best = min(live, key=lambda r: (-len(r.prefix), -r.effective_from, r.tariff_id))
    return best.tariff_id


def money_text(micros: int) -> str:
    """Wire money with 0 to 6 fractional digits, as a sender may write it."""
    whole, frac = divmod(micros, 1_000_000)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------- strategies


def _advance(dice: int, small: int, days: int) -> int:
    return days * DAY if dice >= 95 else small * SECOND


ADVANCE = st.builds(
    _advance,
    st.integers(0, 99),
    st.integers(0, 6 * 3600),
    # months: some land in the 30 days before a 12-month expiry, some beyond it
    st.one_of(st.integers(20, 400), st.sampled_from([31, 92, 300, 336, 350, 366])),
)


def _lateness(dice: int, small: int, days: int, future: int) -> int:
    if dice < 80:
        return 0
    if dice < 92:
        return small * SECOND  # slightly late
    if dice < 96:
        return days * DAY  # likely too late
    return -future * SECOND  # beyond the 5-minute tolerance


LATENESS = st.builds(
    _lateness,
    st.integers(0, 99),
    st.integers(1, 2 * 86400),
    st.integers(30, 60),
    st.integers(301, 3600),
)
MICROS = st.integers(1, 60_000_000)
KINDS = (
    ["cdr"] * 8
    + ["purchase"] * 3
    + ["topup"] * 3
    + ["autorecharge"] * 2
    + ["model", "pool", "pool", "contact", "reopen", "sweep", "resend", "resend", "invalid"]
)


@st.composite
def step(draw: st.DrawFn, tenants: int) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(KINDS))
    t = draw(st.integers(0, tenants - 1))
    timing = (draw(ADVANCE), draw(LATENESS))
    if kind == "cdr":
        call_type = draw(st.sampled_from(CALL_TYPES))
        duration = draw(st.one_of(st.sampled_from([0, 1, 6, 30, 59, 60, 61]), st.integers(0, 4000)))
        return (
            kind,
            t,
            timing,
            call_type,
            draw(st.sampled_from(PLANS)),
            draw(st.sampled_from(["DE", "DE", "US", "GB"])),
            draw(st.sampled_from(DESTINATIONS[call_type])),
            duration,
        )
    if kind == "purchase":
        return kind, t, timing, draw(MICROS)
    if kind == "topup":
        return kind, t, timing, draw(st.booleans()), draw(st.integers(0, 9)), draw(MICROS)
    if kind == "autorecharge":
        enabled = draw(st.booleans())
        return kind, t, timing, enabled, draw(st.integers(0, 10_000_000)), draw(MICROS)
    if kind == "model":
        return kind, t, timing, draw(st.sampled_from(["prepaid", "nce"]))
    if kind == "pool":
        pool = draw(st.sampled_from(["domestic", "international"]))
        return kind, t, timing, pool, draw(st.sampled_from([0, 0, -1, 1])), draw(st.integers(0, 30))
    if kind == "contact":
        return kind, t, timing, draw(st.sampled_from(EMAILS)), draw(st.sampled_from(["en", "de"]))
    if kind == "resend":
        return kind, t, timing, draw(st.integers(0, 10_000))
    if kind == "invalid":
        return kind, t, timing, draw(st.integers(0, len(INVALID) - 1))
    return kind, t, timing  # reopen, sweep


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list, list, int]:
    count = draw(st.integers(1, 3))
    opens = [
        (TENANTS[i], draw(st.sampled_from(["prepaid"] * 3 + ["nce"])), draw(st.booleans()))
        for i in range(count)
    ]
    length = draw(st.integers(1, 80))  # shrinks towards short sequences
    steps = draw(st.lists(step(count), min_size=length, max_size=length))
    return opens, steps, draw(st.integers(0, 100))


# --------------------------------------------------------------------------- broken input

INVALID: list[Any] = [
    lambda t, i, at: (CDRS, t.encode(), b"{not json"),
    lambda t, i, at: (ACCOUNT_EVENTS, t.encode(), b"[1, 2]"),
    lambda t, i, at: (CDRS, t.encode(), b"\xff\xfe\x00 not utf-8"),
    lambda t, i, at: (CDRS, t.encode(), None),
    lambda t, i, at: (CDRS, *m.cdr(f"c{i}", t, started_at=at, duration_s=m.DROP)),
    lambda t, i, at: (CDRS, *m.cdr(f"c{i}", t, started_at=at, key=b"someone-else")),
    lambda t, i, at: (CDRS, *m.cdr(f"c{i}", "t9", started_at=at)),  # never opened
    lambda t, i, at: (ACCOUNT_EVENTS, *m.credits_purchased(5, tenant=t, event_id=f"e{i}", at=at)),
    lambda t, i, at: (
        ACCOUNT_EVENTS,
        *m.credits_purchased("1.0000001", tenant=t, event_id=f"e{i}", at=at),
    ),
    lambda t, i, at: (
        ACCOUNT_EVENTS,
        *m.credits_purchased("3", currency="GBP", tenant=t, event_id=f"e{i}", at=at),
    ),
    lambda t, i, at: (ACCOUNT_EVENTS, *m.account_opened("JPY", tenant=t, event_id=f"e{i}", at=at)),
    lambda t, i, at: (CDRS, *m.cdr(f"c{i}", t, started_at=at, duration_s=86_401)),
    lambda t, i, at: (
        ACCOUNT_EVENTS,
        *m.contact_changed("not an email", tenant=t, event_id=f"e{i}", at=at),
    ),
    lambda t, i, at: (
        ACCOUNT_EVENTS,
        *m.topup_failed(f"{t}:topup:1", reason=m.DROP, tenant=t, event_id=f"e{i}", at=at),
    ),
    lambda t, i, at: (CDRS, *m.cdr(f"c{i}", t, destination="+12345", started_at=at)),
    lambda t, i, at: (
        ACCOUNT_EVENTS,
        *m.auto_recharge_configured(True, "1", "0", tenant=t, event_id=f"e{i}", at=at),
    ),
    lambda t, i, at: (
        ACCOUNT_EVENTS,
        *m.topup_succeeded(f"{t}:topup:1", "2", currency="XXX", tenant=t, event_id=f"e{i}", at=at),
    ),
]


# -------------------------------------------------------------------------------- the run


def message_time(value: bytes) -> int:
    obj = orjson.loads(value)
    return parse_time(obj.get("started_at", obj.get("at")))


class Entry:
    """One message (or sweep) of the first pass, with what it produced."""

    __slots__ = ("code", "key", "now", "offset", "outputs", "topic", "value")

    def __init__(self, topic, key, value, offset, now, outputs) -> None:
        self.topic, self.key, self.value = topic, key, value
        self.offset, self.now, self.outputs = offset, now, outputs
        dlq = [v for t, _, v in outputs if t == "rater-dlq"]
        self.code = dlq[0]["error"]["code"] if dlq else None


class Run:
    def __init__(self) -> None:
        self.proc = Processor(INDEX)
        # the twin's states go through encode_state/decode_state after every step
        self.twin = Processor(INDEX)
        self.now = T0
        self.serial = 0
        self.offsets = {CDRS: 0, ACCOUNT_EVENTS: 0}
        self.log: list[Entry] = []
        self.ids: set[tuple[str, str | None, str]] = set()
        self.ledger_sum: dict[str, int] = defaultdict(int)
        self.requests: dict[str, list[str]] = defaultdict(list)
        self.pending: dict[str, str | None] = defaultdict(lambda: None)
        self.encoded: dict[str, bytes] = {}

    # --- feeding

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> list:
        offset = self.offsets[topic]
        self.offsets[topic] += 1
        handler = self.proc.cdr if topic == CDRS else self.proc.account_event
        twin = self.twin.cdr if topic == CDRS else self.twin.account_event
        note(f"{topic}@{offset} now={format_time(self.now)} key={key!r} value={value!r}")
        outputs = handler(key, value, topic, 0, offset, self.now)
        assert twin(key, value, topic, 0, offset, self.now) == outputs, "decoded state differs"
        entry = Entry(topic, key, value, offset, self.now, outputs)
        self.after_step(outputs, entry)
        self.log.append(entry)
        return outputs

    def sweep(self, tenant: str) -> None:
        note(f"sweep {tenant} now={format_time(self.now)}")
        outputs = self.proc.sweep(tenant, self.now)
        assert self.twin.sweep(tenant, self.now) == outputs, "decoded state differs"
        self.after_step(outputs, None)
        self.log.append(Entry("sweep", tenant.encode(), None, None, self.now, outputs))

    # --- checks after every step

    def after_step(self, outputs: list, entry: Entry | None) -> None:
        before = dict(self.encoded)
        for topic, key, value in outputs:
            self.check_output(topic, key, value, entry)
        if entry is not None and entry.code is not None:
            assert len(outputs) == 1, f"a rejected message has other outputs: {outputs}"
        for tenant, state in self.proc.states.items():
            data = encode_state(state)
            decoded = decode_state(data)
            assert encode_state(decoded) == data, "encode(decode(state)) differs"
            self.twin.states[tenant] = decoded
            self.encoded[tenant] = data
            self.check_state(tenant, state)
        if entry is not None and entry.code is not None:
            assert self.encoded == before, f"rejected message changed state ({entry.code})"
        if entry is not None and entry.topic == CDRS and entry.code is None and outputs:
            rated = [v for t, _, v in outputs if t == "rated-cdrs"]
            assert len(rated) == 1
            self.check_rating(rated[0], orjson.loads(entry.value))

    def check_output(self, topic: str, key: bytes | None, value: dict, entry) -> None:
        errors = list(VALIDATORS[topic].iter_errors(value))
        assert not errors, f"{topic} output breaks its schema: {errors[0].message}: {value}"
        check_money(value)
        tenant = value["tenant_id"]
        ident = (topic, tenant, value[ID_FIELD[topic]])
        assert ident not in self.ids, f"output id emitted twice: {ident}"
        self.ids.add(ident)
        if topic == "rater-dlq":
            assert value["offset"] == entry.offset and value["source_topic"] == entry.topic
            assert key == entry.key
            return
        assert key == tenant.encode()
        state = self.proc.states[tenant]
        if topic == "ledger":
            amount = parse_signed(value["amount"])
            assert amount != 0, value
            self.ledger_sum[tenant] += amount
            assert parse_signed(value["balance_after"]) == self.ledger_sum[tenant], (
                f"balance_after is not the running sum of ledger amounts: {value}"
            )
        elif topic == "topup-requests":
            assert self.pending[tenant] is None, (
                f"second top-up request {value['request_id']} while "
                f"{self.pending[tenant]} has no result"
            )
            n = len(self.requests[tenant]) + 1
            assert value["request_id"] == f"{tenant}:topup:{n}"
            assert parse_money(value["amount"]) == state.ar_amount
            assert parse_signed(value["balance"]) <= parse_money(value["trigger_balance"])
            self.requests[tenant].append(value["request_id"])
            self.pending[tenant] = value["request_id"]
        elif topic == "notifications" and value["type"].startswith("auto_recharge_"):
            ref = value["notification_id"].split(":", 1)[1]
            assert ref == self.pending[tenant], f"result for {ref}, pending {self.pending[tenant]}"
            self.pending[tenant] = None
        elif topic == "service-state":
            assert value["blocked"] == (parse_signed(value["balance"]) < 0)

    def check_state(self, tenant: str, state) -> None:
        balance = state.balance()
        assert self.ledger_sum[tenant] == balance, (
            f"{tenant}: ledger sum {self.ledger_sum[tenant]} != balance {balance}"
        )
        assert state.deficit >= 0
        assert all(lot.remaining >= 0 for lot in state.lots), "a lot went below zero"
        if state.billing_model == "nce" and not state.ar_enabled:
            assert balance >= 0, f"{tenant}: post-usage NCE tenant has balance {balance}"
        assert state.blocked == (balance < 0 and not state.post_usage_active)

    def check_rating(self, rated: dict, cdr: dict) -> None:
        digits = cdr["destination"][1:]
        currency = rated["currency"]
        started = parse_time(cdr["started_at"])
        assert rated["tariff_id"] == reference_tariff(cdr["call_type"], currency, digits, started)
        row = INDEX.get(rated["tariff_id"])
        duration, first, step = cdr["duration_s"], row.first_increment_s, row.increment_s
        billed = 0 if duration == 0 else first + max(0, -(-(duration - first) // step)) * step
        assert rated["billed_s"] == billed == rated["pool_s"] + rated["chargeable_s"]
        chargeable = rated["chargeable_s"]
        expected = 0
        if chargeable:
            exact = Decimal(row.rate_per_minute) * chargeable / 60  # micro-units
            expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
            expected += row.connection_fee
        amount = parse_money(rated["amount"])
        assert amount == expected, f"amount {amount} != {expected}: {rated}"
        paid = (
            parse_money(rated["paid_from_credits"])
            + parse_money(rated["paid_from_deficit"])
            + parse_money(rated["overage_amount"])
        )
        assert paid == amount, rated
        state = self.proc.states[rated["tenant_id"]]
        assert parse_signed(rated["balance_after"]) == state.balance()

    # --- the second pass

    def no_effect(self, entry: Entry, outputs: list, what: str) -> None:
        """What a message already seen may produce when played again: nothing new."""
        if entry.topic == "sweep":
            assert outputs == [], f"{what}: a sweep at the same wall clock did something"
            return
        if entry.code is None and outputs == []:
            return
        assert len(outputs) == 1 and outputs[0][0] == "rater-dlq", (
            f"{what}: a message played again produced {outputs} (first time: {entry.outputs})"
        )
        dlq = outputs[0][2]
        if entry.code is not None:
            first = next(v for t, _, v in entry.outputs if t == "rater-dlq")
            assert dlq["dlq_id"] == first["dlq_id"]
            if dlq == first:
                return
        assert dlq["error"]["code"] == "too_late", f"{what}: {dlq} (first: {entry.outputs})"
        clock = self.proc.states[dlq["tenant_id"]].clock
        assert message_time(entry.value) < clock - ID_WINDOW

    def replay(self, entry: Entry) -> list:
        if entry.topic == "sweep":
            return self.proc.sweep(entry.key.decode(), entry.now)
        handler = self.proc.cdr if entry.topic == CDRS else self.proc.account_event
        return handler(entry.key, entry.value, entry.topic, 0, entry.offset, entry.now)


def check_money(value: Any) -> None:
    for name, item in value.items():
        if isinstance(item, dict):
            check_money(item)
        elif name in MONEY_FIELDS:
            assert type(item) is str and MONEY_TEXT.fullmatch(item), f"{name}={item!r}"


def parse_signed(text: str) -> int:
    return -parse_money(text[1:]) if text.startswith("-") else parse_money(text)


def play(run: Run, st_: tuple[Any, ...], opened: list[tuple[str, str]]) -> None:
    kind, t, (advance, late) = st_[0], st_[1], st_[2]
    tenant, currency = opened[t]
    run.now += advance
    at = run.now - late
    ev = {"tenant": tenant, "at": at}
    if kind == "cdr":
        call_type, plan, origin, destination, duration = st_[3:]
        key, value = m.cdr(
            run.next_id("c"),
            tenant,
            call_type,
            destination,
            at,
            duration,
            origin_country=origin,
            plan=plan if call_type == "outbound" else m.DROP,
        )
        run.send(CDRS, key, value)
    elif kind == "purchase":
        msg = m.credits_purchased(money_text(st_[3]), event_id=run.next_id("e"), **ev)
        run.send(ACCOUNT_EVENTS, *msg)
    elif kind == "topup":
        success, which, amount = st_[3:]
        issued = run.requests[tenant]
        if issued and which < 6:
            request_id = issued[-1]  # the latest: pending, or answered already
        elif issued and which < 8:
            request_id = issued[which % len(issued)]  # most likely a repeated result
        else:
            request_id = (
                f"{tenant}:topup:{len(issued) + 1}",  # not issued yet
                f"{tenant}:topup:0",
                f"{tenant}:topup:01",
                "zz:topup:1",
            )[which % 4]
        if success:
            msg = m.topup_succeeded(request_id, money_text(amount), event_id=run.next_id("e"), **ev)
        else:
            msg = m.topup_failed(request_id, "card_expired", event_id=run.next_id("e"), **ev)
        run.send(ACCOUNT_EVENTS, *msg)
    elif kind == "autorecharge":
        enabled, trigger, amount = st_[3:]
        recharge = money_text(amount) if enabled or amount % 2 else m.DROP
        msg = m.auto_recharge_configured(
            enabled, money_text(trigger), recharge, event_id=run.next_id("e"), **ev
        )
        run.send(ACCOUNT_EVENTS, *msg)
    elif kind == "model":
        run.send(ACCOUNT_EVENTS, *m.billing_model_changed(st_[3], event_id=run.next_id("e"), **ev))
    elif kind == "pool":
        pool, shift, minutes = st_[3:]
        year, month = map(int, month_of(at).split("-"))
        index = year * 12 + month - 1 + shift
        month_text = f"{index // 12:04d}-{index % 12 + 1:02d}"
        msg = m.minute_pool_allocated(pool, month_text, minutes, event_id=run.next_id("e"), **ev)
        run.send(ACCOUNT_EVENTS, *msg)
    elif kind == "contact":
        email, language = st_[3:]
        msg = m.contact_changed(email, language=language, event_id=run.next_id("e"), **ev)
        run.send(ACCOUNT_EVENTS, *msg)
    elif kind == "reopen":
        # opening again with the same currency changes nothing (SPEC 7), whatever it says
        msg = m.account_opened(currency, billing_model="nce", event_id=run.next_id("e"), **ev)
        outputs = run.send(ACCOUNT_EVENTS, *msg)
        assert outputs == [] or run.log[-1].code == "future_time", outputs
    elif kind == "sweep":
        run.sweep(tenant)
    elif kind == "resend":
        sent = [entry for entry in run.log if entry.topic != "sweep"]
        if sent:
            earlier = sent[st_[3] % len(sent)]
            outputs = run.send(earlier.topic, earlier.key, earlier.value)
            if earlier.code is None:
                run.no_effect(earlier, outputs, "resend of an applied message")
    else:
        topic, key, value = INVALID[st_[3]](tenant, run.next_id("x"), at)
        outputs = run.send(topic, key, value)
        assert [t for t, _, _ in outputs] == ["rater-dlq"], outputs


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_random_sequences_keep_the_invariants(scenario) -> None:
    opens, steps, replay_percent = scenario
    run = Run()
    opened = []
    for (tenant, currency), model, contact in opens:
        over = {"contact_email": f"admin@{tenant}.example"} if contact else {}
        msg = m.account_opened(
            currency, tenant=tenant, event_id=run.next_id("e"), at=T0, billing_model=model, **over
        )
        assert run.send(ACCOUNT_EVENTS, *msg) == []
        opened.append((tenant, currency))
    for one in steps:
        play(run, one, opened)

    # play a prefix again, with the same offsets and wall clock: nothing may change
    final = {tenant: encode_state(state) for tenant, state in run.proc.states.items()}
    prefix = run.log[: len(run.log) * replay_percent // 100]
    for entry in prefix:
        if entry.code in STATE_DEPENDENT:
            continue
        run.no_effect(entry, run.replay(entry), "replay")
    assert {t: encode_state(s) for t, s in run.proc.states.items()} == final
