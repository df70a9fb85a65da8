"""The billing rules: apply one validated event to one tenant's state.

Every function here is pure apart from mutating the ``TenantState`` it is
given: no I/O, no clock reads (the wall clock is an argument), no Faust. The
order of work follows SPEC 6.7: checks and duplicates, tenant clock and
expiry, the event itself, zero balance and blocking, then auto-recharge.
"""

from __future__ import annotations

from rater.core import outputs as out
from rater.core.checks import FUTURE_TOLERANCE, check_currency, check_times
from rater.core.clock import DAY, HOUR, add_months, format_time, month_of
from rater.core.errors import (
    AUTO_RECHARGE_NOT_ALLOWED_FOR_NCE,
    FUTURE_TIME,
    NO_TARIFF,
    PURCHASE_NOT_ALLOWED_FOR_NCE,
    UNKNOWN_ACCOUNT,
    UNKNOWN_TOPUP_REQUEST,
    Rejected,
)
from rater.core.messages import AccountEvent, Cdr
from rater.core.money import ZERO, format_money
from rater.core.outputs import Output
from rater.core.state import ID_WINDOW, Lot, TenantState
from rater.core.tariffs import TariffIndex
from rater.core.topics import LEDGER, RATED_CDRS

EXPIRING_NOTICE = 30 * DAY
BACKOFF = 24 * HOUR
LOT_LIFETIME_MONTHS = 12


# --- step 2: tenant clock, expiry, expiring notices -----------------------------------


def _advance(state: TenantState, at: int, emitted: list[Output]) -> None:
    if at > state.clock:
        state.clock = at
    clock = state.clock
    lots = state.lots
    # Lots are sorted by expiry: when the first is not yet within its notice
    # period, no lot is, and this runs for every CDR.
    if lots and clock >= lots[0].expires_at - EXPIRING_NOTICE:
        _expire_and_warn(state, clock, emitted)
    if clock - state.pruned_at >= DAY:
        _prune(state)


def _expire_and_warn(state: TenantState, clock: int, emitted: list[Output]) -> None:
    lots = state.lots
    while lots and lots[0].expires_at <= clock:
        lot = lots.pop(0)
        if lot.remaining > 0:
            emitted.append(out.ledger(state, f"expiry:{lot.lot_id}", "expiry", -lot.remaining))
            emitted.append(
                out.notification(
                    state,
                    "credits_expired",
                    lot.lot_id,
                    {"lot_id": lot.lot_id, "amount": format_money(lot.remaining)},
                )
            )
    for lot in lots:
        if not lot.warned and lot.remaining > 0 and clock >= lot.expires_at - EXPIRING_NOTICE:
            lot.warned = True
            emitted.append(
                out.notification(
                    state,
                    "credits_expiring",
                    lot.lot_id,
                    {
                        "lot_id": lot.lot_id,
                        "amount": format_money(lot.remaining),
                        "expires_at": format_time(lot.expires_at),
                    },
                )
            )


def _prune(state: TenantState) -> None:
    """Forget ids and pool months that no accepted event can reach any more."""
    horizon = state.clock - ID_WINDOW
    state.seen.prune(horizon)
    oldest_month = month_of(horizon)
    for pools in (state.pool_used, state.pool_minutes):
        for key in [key for key in pools if key.split(":", 1)[1] < oldest_month]:
            del pools[key]
    state.pruned_at = state.clock


# --- steps 4 and 5: zero balance, blocking, auto-recharge -----------------------------


def _settle(
    state: TenantState,
    before: int,
    ref: str,
    check_trigger: bool,
    emitted: list[Output],
    after: int | None = None,
) -> None:
    if after is None:
        after = state.balance()
    if before > 0 >= after:
        emitted.append(
            out.notification(state, "balance_zero", ref, {"balance": format_money(after)})
        )
    should_block = after < 0 and not state.post_usage_active
    if should_block != state.blocked:
        state.blocked = should_block
        state.state_seq += 1
        emitted.append(out.service_state(state))
    if check_trigger or after < before:
        _check_trigger(state, after, emitted)


def _check_trigger(state: TenantState, balance: int, emitted: list[Output]) -> None:
    if not state.ar_enabled or state.pending_request or balance > state.ar_trigger:
        return
    if state.backoff_until is not None:
        if state.clock <= state.backoff_until:
            return
        state.backoff_until = None
    state.topup_seq += 1
    state.pending_request = state.topup_seq
    emitted.append(out.topup_request(state, state.topup_seq))


# --- money in: lots, and the NCE deficit transfer ------------------------------------


