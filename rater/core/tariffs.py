"""The tariff index: longest-prefix match with effective periods (SPEC 5.1).

Rows are grouped by ``(call_type, currency)`` and then by prefix. A lookup
probes only the prefix lengths that exist in its group, longest first (at
most 15 dictionary probes), so its cost does not grow with the number of
rows. The few rows that share a prefix (the same prefix over different
periods) are kept in order of precedence, so the first one in effect rates.
"""

from __future__ import annotations

from collections import Counter

from rater.core.messages import TariffRow


def _precedence(row: TariffRow) -> tuple[int, str]:
    """Order of the rows of one prefix: latest start first, then smallest id."""
    return (-row.effective_from, row.tariff_id)


class _Scope:
    """The rows of one call type and currency, by prefix."""

    __slots__ = ("by_prefix", "length_counts", "lengths")

    def __init__(self) -> None:
        # A tuple per prefix, in _precedence order: its rows sit inline, one
        # pointer fewer to follow (and one cache miss fewer) per lookup.
        self.by_prefix: dict[str, tuple[TariffRow, ...]] = {}
        self.length_counts: Counter[int] = Counter()  # prefixes (not rows) of each length
        self.lengths: list[int] = []  # the lengths present, longest first

    def add(self, row: TariffRow) -> None:
        group = self.by_prefix.get(row.prefix)
        if group is None:
            group = ()
            self._count(len(row.prefix), +1)
        # sorted, so the first row in effect is the one that rates
        self.by_prefix[row.prefix] = tuple(sorted((*group, row), key=_precedence))

    def remove(self, row: TariffRow) -> None:
        group = tuple(other for other in self.by_prefix[row.prefix] if other is not row)
        if group:
            self.by_prefix[row.prefix] = group
        else:
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
        # call type, then currency: two probes of tiny dicts by strings whose
        # hashes are cached cost less than building and hashing a tuple key
        self._scopes: dict[str, dict[str, _Scope]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, tariff_id: str) -> TariffRow | None:
        return self._by_id.get(tariff_id)

    def put(self, row: TariffRow) -> None:
        self.delete(row.tariff_id)
        self._by_id[row.tariff_id] = row
        by_currency = self._scopes.setdefault(row.call_type, {})
        scope = by_currency.get(row.currency)
        if scope is None:
            scope = by_currency[row.currency] = _Scope()
        scope.add(row)

    def delete(self, tariff_id: str) -> None:
        old = self._by_id.pop(tariff_id, None)
        if old is None:
            return
        by_currency = self._scopes[old.call_type]
        scope = by_currency[old.currency]
        scope.remove(old)
        if not scope.by_prefix:
            del by_currency[old.currency]
            if not by_currency:
                del self._scopes[old.call_type]

    def lookup(self, call_type: str, currency: str, digits: str, at: int) -> TariffRow | None:
        """The row that rates a call to ``digits`` started at ``at``, or None."""
        by_currency = self._scopes.get(call_type)
        scope = by_currency.get(currency) if by_currency is not None else None
        if scope is None:
            return None
        by_prefix = scope.by_prefix
        longest = len(digits)
        for length in scope.lengths:
            if length <= longest:
                group = by_prefix.get(digits[:length])
                if group is not None:
                    for row in group:  # usually one; else the best comes first
                        if row.effective_from <= at and (
                            row.effective_to is None or at < row.effective_to
                        ):
                            return row
        return None
