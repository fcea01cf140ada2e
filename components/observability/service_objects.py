"""Monitoring objects as plain data: scrape configs, alert rules and Grafana dashboards.

Pure builders (no Pulumi): each returns the ``spec`` of a Prometheus Operator object or a Grafana
dashboard JSON model, so they can be tested and reused without the mocks.

How services are scraped under STRICT mTLS: every service pod carries the Istio sidecar, whose own
Prometheus endpoint (container port ``http-envoy-prom``, 15090, ``/stats/prometheus``) is served by
the sidecar itself and is not captured by the inbound mTLS listener. Prometheus (outside the mesh)
scrapes it in plain HTTP through a PodMonitor, so STRICT PeerAuthentication and the allow-nothing
AuthorizationPolicy stay untouched. The endpoint carries Istio's standard metrics
(``istio_requests_total``, ``istio_request_duration_milliseconds``), which the SLO alerts and the
dashboards are built on. Scraping the application port instead would need a client certificate from
the mesh (or the metrics merge on 15020 plus annotations on every pod); none is used.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.core import labels
from rampart.config.models import ServiceSpec

MONITORING_API = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "30s"
# The sidecar's own metrics endpoint (see the module docstring).
MESH_METRICS_PORT = "http-envoy-prom"
MESH_METRICS_PORT_NUMBER = 15090
MESH_METRICS_PATH = "/stats/prometheus"

# Where the runbooks are published: one page per alert, named after the alert in kebab case.
RUNBOOK_BASE_URL = "https://github.com/rampart-platform/rampart/blob/main/docs/runbooks"

# kube-prometheus-stack provisions its Prometheus data source under this uid.
PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
DASHBOARD_SCHEMA_VERSION = 39
# Grafana caps dashboard uids at 40 characters.
MAX_UID_LENGTH = 40

# Multi-window burn rate (Google SRE workbook): 14.4x the budget spends 2% of a 30-day budget in an hour.
FAST_BURN_FACTOR = 14.4
CERTIFICATE_WARNING_DAYS = 14
REPLICATION_LAG_SECONDS = 30
RESTARTS_IN_15M = 3
VOLUME_FREE_FRACTION = 0.1


@dataclass(frozen=True)
class Slo:
    """A service's objectives: availability in percent of requests, and p99 latency."""

    availability: float = 99.9
    latency_p99_ms: int = 300

    def __post_init__(self) -> None:
        if not 0 < self.availability < 100:
            raise ValueError(f"availability {self.availability} must be between 0 and 100 (exclusive)")
        if self.latency_p99_ms <= 0:
            raise ValueError(f"latency_p99_ms {self.latency_p99_ms} must be positive")

    @property
    def error_budget(self) -> float:
        """The fraction of requests allowed to fail (0.001 for 99.9)."""
        return round(1 - self.availability / 100, 10)


# -- scrape configs ----------------------------------------------------------------------------


def _namespaces(namespace: str | None) -> dict[str, Any]:
    # None: every namespace (targets whose namespace another layer decides).
    return {"any": True} if namespace is None else {"matchNames": [namespace]}


def _endpoint(
    port_name: str,
    path: str,
    scheme: str | None,
    params: Mapping[str, Sequence[str]] | None,
    tls_config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"port": port_name, "path": path, "interval": SCRAPE_INTERVAL}
    if scheme is not None:
        endpoint["scheme"] = scheme
    if params:
        endpoint["params"] = {key: list(value) for key, value in params.items()}
    if tls_config is not None:
        endpoint["tlsConfig"] = dict(tls_config)
    return endpoint


