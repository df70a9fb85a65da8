"""The local broker's pure parts: config text, version pin, tool checks and their messages."""

from __future__ import annotations

import base64
import os
import socket
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from rater.cli import main
from rater.devkit.localkafka import config
from rater.devkit.localkafka.broker import Broker
from rater.devkit.localkafka.jars import MARKER, ensure_jars, mvn_command
from rater.devkit.localkafka.settings import (
    KAFKA_VERSION,
    BrokerSettings,
    default_data_dir,
    pom_path,
)
from rater.devkit.localkafka.tools import LocalKafkaError, java_major, require_java, require_mvn


def _props(text: str) -> dict[str, str]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _script(folder: Path, name: str, body: str) -> Path:
    """A stand-in executable, to simulate broken or old tools on PATH."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_server_properties_has_single_node_transaction_settings(tmp_path: Path) -> None:
    settings = BrokerSettings(port=19999, data_dir=tmp_path)

    props = _props(config.server_properties(settings))

    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:20000"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19999"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:20000"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kraft")


def test_explicit_controller_port_is_used(tmp_path: Path) -> None:
    settings = BrokerSettings(port=19999, controller_port=30001, data_dir=tmp_path)

    props = _props(config.server_properties(settings))

    assert props["controller.quorum.voters"] == "1@127.0.0.1:30001"


@pytest.mark.parametrize(
    ("version", "name", "flag"),
    [
        ("4.4.0", "log4j2.properties", "-Dlog4j2.configurationFile="),
        ("3.9.1", "log4j.properties", "-Dlog4j.configuration=file:"),
    ],
)
def test_logs_go_to_a_file_in_the_data_dir(
    tmp_path: Path, version: str, name: str, flag: str
) -> None:
    settings = BrokerSettings(data_dir=tmp_path, version=version)

    got_name, text, jvm_flag = config.logging_config(settings)

    assert got_name == name
    assert str(tmp_path.resolve() / "logs" / "server.log") in text
    assert jvm_flag == flag + str(tmp_path.resolve() / name)


def test_broker_command_runs_kafka_with_modest_heap(tmp_path: Path) -> None:
    settings = BrokerSettings(data_dir=tmp_path, lib_dir=tmp_path / "lib")

    cmd = config.broker_command("/usr/bin/java", settings)

    assert cmd[0] == "/usr/bin/java"
    assert "-Xmx512m" in cmd
    assert cmd[cmd.index("-cp") + 1] == str(tmp_path.resolve() / "lib" / "*")
    assert cmd[-2:] == ["kafka.Kafka", str(settings.properties_file)]


def test_cluster_id_is_a_kafka_uuid() -> None:
    ids = {config.new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_pom_default_matches_the_pinned_version() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}

    root = ET.parse(pom_path()).getroot()

    assert root.findtext("m:properties/m:kafka.version", namespaces=ns) == KAFKA_VERSION


def test_mvn_command_adds_reload4j_only_for_kafka_3(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    kafka4 = mvn_command("mvn", pom, "4.4.0", 4, tmp_path)
    kafka3 = mvn_command("mvn", pom, "3.9.1", 3, tmp_path)

    assert "-Dkafka.version=4.4.0" in kafka4
    assert f"-DoutputDirectory={tmp_path}" in kafka4
    assert "-Dkafka.logging=reload4j" not in kafka4
    assert "-Dkafka.logging=reload4j" in kafka3


def test_data_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATER_KAFKA_DIR", "/somewhere/else")

    assert default_data_dir() == Path("/somewhere/else")


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("garbage", None),
    ],
)
def test_java_major(output: str, major: int | None) -> None:
    assert java_major(output) == major


def test_missing_java_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError) as err:
        require_java(path=str(tmp_path))

    assert str(err.value) == (
        "java not found on PATH: install a Java 17+ runtime "
        "(apt-get install openjdk-17-jre-headless)"
    )


def test_broken_java_is_reported(tmp_path: Path) -> None:
    _script(tmp_path, "java", "echo 'Error: could not open jvm.cfg' >&2; exit 1")

    with pytest.raises(LocalKafkaError, match=r"java at .* is broken \(Error: could not open"):
        require_java(path=str(tmp_path))


def test_old_java_is_reported(tmp_path: Path) -> None:
    _script(tmp_path, "java", "echo 'openjdk version \"11.0.2\" 2019-01-15' >&2")

    with pytest.raises(LocalKafkaError, match="is version 11, Kafka needs 17"):
        require_java(path=str(tmp_path))


def test_missing_mvn_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match=r"^mvn not found on PATH: install Maven"):
        require_mvn(path=str(tmp_path))


def test_broken_mvn_is_reported(tmp_path: Path) -> None:
    _script(tmp_path, "mvn", "echo 'JAVA_HOME is not defined correctly' >&2; exit 1")

    with pytest.raises(LocalKafkaError, match=r"mvn at .* is broken \(JAVA_HOME"):
        require_mvn(path=str(tmp_path))


def test_empty_jar_cache_needs_mvn(tmp_path: Path) -> None:
    settings = BrokerSettings(lib_dir=tmp_path / "lib")

    with pytest.raises(LocalKafkaError, match="mvn not found"):
        ensure_jars(settings, path=str(tmp_path / "empty-bin"))


def test_failing_mvn_download_reports_maven_error_and_leaves_no_cache(tmp_path: Path) -> None:
    body = (
        '[ "$1" = "-v" ] && exit 0\n'
        "printf '\\033[0m[ERROR] Could not resolve org.apache.kafka:kafka_2.13\\n[ERROR] \\n'\n"
        "exit 1"
    )
    _script(tmp_path / "bin", "mvn", body)
    lib = tmp_path / "lib" / KAFKA_VERSION

    with pytest.raises(LocalKafkaError) as err:
        ensure_jars(BrokerSettings(lib_dir=lib), path=str(tmp_path / "bin"))

    assert str(err.value) == (
        f"mvn could not fetch the Kafka {KAFKA_VERSION} jars (Could not resolve "
        f"org.apache.kafka:kafka_2.13); see {tmp_path / 'lib' / f'mvn-{KAFKA_VERSION}.log'}"
    )
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == [f"mvn-{KAFKA_VERSION}.log"]


def test_cached_jars_need_no_mvn(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / MARKER).write_text(KAFKA_VERSION + "\n")

    assert ensure_jars(BrokerSettings(lib_dir=lib), path=str(tmp_path / "empty-bin")) == lib


def test_cli_start_without_java_is_one_line_error(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    args = ["kafka", "start", "--port", str(_free_port()), "--data-dir", str(tmp_path / "d")]

    result = CliRunner().invoke(main, args, env={"PATH": str(empty_bin)})

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: java not found on PATH: install a Java 17+ runtime "
        "(apt-get install openjdk-17-jre-headless)\n"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_status_without_broker_exits_non_zero(tmp_path: Path) -> None:
    args = ["kafka", "status", "--port", str(_free_port()), "--data-dir", str(tmp_path)]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 1
    assert "not running" in result.stdout


def test_stop_ignores_a_pid_file_that_is_not_our_broker(tmp_path: Path) -> None:
    broker = Broker(BrokerSettings(port=_free_port(), data_dir=tmp_path))
    broker.settings.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not kafka.Kafka

    assert broker.stop(timeout=1.0) is None
    assert not broker.settings.pid_file.exists()


def test_wipe_refuses_a_folder_that_is_not_broker_data(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    broker = Broker(BrokerSettings(port=_free_port(), data_dir=tmp_path))

    with pytest.raises(LocalKafkaError, match="does not look like a Kafka data dir"):
        broker.wipe()
    assert (tmp_path / "thesis.tex").exists()


def test_wipe_deletes_broker_data(tmp_path: Path) -> None:
    data = tmp_path / "kafka"
    (data / "kraft").mkdir(parents=True)
    (data / "server.properties").write_text("node.id=1\n")

    Broker(BrokerSettings(port=_free_port(), data_dir=data)).wipe()

    assert not data.exists()
