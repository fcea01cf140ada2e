"""Monitoring (kube-prometheus-stack) built alone under mocks with an explicit Kubernetes provider and
two services: chart values against the chart defaults, secrets, scrape configs, SLO alerts,
dashboards, schemas and the namespace policies."""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.observability import alerting, prometheus_stack, scrape_targets
from components.observability import service_objects as objects
from components.observability.alerting import alertmanager_routing
from components.observability.monitoring import Monitoring, MonitoringArgs
from components.observability.service_objects import Slo
from policies import catalog
from policies.model import Resource
from rampart.config.models import ServiceSpec
from rampart.offline import values as stored
from rampart.offline.manifests import to_manifest
from rampart.offline.mocks import PLACEHOLDER_SECRET
from rampart.offline.plan import Plan
from tests.support import schemas
from tests.support.harness import plan_of
from tests.support.helm import chart_defaults, unknown_release_keys
from tests.support.plans import K8S_PROVIDER, RELEASE, core_problems, name_of, network_policies, of, one
from tests.support.reference import crd_schemas, helm_values

SLACK_URL = "https://hooks.slack.com/services/T000/B000/do-not-leak"
PAGERDUTY_KEY = "pagerduty-routing-key-do-not-leak"

ORDERS = ServiceSpec.model_validate(
    {"name": "orders", "image": "ghcr.io/acme/orders:1.4.2", "replicas": {"min": 2, "max": 6}}
)
PAYMENTS = ServiceSpec.model_validate({"name": "payments", "image": "ghcr.io/acme/payments:2.0.1"})
SERVICES = [ORDERS, PAYMENTS]
PAYMENTS_SLO = Slo(availability=99.5, latency_p99_ms=250)


def receivers() -> dict[str, Any]:
    return {
        "route": {
            "receiver": "oncall",
            "group_by": ["alertname", "namespace"],
            "routes": [{"receiver": "team-chat", "matchers": ['severity = "warning"']}],
        },
        "receivers": [
            {"name": "oncall", "pagerduty_configs": [{"routing_key": pulumi.Output.secret(PAGERDUTY_KEY)}]},
            {
                "name": "team-chat",
                "slack_configs": [{"api_url": pulumi.Output.secret(SLACK_URL), "channel": "#ops"}],
            },
        ],
    }


@functools.cache
def build(
    environment: str = "prod", *, with_receivers: bool = True, storage_class: str | None = None
) -> Plan:
    def program() -> None:
        prod = environment == "prod"
        Monitoring(
            "monitoring",
            MonitoringArgs(
                environment=environment,
                provider=k8s.Provider("k8s"),
                retention="30d",
                replicas=2 if prod else 1,
                alertmanager_replicas=3 if prod else 1,
                storage_size="100Gi",
                storage_class=storage_class,
                alert_receivers=receivers() if with_receivers else None,
                services=SERVICES,
                slos={"payments": PAYMENTS_SLO},
            ),
        )

    return plan_of(program)


ALL_PLANS = {
    "prod": build,
    "local": lambda: build("local", with_receivers=False),
    "aws-storage-class": lambda: build("dev", storage_class="gp3-encrypted"),
}


def release(plan: Plan) -> dict[str, Any]:
    (found,) = plan.of_type(RELEASE)
    return found["inputs"]  # type: ignore[no-any-return]


def values(plan: Plan) -> dict[str, Any]:
    return release(plan)["values"]  # type: ignore[no-any-return]


def unknown_values_keys(chart_values: Mapping[str, Any]) -> set[str]:
    """kube-prometheus-stack's keys against its defaults; its `grafana:` sub-tree is the grafana
    sub-chart's values, checked against that chart's defaults."""
    # The parent's own `grafana:` block (e.g. additionalDataSources) counts too, and the keys the
    # grafana chart only documents in comments (tests/support/helm.py PASS_THROUGH).
    return unknown_release_keys("kube-prometheus-stack", chart_values)


# -- the chart and its values ------------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_every_values_key_exists_in_the_chart_defaults(plan: str) -> None:
    assert unknown_values_keys(values(ALL_PLANS[plan]())) == set()


def test_key_checker_catches_typos_in_both_charts() -> None:
    typo = {
        "prometheus": {"prometheusSpec": {"retension": "1d"}},
        "grafana": {"sidecar": {"dashboards": {"searchNamespaces": "ALL"}}, "admin": {"existingSecrets": ""}},
        "nodeExporters": {},
    }
    assert unknown_values_keys(typo) == {
        "prometheus.prometheusSpec.retension",
        "grafana.sidecar.dashboards.searchNamespaces",
        "grafana.admin.existingSecrets",
        "nodeExporters",
    }


