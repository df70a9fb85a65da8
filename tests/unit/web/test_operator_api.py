"""The operator API's pure parts and HTTP plumbing, without a broker (SPEC 11).

The checks of an admin write (the core's own codes), the balance rendering,
the metrics fed by the commit path, the token guard, and the router's choice
between answering, forwarding and 503, against a fake worker status.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rater.config import Settings
from rater.core.admin import build_event, check_event
from rater.core.balance import balance_view
from rater.core.clock import parse_time
from rater.core.engine import apply_event
from rater.core.errors import Rejected
from rater.core.messages import decode_account_event
from rater.core.state import TenantState
from rater.core.topics import LEDGER, RATED_CDRS, RATER_DLQ, SERVICE_STATE
from rater.observability.metrics import RaterMetrics
from rater.stream.app import build_app
from rater.stream.placement import partition_of
from rater.web.http import error, json_response, tenant_id_problem, token_guard
from rater.web.routing import FORWARDED, Router
from tests.support import messages as m
from tests.support.api_client import metric_samples

NOW = parse_time("2025-02-01T00:00:00Z")


def opened(billing_model: str = "prepaid", amount: str | None = "10") -> TenantState:
    state, _ = apply_event(
        None, decode_account_event(*m.account_opened(billing_model=billing_model)), NOW
    )
    assert state is not None
    if amount is not None:
        state, _ = apply_event(
            state, decode_account_event(*m.credits_purchased(amount, event_id="buy")), NOW
        )
    return state


def code_of(
    command: str, body: dict[str, Any], state: TenantState | None, tenant: str = "t1"
) -> str | None:
    event = build_event(command, tenant, body, body.get("event_id", "api-1"), NOW)
    try:
        check_event(event, state, NOW)
    except Rejected as rejected:
        return rejected.code
    return None


@pytest.mark.parametrize(
    ("command", "body", "model", "code"),
    [
        ("purchases", {"amount": "50"}, "prepaid", None),
        ("purchases", {"amount": "50.1234567"}, "prepaid", "invalid_field"),
        ("purchases", {"amount": 50}, "prepaid", "invalid_field"),
        ("purchases", {"amount": "5", "currency": "USD"}, "prepaid", "currency_mismatch"),
        ("purchases", {"amount": "5"}, "nce", "purchase_not_allowed_for_nce"),
        ("purchases", {"amount": "5", "event_id": "x" * 129}, "prepaid", "invalid_field"),
        ("auto-recharge", {"enabled": True, "trigger_balance": "1"}, "prepaid", "invalid_field"),
        (
            "auto-recharge",
            {"enabled": True, "trigger_balance": "1", "recharge_amount": "5"},
            "nce",
            "auto_recharge_not_allowed_for_nce",
        ),
        ("auto-recharge", {"enabled": False, "trigger_balance": "0"}, "nce", None),
        ("billing-model", {"billing_model": "nce"}, "prepaid", None),
        ("billing-model", {"billing_model": "NCE"}, "prepaid", "invalid_field"),
        ("contact", {"contact_email": "a@b.example", "language": "de"}, "prepaid", None),
        ("contact", {"contact_email": "a" * 250 + "@b.example"}, "prepaid", "invalid_field"),
        ("contact", {"language": "en"}, "prepaid", "invalid_field"),
    ],
)
def test_a_write_is_checked_with_the_cores_own_codes(
    command: str, body: dict[str, Any], model: str, code: str | None
) -> None:
    assert code_of(command, body, opened(model, None if model == "nce" else "10")) == code


def test_unknown_account_and_field_precedence() -> None:
    assert code_of("contact", {"contact_email": "a@b.example"}, None) == "unknown_account"
    # invalid_field before unknown_account (SPEC 9)
    assert code_of("contact", {"contact_email": "nope"}, None) == "invalid_field"
    assert code_of("purchases", {"amount": "1"}, None, tenant="x" * 65) == "invalid_field"


def test_a_retried_event_id_passes_as_the_rater_ignores_it() -> None:
    state = opened("prepaid")
    state.seen["e:api-9"] = NOW  # applied already, then the tenant went NCE
    state.billing_model = "nce"
    assert code_of("purchases", {"amount": "5", "event_id": "api-9"}, state) is None
    assert code_of("purchases", {"amount": "5", "event_id": "api-10"}, state) == (
        "purchase_not_allowed_for_nce"
    )


def test_the_event_takes_only_the_commands_fields() -> None:
    event = build_event(
        "purchases", "t1", {"amount": "5", "type": "topup_succeeded", "x": 1}, "e", NOW
    )
    assert event == {
        "type": "credits_purchased",
        "event_id": "e",
        "tenant_id": "t1",
        "at": "2025-02-01T00:00:00Z",
        "amount": "5",
    }


def test_balance_view_writes_money_and_times_as_on_the_wire() -> None:
    state = opened("prepaid", "12.5")
    state.pool_minutes = {"domestic:2025-02": 10, "domestic:2025-01": 99}
    state.pool_used = {"domestic:2025-02": 90}
    state.deficit = 0
    state.ar_enabled, state.ar_trigger, state.ar_amount = True, 2_000_000, 20_000_000
    state.topup_seq = state.pending_request = 3
    state.backoff_until = NOW
    state.clock = NOW  # a February event came after the January purchase
    view = balance_view(state)
    assert view["balance"] == "12.500000" and view["deficit"] == "0.000000"
    assert view["lots"] == [
        {
            "lot_id": "purchase:buy",
            "amount": "12.500000",
            "remaining": "12.500000",
            "purchased_at": "2025-01-15T09:00:00Z",
            "expires_at": "2026-01-15T09:00:00Z",
        }
    ]
    assert view["pools"] == {  # the tenant clock's month
        "domestic": {"minutes": 10, "used_s": 90},
        "international": {"minutes": 0, "used_s": 0},
    }
    assert view["auto_recharge"] == {
        "enabled": True,
        "trigger_balance": "2.000000",
        "recharge_amount": "20.000000",
        "pending_request_id": "t1:topup:3",
        "backoff_until": "2025-02-01T00:00:00Z",
    }
    assert view["clock"] == "2025-02-01T00:00:00Z"
    assert (view["post_usage_active"], view["blocked"], view["language"]) == (False, False, "en")


class TP(NamedTuple):
    topic: str
    partition: int


class FakeStatus:
    """A worker that owns partition 0 and not 1; 1's owner is ``owner``."""

    def __init__(self, owner: str | None = "http://other:1") -> None:
        self.owner = owner
        self.states = {"blocked-1": True, "free": False}

    def readiness(self) -> str | None:
        return None

    def failing_partitions(self) -> int:
        return 0

    def owned_partitions(self) -> list[int]:
        return [0]

    def partition_of(self, tenant_id: str) -> int:
        return 0 if tenant_id.startswith("mine") else 1

    def not_serving(self, partition: int) -> str | None:
        return None if partition == 0 else "partition 1 is not owned by this worker"

    def owner_url(self, partition: int) -> str | None:
        return self.owner

    def own_url(self) -> str:
        return "http://me:1"

    def committed_state(self, partition: int, tenant_id: str) -> TenantState | None:
        return None

    def tenant_states(self, partition: int) -> Iterator[TenantState]:
        for tenant, blocked in self.states.items():
            state = TenantState(tenant, "EUR", "prepaid", NOW)
            state.blocked = blocked
            yield state

    def input_lag(self) -> dict[tuple[str, int], int]:
        return {("cdrs", 0): 7, ("account-events", 0): 0}


