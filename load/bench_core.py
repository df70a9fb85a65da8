"""Benchmark of the billing core: cost per CDR end to end, and tenant state size.

Run from the project root::

    .venv/bin/python -m load core [--cdrs N] [--tenants N] [--tariffs N]
                                        [--reps N] [--profile] [--write docs/benchmarks-core.md]

It loads a tariff table (several call types, prefixes of 1 to 7 digits over
200 countries, mostly EUR, some rows with effective periods) and opens tenants
with credit lots, all in memory through :class:`Processor`. It then times, per
repetition, ``proc.cdr(key, value, ...)`` plus ``orjson.dumps`` of every output
over distinct, pre-generated raw CDR messages: decoding, rating, paying and
encoding, i.e. the core's whole share of the work for one CDR. Kafka, Faust and
the state store are not part of it.

Targets (from the issue): median under 15 µs per CDR; an idle tenant's state
under 2 KiB.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import random
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import orjson

from load.bench.run import machine, write_marked
from rater.core.clock import DAY, HOUR, MINUTE, format_time, parse_time
from rater.core.codec import encode_state
from rater.core.messages import decode_cdr
from rater.core.processor import Processor
from rater.core.tariffs import TariffIndex
from rater.core.topics import ACCOUNT_EVENTS, CDRS, TARIFFS

TARGET_US = 15.0
TARGET_IDLE_BYTES = 2048
CALL_MIX = (("outbound", 0.6), ("conference_dialout", 0.3), ("conference_tollfree_dialin", 0.1))
PLANS = ("domestic", "domestic_international", "pay_as_you_go")
OPENED = parse_time("2025-01-10T08:00:00Z")
TOPPED_UP = parse_time("2025-02-01T07:00:00Z")  # every tenant's clock; CDRs come after it
FIRST_CDR = parse_time("2025-02-01T08:00:00Z")
NOW = parse_time("2025-02-03T00:00:00Z")  # the wall clock of the whole run
PERIOD_SWITCH = "2025-01-01T00:00:00Z"


# ------------------------------------------------------------------------------ the data


def country_codes(count: int) -> list[str]:
    """E.164 country codes in the ITU's prefix-free layout: 1, 7, 2- and 3-digit codes."""
    heads = "2345689"  # 1 and 7 are whole codes
    # two thirds of the 2-digit numbers are codes; the others head ten 3-digit codes each
    two = [f"{n}" for n in range(20, 100) if str(n)[0] in heads]
    two = [code for i, code in enumerate(two) if i % 3 != 2]
    taken = set(two)
    three = [f"{head}{d}" for head in sorted(str(n) for n in range(20, 100)) for d in range(10)]
    three = [code for code in three if code[:2] not in taken and code[0] in heads]
    return (["1", "7", *two, *three])[:count]


