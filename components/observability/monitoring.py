"""Monitoring: kube-prometheus-stack (Prometheus Operator, Prometheus, Alertmanager, Grafana,
kube-state-metrics) in ``monitoring``, and for every service a scrape config, SLO alerts and a
dashboard in its own namespace.

Decisions (see also :mod:`components.observability.service_objects`):

- Services are scraped through their Istio sidecar's own metrics endpoint (``http-envoy-prom``,
  15090) by a PodMonitor: it is outside the sidecar's inbound mTLS capture, so it works under STRICT
  mTLS with Prometheus outside the mesh. The ``monitoring`` namespace is therefore not injected.
- node-exporter is off. It needs hostNetwork, hostPID and hostPath volumes, which Pod Security
  Standards ``restricted`` forbids, and the platform does not exempt ``monitoring``. Node and
  container metrics come from the kubelet and cAdvisor (CPU, memory, volume stats, scraped by the
  chart's kubelet ServiceMonitor) and node conditions from kube-state-metrics.
- Every pod the chart renders meets ``restricted`` with these values: non-root uid 65534,
  RuntimeDefault seccomp, no privilege escalation, ALL capabilities dropped (the operator sets the
  container contexts of Prometheus and Alertmanager), Grafana without its root chown init container.
- Credentials never enter the Helm values: Grafana's admin password is generated and handed over as a
  Secret (``admin.existingSecret``); Alertmanager receivers read theirs from files of a mounted
  Secret (``*_file`` fields).
- Scrape configs of platform components live in ``monitoring`` with a namespace selector, like the
  chart's own kubelet and CoreDNS monitors, so they are harmless before their target exists. Vault's is
  the exception: its CA comes from Vault's TLS Secret, and a monitor reads Secrets from its own namespace.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.certificates import cert_manager as certificates
from components.core import charts, labels, quota
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.gateway import kong as gateway
from components.mesh import istio as mesh
from components.observability import service_objects as objects
from components.observability.service_objects import Slo
from rampart.config.models import ServiceSpec
from rampart.config.types import cpu_millicores, memory_bytes

NAMESPACE = "monitoring"
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
ALERTMANAGER_STORAGE = "2Gi"
# The operator mounts each Secret listed in alertmanagerSpec.secrets at <dir>/<secret name>.
RECEIVERS_SECRET = "alertmanager-receivers"  # nosec B105 # noqa: S105 - a Secret's name or key, not a credential
ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
NULL_RECEIVER = "null"

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
# The API server (443 on EKS, 6443 on kubeadm/kind), also the HTTPS endpoints of alert receivers.
API_SERVER_PORTS = (443, 6443)
# Targets of the chart's own monitors: kubelet + cAdvisor, CoreDNS, kube-proxy.
KUBELET_PORT, COREDNS_METRICS_PORT, KUBE_PROXY_METRICS_PORT = 10250, 9153, 10249

Resources = Mapping[str, Mapping[str, str]]
PROMETHEUS_RESOURCES: Resources = {
    "requests": {"cpu": "500m", "memory": "2Gi"},
    "limits": {"cpu": "2", "memory": "4Gi"},
}
CONFIG_RELOADER_RESOURCES: Resources = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}
ALERTMANAGER_RESOURCES: Resources = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "200m", "memory": "256Mi"},
}
OPERATOR_RESOURCES: Resources = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
WEBHOOK_JOB_RESOURCES: Resources = CONFIG_RELOADER_RESOURCES
GRAFANA_RESOURCES: Resources = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
GRAFANA_SIDECAR_RESOURCES: Resources = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "200m", "memory": "128Mi"},
}
# kube-state-metrics (its sub-chart's resources are not among the values we can check) and anything
# else that declares nothing get the LimitRange default.
DEFAULT_CONTAINER: Resources = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "250m", "memory": "256Mi"},
}

_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
_SECRET_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")

# Alertmanager receiver fields that hold credentials, by receiver kind: each has a `<field>_file`
# twin that reads the value from a file instead.
RECEIVER_CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    "slack_configs": (("api_url",),),
    "pagerduty_configs": (("routing_key",), ("service_key",)),
    "webhook_configs": (("url",),),
    "opsgenie_configs": (("api_key",),),
    "email_configs": (("auth_password",),),
    "msteams_configs": (("webhook_url",),),
    "msteamsv2_configs": (("webhook_url",),),
    "discord_configs": (("webhook_url",),),
    "telegram_configs": (("bot_token",),),
    "pushover_configs": (("user_key",), ("token",)),
    "victorops_configs": (("api_key",),),
}
HTTP_CONFIG_CREDENTIALS: tuple[tuple[str, ...], ...] = (
    ("http_config", "basic_auth", "password"),
    ("http_config", "authorization", "credentials"),
    ("http_config", "oauth2", "client_secret"),
    ("http_config", "bearer_token"),
)
# Keys the top-level route may set (the chart's default route has exactly these).
ROUTE_KEYS = {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "routes"}


@dataclass(frozen=True)
class MonitoringArgs:
    environment: str
    provider: k8s.Provider
    # Prometheus TSDB retention (a Prometheus duration).
    retention: str = "15d"
    # Prometheus replicas (2 in prod: an HA pair scraping the same targets).
    replicas: int = 1
    # Alertmanager replicas (3 in prod: they gossip to deduplicate notifications).
    alertmanager_replicas: int = 1
    # Each Prometheus replica's volume.
    storage_size: str = "50Gi"
    # None: the cluster's default StorageClass (on aws the KMS-encrypted gp3-encrypted).
    storage_class: str | None = None
    # Alertmanager routing: {"route": {...}, "receivers": [...]} in Alertmanager's own format.
    # Credential fields (e.g. slack api_url, pagerduty routing_key) may be secret Outputs: they go to a
    # Kubernetes Secret, never into the Helm values. None: alerts stay in Alertmanager's UI only.
    alert_receivers: Mapping[str, Any] | None = None
    services: Sequence[ServiceSpec] = ()
    # Platform layers everything here waits for.
    depends_on: Sequence[pulumi.Resource] = ()
    # Per service, what its objects wait for (its namespace): not every service's, which would make
    # each of N services' objects wait on all N namespaces.
    service_ready: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    # Objectives by service name; a service without one gets the default Slo().
    slos: Mapping[str, Slo] = field(default_factory=dict)
    # Room in the namespace's quota for the other layers that run in `monitoring` (logs and traces),
    # added to what this release needs, e.g. {"pods": "8", "limits.cpu": "4", "persistentvolumeclaims": "2"}.
    extra_quota: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _DURATION.match(self.retention):
            raise ValueError(f"retention {self.retention!r} is not a Prometheus duration (e.g. 15d)")
        if self.replicas < 1 or self.alertmanager_replicas < 1:
            raise ValueError("replicas and alertmanager_replicas must be at least 1")
        memory_bytes(self.storage_size)  # raises on a malformed quantity


@dataclass(frozen=True)
class MonitoringHandle:
    """What other layers need: where Prometheus and Alertmanager answer, how Grafana finds dashboards."""

    namespace: str
    prometheus_url: str
    alertmanager_url: str
    dashboard_label: dict[str, str]
    # Grafana provisions data sources from ConfigMaps with this label in `monitoring` (e.g. Loki, Tempo).
    datasource_label: dict[str, str]
    ready: list[pulumi.Resource]


@dataclass(frozen=True)
class ScrapeTarget:
    """A platform component's metrics endpoint."""

    name: str
    kind: Literal["ServiceMonitor", "PodMonitor"]
    # None: any namespace (the layer that runs it decides where).
    namespace: str | None
    selector: Mapping[str, str]
    port_name: str
    port_number: int
    path: str = "/metrics"
    scheme: str | None = None
    params: Mapping[str, Sequence[str]] | None = None
    tls_config: Mapping[str, Any] | None = None
    # Where the monitor object lives: `monitoring`, unless it reads a Secret of the target's namespace.
    home: str = NAMESPACE

    def spec(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "path": self.path,
            "scheme": self.scheme,
            "params": self.params,
            "tls_config": self.tls_config,
        }
        if self.kind == "ServiceMonitor":
            return objects.service_monitor(
                self.name, self.namespace, self.port_name, selector=self.selector, **options
            )
        return objects.pod_monitor(self.selector, self.namespace, self.port_name, **options)


