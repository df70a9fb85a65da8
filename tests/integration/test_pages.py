"""The ops dashboard and the tenant credits page in a real headless Chromium, on a live worker.

The worker runs on the real broker with the API token set; the scenario's
outputs are read back from the topics and compared with what the pages show.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, build
from tests.support.api_client import TOKEN, ApiWorker, call, ready, until
from tests.support.browser import chromium

pytestmark = pytest.mark.integration

T = TypeVar("T")
PAGE_TIMEOUT_MS = 60_000  # a loaded machine: the pages poll every 2 to 5 s


@pytest.fixture
def browser(worker: ApiWorker) -> Iterator[Any]:
    """After the worker: Playwright's sync API runs an event loop in this thread meanwhile."""
    with chromium() as browser:
        yield browser


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """An asyncio call from a test while Playwright's loop runs in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[ApiWorker]:
    scenario = build(cdrs_per_tenant=30)
    settings = Settings(**{**settings.__dict__, "api_token": TOKEN})
    asyncio.run(produce_inputs(settings, scenario.messages, TARIFFS))
    worker = ApiWorker(settings, tmp_path, "pages")
    worker.start()
    try:
        asyncio.run(until("a ready worker", lambda: ready(worker), 180.0, [worker]))
        want = len(scenario.expected["rated-cdrs"])

        async def all_rated() -> bool:
            rated = await read_all(settings.bootstrap_servers, settings.topic("rated-cdrs"))
            return len(rated) >= want

        asyncio.run(until("the scenario rated", all_rated, 180.0, [worker]))
        yield worker
    finally:
        worker.stop()


def _topic(settings: Settings, name: str) -> list[dict[str, Any]]:
    records = _run(read_all(settings.bootstrap_servers, settings.topic(name)))
    return [orjson.loads(r.value) for r in records]


def _with_token(page: Any) -> None:
    page.fill("#token", TOKEN)
    page.click("#token-save")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_dashboard_shows_what_the_topics_hold(worker: ApiWorker, browser: Any) -> None:
    settings = worker.settings
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{worker.port}/dashboard")
    # Without the token the page says why it shows nothing.
    error = page.locator("#error")
    error.filter(has_text="401").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert "API token" in error.inner_text()
    _with_token(page)
    page.wait_for_selector("body[data-caught-up=yes]", timeout=PAGE_TIMEOUT_MS)

    rated = _topic(settings, "rated-cdrs")
    dlq = Counter(r["error"]["code"] for r in _topic(settings, "rater-dlq"))
    requests = _topic(settings, "topup-requests")
    kinds = Counter(n["type"] for n in _topic(settings, "notifications"))
    blocked: dict[str, bool] = {}
    for state in _topic(settings, "service-state"):
        blocked[state["tenant_id"]] = state["blocked"]
    overage = _topic(settings, "overage")

    assert _number(page.inner_text("#cdrs-rated .value")) == len(rated)
    shown_dlq = {
        row.get_attribute("data-code"): _number(row.locator(".dlq-count").inner_text())
        for row in page.locator("#dlq tr[data-code]").all()
    }
    assert shown_dlq == dict(dlq) and dlq
    assert page.locator("#dlq .example").count() >= 1  # recent examples, with the reason
    assert _number(page.inner_text("#topups-requested .value")) == len(requests) > 0
    assert _number(page.inner_text("#topups-succeeded .value")) == kinds["auto_recharge_succeeded"]
    assert _number(page.inner_text("#topups-failed .value")) == kinds["auto_recharge_failed"]
    shown_blocked = sorted(
        row.locator("td").first.inner_text()
        for row in page.locator("#blocked tr:has(td.bad)").all()
    )
    assert shown_blocked == sorted(t for t, b in blocked.items() if b)
    assert _number(page.inner_text("#overage-records .value")) == len(overage)
    total = sum((Decimal(o["amount"]) for o in overage), Decimal(0))
    assert page.inner_text("#overage-EUR .value") == f"{total:.6f} EUR"
    assert page.locator("#notifications tr").count() == 1 + min(20, sum(kinds.values()))
    # This worker owns all 4 partitions: one lag row per input partition, all caught up.
    lag_rows = page.locator("#lag .lag-records")
    assert lag_rows.count() == 8
    assert {lag_rows.nth(i).inner_text() for i in range(8)} == {"0"}
    assert page.inner_text("#batch-p99 .value").startswith("≤")


def _balance(page: Any) -> Decimal:
    return Decimal(page.get_attribute("#balance", "data-value"))


def _wait_balance(page: Any, want: Decimal) -> None:
    page.wait_for_selector(f'#balance[data-value="{want:.6f}"]', timeout=PAGE_TIMEOUT_MS)


def test_credits_page_adds_credits_and_sets_auto_recharge(worker: ApiWorker, browser: Any) -> None:
    settings = worker.settings
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{worker.port}/credits?tenant=prepaid&lang=en")
    page.locator("#error").filter(has_text="401").wait_for(timeout=PAGE_TIMEOUT_MS)
    _with_token(page)
    page.wait_for_selector("#balance[data-value]", timeout=PAGE_TIMEOUT_MS)
    before = _balance(page)
    meaning = page.inner_text("#meaning")
    assert ("Below zero" in meaning) == (before < 0)

    page.fill("#purchase-amount", "50")
    page.click("#purchase")
    _wait_balance(page, before + 50)
    assert page.locator("#lots tr").count() >= 2  # the new lot is listed with its expiry
    page.locator("#info").filter(has_text="Done").wait_for(timeout=PAGE_TIMEOUT_MS)

    # Auto-recharge on, with a trigger above the balance: the rater asks for a top-up at once.
    page.check("#ar-enabled")
    page.fill("#ar-trigger", "1000")
    page.fill("#ar-amount", "25")
    page.click("#ar-save")
    page.locator("#ar-state").filter(has_text="On:").wait_for(timeout=PAGE_TIMEOUT_MS)
    page.locator("#pending").filter(has_text="prepaid:topup:").wait_for(timeout=PAGE_TIMEOUT_MS)
    request = next(
        r
        for r in _topic(settings, "topup-requests")
        if r["tenant_id"] == "prepaid" and r["trigger_balance"] == "1000.000000"
    )
    _run(_pay(settings, request))  # the payment side says yes
    _wait_balance(page, before + 50 + Decimal(request["amount"]))
    assert Decimal(request["amount"]) == 25
    # The balance the page shows is the API's.
    status, body = _run(call(worker.port, "GET", "/tenants/prepaid/balance", token=TOKEN))
    assert status == 200 and Decimal(body["balance"]) == _balance(page)


async def _pay(settings: Settings, request: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        event = {
            "type": "topup_succeeded",
            "event_id": f"pay-{request['request_id']}",
            "tenant_id": request["tenant_id"],
            "at": request["at"],
            "request_id": request["request_id"],
            "amount": request["amount"],
        }
        await producer.send_and_wait(
            settings.topic("account-events"), orjson.dumps(event), key=b"prepaid"
        )
    finally:
        await producer.stop()


def test_credits_page_shows_errors_and_speaks_german(worker: ApiWorker, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{worker.port}/credits?tenant=nce&lang=de")
    _with_token(page)
    page.wait_for_selector("#balance[data-value]", timeout=PAGE_TIMEOUT_MS)
    assert page.inner_text("h1") == "Kommunikationsguthaben"
    assert "Nachträgliche Abrechnung" in page.inner_text("#meaning")
    assert "automatische Aufladung" in page.inner_text("#model-warning")
    # An NCE tenant cannot buy credits: the API's 422 and its code are shown.
    page.click("#purchase")
    error = page.locator("#error")
    error.filter(has_text="purchase_not_allowed_for_nce").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert "422" in error.inner_text()
    # An unknown tenant: 404, shown.
    page.fill("#tenant", "nobody-here")
    page.click("#open")
    error.filter(has_text="404").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert re.search(r"unknown_account", error.inner_text())
