"""The inline CDR decoder agrees with the field-by-field one on every input.

``decode_cdr`` checks a well-formed CDR in one pass and hands anything else to
``decode_cdr_strictly``; a difference would accept a CDR the spec rejects, or
change which rejection code applies.
"""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from rater.core.errors import Rejected
from rater.core.messages import decode_cdr, decode_cdr_strictly

GOOD = {
    "cdr_id": "c-1",
    "tenant_id": "t-1",
    "user_id": "u-1",
    "call_type": "outbound",
    "plan": "domestic",
    "origin_country": "DE",
    "destination": "+4930123456",
    "started_at": "2025-03-04T10:11:12Z",
    "duration_s": 61,
}
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 86_401), st.floats(allow_nan=False),
    st.text(max_size=3), st.sampled_from([
        "", "x" * 65, "x" * 129, "outbound", "conference_dialout", "conference_tollfree_dialin",
        "pay_as_you_go", "domestic_international", "de", "DEU", "D1", "+12345", "+1234567",
        "+1234567890123456", "4930123456", "2025-03-04T10:11:12+01:00", "2025-03-04T10:11:12",
        "t-1", "2025-02-30T00:00:00Z", 86_400, 0, -1, 1.0, "61",
    ]), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=1),  # what JSON encoders write
)


def outcome(decode, key: bytes | None, value: bytes | None) -> tuple:
    try:
        cdr = decode(key, value)
    except Rejected as rejected:
        return ("rejected", rejected.code, rejected.message, rejected.tenant_id)
    return ("cdr", *(getattr(cdr, name) for name in type(cdr).__slots__))


@given(
    st.dictionaries(st.sampled_from(sorted(GOOD)), ODD_VALUES, max_size=4),
    st.sets(st.sampled_from(sorted(GOOD)), max_size=2),
    st.sampled_from([b"t-1", b"t-2", None, b""]),
)
def test_fast_and_strict_decoders_agree(changes: dict, removed: set, key: bytes | None) -> None:
    obj = {name: value for name, value in (GOOD | changes).items() if name not in removed}
    value = orjson.dumps(obj)
    assert outcome(decode_cdr, key, value) == outcome(decode_cdr_strictly, key, value)


@given(st.one_of(st.none(), st.binary(max_size=20), st.just(b"[1]"), st.just(b'"x"')))
def test_non_objects_are_judged_by_the_strict_decoder(value: bytes | None) -> None:
    assert outcome(decode_cdr, b"t-1", value) == outcome(decode_cdr_strictly, b"t-1", value)