VAULT_NAMESPACE = "vault"
# The Vault layer's serving certificate (cert-manager writes the issuing CA as ca.crt).
VAULT_TLS_SECRET = "vault-tls"  # nosec B105 # noqa: S105 - a Secret's name or key, not a credential
VAULT_SERVER_NAME = "vault.vault.svc"

PLATFORM_TARGETS: tuple[ScrapeTarget, ...] = (
    ScrapeTarget(
        "istiod",
        "ServiceMonitor",
        mesh.ROOT_NAMESPACE,
        {**mesh.ISTIOD_POD_LABELS, "istio": "pilot"},
        "http-monitoring",
        15014,
    ),
    ScrapeTarget("kong", "PodMonitor", gateway.NAMESPACE, gateway.chart_pods("gateway"), "status", 8100),
    ScrapeTarget(
        "cert-manager",
        "PodMonitor",
        certificates.NAMESPACE,
        {labels.NAME: certificates.POD_NAMES["controller"], "app.kubernetes.io/component": "controller"},
        "http-metrics",
        9402,
    ),
    ScrapeTarget(
        "vault",
        "PodMonitor",
        VAULT_NAMESPACE,
        {labels.NAME: "vault", "component": "server"},
        "https",
        8200,
        path="/v1/sys/metrics",
        scheme="https",
        params={"format": ["prometheus"]},
        tls_config={
            "ca": {"secret": {"name": VAULT_TLS_SECRET, "key": "ca.crt"}},
            "serverName": VAULT_SERVER_NAME,
        },
        home=VAULT_NAMESPACE,
    ),
    ScrapeTarget(
        "cnpg-operator", "PodMonitor", "cnpg-system", {labels.NAME: "cloudnative-pg"}, "metrics", 8080
    ),
    # PostgreSQL instances wherever the data layer puts them: cnpg_collector_up, replication lag.
    ScrapeTarget("cnpg-instances", "PodMonitor", None, {"cnpg.io/podRole": "instance"}, "metrics", 9187),
    ScrapeTarget(
        "rabbitmq", "ServiceMonitor", None, {"app.kubernetes.io/component": "rabbitmq"}, "prometheus", 15692
    ),
)


