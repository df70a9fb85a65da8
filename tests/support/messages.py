"""Builders for raw input messages in tests: each returns ``(key_bytes, value_bytes)``.

Not a test module. Every builder takes sensible defaults and keyword overrides;
an override of :data:`DROP` removes the field, ``key=`` replaces the Kafka key.
Times may be given as RFC 3339 text or as epoch microseconds.
"""

from __future__ import annotations

from typing import Any

import orjson

from rater.core.clock import format_time

DROP = object()
AT = "2025-01-15T09:00:00Z"


def _time(value: Any) -> Any:
    return format_time(value) if type(value) is int else value


def _message(key: Any, fields: dict[str, Any], overrides: dict[str, Any]) -> tuple[bytes, bytes]:
    fields.update(overrides)
    fields = {name: value for name, value in fields.items() if value is not DROP}
    for name in ("at", "started_at", "effective_from", "effective_to"):
        if name in fields:
            fields[name] = _time(fields[name])
    if key is None:
        key = fields.get("tariff_id", fields.get("tenant_id", ""))
    return (key.encode() if isinstance(key, str) else key), orjson.dumps(fields)


def event(
    kind: str, tenant: str = "t1", event_id: str = "e-1", at: Any = AT, key: Any = None, **fields
) -> tuple[bytes, bytes]:
    """Any ``account-events`` message; the builders below fill in each type's fields."""
    base = {"type": kind, "event_id": event_id, "tenant_id": tenant, "at": at}
    return _message(key, base, fields)


def account_opened(currency: str = "EUR", **over) -> tuple[bytes, bytes]:
    return event("account_opened", currency=currency, **over)


def credits_purchased(amount: str = "10", **over) -> tuple[bytes, bytes]:
    return event("credits_purchased", amount=amount, **over)


def auto_recharge_configured(
    enabled: bool = True, trigger_balance: str = "5", recharge_amount: str = "20", **over
) -> tuple[bytes, bytes]:
    """``recharge_amount=DROP`` leaves the amount out (allowed when disabling)."""
    return event(
        "auto_recharge_configured",
        enabled=enabled,
        trigger_balance=trigger_balance,
        recharge_amount=recharge_amount,
        **over,
    )


def billing_model_changed(billing_model: str = "nce", **over) -> tuple[bytes, bytes]:
    return event("billing_model_changed", billing_model=billing_model, **over)


def minute_pool_allocated(
    pool: str = "domestic", month: str = "2025-01", minutes: int = 100, **over
) -> tuple[bytes, bytes]:
    return event("minute_pool_allocated", pool=pool, month=month, minutes=minutes, **over)


def topup_succeeded(request_id: str = "t1:topup:1", amount: str = "20", **over):
    return event("topup_succeeded", request_id=request_id, amount=amount, **over)


def topup_failed(request_id: str = "t1:topup:1", reason: str = "card_expired", **over):
    return event("topup_failed", request_id=request_id, reason=reason, **over)


def contact_changed(contact_email: str = "admin@example.com", **over) -> tuple[bytes, bytes]:
    return event("contact_changed", contact_email=contact_email, **over)


def cdr(
    cdr_id: str = "c-1",
    tenant: str = "t1",
    call_type: str = "outbound",
    destination: str = "+4930123456",
    started_at: Any = AT,
    duration_s: int = 60,
    key: Any = None,
    **over,
) -> tuple[bytes, bytes]:
    fields = {
        "cdr_id": cdr_id,
        "tenant_id": tenant,
        "call_type": call_type,
        "origin_country": "DE",
        "destination": destination,
        "started_at": started_at,
        "duration_s": duration_s,
    }
    if call_type == "outbound":
        fields["plan"] = "domestic"
    return _message(key, fields, over)


def tariff(
    tariff_id: str = "tr-1",
    call_type: str = "outbound",
    prefix: str = "49",
    country: str = "DE",
    rate_per_minute: str = "0.024",
    key: Any = None,
    **over,
) -> tuple[bytes, bytes]:
    fields = {
        "tariff_id": tariff_id,
        "call_type": call_type,
        "prefix": prefix,
        "country": country,
        "currency": "EUR",
        "rate_per_minute": rate_per_minute,
        "connection_fee": "0",
        "first_increment_s": 60,
        "increment_s": 60,
        "effective_from": "2020-01-01T00:00:00Z",
        "effective_to": None,
    }
    return _message(key, fields, over)
