"""Hostile records through a running worker on the real broker (SPEC 2, 9; issue 19).

Generated hostile messages (bytes, broken JSON, JSON that RFC 8259 forbids,
wrong types, huge and deeply nested values, wrong or missing keys,
tombstones) are mixed into the sample scenario on all three input topics.
Every one must reach ``rater-dlq`` with the code the pure core gives it,
every valid message must still be rated exactly as the core rates it, and
the worker must still be running.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rater.config import Settings
from rater.core.processor import Processor
from rater.core.tariffs import TariffIndex
from rater.devkit.inputs import produce_inputs
from rater.devkit.scenario import TARIFFS, Scenario, build
from rater.devkit.worker_process import WorkerProcess
from rater.stream.topics import ensure_topics
from tests.support.outputs_check import check, wait_for

TENANTS = [b"prepaid", b"recharge", b"nce", b"switcher"]
BIG = b"x" * 200_000
VALUES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            None,
            b"",
            b"NaN",
            b'{"cdr_id": NaN}',
            b'{"amount": Infinity}',
            b"\xef\xbb\xbf{}",
            b"[" * 5_000 + b"]" * 5_000,
            b'{"tenant_id": "prepaid", "cdr_id": "\xff"}',
            b'{"tenant_id": "prepaid", "cdr_id": "' + BIG + b'"}',
            b'{"tenant_id": "prepaid", "type": "credits_purchased", "event_id": "x",'
            b' "at": "2026-01-01T00:00:00Z", "amount": "' + b"9" * 200_000 + b'"}',
            bytes(range(256)) * 2_000,  # 512 kB, not UTF-8
        ]
    ),
    st.builds(
        lambda tenant, field, value: orjson.dumps({"tenant_id": tenant, field: value}),
        st.sampled_from(["prepaid", "nce", 7, None, ["prepaid"]]),
        st.sampled_from(["cdr_id", "duration_s", "type", "started_at", "at", "amount"]),
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=5), st.none(),
                  st.lists(st.booleans(), max_size=2)),
    ),
)
HOSTILE = st.tuples(
    st.sampled_from(["cdrs", "account-events"]),
    st.one_of(st.none(), st.sampled_from(TENANTS), st.binary(max_size=6)),
    VALUES,
).filter(lambda record: record[1] is not None or record[2] is not None)  # Kafka needs one
NAMED = [  # the cases, in every run besides the generated ones
    ("cdrs", b"prepaid", b'{"tenant_id": "prepaid", "duration_s": NaN}'),
    ("account-events", b"nce", b'{"tenant_id": "nce", "amount": -Infinity}'),
    ("cdrs", b"recharge", b"[" * 1_025 + b"]" * 1_025),  # one level deeper than orjson allows
    ("cdrs", b"\xff\xfe", b'{"tenant_id": "prepaid"}'),  # a key that is not UTF-8
    ("account-events", b"switcher", b'{"tenant_id": "switcher", "event_id": "\xc0\x80"}'),
    ("cdrs", b"prepaid", None),  # a tombstone
    ("account-events", b"nce", b""),
    ("cdrs", b"prepaid", b'{"tenant_id": "prepaid", "destination": "+' + b"4" * 200_000 + b'"}'),
    # near the broker's default record limit, not UTF-8: its DLQ record is a third larger
    ("account-events", b"recharge", bytes(range(256)) * 3_900),
]
HOSTILE_TARIFFS = [  # (key, value): each one rejected, none changes the index
    (b"T9", b"NaN"),
    (b"T9", b'{"tariff_id": "T9", "rate_per_minute": Infinity}'),
    (b"", None),
    (b"\xff", None),
    (b"T9", b"[" * 3_000 + b"]" * 3_000),
    (b"T9", orjson.dumps({"tariff_id": "T9", "prefix": "4" * 200_000})),
]


def expected(messages: list[tuple[str, bytes | None, bytes | None]]) -> Scenario:
    """What the pure core gives for the messages, applied in order (as test_worker's scenario)."""
    processor = Processor(TariffIndex())
    scenario = Scenario(messages=list(messages))
    for row in TARIFFS:
        processor.tariff(row["tariff_id"].encode(), orjson.dumps(row), "tariffs", 0, 0)
    for offset, (key, value) in enumerate(HOSTILE_TARIFFS):
        [(name, _, body)] = processor.tariff(key, value, "tariffs", 0, offset)
        scenario.rejected.append(body["error"]["code"])
    now = time.time_ns() // 1000  # the worker's wall clock, near enough: no time is close to it
    for offset, (topic, key, value) in enumerate(messages):
        apply = processor.cdr if topic == "cdrs" else processor.account_event
        for name, out_key, body in apply(key, value, topic, 0, offset, now):
            if name == "rater-dlq":
                scenario.rejected.append(body["error"]["code"])
            else:
                scenario.expected.setdefault(name, []).append((out_key, body))
    return scenario


async def produce_raw(settings: Settings, topic: str, records: list) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", max_request_size=2**21
    )
    await producer.start()
    try:
        for key, value in records:
            await (await producer.send(settings.topic(topic), value, key=key))
    finally:
        await producer.stop()


# Each example starts a worker: two examples, and no shrinking (a failure shows its example).
@settings(
    max_examples=2,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(HOSTILE, min_size=5, max_size=15), st.randoms(use_true_random=False))
def test_hostile_records_go_to_the_dlq_and_the_worker_rates_the_rest(
    kafka_bootstrap: str, tmp_path: Path, hostile: list, rng: random.Random
) -> None:
    asyncio.run(run(kafka_bootstrap, tmp_path, hostile, rng))


async def run(bootstrap: str, tmp_path: Path, hostile: list, rng: random.Random) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    data = tmp_path / prefix  # one per example: the examples share the test's tmp_path
    settings = Settings(
        bootstrap_servers=bootstrap, app_id=prefix + "rater", topic_prefix=prefix,
        partitions=4, data_dir=data / "data", expiry_sweep=False, web_port=0,
    )
    await ensure_topics(settings)
    messages = list(build(cdrs_per_tenant=8, seed=rng.randrange(1000)).messages)
    for record in NAMED + hostile:
        messages.insert(rng.randrange(len(messages) + 1), record)
    scenario = expected(messages)
    assert len(scenario.rejected) >= len(NAMED) + len(hostile) + len(HOSTILE_TARIFFS)
    await produce_raw(settings, "tariffs", HOSTILE_TARIFFS)
    await produce_inputs(settings, [], TARIFFS)
    for record in messages:  # one at a time: each on the broker before the next is sent
        await produce_inputs(settings, [record])
    worker = WorkerProcess(settings, data / "worker.log")
    worker.start()
    try:
        check(scenario, await wait_for(settings, scenario, worker, timeout=240.0))
        assert worker.alive(), worker.log_path.read_text()[-3000:]
    finally:
        worker.stop()