# -- Alertmanager routing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Routing:
    """The Alertmanager config for the values (no credentials) and the credentials for the Secret."""

    config: dict[str, Any]
    credentials: dict[str, pulumi.Input[str]]


def _secret_key(*parts: object) -> str:
    return _SECRET_KEY_CHARS.sub("-", ".".join(str(part) for part in parts))


def _pop_path(node: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    """Remove ``path`` from nested dicts (copied on the way); (found, value)."""
    head, *rest = path
    if head not in node:
        return False, None
    if not rest:
        return True, node.pop(head)
    child = node[head]
    if not isinstance(child, Mapping):
        return False, None
    node[head] = dict(child)
    return _pop_path(node[head], tuple(rest))


def _set_path(node: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _no_outputs(value: Any, where: str) -> None:
    if isinstance(value, pulumi.Output):
        raise ValueError(
            f"{where}: only credential fields may be Outputs (the rest goes into the Helm values)"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            _no_outputs(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _no_outputs(item, f"{where}[{index}]")


def _receiver(receiver: Mapping[str, Any], credentials: dict[str, pulumi.Input[str]]) -> dict[str, Any]:
    """One receiver with each credential replaced by `<field>_file` pointing into the mounted Secret."""
    name = str(receiver["name"])
    result: dict[str, Any] = {"name": name}
    for kind, configs in receiver.items():
        if kind == "name":
            continue
        fields = RECEIVER_CREDENTIALS.get(kind, ()) + HTTP_CONFIG_CREDENTIALS
        moved_configs = []
        for index, config in enumerate(configs):
            moved = dict(config)
            for path in fields:
                found, value = _pop_path(moved, path)
                if found:
                    key = _secret_key(name, kind, index, *path)
                    credentials[key] = value
                    file_path = (*path[:-1], f"{path[-1]}_file")
                    _set_path(moved, file_path, f"{ALERTMANAGER_SECRETS_DIR}/{RECEIVERS_SECRET}/{key}")
            _no_outputs(moved, f"receiver {name}.{kind}[{index}]")
            moved_configs.append(moved)
        result[kind] = moved_configs
    return result


def _receivers_named(route: Mapping[str, Any]) -> Iterator[str]:
    if "receiver" in route:
        yield str(route["receiver"])
    for child in route.get("routes") or []:
        yield from _receivers_named(child)


def alertmanager_routing(alert_receivers: Mapping[str, Any] | None) -> Routing:
    """The chart's `alertmanager.config` route and receivers from ``alert_receivers``.

    Watchdog (always firing, proves the pipeline works) goes to the null receiver; everything else to
    the configured route, or to the null receiver when none is configured.
    """
    given = alert_receivers or {}
    unknown = set(given) - {"route", "receivers"}
    if unknown:
        raise ValueError(f"alert_receivers: unknown keys {sorted(unknown)} (expected route, receivers)")
    route = dict(given.get("route") or {"receiver": NULL_RECEIVER})
    if set(route) - ROUTE_KEYS:
        raise ValueError(f"alert_receivers.route: unknown keys {sorted(set(route) - ROUTE_KEYS)}")
    credentials: dict[str, pulumi.Input[str]] = {}
    receivers = [_receiver(receiver, credentials) for receiver in given.get("receivers") or []]
    names = [receiver["name"] for receiver in receivers]
    if len(set(names)) != len(names) or NULL_RECEIVER in names:
        raise ValueError(f"alert_receivers.receivers: names must be unique and not {NULL_RECEIVER!r}")
    missing = set(_receivers_named(route)) - {*names, NULL_RECEIVER}
    if missing:
        raise ValueError(f"alert_receivers.route: unknown receivers {sorted(missing)}")
    _no_outputs(route, "alert_receivers.route")
    watchdog = {"receiver": NULL_RECEIVER, "matchers": ['alertname = "Watchdog"']}
    route["routes"] = [watchdog, *(route.get("routes") or [])]
    return Routing(
        config={"route": route, "receivers": [{"name": NULL_RECEIVER}, *receivers]},
        credentials=credentials,
    )


# -- chart values ------------------------------------------------------------------------------


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


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
            "securityContext": _pod_security(),
        },
    }


def alertmanager_values(args: MonitoringArgs, routing: Routing) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": args.alertmanager_replicas,
        "storage": _volume_claim(ALERTMANAGER_STORAGE, args.storage_class),
        "resources": dict(ALERTMANAGER_RESOURCES),
        "securityContext": _pod_security(),
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
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
        },
        "resources": dict(GRAFANA_RESOURCES),
        "grafana.ini": {"analytics": {"check_for_updates": False}},
        "sidecar": {
            "resources": dict(GRAFANA_SIDECAR_RESOURCES),
            # Dashboards are ConfigMaps labelled grafana_dashboard: "1" in any namespace.
            "dashboards": {
                "enabled": True,
                "label": next(iter(DASHBOARD_LABEL)),
                "labelValue": DASHBOARD_LABEL["grafana_dashboard"],
                "searchNamespace": "ALL",
            },
            # Data sources only from Grafana's own namespace (the chart's default search scope).
            "datasources": {
                "enabled": True,
                "label": next(iter(DATASOURCE_LABEL)),
                "labelValue": DATASOURCE_LABEL["grafana_datasource"],
            },
        },
    }


