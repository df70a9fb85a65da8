"""Tariffs added while the worker runs, and `rater dlq replay`, on the real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner, Result

from rater.config import Settings
from rater.core.clock import SECOND, format_time
from rater.core.dlq_record import record as dlq_output
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.worker_process import WorkerProcess
from rater.dlq.plan import TARIFF_ROW, Selection
from rater.dlq.replay import dlq, replay

TENANT = "acme"
TARIFF_FR = {
    "tariff_id": "FR",
    "call_type": "outbound",
    "prefix": "33",
    "country": "FR",
    "currency": "EUR",
    "rate_per_minute": "0.12",
    "effective_from": "2020-01-01T00:00:00Z",
}
TIMEOUT_S = 120.0




@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Any:
    process = WorkerProcess(settings, tmp_path / "worker.log")
    process.start()
    yield process
    process.stop()


# --- messages ---------------------------------------------------------------------------


def ago(seconds: int) -> str:
    """A time shortly before now: inside the 5-minute future tolerance and the 35-day window."""
    return format_time(time.time_ns() // 1000 - seconds * SECOND)


def event(kind: str, event_id: str, at: str, **fields: Any) -> tuple[str, bytes, bytes]:
    body = {"type": kind, "event_id": event_id, "tenant_id": TENANT, "at": at} | fields
    return "account-events", TENANT.encode(), orjson.dumps(body)


def cdr(cdr_id: str, started_at: str, duration_s: int) -> tuple[str, bytes, bytes]:
    body = {
        "cdr_id": cdr_id,
        "tenant_id": TENANT,
        "call_type": "outbound",
        "plan": "pay_as_you_go",
        "origin_country": "DE",
        "destination": "+33612345678",
        "started_at": started_at,
        "duration_s": duration_s,
    }
    return "cdrs", TENANT.encode(), orjson.dumps(body)


def account_with_ten_euros() -> list[tuple[str, bytes, bytes]]:
    return [
        event("account_opened", "open", ago(3600), currency="EUR"),
        event("credits_purchased", "buy", ago(3500), amount="10"),
    ]


# --- reading back -----------------------------------------------------------------------


async def values(settings: Settings, name: str) -> list[dict[str, Any]]:
    records = await read_all(settings.bootstrap_servers, settings.topic(name))
    return [orjson.loads(record.value) for record in records]


def rejected_cdr_ids(dlq_values: list[dict[str, Any]], code: str) -> list[str]:
    return [orjson.loads(v["value"])["cdr_id"] for v in dlq_values if v["error"]["code"] == code]


async def wait_until(
    check: Callable[[], Awaitable[bool]], worker: WorkerProcess, what: str
) -> None:
    """Poll a real condition until it holds; fail with the worker's log when it never does."""
    deadline = time.monotonic() + TIMEOUT_S
    while not await check():
        assert worker.alive(), worker.log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what}: not after {TIMEOUT_S:.0f}s"
        await asyncio.sleep(0.3)  # poll interval; the loop exits on the condition


async def wait_rated(settings: Settings, worker: WorkerProcess, cdr_id: str) -> dict[str, Any]:
    async def rated() -> bool:
        return any(v["cdr_id"] == cdr_id for v in await values(settings, "rated-cdrs"))

    await wait_until(rated, worker, f"{cdr_id} rated")
    [found] = [v for v in await values(settings, "rated-cdrs") if v["cdr_id"] == cdr_id]
    return found


async def wait_no_tariff(settings: Settings, worker: WorkerProcess, cdr_id: str) -> None:
    async def rejected() -> bool:
        return cdr_id in rejected_cdr_ids(await values(settings, "rater-dlq"), "no_tariff")

    await wait_until(rejected, worker, f"{cdr_id} in rater-dlq as no_tariff")


