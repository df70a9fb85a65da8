"""rater: a Kafka-native usage rater for prepaid communications credits.

Packages, and what each may import (tests/unit/test_layout.py checks it;
docs/architecture.md has the map):

- ``core``: the billing rules of SPEC 5-9 as pure functions (no I/O, no Kafka,
  no Faust). Imports nothing else of ``rater``.
- ``config``: settings and their environment variables (one table).
- ``compat``: every private access to faust-streaming and aiokafka.
- ``stream``: the worker (``rater worker``): Faust app, batch consumer,
  one transaction per partition batch, committed state in RocksDB.
- ``observability`` and ``web``: readiness, Prometheus metrics and the HTTP
  API (SPEC 11); they see the worker through a protocol, never its classes.
- ``notifier``: ``rater notify``, the e-mail notices of SPEC 10.
- ``dlq``: ``rater dlq replay``.
- ``devkit``: the local broker and ``rater demo``, the first command's
  embedded defaults; nothing above imports it. Benchmarks and traffic are
  the checkout's ``load`` package, not part of this one.
"""
