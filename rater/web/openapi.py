"""The OpenAPI 3.0 description of the worker's HTTP API, served at ``/openapi.json``.

Kept as data beside the views it describes; the integration tests run
schemathesis against a live worker with it, so a view that answers
something not described here fails a test.
"""

from __future__ import annotations

from typing import Any

MONEY_OUT = r"^-?[0-9]+\.[0-9]{6}$"  # SPEC 2: the rater writes exactly 6 fractional digits
TIME_OUT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Bad request: the body is not one JSON object, or the tenant id is not one.",
        401: "A valid bearer token is required (only when RATER_API_TOKEN is set).",
        404: "Unknown tenant, or no such path.",
        413: "The body is larger than 64 KiB.",
        422: "The rater would reject this event; `code` is its SPEC 9 code. Nothing produced.",
        503: "Not answerable now (ownership of the tenant's partition is moving, or its state "
        "is being restored); retry. `message` says why.",
    }
    return {str(status): _json(_ref("Error"), text[status]) for status in statuses}


def _write(summary: str, body: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [{"$ref": "#/components/parameters/TenantId"}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(body), "example": example}},
        },
        "responses": {
            "202": _json(_ref("Event"), "Produced to account-events: the event as written."),
            **_errors(400, 401, 404, 413, 422, 503),
        },
    }


