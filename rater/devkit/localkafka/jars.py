"""The broker's jars: fetched once with Maven into a cache that survives data wipes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from rater.devkit.localkafka.settings import BrokerSettings, pom_path
from rater.devkit.localkafka.tools import LocalKafkaError, require_mvn

MARKER = ".complete"


def jars_cached(lib: Path, version: str) -> bool:
    """The marker is written last, so a half-finished download never counts as a cache hit."""
    marker = lib / MARKER
    return marker.is_file() and marker.read_text().strip() == version


def mvn_command(mvn: str, pom: Path, version: str, major: int, out_dir: Path) -> list[str]:
    """Maven resolves kafka_2.13 and its runtime dependencies plus an slf4j binding."""
    cmd = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-Dkafka.version={version}",
        f"-DoutputDirectory={out_dir}",
    ]
    if major < 4:
        cmd.append("-Dkafka.logging=reload4j")
    return cmd


def ensure_jars(settings: BrokerSettings, path: str | None = None) -> Path:
    """Return the jar folder, downloading into a temp dir and renaming so races are harmless."""
    lib, version = settings.lib, settings.version
    if jars_cached(lib, version):
        return lib
    pom = pom_path()
    if not pom.is_file():
        raise LocalKafkaError(f"{pom} not found: run from a checkout of the rater project")
    mvn = require_mvn(path)
    lib.parent.mkdir(parents=True, exist_ok=True)
    tmp = lib.parent / f".{lib.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log = lib.parent / f"mvn-{version}.log"
    with log.open("w") as out:
        proc = subprocess.run(
            mvn_command(mvn, pom, version, settings.major, tmp),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if proc.returncode != 0 or not (tmp / f"kafka_2.13-{version}.jar").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise LocalKafkaError(
            f"mvn could not fetch the Kafka {version} jars ({_last_error(log)}); see {log}"
        )
    (tmp / MARKER).write_text(version + "\n")
    if jars_cached(lib, version):  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
        return lib
    shutil.rmtree(lib, ignore_errors=True)
    try:
        tmp.rename(lib)
    except OSError:
        if not jars_cached(lib, version):  # not a lost race: a real file system problem
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return lib


def _last_error(log: Path) -> str:
    """Maven's first real [ERROR] line: the one that says what could not be resolved."""
    text = _ANSI.sub("", log.read_text(errors="replace"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("[ERROR]") and ln != "[ERROR]"]
    picked = errors[0] if errors else (lines[-1] if lines else "no output")
    return picked.removeprefix("[ERROR] ")[:300]


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
