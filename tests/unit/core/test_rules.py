"""Balance rules of SPEC sections 6 and 7, each with its arithmetic written out.

Default tariff: outbound to +49, DE, 0.0240 EUR a minute, 60 s increments.
"""

from __future__ import annotations

from tests.support.harness import Harness, on, one


def prepaid(credits: str | None = "10", **open_fields) -> Harness:
    h = Harness()
    h.tariff("T1")
    h.open("2026-01-01T00:00:00Z", **open_fields)
    if credits:
        h.event("credits_purchased", "2026-01-01T00:00:00Z", amount=credits)
    return h


def test_purchase_creates_a_lot_and_a_ledger_entry() -> None:
    h = prepaid(credits=None)
    outputs = h.event("credits_purchased", "2026-01-05T10:00:00Z", amount="12.5")
    entry = one(outputs, "ledger")
    assert entry == {
        "entry_id": "purchase:e2",
        "tenant_id": "acme",
        "kind": "purchase",
        "amount": "12.500000",
        "balance_after": "12.500000",
        "at": "2026-01-05T10:00:00Z",
    }
    (lot,) = h.state().lots
    assert (lot.lot_id, lot.remaining) == ("purchase:e2", 12_500_000)


def test_cdr_is_rated_and_paid_from_credits() -> None:
    h = prepaid("10")
    outputs = h.cdr("2026-01-02T09:00:00Z", 61)  # billed 120 s: 0.024 * 2 = 0.048
    rated = one(outputs, "rated-cdrs")
    assert rated == {
        "cdr_id": "c3",
        "tenant_id": "acme",
        "tariff_id": "T1",
        "call_type": "outbound",
        "destination_country": "DE",
        "billed_s": 120,
        "pool": None,
        "pool_s": 0,
        "chargeable_s": 120,
        "amount": "0.048000",
        "currency": "EUR",
        "paid_from_credits": "0.048000",
        "paid_from_deficit": "0.000000",
        "overage_amount": "0.000000",
        "balance_after": "9.952000",
        "started_at": "2026-01-02T09:00:00Z",
        "at": "2026-01-02T09:00:00Z",
    }
    assert one(outputs, "ledger")["amount"] == "-0.048000"
    assert one(outputs, "ledger")["entry_id"] == "usage:c3"


def test_zero_amount_cdr_has_a_rated_record_but_no_ledger_entry() -> None:
    h = prepaid("10")
    outputs = h.cdr("2026-01-02T09:00:00Z", 0)
    assert one(outputs, "rated-cdrs")["amount"] == "0.000000"
    assert on(outputs, "ledger") == []


def test_lots_are_spent_earliest_expiry_first() -> None:
    h = prepaid(credits=None)
    h.event("credits_purchased", "2026-01-10T00:00:00Z", amount="0.03")  # e2, expires later
    h.event("credits_purchased", "2026-01-01T00:00:00Z", amount="1")  # e3, expires first
    h.cdr("2026-01-11T00:00:00Z", 60)  # 0.024 from e3
    lots = {lot.lot_id: lot.remaining for lot in h.state().lots}
    assert lots == {"purchase:e2": 30_000, "purchase:e3": 976_000}


def test_usage_beyond_credits_goes_to_deficit_and_blocks() -> None:
    h = prepaid("0.03")
    outputs = h.cdr("2026-01-02T00:00:00Z", 120)  # 0.048: 0.03 credits + 0.018 deficit
    rated = one(outputs, "rated-cdrs")
    assert (rated["paid_from_credits"], rated["paid_from_deficit"]) == ("0.030000", "0.018000")
    assert rated["balance_after"] == "-0.018000"
    assert one(outputs, "ledger")["amount"] == "-0.048000"
    state = one(outputs, "service-state")
    assert state == {
        "state_id": "acme:state:1",
        "tenant_id": "acme",
        "blocked": True,
        "services": ["tollfree_dialin", "international"],
        "balance": "-0.018000",
        "at": "2026-01-02T00:00:00Z",
    }
    zero = one(outputs, "notifications")
    assert zero["notification_id"] == "balance_zero:cdr:c3"
    assert zero["details"] == {"balance": "-0.018000"}


