"""kube-prometheus-stack as values: the chart's values (Prometheus, Alertmanager, Grafana, the operator),
the quota of the ``monitoring`` namespace sized from them, and the allows between the release's
components. :mod:`components.observability.monitoring` installs them (see its docstring for the
decisions behind these values)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.core import labels, netpol, quota, security_context
from components.core.quota import Resources
from components.observability import NAMESPACE
from components.observability import service_objects as objects
from components.observability.alerting import RECEIVERS_SECRET, Routing
from components.observability.logging_charts import LOKI, LOKI_HTTP_PORT, TEMPO, TEMPO_QUERY_PORT
from components.observability.scrape_targets import PLATFORM_TARGETS, ScrapeTarget
from rampart.config.types import memory_bytes

if TYPE_CHECKING:
    # Only for annotations: monitoring.py builds the component from these values.
    from components.observability.monitoring import MonitoringArgs

RELEASE_NAME = "kube-prometheus-stack"
CHART = "kube-prometheus-stack"
CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
CHART_VERSION = "88.5.3"
MONITORING_API = objects.MONITORING_API

# The images run as "nobody"; a uid above the platform's floor of 10000.
RUN_AS = 65534
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
DATASOURCE_LABEL = {"grafana_datasource": "1"}
GRAFANA_ADMIN_SECRET = "grafana-admin"  # nosec B105 # noqa: S105 - a Secret's name or key, not a credential
GRAFANA_ADMIN_USER = "admin"
GRAFANA_USER_KEY = "admin-user"
GRAFANA_PASSWORD_KEY = "admin-password"  # nosec B105 # noqa: S105 - a Secret's name or key, not a credential
GRAFANA_STORAGE = "5Gi"
# The ClusterRole Grafana's sidecars get instead of the chart's: the chart's grants configmaps and
# secrets in every namespace whenever a sidecar is on (grafana templates/clusterrole.yaml), whatever
# the sidecars' `resource`. Dashboards and data sources are ConfigMaps: nothing else.
GRAFANA_SIDECAR_ROLE = "grafana-sidecar-configmaps"
GRAFANA_SIDECAR_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
)
ALERTMANAGER_STORAGE = "2Gi"

# Pods as the chart and the operator label them (release-independent labels).
PROMETHEUS_PODS = {labels.NAME: "prometheus"}
ALERTMANAGER_PODS = {labels.NAME: "alertmanager"}
GRAFANA_PODS = {labels.NAME: "grafana"}
KSM_PODS = {labels.NAME: "kube-state-metrics"}
OPERATOR_PODS = {"app": f"{CHART}-operator"}
# The components' ports: web UIs/APIs, the config reloaders' metrics, Alertmanager's cluster gossip,
# kube-state-metrics' metrics and self-metrics, the operator's webhook and metrics (tls.internalPort).
PROMETHEUS_WEB_PORT, ALERTMANAGER_WEB_PORT, ALERTMANAGER_CLUSTER_PORT = 9090, 9093, 9094
CONFIG_RELOADER_PORT, GRAFANA_PORT, KSM_PORTS = 8080, 3000, (8080, 8081)
OPERATOR_WEBHOOK_PORT = 10250
IN_NAMESPACE_PORTS = (
    PROMETHEUS_WEB_PORT,
    ALERTMANAGER_WEB_PORT,
    CONFIG_RELOADER_PORT,
    GRAFANA_PORT,
    *KSM_PORTS,
    OPERATOR_WEBHOOK_PORT,
)
# Targets of the chart's own monitors: kubelet + cAdvisor, CoreDNS, kube-proxy.
KUBELET_PORT, COREDNS_METRICS_PORT, KUBE_PROXY_METRICS_PORT = 10250, 9153, 10249

PROMETHEUS_RESOURCES = quota.resources(requests=("500m", "2Gi"), limits=("2", "4Gi"))
CONFIG_RELOADER_RESOURCES = quota.resources(requests=("10m", "32Mi"), limits=("100m", "64Mi"))
ALERTMANAGER_RESOURCES = quota.resources(requests=("50m", "128Mi"), limits=("200m", "256Mi"))
OPERATOR_RESOURCES = quota.resources(requests=("100m", "128Mi"), limits=("500m", "512Mi"))
WEBHOOK_JOB_RESOURCES: Resources = CONFIG_RELOADER_RESOURCES
GRAFANA_RESOURCES = quota.resources(requests=("100m", "256Mi"), limits=("500m", "512Mi"))
GRAFANA_SIDECAR_RESOURCES = quota.resources(requests=("50m", "64Mi"), limits=("200m", "128Mi"))
# kube-state-metrics (its sub-chart's resources are not among the values we can check) and anything
# else that declares nothing get the LimitRange default.
DEFAULT_CONTAINER = quota.resources(requests=("100m", "128Mi"), limits=("250m", "256Mi"))


# -- chart values ------------------------------------------------------------------------------


def _volume_claim(size: str, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"volumeClaimTemplate": {"spec": spec}}


def retention_size(storage_size: str) -> str:
    """Prometheus deletes old blocks before the volume fills: 85% of it (Prometheus' MB is MiB)."""
    return f"{math.floor(memory_bytes(storage_size) * 0.85 / 2**20)}MB"


def prometheus_values(args: MonitoringArgs) -> dict[str, Any]:
    return {
        "podDisruptionBudget": {"enabled": args.replicas > 1},
        "prometheusSpec": {
            "replicas": args.replicas,
            "retention": args.retention,
            "retentionSize": retention_size(args.storage_size),
            "scrapeInterval": objects.SCRAPE_INTERVAL,
            "evaluationInterval": objects.SCRAPE_INTERVAL,
            # Pick up monitors and rules from every namespace, not only those labelled for this release.
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "ruleSelectorNilUsesHelmValues": False,
            "probeSelectorNilUsesHelmValues": False,
            "scrapeConfigSelectorNilUsesHelmValues": False,
            "resources": dict(PROMETHEUS_RESOURCES),
            "storageSpec": _volume_claim(args.storage_size, args.storage_class),
            "securityContext": security_context.restricted_pod(RUN_AS, fs_group=True),
        },
    }


def alertmanager_values(args: MonitoringArgs, routing: Routing) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": args.alertmanager_replicas,
        "storage": _volume_claim(ALERTMANAGER_STORAGE, args.storage_class),
        "resources": dict(ALERTMANAGER_RESOURCES),
        "securityContext": security_context.restricted_pod(RUN_AS, fs_group=True),
    }
    if routing.credentials:
        spec["secrets"] = [RECEIVERS_SECRET]
    return {
        "podDisruptionBudget": {"enabled": args.alertmanager_replicas > 1},
        "config": routing.config,
        "alertmanagerSpec": spec,
    }