def test_metrics_count_committed_outputs_by_topic_and_dlq_code() -> None:
    metrics = RaterMetrics("p-")
    metrics.attach(FakeStatus())
    dlq = {"error": {"code": "no_tariff"}}
    emitted = [
        (RATED_CDRS, b"t", {}),
        (RATED_CDRS, b"t", {}),
        (LEDGER, b"t", {}),
        (RATER_DLQ, b"t", dlq),
        (SERVICE_STATE, b"t", {"tenant_id": "free", "blocked": True}),
    ]
    metrics.inputs_committed(0, {TP("p-cdrs", 0): [1, 2, 3], TP("p-account-events", 0): [1]}, 0.2)
    samples = metric_samples(metrics.render().decode())  # the first scrape counts partition 0
    assert samples[("rater_blocked_tenants", ())] == 1
    metrics.outputs_committed(0, emitted)
    samples = metric_samples(metrics.render().decode())
    assert samples[("rater_input_records_total", (("topic", "cdrs"),))] == 3
    assert samples[("rater_input_records_total", (("topic", "account-events"),))] == 1
    assert samples[("rater_cdrs_rated_total", ())] == 2
    assert samples[("rater_output_records_total", (("topic", "rated-cdrs"),))] == 2
    assert samples[("rater_output_records_total", (("topic", "overage"),))] == 0
    assert samples[("rater_dlq_records_total", (("code", "no_tariff"),))] == 1
    assert samples[("rater_dlq_records_total", (("code", "invalid_json"),))] == 0
    assert samples[("rater_batch_seconds_count", ())] == 1
    assert samples[("rater_consumer_lag_records", (("partition", "0"), ("topic", "cdrs")))] == 7
    assert samples[("rater_owned_partitions", ())] == 1
    assert samples[("rater_blocked_tenants", ())] == 2  # "free" was blocked by a commit
    metrics.forget()  # revoked: counted afresh from the store
    samples = metric_samples(metrics.render().decode())
    assert samples[("rater_blocked_tenants", ())] == 1


