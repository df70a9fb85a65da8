"""The demo's tenants and calls: a realistic mix a newcomer can follow, at wall-clock time.

Pure (the clock and the random generator are passed in). Every tenant's id
says what kind it is, so the live view and the summary need no legend:

| ids | what they show |
|---|---|
| ``prepaid-NN`` | prepaid credits, no auto-recharge: some run below zero and are blocked |
| ``recharge-NN`` | prepaid with auto-recharge: topped up by the (simulated) payment side |
| ``pool-NN`` | minute pools: domestic calls free up to the month's minutes |
| ``nce-NN`` | switched to post-usage billing: credits first, then overage |
| ``nce-ar-NN`` | switched to NCE with auto-recharge still on: no overage, a warning |
| ``card-fails`` | auto-recharge whose card is declined: blocked once below zero |
| ``expiring`` | a lot bought a year ago: its expiry notice, then it expires |

About 1 % of the calls are bad on purpose (a number no tariff prices, cut-off
JSON, an unknown tenant) so the DLQ has something to explain.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from rater.core.clock import add_months, format_time
from rater.devkit.scenario import TARIFFS as BASE_TARIFFS

CURRENCY = "EUR"
US = 1_000_000  # micro-seconds per second

TARIFFS: list[dict[str, Any]] = [
    *BASE_TARIFFS,
    {
        "tariff_id": "GB",
        "call_type": "outbound",
        "prefix": "44",
        "country": "GB",
        "currency": CURRENCY,
        "rate_per_minute": "0.0800",
        "connection_fee": "0.02",
        "effective_from": "2020-01-01T00:00:00Z",
    },
    {
        "tariff_id": "US",
        "call_type": "outbound",
        "prefix": "1",
        "country": "US",
        "currency": CURRENCY,
        "rate_per_minute": "0.0400",
        "effective_from": "2020-01-01T00:00:00Z",
    },
]
# Destinations and how often they are called; +7 has no tariff (a no_tariff record).
DESTINATIONS = (
    ("+4930", 40),  # Berlin, domestic
    ("+4989", 20),  # Munich, domestic
    ("+49170", 15),  # German mobile
    ("+33", 8),
    ("+44", 8),
    ("+1", 6),
    ("+800", 10),  # toll-free dial-in to a conference
)


@dataclass
class Tenant:
    tenant_id: str
    kind: str
    credits: str = "0"
    auto_recharge: tuple[str, str] | None = None  # (trigger, amount)
    card_fails: bool = False
    weight: float = 1.0  # share of the calls
    pools: dict[str, int] = field(default_factory=dict)  # pool -> minutes this month
    switch_to_nce: bool = False
    contact: str | None = None
    language: str = "en"

    def meaning(self, balance: Decimal, blocked: bool) -> str:
        """What a balance means for this tenant, in a sentence."""
        value = balance
        if self.switch_to_nce and self.auto_recharge is None:
            return (
                "post-usage billing: credits spent first, calls beyond them go to overage"
                if value <= 0
                else "post-usage billing: still spending its remaining credits"
            )
        if self.switch_to_nce:
            return "NCE chosen but auto-recharge is still on: recharged, no overage yet"
        if value < 0:
            why = " (card declined)" if self.card_fails else ""
            if self.kind == "expiring":
                why = " (its credits expired)"
            return f"prepaid below zero: owes {-value:.2f} {CURRENCY} of calls{why}; " + (
                "toll-free and international blocked" if blocked else "not blocked"
            )
        if self.auto_recharge is not None:
            return f"auto-recharge adds {self.auto_recharge[1]} at {self.auto_recharge[0]}"
        return "prepaid credits left"


def tenants() -> list[Tenant]:
    mix: list[Tenant] = []
    for n in range(1, 13):
        credits = ("5", "20", "50", "100", "150")[n % 5]
        mix.append(Tenant(f"prepaid-{n:02d}", "prepaid", credits, weight=1.0 + (n % 4)))
    for n in range(1, 9):
        mix.append(
            Tenant(
                f"recharge-{n:02d}",
                "recharge",
                "10",
                auto_recharge=("5", "20"),
                weight=2.0 + (n % 3),
                contact=f"admin@recharge-{n:02d}.example",
                language="de" if n % 2 else "en",
            )
        )
    for n in range(1, 6):
        mix.append(
            Tenant(
                f"pool-{n:02d}",
                "pool",
                "20",
                pools={"domestic": 60 * n, "international": 10},
                weight=2.0,
            )
        )
    for n in range(1, 6):
        mix.append(Tenant(f"nce-{n:02d}", "nce", "5", switch_to_nce=True, weight=2.0))
    for n in range(1, 4):
        mix.append(
            Tenant(
                f"nce-ar-{n:02d}",
                "nce-ar",
                "10",
                auto_recharge=("5", "20"),
                switch_to_nce=True,
                weight=2.0,
                contact=f"billing@nce-ar-{n:02d}.example",
            )
        )
    mix.append(
        Tenant(
            "card-fails",
            "card-fails",
            "6",
            auto_recharge=("5", "20"),
            card_fails=True,
            weight=4.0,
            contact="finance@card-fails.example",
        )
    )
    mix.append(Tenant("expiring", "expiring", "25", weight=1.0, contact="ops@expiring.example"))
    return mix


def setup_events(mix: list[Tenant], now_us: int, expire_after_s: float) -> list[dict[str, Any]]:
    """The account events that set the mix up, in order. ``expiring``'s lot expires
    ``expire_after_s`` after ``now_us``; every other event is at ``now_us``."""
    events: list[dict[str, Any]] = []
    at = format_time(now_us)
    month = at[:7]
    for tenant in mix:
        tid = tenant.tenant_id
        opened_at = now_us
        expires_at = now_us + int(expire_after_s * US)
        if tenant.kind == "expiring":
            opened_at = add_months(expires_at, -12)  # bought 12 months before it expires
        base = {"tenant_id": tid, "at": format_time(opened_at)}
        opened: dict[str, Any] = {
            "type": "account_opened",
            "event_id": f"open-{tid}",
            "currency": CURRENCY,
            **base,
        }
        if tenant.contact:
            opened["contact_email"] = tenant.contact
            opened["language"] = tenant.language
        events.append(opened)
        events.append(
            {
                "type": "credits_purchased",
                "event_id": f"buy-{tid}",
                "amount": tenant.credits,
                **base,
            }
        )
        if tenant.kind == "expiring":  # 10 days before expiry: the 30-day notice (SPEC 6.5)
            events.append(
                {
                    "type": "contact_changed",
                    "event_id": f"contact-{tid}",
                    "tenant_id": tid,
                    "at": format_time(expires_at - 10 * 86_400 * US),
                    "contact_email": tenant.contact,
                    "language": tenant.language,
                }
            )
        base = {"tenant_id": tid, "at": at}
        for pool, minutes in tenant.pools.items():
            events.append(
                {
                    "type": "minute_pool_allocated",
                    "event_id": f"pool-{pool}-{tid}",
                    "pool": pool,
                    "month": month,
                    "minutes": minutes,
                    **base,
                }
            )
        if tenant.auto_recharge is not None:
            trigger, amount = tenant.auto_recharge
            events.append(
                {
                    "type": "auto_recharge_configured",
                    "event_id": f"ar-{tid}",
                    "enabled": True,
                    "trigger_balance": trigger,
                    "recharge_amount": amount,
                    **base,
                }
            )
        if tenant.switch_to_nce:
            events.append(
                {
                    "type": "billing_model_changed",
                    "event_id": f"nce-{tid}",
                    "billing_model": "nce",
                    **base,
                }
            )
    return events


class Calls:
    """CDRs at wall-clock time: who calls where, how long, and a few bad ones."""

    def __init__(self, mix: list[Tenant], seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.tenants = mix
        self.weights = [t.weight for t in mix]
        self.destinations = [d for d, _ in DESTINATIONS]
        self.destination_weights = [w for _, w in DESTINATIONS]
        self.count = 0

    def next(self, now_us: int) -> tuple[bytes, bytes]:
        """One ``(key, value)`` for the cdrs topic."""
        self.count += 1
        n = self.count
        tenant = self.rng.choices(self.tenants, self.weights)[0]
        key = tenant.tenant_id.encode()
        if n % 250 == 0:
            return key, b'{"cdr_id": "cut-off'  # invalid_json
        prefix = self.rng.choices(self.destinations, self.destination_weights)[0]
        if n % 130 == 0:
            prefix = "+7"  # no_tariff
        duration = min(3600, int(self.rng.lognormvariate(4.6, 0.9)))
        body: dict[str, Any] = {
            "cdr_id": f"call-{n}",
            "tenant_id": tenant.tenant_id,
            "origin_country": "DE",
            "destination": prefix + "".join(self.rng.choices("0123456789", k=12 - len(prefix))),
            "started_at": format_time(now_us - duration * US),
            "duration_s": duration,
        }
        if prefix == "+800":
            body["call_type"] = "conference_tollfree_dialin"
        elif self.rng.random() < 0.15:
            body["call_type"] = "conference_dialout"
            body["destination"] = "+49" + body["destination"][3:]
        else:
            body["call_type"] = "outbound"
            body["plan"] = (
                "domestic_international" if tenant.pools else self.rng.choice(PLANS_WITHOUT_POOL)
            )
        if n % 400 == 0:
            key = b"nobody"  # unknown_account
            body["tenant_id"] = "nobody"
        return key, orjson.dumps(body)


PLANS_WITHOUT_POOL = ("pay_as_you_go", "domestic")