def service_monitor(
    service: str,
    namespace: str | None,
    port_name: str = "http",
    *,
    selector: Mapping[str, str] | None = None,
    path: str = "/metrics",
    scheme: str | None = None,
    params: Mapping[str, Sequence[str]] | None = None,
    tls_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """ServiceMonitor spec: the Services labelled ``app.kubernetes.io/name: <service>`` (or
    ``selector``) in ``namespace``. For targets outside the mesh, or with TLS of their own; mesh
    services are scraped through their sidecar (:func:`mesh_pod_monitor`)."""
    return {
        "selector": {"matchLabels": dict(selector or labels.selector(service))},
        "namespaceSelector": _namespaces(namespace),
        "endpoints": [_endpoint(port_name, path, scheme, params, tls_config)],
    }


def pod_monitor(
    selector: Mapping[str, str],
    namespace: str | None,
    port_name: str,
    *,
    path: str = "/metrics",
    scheme: str | None = None,
    params: Mapping[str, Sequence[str]] | None = None,
    tls_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """PodMonitor spec: the named container port of the pods ``selector`` picks in ``namespace``."""
    return {
        "selector": {"matchLabels": dict(selector)},
        "namespaceSelector": _namespaces(namespace),
        "podMetricsEndpoints": [_endpoint(port_name, path, scheme, params, tls_config)],
    }


def mesh_pod_monitor(service: str, namespace: str) -> dict[str, Any]:
    """How every service is scraped: its pods' sidecar metrics endpoint (works under STRICT mTLS)."""
    return pod_monitor(labels.selector(service), namespace, MESH_METRICS_PORT, path=MESH_METRICS_PATH)


# -- PromQL ------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A threshold as PromQL reads it, without float noise (0.001, not 0.0010000000000000009)."""
    return f"{value:.6g}"


def _requests(service: str, namespace: str, extra: str = "") -> str:
    # Server-side view: what the service's own sidecar saw, whoever called it.
    return (
        f'istio_requests_total{{reporter="destination",destination_service_namespace="{namespace}",'
        f'destination_service_name="{service}"{extra}}}'
    )


def request_rate(service: str, namespace: str, window: str = "5m", by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({_requests(service, namespace)}[{window}]))"


def error_ratio(service: str, namespace: str, window: str = "5m") -> str:
    """5xx responses over all requests (NaN, so no alert, without traffic)."""
    failed = _requests(service, namespace, ',response_code=~"5.."')
    return f"sum(rate({failed}[{window}])) / sum(rate({_requests(service, namespace)}[{window}]))"


def latency_quantile(service: str, namespace: str, quantile: float, window: str = "5m") -> str:
    buckets = (
        f'istio_request_duration_milliseconds_bucket{{reporter="destination",'
        f'destination_service_namespace="{namespace}",destination_service_name="{service}"}}'
    )
    return f"histogram_quantile({_number(quantile)}, sum by (le) (rate({buckets}[{window}])))"


def _hpa(metric: str, service: str, namespace: str) -> str:
    return f'{metric}{{namespace="{namespace}",horizontalpodautoscaler="{service}"}}'


def _saturation(resource: str, usage: str, service: str, namespace: str) -> str:
    """Usage of the service's own container over its limit (the sidecar is not counted)."""
    limits = (
        f'kube_pod_container_resource_limits{{namespace="{namespace}",container="{service}",'
        f'resource="{resource}"}}'
    )
    return f"sum({usage}) / sum({limits})"


def cpu_saturation(service: str, namespace: str) -> str:
    usage = f'rate(container_cpu_usage_seconds_total{{namespace="{namespace}",container="{service}"}}[5m])'
    return _saturation("cpu", usage, service, namespace)


def memory_saturation(service: str, namespace: str) -> str:
    usage = f'container_memory_working_set_bytes{{namespace="{namespace}",container="{service}"}}'
    return _saturation("memory", usage, service, namespace)


# -- alert rules -------------------------------------------------------------------------------


def runbook_url(alert: str, base: str = RUNBOOK_BASE_URL) -> str:
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", alert).lower()
    return f"{base}/{kebab}.md"


def alert(
    name: str,
    expr: str,
    *,
    severity: str,
    summary: str,
    description: str,
    for_: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
    runbook_base: str = RUNBOOK_BASE_URL,
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "alert": name,
        "expr": expr,
        "labels": {"severity": severity, **(extra_labels or {})},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(name, runbook_base),
        },
    }
    if for_ is not None:
        rule["for"] = for_
    return rule


def service_rules(
    spec: ServiceSpec,
    slo: Slo,
    *,
    namespace: str | None = None,
    runbook_base: str = RUNBOOK_BASE_URL,
) -> dict[str, Any]:
    """PrometheusRule spec: the service's SLO alerts, labelled with the service for routing."""
    service = spec.name
    ns = namespace or service
    budget = slo.error_budget
    fast = FAST_BURN_FACTOR * budget
    rule = functools.partial(
        alert, extra_labels={"service": service, "namespace": ns}, runbook_base=runbook_base
    )
    current = _hpa("kube_horizontalpodautoscaler_status_current_replicas", service, ns)
    maximum = _hpa("kube_horizontalpodautoscaler_spec_max_replicas", service, ns)
    restarts = f'increase(kube_pod_container_status_restarts_total{{namespace="{ns}"}}[15m])'
    rules = [
        # Paging: the budget of a 30-day window would be gone in about two days.
        rule(
            "ServiceErrorBudgetFastBurn",
            f"({error_ratio(service, ns, '5m')}) > {_number(fast)}\n"
            f"and\n({error_ratio(service, ns, '1h')}) > {_number(fast)}",
            severity="critical",
            for_="2m",
            summary=f"{service} is burning its error budget {FAST_BURN_FACTOR}x too fast",
            description=f"{service}: 5xx ratio {{{{ $value | humanizePercentage }}}} over 5m and 1h; "
            f"the {slo.availability}% objective allows {_number(budget * 100)}%.",
        ),
        rule(
            "ServiceErrorRatioAboveSlo",
            f"({error_ratio(service, ns, '30m')}) > {_number(budget)}",
            severity="warning",
            for_="15m",
            summary=f"{service} fails more requests than its SLO allows",
            description=f"{service}: 5xx ratio {{{{ $value | humanizePercentage }}}} over 30m, above the "
            f"{_number(budget * 100)}% budget of its {slo.availability}% objective.",
        ),
        rule(
            "ServiceLatencyP99AboveSlo",
            f"{latency_quantile(service, ns, 0.99)} > {slo.latency_p99_ms}",
            severity="warning",
            for_="10m",
            summary=f"{service} p99 latency is above {slo.latency_p99_ms} ms",
            description=f"{service}: p99 latency {{{{ $value | humanize }}}} ms over 5m; the objective "
            f"is {slo.latency_p99_ms} ms.",
        ),
        rule(
            "ServiceAtMaxReplicas",
            f"{current}\n>= on (namespace, horizontalpodautoscaler)\n{maximum}",
            severity="warning",
            for_="15m",
            summary=f"{service} has run at its maximum replicas for 15 minutes",
            description=f"{service}: the autoscaler cannot add pods; raise replicas.max (now "
            f"{spec.replicas.max}) or the resources before latency and errors follow.",
        ),
        rule(
            "ServiceContainerRestarting",
            f"sum by (namespace, pod, container) ({restarts}) > {RESTARTS_IN_15M}",
            severity="warning",
            summary=f"{service} containers keep restarting",
            description="{{ $labels.pod }}/{{ $labels.container }} restarted {{ $value | humanize }} "
            "times in 15 minutes (crash loop, failing liveness probe or OOM kill).",
        ),
    ]
    return {"groups": [{"name": f"{service}.slo", "rules": rules}]}


def platform_rules(*, runbook_base: str = RUNBOOK_BASE_URL, cloudnative_pg: bool = True) -> dict[str, Any]:
    """PrometheusRule spec: the platform's own failure modes, labelled with the component. The
    database alerts read CloudNativePG's exporter: only where CloudNativePG runs (on aws RDS has no
    such series, and an alert on a series that never exists can never fire)."""

    def rule(component: str, name: str, expr: str, **details: str) -> dict[str, Any]:
        return alert(
            name,
            expr,
            severity=details["severity"],
            summary=details["summary"],
            description=details["description"],
            for_=details["for_"],
            extra_labels={"component": component},
            runbook_base=runbook_base,
        )

    rules = [
        rule(
            "vault",
            "VaultSealed",
            "vault_core_unsealed == 0",
            severity="critical",
            for_="1m",
            summary="Vault is sealed",
            description="{{ $labels.pod }} is sealed: no secret can be read or issued until it is unsealed.",
        ),
        rule(
            "cert-manager",
            "CertificateExpiringSoon",
            "certmanager_certificate_expiration_timestamp_seconds - time() "
            f"< {CERTIFICATE_WARNING_DAYS} * 24 * 3600",
            severity="warning",
            for_="1h",
            summary=f"A certificate expires within {CERTIFICATE_WARNING_DAYS} days",
            description="{{ $labels.namespace }}/{{ $labels.name }} expires in "
            "{{ $value | humanizeDuration }}; cert-manager should have renewed it already.",
        ),
        rule(
            "kubernetes",
            "NodeNotReady",
            'kube_node_status_condition{condition="Ready",status="true"} == 0',
            severity="warning",
            for_="5m",
            summary="A node is not ready",
            description="{{ $labels.node }} has not been Ready for 5 minutes; its pods are being evicted.",
        ),
        rule(
            "kubernetes",
            "VolumeNearlyFull",
            "kubelet_volume_stats_available_bytes / kubelet_volume_stats_capacity_bytes"
            f" < {_number(VOLUME_FREE_FRACTION)}",
            severity="warning",
            for_="5m",
            summary=f"A volume has less than {_number(VOLUME_FREE_FRACTION * 100)}% free space",
            description="{{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} has "
            "{{ $value | humanizePercentage }} free.",
        ),
        rule(
            "database",
            "DatabaseDown",
            "cnpg_collector_up == 0",
            severity="critical",
            for_="1m",
            summary="A PostgreSQL instance is down",
            description="{{ $labels.namespace }}/{{ $labels.pod }}: the CloudNativePG exporter cannot "
            "reach PostgreSQL.",
        ),
        rule(
            "database",
            "DatabaseReplicationLag",
            f"cnpg_pg_replication_lag > {REPLICATION_LAG_SECONDS}",
            severity="warning",
            for_="5m",
            summary=f"A PostgreSQL replica lags more than {REPLICATION_LAG_SECONDS}s",
            description="{{ $labels.namespace }}/{{ $labels.pod }} is {{ $value | humanizeDuration }} "
            "behind its primary; a failover now would lose those writes.",
        ),
    ]
    if not cloudnative_pg:
        rules = [r for r in rules if r["labels"].get("component") != "database"]
    return {"groups": [{"name": "rampart.platform", "rules": rules}]}


# -- dashboards --------------------------------------------------------------------------------


def dashboard_uid(name: str) -> str:
    """A stable uid from the dashboard's name (Grafana allows at most 40 characters)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if len(slug) <= MAX_UID_LENGTH:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"{slug[: MAX_UID_LENGTH - 9]}-{digest}"


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {"refId": ref, "expr": expr, "legendFormat": legend, "datasource": dict(PROMETHEUS_DATASOURCE)}


@dataclass(frozen=True)
class _Panel:
    title: str
    unit: str
    targets: tuple[tuple[str, str], ...]  # (expr, legend)
    threshold: float | None = None
    kind: str = "timeseries"


def _panel_json(panel_id: int, panel: _Panel, *, x: int, y: int, w: int, h: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.threshold is not None:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}, {"color": "red", "value": panel.threshold}],
        }
        if panel.kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "datasource": dict(PROMETHEUS_DATASOURCE),
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "targets": [
            _target(chr(ord("A") + index), expr, legend) for index, (expr, legend) in enumerate(panel.targets)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
    }


def _service_panels(spec: ServiceSpec, slo: Slo, namespace: str) -> list[_Panel]:
    service = spec.name
    hpa = "kube_horizontalpodautoscaler_"
    return [
        _Panel(
            "Request rate",
            "reqps",
            ((request_rate(service, namespace, by="response_code"), "{{response_code}}"),),
        ),
        _Panel(
            "Error ratio (5xx)", "percentunit", ((error_ratio(service, namespace), "5xx"),), slo.error_budget
        ),
        _Panel(
            "Latency p50 / p99",
            "ms",
            (
                (latency_quantile(service, namespace, 0.5), "p50"),
                (latency_quantile(service, namespace, 0.99), "p99"),
            ),
            float(slo.latency_p99_ms),
        ),
        _Panel(
            "CPU and memory vs limits",
            "percentunit",
            ((cpu_saturation(service, namespace), "cpu"), (memory_saturation(service, namespace), "memory")),
            1.0,
        ),
        _Panel(
            "Pods vs autoscaler bounds",
            "short",
            (
                (_hpa(f"{hpa}status_current_replicas", service, namespace), "current"),
                (_hpa(f"{hpa}spec_min_replicas", service, namespace), "min"),
                (_hpa(f"{hpa}spec_max_replicas", service, namespace), "max"),
            ),
        ),
    ]


def _dashboard(name: str, title: str, tags: Sequence[str], panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": dashboard_uid(name),
        "title": title,
        "tags": list(tags),
        "timezone": "utc",
        "schemaVersion": DASHBOARD_SCHEMA_VERSION,
        "version": 1,
        # Managed as code: edits in the UI would be lost on the next deploy.
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def service_dashboard(
    spec: ServiceSpec, slo: Slo | None = None, *, namespace: str | None = None
) -> dict[str, Any]:
    """Grafana dashboard of one service: traffic, errors, latency, saturation, scaling."""
    objective = slo or Slo()
    panels = [
        _panel_json(index + 1, panel, x=(index % 2) * 12, y=(index // 2) * 8, w=12, h=8)
        for index, panel in enumerate(_service_panels(spec, objective, namespace or spec.name))
    ]
    return _dashboard(f"rampart-service-{spec.name}", f"Service: {spec.name}", ["rampart", "service"], panels)


def _platform_panels() -> list[_Panel]:
    ready = 'kube_node_status_condition{condition="Ready",status="true"}'
    return [
        _Panel("Nodes not ready", "short", ((f"count({ready} == 0) or vector(0)", "nodes"),), 1.0, "stat"),
        _Panel(
            "Sealed Vault pods",
            "short",
            (("count(vault_core_unsealed == 0) or vector(0)", "sealed"),),
            1.0,
            "stat",
        ),
        _Panel(
            "Certificates expiring < 14d",
            "short",
            (
                (
                    "count(certmanager_certificate_expiration_timestamp_seconds - time() "
                    f"< {CERTIFICATE_WARNING_DAYS} * 24 * 3600) or vector(0)",
                    "certificates",
                ),
            ),
            1.0,
            "stat",
        ),
        _Panel(
            "Firing alerts",
            "short",
            (('count(ALERTS{alertstate="firing",alertname!="Watchdog"}) or vector(0)', "alerts"),),
            1.0,
            "stat",
        ),
    ]


def _overview_panels(spec: ServiceSpec, slo: Slo) -> list[_Panel]:
    service, namespace = spec.name, spec.name
    return [
        _Panel("Requests", "reqps", ((request_rate(service, namespace), "req/s"),)),
        _Panel("5xx ratio", "percentunit", ((error_ratio(service, namespace), "5xx"),), slo.error_budget),
        _Panel(
            "p99 latency",
            "ms",
            ((latency_quantile(service, namespace, 0.99), "p99"),),
            float(slo.latency_p99_ms),
        ),
        _Panel(
            "Pods",
            "short",
            ((_hpa("kube_horizontalpodautoscaler_status_current_replicas", service, namespace), "pods"),),
        ),
    ]


def _row(panel_id: int, title: str, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
        "panels": [],
    }


def platform_dashboard(services: Sequence[ServiceSpec], slo: Slo | None = None) -> dict[str, Any]:
    """Grafana overview: platform health on top, then a row per service with its golden signals."""
    objective = slo or Slo()
    panels: list[dict[str, Any]] = []
    y = 0

    def add_row(title: str, row_panels: list[_Panel], height: int) -> None:
        nonlocal y
        panels.append(_row(len(panels) + 1, title, y))
        y += 1
        width = 24 // len(row_panels)
        for index, panel in enumerate(row_panels):
            panels.append(_panel_json(len(panels) + 1, panel, x=index * width, y=y, w=width, h=height))
        y += height

    add_row("Platform", _platform_panels(), 4)
    for spec in sorted(services, key=lambda s: s.name):
        add_row(spec.name, _overview_panels(spec, objective), 6)
    return _dashboard("rampart-platform", "Rampart platform", ["rampart", "platform"], panels)
