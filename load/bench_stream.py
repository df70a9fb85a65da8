"""The stream benchmark as a script: the same as `rater bench` (rater/ops/bench.py).

Run from the project root::

    .venv/bin/python load/bench_stream.py [--quick] [--runs N] [--cdrs N] [--tenants N]
                                          [--write docs/benchmarks.md]

It starts its own Kafka broker on a free port (or uses KAFKA_BOOTSTRAP_SERVERS),
then measures, per run, a bare aiokafka consume-produce loop, a plain Faust
agent and one rater worker on the same CDR backlog, the latency at half the
rater's rate, the worker's memory and the tenant state size.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rater.ops.bench import bench

if __name__ == "__main__":
    bench(prog_name="load/bench_stream.py")
