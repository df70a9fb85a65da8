"""rater: a Kafka-native usage rater for prepaid communications credits.

Packages, and what each may import:

- ``core``: the billing rules of SPEC 5-9 as pure functions (no I/O, no Kafka,
  no Faust). Imports nothing else of ``rater``.
- ``stream``: the worker (``rater worker``): Faust app, batch consumer,
  one transaction per partition batch, committed state in RocksDB.
- ``observability`` and ``web``: readiness, Prometheus metrics and the HTTP
  API (SPEC 11); they see the worker through a protocol, never its classes.
- ``notifier``: ``rater notify``, the e-mail notices of SPEC 10.
- ``ops``: the DLQ replay and the tooling around the product (demo, load,
  benchmarks); ``localkafka``: the broker the first command starts. The
  worker never imports either.
"""
