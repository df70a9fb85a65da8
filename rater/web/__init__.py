"""The worker's HTTP API on Faust's web server (SPEC 11).

Depends on :mod:`rater.core` and on the :class:`~rater.observability.status.WorkerStatus`
protocol, never on the stream shell's classes: ``rater.stream.app`` wires them together.
"""
