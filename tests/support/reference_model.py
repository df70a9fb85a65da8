"""A second, deliberately simple model of the billing rules (SPEC sections 5 to 9).

Written from the SPEC, not from ``rater/core/engine.py``: ``decimal.Decimal``
money, ``datetime`` times, plain dicts, no caches, no fast paths, every rule
spelled out where the SPEC states it. The differential test
(``tests/unit/core/test_reference_model.py``) feeds it and the engine the same
messages and compares every output record and the state after every step.

Where the SPEC leaves room it follows docs/decisions.md ("Rules where the
spec leaves room"). It takes well-formed JSON only: decoding (``invalid_json``,
``invalid_field``, ``key_mismatch``) is tested on its own; here the rejections
that depend on the tenant's state are modelled.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MICRO = Decimal("0.000001")
ZERO = Decimal(0)
FIVE_MINUTES = timedelta(minutes=5)
ID_WINDOW = timedelta(days=35)
NOTICE = timedelta(days=30)
BACKOFF = timedelta(hours=24)
SERVICES = ["tollfree_dialin", "international"]

Output = tuple[str, bytes | None, dict[str, Any]]


class Reject(Exception):
    """A SPEC 9 rejection: the message goes to rater-dlq, nothing else changes."""

    def __init__(self, code: str, tenant_id: str | None) -> None:
        super().__init__(code)
        self.code = code
        self.tenant_id = tenant_id


# --- wire format (SPEC 2) ------------------------------------------------------------


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("z", "Z")).astimezone(UTC)


def time_text(moment: datetime) -> str:
    """UTC with Z; a fractional part only when there is one (docs/decisions.md)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def money(text: str) -> Decimal:
    return Decimal(text)


def money_text(value: Decimal) -> str:
    value = value.quantize(MICRO)
    if value == 0:
        value = ZERO.quantize(MICRO)  # never "-0.000000"
    return f"{value:.6f}"


def plus_12_months(moment: datetime) -> datetime:
    """SPEC 6.1: 12 calendar months later, the day clamped to the month's end."""
    year = moment.year + 1
    day = min(moment.day, calendar.monthrange(year, moment.month)[1])
    return moment.replace(year=year, day=day)


# --- state ---------------------------------------------------------------------------


@dataclass
class RefLot:
    lot_id: str
    amount: Decimal
    remaining: Decimal
    purchased_at: datetime
    expires_at: datetime
    warned: bool = False