def grafana_values() -> dict[str, Any]:
    """The grafana sub-chart's values (checked against the grafana chart's own defaults)."""
    return {
        "admin": {
            "existingSecret": GRAFANA_ADMIN_SECRET,
            "userKey": GRAFANA_USER_KEY,
            "passwordKey": GRAFANA_PASSWORD_KEY,
        },
        # A ReadWriteOnce volume cannot follow a surged pod to another node.
        "deploymentStrategy": {"type": "Recreate"},
        # On the cluster's default StorageClass (encrypted gp3 on aws): the chart's storageClassName
        # is only a commented example in its defaults, which the values check cannot see.
        "persistence": {"enabled": True, "type": "pvc", "size": GRAFANA_STORAGE},
        # The chown init container runs as root; fsGroup gives the volume to Grafana's uid instead.
        "initChownData": {"enabled": False},
        # The `helm test` pod is not hardened and not needed.
        "testFramework": {"enabled": False},
        "securityContext": security_context.run_as(RUN_AS) | {"fsGroup": RUN_AS},
        "resources": dict(GRAFANA_RESOURCES),
        "grafana.ini": {"analytics": {"check_for_updates": False}},
        # Bind our configmaps-only ClusterRole (created beside the release) instead of the chart's.
        "rbac": {"useExistingClusterRole": GRAFANA_SIDECAR_ROLE},
        "sidecar": {
            "resources": dict(GRAFANA_SIDECAR_RESOURCES),
            # Dashboards are ConfigMaps labelled grafana_dashboard: "1" in any namespace. ConfigMaps
            # only: with the chart's `resource: both` the sidecar (and the ClusterRole it needs)
            # reads every Secret in the cluster. grafana chart values.yaml, sidecar.*.resource.
            "dashboards": {
                "enabled": True,
                "label": next(iter(DASHBOARD_LABEL)),
                "labelValue": DASHBOARD_LABEL["grafana_dashboard"],
                "searchNamespace": "ALL",
                "resource": "configmap",
            },
            # Data sources only from Grafana's own namespace (the chart's default search scope).
            "datasources": {
                "enabled": True,
                "label": next(iter(DATASOURCE_LABEL)),
                "labelValue": DATASOURCE_LABEL["grafana_datasource"],
                "resource": "configmap",
            },
        },
    }


