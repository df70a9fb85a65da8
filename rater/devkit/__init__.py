"""The embedded defaults of a newcomer's first command: a local broker and the demo.

``localkafka`` provisions and runs a single-node Apache Kafka from Maven
artifacts; ``demo`` and its ``demo_*`` modules, ``payment_side`` and
``mail_server`` make ``rater demo``; ``scenario``, ``inputs``,
``partitioners`` and ``worker_process`` are the sample scenario and the
process handling the demo, the tests and ``load`` share. The runtime
(``core``, ``stream``, ``web``, ``notifier``, ``dlq``, ``observability``)
never imports this package (tests/unit/test_layout.py); it may import them.
"""
