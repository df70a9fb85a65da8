"""``rater dlq replay``: the operator's tool for the ``rater-dlq`` topic (SPEC 9).

Reads rejected records, lets the operator choose some by code, tenant or
time, and sends them back to the topic they came from after a fix.
Imports ``rater.core``, ``rater.config`` and ``rater.stream`` (topic layout); never
``rater.devkit`` or ``load``.
"""
