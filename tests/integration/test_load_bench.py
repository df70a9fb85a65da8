"""`rater load` on the real broker, and a smoke run of `rater bench`."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from load.bench.run import END_MARK, START_MARK, bench, write_section
from load.produce import config_from_options, load
from load.traffic import GOOD, Traffic
from rater.devkit.localkafka.readback import read_all


def env(bootstrap: str, prefix: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RATER_TOPIC_PREFIX": prefix,
        "RATER_APP_ID": prefix + "rater",
        "RATER_PARTITIONS": "4",
    }


def run_load(bootstrap: str, prefix: str, *args: str) -> str:
    result = CliRunner().invoke(load, list(args), env=env(bootstrap, prefix))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def by_key(messages: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    grouped: dict[bytes, list[bytes]] = {}
    for key, value in messages:
        grouped.setdefault(key, []).append(value)
    return grouped


def test_load_produces_the_setup_and_every_cdr(kafka_bootstrap: str, unique_prefix: str) -> None:
    end = "2026-01-10T12:00:00Z"
    args = ["--cdrs", "400", "--tenants", "30", "--tariffs", "200", "--seed", "5", "--max"]
    output = run_load(kafka_bootstrap, unique_prefix, *args, "--bad-share", "0.1", "--end", end)
    traffic = Traffic(
        config_from_options(
            cdrs=400,
            tenants=30,
            tariff_rows=200,
            seed=5,
            dup_share=0.01,
            bad_share=0.1,
            zipf=1.0,
            span_hours=6.0,
            end=end,
        )
    )
    expected = list(traffic.cdrs())

    cdrs = asyncio.run(read_all(kafka_bootstrap, unique_prefix + "cdrs"))
    events = asyncio.run(read_all(kafka_bootstrap, unique_prefix + "account-events"))
    tariffs = asyncio.run(read_all(kafka_bootstrap, unique_prefix + "tariffs"))
    assert len(cdrs) == 400 and "produced 400 CDRs" in output
    assert len(events) == len(traffic.account_messages())
    assert len(tariffs) == len(traffic.rows)
    # every tenant's CDRs arrive in the generator's order (duplicates included)
    assert by_key([(r.key, r.value) for r in cdrs]) == by_key([(k, v) for k, v, _ in expected])
    # co-partitioned: a tenant's CDRs and account events are on the same partition number
    home = {r.key: r.partition for r in events}
    good = [r for r in cdrs if r.key in home]
    assert good and all(home[r.key] == r.partition for r in good)
    good_count = sum(1 for *_, kind in expected if kind == GOOD)
    assert f"good {good_count:,}" in output


def test_load_holds_the_rate_it_is_given(kafka_bootstrap: str, unique_prefix: str) -> None:
    started = time.monotonic()
    output = run_load(
        kafka_bootstrap,
        unique_prefix,
        "--cdrs",
        "300",
        "--tenants",
        "10",
        "--rate",
        "200",
        "--no-setup",
        "--dup-share",
        "0",
        "--bad-share",
        "0",
    )
    elapsed = time.monotonic() - started
    assert elapsed >= 299 / 200
    achieved = float(re.search(r"([\d,]+) CDR/s", output).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert achieved <= 200 * 1.1
    records = asyncio.run(read_all(kafka_bootstrap, unique_prefix + "cdrs"))
    assert len(records) == 300
    assert not asyncio.run(read_all(kafka_bootstrap, unique_prefix + "account-events"))
    spread_ms = max(r.timestamp for r in records) - min(r.timestamp for r in records)
    assert spread_ms >= 1000  # paced: the records were not sent in one burst


def test_load_refuses_rate_and_max_together(kafka_bootstrap: str, unique_prefix: str) -> None:
    result = CliRunner().invoke(
        load, ["--rate", "10", "--max"], env=env(kafka_bootstrap, unique_prefix)
    )
    assert result.exit_code != 0 and "not both" in result.output


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Billing core benchmark\n\ncore figures\n", encoding="utf-8")
    write_section(doc, f"{START_MARK}\nfirst\n{END_MARK}\n")
    write_section(doc, f"{START_MARK}\nsecond\n{END_MARK}\n")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Billing core benchmark\n\ncore figures\n")
    assert "second" in text and "first" not in text and text.count(START_MARK) == 1


def test_quick_bench_reports_every_measure(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The smoke version, on the test broker: about 30 s on a quiet 2-core machine; its
    latency phase with the worker on a core of its own (`--isolate-worker`)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Billing core benchmark\n", encoding="utf-8")
    args = [
        "--quick",
        "--cdrs",
        "4000",
        "--tenants",
        "100",
        "--faust-cdrs",
        "1500",
        "--latency-seconds",
        "3",
        "--isolate-worker",
        "--write",
        str(doc),
    ]
    cpus_before = os.sched_getaffinity(0)
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Billing core benchmark\n") and START_MARK in text
    rows = {line.split(" | ")[0].strip("| *") for line in text.splitlines() if " | " in line}
    for measure in (
        "rater, CDR/s",
        "rater / ceiling",
        "rater / plain Faust",
        "latency p99 ms",
        "RSS growth",
        "state B per idle tenant",
        "rated records / good CDRs",
    ):
        assert any(row.startswith(measure) for row in rows), measure
    phase = next(line for line in text.splitlines() if line.startswith("| latency phase |"))
    assert "the worker alone on CPU" in phase and "(external broker)" in phase
    assert os.sched_getaffinity(0) == cpus_before  # the test's process has every CPU back
    rated = next(line for line in text.splitlines() if line.startswith("| rated records"))
    assert "| 1.000 |" in rated  # every good CDR of the backlog was rated exactly once
