"""Where the local broker lives and how it is addressed: one place for paths and the version."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The one pinned broker version. deploy/kafka/pom.xml carries the same default (a unit test
# keeps them equal); the jar resolver always passes this value to Maven explicitly.
KAFKA_VERSION = "4.4.0"

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
DEFAULT_HEAP = "512m"

ENV_DATA_DIR = "RATER_KAFKA_DIR"
ENV_LIB_DIR = "RATER_KAFKA_LIB_DIR"


def project_root() -> Path:
    """The checkout this package runs from, so data and jar folders land inside the project."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file():
        return here
    for candidate in (Path.cwd(), *Path.cwd().parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return Path.cwd()


def pom_path() -> Path:
    """The Maven project that lists the broker's jars."""
    return project_root() / "deploy" / "kafka" / "pom.xml"


def default_data_dir() -> Path:
    """Wipeable broker state: `$RATER_KAFKA_DIR`, else `<project>/.kafka`."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env) if env else project_root() / ".kafka"


def default_lib_dir(version: str = KAFKA_VERSION) -> Path:
    """Jar cache kept outside the data dir so wiping state does not cost a download."""
    env = os.environ.get(ENV_LIB_DIR)
    base = Path(env) if env else project_root() / "deploy" / "kafka" / "lib"
    return base / version


@dataclass(frozen=True)
class BrokerSettings:
    """Everything needed to run one single-node KRaft broker+controller."""

    port: int = DEFAULT_PORT
    controller_port: int | None = None  # None: port + 1
    data_dir: Path | None = None  # None: default_data_dir()
    lib_dir: Path | None = None  # None: default_lib_dir(version)
    version: str = KAFKA_VERSION
    heap: str = DEFAULT_HEAP

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def controller(self) -> int:
        return self.controller_port if self.controller_port is not None else self.port + 1

    @property
    def data(self) -> Path:
        return (self.data_dir or default_data_dir()).resolve()

    @property
    def lib(self) -> Path:
        return (self.lib_dir or default_lib_dir(self.version)).resolve()

    # Files inside the data dir: all of it may be deleted to reset the broker.
    @property
    def kraft_dir(self) -> Path:
        return self.data / "kraft"

    @property
    def logs_dir(self) -> Path:
        return self.data / "logs"

    @property
    def properties_file(self) -> Path:
        return self.data / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.data / "broker.pid"

    @property
    def console_log(self) -> Path:
        return self.data / "broker.out"

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])
