"""A tiny driver of the core for rule tests: messages from keywords, outputs by topic."""

from __future__ import annotations

from typing import Any

import orjson

from rater.core.clock import parse_time
from rater.core.outputs import Output
from rater.core.processor import Processor
from rater.core.state import TenantState
from rater.core.tariffs import TariffIndex

FAR_FUTURE = "2040-01-01T00:00:00Z"


def t(text: str) -> int:
    value = parse_time(text)
    assert value is not None, text
    return value


class Harness:
    """Feeds one Processor and numbers offsets like a single partition would."""

    def __init__(self, now: str = FAR_FUTURE) -> None:
        self.proc = Processor(TariffIndex())
        self.offset = 0
        self.now = t(now)
        self.ids = 0

    def _next(self) -> int:
        self.offset += 1
        return self.offset

    def raw_tariff(self, key: bytes | None, value: bytes | None) -> list[Output]:
        return self.proc.tariff(key, value, "tariffs", 0, self._next())

    def tariff(self, tariff_id: str = "T1", **fields: Any) -> list[Output]:
        row = {
            "tariff_id": tariff_id,
            "call_type": "outbound",
            "prefix": "49",
            "country": "DE",
            "currency": "EUR",
            "rate_per_minute": "0.0240",
            "effective_from": "2020-01-01T00:00:00Z",
        } | fields
        row = {k: v for k, v in row.items() if v is not ...}
        return self.raw_tariff(tariff_id.encode(), orjson.dumps(row))

    def raw_event(self, key: bytes | None, value: bytes | None) -> list[Output]:
        return self.proc.account_event(key, value, "account-events", 0, self._next(), self.now)

    def event(self, type: str, at: str, tenant: str = "acme", **fields: Any) -> list[Output]:
        self.ids += 1
        body = {"type": type, "event_id": f"e{self.ids}", "tenant_id": tenant, "at": at} | fields
        return self.raw_event(tenant.encode(), orjson.dumps(body))

    def open(self, at: str = "2026-01-01T00:00:00Z", tenant: str = "acme", **fields: Any):
        return self.event("account_opened", at, tenant, **({"currency": "EUR"} | fields))

    def raw_cdr(self, key: bytes | None, value: bytes | None) -> list[Output]:
        return self.proc.cdr(key, value, "cdrs", 0, self._next(), self.now)

    def cdr(self, started_at: str, duration_s: int, tenant: str = "acme", **fields: Any):
        self.ids += 1
        body = {
            "cdr_id": f"c{self.ids}",
            "tenant_id": tenant,
            "call_type": "outbound",
            "plan": "pay_as_you_go",
            "origin_country": "DE",
            "destination": "+4930123456",
            "started_at": started_at,
            "duration_s": duration_s,
        } | fields
        body = {k: v for k, v in body.items() if v is not ...}  # ... leaves a field out
        return self.raw_cdr(tenant.encode(), orjson.dumps(body))

    def state(self, tenant: str = "acme") -> TenantState:
        return self.proc.states[tenant]


def on(outputs: list[Output], topic: str) -> list[dict[str, Any]]:
    """The values of the outputs sent to one topic, in order."""
    return [value for name, _, value in outputs if name == topic]


def one(outputs: list[Output], topic: str) -> dict[str, Any]:
    values = on(outputs, topic)
    assert len(values) == 1, (topic, outputs)
    return values[0]


def dlq_code(outputs: list[Output]) -> str:
    assert [name for name, _, _ in outputs] == ["rater-dlq"], outputs
    return outputs[0][2]["error"]["code"]
