"""Worker configuration from the environment, each with a sane default.

Read once at start-up into a frozen object, so every Kafka client of a worker
is built from the same values.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOPICS = (
    "cdrs",
    "account-events",
    "tariffs",
    "rated-cdrs",
    "ledger",
    "topup-requests",
    "overage",
    "notifications",
    "service-state",
    "rater-dlq",
)
TENANT_KEYED = tuple(name for name in TOPICS if name != "tariffs")

# Kafka's rule for a group.instance.id (the same as for topic names): at most 249 of these.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,249}")
# The broker's default group.min.session.timeout.ms is 6 s; Faust refuses a session
# longer than its 90 s request timeout.
SESSION_TIMEOUT_RANGE_S = (6, 90)


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Security:
    """SASL and TLS settings passed to every Kafka client."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka clients."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=self.ssl_cafile)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
            kwargs["ssl_context"] = context
        if self.protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "rater"
    topic_prefix: str = ""
    partitions: int = 8
    data_dir: Path = Path(".data")
    web_port: int = 6066  # 0: no web server
    web_host: str | None = None  # how other workers reach this one (None: the host name)
    api_token: str | None = field(default=None, repr=False)  # SPEC 11 bearer token
    expiry_sweep: bool = True
    sweep_interval_s: float = 3600.0
    max_poll_records: int = 5000
    rocksdb_memory_mb: int = 64  # RocksDB's one cap: cache, index, filters and memtables
    # Static group membership (KIP-345): None keeps dynamic membership (decisions.md,
    # "Static group membership").
    instance_id: str | None = None
    session_timeout_s: float = 10.0  # how long the group waits for a silent member
    security: Security = field(default_factory=Security)

    def topic(self, name: str) -> str:
        """The real topic name of one of the spec's topics."""
        return self.topic_prefix + name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            app_id=env.get("RATER_APP_ID", "rater"),
            topic_prefix=env.get("RATER_TOPIC_PREFIX", ""),
            partitions=_positive_int(env, "RATER_PARTITIONS", 8),
            data_dir=Path(env.get("RATER_DATA_DIR", ".data")),
            web_port=_port(env, "RATER_WEB_PORT", 6066),
            web_host=env.get("RATER_WEB_HOST") or None,
            api_token=env.get("RATER_API_TOKEN") or None,
            expiry_sweep=_switch(env, "RATER_EXPIRY_SWEEP", True),
            sweep_interval_s=float(_positive_int(env, "RATER_SWEEP_INTERVAL_S", 3600)),
            max_poll_records=_positive_int(env, "RATER_MAX_POLL_RECORDS", 5000),
            rocksdb_memory_mb=_positive_int(env, "RATER_ROCKSDB_MEMORY_MB", 64),
            instance_id=_instance_id(env, "RATER_INSTANCE_ID"),
            session_timeout_s=float(_session_timeout(env, "RATER_SESSION_TIMEOUT_S", 10)),
            security=Security(
                protocol=env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
                sasl_mechanism=env.get("KAFKA_SASL_MECHANISM"),
                sasl_username=env.get("KAFKA_SASL_USERNAME"),
                sasl_password=env.get("KAFKA_SASL_PASSWORD"),
                ssl_cafile=env.get("KAFKA_SSL_CAFILE"),
                ssl_certfile=env.get("KAFKA_SSL_CERTFILE"),
                ssl_keyfile=env.get("KAFKA_SSL_KEYFILE"),
            ),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r}: expected a number of at least 1")
    return value


def _instance_id(env: Mapping[str, str], name: str) -> str | None:
    """A consumer group.instance.id, or None (unset or empty: dynamic membership)."""
    raw = env.get(name, "").strip()
    if raw == "":
        return None
    if not _INSTANCE_ID.fullmatch(raw):
        raise SettingsError(
            f"{name}={raw!r}: expected at most 249 letters, digits, '.', '_' or '-'"
        )
    return raw


def _session_timeout(env: Mapping[str, str], name: str, default: int) -> int:
    low, high = SESSION_TIMEOUT_RANGE_S
    value = _positive_int(env, name, default)
    if not low <= value <= high:
        raise SettingsError(f"{name}={value}: expected {low} to {high} seconds")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    """A TCP port; 0 turns the service off."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) > 65535:
        raise SettingsError(f"{name}={raw!r}: expected a port number (0 for off)")
    return int(raw)


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name}={raw!r}: expected on or off")
