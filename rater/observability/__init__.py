"""What a worker tells operators: readiness and Prometheus metrics (SPEC 11), and the
figures of the output topics that the dashboard and the demo show (``tally``, pure;
``tail``, the ``read_committed`` reader that feeds it).

Depends on protocols only (:mod:`rater.observability.status`), never on the
stream shell's classes: the shell implements the protocol and feeds the
metrics from its commit path.
"""
