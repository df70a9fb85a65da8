"""Tenant state: everything the rules need to remember about one tenant.

Plain mutable objects with ``__slots__``: the engine changes them in place
while it applies one event, and the shell persists them with
:mod:`rater.core.codec`. Money is in micro-units, times in epoch microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rater.core.clock import DAY

ID_WINDOW = 35 * DAY


class SeenIds(dict[str, int]):
    """Ids already applied (``c:<cdr_id>``, ``e:<event_id>``) with their event time.

    A dict so that the duplicate check on the hot path is one hash lookup.
    """

    def prune(self, horizon: int) -> None:
        """Forget ids whose event time is before ``horizon``: such an event is too late."""
        for key in [key for key, at in self.items() if at < horizon]:
            del self[key]


class StoredSeenIds:
    """Seen ids kept in a store outside the state, with the changes not yet stored.

    A busy tenant applies hundreds of thousands of ids in 35 days; kept in its
    state, they are rewritten with every batch that touches it. The stream
    shell stores each id as its own record instead and gives this object two
    pure lookups into what is committed: ``lookup(key)`` (the time, or None)
    and ``scan()`` (every stored key and time, for pruning). The engine uses
    it exactly like :class:`SeenIds`; ``added`` and ``removed`` are what the
    shell writes with the tenant's state, after which it calls :meth:`stored`.
    """

    __slots__ = ("_lookup", "_scan", "added", "removed")

    def __init__(
        self,
        lookup: Callable[[str], int | None],
        scan: Callable[[], Iterable[tuple[str, int]]],
        added: dict[str, int] | None = None,
    ) -> None:
        self._lookup = lookup
        self._scan = scan
        self.added: dict[str, int] = dict(added) if added else {}
        self.removed: set[str] = set()

    def __contains__(self, key: object) -> bool:
        if key in self.added:
            return True
        if key in self.removed:
            return False
        return self._lookup(key) is not None  # type: ignore[arg-type]

    def __setitem__(self, key: str, at: int) -> None:
        self.added[key] = at
        self.removed.discard(key)

    def prune(self, horizon: int) -> None:
        for key, at in self._scan():
            if at < horizon and key not in self.added:
                self.removed.add(key)
        for key in [key for key, at in self.added.items() if at < horizon]:
            del self.added[key]

    def stored(self) -> None:
        """The changes are in the store now: forget them here."""
        self.added.clear()
        self.removed.clear()


class Lot:
    """One purchase or top-up; spent in order of (expires_at, purchased_at, lot_id)."""

    # rating reads these two for every CDR: first, in the object's first cache line
    __slots__ = ("remaining", "expires_at", "amount", "lot_id", "purchased_at", "warned")  # noqa: RUF023

    def __init__(
        self,
        lot_id: str,
        amount: int,
        remaining: int,
        purchased_at: int,
        expires_at: int,
        warned: bool = False,
    ) -> None:
        self.lot_id = lot_id
        self.amount = amount
        self.remaining = remaining
        self.purchased_at = purchased_at
        self.expires_at = expires_at
        self.warned = warned

    def sort_key(self) -> tuple[int, int, str]:
        return (self.expires_at, self.purchased_at, self.lot_id)


class TenantState:
    """The state of one tenant's account.

    ``seen`` maps ``c:<cdr_id>`` and ``e:<event_id>`` to the event's time, for
    duplicate suppression over the 35-day window; entries that fall out of the
    window are pruned, so state does not grow with a tenant's history. The
    stream shell keeps them in its store instead (:class:`StoredSeenIds`).
    ``pool_used`` and ``pool_minutes`` are keyed ``<pool>:<YYYY-MM>``.
    """

    # Not in alphabetical order: the fields rating reads come first, so that a
    # CDR for a tenant whose state is no longer in the CPU cache waits for two
    # of the object's three cache lines, not all three. The rest serve account
    # events and notices.
    __slots__ = (  # noqa: RUF023
        "tenant_id",
        "currency",
        "clock",
        "seen",
        "lots",
        "pruned_at",
        "deficit",
        "blocked",
        "ar_enabled",
        "pending_request",
        "ar_trigger",
        "pool_minutes",
        "pool_used",
        "billing_model",
        "ar_amount",
        "backoff_until",
        "contact_email",
        "language",
        "state_seq",
        "topup_seq",
    )

    def __init__(self, tenant_id: str, currency: str, billing_model: str, clock: int) -> None:
        self.tenant_id = tenant_id
        self.currency = currency
        self.billing_model = billing_model
        self.contact_email: str | None = None
        self.language = "en"
        self.clock = clock
        self.deficit = 0
        self.lots: list[Lot] = []
        self.ar_enabled = False
        self.ar_trigger = 0
        self.ar_amount = 0
        self.pending_request: int = 0  # n of the pending top-up request, 0 for none
        self.topup_seq = 0
        self.backoff_until: int | None = None
        self.blocked = False
        self.state_seq = 0
        self.pool_minutes: dict[str, int] = {}
        self.pool_used: dict[str, int] = {}
        self.seen: SeenIds | StoredSeenIds = SeenIds()
        self.pruned_at = clock

    @property
    def post_usage_active(self) -> bool:
        """NCE post-usage billing runs only once auto-recharge is off (SPEC 7)."""
        return self.billing_model == "nce" and not self.ar_enabled

    def balance(self) -> int:
        total = -self.deficit
        for lot in self.lots:
            total += lot.remaining
        return total

    def request_id(self, n: int) -> str:
        return f"{self.tenant_id}:topup:{n}"

    def add_lot(self, lot: Lot) -> None:
        self.lots.append(lot)
        self.lots.sort(key=Lot.sort_key)
