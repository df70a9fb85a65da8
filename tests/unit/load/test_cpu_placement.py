"""The bench's core of its own for the worker, on real processes of this machine (Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from load.bench.cpu_placement import Placement, pin

# A child with a second thread already running, as a worker or a JVM has.
CHILD = """
import sys, threading
threading.Thread(target=sys.stdin.read, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def child() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    yield proc.pid
    proc.kill()
    proc.wait()


def cpus_of_threads(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")]


def test_the_worker_gets_the_highest_cpu_and_the_others_the_rest() -> None:
    placement = Placement.split({3, 0, 2, 1}, [42])
    assert placement.worker_cpus == {3}
    assert placement.other_cpus == {0, 1, 2}
    assert placement.others == (42,)


def test_one_cpu_cannot_give_the_worker_a_core_of_its_own() -> None:
    with pytest.raises(ValueError, match="needs 2 CPUs"):
        Placement.split({0}, [])


def test_pin_moves_every_thread_of_a_process(child: int) -> None:
    first = min(os.sched_getaffinity(0))
    assert len(cpus_of_threads(child)) == 2
    pin(child, {first})
    assert cpus_of_threads(child) == [{first}, {first}]


def test_inside_the_worker_is_alone_and_afterwards_the_others_have_every_cpu(
    child: int,
) -> None:
    everything = os.sched_getaffinity(0)
    with subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE) as other:
        placement = Placement.split(everything, [other.pid])
        with placement.applied(child):
            assert all(cpus == placement.worker_cpus for cpus in cpus_of_threads(child))
            for pid in (os.getpid(), other.pid):
                assert all(cpus == placement.other_cpus for cpus in cpus_of_threads(pid))
        for pid in (os.getpid(), other.pid):
            assert all(cpus == everything for cpus in cpus_of_threads(pid))
        assert all(cpus == placement.worker_cpus for cpus in cpus_of_threads(child))
        other.kill()
