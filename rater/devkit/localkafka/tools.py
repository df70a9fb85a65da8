"""Finding `java` and `mvn`, with one-line errors that say how to get them."""

from __future__ import annotations

import re
import shutil
import subprocess

MIN_JAVA = 17

JAVA_HINT = "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
MVN_HINT = "install Maven 3.8+ (apt-get install maven); it is needed once to fetch the Kafka jars"


class LocalKafkaError(RuntimeError):
    """A problem the user can fix; the CLI shows it as one line, without a traceback."""


def java_major(version_output: str) -> int | None:
    """Major version from `java -version` output: '17.0.15' -> 17, '1.8.0_392' -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def require_java(path: str | None = None) -> str:
    """Path of a working Java 17+ (the minimum for Kafka 4 brokers)."""
    java = shutil.which("java", path=path)
    if java is None:
        raise LocalKafkaError(f"java not found on PATH: {JAVA_HINT}")
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise LocalKafkaError(f"java at {java} does not run ({err}): {JAVA_HINT}") from None
    output = (proc.stderr or "") + (proc.stdout or "")
    major = java_major(output)
    if proc.returncode != 0 or major is None:
        first = output.strip().splitlines()[:1] or [f"exit status {proc.returncode}"]
        raise LocalKafkaError(f"java at {java} is broken ({first[0]}): {JAVA_HINT}")
    if major < MIN_JAVA:
        raise LocalKafkaError(f"java at {java} is version {major}, Kafka needs 17+: {JAVA_HINT}")
    return java


def require_mvn(path: str | None = None) -> str:
    """Path of a working Maven, only asked for when the jar cache is empty."""
    mvn = shutil.which("mvn", path=path)
    if mvn is None:
        raise LocalKafkaError(f"mvn not found on PATH: {MVN_HINT}")
    try:
        proc = subprocess.run([mvn, "-v"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise LocalKafkaError(f"mvn at {mvn} does not run ({err}): {MVN_HINT}") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        first = lines[0] if lines else f"exit status {proc.returncode}"
        raise LocalKafkaError(f"mvn at {mvn} is broken ({first}): {MVN_HINT}")
    return mvn
