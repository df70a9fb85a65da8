"""What the output topics say, in figures a person reads: the dashboard's and the demo's.

Pure: fed ``(topic, value)`` pairs (the SPEC's topic names, values decoded
from JSON) by whoever reads the topics (:mod:`rater.observability.tail`),
it counts what happened and keeps a few recent examples. Top-up outcomes
come from the ``notifications`` topic (SPEC 8: ``auto_recharge_succeeded``
and ``auto_recharge_failed`` are sent for every answered request), so the
tally needs no input topic. Money is summed as :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from collections import Counter, deque
from decimal import Decimal
from typing import Any

from rater.core.topics import (
    LEDGER,
    NOTIFICATIONS,
    OVERAGE,
    RATED_CDRS,
    RATER_DLQ,
    SERVICE_STATE,
    TOPUP_REQUESTS,
)

EXAMPLES_PER_CODE = 3
RECENT_NOTIFICATIONS = 20
VALUE_SHOWN = 200  # characters of a rejected record's value shown as an example

# Why a record is in rater-dlq, in a sentence each (SPEC 9), for people reading a summary.
DLQ_MEANING = {
    "invalid_json": "the value is not a JSON object",
    "invalid_field": "a field is missing or breaks the contract (SPEC 4)",
    "key_mismatch": "the message key is not the tenant_id",
    "unknown_account": "no account_opened was seen for this tenant",
    "currency_mismatch": "the currency differs from the account's",
    "no_tariff": "no tariff row prices this destination; replay it once one exists",
    "purchase_not_allowed_for_nce": "NCE (post-usage) tenants cannot buy credits",
    "auto_recharge_not_allowed_for_nce": "auto-recharge cannot be enabled once NCE billing runs",
    "unknown_topup_request": "a top-up result for a request the rater never made",
    "too_late": "older than 35 days of the tenant's clock",
    "future_time": "more than 5 minutes ahead of the wall clock",
    "internal_error": "the rater failed on this record; it can be replayed",
}


class OutputTally:
    """Counts and recent examples over the rater's output topics."""

    def __init__(self) -> None:
        self.records: Counter[str] = Counter()
        self.rated = 0
        self.rated_zero = 0  # rated at no charge (pool minutes, zero duration)
        self.dlq: Counter[str] = Counter()
        self.dlq_by_source: Counter[str] = Counter()  # source topic (as named on the broker)
        self.dlq_examples: dict[str, deque[dict[str, Any]]] = {}
        self.topups_requested = 0
        self.topups_succeeded = 0
        self.topups_failed = 0
        self.topup_failure_reasons: Counter[str] = Counter()
        self.blocked: dict[str, str] = {}  # tenant -> balance when blocked (service-state)
        self.overage: dict[str, Decimal] = {}  # currency -> amount billed after usage
        self.overage_records = 0
        self.notifications: Counter[str] = Counter()
        self.recent_notifications: deque[dict[str, Any]] = deque(maxlen=RECENT_NOTIFICATIONS)
        self.balances: dict[str, str] = {}  # tenant -> balance_after of its latest ledger entry
        self.currencies: dict[str, str] = {}  # tenant -> currency, from rated CDRs and top-ups

    def add(self, topic: str, value: dict[str, Any]) -> None:
        """One output record, in the order its partition holds it."""
        self.records[topic] += 1
        if topic == RATED_CDRS:
            self.rated += 1
            if Decimal(value["amount"]) == 0:
                self.rated_zero += 1
            self.currencies[value["tenant_id"]] = value["currency"]
        elif topic == LEDGER:
            self.balances[value["tenant_id"]] = value["balance_after"]
        elif topic == RATER_DLQ:
            self._dlq(value)
        elif topic == TOPUP_REQUESTS:
            self.topups_requested += 1
            self.currencies[value["tenant_id"]] = value["currency"]
        elif topic == SERVICE_STATE:
            if value["blocked"]:
                self.blocked[value["tenant_id"]] = value["balance"]
            else:
                self.blocked.pop(value["tenant_id"], None)
        elif topic == OVERAGE:
            self.overage_records += 1
            currency = value["currency"]
            self.overage[currency] = self.overage.get(currency, Decimal(0)) + Decimal(
                value["amount"]
            )
        elif topic == NOTIFICATIONS:
            self._notification(value)

    def _dlq(self, value: dict[str, Any]) -> None:
        code = value["error"]["code"]
        self.dlq[code] += 1
        self.dlq_by_source[value["source_topic"]] += 1
        examples = self.dlq_examples.setdefault(code, deque(maxlen=EXAMPLES_PER_CODE))
        raw = value.get("value") or ""
        examples.append(
            {
                "dlq_id": value["dlq_id"],
                "source_topic": value["source_topic"],
                "key": value.get("key"),
                "value": raw if len(raw) <= VALUE_SHOWN else raw[:VALUE_SHOWN] + "…",
                "message": value["error"]["message"],
            }
        )

    def _notification(self, value: dict[str, Any]) -> None:
        kind = value["type"]
        self.notifications[kind] += 1
        details = value.get("details") or {}
        if kind == "auto_recharge_succeeded":
            self.topups_succeeded += 1
        elif kind == "auto_recharge_failed":
            self.topups_failed += 1
            self.topup_failure_reasons[str(details.get("reason"))] += 1
        self.recent_notifications.append(
            {
                "notification_id": value["notification_id"],
                "tenant_id": value["tenant_id"],
                "type": kind,
                "at": value["at"],
                "contact_email": details.get("contact_email"),
            }
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything, as JSON-ready values (money as SPEC 2 strings)."""
        return {
            "records": dict(sorted(self.records.items())),
            "rated": self.rated,
            "rated_zero": self.rated_zero,
            "dlq": [
                {
                    "code": code,
                    "count": count,
                    "meaning": DLQ_MEANING.get(code, ""),
                    "examples": list(reversed(self.dlq_examples.get(code, ()))),
                }
                for code, count in self.dlq.most_common()
            ],
            "topups": {
                "requested": self.topups_requested,
                "succeeded": self.topups_succeeded,
                "failed": self.topups_failed,
                "pending": self.topups_requested - self.topups_succeeded - self.topups_failed,
                "failure_reasons": dict(self.topup_failure_reasons.most_common()),
            },
            "blocked": [
                {"tenant_id": tenant, "balance": balance}
                for tenant, balance in sorted(self.blocked.items())
            ],
            "overage": {
                "records": self.overage_records,
                "amounts": {c: f"{a:.6f}" for c, a in sorted(self.overage.items())},
            },
            "notifications": dict(sorted(self.notifications.items())),
            "recent_notifications": sorted(
                self.recent_notifications, key=lambda n: n["at"], reverse=True
            ),
        }

    def lowest_balances(self, count: int) -> list[tuple[str, Decimal]]:
        """The ``count`` tenants with the lowest ledger balance, lowest first."""
        ranked = sorted(self.balances.items(), key=lambda item: (Decimal(item[1]), item[0]))
        return [(tenant, Decimal(balance)) for tenant, balance in ranked[:count]]
