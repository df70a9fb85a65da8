"""`rater notify` on the real broker against a real SMTP server on loopback (SPEC 10)."""

from __future__ import annotations

import orjson

from rater.devkit.mail_server import MailServer
from tests.support.notices import batch, encoded, notification
from tests.support.notifier_harness import (
    Notifier,
    check_mail,
    key_of,
    produce,
    reset_offsets,
    wait_committed,
    wait_until,
)

SPEC_11 = ("rater_mails_sent_total", "rater_mails_failed_total",
           "rater_notifications_without_contact_total")  # fmt: skip


async def test_every_notice_with_a_contact_arrives_once(settings, tmp_path) -> None:
    notices = batch(36)  # 6 types x 2 languages x 3, over 7 tenants
    no_contact = [notification("balance_zero", tenant=f"quiet-{i}", contact=None) for i in range(4)]
    unusable = [
        (b"acme", b"{cut off"),
        encoded(notification("balance_zero") | {"type": "account_closed"}),
        encoded(notification("balance_zero", tenant="typo", contact="admin@@typo.example")),
    ]
    aborted = [notification("credits_expired", tenant="ghost", n=n) for n in range(2)]
    records = [encoded(v) for v in notices[:20]] + unusable + [encoded(v) for v in no_contact]
    records += [encoded(v) for v in notices[20:]] + [encoded(v) for v in notices[:3]]  # 3 again
    with MailServer() as server:
        # dynamic membership: a stopped notifier leaves the group, whose offsets are then reset
        notifier = Notifier(settings, server, tmp_path / "notifier.log", instance_id=None)
        notifier.start()
        try:
            await notifier.wait_ready()
            assert notifier.get("/health")[0] == 200
            await produce(settings, [encoded(v) for v in aborted], abort=True)
            await produce(settings, records, per_transaction=7)
            await wait_until(lambda: server.count() >= len(notices), 120, "36 mails", notifier)
            await wait_committed(notifier)

            mails = server.mails()
            assert server.copies() == {key_of(v): 1 for v in notices}
            by_key = {key_of(v): v for v in notices}
            for received in mails:
                message = received.message
                check_mail(received, by_key[f"{message['X-Rater-Tenant-Id']}/"
                                            f"{message['X-Rater-Notification-Id']}"])  # fmt: skip
            assert {m.message["Content-Language"] for m in mails} == {"en", "de"}

            metrics = notifier.metrics()
            sent = {labels: n for (name, labels), n in metrics.items()
                    if name == "rater_mails_sent_total"}  # fmt: skip
            assert sum(sent.values()) == 36 and len(sent) == 6
            assert notifier.metric("rater_notifications_without_contact_total") == 4
            for reason in ("invalid_json", "unknown_type", "bad_address"):
                assert notifier.metric("rater_mails_failed_total", reason=reason) == 1
            assert notifier.metric("rater_mails_already_sent_total") == 3
            assert {name for name, _ in metrics} >= set(SPEC_11)

            # The sent log, not only the offsets, keeps a notice from going out twice:
            # with the group's offsets lost, a new notifier reads everything again.
            notifier.stop()
            await reset_offsets(settings, notifier.config.group_id)
            notifier.start()
            await notifier.wait_ready()
            await wait_committed(notifier)
            assert notifier.metric("rater_mails_already_sent_total") == 39
            assert server.count() == 36
        finally:
            notifier.stop()


async def test_a_permanent_refusal_for_one_address_does_not_stop_the_others(
    settings, tmp_path
) -> None:
    notices = batch(30, tenants=5)
    bad = "admin-tenant-2@example.com"
    refused = [v for v in notices if v["details"]["contact_email"] == bad]
    assert refused
    with MailServer() as server:
        server.refused_addresses.add(bad)
        notifier = Notifier(settings, server, tmp_path / "notifier.log")
        notifier.start()
        try:
            await notifier.wait_ready()
            await produce(settings, [encoded(v) for v in notices])
            await wait_committed(notifier)
            delivered = {key_of(v): 1 for v in notices if v not in refused}
            assert server.copies() == delivered
            assert notifier.metric("rater_mails_failed_total", reason="refused") == len(refused)
            assert notifier.metric("rater_mail_retries_total", reason="temporary") == 0
        finally:
            notifier.stop()


