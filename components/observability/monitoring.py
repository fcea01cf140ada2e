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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.core import charts, labels
from components.core.base import InClusterArgs, InClusterComponent
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.observability import NAMESPACE
from components.observability import service_objects as objects
from components.observability.alerting import RECEIVERS_SECRET, alertmanager_routing
from components.observability.prometheus_stack import (
    CHART,
    CHART_REPOSITORY,
    CHART_VERSION,
    DASHBOARD_LABEL,
    DATASOURCE_LABEL,
    DEFAULT_CONTAINER,
    GRAFANA_ADMIN_SECRET,
    GRAFANA_ADMIN_USER,
    GRAFANA_PASSWORD_KEY,
    GRAFANA_SIDECAR_ROLE,
    GRAFANA_SIDECAR_RULES,
    GRAFANA_USER_KEY,
    MONITORING_API,
    RELEASE_NAME,
    allow_scrape_from_prometheus,
    helm_values,
    network_policies,
    prometheus_admission,
    quota_hard,
)
from components.observability.scrape_targets import (
    CLOUDNATIVE_PG,
    IN_CLUSTER_BROKER,
    PLATFORM_TARGETS,
    ScrapeTarget,
)
from components.observability.service_objects import Slo
from rampart.config.models import ServiceSpec
from rampart.config.types import memory_bytes

_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs(InClusterArgs):
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
    # Per service, what its objects wait for (its namespace): not every service's, which would make
    # each of N services' objects wait on all N namespaces.
    service_ready: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    # Objectives by service name; a service without one gets the default Slo().
    slos: Mapping[str, Slo] = field(default_factory=dict)
    # Room in the namespace's quota for the other layers that run in `monitoring` (logs and traces),
    # added to what this release needs, e.g. {"pods": "8", "limits.cpu": "4", "persistentvolumeclaims": "2"}.
    extra_quota: Mapping[str, str] = field(default_factory=dict)
    # The in-cluster systems that run in this stack (scrape_targets.CLOUDNATIVE_PG,
    # IN_CLUSTER_BROKER): their monitors, alerts and scrape admissions exist only with them.
    in_cluster_systems: frozenset[str] = frozenset({CLOUDNATIVE_PG, IN_CLUSTER_BROKER})

    def targets(self) -> list[ScrapeTarget]:
        return [t for t in PLATFORM_TARGETS if t.only_with is None or t.only_with in self.in_cluster_systems]

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


# -- the component -----------------------------------------------------------------------------


class Monitoring(InClusterComponent):
    handle: MonitoringHandle

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:observability:Monitoring", name, provider=args.provider, opts=opts)
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
            container_defaults=ContainerDefaults.of(DEFAULT_CONTAINER),
            policies=network_policies(),
            opts=self.on_cluster(),
        )
        ns, baseline = created.name, created.resources

        routing = alertmanager_routing(args.alert_receivers)
        secrets: list[pulumi.Resource] = [self._grafana_admin(ns), self._grafana_sidecar_role()]
        if routing.credentials:
            secrets.append(self._secret("alertmanager-receivers", RECEIVERS_SECRET, ns, routing.credentials))

        release = charts.release(
            f"{name}-release",
            charts.Chart(CHART_REPOSITORY, CHART, CHART_VERSION),
            release_name=RELEASE_NAME,
            namespace=ns,
            values=helm_values(args, routing),
            opts=self.on_cluster([*args.depends_on, *baseline, *secrets]),
        )

        # The release installs the CRDs every monitor and rule below needs.
        self._custom(
            "platform-rules",
            "PrometheusRule",
            "rampart-platform",
            ns,
            spec=objects.platform_rules(cloudnative_pg=CLOUDNATIVE_PG in args.in_cluster_systems),
            after=release,
        )
        self._dashboard(
            "platform", "rampart-platform-dashboard", ns, objects.platform_dashboard(args.services)
        )
        for target in args.targets():
            home = ns if target.home == NAMESPACE else target.home
            self._custom(
                f"{target.name}-monitor", target.kind, target.name, home, spec=target.spec(), after=release
            )
            if target.admit:
                self._admit(target)
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
            opts=self.on_cluster(),
        )

    def _grafana_sidecar_role(self) -> k8s.rbac.v1.ClusterRole:
        """What Grafana's dashboard and data source sidecars read: ConfigMaps, never Secrets (issue 14).
        The release binds it (grafana.rbac.useExistingClusterRole) instead of the chart's own role."""
        return k8s.rbac.v1.ClusterRole(
            f"{self._name}-grafana-sidecar-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_SIDECAR_ROLE, labels=self._common),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=rule["apiGroups"], resources=rule["resources"], verbs=rule["verbs"]
                )
                for rule in GRAFANA_SIDECAR_RULES
            ],
            opts=self.on_cluster(),
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
            opts=self.on_cluster([*self._args.depends_on, after, *extra]),
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
            opts=self.on_cluster([*self._args.depends_on, *extra]),
        )

    def _admit(self, target: ScrapeTarget) -> None:
        """Prometheus into the target's namespace on its metrics port (issue 14: the alerts built on
        these monitors could never fire through the namespaces' default deny)."""
        # Without a fixed namespace (CloudNativePG's instances): each service's own, with its database.
        namespaces = (
            [(target.namespace, list(self._args.depends_on))]
            if target.namespace
            else [
                (s.name, [*self._args.depends_on, *self._args.service_ready.get(s.name, ())])
                for s in self._args.services
                if s.database
            ]
        )
        for namespace, ready in namespaces:
            prefix = "" if target.namespace else f"{namespace}-"
            k8s.networking.v1.NetworkPolicy(
                f"{self._name}-{prefix}{target.name}-allow-prometheus",
                metadata=self._meta(f"allow-prometheus-{target.name}", namespace),
                spec=prometheus_admission(target),
                opts=self.on_cluster(ready),
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
            opts=self.on_cluster([*self._args.depends_on, *ready]),
        )


def json_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True)
