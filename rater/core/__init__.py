"""The billing rules (SPEC 5-9) as pure Python: the functional core.

Entry point: :class:`rater.core.processor.Processor`, which turns one raw
input record (bytes from ``cdrs``, ``account-events`` or ``tariffs``) and a
tenant's state into the output records of SPEC 8. No I/O, no clock (the
caller passes the time), no Kafka, no Faust: everything here is unit- and
property-tested, and must not import ``rater.stream``, ``rater.web`` or any
I/O library.
"""
