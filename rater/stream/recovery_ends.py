"""Recovery without Faust's one-second pause at start (docs/decisions.md).

A second module once moved each changelog's recovery end back to the last
record a ``read_committed`` reader receives, which saved Faust's two idle
5 s waits on a changelog that ends in a commit marker; it was removed after
a worker resumed from a freeze stopped consuming with it in place (decisions.md D31
("Fenced producers")), so that wait is back until it is done safely.
"""

from __future__ import annotations

from faust.tables import TableManager

from rater.compat.faust import open_table_channels


class PromptTableManager(TableManager):
    """Faust's table manager without the 1 s pause before it starts recovery.

    faust-streaming 0.15.3 (pinned) sleeps a second in ``TableManager.on_start``
    so that tables declared while the app starts are registered first. The
    rater declares its one table in ``build_app``, before the worker starts,
    so the pause only delayed every start, and a restart after a crash by a
    third of the target (decisions.md D46 ("Static group membership")).
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await open_table_channels(self)
            await self.recovery.start()
