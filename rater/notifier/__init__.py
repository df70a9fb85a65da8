"""`rater notify`: the e-mail notifier of SPEC 10, a process of its own.

It reads the `notifications` topic (read_committed, its own consumer group)
and mails each notice with a contact to the tenant admin over SMTP.

Modules, in the order a notice passes them:
- ``notice``: a `notifications` record -> a :class:`Notice`, or why it is unusable (pure);
- ``render``: a notice -> subject, plain text and HTML per language, from ``templates/`` (pure);
- ``compose``: a rendered notice -> an e-mail with its ids as headers (pure);
- ``mailer``: SMTP delivery with aiosmtplib, each outcome classed as accepted,
  refused for good or worth a retry;
- ``sent_log``: the compacted topic of notices the server accepted (no mail twice);
- ``delivery``: the consumer loop: many sends in flight, retries with back-off,
  offsets committed only past finished notices;
- ``metrics`` and ``web``: SPEC 11's mail metrics, ``/health``, ``/ready``, ``/metrics``;
- ``settings`` and ``service``: configuration from the environment and the wiring.

It imports nothing from `rater.stream` but the Kafka settings and topic creation.
"""