def test_notices_are_json_the_rater_writes() -> None:
    """The records the tests mail are valid `notifications` values (schemas/)."""
    import json
    from pathlib import Path

    from jsonschema import Draft202012Validator

    schema = json.loads(Path("schemas/notifications.json").read_text())
    validator = Draft202012Validator(schema)
    for value in [*batch(12), notification("balance_zero", contact=None)]:
        validator.validate(orjson.loads(orjson.dumps(value)))


async def test_the_workers_own_notices_are_mailed(settings, tmp_path) -> None:
    """End to end: CDRs and account events -> `rater worker` -> `rater notify` -> SMTP."""
    from rater.devkit.inputs import produce_inputs
    from rater.devkit.scenario import TARIFFS, build
    from rater.devkit.worker_process import WorkerProcess

    scenario = build(cdrs_per_tenant=60, seed=5)
    expected = [value for _, value in scenario.expected["notifications"]]
    mailed = [v for v in expected if "contact_email" in v["details"]]
    assert mailed and len(mailed) < len(expected)  # both kinds occur in the scenario
    await produce_inputs(settings, scenario.messages, TARIFFS)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    with MailServer() as server:
        notifier = Notifier(settings, server, tmp_path / "notifier.log")
        worker.start()
        notifier.start()
        try:
            await wait_until(lambda: server.count() >= len(mailed), 180, "the scenario's mails",
                             notifier)  # fmt: skip
            await wait_until(
                lambda: notifier.metric("rater_notifications_without_contact_total")
                == len(expected) - len(mailed),
                60, "notices without contact counted", notifier,
            )  # fmt: skip
        finally:
            worker.stop()
            notifier.stop()
    assert server.copies() == {key_of(v): 1 for v in mailed}
    by_key = {key_of(v): v for v in mailed}
    for received in server.mails():
        message = received.message
        check_mail(received, by_key[f"{message['X-Rater-Tenant-Id']}/"
                                    f"{message['X-Rater-Notification-Id']}"])  # fmt: skip


async def test_a_notice_retried_for_long_holds_up_its_own_partition_only(
    settings, tmp_path
) -> None:
    """One mailbox answers 452 (full) for as long as the test runs.

    Its partition's offset stays at that notice, and at most a window of
    notices behind it is read (one send in flight: a window of 16); every
    other partition's notices are all mailed and committed meanwhile.
    """
    from rater.devkit.localkafka.readback import read_all
    from tests.support.notifier_harness import committed

    stuck = notification("balance_zero", tenant="full", contact="full@mailbox.example")
    behind = [notification("credits_expired", tenant="full", n=n) for n in range(40)]
    others = [v for v in batch(120, tenants=6) if v["tenant_id"] != "full"]
    with MailServer() as server:
        server.deferred_addresses.add("full@mailbox.example")
        notifier = Notifier(settings, server, tmp_path / "notifier.log", concurrency=1)
        notifier.start()
        try:
            await notifier.wait_ready()
            await produce(settings, [encoded(v) for v in [stuck, *behind, *others]])
            records = await read_all(settings.bootstrap_servers, settings.topic("notifications"))
            [stuck_record] = [r for r in records if orjson.loads(r.value) == stuck]
            elsewhere = [r for r in records if r.partition != stuck_record.partition]
            assert len(elsewhere) > 16  # more than one window: the old global window stalled
            ends: dict[int, int] = {}
            for record in elsewhere:
                ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)

            async def others_done() -> bool:
                done = await committed(settings, notifier.config.group_id)
                return all(done.get(p, -1) >= end for p, end in ends.items())

            await wait_until(others_done, 180, "other partitions committed", notifier, poll=0.5)
            done = await committed(settings, notifier.config.group_id)
            assert done.get(stuck_record.partition, 0) <= stuck_record.offset
            copies = server.copies()
            mailed_elsewhere = {key_of(orjson.loads(r.value)) for r in elsewhere}
            assert mailed_elsewhere <= set(copies)
            assert key_of(stuck) not in copies
            assert notifier.metric("rater_mail_retries_total", reason="temporary") >= 1
        finally:
            notifier.stop()
