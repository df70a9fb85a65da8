"""Picking the latency phase's CDRs out of rated records without decoding them."""

from __future__ import annotations

import orjson

from load.bench.latency_reader import index_of


def rated(cdr_id: str) -> bytes:
    return orjson.dumps({"tenant_id": "t-1", "cdr_id": cdr_id, "cost": "0.012000"})


def test_the_index_follows_the_prefix_and_a_dash() -> None:
    assert index_of(rated("lat0-0"), b"lat0") == 0
    assert index_of(rated("lat0-123456"), b"lat0") == 123456


def test_records_of_other_runs_or_the_backlog_are_not_ours() -> None:
    assert index_of(rated("c-17"), b"lat0") is None
    assert index_of(rated("lat1-17"), b"lat0") is None
    assert index_of(rated("lat01-17"), b"lat0") is None


def test_a_record_without_a_cdr_id_is_not_ours() -> None:
    assert index_of(orjson.dumps({"tenant_id": "t-1"}), b"lat0") is None