def test_grafana_defaults_are_those_of_the_sub_chart_the_release_pulls() -> None:
    chart = yaml.safe_load((helm_values() / "kube-prometheus-stack" / "Chart.yaml").read_text())
    (grafana,) = [d for d in chart["dependencies"] if d["name"] == "grafana"]
    sub_chart = yaml.safe_load((helm_values() / "grafana" / "Chart.yaml").read_text())
    assert (sub_chart["name"], sub_chart["version"]) == ("grafana", grafana["version"])


def test_chart_is_pinned_to_the_reference_version() -> None:
    inputs = release(build())
    assert (inputs["chart"], inputs["version"]) == ("kube-prometheus-stack", "88.5.3")
    assert inputs["repositoryOpts"] == {"repo": "https://prometheus-community.github.io/helm-charts"}
    assert inputs["namespace"] == "monitoring" and inputs["createNamespace"] is False
    chart = yaml.safe_load((helm_values() / "kube-prometheus-stack" / "Chart.yaml").read_text())
    assert chart["version"] == inputs["version"]


def test_monitors_and_rules_of_every_namespace_are_picked_up() -> None:
    spec = values(build())["prometheus"]["prometheusSpec"]
    defaults = chart_defaults("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe"):
        flag = f"{kind}SelectorNilUsesHelmValues"
        # The chart's default would only select objects labelled for this release.
        assert defaults[flag] is True
        assert spec[flag] is False, flag