def test_blocked_usage_is_still_rated_and_a_purchase_pays_the_deficit_and_unblocks() -> None:
    h = prepaid("0.03")
    h.cdr("2026-01-02T00:00:00Z", 120)  # balance -0.018
    second = h.cdr("2026-01-02T01:00:00Z", 60)  # -0.042, no second block
    assert one(second, "rated-cdrs")["paid_from_deficit"] == "0.024000"
    assert on(second, "service-state") == []
    assert on(second, "notifications") == []  # balance was not > 0 before
    outputs = h.event("credits_purchased", "2026-01-03T00:00:00Z", amount="1")
    assert one(outputs, "ledger")["balance_after"] == "0.958000"  # 1 - 0.042
    assert one(outputs, "service-state")["blocked"] is False
    assert one(outputs, "service-state")["state_id"] == "acme:state:2"
    assert [lot.remaining for lot in h.state().lots] == [958_000]
    assert h.state().deficit == 0


def test_purchase_smaller_than_the_deficit_leaves_no_lot() -> None:
    h = prepaid("0.01")
    h.cdr("2026-01-02T00:00:00Z", 60)  # -0.014
    outputs = h.event("credits_purchased", "2026-01-03T00:00:00Z", amount="0.004")
    assert one(outputs, "ledger")["balance_after"] == "-0.010000"
    assert on(outputs, "service-state") == []
    assert h.state().lots == []


def test_an_event_that_reaches_zero_names_itself_in_the_notification() -> None:
    h = prepaid("1", billing_model="prepaid")
    h.cdr("2026-01-02T00:00:00Z", 60)  # 0.976 left, expires 2027-01-01
    outputs = h.event("contact_changed", "2027-01-01T00:00:00Z", contact_email="a@b.cc")
    zero = [n for n in on(outputs, "notifications") if n["type"] == "balance_zero"]
    assert [n["notification_id"] for n in zero] == ["balance_zero:event:e4"]


def test_a_cdr_and_an_event_with_the_same_id_get_different_output_ids() -> None:
    """SPEC 8: a ref names what caused it, so a CDR id and an event id cannot collide."""
    h = prepaid("0.024")
    h.ids = 100
    first = h.cdr("2026-01-02T00:00:00Z", 60)  # c101 takes the balance to exactly zero
    h.event("credits_purchased", "2026-01-02T00:00:01Z", amount="1")  # expires 2027-01-02
    second = h.raw_event(
        b"acme",
        b'{"type": "contact_changed", "event_id": "c101", "tenant_id": "acme",'
        b' "at": "2027-01-03T00:00:00Z", "contact_email": "a@b.cc"}',
    )  # the expiry it finds takes the balance to zero again
    zero = [n for n in on(first + second, "notifications") if n["type"] == "balance_zero"]
    assert [n["notification_id"] for n in zero] == [
        "balance_zero:cdr:c101",
        "balance_zero:event:c101",
    ]


def test_exact_zero_notifies_balance_zero_but_does_not_block() -> None:
    h = prepaid("0.024")
    outputs = h.cdr("2026-01-02T00:00:00Z", 60)
    assert one(outputs, "notifications")["type"] == "balance_zero"
    assert on(outputs, "service-state") == []


def test_pools_cover_domestic_minutes_per_utc_month() -> None:
    h = prepaid("10")
    h.event(
        "minute_pool_allocated", "2026-01-01T00:00:00Z", pool="domestic", month="2026-01", minutes=2
    )
    first = one(h.cdr("2026-01-05T00:00:00Z", 90, plan="domestic"), "rated-cdrs")
    assert (first["pool"], first["pool_s"], first["chargeable_s"]) == ("domestic", 120, 0)
    second = one(h.cdr("2026-01-06T00:00:00Z", 60, plan="domestic"), "rated-cdrs")
    assert (second["pool_s"], second["chargeable_s"], second["amount"]) == (0, 60, "0.024000")
    february = one(h.cdr("2026-02-01T00:00:00Z", 60, plan="domestic"), "rated-cdrs")
    assert (february["pool"], february["pool_s"]) == ("domestic", 0)


def test_a_partly_covered_call_pays_the_rest_and_the_connection_fee() -> None:
    h = prepaid("10")
    h.tariff("T1", connection_fee="0.1")
    h.event(
        "minute_pool_allocated", "2026-01-01T00:00:00Z", pool="domestic", month="2026-01", minutes=1
    )
    rated = one(h.cdr("2026-01-05T00:00:00Z", 150, plan="domestic"), "rated-cdrs")
    # billed 180 s, pool 60, chargeable 120: 0.024 * 2 + 0.1 fee = 0.148
    assert (rated["pool_s"], rated["chargeable_s"], rated["amount"]) == (60, 120, "0.148000")


