"""Decoding and validation of input messages (SPEC sections 2, 4 and 9).

Decoding checks everything a message can be judged on by itself, in the
spec's order of precedence: ``invalid_json``, ``invalid_field`` for
``tenant_id``, ``key_mismatch``, then ``invalid_field`` for any other field.
Checks that need the tenant's state (unknown account, times, currency,
duplicates) belong to the engine.
"""

from __future__ import annotations

import operator
import re
import sys
from typing import Any

import orjson

from rater.core.clock import parse_time
from rater.core.errors import INVALID_FIELD, INVALID_JSON, KEY_MISMATCH, Rejected
from rater.core.money import parse_money

CALL_TYPES = frozenset({"conference_tollfree_dialin", "conference_dialout", "outbound"})
PLANS = frozenset({"domestic", "domestic_international", "pay_as_you_go"})
BILLING_MODELS = frozenset({"prepaid", "nce"})
LANGUAGES = frozenset({"en", "de"})
POOLS = frozenset({"domestic", "international"})
EVENT_TYPES = frozenset(
    {
        "account_opened",
        "credits_purchased",
        "auto_recharge_configured",
        "billing_model_changed",
        "minute_pool_allocated",
        "topup_succeeded",
        "topup_failed",
        "contact_changed",
    }
)

_E164 = re.compile(r"\+([0-9]{6,15})")
_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MONTH = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_PREFIX = re.compile(r"[0-9]{1,15}")
MAX_DURATION_S = 86_400


class Cdr:
    """A call-detail record, validated; times in epoch microseconds.

    Made by :func:`new_cdr`, or its copy inline in :func:`decode_cdr`, not by
    calling the class (see there why).
    """

    __slots__ = (
        "call_type",
        "cdr_id",
        "destination_digits",
        "duration_s",
        "key",
        "origin_country",
        "plan",
        "started_at",
        "tenant_id",
    )

    call_type: str
    cdr_id: str
    destination_digits: str
    duration_s: int
    # the message key, equal to tenant_id encoded (decoding checks it): the
    # CDR's outputs are keyed by it, so the id is not encoded a second time
    key: bytes
    origin_country: str
    plan: str | None
    started_at: int
    tenant_id: str


_allocate = object.__new__


def new_cdr(
    cdr_id: str,
    tenant_id: str,
    call_type: str,
    plan: str | None,
    origin_country: str,
    destination_digits: str,
    started_at: int,
    duration_s: int,
    key: bytes,
) -> Cdr:
    """A :class:`Cdr` with its fields set.

    A plain function, not ``Cdr.__init__``: CPython 3.11 runs a class's
    ``__init__`` from C in an interpreter loop of its own (about 2,000
    instructions under callgrind), a plain call costs a fraction of that,
    and every CDR is built once.
    """
    cdr = _allocate(Cdr)
    cdr.cdr_id = cdr_id
    cdr.tenant_id = tenant_id
    cdr.call_type = call_type
    cdr.plan = plan
    cdr.origin_country = origin_country
    cdr.destination_digits = destination_digits
    cdr.started_at = started_at
    cdr.duration_s = duration_s
    cdr.key = key
    return cdr


class AccountEvent:
    """An account event, validated. ``fields`` holds the type's own fields, parsed."""

    __slots__ = ("at", "event_id", "fields", "tenant_id", "type")

    def __init__(
        self, type: str, event_id: str, tenant_id: str, at: int, fields: dict[str, Any]
    ) -> None:
        self.type = type
        self.event_id = event_id
        self.tenant_id = tenant_id
        self.at = at
        self.fields = fields


class TariffRow:
    """One tariff row; money in micro-units, times in epoch microseconds."""

    __slots__ = (
        "call_type",
        "connection_fee",
        "country",
        "currency",
        "effective_from",
        "effective_to",
        "first_increment_s",
        "increment_s",
        "prefix",
        "rate_per_minute",
        "tariff_id",
    )

    def __init__(
        self,
        tariff_id: str,
        call_type: str,
        prefix: str,
        country: str,
        currency: str,
        rate_per_minute: int,
        connection_fee: int,
        first_increment_s: int,
        increment_s: int,
        effective_from: int,
        effective_to: int | None,
    ) -> None:
        self.tariff_id = tariff_id
        self.call_type = call_type
        self.prefix = prefix
        self.country = country
        self.currency = currency
        self.rate_per_minute = rate_per_minute
        self.connection_fee = connection_fee
        self.first_increment_s = first_increment_s
        self.increment_s = increment_s
        self.effective_from = effective_from
        self.effective_to = effective_to


