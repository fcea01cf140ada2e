"""Only the owning service reaches its database: the plan's NetworkPolicies (every stack) and, on AWS,
security groups for pods, walked pair by pair (tests/support/reachability.py)."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest

from components.core import labels
from components.data.names import POSTGRES_PORT, cluster_name
from rampart.config import PlatformConfig
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.support.harness import platform_plan
from tests.support.reachability import NETWORK_POLICY, Network, Pod
from tests.support.reachability import SG_POLICY as SG_POLICY_TYPE

SERVICE_TAG = "rampart.dev/service"


def service_pod(plan: Plan, service: str) -> Pod:
    """A pod of the service, labelled as its Deployment's template labels it."""
    (deployment,) = [
        r
        for r in plan.of_type("kubernetes:apps/v1:Deployment")
        if r["inputs"]["metadata"].get("namespace") == service and r["inputs"]["metadata"]["name"] == service
    ]
    return Pod(namespace=service, labels=deployment["inputs"]["spec"]["template"]["metadata"]["labels"])


def database_pod(service: str) -> Pod:
    """A CloudNativePG instance of the service's cluster, labelled as the operator labels it."""
    return Pod(
        namespace=service,
        labels={"cnpg.io/cluster": cluster_name(service), "cnpg.io/podRole": "instance", "role": "primary"},
    )


def in_cluster_paths(plan: Plan, config: PlatformConfig) -> set[tuple[str, str]]:
    network = Network(plan)
    owners = [s.name for s in config.services if s.database]
    return {
        (source.name, owner)
        for source in config.services
        for owner in owners
        if network.pod_to_pod(service_pod(plan, source.name), database_pod(owner), POSTGRES_PORT)
    }


def rds_security_groups(plan: Plan) -> dict[str, str]:
    groups: dict[str, str] = {}
    for database in plan.of_type("aws:rds/instance:Instance") + plan.of_type("aws:rds/cluster:Cluster"):
        (group,) = database["inputs"]["vpcSecurityGroupIds"]
        groups[database["inputs"]["tags"][SERVICE_TAG]] = group
    return groups


def aws_paths(plan: Plan, config: PlatformConfig) -> set[tuple[str, str]]:
    network = Network(plan)
    paths = set()
    for source in config.services:
        pod = service_pod(plan, source.name)
        if not network.pod_to_private_address(pod, POSTGRES_PORT):
            continue
        groups = network.pod_security_groups(pod)
        for owner, group in rds_security_groups(plan).items():
            if network.security_group_admits(group, groups, POSTGRES_PORT):
                paths.add((source.name, owner))
    return paths


def owners(config: PlatformConfig) -> set[tuple[str, str]]:
    return {(s.name, s.name) for s in config.services if s.database}


def paths_of(plan: Plan, config: PlatformConfig) -> set[tuple[str, str]]:
    return aws_paths(plan, config) if config.target == "aws" else in_cluster_paths(plan, config)


def test_only_the_owner_reaches_its_database(stack: str) -> None:
    config = stack_config(stack)
    assert len(owners(config)) >= 3
    assert paths_of(planned(stack), config) == owners(config)


@functools.cache
def everyone_calls_everyone(stack: str) -> tuple[PlatformConfig, Plan]:
    config = stack_config(stack)
    names = [s.name for s in config.services]
    services = [s.model_copy(update={"calls": [n for n in names if n != s.name]}) for s in config.services]
    variant = config.model_copy(update={"services": services})
    return variant, platform_plan(variant, stack)


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_calls_never_open_a_database(stack: str) -> None:
    config, plan = everyone_calls_everyone(stack)
    assert paths_of(plan, config) == owners(config)


def _policy(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": NETWORK_POLICY,
        "urn": f"urn:pulumi:local::rampart::{NETWORK_POLICY}::{namespace}-{name}",
        "inputs": {"metadata": {"namespace": namespace, "name": name}, "spec": spec},
    }


def test_the_walk_finds_a_path_a_caller_policy_would_open() -> None:
    """What the checks above would catch: a layer that opened payments' database to its caller."""
    plan = copy.deepcopy(planned("local"))
    db_selector = {"matchLabels": {"cnpg.io/cluster": cluster_name("payments")}}
    orders_ns = {"matchLabels": {labels.NAMESPACE_NAME: "orders"}}
    payments_ns = {"matchLabels": {labels.NAMESPACE_NAME: "payments"}}
    port = [{"protocol": "TCP", "port": POSTGRES_PORT}]
    plan.resources += [
        _policy("payments", "db-from-callers", {
            "podSelector": db_selector, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": orders_ns}], "ports": port}],
        }),
        _policy("orders", "to-callee-db", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"namespaceSelector": payments_ns, "podSelector": db_selector}], "ports": port}
            ],
        }),
    ]  # fmt: skip
    config = stack_config("local")
    assert in_cluster_paths(plan, config) == owners(config) | {("orders", "payments")}


def test_the_walk_finds_a_security_group_opened_to_another_service() -> None:
    plan = copy.deepcopy(planned("prod"))
    config = stack_config("prod")
    network = Network(plan)
    # The group only orders' pods carry (not the cluster group every pod has).
    (orders_group,) = network.pod_security_groups(service_pod(plan, "orders")) - network.pod_security_groups(
        service_pod(plan, "payments")
    )
    payments_group = rds_security_groups(plan)["payments"]
    plan.resources.append(
        {
            "type": "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "urn": "urn:pulumi:prod::rampart::aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::x",
            "inputs": {
                "securityGroupId": payments_group,
                "referencedSecurityGroupId": orders_group,
                "fromPort": POSTGRES_PORT,
                "toPort": POSTGRES_PORT,
                "ipProtocol": "tcp",
            },
        }
    )
    assert aws_paths(plan, config) == owners(config) | {("orders", "payments")}


def test_pods_that_reach_a_database_start_with_their_security_groups() -> None:
    """Pods created before their SecurityGroupPolicy would run without the group the database admits."""
    plan, config = planned("prod"), stack_config("prod")
    policies = {r["inputs"]["metadata"]["namespace"]: r["urn"] for r in plan.of_type(SG_POLICY_TYPE)}
    assert set(policies) == {s.name for s in config.services if s.database} | {"vault"}
    for namespace, urn in policies.items():
        workloads = [
            r
            for r in plan.of_type("kubernetes:apps/v1:Deployment")
            + plan.of_type("kubernetes:helm.sh/v3:Release")
            if (r["inputs"].get("metadata") or {}).get("namespace", r["inputs"].get("namespace")) == namespace
            and (r["inputs"].get("metadata") or {}).get("name", r["inputs"].get("name"))
            in (namespace, "vault")
        ]
        assert workloads and all(urn in w["dependencies"] for w in workloads), namespace


def test_each_database_host_is_registered_in_its_own_namespace_only() -> None:
    """The mesh lets sidecars out to registered hosts only (REGISTRY_ONLY)."""
    plan, config = planned("prod"), stack_config("prod")
    entries = {
        r["inputs"]["metadata"]["namespace"]: r["inputs"]["spec"]
        for r in plan.of_type("kubernetes:networking.istio.io/v1:ServiceEntry")
        if r["inputs"]["metadata"]["name"].endswith("-database")
    }
    assert set(entries) == {s.name for s in config.services if s.database}
    for spec in entries.values():
        assert spec["exportTo"] == ["."] and spec["location"] == "MESH_EXTERNAL"
        assert spec["ports"] == [{"number": POSTGRES_PORT, "name": "tcp-postgres", "protocol": "TCP"}]
        assert spec["hosts"][0].endswith(".rds.amazonaws.com")
