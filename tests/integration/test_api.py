"""The operator API (SPEC 11) on two workers of one group, on the real broker.

Balances are asked of one worker; the tenants whose partitions the other owns
are forwarded to it. They must equal the pure core's state field by field,
before and after admin writes, and while a third worker joins and one leaves
every answer is the right figure or a 503, never another one. Each admin write
is tried valid and invalid (every 422 code it can give), with and without the
token, and a valid one must show in the balance once the rater applied it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from rater.config import Settings
from rater.core.balance import balance_view
from rater.core.engine import apply_event
from rater.core.messages import decode_account_event
from rater.core.state import TenantState
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, Scenario, build
from rater.stream.placement import partition_of
from tests.support.api_client import (
    TOKEN,
    ApiWorker,
    call,
    copy_state,
    ready,
    settled,
    until,
)

# (method, command, tenant, body, the 422 code the rater would give)
REJECTED = [
    ("POST", "purchases", "prepaid", {"amount": "abc"}, "invalid_field"),
    ("POST", "purchases", "prepaid", {"amount": "0"}, "invalid_field"),
    ("POST", "purchases", "prepaid", {"amount": "5", "event_id": ""}, "invalid_field"),
    ("POST", "purchases", "x" * 65, {"amount": "5"}, "invalid_field"),
    ("POST", "purchases", "ghost", {"amount": "5"}, "unknown_account"),
    ("POST", "purchases", "prepaid", {"amount": "5", "currency": "USD"}, "currency_mismatch"),
    ("POST", "purchases", "nce", {"amount": "5"}, "purchase_not_allowed_for_nce"),
    (
        "PUT",
        "auto-recharge",
        "prepaid",
        {"enabled": "yes", "trigger_balance": "1"},
        "invalid_field",
    ),
    (
        "PUT",
        "auto-recharge",
        "prepaid",
        {"enabled": True, "trigger_balance": "1", "recharge_amount": "0"},
        "invalid_field",
    ),
    (
        "PUT",
        "auto-recharge",
        "ghost",
        {"enabled": False, "trigger_balance": "1"},
        "unknown_account",
    ),
    (
        "PUT",
        "auto-recharge",
        "nce",
        {"enabled": True, "trigger_balance": "1", "recharge_amount": "10"},
        "auto_recharge_not_allowed_for_nce",
    ),
    ("PUT", "billing-model", "prepaid", {"billing_model": "postpaid"}, "invalid_field"),
    ("PUT", "billing-model", "ghost", {"billing_model": "nce"}, "unknown_account"),
    ("PUT", "contact", "prepaid", {"contact_email": "not an address"}, "invalid_field"),
    (
        "PUT",
        "contact",
        "prepaid",
        {"contact_email": "a@b.example", "language": "fr"},
        "invalid_field",
    ),
    ("PUT", "contact", "ghost", {"contact_email": "a@b.example"}, "unknown_account"),
]
# Valid writes, in order; the first is sent twice (a client's retry).
ACCEPTED = [
    ("POST", "purchases", "prepaid", {"amount": "50", "event_id": "api-buy-1"}),
    ("POST", "purchases", "prepaid", {"amount": "50", "event_id": "api-buy-1"}),
    ("POST", "purchases", "recharge", {"amount": "7.25"}),
    ("PUT", "auto-recharge", "recharge", {"enabled": False, "trigger_balance": "0"}),
    ("PUT", "billing-model", "switcher", {"billing_model": "prepaid", "event_id": "api-bm-1"}),
    ("PUT", "contact", "prepaid", {"contact_email": "new@prepaid.example", "language": "de"}),
]
WRITES = {
    ("POST", "purchases"),
    ("PUT", "auto-recharge"),
    ("PUT", "billing-model"),
    ("PUT", "contact"),
}


def views(states: dict[str, TenantState]) -> dict[str, dict[str, Any]]:
    return {tenant: balance_view(state) for tenant, state in states.items()}


async def balances(worker: ApiWorker, tenants: list[str]) -> dict[str, tuple[int, Any]]:
    return {
        tenant: await call(worker.port, "GET", f"/tenants/{tenant}/balance", token=TOKEN)
        for tenant in tenants
    }


def differences(got: dict[str, tuple[int, Any]], want: dict[str, dict[str, Any]]) -> list[str]:
    """Field by field: what a worker answered that is not the core's state."""
    lines = []
    for tenant, (status, body) in got.items():
        if status != 200:
            lines.append(f"{tenant}: {status} {body}")
            continue
        for field in sorted(want[tenant].keys() | body.keys()):
            if body.get(field) != want[tenant].get(field):
                mine, core = body.get(field), want[tenant].get(field)
                lines.append(f"{tenant}.{field}: worker {mine!r}, core {core!r}")
    return lines


