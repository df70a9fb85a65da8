"""`notifications` records as the rater writes them (SPEC 8), for tests, docs and load.

Not a test module. Values follow schemas/notifications.json, so a test that
mails them mails what the rater really produces.
"""

from __future__ import annotations

from typing import Any

import orjson

TYPES = (
    "auto_recharge_succeeded",
    "auto_recharge_failed",
    "balance_zero",
    "credits_expiring",
    "credits_expired",
    "nce_auto_recharge_enabled",
)
AT = "2027-03-01T09:30:00Z"


def _ref_and_details(kind: str, tenant: str, n: int) -> tuple[str, dict[str, Any]]:
    if kind == "auto_recharge_succeeded":
        return f"{tenant}:topup:{n}", {"amount": "50.000000", "balance": "62.500000"}
    if kind == "auto_recharge_failed":
        return f"{tenant}:topup:{n}", {"reason": "card expired"}
    if kind == "balance_zero":
        return f"cdr:call-{n}", {"balance": "-12.345600"}
    if kind == "credits_expiring":
        return f"purchase:p-{n}", {
            "lot_id": f"purchase:p-{n}",
            "amount": "1234.500000",
            "expires_at": "2027-03-31T14:05:00Z",
        }
    if kind == "credits_expired":
        return f"purchase:p-{n}", {"lot_id": f"purchase:p-{n}", "amount": "12.500000"}
    if kind == "nce_auto_recharge_enabled":
        return f"e-{n}", {}
    raise ValueError(kind)


def notification(
    kind: str,
    tenant: str = "acme",
    n: int = 1,
    contact: str | None = "admin@acme.example",
    language: str = "en",
    at: str = AT,
) -> dict[str, Any]:
    """One notification value; ``contact=None`` gives a tenant without a contact."""
    ref, details = _ref_and_details(kind, tenant, n)
    if contact is not None:
        details |= {"contact_email": contact, "language": language}
    return {
        "notification_id": f"{kind}:{ref}",
        "tenant_id": tenant,
        "type": kind,
        "at": at,
        "details": details,
    }


def encoded(value: dict[str, Any]) -> tuple[bytes, bytes]:
    """``(key, value)`` as the rater writes it: keyed by tenant id."""
    return value["tenant_id"].encode(), orjson.dumps(value)


def batch(count: int, tenants: int = 7, domain: str = "example.com") -> list[dict[str, Any]]:
    """``count`` distinct notices with contacts over all types, languages and several tenants."""
    values = []
    for i in range(count):
        tenant = f"tenant-{i % tenants}"
        values.append(
            notification(
                TYPES[i % len(TYPES)],
                tenant=tenant,
                n=i + 1,
                contact=f"admin-{tenant}@{domain}",
                language=("en", "de")[(i // len(TYPES)) % 2],
            )
        )
    return values
