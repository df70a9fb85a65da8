"""Pricing of one call: billed seconds, pool choice and amount (SPEC 5.2 to 5.4).

``engine.apply_cdr`` writes these three functions out inline, to save three
calls per CDR: a change here must be made there too.
"""

from __future__ import annotations

from rater.core.money import div_round_half_up


def billed_seconds(duration_s: int, first_increment_s: int, increment_s: int) -> int:
    if duration_s == 0:
        return 0
    if duration_s <= first_increment_s:
        return first_increment_s
    steps = -(-(duration_s - first_increment_s) // increment_s)  # ceiling division
    return first_increment_s + steps * increment_s


def pool_for(call_type: str, plan: str | None, domestic: bool) -> str | None:
    """Which minute pool an outbound call draws from, or None."""
    if call_type != "outbound" or plan == "pay_as_you_go":
        return None
    if domestic:
        return "domestic"
    return "international" if plan == "domestic_international" else None


def amount_micros(rate_per_minute: int, connection_fee: int, chargeable_s: int) -> int:
    """``rate * chargeable_s / 60`` plus the fee, rounded half-up to micro-units.

    The rate is already in micro-units, so the division by 60 is the only
    inexact step; the fee is exact and is added after rounding.
    """
    if chargeable_s <= 0:
        return 0
    return div_round_half_up(rate_per_minute * chargeable_s, 60) + connection_fee
