"""Every reach into faust-streaming's and aiokafka's private parts, one named function each.

The shell needs a few things neither library offers publicly (a partition's
fetch state without a coroutine, the producer id of a transaction, a
table's RocksDB for one partition, ...). They are read here and nowhere
else, so an upgrade has one place to check: ``aiokafka.py`` and ``faust.py``
beside this file. The shell also *overrides* some private methods
(``Consumer._drain_messages``, ``AIOKafkaConsumerThread._create_worker_consumer``,
``ThreadDelegateConsumer._new_consumer_thread``, ``App._new_transport``,
``TableManager.on_start``'s ``_update_channels``); those stay in their
classes. tests/unit/compat/test_compat.py checks that each name still exists,
and this module refuses to load under versions it was not written for.

pyproject.toml pins both libraries exactly (``==``); this guard catches an
environment that installed something else anyway (docs/decisions.md D69
("Third-party internals")).
"""

from __future__ import annotations

import os
from importlib.metadata import version

TESTED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}
# An operator who must run other versions (a security fix) can say so, knowingly.
OVERRIDE = "RATER_ALLOW_UNTESTED_LIBRARIES"


class UntestedLibrary(RuntimeError):
    """A library version whose internals this package was not checked against."""


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Raise :class:`UntestedLibrary` unless every pinned library is at its tested version."""
    found = installed or {name: version(name) for name in TESTED}
    wrong = {name: found[name] for name, tested in TESTED.items() if found[name] != tested}
    if wrong and os.environ.get(OVERRIDE) != "1":
        details = ", ".join(f"{n} {v} (tested: {TESTED[n]})" for n, v in sorted(wrong.items()))
        raise UntestedLibrary(
            f"untested library versions: {details}; reinstall with `pip install -e .` "
            f"or set {OVERRIDE}=1 to run anyway"
        )


check_versions()
