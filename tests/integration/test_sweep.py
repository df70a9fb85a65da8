"""The expiry sweep of SPEC 6.1 on the real broker: idle tenants' lots expire, once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from rater.config import Settings
from rater.core.clock import DAY, format_time
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.worker_process import WorkerProcess
from rater.stream.topics import ensure_topics


@pytest.fixture
def settings(kafka_bootstrap: str, unique_prefix: str, tmp_path: Path) -> Settings:
    settings = Settings(
        bootstrap_servers=kafka_bootstrap, app_id=unique_prefix + "rater",
        topic_prefix=unique_prefix, partitions=2, data_dir=tmp_path / "data",
        expiry_sweep=True, sweep_interval_s=1, web_port=0,
    )
    asyncio.run(ensure_topics(settings))
    return settings


def opened_with_credits(tenant: str, bought_at: int) -> list[tuple[str, bytes, bytes]]:
    at = format_time(bought_at)
    events = [
        {"type": "account_opened", "event_id": f"{tenant}-open", "tenant_id": tenant,
         "at": at, "currency": "EUR", "contact_email": f"ops@{tenant}.example"},
        {"type": "credits_purchased", "event_id": f"{tenant}-buy", "tenant_id": tenant,
         "at": at, "amount": "10"},
    ]
    return [("account-events", tenant.encode(), orjson.dumps(e)) for e in events]


async def values(settings: Settings, topic: str) -> list[dict]:
    return [orjson.loads(r.value) for r in await read_all(settings.bootstrap_servers,
                                                          settings.topic(topic))]


async def test_idle_tenants_lots_expire_and_warn_exactly_once(
    settings: Settings, tmp_path: Path
) -> None:
    now = int(datetime.now(UTC).timestamp() * 1_000_000)
    # "old" bought 400 days ago: its lot expired. "soon" bought 345 days ago: it
    # expires in about 20 days, inside the 30-day notice. Neither has any later event.
    messages = opened_with_credits("old", now - 400 * DAY)
    messages += opened_with_credits("soon", now - 345 * DAY)
    await produce_inputs(settings, messages)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        deadline = time.monotonic() + 90
        while True:
            notices = await values(settings, "notifications")
            kinds = {(n["tenant_id"], n["type"]) for n in notices}
            if {("old", "credits_expired"), ("soon", "credits_expiring")} <= kinds:
                break
            assert worker.alive(), worker.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no sweep outputs yet: {kinds}"
            await asyncio.sleep(0.5)  # poll interval
        # Let a few more sweeps run (each one rewrites both tenants' state), then
        # check that none of them repeated an output.
        changelog = settings.app_id + "-tenants-changelog"
        first = len(await read_all(settings.bootstrap_servers, changelog))
        while len(await read_all(settings.bootstrap_servers, changelog)) < first + 6:
            assert worker.alive() and time.monotonic() < deadline + 60
            await asyncio.sleep(0.5)  # poll interval
    finally:
        worker.stop()
    ledger = await values(settings, "ledger")
    old = [e for e in ledger if e["tenant_id"] == "old"]
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in old] == [
        ("purchase", "10.000000", "10.000000"),
        ("expiry", "-10.000000", "0.000000"),
    ]
    assert [e["kind"] for e in ledger if e["tenant_id"] == "soon"] == ["purchase"]
    notices = await values(settings, "notifications")
    ids = [n["notification_id"] for n in notices]
    assert len(ids) == len(set(ids)), ids
    assert sorted((n["tenant_id"], n["type"]) for n in notices) == [
        ("old", "balance_zero"), ("old", "credits_expired"), ("soon", "credits_expiring"),
    ]
    expiring = next(n for n in notices if n["type"] == "credits_expiring")
    assert expiring["details"]["amount"] == "10.000000"
    assert expiring["details"]["contact_email"] == "ops@soon.example"
