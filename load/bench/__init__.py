"""``python -m load bench``: one rater worker against a bare aiokafka loop and plain Faust.

``run`` is the harness and its command; ``faust_agent`` the plain Faust
reference and ``latency_reader`` the end-to-end latency probe, each run as a
process of its own; ``cpu_placement`` pins processes for ``--isolate-worker``.
"""
