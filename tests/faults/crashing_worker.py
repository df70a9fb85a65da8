"""``rater worker`` with a step hook that SIGKILLs it at a named step of a batch, like a crash.

``RATER_CRASH_AT=<point>`` names a :meth:`PartitionRater.checkpoint` step and
``RATER_CRASH_AFTER=<n>`` (default 1) the how-manieth time the step is reached.
Before dying it flushes the partition's producer, so whatever the batch has
sent so far is really on the broker, inside the open transaction: the worst
case for the next owner of the partition. With ``RATER_CRASH_MODE=raise`` the
step raises a connection error once instead, as a commit whose answer was
lost does, and the worker goes on.

The hook is handed to the worker (``run_worker(on_step=...)``); nothing of
the product is patched. Run as ``python -m tests.faults.crashing_worker worker
--loglevel L``, the command line :class:`WorkerProcess` gives any module.
"""

from __future__ import annotations

import os
import signal
import sys

import click
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from rater.stream.cli import run_worker


class CrashAt:
    """The step hook: counts the named step and crashes (or raises) at the chosen time."""

    def __init__(self, point: str, after: int, raise_instead: bool) -> None:
        self.point, self.after, self.raise_instead = point, after, raise_instead
        self.reached = 0

    async def __call__(self, point: str, producer: AIOKafkaProducer) -> None:
        if point != self.point:
            return
        self.reached += 1
        if self.reached != self.after:
            return
        if self.raise_instead:
            sys.stderr.write(f"failing at {point} (time {self.reached})\n")
            raise KafkaConnectionError(f"injected at {point}")
        await producer.flush()
        sys.stderr.write(f"crashing at {point} (time {self.reached})\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


@click.command()
@click.argument("command", type=click.Choice(["worker"]))
@click.option("--loglevel", default="info")
def main(command: str, loglevel: str) -> None:
    hook = CrashAt(
        os.environ["RATER_CRASH_AT"],
        int(os.environ.get("RATER_CRASH_AFTER", "1")),
        os.environ.get("RATER_CRASH_MODE") == "raise",
    )
    run_worker(loglevel, on_step=hook)


if __name__ == "__main__":
    main()
