"""The tariff index: longest-prefix match with effective periods (SPEC 5.1).

Rows are grouped by ``(call_type, currency, prefix)``. A lookup probes the
destination's prefixes from the longest (at most 15 dictionary probes), so
its cost does not grow with the number of rows. The few rows that share a
group (the same prefix over different periods) are scanned.
"""

from __future__ import annotations

from rater.core.messages import TariffRow


def _better(candidate: TariffRow, best: TariffRow | None) -> bool:
    """Tie-break between rows of one prefix: latest start, then smallest id."""
    if best is None:
        return True
    if candidate.effective_from != best.effective_from:
        return candidate.effective_from > best.effective_from
    return candidate.tariff_id < best.tariff_id


class TariffIndex:
    """Every tariff row a worker knows, indexed for rating.

    Adding a row with a known ``tariff_id`` replaces it; a tombstone deletes it.
    A bad row never reaches the index: decoding rejects it first.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, TariffRow] = {}
        self._groups: dict[tuple[str, str, str], list[TariffRow]] = {}
        self._longest = 0  # no probe needs to be longer than the longest prefix ever seen

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, tariff_id: str) -> TariffRow | None:
        return self._by_id.get(tariff_id)

    def put(self, row: TariffRow) -> None:
        self.delete(row.tariff_id)
        self._by_id[row.tariff_id] = row
        key = (row.call_type, row.currency, row.prefix)
        self._groups.setdefault(key, []).append(row)
        self._longest = max(self._longest, len(row.prefix))

    def delete(self, tariff_id: str) -> None:
        old = self._by_id.pop(tariff_id, None)
        if old is None:
            return
        key = (old.call_type, old.currency, old.prefix)
        group = self._groups[key]
        group.remove(old)
        if not group:
            del self._groups[key]

    def lookup(self, call_type: str, currency: str, digits: str, at: int) -> TariffRow | None:
        """The row that rates a call to ``digits`` started at ``at``, or None."""
        groups = self._groups
        for length in range(min(len(digits), self._longest), 0, -1):
            group = groups.get((call_type, currency, digits[:length]))
            if group is None:
                continue
            best = None
            for row in group:
                live = row.effective_from <= at and (
                    row.effective_to is None or at < row.effective_to
                )
                if live and _better(row, best):
                    best = row
            if best is not None:
                return best
        return None
