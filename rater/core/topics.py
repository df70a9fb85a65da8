"""The topic names of SPEC 2, in one place: every other module imports them from here.

Deployments add a prefix (``RATER_TOPIC_PREFIX``, ``Settings.topic``); these
are the names before it.
"""

from __future__ import annotations

CDRS = "cdrs"
ACCOUNT_EVENTS = "account-events"
TARIFFS = "tariffs"

RATED_CDRS = "rated-cdrs"
LEDGER = "ledger"
TOPUP_REQUESTS = "topup-requests"
OVERAGE = "overage"
NOTIFICATIONS = "notifications"
SERVICE_STATE = "service-state"
RATER_DLQ = "rater-dlq"

# Keyed by tenant id and co-partitioned with the tenants' state (SPEC 11).
TENANT_INPUTS = (CDRS, ACCOUNT_EVENTS)
INPUT_TOPICS = (*TENANT_INPUTS, TARIFFS)  # tariffs: one partition, compacted
OUTPUT_TOPICS = (
    RATED_CDRS,
    LEDGER,
    TOPUP_REQUESTS,
    OVERAGE,
    NOTIFICATIONS,
    SERVICE_STATE,
    RATER_DLQ,
)
TOPICS = (*INPUT_TOPICS, *OUTPUT_TOPICS)
TENANT_KEYED = (*TENANT_INPUTS, *OUTPUT_TOPICS)
