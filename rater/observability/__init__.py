"""What a worker tells operators: readiness and Prometheus metrics (SPEC 11).

Depends on protocols only (:mod:`rater.observability.status`), never on the
stream shell's classes: the shell implements the protocol and feeds the
metrics from its commit path.
"""
