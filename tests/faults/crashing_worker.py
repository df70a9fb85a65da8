"""``rater worker`` that SIGKILLs itself at a named step of a batch, like a crash there.

``RATER_CRASH_AT=<point>`` names a :meth:`PartitionRater.checkpoint` step and
``RATER_CRASH_AFTER=<n>`` (default 1) the how-manieth time the step is reached.
Before dying it flushes the partition's producer, so whatever the batch has
sent so far is really on the broker, inside the open transaction: the worst
case for the next owner of the partition. With ``RATER_CRASH_MODE=raise`` the
step raises a connection error once instead, as a commit whose answer was
lost does, and the worker goes on.
"""

from __future__ import annotations

import os
import signal
import sys

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from rater.cli import main
from rater.stream.partition import PartitionRater

POINT = os.environ["RATER_CRASH_AT"]
RAISE = os.environ.get("RATER_CRASH_MODE") == "raise"
AFTER = int(os.environ.get("RATER_CRASH_AFTER", "1"))
_reached = 0


async def _crash_at_point(self: PartitionRater, point: str, producer: AIOKafkaProducer) -> None:
    global _reached
    if point != POINT:
        return
    _reached += 1
    if _reached < AFTER:
        return
    if RAISE:
        if _reached == AFTER:
            sys.stderr.write(f"failing at {point} (time {_reached})\n")
            raise KafkaConnectionError(f"injected at {point}")
        return
    await producer.flush()
    sys.stderr.write(f"crashing at {point} (time {_reached})\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


PartitionRater.checkpoint = _crash_at_point  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
