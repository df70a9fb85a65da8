"""RATER_INSTANCE_ID and RATER_SESSION_TIMEOUT_S, and the fencing decision.

The decision is taken on what the broker says (a member id of the same
instance id that is not ours); the broker part is proven on the real broker
in tests/faults/test_static_membership.py.
"""

from __future__ import annotations

import pytest

from rater.ops.worker_process import settings_env
from rater.stream.membership import FENCED_EXIT_CODE, StaticMembership
from rater.stream.settings import Settings, SettingsError


def test_instance_id_unset_or_empty_keeps_dynamic_membership() -> None:
    assert Settings.from_env({}).instance_id is None
    assert Settings.from_env({"RATER_INSTANCE_ID": "  "}).instance_id is None
    assert "RATER_INSTANCE_ID" not in settings_env(Settings())


def test_instance_id_is_read_and_passed_to_worker_processes() -> None:
    settings = Settings.from_env({"RATER_INSTANCE_ID": "rater-worker-0"})
    assert settings.instance_id == "rater-worker-0"
    assert settings_env(settings)["RATER_INSTANCE_ID"] == "rater-worker-0"
    assert Settings.from_env(settings_env(settings)) == settings


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
