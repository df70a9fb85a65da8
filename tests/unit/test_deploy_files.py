"""The deployment files, checked offline: no Docker engine or cluster runs here.

Compose: the file loads, the services exist and depend on each other as the
rater needs, and every environment variable set on a rater container is one
the rater reads. Kubernetes: every manifest is valid against the API schemas
(``kubernetes-validate``, strict: no unknown fields), and the pieces fit:
the StatefulSet's headless Service, the instance id from the pod name, the
probes, the ConfigMap and Secret keys the rater reads (decisions.md D49
("Deployment files are validated, not run")).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
K8S = ROOT / "deploy" / "k8s"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rater.json"
KUBERNETES_VERSION = "1.31.0"  # the oldest minor release the manifests must apply on

SPEC_METRICS = {
    "rater_input_records_total",
    "rater_cdrs_rated_total",
    "rater_dlq_records_total",
    "rater_output_records_total",
    "rater_batch_seconds",
    "rater_consumer_lag_records",
    "rater_blocked_tenants",
    "rater_owned_partitions",
    "rater_mails_sent_total",
    "rater_mails_failed_total",
    "rater_notifications_without_contact_total",
}


def names_the_rater_reads() -> set[str]:
    """Every RATER_* and KAFKA_* string literal in the package's source."""
    found: set[str] = set()
    for path in (ROOT / "rater").rglob("*.py"):
        found.update(re.findall(r"[\"']((?:RATER|KAFKA)_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


def rater_commands() -> set[str]:
    from rater.cli import main

    return set(main.commands)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def rater_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if str(service.get("image", "")).startswith("rater:")
    }


# ------------------------------------------------------------------------ compose


def test_compose_has_the_services_the_issue_names() -> None:
    services = compose()["services"]
    assert {"kafka", "topics", "worker-1", "worker-2", "notifier", "prometheus", "grafana"} <= (
        services.keys()
    )
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["topics"]["command"] == ["topics", "create"]
    for worker in ("worker-1", "worker-2"):
        assert services[worker]["command"] == ["worker"]
        wait = services[worker]["depends_on"]["topics"]["condition"]
        assert wait == "service_completed_successfully"
    assert services["notifier"]["command"] == ["notify"]


def test_compose_kafka_is_kraft_with_single_node_transactions() -> None:
    env = compose()["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[name] == "1", name


def test_compose_sets_only_variables_the_rater_reads() -> None:
    known = names_the_rater_reads()
    for name, service in rater_services().items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets {sorted(unknown)}, which the rater does not read"
    assert rater_services().keys() >= {"topics", "worker-1", "worker-2", "notifier"}


def test_compose_commands_are_rater_commands() -> None:
    known = rater_commands()
    for name, service in rater_services().items():
        assert service["command"][0] in known, name


def test_compose_workers_are_static_members_with_their_own_state() -> None:
    services = compose()["services"]
    ids = {services[w]["environment"]["RATER_INSTANCE_ID"] for w in ("worker-1", "worker-2")}
    volumes = {services[w]["volumes"][0].split(":")[0] for w in ("worker-1", "worker-2")}
    assert len(ids) == 2 and len(volumes) == 2


def test_compose_files_it_mounts_exist_and_load() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), source
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    assert targets == {"worker-1:6066", "worker-2:6066", "notifier:6067"}
    for path in (ROOT / "deploy" / "grafana" / "provisioning").rglob("*.yaml"):
        assert yaml.safe_load(path.read_text())["apiVersion"] == 1


def test_dashboard_queries_only_spec_metrics_and_shows_each() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\brater_[a-z_]+", expr)}
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert used == SPEC_METRICS


# --------------------------------------------------------------------- kubernetes


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_against_the_api_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_manifests_hold_every_kind_the_issue_names() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in manifests()}
    assert kinds >= {
        ("StatefulSet", "rater-worker"),
        ("Service", "rater-worker"),
        ("ConfigMap", "rater-config"),
        ("Secret", "rater-secrets"),
        ("PodDisruptionBudget", "rater-worker"),
        ("Deployment", "rater-notifier"),
        ("Job", "rater-topics"),
    }


def test_statefulset_is_served_by_a_headless_service_and_guarded_by_the_budget() -> None:
    [workers] = by_kind("StatefulSet")
    services = {doc["metadata"]["name"]: doc for doc in by_kind("Service")}
    service = services[workers["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    labels = workers["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    [budget] = by_kind("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert workers["spec"]["volumeClaimTemplates"], "one volume per pod for table state"


def test_worker_pod_is_a_static_member_with_probes_and_state() -> None:
    [workers] = by_kind("StatefulSet")
    pod = workers["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["RATER_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    claim = workers["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim] == env["RATER_DATA_DIR"]["value"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["requests"]["memory"]
    # Longer than the 5 s a stop waits for the last group offsets, plus Faust's shutdown.
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_pods_read_only_settings_the_rater_knows() -> None:
    known = names_the_rater_reads()
    keys = set()
    for doc in by_kind("ConfigMap"):
        keys |= set(doc["data"])
    for doc in by_kind("Secret"):
        keys |= set(doc["stringData"])
    assert not keys - known, sorted(keys - known)
    commands = rater_commands()
    referenced = {"rater-config", "rater-secrets"}
    for doc in [*by_kind("StatefulSet"), *by_kind("Deployment"), *by_kind("Job")]:
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["args"][0] in commands
            assert not {e["name"] for e in container.get("env", [])} - known
            sources = container["envFrom"]
            names = {s.get("configMapRef", s.get("secretRef", {}))["name"] for s in sources}
            assert names == referenced, doc["metadata"]["name"]


def test_session_outlasts_a_pod_restart() -> None:
    """With static membership a restarted pod must be back before its session ends."""
    [config] = by_kind("ConfigMap")
    from rater.config import Settings

    settings = Settings.from_env(config["data"])
    assert settings.session_timeout_s >= 30
    # Faust gives each member at most ceil(partitions / members): equal shares need a multiple.
    replicas = by_kind("StatefulSet")[0]["spec"]["replicas"]
    assert settings.partitions % replicas == 0
