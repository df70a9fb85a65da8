"""Rejection of an input message with one of the spec's stable codes."""

from __future__ import annotations

# SPEC section 9, plus one code of ours for a fault while handling a message.
INVALID_JSON = "invalid_json"
INVALID_FIELD = "invalid_field"
KEY_MISMATCH = "key_mismatch"
UNKNOWN_ACCOUNT = "unknown_account"
CURRENCY_MISMATCH = "currency_mismatch"
NO_TARIFF = "no_tariff"
PURCHASE_NOT_ALLOWED_FOR_NCE = "purchase_not_allowed_for_nce"
AUTO_RECHARGE_NOT_ALLOWED_FOR_NCE = "auto_recharge_not_allowed_for_nce"
UNKNOWN_TOPUP_REQUEST = "unknown_topup_request"
TOO_LATE = "too_late"
FUTURE_TIME = "future_time"
INTERNAL_ERROR = "internal_error"

CODES = (
    INVALID_JSON,
    INVALID_FIELD,
    KEY_MISMATCH,
    UNKNOWN_ACCOUNT,
    CURRENCY_MISMATCH,
    NO_TARIFF,
    PURCHASE_NOT_ALLOWED_FOR_NCE,
    AUTO_RECHARGE_NOT_ALLOWED_FOR_NCE,
    UNKNOWN_TOPUP_REQUEST,
    TOO_LATE,
    FUTURE_TIME,
    INTERNAL_ERROR,
)


class Rejected(Exception):
    """A message the rater refuses; it goes to ``rater-dlq`` and nothing changes.

    Raised rather than returned because rejection is the rare path and may be
    decided deep inside decoding or applying.
    """

    def __init__(self, code: str, message: str, tenant_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.tenant_id = tenant_id