def operator_values() -> dict[str, Any]:
    return {
        "resources": dict(OPERATOR_RESOURCES),
        "prometheusConfigReloader": {"resources": dict(CONFIG_RELOADER_RESOURCES)},
        "admissionWebhooks": {
            "patch": {
                "resources": dict(WEBHOOK_JOB_RESOURCES),
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS,
                    "runAsGroup": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        },
    }


def helm_values(args: MonitoringArgs, routing: Routing) -> dict[str, Any]:
    return {
        "prometheus": prometheus_values(args),
        "alertmanager": alertmanager_values(args, routing),
        "grafana": grafana_values(),
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

    def total(kind: str, resource: str) -> int:
        parse = cpu_millicores if resource == "cpu" else memory_bytes
        return sum(b.pods * sum(parse(c[kind][resource]) for c in b.containers) for b in budgets)

    hard = {"pods": str(sum(b.pods for b in budgets))}
    for kind in ("requests", "limits"):
        hard[f"{kind}.cpu"] = f"{total(kind, 'cpu')}m"
        hard[f"{kind}.memory"] = f"{math.ceil(total(kind, 'memory') / 2**20)}Mi"
    storage = (
        args.replicas * memory_bytes(args.storage_size)
        + args.alertmanager_replicas * memory_bytes(ALERTMANAGER_STORAGE)
        + memory_bytes(GRAFANA_STORAGE)
    )
    own = hard | {
        "persistentvolumeclaims": str(args.replicas + args.alertmanager_replicas + 1),
        "requests.storage": f"{math.ceil(storage / 2**30)}Gi",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    return quota.combine(own, args.extra_quota)


def _selector(match_labels: Mapping[str, str] | None = None) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match_labels) if match_labels else None)


def _tcp(ports: Sequence[int]) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


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


def _peers(*pods: Mapping[str, str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=_selector(selected)) for selected in pods]


def _gossip() -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=ALERTMANAGER_CLUSTER_PORT)
        for protocol in ("TCP", "UDP")
    ]