def _credit(state: TenantState, lot_id: str, amount: int, at: int, kind: str) -> Output:
    """Add a lot that first pays the deficit (SPEC 6.3); return its ledger entry."""
    paid = min(state.deficit, amount)
    state.deficit -= paid
    if amount > paid:
        expires = add_months(at, LOT_LIFETIME_MONTHS)
        state.add_lot(Lot(lot_id, amount, amount - paid, at, expires))
    return out.ledger(state, lot_id, kind, amount)


def _start_post_usage(state: TenantState, event_id: str, emitted: list[Output]) -> None:
    """Post-usage billing begins: the deficit moves to overage (SPEC 7)."""
    deficit = state.deficit
    if deficit > 0:
        state.deficit = 0
        emitted.append(out.overage(state, f"deficit:{event_id}", deficit, None))
        emitted.append(out.ledger(state, f"transfer:{event_id}", "overage_transfer", deficit))


# --- CDRs ----------------------------------------------------------------------------


def apply_cdr(state: TenantState | None, cdr: Cdr, tariffs: TariffIndex, now: int) -> list[Output]:
    """Rate and pay one CDR. Raises :class:`Rejected`; returns [] for a duplicate."""
    if state is None:
        raise Rejected(UNKNOWN_ACCOUNT, "no account_opened for this tenant", cdr.tenant_id)
    started_at = cdr.started_at
    clock = state.clock
    # Times are ints of two 30-bit digits: adding or subtracting one allocates
    # a new int (about 300 instructions), comparing does not. A CDR is mostly
    # after its tenant's clock and before the wall clock, so the plain
    # comparisons settle both tests without the arithmetic.
    if (started_at > now and started_at > now + FUTURE_TOLERANCE) or (
        started_at < clock and started_at < clock - ID_WINDOW
    ):
        check_times(state, started_at, now)  # raises the right rejection
    seen_key = "c:" + cdr.cdr_id
    seen = state.seen
    if seen_key in seen:
        return []
    tariff = tariffs.lookup(cdr.call_type, state.currency, cdr.destination_digits, started_at)
    if tariff is None:
        raise Rejected(NO_TARIFF, "no tariff matches this call", state.tenant_id)

    emitted: list[Output] = []
    lots = state.lots
    before = -state.deficit  # state.balance(), without a call for every CDR
    for lot in lots:
        before += lot.remaining
    if started_at > clock:
        state.clock = clock = started_at
    # _advance's own tests, here because this runs for every CDR: expiry and
    # pruning are rarely due, and then _advance tests again and does them.
    if (lots and clock >= lots[0].expires_at - EXPIRING_NOTICE) or clock - state.pruned_at >= DAY:
        _advance(state, clock, emitted)
    # Only expiry changes the balance before the payment, and it always emits.
    balance = state.balance() if emitted else before
    seen[seen_key] = started_at

    # SPEC 5.2 to 5.4 written out here, not in functions of their own: a Python
    # call costs about 400 instructions and every CDR would make three. The
    # pricing tests and the reference model test them through this code.
    duration = cdr.duration_s
    first = tariff.first_increment_s
    if duration <= first:
        billed = first if duration else 0
    else:
        step = tariff.increment_s
        billed = first + -(-(duration - first) // step) * step  # ceiling division
    plan = cdr.plan
    if cdr.call_type != "outbound" or plan == "pay_as_you_go":
        pool = None
    elif tariff.country == cdr.origin_country:
        pool = "domestic"
    else:
        pool = "international" if plan == "domestic_international" else None
    pool_s = 0
    # Without minutes allocated to this pool and month there is nothing to
    # draw (pool_used only ever counts allocated minutes): most tenants.
    if pool is not None and billed > 0 and state.pool_minutes:
        pool_key = f"{pool}:{month_of(cdr.started_at)}"
        minutes = state.pool_minutes.get(pool_key)
        if minutes:
            used = state.pool_used.get(pool_key, 0)
            pool_s = min(billed, max(0, minutes * 60 - used))
            if pool_s:
                state.pool_used[pool_key] = used + pool_s
    chargeable = billed - pool_s
    # rate * chargeable / 60 rounded half up in micro-units (SPEC 5.4); the fee
    # has at most 6 decimals, so adding it after rounding is the same
    amount = (
        (2 * tariff.rate_per_minute * chargeable + 60) // 120 + tariff.connection_fee
        if chargeable > 0
        else 0
    )

    from_credits = from_deficit = overage_amount = 0
    if amount > 0:
        due = amount
        while due and lots:
            lot = lots[0]
            remaining = lot.remaining
            take = remaining if remaining < due else due  # min() without a call
            lot.remaining = remaining - take
            due -= take
            from_credits += take
            if lot.remaining == 0:
                lots.pop(0)
        if due:
            if state.post_usage_active:
                overage_amount = due
            else:
                state.deficit += due
                from_deficit = due
    moved = from_credits + from_deficit
    balance -= moved  # the lots paid from_credits and the deficit grew by from_deficit

    # Each text is written once: the rated CDR and its ledger entry share them,
    # and the amounts are mostly equal or zero.
    at = format_time(state.clock)
    amount_text = format_money(amount) if amount else ZERO
    balance_text = format_money(balance)
    key = cdr.key  # one key for all of this CDR's outputs: the message's, already bytes
    # At most 15 entries in the display: CPython 3.11 builds a longer one as
    # an empty dict and one insertion per entry, growing it twice on the way
    # (about 600 instructions more per CDR under callgrind); up to 15 entries
    # make one dict of the right size. The last two are stored after it, in
    # the same order, so the JSON is the same.
    rated = {
        "cdr_id": cdr.cdr_id,
        "tenant_id": state.tenant_id,
        "tariff_id": tariff.tariff_id,
        "call_type": cdr.call_type,
        "destination_country": tariff.country,
        "billed_s": billed,
        "pool": pool,
        "pool_s": pool_s,
        "chargeable_s": chargeable,
        "amount": amount_text,
        "currency": state.currency,
        "paid_from_credits": (
            amount_text if from_credits == amount else format_money(from_credits)
        ),
        "paid_from_deficit": format_money(from_deficit) if from_deficit else ZERO,
        "overage_amount": format_money(overage_amount) if overage_amount else ZERO,
        "balance_after": balance_text,
    }
    rated["started_at"] = at if started_at == state.clock else format_time(started_at)
    rated["at"] = at
    emitted.append((RATED_CDRS, key, rated))
    if moved:
        moved_text = "-" + (amount_text if moved == amount else format_money(moved))
        # out.ledger's record, built here like the rated one, from texts already
        # written: a call for most CDRs costs about 500 instructions
        emitted.append(
            (
                LEDGER,
                key,
                {
                    "entry_id": "usage:" + cdr.cdr_id,
                    "tenant_id": state.tenant_id,
                    "kind": "usage",
                    "amount": moved_text,
                    "balance_after": balance_text,
                    "at": at,
                },
            )
        )
    if overage_amount:
        emitted.append(out.overage(state, "cdr:" + cdr.cdr_id, overage_amount, cdr.cdr_id))
    # _settle's rules need doing only when one of them can apply: a zero or
    # negative balance, a block to lift, or a lower balance that reaches the
    # auto-recharge trigger with no request pending (_check_trigger's tests).
    if (
        balance <= 0
        or state.blocked
        or (
            balance < before
            and state.ar_enabled
            and not state.pending_request
            and balance <= state.ar_trigger
        )
    ):
        _settle(state, before, "cdr:" + cdr.cdr_id, False, emitted, balance)
    return emitted


# --- account events ------------------------------------------------------------------


def _open(event: AccountEvent, state: TenantState | None, now: int) -> TenantState | None:
    """Handle ``account_opened``; returns the new state, or None when nothing changes."""
    fields = event.fields
    if state is not None:
        check_times(state, event.at, now, late_allowed=True)
        check_currency(state, fields["currency"])
        return None  # opening again with the same currency changes nothing (SPEC 7)
    if event.at > now + FUTURE_TOLERANCE:
        raise Rejected(
            FUTURE_TIME, "time is more than 5 minutes ahead of the wall clock", event.tenant_id
        )
    state = TenantState(event.tenant_id, fields["currency"], fields["billing_model"], event.at)
    state.contact_email = fields["contact_email"]
    state.language = fields["language"]
    state.seen["e:" + event.event_id] = event.at
    return state


def _topup_n(state: TenantState, request_id: str) -> int | None:
    """The n of a request this tenant has issued, or None for an unknown id."""
    prefix = f"{state.tenant_id}:topup:"
    if not request_id.startswith(prefix):
        return None
    digits = request_id[len(prefix) :]
    if not digits.isdigit() or digits.startswith("0"):
        return None
    n = int(digits)
    return n if 1 <= n <= state.topup_seq else None


def _pending_topup(state: TenantState, event: AccountEvent) -> bool:
    """Whether a top-up result ends the pending request (False: already finished)."""
    n = _topup_n(state, event.fields["request_id"])
    if n is None:
        raise Rejected(
            UNKNOWN_TOPUP_REQUEST,
            f"no top-up request {event.fields['request_id']} was issued",
            state.tenant_id,
        )
    return n == state.pending_request


def apply_event(
    state: TenantState | None, event: AccountEvent, now: int
) -> tuple[TenantState | None, list[Output]]:
    """Apply one account event. Raises :class:`Rejected`.

    Returns the tenant's state (new for a first ``account_opened``) and the
    outputs; an ignored event (duplicate, repeated result) returns no outputs.
    """
    if event.type == "account_opened":
        opened = _open(event, state, now)
        return (opened if opened is not None else state), []
    if state is None:
        raise Rejected(UNKNOWN_ACCOUNT, "no account_opened for this tenant", event.tenant_id)
    fields = event.fields
    check_times(state, event.at, now)
    check_currency(state, fields.get("currency"))
    seen_key = "e:" + event.event_id
    if seen_key in state.seen:
        return state, []

    kind = event.type
    if kind == "credits_purchased" and state.billing_model == "nce":
        raise Rejected(
            PURCHASE_NOT_ALLOWED_FOR_NCE, "NCE tenants cannot buy credits", state.tenant_id
        )
    if kind == "auto_recharge_configured" and fields["enabled"] and state.post_usage_active:
        raise Rejected(
            AUTO_RECHARGE_NOT_ALLOWED_FOR_NCE,
            "auto-recharge cannot be enabled while post-usage billing is active",
            state.tenant_id,
        )
    if kind in ("topup_succeeded", "topup_failed") and not _pending_topup(state, event):
        return state, []  # a repeated result for a finished request is ignored

    emitted: list[Output] = []
    before = state.balance()
    _advance(state, event.at, emitted)
    # Expiry lowered the balance (SPEC 6.4), even when the event then raises it
    # again (a purchase): the trigger is checked. Only expiry emits in step 2.
    expired = bool(emitted) and state.balance() < before
    state.seen[seen_key] = event.at
    check_trigger = _apply_account_change(state, event, emitted) or expired
    _settle(state, before, "event:" + event.event_id, check_trigger, emitted)
    return state, emitted


def _apply_account_change(state: TenantState, event: AccountEvent, emitted: list[Output]) -> bool:
    """Step 3 for an account event; returns whether to check the recharge trigger."""
    kind, fields = event.type, event.fields
    if kind == "credits_purchased":
        lot_id = f"purchase:{event.event_id}"
        emitted.append(_credit(state, lot_id, fields["amount"], event.at, "purchase"))
        return False
    if kind == "topup_succeeded":
        request_id = fields["request_id"]
        state.pending_request = 0
        emitted.append(_credit(state, f"topup:{request_id}", fields["amount"], event.at, "topup"))
        emitted.append(
            out.notification(
                state,
                "auto_recharge_succeeded",
                request_id,
                {
                    "amount": format_money(fields["amount"]),
                    "balance": format_money(state.balance()),
                },
            )
        )
        return True
    if kind == "topup_failed":
        state.pending_request = 0
        state.backoff_until = event.at + BACKOFF
        emitted.append(
            out.notification(
                state, "auto_recharge_failed", fields["request_id"], {"reason": fields["reason"]}
            )
        )
        return False
    if kind == "auto_recharge_configured":
        was_active = state.post_usage_active
        state.ar_enabled = fields["enabled"]
        state.ar_trigger = fields["trigger_balance"]
        state.ar_amount = fields["recharge_amount"]
        state.backoff_until = None
        if state.post_usage_active and not was_active:
            _start_post_usage(state, event.event_id, emitted)
        return True
    if kind == "billing_model_changed":
        model = fields["billing_model"]
        if model == state.billing_model:
            return False
        state.billing_model = model
        if model == "nce":
            if state.ar_enabled:
                emitted.append(
                    out.notification(state, "nce_auto_recharge_enabled", event.event_id, {})
                )
            else:
                _start_post_usage(state, event.event_id, emitted)
        return False
    if kind == "minute_pool_allocated":
        state.pool_minutes[f"{fields['pool']}:{fields['month']}"] = fields["minutes"]
        return False
    # contact_changed
    state.contact_email = fields["contact_email"]
    state.language = fields["language"]
    return False


# --- the expiry sweep ----------------------------------------------------------------


def sweep(state: TenantState, now: int) -> list[Output]:
    """Move an idle tenant's clock to the wall clock and expire what is due (SPEC 6.1)."""
    if now <= state.clock:
        return []
    emitted: list[Output] = []
    before = state.balance()
    _advance(state, now, emitted)
    _settle(state, before, f"sweep:{format_time(now)}", False, emitted)
    return emitted