def alpha2(index: int) -> str:
    return chr(65 + index // 26 % 26) + chr(65 + index % 26)


def tariff_rows(count: int, rng: random.Random) -> list[dict]:
    """``count`` tariff rows over 200 countries, prefixes of 1 to 7 digits.

    Every country first gets its bare country code for outbound and dial-out
    calls; then rows with longer prefixes (areas, mobile ranges, toll-free
    numbers) are drawn at random. About 5 % are in USD; about 10 % of the
    prefixes had a price change, so they have an old and a current row.
    """
    codes = country_codes(200)
    kinds = [c for c, _ in CALL_MIX]
    weights = [w for _, w in CALL_MIX]
    rows: list[dict] = []
    seen: set[tuple[str, str, str]] = set()
    serial = 0
    while len(rows) < count:
        i = serial % len(codes)
        code = codes[i]
        if serial < 2 * len(codes):  # the bare country codes
            call_type, currency, prefix = kinds[serial // len(codes)], "EUR", code
        else:
            call_type = rng.choices(kinds, weights)[0]
            currency = "USD" if rng.random() < 0.05 else "EUR"
            base = code
            if call_type == "conference_tollfree_dialin":
                base = code + rng.choice(("800", "80", "1800"))
            length = rng.randint(min(len(base), 7), 7)
            prefix = (base + "".join(rng.choices("0123456789", k=7)))[:length]
        serial += 1
        if (call_type, currency, prefix) in seen:
            continue
        seen.add((call_type, currency, prefix))
        row = {
            "tariff_id": f"tr-{len(rows):06d}",
            "call_type": call_type,
            "prefix": prefix,
            "country": alpha2(i),
            "currency": currency,
            "rate_per_minute": f"0.{rng.randint(1, 4999):04d}",
            "connection_fee": rng.choice(("0", "0", "0", "0.01", "0.025")),
            "first_increment_s": rng.choice((1, 30, 60, 60)),
            "increment_s": rng.choice((1, 6, 60, 60)),
            "effective_from": "2020-01-01T00:00:00Z",
            "effective_to": None,
        }
        if rng.random() < 0.1 and len(rows) + 1 < count:  # a price change: two periods
            rows.append({**row, "effective_to": PERIOD_SWITCH})
            row = {**row, "tariff_id": f"tr-{len(rows):06d}", "effective_from": PERIOD_SWITCH}
            row["rate_per_minute"] = f"0.{rng.randint(1, 4999):04d}"
        rows.append(row)
    return rows


def event(tenant: str, event_id: str, kind: str, at: int, **fields) -> tuple[bytes, bytes]:
    value = {"type": kind, "event_id": event_id, "tenant_id": tenant, "at": format_time(at)}
    value.update(fields)
    return tenant.encode(), orjson.dumps(value)


def open_tenant(
    proc: Processor, tenant: str, offset: int, auto_recharge: bool, pool: bool, language: str
) -> int:
    """Open one tenant with a contact and two credit lots; returns the next offset."""
    messages = [
        event(
            tenant,
            "e-open",
            "account_opened",
            OPENED,
            currency="EUR",
            contact_email=f"admin@{tenant}.example.com",
            language=language,
        ),
        event(tenant, "e-buy-1", "credits_purchased", OPENED + HOUR, amount="50"),
        event(tenant, "e-buy-2", "credits_purchased", TOPPED_UP, amount="25.5"),
    ]
    if auto_recharge:
        messages.append(
            event(
                tenant,
                "e-ar",
                "auto_recharge_configured",
                TOPPED_UP,
                enabled=True,
                trigger_balance="5",
                recharge_amount="50",
            )
        )
    if pool:
        messages.append(
            event(
                tenant,
                "e-pool",
                "minute_pool_allocated",
                TOPPED_UP,
                pool="domestic",
                month="2025-02",
                minutes=500,
            )
        )
    for key, value in messages:
        out = proc.account_event(key, value, ACCOUNT_EVENTS, 0, offset, NOW)
        assert all(topic != "rater-dlq" for topic, _, _ in out), out
        offset += 1
    return offset


def cdr_messages(
    count: int, rep: int, tenants: list[str], rows: list[dict], rng: random.Random
) -> list[tuple[bytes, bytes]]:
    """``count`` distinct raw CDRs over the tenants, to live EUR tariffs."""
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        if row["currency"] == "EUR" and row["effective_to"] is None:
            by_type.setdefault(row["call_type"], []).append(row)
    kinds = [c for c, _ in CALL_MIX]
    weights = [w for _, w in CALL_MIX]
    out = []
    for i in range(count):
        tenant = tenants[rng.randrange(len(tenants))]
        call_type = rng.choices(kinds, weights)[0]
        row = rng.choice(by_type[call_type])
        length = max(rng.randint(9, 12), len(row["prefix"]) + 3)  # national numbers
        digits = row["prefix"] + "".join(rng.choices("0123456789", k=length - len(row["prefix"])))
        value = {
            "cdr_id": f"cdr-{rep}-{i:07d}",
            "tenant_id": tenant,
            "user_id": f"u-{rng.randrange(50)}",
            "call_type": call_type,
            "origin_country": row["country"] if rng.random() < 0.5 else "AB",
            "destination": "+" + digits,
            "started_at": format_time(FIRST_CDR + rep * HOUR + i * 10_000),
            "duration_s": min(int(rng.expovariate(1 / 240)), 86_400),
        }
        if call_type == "outbound":
            value["plan"] = rng.choice(PLANS)
        out.append((tenant.encode(), orjson.dumps(value)))
    return out


# -------------------------------------------------------------------------- measurements


def time_rep(proc: Processor, messages: list[tuple[bytes, bytes]], first_offset: int) -> float:
    """Nanoseconds per CDR for one pass: proc.cdr, then orjson.dumps of every output."""
    cdr, dumps = proc.cdr, orjson.dumps
    offset = first_offset
    gc.collect()
    start = time.perf_counter_ns()
    for key, value in messages:
        for _topic, _key, out in cdr(key, value, CDRS, 0, offset, NOW):
            dumps(out)
        offset += 1
    return (time.perf_counter_ns() - start) / len(messages)


def breakdown(proc: Processor, messages: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Rough ns per CDR of the separable parts: decoding, tariff lookup, output encoding."""
    start = time.perf_counter_ns()
    decoded = [decode_cdr(key, value) for key, value in messages]
    decode_ns = (time.perf_counter_ns() - start) / len(messages)
    lookup = proc.tariffs.lookup
    start = time.perf_counter_ns()
    for c in decoded:
        lookup(c.call_type, "EUR", c.destination_digits, c.started_at)
    lookup_ns = (time.perf_counter_ns() - start) / len(messages)
    return {"decode": decode_ns, "lookup": lookup_ns}


def idle_state_sizes(tariffs: TariffIndex) -> tuple[int, int, int]:
    """Encoded state of an idle tenant, and of one with 1,000 CDRs inside the id window.

    Both tenants: opened with a contact, two lots, auto-recharge on, a pool
    allocation. The idle one is swept 40 days later, so no id is left in the
    35-day window; the other has just rated 1,000 zero-second calls.
    """
    sizes = []
    tenant = "tenant-00000042"  # as long as the benchmark's tenant ids
    for cdrs in (0, 1000):
        proc = Processor(tariffs)
        open_tenant(proc, tenant, 0, auto_recharge=True, pool=True, language="de")
        state = proc.states[tenant]
        assert len(state.lots) == 2 and state.ar_enabled and state.contact_email
        if cdrs == 0:
            proc.sweep(tenant, TOPPED_UP + 40 * DAY)
            assert not state.seen, state.seen
        else:
            for i, (key, value) in enumerate(_cdrs_for(tenant, cdrs)):
                assert proc.cdr(key, value, CDRS, 0, i, NOW)[0][0] == "rated-cdrs"
            assert len(state.seen) >= cdrs
        sizes.append(len(encode_state(state)))
    idle, busy = sizes
    return idle, busy, round((busy - idle) / 1000)


def _cdrs_for(tenant: str, count: int) -> list[tuple[bytes, bytes]]:
    """Short CDRs (zero-second calls cost nothing) with realistic ids, for the size test."""
    out = []
    for i in range(count):
        value = {
            "cdr_id": f"0b9f6c3e-1d2a-4f55-9e1b-{i:012d}",  # a UUID-sized id
            "tenant_id": tenant,
            "call_type": "conference_dialout",
            "origin_country": "DE",
            "destination": "+4930123456",
            "started_at": format_time(FIRST_CDR + i * MINUTE),
            "duration_s": 0,
        }
        out.append((tenant.encode(), orjson.dumps(value)))
    return out


# ------------------------------------------------------------------------------- reporting


CORE_START = "<!-- rater-bench:core:start -->"
CORE_END = "<!-- rater-bench:core:end -->"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m load core", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cdrs", type=int, default=100_000, help="CDRs per repetition")
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--tariffs", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20250201)
    parser.add_argument("--profile", action="store_true", help="cProfile one extra pass")
    parser.add_argument("--write", metavar="FILE", help="write the markdown report there")
    args = parser.parse_args(argv)
    command = shlex.join(
        [".venv/bin/python", "-m", "load", "core", *(sys.argv[1:] if argv is None else argv)]
    )
    rng = random.Random(args.seed)

    started = time.perf_counter()
    proc = Processor(TariffIndex())
    rows = tariff_rows(args.tariffs, rng)
    for offset, row in enumerate(rows):
        key = row["tariff_id"].encode()
        assert proc.tariff(key, orjson.dumps(row), TARIFFS, 0, offset) == []
    tenants = [f"tenant-{i:08d}" for i in range(args.tenants)]
    offset = 0
    for tenant in tenants:
        offset = open_tenant(
            proc,
            tenant,
            offset,
            auto_recharge=rng.random() < 0.5,
            pool=rng.random() < 0.3,
            language=rng.choice(("en", "de")),
        )
    setup_s = time.perf_counter() - started
    print(f"setup: {len(proc.tariffs)} tariff rows, {len(proc.states)} tenants in {setup_s:.1f} s")

    per_cdr: list[float] = []
    outputs_per_cdr = 0.0
    offset = 0
    for rep in range(args.reps):
        messages = cdr_messages(args.cdrs, rep, tenants, rows, rng)
        if rep == 0:
            parts = breakdown(proc, messages)
        ns = time_rep(proc, messages, offset)
        offset += len(messages)
        per_cdr.append(ns / 1000)
        print(f"rep {rep + 1}: {ns / 1000:.2f} µs per CDR")
    # what one CDR produced, over a sample of the last repetition played again on fresh ids
    sample = cdr_messages(min(args.cdrs, 10_000), args.reps, tenants, rows, rng)
    produced = [proc.cdr(k, v, CDRS, 0, i, NOW) for i, (k, v) in enumerate(sample)]
    outputs_per_cdr = sum(len(p) for p in produced) / len(produced)
    dlq_share = sum(1 for p in produced if p and p[0][0] == "rater-dlq") / len(produced)
    values = [v for p in produced for _, _, v in p]
    start = time.perf_counter_ns()
    for v in values:
        orjson.dumps(v)
    parts["dumps"] = (time.perf_counter_ns() - start) / len(produced)

    idle, busy, per_id = idle_state_sizes(proc.tariffs)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median, best = statistics.median(per_cdr), min(per_cdr)
    info = machine()

    lines = [
        "# Billing core benchmark",
        "",
        "Cost of the core per CDR, end to end: decode the raw message, rate, pay, and",
        "`orjson.dumps` every output (`proc.cdr(...)` in `rater/core/processor.py`), over",
        "distinct CDRs; no Kafka, Faust or state store. Produced by `python -m load core`.",
        "",
        "| | |",
        "|---|---|",
        f"| date | {info['date']} |",
        f"| python | {info['python']} (orjson {orjson.__version__}) |",
        f"| nproc | {info['cores']} |",
        f"| memory | {info['memory']} |",
        f"| CPU | {info['cpu']} |",
        f"| command | `{command}` |",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| tariff rows / tenants in memory | {len(proc.tariffs):,} / {len(proc.states):,} | |",
        f"| CDRs per repetition, repetitions | {args.cdrs:,}, {args.reps} | |",
        f"| **median µs per CDR** | **{median:.2f}** | < {TARGET_US:g} "
        f"({'met' if median < TARGET_US else 'MISSED'}) |",
        f"| best repetition µs per CDR | {best:.2f} | |",
        f"| per repetition µs per CDR | {', '.join(f'{x:.2f}' for x in per_cdr)} | |",
        f"| outputs per CDR (DLQ share) | {outputs_per_cdr:.2f} ({dlq_share:.1%}) | |",
        f"| part, timed alone: decode µs | {parts['decode'] / 1000:.2f} | |",
        f"| part, timed alone: tariff lookup µs | {parts['lookup'] / 1000:.2f} | |",
        f"| part, timed alone: orjson.dumps of the outputs µs | {parts['dumps'] / 1000:.2f} | |",
        f"| **idle tenant state** (contact, 2 lots, auto-recharge, pool) | **{idle:,} B** "
        f"| < {TARGET_IDLE_BYTES:,} B ({'met' if idle < TARGET_IDLE_BYTES else 'MISSED'}) |",
        f"| tenant state after 1,000 CDRs in the 35-day window | {busy:,} B "
        f"(≈ {per_id} B per remembered CDR id) | |",
        f"| setup (tariffs + tenants) | {setup_s:.1f} s | |",
        f"| peak RSS of the benchmark | {rss_mib:,.0f} MiB | |",
        "",
    ]
    report = "\n".join(lines)
    print()
    print(report)

    if args.profile:
        messages = cdr_messages(args.cdrs, args.reps + 1, tenants, rows, rng)
        profiler = cProfile.Profile()
        profiler.enable()
        time_rep(proc, messages, 10_000_000)
        profiler.disable()
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)
        print(stream.getvalue())

    if args.write:
        write_marked(Path(args.write), report, CORE_START, CORE_END)
        print(f"written to {args.write} (its core section; the rest is kept)")


if __name__ == "__main__":
    main()
