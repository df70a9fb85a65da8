"""Audit a ``load/txn_trace.py`` worker log: what each transaction wrote, added and ended.

Usage: ``python -m load.research.txn_audit WORKER_LOG [TRANSACTIONAL_ID]``. Replays the
``TXN`` lines per transactional id and reports, for every transaction that
ended (EndTxn answered, or completed locally by the empty-transaction
shortcut), the partitions the coordinator was told about (AddPartitionsToTxn
answered 0) and the partitions that took records (Produce answered 0), and
flags any transaction that wrote to a partition it never added, any commit
taken by the shortcut after records were written, and the last records of each
partition with the transaction that holds them (to compare with the partition's
last stable offset). Research tooling for issue 16.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict

LINE = re.compile(r"TXN (\S+) (\S+) (.*)$")
TID = re.compile(r"^(\S+?)\[(-?\d+)/(-?\d+)\]")


def main() -> None:
    path = sys.argv[1]
    only = sys.argv[2] if len(sys.argv) > 2 else None
    txns: dict[str, dict] = defaultdict(lambda: {"n": 0, "added": set(), "wrote": {}})
    last_write: dict[str, tuple] = {}
    problems = 0
    with open(path, errors="replace") as lines:
        entries = [LINE.search(raw.rstrip()) for raw in lines]
    for m in entries:
        if not m:
            continue
        stamp, kind, rest = m.groups()
        t = TID.match(rest)
        tid = t.group(1) if t else rest.split()[0]
        if only and tid != only:
            continue
        cur = txns[tid]
        if kind == "ADD_PARTS_RESP":
            body = ast.literal_eval(rest[t.end() :].strip())
            for topic, parts in body:
                for partition, err in parts:
                    if err == 0:
                        cur["added"].add(f"{topic}-{partition}")
        elif kind == "PRODUCE_RESP":
            body = ast.literal_eval(rest[t.end() :].strip())
            for topic, parts in body:
                for partition, err, offset in parts:
                    tp = f"{topic}-{partition}"
                    if err == 0:
                        cur["wrote"][tp] = offset
                        last_write[tp] = (stamp, tid, cur["n"], offset)
                        if tp not in cur["added"]:
                            problems += 1
                            print(f"{stamp} {tid} txn#{cur['n']}: wrote {tp}@{offset} not added")
        elif kind == "END_TXN_RESP" and rest.endswith("err=0"):
            cur["n"] += 1
            cur["added"], cur["wrote"] = set(), {}
        elif kind == "EMPTY_TXN_CHECK" and rest.endswith("True"):
            if cur["wrote"]:
                problems += 1
                print(f"{stamp} {tid} txn#{cur['n']}: empty shortcut after writing {cur['wrote']}")
            cur["n"] += 1
            cur["added"], cur["wrote"] = set(), {}
        elif kind == "STATE" and "->READY" in rest and "UNINITIALIZED" not in rest:
            pass
    for tp, (stamp, tid, n, offset) in sorted(last_write.items()):
        state = "open" if txns[tid]["n"] == n else "ended"
        print(f"last write {tp}: base offset {offset} at {stamp} by {tid} txn#{n} ({state})")
    print("problems:", problems)


if __name__ == "__main__":
    main()
