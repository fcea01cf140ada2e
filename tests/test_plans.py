"""Whole-stack plans of the real stack files: what every service gets, and correct wiring."""

from __future__ import annotations

import json
import runpy
from collections import Counter

import pytest

from rampart.config import ConfigError
from rampart.offline.mocks import PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import PROVIDER_PREFIX, SOURCE_DATE_EPOCH, canonical_order
from rampart.offline.project import load_project, load_stack_config
from rampart.offline.runner import capture, run_plan
from tests.conftest import planned, stack_config
from tests.support.reference import PROJECT_ROOT

PAVED_ROAD = {
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ServiceAccount": 1,
    "kubernetes:apps/v1:Deployment": 1,
    "kubernetes:core/v1:Service": 1,
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": 1,
    "kubernetes:policy/v1:PodDisruptionBudget": 1,
    "kubernetes:core/v1:ResourceQuota": 1,
    "kubernetes:core/v1:LimitRange": 1,
}


def test_every_environment_has_a_stack_file() -> None:
    assert set(load_project(PROJECT_ROOT).stacks()) >= {"local", "dev", "staging", "prod"}


def test_every_service_gets_its_paved_road(stack: str) -> None:
    plan = planned(stack)
    config = stack_config(stack)
    components = {c["urn"].rsplit("::", 1)[1]: c for c in plan.of_type("rampart:paved:Microservice")}
    assert sorted(components) == sorted(s.name for s in config.services)
    for spec in config.services:
        beneath = plan.descendants(components[spec.name]["urn"])
        counts = Counter(r["type"] for r in beneath)
        for type_, expected in PAVED_ROAD.items():
            assert counts[type_] == expected, (stack, spec.name, type_)
        policies = {
            r["inputs"]["metadata"]["name"]
            for r in beneath
            if r["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
        }
        assert {"default-deny", "allow-dns"} <= policies
        assert ("allow-to-callees" in policies) == bool(spec.calls)
        # Callers, and the gateway for public services, are let in.
        assert ("allow-from-callers" in policies) == bool(config.callers_of(spec.name) or spec.routes)
        assert "allow-mesh-control-plane" in policies


def test_network_policies_match_the_call_graph_exactly(stack: str) -> None:
    """Who may send to whom, read back from the NetworkPolicies, equals the declared calls."""
    plan = planned(stack)
    config = stack_config(stack)
    egress_edges: set[tuple[str, str]] = set()
    ingress_edges: set[tuple[str, str]] = set()
    services = {s.name for s in config.services}
    for policy in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        namespace = policy["inputs"]["metadata"]["namespace"]
        if namespace not in services:  # platform namespaces have policies of their own
            continue
        spec = policy["inputs"]["spec"]
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                if "namespaceSelector" not in peer:  # ipBlock: external HTTPS for egress hosts
                    continue
                target = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                if target in services:  # not DNS (kube-system) nor the mesh control plane
                    egress_edges.add((namespace, target))
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                if "namespaceSelector" not in peer:  # within the namespace: its database's instances
                    continue
                source = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                # Prometheus scrapes sidecars (test_monitoring); Vault and the CloudNativePG operator
                # reach the databases (test_data_isolation).
                if source not in ("monitoring", "vault", "cnpg-system"):
                    ingress_edges.add((source, namespace))
    declared = {(s.name, callee) for s in config.services for callee in s.calls}
    public = {("kong", s.name) for s in config.services if s.routes}
    assert egress_edges == declared
    # The gateway is let in exactly where a service has public routes.
    assert ingress_edges == declared | public


def test_every_kubernetes_resource_uses_the_explicit_cluster_provider(stack: str) -> None:
    plan = planned(stack)
    providers = [r for r in plan.resources if r["type"] == f"{PROVIDER_PREFIX}kubernetes"]
    assert len(providers) == 1 and not providers[0].get("defaultProvider")
    reference = f"{providers[0]['urn']}::{providers[0]['id']}"
    kubernetes = [r for r in plan.custom() if r["type"].startswith("kubernetes:")]
    assert kubernetes
    assert {r["provider"] for r in kubernetes} == {reference}


def test_nothing_lands_in_the_default_namespace(stack: str) -> None:
    for resource in planned(stack).custom():
        metadata = resource["inputs"].get("metadata", {})
        assert metadata.get("namespace") != "default", resource["urn"]


def test_replicas_follow_environment_sizing(stack: str) -> None:
    plan = planned(stack)
    floor = stack_config(stack).sizing.min_replicas
    for hpa in plan.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
        assert hpa["inputs"]["spec"]["minReplicas"] >= floor
    if stack == "prod":
        assert floor >= 2


def test_stack_outputs_name_every_service(stack: str) -> None:
    outputs = planned(stack).stack_outputs()
    config = stack_config(stack)
    assert outputs["environment"] == config.environment
    assert outputs["services"] == {
        s.name: f"{s.name}.{s.name}.svc.cluster.local:{s.port}" for s in config.services
    }


def test_the_sample_stacks_show_every_feature(stack: str) -> None:
    """The samples are the demo: each uses every feature (which services do so is theirs to change)."""
    config = stack_config(stack)
    assert any(s.calls for s in config.services)
    assert any(s.routes for s in config.services)
    assert any(s.database for s in config.services)
    assert any(s.queue.publishes for s in config.services) and any(s.queue.consumes for s in config.services)
    strategies = {s.load_balancing for s in config.services}
    assert strategies == {"round_robin", "least_request", "source_ip_hash"}


def test_plans_are_byte_for_byte_repeatable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same config gives the same export: resources and dependencies in one order, no clock."""
    monkeypatch.delenv(SOURCE_DATE_EPOCH, raising=False)
    first, second = planned("local"), run_plan("local", PROJECT_ROOT)
    assert first.to_json() == second.to_json()
    document = json.loads(first.to_json())
    assert document["deployment"]["manifest"]["time"] == "1970-01-01T00:00:00+00:00"
    resources = document["deployment"]["resources"]
    assert all(r["dependencies"] == sorted(r["dependencies"]) for r in resources)
    monkeypatch.setenv(SOURCE_DATE_EPOCH, "1700000000")
    assert json.loads(first.to_json())["deployment"]["manifest"]["time"] == "2023-11-14T22:13:20+00:00"


def test_the_canonical_order_does_not_depend_on_registration_order() -> None:
    resources = planned("local").resources
    shuffled = list(reversed(resources))
    reordered = canonical_order([{**r, "dependencies": list(reversed(r["dependencies"]))} for r in shuffled])
    assert reordered == resources
    placed: set[str] = set()
    for resource in reordered:
        provider = resource.get("provider")
        needs = [
            resource.get("parent"),
            *resource["dependencies"],
            provider.rsplit("::", 1)[0] if provider else None,
        ]
        assert all(urn is None or urn in placed for urn in needs), resource["urn"]
        placed.add(resource["urn"])


def test_bad_config_stops_before_any_resource_is_registered() -> None:
    project = load_project(PROJECT_ROOT)
    values = dict(load_stack_config(project, "local").values)
    first = json.loads(values["rampart:services"])[0]
    overrides = json.loads(values.get("rampart:service_overrides", "{}"))
    overrides.setdefault(first, {})["calls"] = ["no-such-service"]
    values["rampart:service_overrides"] = json.dumps(overrides)
    monitor = CapturingMonitor(PlanMocks())
    expected = rf"rampart:service_overrides\.{first}\.calls\[0\]: unknown service 'no-such-service'"
    with pytest.raises(ConfigError, match=expected):
        capture(
            lambda: runpy.run_path(str(project.main), run_name="__main__"),
            stack="local",
            config=values,
            monitor=monitor,
        )
    assert [r["type"] for r in monitor.registrations] == ["pulumi:pulumi:Stack"]
