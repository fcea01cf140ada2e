"""Layer model: observability. A scrape reaches the port its monitor names, Alloy tails every node's
pods and ships them to Loki, sidecars send spans to Tempo, Grafana has a data source per backend.

Semantics:
- Prometheus Operator: a PodMonitor's ``podMetricsEndpoints[].port`` names a container port of the
  pods its ``selector`` picks in the namespaces of ``namespaceSelector`` (``any`` or ``matchNames``,
  default the monitor's own); a ServiceMonitor's ``endpoints[].port`` names a Service port of the
  Services it selects. https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.PodMonitorSpec
  kube-prometheus-stack picks up monitors of every release only with
  ``prometheusSpec.*SelectorNilUsesHelmValues: false`` (chart values.yaml).
- Vault serves ``/v1/sys/metrics`` without a token only when its listener sets
  ``telemetry { unauthenticated_metrics_access = true }`` and a ``telemetry`` stanza configures the
  Prometheus sink. https://developer.hashicorp.com/vault/docs/configuration/listener/tcp#telemetry-parameters,
  https://developer.hashicorp.com/vault/docs/configuration/telemetry
- Alloy: ``sys.env("X")`` is the empty string when X is unset
  (https://grafana.com/docs/alloy/latest/reference/stdlib/sys/); the chart sets HOSTNAME and
  K8S_NODE_NAME (both from spec.nodeName) and ALLOY_DEPLOY_MODE in the container, plus ``alloy.extraEnv``
  (grafana/alloy operations/helm/charts/alloy/templates/containers/_agent.yaml). A
  ``discovery.kubernetes`` field selector ``spec.nodeName=`` with an empty name matches no pod.
  ``loki.source.kubernetes`` reads logs through the API server (pods/log).
- Grafana: kube-prometheus-stack provisions the Prometheus data source
  (``grafana.sidecar.datasources.defaultDatasourceEnabled``); others come from
  ``grafana.additionalDataSources`` or ConfigMaps carrying the datasource sidecar's label.
  https://grafana.com/docs/grafana/latest/administration/provisioning/#data-sources
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import yaml

from rampart.paths.model import Check, allows, not_applicable, refuses
from rampart.paths.selectors import matches
from rampart.paths.workloads import CONFIG_MAP, Workload
from rampart.paths.world import World

POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
# Container env the Alloy chart always sets (alloy 1.11.1 templates/containers/_agent.yaml: HOSTNAME
# and K8S_NODE_NAME both from the downward API's spec.nodeName, and ALLOY_DEPLOY_MODE).
ALLOY_CHART_ENV = frozenset({"HOSTNAME", "K8S_NODE_NAME", "ALLOY_DEPLOY_MODE"})


@dataclass(frozen=True)
class ScrapeTarget:
    monitor: str
    workload: Workload | None
    port_name: str
    port: int | None
    path: str

    @property
    def name(self) -> str:
        return self.workload.key if self.workload else self.monitor


def _namespaces(monitor: Mapping[str, Any], all_namespaces: set[str]) -> set[str]:
    selector = (monitor.get("spec") or {}).get("namespaceSelector") or {}
    if selector.get("any"):
        return all_namespaces
    return set(selector.get("matchNames") or [monitor["metadata"].get("namespace")])


def scrape_targets(world: World) -> list[ScrapeTarget]:
    targets: list[ScrapeTarget] = []
    namespaces = {w.namespace for w in world.workloads.values()}
    for kind, endpoints_key in ((POD_MONITOR, "podMetricsEndpoints"), (SERVICE_MONITOR, "endpoints")):
        for monitor in world.of_type(kind):
            spec = monitor.get("spec") or {}
            meta = monitor["metadata"]
            label = f"{kind.rsplit(':', 1)[1]} {meta.get('namespace')}/{meta['name']}"
            scope = _namespaces(monitor, namespaces)
            if kind == POD_MONITOR:
                chosen = [
                    w
                    for w in world.workloads.values()
                    if w.namespace in scope and matches(spec.get("selector"), w.labels)
                ]
            else:
                chosen = [
                    w
                    for w in world.workloads.values()
                    if w.namespace in scope
                    and w.front is not None
                    and matches(spec.get("selector"), w.front.labels)
                ]
            for endpoint in spec.get(endpoints_key) or []:
                name = str(endpoint.get("port") or endpoint.get("targetPort") or "")
                path = str(endpoint.get("path") or "/metrics")
                if not chosen:
                    targets.append(ScrapeTarget(label, None, name, None, path))
                for workload in chosen:
                    if kind == POD_MONITOR:
                        port = workload.ports.get(name)
                    else:
                        port = workload.front.target(name) if workload.front else None
                    targets.append(ScrapeTarget(label, workload, name, port, path))
    return targets


def monitor_selection(world: World) -> Check:
    release = world.release("kube-prometheus-stack")
    if release is None:
        return refuses("telemetry", "no kube-prometheus-stack release")
    spec = ((release.get("values") or {}).get("prometheus") or {}).get("prometheusSpec") or {}
    for key in ("podMonitorSelectorNilUsesHelmValues", "serviceMonitorSelectorNilUsesHelmValues"):
        if spec.get(key, True) is not False:
            return refuses(
                "telemetry", f"prometheusSpec.{key} is not false: only the chart's own monitors are picked up"
            )
    return allows("telemetry", "Prometheus picks up monitors from every namespace")


def vault_metrics(world: World) -> Check:
    """Whether Prometheus may read Vault's metrics without a token."""
    release = world.release("vault")
    values = (release or {}).get("values") or {}
    server = values.get("server") or {}
    ha = server.get("ha") or {}
    if ha.get("enabled") and (ha.get("raft") or {}).get("enabled"):
        config, where = str((ha.get("raft") or {}).get("config") or ""), "server.ha.raft.config"
    elif ha.get("enabled"):
        config, where = str(ha.get("config") or ""), "server.ha.config"
    else:
        config, where = str((server.get("standalone") or {}).get("config") or ""), "server.standalone.config"
    if not re.search(r"^\s*telemetry\s*\{", config, re.MULTILINE):
        return refuses(
            "telemetry",
            f"Vault's {where} has no telemetry stanza: /v1/sys/metrics serves no Prometheus metrics",
        )
    if not re.search(r"unauthenticated_metrics_access\s*=\s*true", config):
        return refuses(
            "telemetry",
            f"Vault's listener in {where} does not set unauthenticated_metrics_access: "
            "the scrape needs a token",
        )
    return allows("telemetry", "Vault's listener serves /v1/sys/metrics without a token")


