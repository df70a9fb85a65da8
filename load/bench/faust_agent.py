"""The benchmark's reference: a plain Faust agent, one event in, one record out.

Run as ``python -m load.bench.faust_agent BOOTSTRAP APP_ID SOURCE SINK PARTITIONS DATADIR``
by ``rater bench``, in its own process like a real worker. The agent does
what the ceiling loop does (decode the CDR with orjson, send one small record
keyed by tenant) with the settings ENGINEERING.md found cheapest for a plain
agent: raw serializers, orjson in our code, no ``Record`` models, no tables.
It is what the rater would cost if it used Faust the ordinary way.
"""

from __future__ import annotations

import sys
from typing import Any

import faust
import orjson


def build(
    bootstrap: str, app_id: str, source: str, sink: str, partitions: int, datadir: str
) -> faust.App:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        web_enabled=False,
        datadir=datadir,
        consumer_auto_offset_reset="earliest",
    )
    inbound = app.topic(source, partitions=partitions)
    outbound = app.topic(sink, partitions=partitions)

    @app.agent(inbound)
    async def relay(stream: Any) -> None:
        async for event in stream.events():
            try:
                cdr = orjson.loads(event.value)
                out = orjson.dumps({"cdr_id": cdr["cdr_id"], "tenant_id": cdr["tenant_id"]})
            except (orjson.JSONDecodeError, KeyError, TypeError):
                out = b"{}"  # a bad record: as the ceiling loop does, one record out anyway
            await outbound.send(key=event.key, value=out)

    return app


def main(argv: list[str]) -> None:
    bootstrap, app_id, source, sink, partitions, datadir = argv[:6]
    app = build(bootstrap, app_id, source, sink, int(partitions), datadir)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    # Faust's worker sets the root logger to DEBUG at WARNING and above, to spin its terminal
    # spinner on every record: aiokafka then builds a debug record per send. Not without one.
    worker.spinner = None
    sys.argv = sys.argv[:1]  # the worker parses argv itself
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
