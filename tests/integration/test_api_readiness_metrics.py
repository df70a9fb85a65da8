"""Readiness while a table is restored, and metrics against the output topics (SPEC 11).

One worker rates a scenario with some bad input; its counters must equal the
records on the output topics, DLQ records by code included. It is then
stopped, its local state deleted and the changelog grown with filler records,
so the restarted worker spends seconds restoring: ``/ready`` must be 503 with
that reason meanwhile (``/health`` 200), then 200 with the state all there.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from rater.config import Settings
from rater.core.balance import balance_view
from rater.core.errors import CODES
from rater.core.topics import OUTPUT_TOPICS
from rater.devkit.inputs import produce_inputs
from rater.devkit.localkafka.readback import read_all
from rater.devkit.scenario import TARIFFS, build
from rater.stream.app import TABLE
from tests.support.api_client import ApiWorker, call, metric_samples, ready, until

FILLER_PER_PARTITION = 15_000  # Faust restores about 9,000 records/s here: seconds of restoring
BAD_INPUT = [
    ("cdrs", b"prepaid", b"{not json"),
    ("cdrs", b"someone-else", orjson.dumps({"cdr_id": "x", "tenant_id": "prepaid"})),
    (
        "account-events",
        b"ghost",
        orjson.dumps(
            {
                "type": "credits_purchased",
                "event_id": "g-1",
                "tenant_id": "ghost",
                "at": "2024-03-01T00:00:00Z",
                "amount": "5",
            }
        ),
    ),
]


def counters(text: str) -> dict[str, dict[str, float]]:
    """The SPEC 11 counters and gauges by label value ("" for none)."""
    samples = metric_samples(text)
    wanted = {
        "rater_input_records_total": "topic",
        "rater_output_records_total": "topic",
        "rater_dlq_records_total": "code",
        "rater_cdrs_rated_total": "",
        "rater_owned_partitions": "",
        "rater_blocked_tenants": "",
        "rater_batch_seconds_count": "",
    }
    found: dict[str, dict[str, float]] = {name: {} for name in wanted}
    for (name, labels), value in samples.items():
        if name in wanted:
            found[name][dict(labels).get(wanted[name], "")] = value
    return found


async def test_metrics_equal_the_output_topics_and_ready_waits_for_the_restore(
    settings: Settings, tmp_path: Path
) -> None:
    scenario = build(cdrs_per_tenant=20, seed=9)
    messages = scenario.messages + BAD_INPUT
    worker = ApiWorker(settings, tmp_path, "a")
    worker.start()
    try:
        await until("the worker ready", lambda: ready(worker), 120, [worker])
        await produce_inputs(settings, messages, TARIFFS)
        topics = {name: settings.topic(name) for name in OUTPUT_TOPICS}

        inputs = Counter(topic for topic, _, _ in messages)
        dlq_codes = [*scenario.rejected, "invalid_json", "key_mismatch", "unknown_account"]

        async def scrape_and_read() -> tuple[dict, dict]:
            status, text = await call(worker.port, "GET", "/metrics")
            assert status == 200
            records = {
                name: await read_all(settings.bootstrap_servers, topic)
                for name, topic in topics.items()
            }
            return counters(text), records

        # Poll until every input is counted and the output counters equal the topics (a
        # transaction's markers may become readable a moment after its commit returned).
        deadline = time.monotonic() + 120
        while True:
            got, records = await scrape_and_read()
            done = got["rater_input_records_total"] == {
                "cdrs": float(inputs["cdrs"]),
                "account-events": float(inputs["account-events"]),
            } and got["rater_output_records_total"] == {
                name: float(len(found)) for name, found in records.items()
            }
            if done or time.monotonic() >= deadline:
                break
            assert worker.alive(), worker.tail()
            await asyncio.sleep(0.5)  # poll interval; the loop exits on the condition above
        assert got["rater_input_records_total"] == {
            "cdrs": float(inputs["cdrs"]),
            "account-events": float(inputs["account-events"]),
        }
        codes = Counter(orjson.loads(r.value)["error"]["code"] for r in records["rater-dlq"])
        assert codes == Counter(dlq_codes)
        assert got["rater_output_records_total"] == {
            name: float(len(found)) for name, found in records.items()
        }
        assert len(records["rated-cdrs"]) == len(scenario.expected["rated-cdrs"])
        assert got["rater_dlq_records_total"] == {code: float(codes[code]) for code in CODES}
        assert got["rater_cdrs_rated_total"] == {"": float(len(records["rated-cdrs"]))}
        assert got["rater_owned_partitions"] == {"": float(settings.partitions)}
        blocked = sum(state.blocked for state in scenario.states.values())
        assert got["rater_blocked_tenants"] == {"": float(blocked)}
        assert got["rater_batch_seconds_count"][""] >= 1
        _, text = await call(worker.port, "GET", "/metrics")
        lag = {
            labels: value
            for (name, labels), value in metric_samples(text).items()
            if name == "rater_consumer_lag_records"
        }
        assert len(lag) == 2 * settings.partitions and set(lag.values()) == {0.0}, lag

        want = {tenant: balance_view(state) for tenant, state in scenario.states.items()}
        for tenant, body in want.items():  # no RATER_API_TOKEN: tenant paths are open
            assert await call(worker.port, "GET", f"/tenants/{tenant}/balance") == (200, body)

        worker.stop()
        assert not worker.alive()
        await fill_changelog(settings)
        shutil.rmtree(worker.settings.data_dir)
        worker.start()
        reasons: Counter[str] = Counter()
        alive_while_restoring = False
        deadline = time.monotonic() + 240
        while True:
            status, body = await call(worker.port, "GET", "/ready")
            if status == 200:
                break
            if status == 503:
                reasons[body["reason"]] += 1
                if "restoring" in body["reason"]:
                    health = await call(worker.port, "GET", "/health")
                    alive_while_restoring = alive_while_restoring or health[0] == 200
            assert worker.alive(), worker.tail()
            assert time.monotonic() < deadline, (reasons, worker.tail())
            await asyncio.sleep(0.1)  # poll interval; the loop exits on 200 above
        assert reasons["restoring state from the changelog"] >= 1, reasons
        assert alive_while_restoring, reasons
        for tenant, body in want.items():  # ready means the restored state is all there
            assert await call(worker.port, "GET", f"/tenants/{tenant}/balance") == (200, body)
        print(f"/ready answers before 200: {dict(reasons)}")
    finally:
        worker.stop()


async def fill_changelog(settings: Settings) -> None:
    """Records the worker must restore and that no reader takes for a tenant (key \\x00...)."""
    changelog = f"{settings.app_id}-{TABLE}-changelog"
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for partition in range(settings.partitions):
            for n in range(FILLER_PER_PARTITION):
                await producer.send(
                    changelog, b"filler", key=b"\x00filler:%d" % n, partition=partition
                )
        await producer.flush()
    finally:
        await producer.stop()
