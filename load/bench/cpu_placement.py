"""A core of its own for the rater worker during the bench's latency phase (Linux).

In production the broker and the switches' producers run on other hosts. On
the one machine of a benchmark they share the worker's cores, and the kernel
gives each runnable thread its turn: at half the peak the worker got about 0.7
of a core while records waited for it (docs/benchmark-notes.md, session 10). Placing
the worker alone on one core and the broker and the bench's own processes on
the others measures the worker as deployed; it cannot give the others more
cores than the machine has.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


def pin(pid: int, cpus: Iterable[int]) -> None:
    """Every thread of ``pid`` to ``cpus``; threads it starts later inherit it.

    ``sched_setaffinity`` acts on one thread, and a JVM or a Faust worker is
    already running many.
    """
    allowed = set(cpus)
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            os.sched_setaffinity(int(tid), allowed)


@dataclass(frozen=True)
class Placement:
    """The worker on ``worker_cpus``; ``others`` (pids) and this process on ``other_cpus``."""

    worker_cpus: frozenset[int]
    other_cpus: frozenset[int]
    others: tuple[int, ...]

    @classmethod
    def split(cls, cpus: Iterable[int], others: Iterable[int]) -> Placement:
        """The highest of ``cpus`` for the worker, the rest for everything else."""
        ordered = sorted(set(cpus))
        if len(ordered) < 2:
            raise ValueError(f"a core of its own for the worker needs 2 CPUs; this has {ordered}")
        return cls(frozenset(ordered[-1:]), frozenset(ordered[:-1]), tuple(others))

    @contextlib.contextmanager
    def applied(self, worker_pid: int) -> Iterator[None]:
        """Placed while inside; afterwards the others may use every CPU again.

        The worker keeps its core: the bench stops it after the phase.
        """
        everyone = (os.getpid(), *self.others)
        pin(worker_pid, self.worker_cpus)
        for pid in everyone:
            pin(pid, self.other_cpus)
        try:
            yield
        finally:
            for pid in everyone:
                pin(pid, self.worker_cpus | self.other_cpus)
