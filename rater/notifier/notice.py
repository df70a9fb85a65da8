"""A `notifications` record as the notifier uses it, or the reason it cannot (SPEC 8, 10).

Pure: no I/O. The rater validates what it writes, but the topic is a
contract between processes, so every field the mail needs is checked again
here: a record that fails is skipped with a reason, never mailed half-filled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = "en"

# The detail fields each type's mail needs (SPEC 8), and which of them are money or times.
FIELDS: dict[str, tuple[str, ...]] = {
    "auto_recharge_succeeded": ("amount", "balance"),
    "auto_recharge_failed": ("reason",),
    "balance_zero": ("balance",),
    "credits_expiring": ("lot_id", "amount", "expires_at"),
    "credits_expired": ("lot_id", "amount"),
    "nce_auto_recharge_enabled": (),
}
TYPES = tuple(FIELDS)
MONEY_FIELDS = frozenset({"amount", "balance"})
TIME_FIELDS = frozenset({"expires_at"})

# SPEC 4.2: local@domain.tld, at most 254 characters, no spaces, one @ (as schemas/ says).
_ADDRESS = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_MAX_ADDRESS = 254
_CURRENCY = re.compile(r"[A-Z]{3}")


class Unusable(ValueError):
    """A record the notifier cannot mail; ``reason`` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class Notice:
    """One notification, checked. ``contact_email`` is None when the tenant has no contact."""

    tenant_id: str
    notification_id: str
    type: str
    at: datetime
    details: dict[str, Any]
    contact_email: str | None
    language: str

    @property
    def currency(self) -> str | None:
        """An ISO 4217 code when the details carry one (SPEC 8 does not require it)."""
        code = self.details.get("currency")
        return code if isinstance(code, str) and _CURRENCY.fullmatch(code) else None

    @property
    def key(self) -> bytes:
        """The id a mail is sent once for: notification ids are unique per tenant only.

        ``balance_zero:cdr:<cdr_id>`` of two tenants can be equal (SPEC 4.1:
        a cdr_id is unique per tenant), so the tenant is part of the key.
        """
        return orjson.dumps([self.tenant_id, self.notification_id])


def decode(value: bytes | None) -> Notice:
    """The notice in a record value; raises :class:`Unusable` with a stable reason."""
    if value is None:
        raise Unusable("invalid_json", "no value (a tombstone)")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Unusable("invalid_json", str(exc)) from None
    if not isinstance(data, dict):
        raise Unusable("invalid_json", "the value is not a JSON object")
    kind = data.get("type")
    if kind not in FIELDS:
        raise Unusable("unknown_type", f"type {kind!r}")
    tenant_id = _text(data, "tenant_id")
    notification_id = _text(data, "notification_id")
    at = _time(data.get("at"), "at")
    details = data.get("details")
    if not isinstance(details, dict):
        raise Unusable("invalid_record", "details is not an object")
    for name in FIELDS[kind]:
        if name in MONEY_FIELDS:
            _money(details.get(name), name)
        elif name in TIME_FIELDS:
            _time(details.get(name), name)
        elif not isinstance(details.get(name), str):
            raise Unusable("invalid_record", f"details.{name} is missing or not a string")
    contact = details.get("contact_email")
    if contact is not None and not (
        isinstance(contact, str) and len(contact) <= _MAX_ADDRESS and _ADDRESS.fullmatch(contact)
    ):
        raise Unusable("bad_address", f"contact_email {contact!r}")
    language = details.get("language", DEFAULT_LANGUAGE)
    if language not in LANGUAGES:
        # SPEC 4.2 allows en and de only; an English mail beats no mail.
        language = DEFAULT_LANGUAGE
    return Notice(tenant_id, notification_id, kind, at, details, contact, language)


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise Unusable("invalid_record", f"{name} is missing or empty")
    return value


def _money(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise Unusable("invalid_record", f"details.{name} {value!r} is not money")
    return amount


def _time(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Unusable("invalid_record", f"{name} {value!r} is not an RFC 3339 time")
    return parsed