def _ingress(
    pods: Mapping[str, str], *rules: k8s.networking.v1.NetworkPolicyIngressRuleArgs
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(pods), policy_types=["Ingress"], ingress=list(rules)
    )


def _from(
    peers: list[k8s.networking.v1.NetworkPolicyPeerArgs] | None,
    ports: list[k8s.networking.v1.NetworkPolicyPortArgs],
) -> k8s.networking.v1.NetworkPolicyIngressRuleArgs:
    return k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers, ports=ports)


def network_policies() -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """The monitoring namespace's allows, on top of the baseline's default-deny and DNS: each of the
    release's components is reachable by the components that use it, on its own ports. (Other layers
    that run in this namespace, logs and traces, add their own.)"""
    return {
        # Grafana queries it; the replicas of an HA pair scrape each other.
        "allow-prometheus": _ingress(
            PROMETHEUS_PODS,
            _from(_peers(GRAFANA_PODS, PROMETHEUS_PODS), _tcp([PROMETHEUS_WEB_PORT, CONFIG_RELOADER_PORT])),
        ),
        # Prometheus sends alerts, Grafana reads them; replicas gossip to deduplicate notifications.
        "allow-alertmanager": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=_selector(ALERTMANAGER_PODS),
            policy_types=["Ingress", "Egress"],
            ingress=[
                _from(
                    _peers(PROMETHEUS_PODS, GRAFANA_PODS), _tcp([ALERTMANAGER_WEB_PORT, CONFIG_RELOADER_PORT])
                ),
                _from(_peers(ALERTMANAGER_PODS), _gossip()),
            ],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=_peers(ALERTMANAGER_PODS), ports=_gossip())
            ],
        ),
        "allow-grafana": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=_selector(GRAFANA_PODS),
            policy_types=["Ingress", "Egress"],
            ingress=[_from(_peers(PROMETHEUS_PODS), _tcp([GRAFANA_PORT]))],
            egress=[
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=_peers(PROMETHEUS_PODS), ports=_tcp([PROMETHEUS_WEB_PORT])
                ),
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=_peers(ALERTMANAGER_PODS), ports=_tcp([ALERTMANAGER_WEB_PORT])
                ),
            ],
        ),
        "allow-kube-state-metrics": _ingress(KSM_PODS, _from(_peers(PROMETHEUS_PODS), _tcp(KSM_PORTS))),
        # The API server calls the admission webhook (it is not a pod: no selector names it); the same
        # port serves the operator's metrics.
        "allow-operator-webhook": _ingress(OPERATOR_PODS, _from(None, _tcp([OPERATOR_WEBHOOK_PORT]))),
        # The API server (service discovery, the operator, Grafana's sidecars, kube-state-metrics) and
        # the HTTPS endpoints of alert receivers; neither has addresses known in advance.
        "allow-https-egress": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=_selector(),
            policy_types=["Egress"],
            egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=_tcp(API_SERVER_PORTS))],
        ),
        # Prometheus scrapes pods in every namespace and the kubelets on the nodes, on these ports only.
        "allow-scrape": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=_selector(PROMETHEUS_PODS),
            policy_types=["Egress"],
            egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(ports=_tcp(scrape_ports()))],
        ),
    }