def test_allocation_replaces_the_pool_size() -> None:
    h = prepaid("10")
    for minutes in (5, 1):
        h.event(
            "minute_pool_allocated",
            "2026-01-01T00:00:00Z",
            pool="domestic",
            month="2026-01",
            minutes=minutes,
        )
    rated = one(h.cdr("2026-01-05T00:00:00Z", 120, plan="domestic"), "rated-cdrs")
    assert (rated["pool_s"], rated["chargeable_s"]) == (60, 60)


def test_international_calls_use_the_international_pool_only_on_that_plan() -> None:
    h = prepaid("10")
    h.tariff("FR", prefix="33", country="FR", rate_per_minute="0.5")
    h.event(
        "minute_pool_allocated",
        "2026-01-01T00:00:00Z",
        pool="international",
        month="2026-01",
        minutes=10,
    )
    covered = one(
        h.cdr(
            "2026-01-05T00:00:00Z", 60, plan="domestic_international", destination="+33123456789"
        ),
        "rated-cdrs",
    )
    assert (covered["pool"], covered["pool_s"], covered["amount"]) == (
        "international",
        60,
        "0.000000",
    )
    domestic_plan = one(
        h.cdr("2026-01-05T00:00:00Z", 60, plan="domestic", destination="+33123456789"), "rated-cdrs"
    )
    assert (domestic_plan["pool"], domestic_plan["amount"]) == (None, "0.500000")


def test_conference_calls_never_use_a_pool() -> None:
    h = prepaid("10")
    h.tariff("CONF", call_type="conference_tollfree_dialin", prefix="800", rate_per_minute="0.06")
    h.event(
        "minute_pool_allocated",
        "2026-01-01T00:00:00Z",
        pool="domestic",
        month="2026-01",
        minutes=100,
    )
    rated = one(
        h.cdr(
            "2026-01-05T00:00:00Z",
            30,
            call_type="conference_tollfree_dialin",
            destination="+800123456",
        ),
        "rated-cdrs",
    )
    assert (rated["pool"], rated["amount"], rated["destination_country"]) == (
        None,
        "0.060000",
        "DE",
    )


# --- expiry ---------------------------------------------------------------------------


def test_credits_expire_after_twelve_months_with_ledger_and_notice() -> None:
    h = prepaid(credits=None, contact_email="ops@acme.example", language="de")
    h.event("credits_purchased", "2026-01-15T12:00:00Z", amount="5")
    h.cdr("2026-02-01T00:00:00Z", 60)  # 4.976 left
    warning = h.cdr("2026-12-16T12:00:00Z", 0)  # 30 days before 2027-01-15T12:00
    notice = one(warning, "notifications")
    assert notice["notification_id"] == "credits_expiring:purchase:e2"
    assert notice["details"] == {
        "lot_id": "purchase:e2",
        "amount": "4.976000",
        "expires_at": "2027-01-15T12:00:00Z",
        "contact_email": "ops@acme.example",
        "language": "de",
    }
    assert on(h.cdr("2026-12-20T00:00:00Z", 0), "notifications") == []  # only once
    expired = h.cdr("2027-01-15T12:00:00Z", 0)
    entry = one(expired, "ledger")
    assert (entry["entry_id"], entry["kind"], entry["amount"], entry["balance_after"]) == (
        "expiry:purchase:e2",
        "expiry",
        "-4.976000",
        "0.000000",
    )
    types = [n["type"] for n in on(expired, "notifications")]
    assert types == ["credits_expired", "balance_zero"]
    assert h.state().lots == []


def test_a_lot_expiring_before_the_call_does_not_pay_for_it() -> None:
    h = prepaid("1")  # bought 2026-01-01, expires 2027-01-01
    outputs = h.cdr("2027-01-01T00:00:00Z", 60)
    assert [e["kind"] for e in on(outputs, "ledger")] == ["expiry", "usage"]
    assert one(outputs, "rated-cdrs")["paid_from_deficit"] == "0.024000"
    assert one(outputs, "service-state")["blocked"] is True


def test_sweep_expires_idle_tenants_at_the_wall_clock() -> None:
    h = prepaid("1")
    outputs = h.proc.sweep("acme", h.now)
    assert [e["kind"] for e in on(outputs, "ledger")] == ["expiry"]
    zero = [n for n in on(outputs, "notifications") if n["type"] == "balance_zero"]
    assert zero[0]["notification_id"] == "balance_zero:sweep:2040-01-01T00:00:00Z"
    assert h.proc.sweep("acme", h.now) == []


# --- auto-recharge ----------------------------------------------------------------------


