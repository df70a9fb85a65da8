"""The tariff index answers like a scan of every row, after any puts and deletes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rater.core.messages import TariffRow
from rater.core.tariffs import TariffIndex


def row(tariff_id: str, call_type: str, prefix: str, start: int, end: int | None) -> TariffRow:
    return TariffRow(tariff_id, call_type, prefix, "DE", "EUR", 1, 0, 60, 60, start, end)


def scan(rows: dict[str, TariffRow], call_type: str, digits: str, at: int) -> TariffRow | None:
    """SPEC 5.1 read literally: longest prefix, then latest start, then smallest id."""
    live = [
        r for r in rows.values()
        if r.call_type == call_type and digits.startswith(r.prefix)
        and r.effective_from <= at and (r.effective_to is None or at < r.effective_to)
    ]
    if not live:
        return None
    return min(live, key=lambda r: (-len(r.prefix), -r.effective_from, r.tariff_id))


rows_st = st.builds(
    row,
    st.sampled_from(["a", "b", "c", "d", "e", "f"]),
    st.sampled_from(["outbound", "conference_dialout"]),
    st.sampled_from(["4", "49", "493", "4930", "44", "1"]),
    st.integers(0, 5),
    st.one_of(st.none(), st.integers(1, 8)),
)
steps = st.lists(st.one_of(rows_st, st.sampled_from(["a", "b", "c", "d", "e", "f"])), max_size=25)


@given(steps, st.sampled_from(["4930123", "4912", "44123", "1555", "333"]), st.integers(0, 9))
def test_lookup_equals_a_full_scan(ops: list, digits: str, at: int) -> None:
    index, rows = TariffIndex(), {}
    for op in ops:
        if isinstance(op, str):
            index.delete(op)
            rows.pop(op, None)
        else:
            index.put(op)
            rows[op.tariff_id] = op
    for call_type in ("outbound", "conference_dialout"):
        assert index.lookup(call_type, "EUR", digits, at) is scan(rows, call_type, digits, at)
    assert len(index) == len(rows)
