"""Static group membership: the older of two processes with one instance id stops.

With ``RATER_INSTANCE_ID`` set the worker is a static member of the group
(KIP-345, decisions.md D46 ("Static group membership")): a restarted worker joins
with the same id and the broker hands it the assignment of the process it
replaces, without a rebalance. When the replaced process is still alive (a
second copy started by mistake, a pod that was only cut off), the broker
drops its member id. aiokafka 0.14 heartbeats and commits group offsets
without the instance id (Heartbeat v1, OffsetCommit v3), so the broker
answers ``UNKNOWN_MEMBER_ID`` rather than ``FENCED_INSTANCE_ID``, and
aiokafka simply joins again with the same instance id, which drops the newer
process in turn: the two would take the id from each other for ever. Their
transactional producers fence each other, so nothing would be applied twice,
but neither would make progress.

aiokafka calls the rebalance listener (Faust's ``on_partitions_revoked``
signal) before it sends that JoinGroup. Here, a worker that held an
assignment and finds its member id gone asks the broker who is in the group:
a member id of the same instance id that is not its own (the broker names a
static member ``<instance id>-<uuid>``) means another process took the id;
this one logs why and exits at once with :data:`FENCED_EXIT_CODE`, before it
can join again. Exiting without a shutdown is safe: it is what the crash
tests do at every step of a batch, and the newer process's producers have
fenced this one's already or will when they start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from rater.compat.aiokafka import member_id
from rater.compat.faust import aiokafka_consumer
from rater.config import Settings

log = logging.getLogger(__name__)

FENCED_EXIT_CODE = 75  # EX_TEMPFAIL: another process runs with this instance id
DESCRIBE_TIMEOUT_S = 10.0


def coordinator_member_id(app: Any) -> str:
    """aiokafka 0.14's current member id of the app's consumer ("" when it has none)."""
    return member_id(aiokafka_consumer(app.consumer))


class StaticMembership:
    """Watches the worker's member id across rebalances (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        member_id: Callable[[], str],
        exit_process: Callable[[int], Any] = os._exit,
    ) -> None:
        assert settings.instance_id is not None
        self.settings = settings
        self.instance_id: str = settings.instance_id
        self._member_id = member_id
        self._exit = exit_process
        self.last_member_id: str | None = None  # the member id of the last assignment

    def on_assigned(self) -> None:
        member = self._member_id()
        if member and member != self.last_member_id:
            log.info("static member %s of group %s", member, self.settings.app_id)
        self.last_member_id = member or self.last_member_id

    async def on_revoked(self) -> None:
        """Before a rejoin: exit when another process holds this instance id."""
        if self.last_member_id is None or self._member_id():
            return  # never assigned yet, or still a member: an ordinary rebalance
        try:
            holder = await asyncio.wait_for(self.other_holder(), DESCRIBE_TIMEOUT_S)
        except Exception as exc:  # cannot tell: join again, as aiokafka would
            log.warning("member id lost; group not described (%s: %s)", type(exc).__name__, exc)
            return
        if holder is None:
            log.warning("member id %s lost (session expired?); joining again", self.last_member_id)
            return
        log.critical(
            "FENCED: another process joined group %s with RATER_INSTANCE_ID=%s (member %s);"
            " this worker (member %s) stops so that the two do not take the id from each"
            " other. Give every worker its own RATER_INSTANCE_ID.",
            self.settings.app_id,
            self.instance_id,
            holder,
            self.last_member_id,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        self._exit(FENCED_EXIT_CODE)

    async def other_holder(self) -> str | None:
        """The member id another process holds this instance id under, if any."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.bootstrap_servers,
            **self.settings.security.client_kwargs(),
        )
        await admin.start()
        try:
            [response] = await admin.describe_consumer_groups([self.settings.app_id])
        finally:
            await admin.close()
        prefix = self.instance_id + "-"
        for group in response.to_object()["groups"]:
            for member in group["members"]:
                member_id = member["member_id"]
                if member_id.startswith(prefix) and member_id != self.last_member_id:
                    return str(member_id)
        return None


def watch_static_membership(app: Any, settings: Settings) -> StaticMembership | None:
    """Connect a :class:`StaticMembership` to the app's rebalance signals (static mode only)."""
    if settings.instance_id is None:
        return None
    membership = StaticMembership(settings, lambda: coordinator_member_id(app))

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any, **_: Any) -> None:
        membership.on_assigned()

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, revoked: Any, **_: Any) -> None:
        await membership.on_revoked()

    return membership