def grafana_datasources(namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Loki and Tempo beside the chart's Prometheus and Alertmanager, so logs and traces can be viewed
    (and a trace found from a log line). kube-prometheus-stack passes grafana.additionalDataSources to
    Grafana's provisioning. https://grafana.com/docs/grafana/latest/administration/provisioning/#data-sources,
    https://grafana.com/docs/grafana/latest/datasources/loki/configure-loki-data-source/#provision-the-data-source,
    https://grafana.com/docs/grafana/latest/datasources/tempo/configure-tempo-data-source/#provision-the-data-source"""
    loki = f"http://{LOKI}.{namespace}.svc.cluster.local:{LOKI_HTTP_PORT}"
    tempo = f"http://{TEMPO}.{namespace}.svc.cluster.local:{TEMPO_QUERY_PORT}"
    return [
        {"name": "Loki", "type": "loki", "uid": "loki", "access": "proxy", "url": loki, "editable": False},
        {
            "name": "Tempo",
            "type": "tempo",
            "uid": "tempo",
            "access": "proxy",
            "url": tempo,
            "editable": False,
            "jsonData": {"tracesToLogsV2": {"datasourceUid": "loki"}},
        },
    ]


def operator_values() -> dict[str, Any]:
    return {
        "resources": dict(OPERATOR_RESOURCES),
        "prometheusConfigReloader": {"resources": dict(CONFIG_RELOADER_RESOURCES)},
        "admissionWebhooks": {
            "patch": {
                "resources": dict(WEBHOOK_JOB_RESOURCES),
                "securityContext": security_context.restricted_pod(RUN_AS),
            }
        },
    }


def helm_values(args: MonitoringArgs, routing: Routing) -> dict[str, Any]:
    return {
        "prometheus": prometheus_values(args),
        "alertmanager": alertmanager_values(args, routing),
        "grafana": grafana_values() | {"additionalDataSources": grafana_datasources()},
        "prometheusOperator": operator_values(),
        # See the module docstring: `restricted` has no room for node-exporter.
        "nodeExporter": {"enabled": False},
        "defaultRules": {"rules": {"nodeExporterAlerting": False, "nodeExporterRecording": False}},
        # Managed control planes (EKS) do not expose these, and kubeadm/kind bind them to localhost:
        # their monitors would only raise TargetDown.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
    }


# -- namespace baseline ------------------------------------------------------------------------


@dataclass(frozen=True)
class PodBudget:
    pods: int
    containers: tuple[Resources, ...]


def pod_budgets(args: MonitoringArgs) -> list[PodBudget]:
    """Every pod the release runs at most at once: StatefulSets roll one pod at a time, Deployments
    surge one pod, Grafana is recreated, the webhook certificate jobs run one after the other."""
    return [
        PodBudget(args.replicas, (PROMETHEUS_RESOURCES, CONFIG_RELOADER_RESOURCES)),
        PodBudget(args.alertmanager_replicas, (ALERTMANAGER_RESOURCES, CONFIG_RELOADER_RESOURCES)),
        PodBudget(2, (OPERATOR_RESOURCES,)),
        PodBudget(2, (DEFAULT_CONTAINER,)),  # kube-state-metrics
        # Grafana with its dashboard and data source sidecars.
        PodBudget(1, (GRAFANA_RESOURCES, GRAFANA_SIDECAR_RESOURCES, GRAFANA_SIDECAR_RESOURCES)),
        PodBudget(1, (WEBHOOK_JOB_RESOURCES,)),
    ]


def quota_hard(args: MonitoringArgs) -> dict[str, str]:
    budgets = pod_budgets(args)
    containers = [(resources, budget.pods) for budget in budgets for resources in budget.containers]
    storage = [
        (args.storage_size, args.replicas),
        (ALERTMANAGER_STORAGE, args.alertmanager_replicas),
        (GRAFANA_STORAGE, 1),
    ]
    own = (
        quota.pods_total(sum(budget.pods for budget in budgets), containers)
        | {
            "persistentvolumeclaims": str(args.replicas + args.alertmanager_replicas + 1),
            "requests.storage": quota.storage_total(storage),
        }
        | quota.NOT_EXPOSED
    )
    return quota.combine(own, args.extra_quota)


def scrape_ports(targets: Sequence[ScrapeTarget] = PLATFORM_TARGETS) -> list[int]:
    """Everything Prometheus scrapes or calls: sidecars, platform targets, the chart's own monitors
    (kubelet, CoreDNS, kube-proxy) and the release's components."""
    fixed = (
        objects.MESH_METRICS_PORT_NUMBER,
        KUBELET_PORT,
        COREDNS_METRICS_PORT,
        KUBE_PROXY_METRICS_PORT,
        *IN_NAMESPACE_PORTS,
    )
    return sorted({*fixed, *(target.port_number for target in targets)})


def _gossip() -> list[netpol.Port]:
    return [netpol.Port(protocol=protocol, port=ALERTMANAGER_CLUSTER_PORT) for protocol in ("TCP", "UDP")]


def network_policies() -> dict[str, netpol.Spec]:
    """The monitoring namespace's allows, on top of the baseline's default-deny and DNS: each of the
    release's components is reachable by the components that use it, on its own ports. (Other layers
    that run in this namespace, logs and traces, add their own.)"""
    return {
        # Grafana queries it; the replicas of an HA pair scrape each other.
        "allow-prometheus": netpol.ingress_from(
            PROMETHEUS_PODS,
            netpol.peers(GRAFANA_PODS, PROMETHEUS_PODS),
            PROMETHEUS_WEB_PORT,
            CONFIG_RELOADER_PORT,
        ),
        # Prometheus sends alerts, Grafana reads them; replicas gossip to deduplicate notifications.
        "allow-alertmanager": netpol.policy(
            ALERTMANAGER_PODS,
            ingress=[
                netpol.IngressRule(
                    from_=netpol.peers(PROMETHEUS_PODS, GRAFANA_PODS),
                    ports=netpol.tcp(ALERTMANAGER_WEB_PORT, CONFIG_RELOADER_PORT),
                ),
                netpol.IngressRule(from_=netpol.peers(ALERTMANAGER_PODS), ports=_gossip()),
            ],
            egress=[netpol.EgressRule(to=netpol.peers(ALERTMANAGER_PODS), ports=_gossip())],
        ),
        "allow-grafana": netpol.policy(
            GRAFANA_PODS,
            ingress=[netpol.IngressRule(from_=netpol.peers(PROMETHEUS_PODS), ports=netpol.tcp(GRAFANA_PORT))],
            egress=[
                netpol.EgressRule(to=netpol.peers(PROMETHEUS_PODS), ports=netpol.tcp(PROMETHEUS_WEB_PORT)),
                netpol.EgressRule(
                    to=netpol.peers(ALERTMANAGER_PODS), ports=netpol.tcp(ALERTMANAGER_WEB_PORT)
                ),
            ],
        ),
        "allow-kube-state-metrics": netpol.ingress_from(KSM_PODS, netpol.peers(PROMETHEUS_PODS), *KSM_PORTS),
        # The API server calls the admission webhook (it is not a pod: no selector names it); the same
        # port serves the operator's metrics.
        "allow-operator-webhook": netpol.ingress(
            OPERATOR_PODS, [netpol.IngressRule(from_=None, ports=netpol.tcp(OPERATOR_WEBHOOK_PORT))]
        ),
        # The API server (service discovery, the operator, Grafana's sidecars, kube-state-metrics) and
        # the HTTPS endpoints of alert receivers; neither has addresses known in advance.
        "allow-https-egress": netpol.egress(
            None, [netpol.EgressRule(ports=netpol.tcp(*netpol.API_SERVER_PORTS))]
        ),
        # Prometheus scrapes pods in every namespace and the kubelets on the nodes, on these ports only.
        "allow-scrape": netpol.egress(
            PROMETHEUS_PODS, [netpol.EgressRule(ports=netpol.tcp(*scrape_ports()))]
        ),
    }


def allow_scrape_from_prometheus(service: str) -> netpol.Spec:
    """In a service's namespace: Prometheus reaches the sidecars' metrics port, nothing else."""
    return netpol.ingress_from(
        labels.selector(service),
        [netpol.pods_in(NAMESPACE, PROMETHEUS_PODS)],
        objects.MESH_METRICS_PORT_NUMBER,
    )


def prometheus_admission(target: ScrapeTarget) -> netpol.Spec:
    """In the target's namespace: Prometheus's pods reach the target's pods on its metrics port only.
    A NetworkPolicy admits what any of its ingress rules allows, by peer and port.
    https://kubernetes.io/docs/concepts/services-networking/network-policies/#behavior-of-to-and-from-selectors"""
    return netpol.ingress_from(
        dict(target.selector), [netpol.pods_in(NAMESPACE, PROMETHEUS_PODS)], target.port_number
    )