async def invoke_cli(settings: Settings, *args: str) -> Result:
    """`rater dlq replay ...` as an operator runs it, configured from the environment."""
    env = settings.to_env()
    # CliRunner swaps process-wide state; the command runs its own event loop in a thread.
    result = await asyncio.to_thread(CliRunner().invoke, dlq, ["replay", *args], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


# --- with a worker ----------------------------------------------------------------------


async def test_a_tariff_added_while_the_worker_runs_is_used_by_the_next_cdr(
    settings: Settings, worker: WorkerProcess
) -> None:
    await produce_inputs(settings, [*account_with_ten_euros(), cdr("early", ago(1800), 90)])
    await wait_no_tariff(settings, worker, "early")

    await produce_inputs(settings, [], [TARIFF_FR])  # acknowledged before the next CDR is sent
    await produce_inputs(settings, [cdr("next", ago(1700), 90)])
    rated = await wait_rated(settings, worker, "next")

    assert (rated["tariff_id"], rated["amount"]) == ("FR", "0.240000")
    assert rated["balance_after"] == "9.760000"
    assert [v["cdr_id"] for v in await values(settings, "rated-cdrs")] == ["next"]
    assert rejected_cdr_ids(await values(settings, "rater-dlq"), "no_tariff") == ["early"]


async def test_a_no_tariff_cdr_replayed_twice_after_the_tariff_exists_is_rated_once(
    settings: Settings, worker: WorkerProcess
) -> None:
    await produce_inputs(settings, [*account_with_ten_euros(), cdr("early", ago(1800), 90)])
    await wait_no_tariff(settings, worker, "early")
    await produce_inputs(settings, [], [TARIFF_FR])

    first = await invoke_cli(settings)  # the default codes include no_tariff
    assert "replayed 1\n" in first.output
    assert "no_tariff" in first.output
    rated = await wait_rated(settings, worker, "early")
    again = await replay(settings, Selection())
    assert again.replayed == {"no_tariff": 1}  # sent again; the rater must ignore it

    # Same tenant, so same partition, after the second replay: once it is rated,
    # the worker has handled the replayed copy too.
    await produce_inputs(settings, [cdr("later", ago(1700), 60)])
    later = await wait_rated(settings, worker, "later")

    assert [v["cdr_id"] for v in await values(settings, "rated-cdrs")] == ["early", "later"]
    assert (rated["tariff_id"], rated["amount"]) == ("FR", "0.240000")
    ledger = await values(settings, "ledger")
    assert [v["entry_id"] for v in ledger] == ["purchase:buy", "usage:early", "usage:later"]
    assert [v["balance_after"] for v in ledger] == ["10.000000", "9.760000", "9.640000"]
    assert later["balance_after"] == "9.640000"
    assert len(await values(settings, "rater-dlq")) == 1  # the copies were not rejected


# --- without a worker: what gets selected ----------------------------------------------


async def put_dlq(
    settings: Settings, records: list[tuple[int, str, int, bytes | None, bytes | None, str]]
) -> None:
    """DLQ records as the worker writes them: (age in s, source topic, partition, key, value,
    code), all on DLQ partition 0 in the order given."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        now_ms = time.time_ns() // 1_000_000
        for offset, (age_s, source, partition, key, value, code) in enumerate(records):
            _, record_key, body = dlq_output(
                source, partition, offset, key, value, code, "test", None
            )
            await producer.send(
                settings.topic("rater-dlq"),
                orjson.dumps(body),
                key=record_key,
                partition=0,
                timestamp_ms=now_ms - age_s * 1000,
            )
        await producer.flush()
    finally:
        await producer.stop()


async def test_code_and_since_select_the_records_replayed(settings: Settings) -> None:
    old_cdr, new_cdr = cdr("old", ago(7200), 60)[2], cdr("new", ago(600), 60)[2]
    spec_named = cdr("spec-named", ago(600), 60)[2]
    opened_late = event("credits_purchased", "p1", ago(600), amount="5")[2]
    binary = b"\x80\x00\xff"
    cdrs, events, tariffs = (settings.topic(n) for n in ("cdrs", "account-events", "tariffs"))
    await put_dlq(
        settings,
        [
            (7200, cdrs, 1, b"acme", old_cdr, "no_tariff"),
            (600, cdrs, 2, b"acme", new_cdr, "no_tariff"),
            (600, events, 3, b"acme", opened_late, "unknown_account"),
            (600, cdrs, 0, b"\xfe\xff", binary, "invalid_json"),
            (600, tariffs, 0, b"FR", b'{"tariff_id": "FR"}', "invalid_field"),
            (600, "cdrs", 2, b"acme", spec_named, "no_tariff"),
        ],
    )

    everything = await replay(settings, Selection(), dry_run=True)
    assert (everything.read, everything.replayed) == (6, {"no_tariff": 3, "unknown_account": 1})
    assert everything.skipped == {"code invalid_json not selected": 1, TARIFF_ROW: 1}
    assert await read_all(settings.bootstrap_servers, cdrs) == []  # a dry run sends nothing

    since = format_time(time.time_ns() // 1000 - 3600 * SECOND)
    result = await invoke_cli(
        settings, "--code", "no_tariff", "--code", "invalid_json", "--since", since
    )
    assert "5 records read" in result.output  # the old record is not even read
    sent = await read_all(settings.bootstrap_servers, cdrs)
    assert sorted((r.partition, r.key, r.value) for r in sent) == [
        (0, b"\xfe\xff", binary),
        (2, b"acme", new_cdr),
        (2, b"acme", spec_named),
    ]
    assert await read_all(settings.bootstrap_servers, events) == []