def recharging() -> Harness:
    h = prepaid("1")
    h.event(
        "auto_recharge_configured",
        "2026-01-01T00:00:00Z",
        enabled=True,
        trigger_balance="0.98",
        recharge_amount="20",
    )
    return h


def test_trigger_emits_one_request_and_waits_for_its_result() -> None:
    h = recharging()
    first = h.cdr("2026-01-02T00:00:00Z", 60)  # 0.976 <= 0.98
    request = one(first, "topup-requests")
    assert request == {
        "request_id": "acme:topup:1",
        "tenant_id": "acme",
        "amount": "20.000000",
        "currency": "EUR",
        "balance": "0.976000",
        "trigger_balance": "0.980000",
        "at": "2026-01-02T00:00:00Z",
    }
    assert on(h.cdr("2026-01-02T00:01:00Z", 60), "topup-requests") == []  # one pending
    done = h.event(
        "topup_succeeded", "2026-01-02T00:02:00Z", request_id="acme:topup:1", amount="20"
    )
    entry = one(done, "ledger")
    assert (entry["entry_id"], entry["kind"], entry["balance_after"]) == (
        "topup:acme:topup:1",
        "topup",
        "20.952000",
    )
    assert one(done, "notifications")["details"] == {"amount": "20.000000", "balance": "20.952000"}
    assert on(done, "topup-requests") == []
    again = h.event(
        "topup_succeeded", "2026-01-02T00:03:00Z", request_id="acme:topup:1", amount="20"
    )
    assert again == []  # a repeated result is ignored


def test_configuring_checks_the_trigger_at_once() -> None:
    h = prepaid("1")
    outputs = h.event(
        "auto_recharge_configured",
        "2026-01-01T00:00:00Z",
        enabled=True,
        trigger_balance="5",
        recharge_amount="20",
    )
    assert one(outputs, "topup-requests")["request_id"] == "acme:topup:1"


def test_failure_backs_off_for_24_hours_of_tenant_clock() -> None:
    h = recharging()
    h.cdr("2026-01-02T00:00:00Z", 60)
    failed = h.event(
        "topup_failed", "2026-01-02T00:00:10Z", request_id="acme:topup:1", reason="card expired"
    )
    assert one(failed, "notifications")["notification_id"] == "auto_recharge_failed:acme:topup:1"
    assert one(failed, "notifications")["details"] == {"reason": "card expired"}
    assert on(h.cdr("2026-01-03T00:00:10Z", 1), "topup-requests") == []  # exactly +24 h
    retry = one(h.cdr("2026-01-03T00:00:11Z", 1), "topup-requests")
    assert retry["request_id"] == "acme:topup:2"


def test_reconfiguring_ends_the_back_off() -> None:
    h = recharging()
    h.cdr("2026-01-02T00:00:00Z", 60)
    h.event("topup_failed", "2026-01-02T00:00:10Z", request_id="acme:topup:1", reason="x")
    outputs = h.event(
        "auto_recharge_configured",
        "2026-01-02T00:01:00Z",
        enabled=True,
        trigger_balance="0.98",
        recharge_amount="20",
    )
    assert one(outputs, "topup-requests")["request_id"] == "acme:topup:2"


def test_success_rechecks_the_trigger() -> None:
    h = recharging()
    h.cdr("2026-01-02T00:00:00Z", 60)
    done = h.event(
        "topup_succeeded", "2026-01-02T00:02:00Z", request_id="acme:topup:1", amount="0.001"
    )  # 0.977 still <= 0.98
    assert one(done, "topup-requests")["request_id"] == "acme:topup:2"


# --- NCE ---------------------------------------------------------------------------------


def test_nce_spends_credits_first_then_overage_and_never_goes_below_zero() -> None:
    h = prepaid("0.03")
    h.event("billing_model_changed", "2026-01-01T00:00:00Z", billing_model="nce")
    outputs = h.cdr("2026-01-02T00:00:00Z", 120)  # 0.048: 0.03 credits + 0.018 overage
    rated = one(outputs, "rated-cdrs")
    assert (rated["paid_from_credits"], rated["overage_amount"], rated["balance_after"]) == (
        "0.030000",
        "0.018000",
        "0.000000",
    )
    assert one(outputs, "overage") == {
        "overage_id": "cdr:c4",
        "tenant_id": "acme",
        "amount": "0.018000",
        "currency": "EUR",
        "cdr_id": "c4",
        "at": "2026-01-02T00:00:00Z",
    }
    assert one(outputs, "ledger")["amount"] == "-0.030000"
    assert on(outputs, "service-state") == []
    assert one(outputs, "notifications")["type"] == "balance_zero"
    only_overage = h.cdr("2026-01-02T00:05:00Z", 60)
    assert on(only_overage, "ledger") == []
    assert one(only_overage, "overage")["amount"] == "0.024000"


