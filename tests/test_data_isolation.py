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
from tests.support.catalog import with_catalog
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
    assert owners(config), "the sample stacks have databases (test_the_sample_stacks_show_every_feature)"
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


# Two services with a database each, the caller calling the owner: the pair the mutations below open.
PAIR = {
    "caller": {
        "image": "ghcr.io/acme/caller:1.0.0@sha256:" + "c0" * 32,
        "calls": ["owner"],
        "database": {"storage_gb": 20},
    },
    "owner": {"image": "ghcr.io/acme/owner:1.0.0@sha256:" + "0e" * 32, "database": {"storage_gb": 20}},
}


@functools.cache
def pair_on(stack: str) -> tuple[PlatformConfig, Plan]:
    """The stack's platform running the two services of PAIR."""
    config = with_catalog(stack_config(stack), PAIR)
    return config, platform_plan(config, stack)


def test_the_walk_finds_a_path_a_caller_policy_would_open() -> None:
    """What the checks above would catch: a layer that opened the owner's database to its caller."""
    config, planned_pair = pair_on("local")
    plan = copy.deepcopy(planned_pair)
    db_selector = {"matchLabels": {"cnpg.io/cluster": cluster_name("owner")}}
    caller_ns = {"matchLabels": {labels.NAMESPACE_NAME: "caller"}}
    owner_ns = {"matchLabels": {labels.NAMESPACE_NAME: "owner"}}
    port = [{"protocol": "TCP", "port": POSTGRES_PORT}]
    assert in_cluster_paths(plan, config) == owners(config)
    plan.resources += [
        _policy("owner", "db-from-callers", {
            "podSelector": db_selector, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": caller_ns}], "ports": port}],
        }),
        _policy("caller", "to-callee-db", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"namespaceSelector": owner_ns, "podSelector": db_selector}], "ports": port}
            ],
        }),
    ]  # fmt: skip
    assert in_cluster_paths(plan, config) == owners(config) | {("caller", "owner")}


def test_the_walk_finds_a_security_group_opened_to_another_service() -> None:
    config, planned_pair = pair_on("prod")
    plan = copy.deepcopy(planned_pair)
    network = Network(plan)
    assert aws_paths(plan, config) == owners(config)
    # The group only the caller's pods carry (not the cluster group every pod has).
    (caller_group,) = network.pod_security_groups(service_pod(plan, "caller")) - network.pod_security_groups(
        service_pod(plan, "owner")
    )
    owner_group = rds_security_groups(plan)["owner"]
    plan.resources.append(
        {
            "type": "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "urn": "urn:pulumi:prod::rampart::aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule::x",
            "inputs": {
                "securityGroupId": owner_group,
                "referencedSecurityGroupId": caller_group,
                "fromPort": POSTGRES_PORT,
                "toPort": POSTGRES_PORT,
                "ipProtocol": "tcp",
            },
        }
    )
    assert aws_paths(plan, config) == owners(config) | {("caller", "owner")}


def test_pods_that_reach_a_database_start_with_their_security_groups() -> None:
    """Pods created before their SecurityGroupPolicy would run without the group the database admits."""
    plan, config = planned("prod"), stack_config("prod")
    policies = {r["inputs"]["metadata"]["namespace"]: r["urn"] for r in plan.of_type(SG_POLICY_TYPE)}
    # Outside the cluster, the databases admit their owners and Vault; the broker its publishers and
    # consumers, and its management API Vault and the topology operator (in rabbitmq-system).
    broker_clients = {s.name for s in config.services if s.queue.publishes or s.queue.consumes} | {
        "rabbitmq-system"
    }
    assert set(policies) == {s.name for s in config.services if s.database} | {"vault"} | broker_clients
    for namespace, urn in policies.items():
        workloads = [
            r
            for r in plan.of_type("kubernetes:apps/v1:Deployment")
            + plan.of_type("kubernetes:helm.sh/v3:Release")
            # The topology operator runs already: a patch of its pod template restarts it with its group.
            + plan.of_type("kubernetes:apps/v1:DeploymentPatch")
            if (r["inputs"].get("metadata") or {}).get("namespace", r["inputs"].get("namespace")) == namespace
            and (r["inputs"].get("metadata") or {}).get("name", r["inputs"].get("name"))
            in (namespace, "vault", "messaging-topology-operator")
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