def openapi() -> dict[str, Any]:
    money_in = {"type": "string", "example": "50"}
    money_out = {"type": "string", "pattern": MONEY_OUT}
    time_out = {"type": "string", "pattern": TIME_OUT}
    nullable_time = {**time_out, "nullable": True}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "rater worker API",
            "version": "1",
            "description": "Operator interfaces of SPEC section 11, on every worker's "
            "RATER_WEB_PORT. Money is a string with 6 fractional digits, times are UTC "
            "RFC 3339 with Z (SPEC 2).",
        },
        "security": [{"bearer": []}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness: 200 while the process works.",
                    "security": [],
                    "responses": {"200": _json(_ref("Health"), "Alive.")},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Readiness: owns partitions, state restored, consuming.",
                    "security": [],
                    "responses": {
                        "200": _json(_ref("Ready"), "Ready."),
                        "503": _json(_ref("Ready"), "Not ready; `reason` says why."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text format 0.0.4).",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This description.",
                    "responses": {
                        "200": _json({"type": "object"}, "OpenAPI 3.0 description."),
                        **_errors(401),
                    },
                }
            },
            "/tenants/{tenant_id}/balance": {
                "get": {
                    "summary": "A tenant's balance from committed state; any worker answers.",
                    "parameters": [{"$ref": "#/components/parameters/TenantId"}],
                    "responses": {
                        "200": _json(_ref("Balance"), "The tenant's committed state."),
                        **_errors(400, 401, 404, 503),
                    },
                }
            },
            "/tenants/{tenant_id}/purchases": {
                "post": _write(
                    "Buy credits: produces credits_purchased.",
                    "Purchase",
                    {"amount": "50", "event_id": "order-1234"},
                )
            },
            "/tenants/{tenant_id}/auto-recharge": {
                "put": _write(
                    "Set auto-recharge: produces auto_recharge_configured.",
                    "AutoRecharge",
                    {"enabled": True, "trigger_balance": "5", "recharge_amount": "50"},
                )
            },
            "/tenants/{tenant_id}/billing-model": {
                "put": _write(
                    "Switch the billing model: produces billing_model_changed.",
                    "BillingModel",
                    {"billing_model": "nce"},
                )
            },
            "/tenants/{tenant_id}/contact": {
                "put": _write(
                    "Set the notice contact: produces contact_changed.",
                    "Contact",
                    {"contact_email": "billing@example.com", "language": "de"},
                )
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "TenantId": {
                    "name": "tenant_id",
                    "in": "path",
                    "required": True,
                    "description": "1 to 64 characters, no control or whitespace characters.",
                    "schema": {"type": "string", "minLength": 1},
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string", "enum": ["ok"]}},
                },
                "Ready": {
                    "type": "object",
                    "required": ["status", "reason", "partitions"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ready", "not ready"]},
                        "reason": {"type": "string", "nullable": True},
                        "partitions": {"type": "array", "items": {"type": "integer"}},
                    },
                },
                "Balance": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [
                        "tenant_id",
                        "currency",
                        "billing_model",
                        "post_usage_active",
                        "balance",
                        "deficit",
                        "blocked",
                        "lots",
                        "pools",
                        "auto_recharge",
                        "contact_email",
                        "language",
                        "clock",
                    ],
                    "properties": {
                        "tenant_id": {"type": "string"},
                        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                        "billing_model": {"type": "string", "enum": ["prepaid", "nce"]},
                        "post_usage_active": {"type": "boolean"},
                        "balance": money_out,
                        "deficit": money_out,
                        "blocked": {"type": "boolean"},
                        "lots": {
                            "type": "array",
                            "description": "In spending order.",
                            "items": {
                                "type": "object",
                                "required": [
                                    "lot_id",
                                    "amount",
                                    "remaining",
                                    "purchased_at",
                                    "expires_at",
                                ],
                                "properties": {
                                    "lot_id": {"type": "string"},
                                    "amount": money_out,
                                    "remaining": money_out,
                                    "purchased_at": time_out,
                                    "expires_at": time_out,
                                },
                            },
                        },
                        "pools": {
                            "type": "object",
                            "description": "The tenant clock's month, per pool.",
                            "required": ["domestic", "international"],
                            "additionalProperties": _ref("Pool"),
                        },
                        "auto_recharge": {
                            "type": "object",
                            "required": [
                                "enabled",
                                "trigger_balance",
                                "recharge_amount",
                                "pending_request_id",
                                "backoff_until",
                            ],
                            "properties": {
                                "enabled": {"type": "boolean"},
                                "trigger_balance": money_out,
                                "recharge_amount": money_out,
                                "pending_request_id": {"type": "string", "nullable": True},
                                "backoff_until": nullable_time,
                            },
                        },
                        "contact_email": {"type": "string", "nullable": True},
                        "language": {"type": "string", "enum": ["en", "de"]},
                        "clock": time_out,
                    },
                },
                "Pool": {
                    "type": "object",
                    "required": ["minutes", "used_s"],
                    "properties": {
                        "minutes": {"type": "integer", "minimum": 0},
                        "used_s": {"type": "integer", "minimum": 0},
                    },
                },
                "Event": {
                    "type": "object",
                    "description": "The account-events value produced (SPEC 4.2).",
                    "required": ["type", "event_id", "tenant_id", "at"],
                    "properties": {
                        "type": {"type": "string"},
                        "event_id": {"type": "string"},
                        "tenant_id": {"type": "string"},
                        "at": time_out,
                    },
                },
                "Purchase": {
                    "type": "object",
                    "required": ["amount"],
                    "properties": {
                        "amount": money_in,
                        "currency": {"type": "string", "example": "EUR"},
                        "event_id": _event_id(),
                    },
                },
                "AutoRecharge": {
                    "type": "object",
                    "required": ["enabled", "trigger_balance"],
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "trigger_balance": money_in,
                        "recharge_amount": {**money_in, "description": "> 0 when enabled."},
                        "event_id": _event_id(),
                    },
                },
                "BillingModel": {
                    "type": "object",
                    "required": ["billing_model"],
                    "properties": {
                        "billing_model": {"type": "string", "enum": ["prepaid", "nce"]},
                        "event_id": _event_id(),
                    },
                },
                "Contact": {
                    "type": "object",
                    "required": ["contact_email"],
                    "properties": {
                        "contact_email": {"type": "string", "maxLength": 254},
                        "language": {"type": "string", "enum": ["en", "de"]},
                        "event_id": _event_id(),
                    },
                },
            },
        },
    }


def _event_id() -> dict[str, Any]:
    return {
        "type": "string",
        "description": "Idempotency key (1 to 128 characters); made up when left out. "
        "A retry with the same id is harmless: the rater applies an id once.",
    }
