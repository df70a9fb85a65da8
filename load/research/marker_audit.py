"""Find transactions whose records were not closed by their own marker (issue 16).

A hanging transaction is only visible while nothing else is written: the next
transaction of the same producer that writes the partition ends it with its own
marker (the partition keeps one open transaction per producer). So a check of
the stable offset at the end of a run misses every hang but the last. This
audit reads the partition logs themselves (Kafka's DumpLogSegments) and the
worker's ``load/txn_trace.py`` log: for every partition, the base offset of
each batch a transaction wrote (its Produce answer) and the offsets of the
control records. In a healthy log every transaction's records are followed by
a marker before the next transaction's records on that partition (TV1: the
next AddPartitionsToTxn waits for the markers). A transaction without one was
left open, and only a later commit hid it.

    python -m load.research.marker_audit TRACE_LOG KAFKA_LOG_DIR TOPIC_PREFIX
"""

from __future__ import annotations

import ast
import itertools
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_JAR = Path.home() / ".m2/repository/org/apache/kafka/kafka-tools/4.4.0/kafka-tools-4.4.0.jar"
LINE = re.compile(r"TXN (\S+) (\S+) (.*)$")
TID = re.compile(r"^(\S+?)\[(-?\d+)/(-?\d+)\]")
BATCH = re.compile(
    r"baseOffset: (\d+) lastOffset: (\d+) .*producerId: (-?\d+) producerEpoch: (-?\d+)"
)


def writes(trace: str) -> dict[str, list[tuple[int, str, int, str]]]:
    """Per partition: (base offset, transactional id, transaction number, time) of each write."""
    count: dict[str, int] = defaultdict(int)
    out: dict[str, list[tuple[int, str, int, str]]] = defaultdict(list)
    with open(trace, errors="replace") as lines:
        for raw in lines:
            m = LINE.search(raw.rstrip())
            if not m:
                continue
            stamp, kind, rest = m.groups()
            t = TID.match(rest)
            tid = t.group(1) if t else rest.split()[0]
            if kind == "PRODUCE_RESP":
                for topic, parts in ast.literal_eval(rest[t.end() :].strip()):
                    for partition, err, offset in parts:
                        if err == 0 and offset >= 0:
                            out[f"{topic}-{partition}"].append((offset, tid, count[tid], stamp))
            elif (kind == "END_TXN_RESP" and rest.endswith("err=0")) or (
                kind == "EMPTY_TXN_CHECK" and rest.endswith("True")
            ):
                count[tid] += 1
    return out


def markers(log_dir: Path) -> list[int]:
    """Offsets of the control records (transaction markers) in a partition's log."""
    files = sorted(str(p) for p in log_dir.glob("*.log"))
    if not files:
        return []
    proc = subprocess.run(
        [
            "java",
            "-cp",
            f"{ROOT}/deploy/kafka/lib/4.4.0/*:{TOOLS_JAR}",
            "org.apache.kafka.tools.DumpLogSegments",
            "--files",
            ",".join(files),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    found = []
    for line in proc.stdout.splitlines():
        if "isControl: true" in line:
            m = BATCH.search(line)
            if m:
                found.append(int(m.group(1)))
    return sorted(found)


def main() -> None:
    trace, kafka_dir, prefix = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    per_tp = writes(trace)
    unclosed = 0
    for tp, batches in sorted(per_tp.items()):
        if not tp.startswith(prefix):
            continue
        marks = markers(kafka_dir / tp)
        batches.sort()
        by_txn: dict[tuple[str, int], list[int]] = defaultdict(list)
        for offset, tid, n, _ in batches:
            by_txn[(tid, n)].append(offset)
        txns = sorted(by_txn.items(), key=lambda item: min(item[1]))
        for (key, offsets), (next_key, next_offsets) in itertools.pairwise(txns):
            last, following = max(offsets), min(next_offsets)
            if not any(last < m < following for m in marks):
                unclosed += 1
                stamp = next(s for o, t, n, s in batches if (t, n) == key and o == last)
                print(
                    f"{tp}: {key[0]} txn#{key[1]} wrote at {last} ({stamp}); no marker before "
                    f"txn#{next_key[1]} wrote at {following}"
                )
        tail = txns[-1] if txns else None
        if tail and not any(m > max(tail[1]) for m in marks):
            unclosed += 1
            print(
                f"{tp}: last {tail[0][0]} txn#{tail[0][1]} at {max(tail[1])} has no marker after it"
            )
    print("transactions not closed by their own marker:", unclosed)


if __name__ == "__main__":
    main()