def _load_object(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise Rejected(INVALID_JSON, "the message has no value")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejected(INVALID_JSON, f"not valid JSON: {exc}") from None
    if type(obj) is not dict:
        raise Rejected(INVALID_JSON, "the value is not a JSON object")
    return obj


def _bad(field: str, rule: str, tenant_id: str | None) -> Rejected:
    return Rejected(INVALID_FIELD, f"{field}: {rule}", tenant_id)


def _text(obj: dict[str, Any], field: str, max_len: int, tenant_id: str | None) -> str:
    value = obj.get(field)
    if type(value) is not str or not 1 <= len(value) <= max_len:
        raise _bad(field, f"must be a string of 1 to {max_len} characters", tenant_id)
    return value


def _tenant_and_key(obj: dict[str, Any], key: bytes | None) -> str:
    """Check ``tenant_id`` and that it equals the message key, in that order."""
    tenant_id = _text(obj, "tenant_id", 64, None)
    if key is None or key != tenant_id.encode():
        raise Rejected(KEY_MISMATCH, "the message key must equal tenant_id", tenant_id)
    return tenant_id


def _time(obj: dict[str, Any], field: str, tenant_id: str | None) -> int:
    value = parse_time(obj.get(field))
    if value is None:
        raise _bad(field, "must be an RFC 3339 time with an offset", tenant_id)
    return value


def _money(obj: dict[str, Any], field: str, tenant_id: str | None, positive: bool) -> int:
    value = parse_money(obj.get(field))
    if value is None:
        raise _bad(field, "must be a decimal string with at most 6 fractional digits", tenant_id)
    if positive and value == 0:
        raise _bad(field, "must be greater than zero", tenant_id)
    return value


def _int(obj: dict[str, Any], field: str, low: int, high: int | None, tenant: str | None) -> int:
    value = obj.get(field)
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise _bad(field, f"must be an integer {bound}", tenant)
    return value


def _choice(obj: dict[str, Any], field: str, allowed: frozenset[str], tenant: str | None) -> str:
    value = obj.get(field)
    if type(value) is not str or value not in allowed:  # a list or dict is not hashable
        raise _bad(field, f"must be one of {', '.join(sorted(allowed))}", tenant)
    return sys.intern(value)  # shared, see _shared_int


def _shared_int(value: int) -> int:
    """The one int object for a value that many tariff rows or states hold.

    Tenant states and tariff rows are spread over a large heap and rating
    touches a random one per CDR; a field that points to a shared object
    (times, rates, interned currency and country codes) costs no cache miss
    of its own. Values are unchanged: only which object holds them.
    """
    if len(_SHARED_INTS) > 100_000:
        _SHARED_INTS.clear()
    return _SHARED_INTS.setdefault(value, value)


_SHARED_INTS: dict[int, int] = {}


def _pattern(obj: dict[str, Any], field: str, pattern: re.Pattern[str], tenant: str | None) -> str:
    value = obj.get(field)
    if type(value) is not str or pattern.fullmatch(value) is None:
        raise _bad(field, f"must match {pattern.pattern}", tenant)
    return value


_COUNTRIES_SEEN: set[str] = set()  # origin countries that passed the pattern (<= 676)
_CDR_FIELDS = operator.itemgetter(  # the fields every CDR must have
    "tenant_id", "cdr_id", "call_type", "origin_country", "destination", "started_at", "duration_s"
)


def decode_cdr(key: bytes | None, value: bytes | None) -> Cdr:
    """Decode a ``cdrs`` message or raise :class:`Rejected`.

    Every CDR passes through here, so a well-formed one is checked inline in
    one pass; anything doubtful goes to :func:`decode_cdr_strictly`, which
    alone decides which rejection applies. A test that an odd value cannot
    pass may raise instead of returning False (``.encode`` of a non-string,
    an unhashable value in a set test): that also means "doubtful", and saves
    a ``type(...) is str`` test per field on every CDR.
    """
    try:
        obj = orjson.loads(value)  # type: ignore[arg-type]
        # one call for the required fields: KeyError when one is missing,
        # TypeError when the value is no JSON object
        tenant_id, cdr_id, call_type, origin, destination, started, duration = _CDR_FIELDS(obj)
        plan = obj.get("plan")
        well_formed = (
            key == tenant_id.encode()  # AttributeError unless a string; None is no key
            and 0 < len(tenant_id) <= 64
            and type(cdr_id) is str
            and 0 < len(cdr_id) <= 128
            and call_type in CALL_TYPES  # TypeError for a list or dict
            # an outbound call names its plan; any other call may, but a valid one
            and (plan in PLANS or (call_type != "outbound" and "plan" not in obj))
            and type(obj.get("user_id", "")) is str
            and origin in _COUNTRIES_SEEN  # strings only
            and type(destination) is str
            and 7 <= len(destination) <= 16
            and destination[0] == "+"
            and type(duration) is int  # not bool
            and 0 <= duration <= MAX_DURATION_S
        )
    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
        return decode_cdr_strictly(key, value)
    if well_formed:
        digits = destination[1:]  # _E164 without the regex: ASCII digits only
        started_at = parse_time(started)
        if digits.isascii() and digits.isdigit() and started_at is not None:
            # new_cdr written out: a call with nine arguments costs about 500
            # instructions, and nearly every CDR is built here
            cdr = _allocate(Cdr)
            cdr.cdr_id = cdr_id
            cdr.tenant_id = tenant_id
            cdr.call_type = call_type
            cdr.plan = plan if call_type == "outbound" else None
            cdr.origin_country = origin
            cdr.destination_digits = digits
            cdr.started_at = started_at
            cdr.duration_s = duration
            cdr.key = key  # type: ignore[assignment]  # equal to tenant_id's bytes (tested above)
            return cdr
    cdr = decode_cdr_strictly(key, value)
    if len(_COUNTRIES_SEEN) < 1000:
        _COUNTRIES_SEEN.add(cdr.origin_country)
    return cdr


def decode_cdr_strictly(key: bytes | None, value: bytes | None) -> Cdr:
    """Decode a ``cdrs`` message field by field, raising the first rejection that applies."""
    obj = _load_object(value)
    tenant_id = _tenant_and_key(obj, key)
    cdr_id = _text(obj, "cdr_id", 128, tenant_id)
    call_type = _choice(obj, "call_type", CALL_TYPES, tenant_id)
    plan = (
        _choice(obj, "plan", PLANS, tenant_id) if "plan" in obj or call_type == "outbound" else None
    )
    if call_type != "outbound":
        plan = None  # a conference call draws from no pool, whatever plan it names
    if "user_id" in obj and type(obj["user_id"]) is not str:
        raise _bad("user_id", "must be a string", tenant_id)
    origin = _pattern(obj, "origin_country", _COUNTRY, tenant_id)
    destination = obj.get("destination")
    match = _E164.fullmatch(destination) if type(destination) is str else None
    if match is None:
        raise _bad("destination", "must be E.164: '+' and 6 to 15 digits", tenant_id)
    started_at = _time(obj, "started_at", tenant_id)
    duration = _int(obj, "duration_s", 0, MAX_DURATION_S, tenant_id)
    raw_key = tenant_id.encode() if key is None else key  # _tenant_and_key made them equal
    return new_cdr(
        cdr_id, tenant_id, call_type, plan, origin, match.group(1), started_at, duration, raw_key
    )


def _contact(obj: dict[str, Any], tenant_id: str, required: bool) -> dict[str, Any]:
    language = _choice(obj, "language", LANGUAGES, tenant_id) if "language" in obj else "en"
    if "contact_email" not in obj and not required:
        return {"contact_email": None, "language": language}
    email = obj.get("contact_email")
    if type(email) is not str or len(email) > 254 or _EMAIL.fullmatch(email) is None:
        raise _bad("contact_email", "must be local@domain.tld, at most 254 characters", tenant_id)
    return {"contact_email": email, "language": language}


def _optional_currency(obj: dict[str, Any], tenant_id: str) -> str | None:
    if "currency" not in obj:
        return None
    return _pattern(obj, "currency", _CURRENCY, tenant_id)


def _event_fields(kind: str, obj: dict[str, Any], tenant_id: str) -> dict[str, Any]:
    if kind == "account_opened":
        fields = _contact(obj, tenant_id, required=False)
        fields["currency"] = sys.intern(_pattern(obj, "currency", _CURRENCY, tenant_id))
        fields["billing_model"] = (
            _choice(obj, "billing_model", BILLING_MODELS, tenant_id)
            if "billing_model" in obj
            else "prepaid"
        )
        return fields
    if kind in ("credits_purchased", "topup_succeeded"):
        fields = {"amount": _money(obj, "amount", tenant_id, positive=True)}
        fields["currency"] = _optional_currency(obj, tenant_id)
        if kind == "topup_succeeded":
            fields["request_id"] = _text(obj, "request_id", 256, tenant_id)
        return fields
    if kind == "auto_recharge_configured":
        enabled = obj.get("enabled")
        if type(enabled) is not bool:
            raise _bad("enabled", "must be true or false", tenant_id)
        fields = {
            "enabled": enabled,
            "trigger_balance": _money(obj, "trigger_balance", tenant_id, False),
        }
        if enabled or "recharge_amount" in obj:
            fields["recharge_amount"] = _money(obj, "recharge_amount", tenant_id, positive=enabled)
        else:
            fields["recharge_amount"] = 0
        return fields
    if kind == "billing_model_changed":
        return {"billing_model": _choice(obj, "billing_model", BILLING_MODELS, tenant_id)}
    if kind == "minute_pool_allocated":
        return {
            "pool": _choice(obj, "pool", POOLS, tenant_id),
            "month": _pattern(obj, "month", _MONTH, tenant_id),
            "minutes": _int(obj, "minutes", 0, None, tenant_id),
        }
    if kind == "topup_failed":
        reason = obj.get("reason")
        if type(reason) is not str:
            raise _bad("reason", "must be a string", tenant_id)
        return {"request_id": _text(obj, "request_id", 256, tenant_id), "reason": reason}
    return _contact(obj, tenant_id, required=True)  # contact_changed


def decode_account_event(key: bytes | None, value: bytes | None) -> AccountEvent:
    """Decode an ``account-events`` message or raise :class:`Rejected`."""
    obj = _load_object(value)
    tenant_id = _tenant_and_key(obj, key)
    kind = _choice(obj, "type", EVENT_TYPES, tenant_id)
    event_id = _text(obj, "event_id", 128, tenant_id)
    at = _time(obj, "at", tenant_id)
    return AccountEvent(kind, event_id, tenant_id, at, _event_fields(kind, obj, tenant_id))


def tombstone_id(key: bytes | None) -> str:
    """The tariff id a ``tariffs`` tombstone deletes, or raise :class:`Rejected`."""
    try:
        tariff_id = key.decode() if key is not None else ""
    except UnicodeDecodeError:
        tariff_id = ""
    if not 1 <= len(tariff_id) <= 128:
        raise Rejected(KEY_MISMATCH, "a tombstone's key must be a tariff id (1 to 128 characters)")
    return tariff_id


def decode_tariff(key: bytes | None, value: bytes) -> TariffRow:
    """Decode a ``tariffs`` row (a non-null value) or raise :class:`Rejected`."""
    obj = _load_object(value)
    tariff_id = _text(obj, "tariff_id", 128, None)
    if key is None or key != tariff_id.encode():
        raise Rejected(KEY_MISMATCH, "the message key must equal tariff_id")
    call_type = _choice(obj, "call_type", CALL_TYPES, None)
    prefix = _pattern(obj, "prefix", _PREFIX, None)
    country = sys.intern(_pattern(obj, "country", _COUNTRY, None))
    currency = sys.intern(_pattern(obj, "currency", _CURRENCY, None))
    rate = _money(obj, "rate_per_minute", None, positive=False)
    fee = _money(obj, "connection_fee", None, False) if "connection_fee" in obj else 0
    first = _int(obj, "first_increment_s", 1, None, None) if "first_increment_s" in obj else 60
    step = _int(obj, "increment_s", 1, None, None) if "increment_s" in obj else 60
    effective_from = _time(obj, "effective_from", None)
    effective_to = _time(obj, "effective_to", None) if obj.get("effective_to") is not None else None
    if effective_to is not None and effective_to <= effective_from:
        raise _bad("effective_to", "must be after effective_from", None)
    return TariffRow(
        tariff_id,
        call_type,
        prefix,
        country,
        currency,
        _shared_int(rate),
        _shared_int(fee),
        first,
        step,
        _shared_int(effective_from),
        None if effective_to is None else _shared_int(effective_to),
    )
