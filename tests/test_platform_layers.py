"""The mesh, gateway, certificates, Vault and observability layers as they land in every stack's plan."""

from __future__ import annotations

import json
import re
from typing import Any

from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config

AUTHZ = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"
STRATEGIES = {
    "round_robin": {"simple": "ROUND_ROBIN"},
    "least_request": {"simple": "LEAST_REQUEST"},
    "source_ip_hash": {"consistentHash": {"useSourceIp": True}},
}


def objects(plan: Plan, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    found = [r["inputs"] for r in plan.custom() if r["type"].endswith(f":{kind}")]
    return [o for o in found if namespace is None or o.get("metadata", {}).get("namespace") == namespace]


def release(plan: Plan, chart: str) -> dict[str, Any]:
    (found,) = [r["inputs"] for r in plan.of_type(RELEASE) if r["inputs"]["chart"].endswith(chart)]
    return found


def test_mesh_root_policies(stack: str) -> None:
    plan = planned(stack)
    (strict,) = objects(plan, "PeerAuthentication", "istio-system")
    assert strict["spec"] == {"mtls": {"mode": "STRICT"}}
    allow_nothing = [p for p in objects(plan, "AuthorizationPolicy", "istio-system") if not p.get("spec")]
    assert len(allow_nothing) == 1


def test_each_service_admits_exactly_its_callers_and_the_gateway(stack: str) -> None:
    plan = planned(stack)
    config = stack_config(stack)
    for spec in config.services:
        expected = {f"cluster.local/ns/{c}/sa/{c}" for c in config.callers_of(spec.name)}
        if spec.routes:
            expected.add("cluster.local/ns/kong/sa/kong-gateway")
        allows = [
            p
            for p in objects(plan, "AuthorizationPolicy", spec.name)
            if p["spec"].get("action", "ALLOW") == "ALLOW"
        ]
        assert len(allows) == (1 if expected else 0), spec.name
        if expected:
            (rule,) = allows[0]["spec"]["rules"]
            assert {p for f in rule["from"] for p in f["source"]["principals"]} == expected, spec.name


def test_traffic_policy_and_token_checks_per_service(stack: str) -> None:
    plan = planned(stack)
    for spec in stack_config(stack).services:
        (rule,) = objects(plan, "DestinationRule", spec.name)
        assert rule["spec"]["trafficPolicy"]["loadBalancer"] == STRATEGIES[spec.load_balancing], spec.name
        assert len(objects(plan, "VirtualService", spec.name)) == 1
        needs_token = any(route.auth for route in spec.routes)
        assert len(objects(plan, "RequestAuthentication", spec.name)) == int(needs_token), spec.name
        denies = [
            p for p in objects(plan, "AuthorizationPolicy", spec.name) if p["spec"].get("action") == "DENY"
        ]
        assert len(denies) == int(needs_token), spec.name


def test_gateway_plugins_on_every_public_route_and_certificates(stack: str) -> None:
    plan = planned(stack)
    kong = release(plan, "ingress")
    # aws: ClusterIP behind the program's own NLB (components/gateway/edge_aws.py); local: NodePort
    # (kind/k3d have no load-balancer implementation).
    expected = "ClusterIP" if stack_config(stack).target == "aws" else "NodePort"
    assert kong["values"]["gateway"]["proxy"]["type"] == expected
    for spec in stack_config(stack).services:
        ingresses = objects(plan, "Ingress", spec.name)
        assert len(ingresses) == len(spec.routes), spec.name
        plugins = {p["metadata"]["name"]: p["plugin"] for p in objects(plan, "KongPlugin", spec.name)}
        for ingress in ingresses:
            named = ingress["metadata"]["annotations"]["konghq.com/plugins"].split(",")
            kinds = {plugins[name] for name in named}
            assert {"request-size-limiting", "response-transformer"} <= kinds, spec.name
        if spec.routes:
            assert objects(plan, "Certificate", spec.name), spec.name
    issuers = {i["metadata"]["name"] for i in objects(plan, "ClusterIssuer")}
    assert "rampart-ca" in issuers
    assert ("rampart-acme" in issuers) == (stack_config(stack).certificates.issuer == "acme")


def test_vault_is_tls_ha_where_required_and_kms_sealed_on_aws(stack: str) -> None:
    config = stack_config(stack)
    values = release(planned(stack), "vault")["values"]
    assert values["global"]["tlsDisable"] is False
    server = values["server"]
    configs = [
        server.get("standalone", {}).get("config", ""),
        server.get("ha", {}).get("raft", {}).get("config", ""),
    ]
    assert not any(re.search(r"tls_disable\s*=\s*\"?(1|true)", text) for text in configs)
    if stack in ("staging", "prod"):
        assert server["ha"]["enabled"] and server["ha"]["raft"]["enabled"] and server["ha"]["replicas"] >= 3
    assert any('seal "awskms"' in text for text in configs) == (config.target == "aws")


def test_every_service_is_monitored_alerted_and_has_a_dashboard(stack: str) -> None:
    plan = planned(stack)
    for spec in stack_config(stack).services:
        monitors = objects(plan, "PodMonitor", spec.name) + objects(plan, "ServiceMonitor", spec.name)
        assert monitors, spec.name
        alerts = [
            rule
            for rules in objects(plan, "PrometheusRule", spec.name)
            for g in rules["spec"]["groups"]
            for rule in g["rules"]
            if "alert" in rule
        ]
        assert len(alerts) >= 4, spec.name
        assert all(a["labels"]["severity"] and a["annotations"]["runbook_url"] for a in alerts)
        (dashboard,) = [
            c
            for c in objects(plan, "ConfigMap", spec.name)
            if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        ]
        model = json.loads(next(iter(dashboard["data"].values())))
        assert model["panels"], spec.name
    platform_alerts = {
        rule["alert"]
        for rules in objects(plan, "PrometheusRule", "monitoring")
        for group in rules["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    # The database alerts read CloudNativePG's exporter: only where it runs (not on aws, issue 14).
    database_alerts = {"DatabaseDown", "DatabaseReplicationLag"}
    in_cluster_databases = stack_config(stack).target != "aws"
    assert (database_alerts <= platform_alerts) is in_cluster_databases
    assert len(platform_alerts - database_alerts) >= 4


def test_logs_and_traces(stack: str) -> None:
    plan = planned(stack)
    for chart in ("loki", "alloy", "tempo", "kube-prometheus-stack"):
        assert release(plan, chart)["version"]
    (telemetry,) = objects(plan, "Telemetry", "istio-system")
    assert (
        telemetry["spec"]["tracing"][0]["randomSamplingPercentage"] == stack_config(stack).mesh.trace_sampling
    )
    buckets = plan.of_type("aws:s3/bucket:Bucket")
    assert len(buckets) == (1 if stack_config(stack).target == "aws" else 0)
