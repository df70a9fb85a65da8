"""A seek to committed offsets that meets a revoked partition waits for the rebalance.

When a rebalance begins, the batch consumer rewinds and calls Faust's
``perform_seek``, which asks aiokafka to seek every partition it holds to
its committed offset. If the partition is revoked between aiokafka's
snapshot of the assignment and its seek, aiokafka 0.14 raises
``IllegalStateError`` ("No current assignment for partition"), and the
exception ended Faust's fetcher and the worker (seen in the scale-out test,
tests/faults/test_scaling.py, when a third worker joined). Nothing is lost
by leaving the seek: the rebalance under way ends with Faust's recovery
seeking every partition then assigned to its committed offset, and the
applied offsets kept with the state skip whatever is fetched twice
(decisions.md D46 ("Static group membership")).
"""

from __future__ import annotations

import logging

from aiokafka.errors import IllegalStateError

log = logging.getLogger(__name__)


class RevokedSeekGuard:
    """Mixin for the app's consumer class, before Faust's consumer in the bases."""

    async def perform_seek(self) -> None:
        try:
            await super().perform_seek()  # type: ignore[misc]
        except IllegalStateError as exc:
            log.info("seek to committed offsets left to the rebalance under way (%s)", exc)
