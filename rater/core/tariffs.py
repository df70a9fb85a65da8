"""The tariff index: longest-prefix match with effective periods (SPEC 5.1).

Rows are grouped by ``(call_type, currency)`` and then by prefix. A lookup
probes only the prefix lengths that exist in its group, longest first (at
most 15 dictionary probes), so its cost does not grow with the number of
rows. The few rows that share a prefix (the same prefix over different
periods) are scanned.
"""

from __future__ import annotations

from collections import Counter

from rater.core.messages import TariffRow


def _better(candidate: TariffRow, best: TariffRow | None) -> bool:
    """Tie-break between rows of one prefix: latest start, then smallest id."""
    if best is None:
        return True
    if candidate.effective_from != best.effective_from:
        return candidate.effective_from > best.effective_from
    return candidate.tariff_id < best.tariff_id


class _Scope:
    """The rows of one call type and currency, by prefix."""

    __slots__ = ("by_prefix", "length_counts", "lengths")

    def __init__(self) -> None:
        self.by_prefix: dict[str, list[TariffRow]] = {}
        self.length_counts: Counter[int] = Counter()  # prefixes (not rows) of each length
        self.lengths: list[int] = []  # the lengths present, longest first

    def add(self, row: TariffRow) -> None:
        group = self.by_prefix.get(row.prefix)
        if group is None:
            group = self.by_prefix[row.prefix] = []
            self._count(len(row.prefix), +1)
        group.append(row)

    def remove(self, row: TariffRow) -> None:
        group = self.by_prefix[row.prefix]
        group.remove(row)
        if not group:
            del self.by_prefix[row.prefix]
            self._count(len(row.prefix), -1)

    def _count(self, length: int, change: int) -> None:
        self.length_counts[length] += change
        if self.length_counts[length] <= 0:
            del self.length_counts[length]
        self.lengths = sorted(self.length_counts, reverse=True)


class TariffIndex:
    """Every tariff row a worker knows, indexed for rating.

    Adding a row with a known ``tariff_id`` replaces it; a tombstone deletes it.
    A bad row never reaches the index: decoding rejects it first.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, TariffRow] = {}
        self._scopes: dict[tuple[str, str], _Scope] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, tariff_id: str) -> TariffRow | None:
        return self._by_id.get(tariff_id)

    def put(self, row: TariffRow) -> None:
        self.delete(row.tariff_id)
        self._by_id[row.tariff_id] = row
        scope = self._scopes.get((row.call_type, row.currency))
        if scope is None:
            scope = self._scopes[(row.call_type, row.currency)] = _Scope()
        scope.add(row)

    def delete(self, tariff_id: str) -> None:
        old = self._by_id.pop(tariff_id, None)
        if old is None:
            return
        key = (old.call_type, old.currency)
        scope = self._scopes[key]
        scope.remove(old)
        if not scope.by_prefix:
            del self._scopes[key]

    def lookup(self, call_type: str, currency: str, digits: str, at: int) -> TariffRow | None:
        """The row that rates a call to ``digits`` started at ``at``, or None."""
        scope = self._scopes.get((call_type, currency))
        if scope is None:
            return None
        by_prefix = scope.by_prefix
        longest = len(digits)
        for length in scope.lengths:
            if length > longest:
                continue
            group = by_prefix.get(digits[:length])
            if group is None:
                continue
            if len(group) == 1:  # the usual case: one row per prefix
                row = group[0]
                if row.effective_from <= at and (row.effective_to is None or at < row.effective_to):
                    return row
                continue
            best = None
            for row in group:
                if (
                    row.effective_from <= at
                    and (row.effective_to is None or at < row.effective_to)
                    and _better(row, best)
                ):
                    best = row
            if best is not None:
                return best
        return None
