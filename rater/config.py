"""Configuration from the environment, each value with a sane default: one table, :data:`ENV`.

Read once at start-up into a frozen object, so every Kafka client of a worker
is built from the same values.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        """The settings the environment names; every variable is in :data:`ENV`."""
        env = os.environ if env is None else env
        plain: dict[str, Any] = {}
        security: dict[str, Any] = {}
        for var in ENV:
            group, _, name = var.field.rpartition(".")
            (security if group == "security" else plain)[name] = var.read(env)
        return cls(**plain, security=Security(**security))

    def to_env(self) -> dict[str, str]:
        """The environment that gives these settings back through :meth:`from_env`.

        What a parent process hands a worker it starts (the demo, tests, benchmarks).
        """
        # None is written as "" (read back as None), so that a value the parent's own
        # environment happens to hold never leaks into the child's settings.
        return {
            var.name: "" if (value := _attribute(self, var.field)) is None else var.write(value)
            for var in ENV
        }


def _attribute(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


@dataclass(frozen=True)
class Var:
    """One environment variable: its name, the settings field it fills, and how."""

    name: str
    field: str
    read_raw: Callable[[Mapping[str, str], str], Any]
    write: Callable[[Any], str] = str
    doc: str = ""

    def read(self, env: Mapping[str, str]) -> Any:
        return self.read_raw(env, self.name)


def _text(default: str) -> Callable[[Mapping[str, str], str], str]:
    return lambda env, name: env.get(name, default)


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None


def _upper(default: str) -> Callable[[Mapping[str, str], str], str]:
    return lambda env, name: env.get(name, default).upper()


def _int(default: int) -> Callable[[Mapping[str, str], str], int]:
    return lambda env, name: positive_int(env, name, default)


def _seconds(default: int) -> Callable[[Mapping[str, str], str], float]:
    return lambda env, name: float(positive_int(env, name, default))


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _whole(value: float) -> str:
    return str(int(value))


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
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
    value = positive_int(env, name, default)
    if not low <= value <= high:
        raise SettingsError(f"{name}={value}: expected {low} to {high} seconds")
    return value


def port(env: Mapping[str, str], name: str, default: int) -> int:
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


# Every variable the worker reads (README "Configuration" lists the same).
ENV: tuple[Var, ...] = (
    Var("KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers", _text("127.0.0.1:9092")),
    Var("RATER_APP_ID", "app_id", _text("rater")),
    Var("RATER_TOPIC_PREFIX", "topic_prefix", _text("")),
    Var("RATER_PARTITIONS", "partitions", _int(8)),
    Var("RATER_DATA_DIR", "data_dir", lambda env, name: Path(env.get(name, ".data"))),
    Var("RATER_WEB_PORT", "web_port", lambda env, name: port(env, name, 6066)),
    Var("RATER_WEB_HOST", "web_host", _optional),
    Var("RATER_API_TOKEN", "api_token", _optional),
    Var("RATER_EXPIRY_SWEEP", "expiry_sweep", lambda env, name: _switch(env, name, True), _on_off),
    Var("RATER_SWEEP_INTERVAL_S", "sweep_interval_s", _seconds(3600), _whole),
    Var("RATER_MAX_POLL_RECORDS", "max_poll_records", _int(5000)),
    Var("RATER_ROCKSDB_MEMORY_MB", "rocksdb_memory_mb", _int(64)),
    Var("RATER_INSTANCE_ID", "instance_id", _instance_id),
    Var(
        "RATER_SESSION_TIMEOUT_S",
        "session_timeout_s",
        lambda env, name: float(_session_timeout(env, name, 10)),
        _whole,
    ),
    Var("KAFKA_SECURITY_PROTOCOL", "security.protocol", _upper("PLAINTEXT")),
    Var("KAFKA_SASL_MECHANISM", "security.sasl_mechanism", _optional),
    Var("KAFKA_SASL_USERNAME", "security.sasl_username", _optional),
    Var("KAFKA_SASL_PASSWORD", "security.sasl_password", _optional),
    Var("KAFKA_SSL_CAFILE", "security.ssl_cafile", _optional),
    Var("KAFKA_SSL_CERTFILE", "security.ssl_certfile", _optional),
    Var("KAFKA_SSL_KEYFILE", "security.ssl_keyfile", _optional),
)
