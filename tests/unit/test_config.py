"""RATER_INSTANCE_ID and RATER_SESSION_TIMEOUT_S, and the fencing decision.

The decision is taken on what the broker says (a member id of the same
instance id that is not ours); the broker part is proven on the real broker
in tests/faults/test_static_membership.py.
"""

from __future__ import annotations

import pytest

from rater.config import Settings, SettingsError
from rater.stream.membership import FENCED_EXIT_CODE, StaticMembership


def test_instance_id_unset_or_empty_keeps_dynamic_membership() -> None:
    assert Settings.from_env({}).instance_id is None
    assert Settings.from_env({"RATER_INSTANCE_ID": "  "}).instance_id is None
    # Passed to a child as empty, so a parent's own RATER_INSTANCE_ID cannot leak into it.
    assert Settings().to_env()["RATER_INSTANCE_ID"] == ""
    assert Settings.from_env({"RATER_INSTANCE_ID": "x"} | Settings().to_env()).instance_id is None


def test_instance_id_is_read_and_passed_to_worker_processes() -> None:
    settings = Settings.from_env({"RATER_INSTANCE_ID": "rater-worker-0"})
    assert settings.instance_id == "rater-worker-0"
    assert settings.to_env()["RATER_INSTANCE_ID"] == "rater-worker-0"
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize("bad", ["worker 1", "wörker", "a/b", "x" * 250])
def test_instance_id_outside_kafkas_rule_is_refused_by_name(bad: str) -> None:
    with pytest.raises(SettingsError, match="RATER_INSTANCE_ID"):
        Settings.from_env({"RATER_INSTANCE_ID": bad})


def test_session_timeout_default_and_bounds() -> None:
    assert Settings.from_env({}).session_timeout_s == 10.0
    assert Settings.from_env({"RATER_SESSION_TIMEOUT_S": "45"}).session_timeout_s == 45.0
    for bad in ("5", "91", "ten"):
        with pytest.raises(SettingsError, match="RATER_SESSION_TIMEOUT_S"):
            Settings.from_env({"RATER_SESSION_TIMEOUT_S": bad})


class Watched(StaticMembership):
    """The decision alone: the group's other holder is given, the exit recorded."""

    def __init__(self, member: list[str], holder: str | None) -> None:
        self.exits: list[int] = []
        super().__init__(
            Settings(instance_id="w-1"), lambda: member[0], exit_process=self.exits.append
        )
        self.holder = holder
        self.asked = 0

    async def other_holder(self) -> str | None:
        self.asked += 1
        return self.holder


async def test_a_member_still_in_the_group_never_asks_the_broker() -> None:
    member = ["w-1-aaa"]
    watched = Watched(member, holder="w-1-bbb")
    await watched.on_revoked()  # the first join: nothing assigned yet
    watched.on_assigned()
    await watched.on_revoked()  # an ordinary rebalance: the member id is kept
    assert watched.asked == 0 and watched.exits == []


async def test_member_id_lost_and_the_id_held_elsewhere_exits_fenced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = ["w-1-aaa"]
    watched = Watched(member, holder="w-1-bbb")
    watched.on_assigned()
    member[0] = ""  # the broker answered UNKNOWN_MEMBER_ID; aiokafka reset it
    await watched.on_revoked()
    assert watched.exits == [FENCED_EXIT_CODE]
    assert "FENCED" in caplog.text and "RATER_INSTANCE_ID=w-1" in caplog.text


async def test_member_id_lost_with_no_other_holder_joins_again() -> None:
    member = ["w-1-aaa"]
    watched = Watched(member, holder=None)  # our own session expired
    watched.on_assigned()
    member[0] = ""
    await watched.on_revoked()
    assert watched.asked == 1 and watched.exits == []


def test_every_setting_survives_the_trip_through_the_environment() -> None:
    from pathlib import Path

    from rater.config import ENV, Security

    settings = Settings(
        bootstrap_servers="k1:9093,k2:9093",
        app_id="billing",
        topic_prefix="eu-",
        partitions=12,
        data_dir=Path("/var/lib/rater"),
        web_port=0,
        web_host="rater-0.rater",
        api_token="s3cret",
        expiry_sweep=False,
        sweep_interval_s=60.0,
        max_poll_records=700,
        rocksdb_memory_mb=256,
        instance_id="rater-0",
        session_timeout_s=30.0,
        security=Security("SASL_PLAINTEXT", "SCRAM-SHA-512", "u", "p", None, None, None),
    )
    assert Settings.from_env(settings.to_env()) == settings
    assert sorted(settings.to_env()) == sorted(var.name for var in ENV)