def test_tenant_ids_from_paths() -> None:
    assert tenant_id_problem("acme-42") is None
    assert tenant_id_problem("ü" * 64) is None
    assert tenant_id_problem("") is not None
    assert tenant_id_problem("x" * 65) is not None
    assert tenant_id_problem("a b") is not None
    assert tenant_id_problem("a\x00b") is not None


async def serve(token: str | None, router: Router | None = None) -> TestClient:
    app = web.Application(middlewares=[token_guard(token)])

    async def balance(request: web.Request) -> web.Response:
        if router is None:
            return json_response({"ok": True})

        async def local(partition: int) -> web.Response:
            return json_response({"partition": partition})

        return await router.answer(request, request.match_info["tenant"], local)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app.router.add_get("/tenants/{tenant}/balance", balance)

    async def health(request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    app.router.add_get("/health", health)
    app.router.add_get("/boom", boom)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_the_token_guards_every_path_but_probes_and_scrape() -> None:
    client = await serve("t0ken")
    try:
        path = "/tenants/a/balance"
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer nope"})).status == 401
        assert (await client.get(path, headers={"Authorization": "Basic t0ken"})).status == 401
        answer = await client.get(path, headers={"Authorization": "Bearer t0ken"})
        assert answer.status == 200
        assert (await client.get("/health")).status == 200
        missing = await client.get("/nowhere", headers={"Authorization": "Bearer t0ken"})
        assert missing.status == 404 and (await missing.json())["error"]["code"] == "http_error"
        assert (await client.get("/nowhere")).status == 401  # no path is probed without it
        failed = await client.get("/boom", headers={"Authorization": "Bearer t0ken"})
        assert failed.status == 500 and (await failed.json())["error"]["code"] == "internal_error"
    finally:
        await client.close()


async def test_the_router_answers_forwards_or_says_why_not() -> None:
    status = FakeStatus(owner=None)
    client = await serve(None, Router(status))
    try:
        mine = await client.get("/tenants/mine-1/balance")
        assert (mine.status, await mine.json()) == (200, {"partition": 0})
        # partition 1: no owner known -> 503 with the reason
        theirs = await client.get("/tenants/theirs/balance")
        assert theirs.status == 503 and theirs.headers["Retry-After"] == "1"
        assert "not owned" in (await theirs.json())["error"]["message"]
        # a forwarded request is never forwarded again
        status.owner = "http://127.0.0.1:9"
        again = await client.get("/tenants/theirs/balance", headers={FORWARDED: "http://x:1"})
        assert again.status == 503
        # the owner does not answer: 503, not a hang or a 500
        gone = await client.get("/tenants/theirs/balance")
        assert gone.status == 503 and "did not answer" in (await gone.json())["error"]["message"]
    finally:
        await client.close()


def test_error_shape() -> None:
    response = error(422, "invalid_field", "amount: bad")
    assert response.status == 422
    assert orjson.loads(response.body) == {
        "error": {"code": "invalid_field", "message": "amount: bad"}
    }


def test_a_worker_not_yet_started_is_not_ready_and_knows_no_owner(tmp_path: Path) -> None:
    """The Faust attributes the worker status reads exist in the pinned version."""
    settings = Settings(data_dir=tmp_path, web_port=6099, web_host="127.0.0.1")
    app, rater = build_app(settings)
    status = rater.metrics.status
    assert status is not None
    assert status.readiness() == "no partitions assigned"
    assert status.owned_partitions() == []
    assert status.not_serving(0) == "partition 0 is not owned by this worker"
    assert status.owner_url(0) is None
    assert status.own_url() == "http://127.0.0.1:6099"
    assert status.partition_of("prepaid") == partition_of(b"prepaid", settings.partitions)
    assert app.conf.web_tables_enabled is False  # Faust's raw /table view is off


def test_token_and_web_host_come_from_the_environment() -> None:
    settings = Settings.from_env({"RATER_API_TOKEN": "t0k3n-42", "RATER_WEB_HOST": "w-1.rater"})
    assert (settings.api_token, settings.web_host) == ("t0k3n-42", "w-1.rater")
    assert "t0k3n-42" not in repr(settings)
    assert Settings.from_env({}).api_token is None
