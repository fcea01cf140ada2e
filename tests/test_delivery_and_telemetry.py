"""Issue 14: what the platform hands each service (credentials and where to use them) and what makes
its alerts, logs and traces work, on the plan the real program registers under mocks. Each test
fails on the code before its fix; the path proof (tests/test_paths.py) checks the same paths end to end.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from components import paved_road as road
from components.mesh.policy import IDEMPOTENT_METHODS
from components.observability.prometheus_stack import GRAFANA_SIDECAR_ROLE
from components.secrets.vault_chart import server_hcl
from components.secrets.vault_config import broker_secret, database_secret
from tests.conftest import planned, stack_config

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"


def named(stack: str, type_: str, namespace: str | None, name: str) -> dict[str, Any]:
    (found,) = [
        r["inputs"]
        for r in planned(stack).of_type(type_)
        if r["inputs"]["metadata"].get("name") == name
        and (namespace is None or r["inputs"]["metadata"].get("namespace") == namespace)
    ]
    inputs: dict[str, Any] = found
    return inputs


def release(stack: str, name: str) -> dict[str, Any]:
    (found,) = [r["inputs"] for r in planned(stack).of_type(RELEASE) if r["inputs"].get("name") == name]
    values: dict[str, Any] = dict(found.get("values") or {})
    return values


# --- 2. credentials and where to use them ------------------------------------------------------


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_services_with_a_database_or_queue_get_their_credentials_as_read_only_files(stack: str) -> None:
    for spec in stack_config(stack).services:
        template = named(stack, DEPLOYMENT, spec.name, spec.name)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in template["volumes"]}
        (container,) = template["containers"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        wanted = {}
        if spec.database:
            wanted["db-credentials"] = (database_secret(spec.name), road.DATABASE_CREDENTIALS_DIR)
        if spec.queue.publishes or spec.queue.consumes:
            wanted["broker-credentials"] = (broker_secret(spec.name), road.BROKER_CREDENTIALS_DIR)
        assert {n for n in volumes if n.endswith("-credentials")} == set(wanted), spec.name
        for volume, (secret, path) in wanted.items():
            assert volumes[volume]["secret"]["secretName"] == secret
            # Owner root, group the pod's fsGroup (the service's uid): readable by the service only.
            assert volumes[volume]["secret"]["defaultMode"] == 0o440
            assert mounts[volume] == {"name": volume, "mountPath": path, "readOnly": True}
        # Still PSS restricted: no secret in the environment, a read-only root filesystem.
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert not any("valueFrom" in e for e in container.get("env") or [])


@pytest.mark.parametrize("stack", ["local", "dev"])
def test_each_client_is_told_where_its_database_and_broker_are(stack: str) -> None:
    config = stack_config(stack)
    for spec in config.services:
        uses_broker = bool(spec.queue.publishes or spec.queue.consumes)
        container = named(stack, DEPLOYMENT, spec.name, spec.name)["spec"]["template"]["spec"]["containers"][
            0
        ]
        if not (spec.database or uses_broker):
            assert not container.get("envFrom"), spec.name
            continue
        assert container["envFrom"] == [{"configMapRef": {"name": road.connection_config(spec.name)}}]
        data = named(stack, CONFIG_MAP, spec.name, road.connection_config(spec.name))["data"]
        if spec.database:
            assert data["PGDATABASE"] == spec.name.replace("-", "_")
            assert data["PGPORT"] == "5432" and data["PGSSLMODE"] == "require"
            if config.target == "aws":
                assert data["PGHOST"].endswith(".rds.amazonaws.com"), data
            else:
                assert data["PGHOST"] == f"{spec.name}-db-rw.{spec.name}.svc.cluster.local"
        if uses_broker:
            assert data["RABBITMQ_PORT"] == "5671" and data["AMQP_ENDPOINTS"].startswith("amqps://")
            assert data["RABBITMQ_HOST"] and data["RABBITMQ_HOST"] in data["AMQP_ENDPOINTS"]
            vhosts = set(data["RABBITMQ_VHOSTS"].split(","))
            publishes_into = {spec.name} if spec.queue.publishes else set()
            assert publishes_into <= vhosts, (spec.name, vhosts)
        # Nothing secret in a ConfigMap.
        assert not any(re.search("password|token", key, re.IGNORECASE) for key in data)


# --- 1. the Host Kong sends ----------------------------------------------------------------------


def test_every_public_route_sends_the_in_mesh_host() -> None:
    for resource in planned("prod").of_type("kubernetes:networking.k8s.io/v1:Ingress"):
        assert resource["inputs"]["metadata"]["annotations"]["konghq.com/preserve-host"] == "false"


# --- 3. platform alerts can fire --------------------------------------------------------------------


def admitted(stack: str, namespace: str, port: int) -> bool:
    for resource in planned(stack).of_type(NETWORK_POLICY):
        inputs = resource["inputs"]
        if inputs["metadata"].get("namespace") != namespace:
            continue
        for rule in inputs["spec"].get("ingress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []}
            peers = rule.get("from") or []
            from_prometheus = any(
                (p.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                == "monitoring"
                and (p.get("podSelector") or {}).get("matchLabels")
                == {"app.kubernetes.io/name": "prometheus"}
                for p in peers
            )
            if port in ports and from_prometheus:
                return True
    return False


def test_monitoring_is_admitted_exactly_where_the_alerts_scrape() -> None:
    assert admitted("local", "vault", 8200)
    assert admitted("local", "cert-manager", 9402)
    assert admitted("local", "messaging", 15691)
    assert not admitted("local", "messaging", 15692)
    for spec in stack_config("local").services:
        assert admitted("local", spec.name, 9187) == bool(spec.database), spec.name
    # aws: no CloudNativePG and no in-cluster broker, so no admission, monitor or alert for them.
    assert admitted("prod", "vault", 8200) and admitted("prod", "cert-manager", 9402)
    assert not any(admitted("prod", s.name, 9187) for s in stack_config("prod").services)


def test_on_aws_no_monitor_or_alert_is_built_on_what_is_not_there() -> None:
    monitors = {
        r["inputs"]["metadata"]["name"]
        for r in planned("prod").resources
        if r["type"].endswith((":PodMonitor", ":ServiceMonitor"))
    }
    assert {"cnpg-instances", "cnpg-operator", "rabbitmq"}.isdisjoint(monitors)
    assert {"vault", "cert-manager"} <= monitors
    (rules,) = [
        r["inputs"]["spec"]
        for r in planned("prod").resources
        if r["type"].endswith(":PrometheusRule") and r["inputs"]["metadata"]["name"] == "rampart-platform"
    ]
    exprs = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    assert "cnpg_" not in exprs and "vault_core_unsealed" in exprs


def test_the_rabbitmq_monitor_scrapes_the_tls_port_the_operator_exposes() -> None:
    (monitor,) = [
        r["inputs"]
        for r in planned("local").resources
        if r["type"].endswith(":ServiceMonitor") and r["inputs"]["metadata"]["name"] == "rabbitmq"
    ]
    # The CA Secret is read from the monitor's own namespace: it lives beside the broker.
    assert monitor["metadata"]["namespace"] == "messaging"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "prometheus-tls" and endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "rabbitmq-tls", "key": "ca.crt"}},
        "serverName": "rabbitmq.messaging.svc",
    }


@pytest.mark.parametrize("replicas", [1, 3])
def test_vault_serves_its_metrics_without_a_token_on_every_node(replicas: int) -> None:
    hcl = server_hcl(replicas)
    listener = hcl[hcl.index('listener "tcp"') : hcl.index('storage "raft"')]
    assert re.search(r"telemetry \{\s+unauthenticated_metrics_access = true\s+\}", listener)
    top = hcl[hcl.index('service_registration "kubernetes"') :]
    assert re.search(
        r'^telemetry \{\s+prometheus_retention_time = "60s"\s+disable_hostname = true\s+\}', top, re.M
    )


def test_the_vault_release_carries_the_telemetry_config() -> None:
    for stack in ("local", "prod"):
        server = release(stack, "vault")["server"]
        config = (
            server["ha"]["raft"]["config"]
            if server.get("ha", {}).get("enabled")
            else server["standalone"]["config"]
        )
        assert "unauthenticated_metrics_access = true" in config and "disable_hostname = true" in config


# --- 4. logs, metrics and traces connect ----------------------------------------------------------


def test_alloy_reads_only_environment_its_pod_has_and_sets_nothing_twice() -> None:
    """Alloy's discovery filters on sys.env("K8S_NODE_NAME"): the pinned chart sets it from
    spec.nodeName itself (alloy 1.11.1 templates/containers/_agent.yaml), so extraEnv must not set it
    again (a duplicate env name; server-side apply refuses duplicate list-map keys)."""
    from rampart.paths.observability import ALLOY_CHART_ENV

    alloy = release("local", "alloy")["alloy"]
    extra = [e["name"] for e in alloy.get("extraEnv") or []]
    assert not set(extra) & ALLOY_CHART_ENV and len(extra) == len(set(extra))
    used = set(re.findall(r'sys\.env\("([^"]+)"\)', alloy["configMap"]["content"]))
    assert used == {"K8S_NODE_NAME"} and used <= ALLOY_CHART_ENV | set(extra)


def test_grafana_has_loki_and_tempo_data_sources() -> None:
    sources = release("prod", "kube-prometheus-stack")["grafana"]["additionalDataSources"]
    by_type = {s["type"]: s["url"] for s in sources}
    assert by_type == {
        "loki": "http://loki.monitoring.svc.cluster.local:3100",
        "tempo": "http://tempo.monitoring.svc.cluster.local:3200",
    }


def test_the_gateway_may_send_its_spans_to_tempo() -> None:
    spec = named("local", NETWORK_POLICY, "kong", "allow-span-export")["spec"]
    assert spec["policyTypes"] == ["Egress"]
    (rule,) = spec["egress"]
    assert {p["port"] for p in rule["ports"]} >= {9411}
    (peer,) = rule["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}


# --- 5. Grafana reads ConfigMaps, not Secrets -------------------------------------------------------


def test_grafanas_sidecars_and_role_are_limited_to_config_maps() -> None:
    grafana = release("local", "kube-prometheus-stack")["grafana"]
    assert grafana["sidecar"]["dashboards"]["resource"] == "configmap"
    assert grafana["sidecar"]["datasources"]["resource"] == "configmap"
    assert grafana["rbac"]["useExistingClusterRole"] == GRAFANA_SIDECAR_ROLE
    role = named("local", CLUSTER_ROLE, None, GRAFANA_SIDECAR_ROLE)
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
    ]


# --- 6. Vault's audit log is shipped --------------------------------------------------------------


def test_vault_audits_to_stdout_only_so_no_audit_volume_can_fill() -> None:
    """Vault refuses every request no audit device can record; its file device never rotates, so a
    device writing to a volume stops Vault once the volume is full. The only device writes to stdout,
    which Alloy ships to Loki and the kubelet rotates on the node.
    https://developer.hashicorp.com/vault/docs/audit/file,
    https://developer.hashicorp.com/vault/docs/audit#blocked-audit-devices"""
    from tests.test_vault_config import build as vault_configuration

    devices = [r["inputs"] for r in vault_configuration().resources if r["type"] == "vault:index/audit:Audit"]
    assert devices, "Vault must audit"
    for device in devices:
        # The file device's only unbounded target is a path; "stdout"/"discard" are streams.
        assert device["type"] == "file" and device["options"] == {"file_path": "stdout"}, device


# --- 7. retries ---------------------------------------------------------------------------------------


def test_only_idempotent_methods_are_retried_after_the_request_may_have_reached_the_app() -> None:
    for resource in planned("prod").resources:
        if not resource["type"].endswith(":VirtualService"):
            continue
        for route in resource["inputs"]["spec"]["http"]:
            retry_on = set(route["retries"].get("retryOn", "").split(","))
            methods = {m["method"]["exact"] for m in route.get("match") or []}
            if methods:
                assert methods <= set(IDEMPOTENT_METHODS)
            else:
                assert retry_on <= {"connect-failure", "refused-stream"}, route