def test_nce_tenants_cannot_buy_credits() -> None:
    h = prepaid("1", billing_model="nce")
    assert h.state().lots == []  # the purchase at open was rejected
    outputs = h.event("credits_purchased", "2026-01-02T00:00:00Z", amount="1")
    assert one(outputs, "rater-dlq")["error"]["code"] == "purchase_not_allowed_for_nce"


def test_switch_to_nce_with_auto_recharge_on_warns_and_keeps_prepaid_rules() -> None:
    h = recharging()
    outputs = h.event("billing_model_changed", "2026-01-01T01:00:00Z", billing_model="nce")
    assert one(outputs, "notifications")["notification_id"] == "nce_auto_recharge_enabled:e4"
    assert one(outputs, "notifications")["details"] == {}
    assert h.state().pending_request == 0
    blocked = h.cdr("2026-01-02T00:00:00Z", 3000)  # 50 min * 0.024 = 1.2 > 1
    assert one(blocked, "rated-cdrs")["paid_from_deficit"] == "0.200000"
    assert on(blocked, "overage") == []
    assert one(blocked, "service-state")["blocked"] is True


def test_disabling_auto_recharge_starts_post_usage_and_moves_the_deficit() -> None:
    h = prepaid("1", billing_model="prepaid")
    h.event(
        "auto_recharge_configured",
        "2026-01-01T00:00:00Z",
        enabled=True,
        trigger_balance="0",
        recharge_amount="20",
    )
    h.event("billing_model_changed", "2026-01-01T01:00:00Z", billing_model="nce")
    h.cdr("2026-01-02T00:00:00Z", 3000)  # -0.2, request acme:topup:1 pending
    h.event("topup_failed", "2026-01-02T00:00:01Z", request_id="acme:topup:1", reason="x")
    outputs = h.event(
        "auto_recharge_configured", "2026-01-02T00:10:00Z", enabled=False, trigger_balance="0"
    )
    assert one(outputs, "overage") == {
        "overage_id": "deficit:e7",
        "tenant_id": "acme",
        "amount": "0.200000",
        "currency": "EUR",
        "cdr_id": None,
        "at": "2026-01-02T00:10:00Z",
    }
    entry = one(outputs, "ledger")
    assert (entry["entry_id"], entry["kind"], entry["amount"], entry["balance_after"]) == (
        "transfer:e7",
        "overage_transfer",
        "0.200000",
        "0.000000",
    )
    assert one(outputs, "service-state")["blocked"] is False
    rejected = h.event(
        "auto_recharge_configured",
        "2026-01-02T00:11:00Z",
        enabled=True,
        trigger_balance="0",
        recharge_amount="20",
    )
    assert one(rejected, "rater-dlq")["error"]["code"] == "auto_recharge_not_allowed_for_nce"


def test_switch_to_nce_without_auto_recharge_moves_the_deficit_at_once() -> None:
    h = prepaid("0.01")
    h.cdr("2026-01-02T00:00:00Z", 60)  # -0.014
    outputs = h.event("billing_model_changed", "2026-01-03T00:00:00Z", billing_model="nce")
    assert one(outputs, "overage")["amount"] == "0.014000"
    assert one(outputs, "service-state")["blocked"] is False
    back = h.event("billing_model_changed", "2026-01-04T00:00:00Z", billing_model="prepaid")
    assert back == []
    assert one(h.cdr("2026-01-05T00:00:00Z", 60), "service-state")["blocked"] is True


# --- accounts and contacts ------------------------------------------------------------------


def test_reopening_with_the_same_currency_changes_nothing() -> None:
    h = prepaid("1")
    assert h.open("2026-01-03T00:00:00Z", billing_model="nce") == []
    assert h.state().billing_model == "prepaid"
    assert h.state().clock == prepaid("1").state().clock


def test_contact_changed_reaches_later_notices() -> None:
    h = prepaid("0.024")
    h.event("contact_changed", "2026-01-01T00:00:00Z", contact_email="a@b.example")
    notice = one(h.cdr("2026-01-02T00:00:00Z", 60), "notifications")
    assert notice["details"] == {
        "balance": "0.000000",
        "contact_email": "a@b.example",
        "language": "en",
    }