def test_prometheus_retention_replicas_storage_and_resources() -> None:
    spec = values(build())["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["replicas"] == 2
    # 85% of the 100Gi volume: old blocks go before the disk fills.
    assert spec["retentionSize"] == "87040MB"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "100Gi"
    assert claim["accessModes"] == ["ReadWriteOnce"]
    # No class named: the cluster default (KMS-encrypted gp3 on aws).
    assert "storageClassName" not in claim
    assert set(spec["resources"]) == {"requests", "limits"}
    assert values(build())["prometheus"]["podDisruptionBudget"] == {"enabled": True}
    assert values(build("local", with_receivers=False))["prometheus"]["podDisruptionBudget"] == {
        "enabled": False
    }


def test_an_explicit_storage_class_reaches_both_stateful_sets() -> None:
    chart_values = values(build("dev", storage_class="gp3-encrypted"))
    prometheus = chart_values["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
    alertmanager = chart_values["alertmanager"]["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]
    assert prometheus["storageClassName"] == alertmanager["storageClassName"] == "gp3-encrypted"


def test_alertmanager_is_replicated_with_storage() -> None:
    chart_values = values(build())["alertmanager"]
    spec = chart_values["alertmanagerSpec"]
    assert spec["replicas"] == 3
    assert spec["storage"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert chart_values["podDisruptionBudget"] == {"enabled": True}


def test_pods_meet_restricted_where_the_chart_lets_us_say_so() -> None:
    chart_values = values(build())
    # node-exporter needs hostNetwork, hostPID and hostPath: off, and its rules with it.
    assert chart_defaults("kube-prometheus-stack")["nodeExporter"]["enabled"] is True
    assert chart_values["nodeExporter"] == {"enabled": False}
    assert chart_values["defaultRules"]["rules"] == {
        "nodeExporterAlerting": False,
        "nodeExporterRecording": False,
    }
    restricted = {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "fsGroup": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert chart_values["prometheus"]["prometheusSpec"]["securityContext"] == restricted
    assert chart_values["alertmanager"]["alertmanagerSpec"]["securityContext"] == restricted
    patch = chart_values["prometheusOperator"]["admissionWebhooks"]["patch"]["securityContext"]
    assert patch["runAsNonRoot"] is True and patch["runAsUser"] >= 10000
    assert patch["seccompProfile"] == {"type": "RuntimeDefault"}
    grafana = chart_values["grafana"]
    # The chart's default chown init container runs as root with CHOWN.
    assert chart_defaults("grafana")["initChownData"]["securityContext"]["runAsUser"] == 0
    assert grafana["initChownData"] == {"enabled": False}
    assert (
        grafana["securityContext"]["runAsNonRoot"] is True
        and grafana["securityContext"]["runAsUser"] >= 10000
    )
    # What the chart already sets for Grafana's containers is restricted.
    container = chart_defaults("grafana")["containerSecurityContext"]
    assert container["allowPrivilegeEscalation"] is False and container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}


def test_every_container_the_values_size_has_requests_and_limits() -> None:
    chart_values = values(build())
    sized = [
        chart_values["prometheus"]["prometheusSpec"]["resources"],
        chart_values["alertmanager"]["alertmanagerSpec"]["resources"],
        chart_values["prometheusOperator"]["resources"],
        chart_values["prometheusOperator"]["prometheusConfigReloader"]["resources"],
        chart_values["prometheusOperator"]["admissionWebhooks"]["patch"]["resources"],
        chart_values["grafana"]["resources"],
        chart_values["grafana"]["sidecar"]["resources"],
    ]
    for resources in sized:
        assert set(resources) == {"requests", "limits"}
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_grafana_loads_dashboards_from_labelled_config_maps_everywhere() -> None:
    grafana = values(build())["grafana"]
    assert grafana["sidecar"]["dashboards"] == {
        "enabled": True,
        "label": "grafana_dashboard",
        "labelValue": "1",
        "searchNamespace": "ALL",
        # ConfigMaps only: `both` would make the sidecar (and its role) read every Secret.
        "resource": "configmap",
    }
    assert grafana["sidecar"]["datasources"]["resource"] == "configmap"
    assert grafana["persistence"]["enabled"] is True and grafana["persistence"]["type"] == "pvc"
    # Data sources (e.g. Loki, Tempo) come from ConfigMaps with the label the handle hands out.
    datasources = grafana["sidecar"]["datasources"]
    assert {datasources["label"]: datasources["labelValue"]} == {"grafana_datasource": "1"}
    assert "searchNamespace" not in datasources


# -- secrets -----------------------------------------------------------------------------------


def test_grafana_admin_password_is_a_generated_secret_handed_over_by_name() -> None:
    plan = build()
    grafana = values(plan)["grafana"]
    assert "adminPassword" not in grafana
    admin = grafana["admin"]
    secret = one(plan, "Secret", admin["existingSecret"], "monitoring")["inputs"]
    assert stored.is_secret(secret["stringData"])
    (password,) = plan.of_type("random:index/randomPassword:RandomPassword")
    assert password["inputs"]["length"] >= 32
    # The Secret carries exactly the keys the chart reads.
    assert (admin["userKey"], admin["passwordKey"]) == ("admin-user", "admin-password")


def test_the_mock_password_and_the_receiver_credentials_never_reach_the_export() -> None:
    for plan in ALL_PLANS.values():
        text = json.dumps(plan().to_export())
        assert PLACEHOLDER_SECRET not in text
        assert SLACK_URL not in text and PAGERDUTY_KEY not in text


def test_receiver_credentials_are_files_of_a_mounted_secret() -> None:
    plan = build()
    alertmanager = values(plan)["alertmanager"]
    assert alertmanager["alertmanagerSpec"]["secrets"] == ["alertmanager-receivers"]
    secret = one(plan, "Secret", "alertmanager-receivers", "monitoring")["inputs"]
    assert stored.is_secret(secret["stringData"])
    by_name = {receiver["name"]: receiver for receiver in alertmanager["config"]["receivers"]}
    directory = "/etc/alertmanager/secrets/alertmanager-receivers"
    assert by_name["oncall"]["pagerduty_configs"] == [
        {"routing_key_file": f"{directory}/oncall.pagerduty_configs.0.routing_key"}
    ]
    assert by_name["team-chat"]["slack_configs"] == [
        {"channel": "#ops", "api_url_file": f"{directory}/team-chat.slack_configs.0.api_url"}
    ]
    # The Secret is there before Alertmanager starts.
    assert one(plan, "Secret", "alertmanager-receivers")["urn"] in plan.of_type(RELEASE)[0]["dependencies"]


def test_routing_keeps_watchdog_quiet_and_sends_the_rest_to_the_configured_route() -> None:
    route = values(build())["alertmanager"]["config"]["route"]
    assert route["receiver"] == "oncall" and route["group_by"] == ["alertname", "namespace"]
    assert route["routes"] == [
        {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
        {"receiver": "team-chat", "matchers": ['severity = "warning"']},
    ]


def test_without_receivers_alerts_stay_in_alertmanager_and_no_secret_is_mounted() -> None:
    plan = build("local", with_receivers=False)
    alertmanager = values(plan)["alertmanager"]
    assert alertmanager["config"]["route"]["receiver"] == "null"
    assert alertmanager["config"]["receivers"] == [{"name": "null"}]
    assert "secrets" not in alertmanager["alertmanagerSpec"]
    assert [r["inputs"]["metadata"]["name"] for r in of(plan, "Secret")] == ["grafana-admin"]


def test_http_config_credentials_move_too() -> None:
    routing = alertmanager_routing(
        {
            "route": {"receiver": "hook"},
            "receivers": [
                {
                    "name": "hook",
                    "webhook_configs": [
                        {
                            "url": "https://hooks.example.com/x",
                            "http_config": {"basic_auth": {"username": "am", "password": "pw"}},
                        }
                    ],
                }
            ],
        }
    )
    (config,) = routing.config["receivers"][1]["webhook_configs"]
    assert config["http_config"]["basic_auth"] == {
        "username": "am",
        "password_file": f"{alerting.ALERTMANAGER_SECRETS_DIR}/alertmanager-receivers/"
        "hook.webhook_configs.0.http_config.basic_auth.password",
    }
    assert "url" not in config and config["url_file"].endswith("hook.webhook_configs.0.url")
    assert set(routing.credentials.values()) == {"https://hooks.example.com/x", "pw"}


@pytest.mark.parametrize(
    ("alert_receivers", "message"),
    [
        ({"route": {"receiver": "nobody"}}, "unknown receivers"),
        ({"route": {"receiver": "null", "matchers": ["a = b"]}}, "unknown keys"),
        ({"routes": []}, "unknown keys"),
        ({"receivers": [{"name": "null"}]}, "unique"),
        (
            {"receivers": [{"name": "x", "slack_configs": [{"channel": pulumi.Output.secret("#c")}]}]},
            "only credential fields",
        ),
    ],
)
def test_bad_routing_is_refused(alert_receivers: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        alertmanager_routing(alert_receivers)


# -- per-service scrape configs, alerts and dashboards -----------------------------------------


def test_every_service_is_scraped_through_its_sidecar() -> None:
    plan = build()
    for spec in SERVICES:
        monitor = one(plan, "PodMonitor", spec.name, spec.name)["inputs"]["spec"]
        assert monitor["selector"] == {"matchLabels": {"app.kubernetes.io/name": spec.name}}
        assert monitor["namespaceSelector"] == {"matchNames": [spec.name]}
        assert monitor["podMetricsEndpoints"] == [
            {"port": "http-envoy-prom", "path": "/stats/prometheus", "interval": "30s"}
        ]
    # One approach for all services: no ServiceMonitor in a service namespace.
    assert not [
        r
        for r in of(plan, "ServiceMonitor")
        if r["inputs"]["metadata"]["namespace"] in ("orders", "payments")
    ]


def test_prometheus_may_reach_the_sidecars_and_nothing_else_in_a_service_namespace() -> None:
    for spec in SERVICES:
        policy = one(build(), "NetworkPolicy", "allow-metrics-scrape", spec.name)["inputs"]["spec"]
        assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": spec.name}}
        (rule,) = policy["ingress"]
        assert rule["from"] == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        ]
        assert rule["ports"] == [{"protocol": "TCP", "port": 15090}]


SERVICE_ALERTS = {
    "ServiceErrorBudgetFastBurn": "istio_requests_total",
    "ServiceErrorRatioAboveSlo": "istio_requests_total",
    "ServiceLatencyP99AboveSlo": "istio_request_duration_milliseconds_bucket",
    "ServiceAtMaxReplicas": "kube_horizontalpodautoscaler_spec_max_replicas",
    "ServiceContainerRestarting": "kube_pod_container_status_restarts_total",
}


def rules_of(resource: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in resource["inputs"]["spec"]["groups"] for rule in group["rules"]}


def test_every_service_has_slo_alerts_with_severity_and_runbook() -> None:
    plan = build()
    for spec in SERVICES:
        rules = rules_of(one(plan, "PrometheusRule", f"{spec.name}-slo", spec.name))
        assert len(rules) >= 4
        assert set(rules) == set(SERVICE_ALERTS)
        for name, rule in rules.items():
            assert SERVICE_ALERTS[name] in rule["expr"]
            assert f'"{spec.name}"' in rule["expr"]
            assert rule["labels"]["severity"] in ("critical", "warning")
            assert rule["labels"]["service"] == spec.name
            assert rule["annotations"]["runbook_url"].startswith("https://")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alert_thresholds_follow_each_services_slo() -> None:
    plan = build()
    orders = rules_of(one(plan, "PrometheusRule", "orders-slo", "orders"))
    payments = rules_of(one(plan, "PrometheusRule", "payments-slo", "payments"))
    # Default Slo: 99.9% -> budget 0.001; payments: 99.5% -> 0.005.
    assert orders["ServiceErrorRatioAboveSlo"]["expr"].endswith("> 0.001")
    assert payments["ServiceErrorRatioAboveSlo"]["expr"].endswith("> 0.005")
    assert "> 0.0144" in orders["ServiceErrorBudgetFastBurn"]["expr"]
    assert orders["ServiceLatencyP99AboveSlo"]["expr"].endswith("> 300")
    assert payments["ServiceLatencyP99AboveSlo"]["expr"].endswith("> 250")
    assert "histogram_quantile(0.99," in orders["ServiceLatencyP99AboveSlo"]["expr"]
    assert orders["ServiceAtMaxReplicas"]["for"] == "15m"
    assert "[15m]" in orders["ServiceContainerRestarting"]["expr"]
    assert orders["ServiceContainerRestarting"]["expr"].endswith("> 3")


def test_platform_rules_cover_vault_certificates_nodes_volumes_and_databases() -> None:
    rules = rules_of(one(build(), "PrometheusRule", "rampart-platform", "monitoring"))
    expected = {
        "VaultSealed": "vault_core_unsealed == 0",
        "CertificateExpiringSoon": "certmanager_certificate_expiration_timestamp_seconds - time() "
        "< 14 * 24 * 3600",
        "NodeNotReady": 'kube_node_status_condition{condition="Ready",status="true"} == 0',
        "VolumeNearlyFull": "kubelet_volume_stats_available_bytes / kubelet_volume_stats_capacity_bytes "
        "< 0.1",
        "DatabaseDown": "cnpg_collector_up == 0",
        "DatabaseReplicationLag": "cnpg_pg_replication_lag > 30",
    }
    assert {name: rule["expr"] for name, rule in rules.items()} == expected
    assert rules["NodeNotReady"]["for"] == "5m"
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["runbook_url"].endswith(".md")


def dashboards(plan: Plan) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for resource in of(plan, "ConfigMap"):
        metadata = resource["inputs"]["metadata"]
        if metadata.get("labels", {}).get("grafana_dashboard") == "1":
            (text,) = resource["inputs"]["data"].values()
            found[(metadata["namespace"], metadata["name"])] = json.loads(text)
    return found


def test_dashboards_are_labelled_config_maps_with_panels() -> None:
    found = dashboards(build())
    assert set(found) == {
        ("orders", "orders-dashboard"),
        ("payments", "payments-dashboard"),
        ("monitoring", "rampart-platform-dashboard"),
    }
    for dashboard in found.values():
        assert dashboard["schemaVersion"] == 39
        assert dashboard["panels"]
        assert all(panel["type"] == "row" or panel["targets"] for panel in dashboard["panels"])
        assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    assert len({dashboard["uid"] for dashboard in found.values()}) == 3


def test_service_dashboard_shows_the_golden_signals_against_the_slo() -> None:
    dashboard = dashboards(build())[("payments", "payments-dashboard")]
    assert dashboard["uid"] == "rampart-service-payments"
    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    assert set(panels) == {
        "Request rate",
        "Error ratio (5xx)",
        "Latency p50 / p99",
        "CPU and memory vs limits",
        "Pods vs autoscaler bounds",
    }
    latency = panels["Latency p50 / p99"]
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p99"]
    assert latency["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 250
    assert len(panels["Pods vs autoscaler bounds"]["targets"]) == 3
    assert "kube_pod_container_resource_limits" in panels["CPU and memory vs limits"]["targets"][0]["expr"]


def test_platform_dashboard_has_a_row_per_service() -> None:
    dashboard = dashboards(build())[("monitoring", "rampart-platform-dashboard")]
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == ["Platform", "orders", "payments"]
    # Panels never overlap: each row starts below the previous one.
    tops = [panel["gridPos"]["y"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert tops == sorted(set(tops))


def test_dashboard_uids_stay_within_grafanas_limit() -> None:
    long_name = "rampart-service-" + "a" * 60
    uid = objects.dashboard_uid(long_name)
    assert len(uid) == 40 and uid != objects.dashboard_uid(long_name + "b")
    assert objects.dashboard_uid("rampart-platform") == "rampart-platform"


# -- platform scrape configs -------------------------------------------------------------------


def test_platform_components_are_scraped() -> None:
    plan = build()
    monitors = {
        (r["inputs"]["metadata"]["namespace"], r["inputs"]["kind"], r["inputs"]["metadata"]["name"]): r[
            "inputs"
        ]["spec"]
        for r in [*of(plan, "ServiceMonitor"), *of(plan, "PodMonitor")]
    }
    istiod = monitors[("monitoring", "ServiceMonitor", "istiod")]
    assert istiod["namespaceSelector"] == {"matchNames": ["istio-system"]}
    assert istiod["endpoints"][0]["port"] == "http-monitoring"
    kong = monitors[("monitoring", "PodMonitor", "kong")]
    assert kong["namespaceSelector"] == {"matchNames": ["kong"]}
    assert (kong["podMetricsEndpoints"][0]["port"], kong["podMetricsEndpoints"][0]["path"]) == (
        "status",
        "/metrics",
    )
    # Vault's monitor reads Vault's CA from a Secret in its own namespace.
    vault = monitors[("vault", "PodMonitor", "vault")]["podMetricsEndpoints"][0]
    assert (vault["scheme"], vault["path"], vault["params"]) == (
        "https",
        "/v1/sys/metrics",
        {"format": ["prometheus"]},
    )
    assert vault["tlsConfig"]["ca"] == {"secret": {"name": "vault-tls", "key": "ca.crt"}}
    assert vault["tlsConfig"]["serverName"] == "vault.vault.svc"
    assert "insecureSkipVerify" not in vault["tlsConfig"]
    assert monitors[("monitoring", "PodMonitor", "cnpg-operator")]["namespaceSelector"] == {
        "matchNames": ["cnpg-system"]
    }
    assert monitors[("monitoring", "PodMonitor", "cnpg-instances")]["namespaceSelector"] == {"any": True}
    # TLS-only RabbitMQ exposes its metrics as prometheus-tls (15691); the CA is read beside it.
    rabbitmq = monitors[("messaging", "ServiceMonitor", "rabbitmq")]
    assert rabbitmq["endpoints"][0]["port"] == "prometheus-tls"
    assert rabbitmq["endpoints"][0]["scheme"] == "https"
    assert monitors[("monitoring", "PodMonitor", "cert-manager")]["namespaceSelector"] == {
        "matchNames": ["cert-manager"]
    }


def test_prometheus_egress_opens_exactly_the_scrape_ports() -> None:
    policy = one(build(), "NetworkPolicy", "allow-scrape", "monitoring")["inputs"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    (rule,) = policy["egress"]
    ports = {port["port"] for port in rule["ports"]}
    assert {target.port_number for target in scrape_targets.PLATFORM_TARGETS} <= ports
    # Sidecars, platform targets, kubelet/CoreDNS/kube-proxy, and the release's own components.
    assert ports == {
        15090,
        15014,
        8100,
        9402,
        8200,
        8080,
        9187,
        15691,
        10250,
        9153,
        10249,
        9090,
        9093,
        3000,
        8081,
    }


def pods(name: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}


def test_components_reach_each_other_only_where_they_need_to() -> None:
    policies = network_policies(build(), "monitoring")
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    (prometheus,) = policies["allow-prometheus"]["ingress"]
    assert prometheus["from"] == [pods("grafana"), pods("prometheus")]
    assert [port["port"] for port in prometheus["ports"]] == [9090, 8080]
    queries, gossip = policies["allow-alertmanager"]["ingress"]
    assert queries["from"] == [pods("prometheus"), pods("grafana")]
    assert gossip == {
        "from": [pods("alertmanager")],
        "ports": [{"protocol": "TCP", "port": 9094}, {"protocol": "UDP", "port": 9094}],
    }
    to_prometheus, to_alertmanager = policies["allow-grafana"]["egress"]
    assert (to_prometheus["to"], to_prometheus["ports"]) == (
        [pods("prometheus")],
        [{"protocol": "TCP", "port": 9090}],
    )
    assert to_alertmanager["to"] == [pods("alertmanager")]
    (webhook,) = policies["allow-operator-webhook"]["ingress"]
    assert webhook == {"ports": [{"protocol": "TCP", "port": 10250}]}
    assert policies["allow-operator-webhook"]["podSelector"] == {
        "matchLabels": {"app": "kube-prometheus-stack-operator"}
    }
    # No blanket allow: every ingress rule names its peers, except the API server's webhook call.
    for name, spec in policies.items():
        for rule in spec.get("ingress") or []:
            assert rule.get("from") or name == "allow-operator-webhook", name


# -- schemas, providers, dependencies ----------------------------------------------------------


def custom_manifests(plan: Plan) -> list[dict[str, Any]]:
    return [
        to_manifest(r) for r in plan.custom() if r["type"].startswith("kubernetes:monitoring.coreos.com/")
    ]


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_custom_resources_validate_against_their_crd_schemas(plan: str) -> None:
    directory = crd_schemas()
    manifests = custom_manifests(ALL_PLANS[plan]())
    assert sorted({m["kind"] for m in manifests}) == ["PodMonitor", "PrometheusRule", "ServiceMonitor"]
    # Per service a PodMonitor and a PrometheusRule; the platform rule; seven platform targets.
    assert len(manifests) == 2 * len(SERVICES) + 1 + len(scrape_targets.PLATFORM_TARGETS)
    for manifest in manifests:
        assert schemas.validate_custom(manifest, directory) == [], manifest["metadata"]["name"]


def test_schema_check_would_catch_a_mistake() -> None:
    (rule,) = [m for m in custom_manifests(build()) if m["metadata"]["name"] == "orders-slo"]
    rule["spec"]["groups"][0]["rules"][0]["for"] = "fifteen minutes"
    assert schemas.validate_custom(rule, crd_schemas())
    (monitor,) = [m for m in custom_manifests(build()) if m["metadata"]["name"] == "vault"]
    monitor["spec"]["podMetricsEndpoints"][0]["scheme"] = "ftp"
    assert schemas.validate_custom(monitor, crd_schemas())


def core_manifest(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The object as applied; a Secret's stringData is redacted as a whole in the plan, so a map of the
    same shape stands in for it."""
    manifest = to_manifest(dict(resource))
    if manifest["kind"] == "Secret" and manifest.get("stringData") == "<secret>":
        manifest["stringData"] = {"redacted": "value"}
    return manifest


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_core_objects_validate_strictly(plan: str) -> None:
    core = [
        core_manifest(r)
        for r in ALL_PLANS[plan]().custom()
        if r["type"].startswith("kubernetes:") and r["type"] != RELEASE and schemas.is_core(to_manifest(r))
    ]
    assert sorted({m["kind"] for m in core}) == [
        "ClusterRole",
        "ConfigMap",
        "LimitRange",
        "Namespace",
        "NetworkPolicy",
        "ResourceQuota",
        "Secret",
    ]
    assert core_problems(core) == {}


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_every_kubernetes_resource_uses_the_explicit_provider(plan: str) -> None:
    resources = [r for r in ALL_PLANS[plan]().custom() if r["type"].startswith("kubernetes:")]
    assert len(resources) > 20
    for resource in resources:
        assert resource["provider"].startswith(K8S_PROVIDER), resource["urn"]


def test_monitors_and_rules_wait_for_the_release_that_installs_their_crds() -> None:
    plan = build()
    (chart,) = plan.of_type(RELEASE)
    for resource in [*of(plan, "PodMonitor"), *of(plan, "ServiceMonitor"), *of(plan, "PrometheusRule")]:
        assert chart["urn"] in resource["dependencies"], resource["urn"]
    assert one(plan, "Secret", "grafana-admin")["urn"] in chart["dependencies"]
    assert one(plan, "ResourceQuota", "quota")["urn"] in chart["dependencies"]


# -- the monitoring namespace ------------------------------------------------------------------


def test_namespace_enforces_restricted_and_stays_out_of_the_mesh() -> None:
    namespace = one(build(), "Namespace", "monitoring")
    namespace_labels = namespace["inputs"]["metadata"]["labels"]
    assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "istio-injection" not in namespace_labels
    resource = Resource(namespace["urn"], namespace["type"], "monitoring", namespace["inputs"])
    assert catalog.rule("namespace-pod-security-restricted").evaluate(resource) == []


def test_quota_fits_every_pod_and_volume_of_the_release() -> None:
    hard = one(build(), "ResourceQuota", "quota")["inputs"]["spec"]["hard"]
    # 2 Prometheus + 3 Alertmanager + operator (and surge) + kube-state-metrics (and surge) + Grafana
    # + the webhook certificate job.
    assert hard["pods"] == "11"
    assert hard["persistentvolumeclaims"] == "6"
    # 2 x 100Gi + 3 x 2Gi + 5Gi.
    assert hard["requests.storage"] == "211Gi"
    # 2 x (4Gi + 64Mi) + 3 x (256 + 64) + 2 x 512 + 2 x 256 + (512 + 2 x 128) + 64 Mi of limits.
    assert hard["limits.memory"] == "11648Mi"
    assert (hard["services.loadbalancers"], hard["services.nodeports"]) == ("0", "0")
    # 2 x (2 + 0.1) + 3 x (0.2 + 0.1) + 2 x 0.5 + 2 x 0.25 + (0.5 + 2 x 0.2) + 0.1 CPU of limits.
    assert hard["limits.cpu"] == "7600m"


def test_quota_makes_room_for_the_other_layers_in_the_namespace() -> None:
    base = MonitoringArgs(environment="dev", provider=None)  # type: ignore[arg-type]
    shared = MonitoringArgs(
        environment="dev",
        provider=None,  # type: ignore[arg-type]
        extra_quota={"pods": "6", "limits.cpu": "1500m", "limits.memory": "1Gi", "requests.storage": "20Gi"},
    )
    alone, together = prometheus_stack.quota_hard(base), prometheus_stack.quota_hard(shared)
    assert int(together["pods"]) == int(alone["pods"]) + 6
    assert together["limits.cpu"] == f"{int(alone['limits.cpu'][:-1]) + 1500}m"
    assert together["limits.memory"] == f"{int(alone['limits.memory'][:-2]) + 1024}Mi"
    assert together["requests.storage"] == f"{int(alone['requests.storage'][:-2]) + 20}Gi"
    assert together["services.loadbalancers"] == alone["services.loadbalancers"] == "0"


def policy_resources(plan: Plan) -> list[Resource]:
    """The plan, plus a stand-in for what Helm renders into `monitoring` at deploy time."""
    stand_in = Resource(
        "urn:pulumi:test::rampart::kubernetes:apps/v1:Deployment::kube-prometheus-stack-operator",
        "kubernetes:apps/v1:Deployment",
        "kube-prometheus-stack-operator",
        {"metadata": {"name": "kube-prometheus-stack-operator", "namespace": "monitoring"}},
    )
    return [Resource(r["urn"], r["type"], name_of(r), r["inputs"]) for r in plan.custom()] + [stand_in]


def violations(resources: list[Resource]) -> list[str]:
    return [
        v.message
        for name in ("namespace-default-deny", "namespace-quota", "explicit-providers")
        for v in catalog.rule(name).evaluate_stack(resources)
    ]


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_the_namespace_baseline_policies_pass(plan: str) -> None:
    assert violations(policy_resources(ALL_PLANS[plan]())) == []


def test_the_policies_would_notice_a_missing_baseline() -> None:
    bare = [
        r
        for r in policy_resources(build())
        if r.type not in ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "kubernetes:core/v1:ResourceQuota")
    ]
    assert len(violations(bare)) == 2


def test_no_release_value_opens_a_public_service() -> None:
    (chart,) = build().of_type(RELEASE)
    resource = Resource(chart["urn"], chart["type"], name_of(chart), chart["inputs"])
    assert catalog.rule("release-no-public-service").evaluate(resource) == []


# -- arguments and pure builders ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"retention": "15 days"}, "Prometheus duration"),
        ({"replicas": 0}, "at least 1"),
        ({"storage_size": "lots"}, "not a memory quantity"),
    ],
)
def test_bad_arguments_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MonitoringArgs(environment="dev", provider=None, **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(("availability", "latency"), [(100.0, 300), (0.0, 300), (99.9, 0)])
def test_impossible_objectives_are_refused(availability: float, latency: int) -> None:
    with pytest.raises(ValueError):
        Slo(availability=availability, latency_p99_ms=latency)


def test_observability_objects_is_pure() -> None:
    assert objects.__file__ is not None
    with open(objects.__file__) as source:  # noqa: PTH123 - reading the module's own source
        tree = ast.parse(source.read())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name for name in imported if name.split(".")[0] == "pulumi" or name.startswith("pulumi_")}