def scrape_config(world: World, target: ScrapeTarget) -> Check:
    if target.workload is None:
        return refuses(
            "telemetry", f"{target.monitor} selects no pod in this plan: the alerts built on it cannot fire"
        )
    if target.port is None:
        offered = (
            sorted(target.workload.ports)
            if "PodMonitor" in target.monitor
            else sorted(name for name, _, _ in (target.workload.front.ports if target.workload.front else ()))
        )
        return refuses(
            "telemetry",
            f"{target.monitor} names port {target.port_name!r}, which {target.workload.key} "
            f"does not expose (it has {offered})",
        )
    if target.path.startswith("/v1/sys/metrics"):
        return vault_metrics(world)
    return allows(
        "telemetry", f"{target.monitor} -> {target.workload.key}:{target.port} ({target.port_name})"
    )


# --- logs -----------------------------------------------------------------------------------------


def alloy_values(world: World) -> Mapping[str, Any]:
    return (world.release("alloy") or {}).get("values") or {}


def alloy_tails_pods(world: World) -> Check:
    values = alloy_values(world)
    if not values and world.release("alloy") is None:
        return refuses("telemetry", "no Alloy release")
    alloy = values.get("alloy") or {}
    config = str((alloy.get("configMap") or {}).get("content") or "")
    if (values.get("controller") or {}).get("type", "daemonset") != "daemonset":
        return refuses("telemetry", "Alloy is not a DaemonSet: not every node's pods are tailed")
    env = ALLOY_CHART_ENV | {e.get("name") for e in alloy.get("extraEnv") or []}
    for name in re.findall(r'sys\.env\("([^"]+)"\)', config):
        if name not in env:
            return refuses(
                "telemetry",
                f'Alloy\'s config reads sys.env("{name}"), which nothing sets '
                f"(the chart sets {sorted(ALLOY_CHART_ENV)}): "
                "its field selector matches no pod, so no log is tailed",
            )
    if "loki.source.kubernetes" in config:
        rules = (values.get("rbac") or {}).get("rules") or []
        if (
            not any("pods/log" in (r.get("resources") or []) for r in rules)
            and (values.get("rbac") or {}).get("rules") is not None
        ):
            return refuses(
                "telemetry", "Alloy's Role does not grant pods/log: the API server refuses its log reads"
            )
    return allows("telemetry", "a DaemonSet whose discovery selects its own node's pods")