def allow_scrape_from_prometheus(service: str) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """In a service's namespace: Prometheus reaches the sidecars' metrics port, nothing else."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(labels.selector(service)),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=_selector({labels.NAMESPACE_NAME: NAMESPACE}),
                        pod_selector=_selector(PROMETHEUS_PODS),
                    )
                ],
                ports=_tcp([objects.MESH_METRICS_PORT_NUMBER]),
            )
        ],
    )


# -- the component -----------------------------------------------------------------------------


class Monitoring(pulumi.ComponentResource):
    handle: MonitoringHandle

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:observability:Monitoring", name, {}, opts)
        self._name = name
        self._args = args
        common = labels.common(args.environment) | {labels.NAME: "monitoring"}
        self._common = common

        # Not injected into the mesh: Prometheus scrapes sidecars and nodes in plain HTTP from outside it.
        created = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=common,
            quota=quota_hard(args),
            container_defaults=ContainerDefaults(
                requests=DEFAULT_CONTAINER["requests"], limits=DEFAULT_CONTAINER["limits"]
            ),
            policies=network_policies(),
            opts=self._on_cluster(),
        )
        ns, baseline = created.name, created.resources

        routing = alertmanager_routing(args.alert_receivers)
        secrets = [self._grafana_admin(ns)]
        if routing.credentials:
            secrets.append(self._secret("alertmanager-receivers", RECEIVERS_SECRET, ns, routing.credentials))

        release = charts.release(
            f"{name}-release",
            charts.Chart(CHART_REPOSITORY, CHART, CHART_VERSION),
            release_name=RELEASE_NAME,
            namespace=ns,
            values=helm_values(args, routing),
            opts=self._on_cluster([*args.depends_on, *baseline, *secrets]),
        )

        # The release installs the CRDs every monitor and rule below needs.
        self._custom(
            "platform-rules",
            "PrometheusRule",
            "rampart-platform",
            ns,
            spec=objects.platform_rules(),
            after=release,
        )
        self._dashboard(
            "platform", "rampart-platform-dashboard", ns, objects.platform_dashboard(args.services)
        )
        for target in PLATFORM_TARGETS:
            home = ns if target.home == NAMESPACE else target.home
            self._custom(
                f"{target.name}-monitor", target.kind, target.name, home, spec=target.spec(), after=release
            )
        for spec in args.services:
            self._service(spec, release)

        self.handle = MonitoringHandle(
            namespace=NAMESPACE,
            prometheus_url=f"http://{RELEASE_NAME}-prometheus.{NAMESPACE}.svc:9090",
            alertmanager_url=f"http://{RELEASE_NAME}-alertmanager.{NAMESPACE}.svc:9093",
            dashboard_label=dict(DASHBOARD_LABEL),
            datasource_label=dict(DATASOURCE_LABEL),
            ready=[release],
        )
        self.register_outputs(
            {
                "namespace": ns,
                "prometheusUrl": self.handle.prometheus_url,
                "alertmanagerUrl": self.handle.alertmanager_url,
                "grafanaAdminSecret": GRAFANA_ADMIN_SECRET,
            }
        )

    def _on_cluster(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        # Every Kubernetes object names its provider: none may fall back to the ambient one.
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=list(depends_on))

    def _meta(
        self, object_name: str, namespace: pulumi.Input[str], **extra: str
    ) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=self._common | extra)

    def _secret(
        self,
        resource: str,
        object_name: str,
        namespace: pulumi.Input[str],
        data: Mapping[str, pulumi.Input[str]],
    ) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            f"{self._name}-{resource}",
            metadata=self._meta(object_name, namespace),
            type="Opaque",
            # Secret outputs whatever they were handed as: the state and the export keep them encrypted.
            string_data={key: pulumi.Output.secret(value) for key, value in data.items()},
            opts=self._on_cluster(),
        )

    def _grafana_admin(self, namespace: pulumi.Input[str]) -> k8s.core.v1.Secret:
        password = random.RandomPassword(
            f"{self._name}-grafana-admin", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        return self._secret(
            "grafana-admin",
            GRAFANA_ADMIN_SECRET,
            namespace,
            {GRAFANA_USER_KEY: GRAFANA_ADMIN_USER, GRAFANA_PASSWORD_KEY: password.result},
        )

    def _custom(
        self,
        resource: str,
        kind: str,
        object_name: str,
        namespace: pulumi.Input[str],
        *,
        spec: Mapping[str, Any],
        after: pulumi.Resource,
        extra: Sequence[pulumi.Resource] = (),
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{self._name}-{resource}",
            api_version=MONITORING_API,
            kind=kind,
            metadata=self._meta(object_name, namespace),
            spec=dict(spec),
            opts=self._on_cluster([*self._args.depends_on, after, *extra]),
        )

    def _dashboard(
        self,
        resource: str,
        object_name: str,
        namespace: pulumi.Input[str],
        dashboard: Mapping[str, Any],
        extra: Sequence[pulumi.Resource] = (),
    ) -> k8s.core.v1.ConfigMap:
        return k8s.core.v1.ConfigMap(
            f"{self._name}-{resource}-dashboard",
            metadata=self._meta(object_name, namespace, **DASHBOARD_LABEL),
            data={f"{object_name}.json": json_text(dashboard)},
            opts=self._on_cluster([*self._args.depends_on, *extra]),
        )

    def _slo(self, spec: ServiceSpec) -> Slo:
        return self._args.slos.get(spec.name, Slo())

    def _service(self, spec: ServiceSpec, release: pulumi.Resource) -> None:
        """In the service's namespace: its scrape config, SLO alerts, dashboard and the network allow."""
        service = namespace = spec.name
        ready = list(self._args.service_ready.get(service, ()))
        self._custom(
            f"{service}-podmonitor",
            "PodMonitor",
            service,
            namespace,
            spec=objects.mesh_pod_monitor(service, namespace),
            after=release,
            extra=ready,
        )
        self._custom(
            f"{service}-slo",
            "PrometheusRule",
            f"{service}-slo",
            namespace,
            spec=objects.service_rules(spec, self._slo(spec)),
            after=release,
            extra=ready,
        )
        self._dashboard(
            service,
            f"{service}-dashboard",
            namespace,
            objects.service_dashboard(spec, self._slo(spec)),
            extra=ready,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{service}-allow-metrics-scrape",
            metadata=self._meta("allow-metrics-scrape", namespace),
            spec=allow_scrape_from_prometheus(service),
            opts=self._on_cluster([*self._args.depends_on, *ready]),
        )


def json_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True)