async def test_balances_and_admin_writes_from_either_worker_equal_the_core(
    settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, api_token=TOKEN)
    scenario = build(cdrs_per_tenant=20, seed=5)
    tenants = sorted(scenario.states)
    a, b = ApiWorker(settings, tmp_path, "a"), ApiWorker(settings, tmp_path, "b")
    workers = [a, b]
    try:
        for worker in workers:
            worker.start()

        async def both_ready() -> tuple[list[int], list[int]] | None:
            held_a, held_b = await ready(a), await ready(b)
            if held_a and held_b and sorted(held_a + held_b) == list(range(settings.partitions)):
                return held_a, held_b
            return None

        held_a, held_b = await until("both workers ready", both_ready, 120, workers)
        homes = {tenant: partition_of(tenant.encode(), settings.partitions) for tenant in tenants}
        forwarded = [tenant for tenant in tenants if homes[tenant] in held_b]
        assert forwarded and len(forwarded) < len(tenants), (homes, held_a, held_b)

        await produce_inputs(settings, scenario.messages, TARIFFS)
        want = views(scenario.states)

        async def as_the_core() -> bool:
            return not differences(await balances(a, tenants), want)

        await until("every balance equal to the core's", as_the_core, 120, workers)
        for worker in workers:  # both answer for every tenant, the same
            assert differences(await balances(worker, tenants), want) == []

        # Unknown tenant: 404 from the owner, asked directly or through the other worker.
        for worker in workers:
            status, body = await call(worker.port, "GET", "/tenants/ghost/balance", token=TOKEN)
            assert (status, body["error"]["code"]) == (404, "unknown_account")
        # The token: needed on tenant paths, not on the probes and the scrape.
        for token in (None, "wrong"):
            assert (await call(a.port, "GET", "/tenants/prepaid/balance", token=token))[0] == 401
            for method, command in sorted(WRITES):
                path = f"/tenants/prepaid/{command}"
                assert (await call(a.port, method, path, {"amount": "1"}, token))[0] == 401
        for path in ("/health", "/ready", "/metrics"):
            assert (await call(a.port, "GET", path))[0] == 200, path

        await check_admin_writes(settings, a, workers, scenario, tenants)
        await check_rebalance(settings, tmp_path, a, b, tenants)
    finally:
        for worker in workers:
            worker.stop()


async def check_admin_writes(
    settings: Settings,
    asked: ApiWorker,
    workers: list[ApiWorker],
    scenario: Scenario,
    tenants: list[str],
) -> None:
    """Every write valid and invalid; the valid ones show in the balance, the others nowhere."""
    core = scenario.states
    for method, command in sorted(WRITES):
        for raw in (b"{not json", b"[1, 2]", b""):
            status, body = await call(
                asked.port, method, f"/tenants/prepaid/{command}", raw=raw, token=TOKEN
            )
            assert (status, body["error"]["code"]) == (400, "invalid_json"), (command, raw)
    for method, command, tenant, request, code in REJECTED:
        status, body = await call(
            asked.port, method, f"/tenants/{tenant}/{command}", request, TOKEN
        )
        assert (status, body["error"]["code"]) == (422, code), (command, tenant, request, body)
    written = []
    for method, command, tenant, request in ACCEPTED:
        status, event = await call(
            asked.port, method, f"/tenants/{tenant}/{command}", request, TOKEN
        )
        assert status == 202, (command, tenant, event)
        assert event["tenant_id"] == tenant and event["at"].endswith("Z")
        for field, value in request.items():
            assert event[field] == value, (field, event)
        written.append(event)
    assert written[0] == {**written[1], "at": written[0]["at"]}  # the retry: same event id

    # What the rater will do with them: the core's states, with the same events applied.
    expected = {tenant: copy_state(state) for tenant, state in core.items()}
    now = time.time_ns() // 1000
    for event in written:
        tenant = event["tenant_id"]
        decoded = decode_account_event(tenant.encode(), orjson.dumps(event))
        expected[tenant] = apply_event(expected[tenant], decoded, now)[0]
    want = views(expected)

    async def applied() -> bool:
        return not differences(await balances(asked, tenants), want)

    await until("the admin writes applied", applied, 120, workers)
    assert want["prepaid"]["contact_email"] == "new@prepaid.example"
    assert want["switcher"]["billing_model"] == "prepaid"

    # Nothing produced for a refused write; the retry is produced but applied once.
    events = await read_all(settings.bootstrap_servers, settings.topic("account-events"))
    scenario_ids = {
        orjson.loads(value)["event_id"]
        for topic, _, value in scenario.messages
        if topic == "account-events"
    }
    produced = Counter(
        orjson.loads(r.value)["event_id"]
        for r in events
        if orjson.loads(r.value)["event_id"] not in scenario_ids
    )
    assert produced == Counter(e["event_id"] for e in written), produced
    ledger = await read_all(settings.bootstrap_servers, settings.topic("ledger"))
    purchases = [orjson.loads(r.value)["entry_id"] for r in ledger]
    assert purchases.count("purchase:api-buy-1") == 1


async def check_rebalance(
    settings: Settings, tmp_path: Path, asked: ApiWorker, leaving: ApiWorker, tenants: list[str]
) -> None:
    """A worker joins, another leaves: each answer is the settled figure or a 503."""
    final = {tenant: body for tenant, (_, body) in (await balances(asked, tenants)).items()}
    joining = ApiWorker(settings, tmp_path, "c")
    seen: Counter[int] = Counter()
    joining.start()
    try:

        async def answers_right_or_503(*stable: ApiWorker) -> bool:
            for tenant, (status, body) in (await balances(asked, tenants)).items():
                seen[status] += 1
                assert status in (200, 503), (tenant, status, body)
                if status == 200:
                    assert body == final[tenant], (tenant, body, final[tenant])
                else:
                    assert body["error"]["message"], body
            held = [await settled(worker) for worker in stable]
            owned = sorted(p for partitions in held if partitions for p in partitions)
            return None not in held and owned == list(range(settings.partitions))

        await until(
            "the third worker in the group",
            lambda: answers_right_or_503(asked, leaving, joining),
            180,
            [asked, leaving, joining],
        )
        leaving.stop()
        await until(
            "the group without the second worker",
            lambda: answers_right_or_503(asked, joining),
            180,
            [asked, joining],
        )
        for worker in (asked, joining):
            got = await balances(worker, tenants)
            assert {tenant: answer for tenant, answer in got.items()} == {
                tenant: (200, body) for tenant, body in final.items()
            }
        print(f"answers during the rebalances: {dict(seen)}")
    finally:
        joining.stop()