def loki_endpoint(world: World) -> tuple[Workload | None, int | None, str]:
    config = str(((alloy_values(world).get("alloy") or {}).get("configMap") or {}).get("content") or "")
    match = re.search(
        r'url\s*=\s*"([^"]+)"', config[config.find("loki.write") :] if "loki.write" in config else ""
    )
    if match is None:
        return None, None, "Alloy's config has no loki.write endpoint"
    url = urlparse(match.group(1))
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    for workload in world.workloads.values():
        front = workload.front
        if front is None:
            continue
        names = {
            f"{front.name}.{workload.namespace}.svc.cluster.local",
            f"{front.name}.{workload.namespace}.svc",
            f"{front.name}.{workload.namespace}",
        }
        if host in names:
            target = next((t for _, p, t in front.ports if p == port), None)
            return workload, target, f"loki.write -> {host}:{port}"
    return None, None, f"loki.write points at {host}, which no Service of the plan serves"


# --- data sources ---------------------------------------------------------------------------------


def grafana_datasources(world: World) -> dict[str, str]:
    """Data source type -> where it is provisioned."""
    release = world.release("kube-prometheus-stack")
    values = (release or {}).get("values") or {}
    grafana = values.get("grafana") or {}
    sidecar = (grafana.get("sidecar") or {}).get("datasources") or {}
    found: dict[str, str] = {}
    if release is not None and sidecar.get("defaultDatasourceEnabled", True):
        found["prometheus"] = "kube-prometheus-stack's default data source"
        found["alertmanager"] = "kube-prometheus-stack's default data source"
    for source in grafana.get("additionalDataSources") or []:
        found.setdefault(str(source.get("type")), f"grafana.additionalDataSources {source.get('name')}")
    label, value = str(sidecar.get("label", "grafana_datasource")), str(sidecar.get("labelValue", "1"))
    for config_map in world.of_type(CONFIG_MAP):
        if (config_map["metadata"].get("labels") or {}).get(label) != value:
            continue
        for document in (config_map.get("data") or {}).values():
            try:
                parsed = yaml.safe_load(str(document)) or {}
            except yaml.YAMLError:
                continue
            sources = (parsed.get("datasources") or []) if isinstance(parsed, dict) else []
            for source in sources:
                found.setdefault(str(source.get("type")), f"ConfigMap {config_map['metadata']['name']}")
    return found


def datasource(world: World, kind: str) -> Check:
    if world.release("kube-prometheus-stack") is None:
        return refuses("telemetry", "no Grafana (kube-prometheus-stack) release")
    sources = grafana_datasources(world)
    if kind in sources:
        return allows("telemetry", sources[kind])
    return refuses("telemetry", f"Grafana has no {kind} data source (it has {sorted(sources) or 'none'})")


def tracing(world: World) -> tuple[Workload | None, int | None, Check]:
    """The span backend the mesh sends to, and whether tracing is configured."""
    if not world.mesh.installed:
        return None, None, not_applicable("telemetry", "no mesh")
    provider, source = world.mesh.tracing_provider()
    if provider is None:
        return None, None, refuses("telemetry", source)
    backend = provider.get("zipkin") or provider.get("opentelemetry") or {}
    host, port = str(backend.get("service") or ""), int(backend.get("port") or 0)
    for workload in world.workloads.values():
        if workload.host == host or (
            workload.front and host.startswith(f"{workload.front.name}.{workload.namespace}.")
        ):
            target = next(
                (t for _, p, t in (workload.front.ports if workload.front else ()) if p == port), None
            )
            if target is None:
                return workload, None, refuses("telemetry", f"{host} serves no port {port}")
            return workload, target, allows("telemetry", f"{source} sends spans to {host}:{port}")
    return (
        None,
        None,
        refuses("telemetry", f"the tracing provider points at {host}, which no Service of the plan serves"),
    )