@dataclass
class RefTenant:
    tenant_id: str
    currency: str
    billing_model: str
    clock: datetime
    contact_email: str | None = None
    language: str = "en"
    lots: list[RefLot] = field(default_factory=list)
    deficit: Decimal = ZERO
    ar_enabled: bool = False
    ar_trigger: Decimal = ZERO
    ar_amount: Decimal = ZERO
    requests_issued: int = 0
    pending: str | None = None
    backoff_from: datetime | None = None  # `at` of the last topup_failed, until reconfigured
    blocked: bool = False
    states_sent: int = 0
    pool_minutes: dict[tuple[str, str], int] = field(default_factory=dict)
    pool_used: dict[tuple[str, str], int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    @property
    def post_usage_active(self) -> bool:
        """SPEC 7: NCE post-usage billing is active only while auto-recharge is off."""
        return self.billing_model == "nce" and not self.ar_enabled

    def live_lots(self) -> list[RefLot]:
        """Lots with money left, in spending order (SPEC 6.2)."""
        live = [lot for lot in self.lots if lot.remaining > 0]
        return sorted(live, key=lambda lot: (lot.expires_at, lot.purchased_at, lot.lot_id))

    def balance(self) -> Decimal:
        return sum((lot.remaining for lot in self.lots), ZERO) - self.deficit

    def in_backoff(self) -> bool:
        return self.backoff_from is not None and self.clock <= self.backoff_from + BACKOFF


# --- the model -----------------------------------------------------------------------


class ReferenceModel:
    """All tenants and tariff rows; one method per input topic, plus the sweep."""

    def __init__(self) -> None:
        self.tenants: dict[str, RefTenant] = {}
        self.tariffs: dict[str, dict[str, Any]] = {}

    # --- tariffs (SPEC 4.3, 5.1)

    def tariff(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.tariffs.pop(key.decode(), None)
            return
        row = json.loads(value)
        self.tariffs[row["tariff_id"]] = row

    def find_tariff(self, call_type: str, currency: str, digits: str, at: datetime):
        candidates = []
        for row in self.tariffs.values():
            start = parse_time(row["effective_from"])
            end = parse_time(row["effective_to"]) if row.get("effective_to") else None
            if (
                row["call_type"] == call_type
                and row.get("currency", "EUR") == currency
                and start <= at
                and (end is None or at < end)
                and digits.startswith(row["prefix"])
            ):
                candidates.append(row)
        if not candidates:
            return None
        # longest prefix; then latest effective_from; then smallest tariff_id
        longest = max(len(row["prefix"]) for row in candidates)
        candidates = [row for row in candidates if len(row["prefix"]) == longest]
        latest = max(parse_time(row["effective_from"]) for row in candidates)
        candidates = [row for row in candidates if parse_time(row["effective_from"]) == latest]
        return min(candidates, key=lambda row: row["tariff_id"])

    # --- entry points

    def cdr(self, key: bytes, value: bytes, partition: int, offset: int, now: datetime):
        return self._guarded("cdrs", key, value, partition, offset, lambda: self._cdr(value, now))

    def account_event(self, key: bytes, value: bytes, partition: int, offset: int, now: datetime):
        return self._guarded(
            "account-events", key, value, partition, offset, lambda: self._event(value, now)
        )

    def sweep(self, tenant_id: str, now: datetime) -> list[Output]:
        """SPEC 6.1: an idle tenant's clock moves to the wall clock; ref per decisions.md."""
        tenant = self.tenants.get(tenant_id)
        if tenant is None or now <= tenant.clock:
            return []
        outputs: list[Output] = []
        before = tenant.balance()
        forfeited = self._move_clock(tenant, now, outputs)
        self._after(tenant, before, f"sweep:{time_text(now)}", forfeited > 0, outputs)
        return outputs

    def _guarded(self, topic, key, value, partition, offset, apply) -> list[Output]:
        try:
            return apply()
        except Reject as rejected:
            return [
                (
                    "rater-dlq",
                    key,
                    {
                        "dlq_id": f"{topic}:{partition}:{offset}",
                        "tenant_id": rejected.tenant_id,
                        "source_topic": topic,
                        "partition": partition,
                        "offset": offset,
                        "key": key.decode(),
                        "key_encoding": "utf-8",
                        "value": value.decode(),
                        "value_encoding": "utf-8",
                        "error": {"code": rejected.code},
                    },
                )
            ]

    # --- SPEC 9 checks, in the order of precedence

    def _check(self, tenant: RefTenant, at: datetime, now: datetime, late_ok: bool) -> None:
        if at > now + FIVE_MINUTES:
            raise Reject("future_time", tenant.tenant_id)
        if not late_ok and at < tenant.clock - ID_WINDOW:
            raise Reject("too_late", tenant.tenant_id)

    # --- CDRs (SPEC 5, 6.2)

    def _cdr(self, value: bytes, now: datetime) -> list[Output]:
        cdr = json.loads(value)
        tenant_id = cdr["tenant_id"]
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            raise Reject("unknown_account", tenant_id)
        started = parse_time(cdr["started_at"])
        self._check(tenant, started, now, late_ok=False)
        if "cdr:" + cdr["cdr_id"] in tenant.seen:
            return []
        digits = cdr["destination"][1:]
        row = self.find_tariff(cdr["call_type"], tenant.currency, digits, started)
        if row is None:
            raise Reject("no_tariff", tenant_id)

        outputs: list[Output] = []
        before = tenant.balance()
        forfeited = self._move_clock(tenant, started, outputs)
        tenant.seen.add("cdr:" + cdr["cdr_id"])

        # 5.2 billed seconds
        duration = cdr["duration_s"]
        first = row.get("first_increment_s", 60)
        step = row.get("increment_s", 60)
        if duration == 0:
            billed = 0
        elif duration <= first:
            billed = first
        else:
            steps = (duration - first + step - 1) // step
            billed = first + steps * step
        # 5.3 pool
        domestic = row["country"] == cdr["origin_country"]
        pool = None
        if cdr["call_type"] == "outbound":
            plan = cdr["plan"]
            if plan == "domestic" and domestic:
                pool = "domestic"
            elif plan == "domestic_international":
                pool = "domestic" if domestic else "international"
        pool_s = 0
        if pool is not None:
            month = started.strftime("%Y-%m")
            size = tenant.pool_minutes.get((pool, month), 0) * 60
            left = max(0, size - tenant.pool_used.get((pool, month), 0))
            pool_s = min(billed, left)
            tenant.pool_used[(pool, month)] = tenant.pool_used.get((pool, month), 0) + pool_s
        chargeable = billed - pool_s
        # 5.4 amount
        rate = money(row["rate_per_minute"])
        fee = money(row.get("connection_fee", "0"))
        amount = rate * chargeable / 60
        if chargeable > 0:
            amount += fee
        amount = amount.quantize(MICRO, rounding=ROUND_HALF_UP)

        # 6.2 paying
        from_credits = from_deficit = overage = ZERO
        due = amount
        for lot in tenant.live_lots():
            if due == 0:
                break
            take = min(lot.remaining, due)
            lot.remaining -= take
            due -= take
            from_credits += take
        if due > 0:
            if tenant.post_usage_active:
                overage = due
            else:
                tenant.deficit += due
                from_deficit = due
        balance = tenant.balance()
        at = time_text(tenant.clock)
        key = tenant_id.encode()
        outputs.append(
            (
                "rated-cdrs",
                key,
                {
                    "cdr_id": cdr["cdr_id"],
                    "tenant_id": tenant_id,
                    "tariff_id": row["tariff_id"],
                    "call_type": cdr["call_type"],
                    "destination_country": row["country"],
                    "billed_s": billed,
                    "pool": pool,
                    "pool_s": pool_s,
                    "chargeable_s": chargeable,
                    "amount": money_text(amount),
                    "currency": tenant.currency,
                    "paid_from_credits": money_text(from_credits),
                    "paid_from_deficit": money_text(from_deficit),
                    "overage_amount": money_text(overage),
                    "balance_after": money_text(balance),
                    "started_at": time_text(started),
                    "at": at,
                },
            )
        )
        moved = from_credits + from_deficit
        if moved > 0:
            outputs.append(self._ledger(tenant, f"usage:{cdr['cdr_id']}", "usage", -moved))
        if overage > 0:
            outputs.append(self._overage(tenant, f"cdr:{cdr['cdr_id']}", overage, cdr["cdr_id"]))
        self._after(tenant, before, f"cdr:{cdr['cdr_id']}", moved > 0 or forfeited > 0, outputs)
        return outputs

    # --- account events (SPEC 4.2, 6, 7)

    def _event(self, value: bytes, now: datetime) -> list[Output]:
        event = json.loads(value)
        kind = event["type"]
        tenant_id = event["tenant_id"]
        event_id = event["event_id"]
        at = parse_time(event["at"])
        tenant = self.tenants.get(tenant_id)
        if kind == "account_opened":
            if tenant is None:
                if at > now + FIVE_MINUTES:
                    raise Reject("future_time", tenant_id)
                tenant = RefTenant(
                    tenant_id,
                    event["currency"],
                    event.get("billing_model", "prepaid"),
                    at,
                    contact_email=event.get("contact_email"),
                    language=event.get("language", "en"),
                )
                tenant.seen.add("event:" + event_id)
                self.tenants[tenant_id] = tenant
                return []
            self._check(tenant, at, now, late_ok=True)
            if event["currency"] != tenant.currency:
                raise Reject("currency_mismatch", tenant_id)
            return []  # SPEC 7: opening again with the same currency changes nothing
        if tenant is None:
            raise Reject("unknown_account", tenant_id)
        self._check(tenant, at, now, late_ok=False)
        if "currency" in event and event["currency"] != tenant.currency:
            raise Reject("currency_mismatch", tenant_id)
        if "event:" + event_id in tenant.seen:
            return []
        if kind == "credits_purchased" and tenant.billing_model == "nce":
            raise Reject("purchase_not_allowed_for_nce", tenant_id)
        if kind == "auto_recharge_configured" and event["enabled"] and tenant.post_usage_active:
            raise Reject("auto_recharge_not_allowed_for_nce", tenant_id)
        if kind in ("topup_succeeded", "topup_failed"):
            issued = [f"{tenant_id}:topup:{n}" for n in range(1, tenant.requests_issued + 1)]
            if event["request_id"] not in issued:
                raise Reject("unknown_topup_request", tenant_id)
            if event["request_id"] != tenant.pending:
                return []  # a repeated result for a finished request is ignored

        outputs: list[Output] = []
        before = tenant.balance()
        forfeited = self._move_clock(tenant, at, outputs)
        tenant.seen.add("event:" + event_id)
        check_trigger = forfeited > 0
        if kind == "credits_purchased":
            self._add_credits(tenant, f"purchase:{event_id}", money(event["amount"]), at)
            outputs.append(
                self._ledger(tenant, f"purchase:{event_id}", "purchase", money(event["amount"]))
            )
        elif kind == "topup_succeeded":
            request_id = event["request_id"]
            amount = money(event["amount"])
            tenant.pending = None
            self._add_credits(tenant, f"topup:{request_id}", amount, at)
            outputs.append(self._ledger(tenant, f"topup:{request_id}", "topup", amount))
            details = {"amount": money_text(amount), "balance": money_text(tenant.balance())}
            outputs.append(self._notice(tenant, "auto_recharge_succeeded", request_id, details))
            check_trigger = True
        elif kind == "topup_failed":
            tenant.pending = None
            tenant.backoff_from = at
            details = {"reason": event["reason"]}
            outputs.append(
                self._notice(tenant, "auto_recharge_failed", event["request_id"], details)
            )
        elif kind == "auto_recharge_configured":
            was_active = tenant.post_usage_active
            tenant.ar_enabled = event["enabled"]
            tenant.ar_trigger = money(event["trigger_balance"])
            tenant.ar_amount = money(event.get("recharge_amount", "0"))
            tenant.backoff_from = None
            if tenant.post_usage_active and not was_active:
                self._post_usage_starts(tenant, event_id, outputs)
            check_trigger = True
        elif kind == "billing_model_changed":
            model = event["billing_model"]
            if model != tenant.billing_model:
                tenant.billing_model = model
                if model == "nce":
                    if tenant.ar_enabled:
                        outputs.append(
                            self._notice(tenant, "nce_auto_recharge_enabled", event_id, {})
                        )
                    else:
                        self._post_usage_starts(tenant, event_id, outputs)
        elif kind == "minute_pool_allocated":
            tenant.pool_minutes[(event["pool"], event["month"])] = event["minutes"]
        elif kind == "contact_changed":
            tenant.contact_email = event["contact_email"]
            tenant.language = event.get("language", "en")
        else:
            raise AssertionError(kind)
        self._after(tenant, before, f"event:{event_id}", check_trigger, outputs)
        return outputs

    # --- pieces of the order of work (SPEC 6.7)

    def _move_clock(self, tenant: RefTenant, at: datetime, outputs: list[Output]) -> Decimal:
        """Step 2: tenant clock, expiry (6.5), then due expiring notices; returns the forfeit."""
        tenant.clock = max(tenant.clock, at)
        forfeited = ZERO
        for lot in tenant.live_lots():
            if lot.expires_at <= tenant.clock:
                lost = lot.remaining
                lot.remaining = ZERO
                forfeited += lost
                outputs.append(self._ledger(tenant, f"expiry:{lot.lot_id}", "expiry", -lost))
                details = {"lot_id": lot.lot_id, "amount": money_text(lost)}
                outputs.append(self._notice(tenant, "credits_expired", lot.lot_id, details))
        for lot in tenant.live_lots():
            if not lot.warned and tenant.clock >= lot.expires_at - NOTICE:
                lot.warned = True
                details = {
                    "lot_id": lot.lot_id,
                    "amount": money_text(lot.remaining),
                    "expires_at": time_text(lot.expires_at),
                }
                outputs.append(self._notice(tenant, "credits_expiring", lot.lot_id, details))
        tenant.lots = [lot for lot in tenant.lots if lot.remaining > 0]
        return forfeited

    def _add_credits(self, tenant: RefTenant, lot_id: str, amount: Decimal, at: datetime) -> None:
        """SPEC 6.3: the new lot first pays the deficit."""
        paid = min(tenant.deficit, amount)
        tenant.deficit -= paid
        tenant.lots.append(RefLot(lot_id, amount, amount - paid, at, plus_12_months(at)))

    def _post_usage_starts(self, tenant: RefTenant, event_id: str, outputs: list[Output]) -> None:
        """SPEC 7: the deficit moves to overage, the balance is back at zero."""
        deficit = tenant.deficit
        if deficit > 0:
            tenant.deficit = ZERO
            outputs.append(self._overage(tenant, f"deficit:{event_id}", deficit, None))
            outputs.append(
                self._ledger(tenant, f"transfer:{event_id}", "overage_transfer", deficit)
            )

    def _after(
        self, tenant: RefTenant, before: Decimal, ref: str, check: bool, outputs: list[Output]
    ) -> None:
        """Steps 4 and 5: zero balance and blocking (6.6), then the trigger (6.4)."""
        after = tenant.balance()
        if before > 0 and after <= 0:
            details = {"balance": money_text(after)}
            outputs.append(self._notice(tenant, "balance_zero", ref, details))
        may_block = not tenant.post_usage_active
        if not tenant.blocked and may_block and after < 0:
            self._service_state(tenant, True, outputs)
        elif tenant.blocked and (after >= 0 or not may_block):
            self._service_state(tenant, False, outputs)
        if (
            check
            and tenant.ar_enabled
            and tenant.pending is None
            and not tenant.in_backoff()
            and after <= tenant.ar_trigger
        ):
            tenant.requests_issued += 1
            tenant.pending = f"{tenant.tenant_id}:topup:{tenant.requests_issued}"
            outputs.append(
                (
                    "topup-requests",
                    tenant.tenant_id.encode(),
                    {
                        "request_id": tenant.pending,
                        "tenant_id": tenant.tenant_id,
                        "amount": money_text(tenant.ar_amount),
                        "currency": tenant.currency,
                        "balance": money_text(after),
                        "trigger_balance": money_text(tenant.ar_trigger),
                        "at": time_text(tenant.clock),
                    },
                )
            )

    # --- output records (SPEC 8)

    def _service_state(self, tenant: RefTenant, blocked: bool, outputs: list[Output]) -> None:
        tenant.blocked = blocked
        tenant.states_sent += 1
        outputs.append(
            (
                "service-state",
                tenant.tenant_id.encode(),
                {
                    "state_id": f"{tenant.tenant_id}:state:{tenant.states_sent}",
                    "tenant_id": tenant.tenant_id,
                    "blocked": blocked,
                    "services": list(SERVICES),
                    "balance": money_text(tenant.balance()),
                    "at": time_text(tenant.clock),
                },
            )
        )

    def _ledger(self, tenant: RefTenant, entry_id: str, kind: str, amount: Decimal) -> Output:
        return (
            "ledger",
            tenant.tenant_id.encode(),
            {
                "entry_id": entry_id,
                "tenant_id": tenant.tenant_id,
                "kind": kind,
                "amount": money_text(amount),
                "balance_after": money_text(tenant.balance()),
                "at": time_text(tenant.clock),
            },
        )

    def _overage(
        self, tenant: RefTenant, overage_id: str, amount: Decimal, cdr_id: str | None
    ) -> Output:
        return (
            "overage",
            tenant.tenant_id.encode(),
            {
                "overage_id": overage_id,
                "tenant_id": tenant.tenant_id,
                "amount": money_text(amount),
                "currency": tenant.currency,
                "cdr_id": cdr_id,
                "at": time_text(tenant.clock),
            },
        )

    def _notice(self, tenant: RefTenant, kind: str, ref: str, details: dict[str, Any]) -> Output:
        if tenant.contact_email is not None:
            details = details | {
                "contact_email": tenant.contact_email,
                "language": tenant.language,
            }
        return (
            "notifications",
            tenant.tenant_id.encode(),
            {
                "notification_id": f"{kind}:{ref}",
                "tenant_id": tenant.tenant_id,
                "type": kind,
                "at": time_text(tenant.clock),
                "details": details,
            },
        )

    # --- the state, in the shape the differential test compares

    def snapshot(self, tenant_id: str) -> dict[str, Any]:
        tenant = self.tenants[tenant_id]
        oldest_month = (tenant.clock - ID_WINDOW).strftime("%Y-%m")
        return {
            "currency": tenant.currency,
            "billing_model": tenant.billing_model,
            "post_usage_active": tenant.post_usage_active,
            "contact": (tenant.contact_email, tenant.language),
            "clock": time_text(tenant.clock),
            "balance": money_text(tenant.balance()),
            "deficit": money_text(tenant.deficit),
            "blocked": tenant.blocked,
            "lots": [
                (
                    lot.lot_id,
                    money_text(lot.amount),
                    money_text(lot.remaining),
                    time_text(lot.purchased_at),
                    time_text(lot.expires_at),
                    lot.warned,
                )
                for lot in tenant.live_lots()
            ],
            "auto_recharge": (
                tenant.ar_enabled,
                money_text(tenant.ar_trigger),
                money_text(tenant.ar_amount),
            ),
            "pending": tenant.pending,
            "requests_issued": tenant.requests_issued,
            "backoff_until": (
                time_text(tenant.backoff_from + BACKOFF) if tenant.in_backoff() else None
            ),
            "states_sent": tenant.states_sent,
            "pool_minutes": {
                f"{pool}:{month}": minutes
                for (pool, month), minutes in tenant.pool_minutes.items()
                if month >= oldest_month
            },
            "pool_used": {
                f"{pool}:{month}": used
                for (pool, month), used in tenant.pool_used.items()
                if month >= oldest_month and used > 0
            },
        }
