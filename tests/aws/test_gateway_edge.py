"""Issue 14 on aws: the public hosts resolve to the gateway's own NLB, which admits only the source
ranges; the broker admits only the pod groups of its clients, and those pods carry them."""

from __future__ import annotations

from typing import Any

import pytest

from components.messaging import topology as mt
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.support.reference import crd_schemas
from tests.support.schemas import validate_custom

AWS_STACKS = ["dev", "staging", "prod"]
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG_POLICY = "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"


@pytest.fixture(params=AWS_STACKS)
def aws_stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def one(plan: Plan, type_: str) -> dict[str, Any]:
    (found,) = plan.of_type(type_)
    return found


def rules_of(plan: Plan, type_: str, group: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in plan.of_type(type_) if r["inputs"]["securityGroupId"] == group]


def cluster_group(plan: Plan) -> str:
    cluster = one(plan, "aws:eks/cluster:Cluster")
    return str(cluster["outputs"]["vpcConfig"]["clusterSecurityGroupId"])


def pod_groups(plan: Plan) -> dict[str, str]:
    """workload -> its pods' own security group (components/targets/aws/pod_security.py)."""
    return {
        r["inputs"]["tags"]["rampart.dev/service"]: r["id"]
        for r in plan.of_type(SG)
        if "rampart.dev/service" in (r["inputs"].get("tags") or {})
        and r["inputs"]["tags"].get("Name", "").endswith("-pods")
    }


def test_every_public_host_gets_an_alias_to_the_gateways_nlb_in_the_stacks_zone(aws_stack: str) -> None:
    plan, config = planned(aws_stack), stack_config(aws_stack)
    nlb = one(plan, "aws:lb/loadBalancer:LoadBalancer")
    assert nlb["inputs"]["loadBalancerType"] == "network" and nlb["inputs"]["internal"] is False
    hosts = {route.host for s in config.services for route in s.routes}
    records = {r["inputs"]["name"]: r["inputs"] for r in plan.of_type("aws:route53/record:Record")}
    assert set(records) == hosts
    for record in records.values():
        assert record["zoneId"] == config.certificates.hosted_zone_id and record["type"] == "A"
        (alias,) = record["aliases"]
        assert alias["name"] == nlb["outputs"]["dnsName"] and alias["zoneId"] == nlb["outputs"]["zoneId"]


def test_the_nlb_admits_443_from_the_source_ranges_only_and_kong_only_from_the_nlb(aws_stack: str) -> None:
    plan, config = planned(aws_stack), stack_config(aws_stack)
    nlb = one(plan, "aws:lb/loadBalancer:LoadBalancer")["inputs"]
    (group,) = nlb["securityGroups"]
    inbound = rules_of(plan, INGRESS, group)
    assert sorted(r.get("cidrIpv4") or r.get("cidrIpv6") for r in inbound) == sorted(
        config.gateway.source_ranges
    )
    assert {(r["fromPort"], r["toPort"], r["ipProtocol"]) for r in inbound} == {(443, 443, "tcp")}
    # Only these rules claim the public gateway's exception to sg-no-public-ingress.
    claiming = [
        r for r in plan.of_type(INGRESS) if "rampart.dev/public-gateway" in r["inputs"].get("tags", {})
    ]
    assert [r["inputs"] for r in claiming] == inbound
    # The only listener is 443, TCP (Kong terminates TLS) to Kong's 8443, keeping client addresses.
    (listener,) = [r["inputs"] for r in plan.of_type("aws:lb/listener:Listener")]
    assert (listener["port"], listener["protocol"]) == (443, "TCP")
    target = one(plan, "aws:lb/targetGroup:TargetGroup")["inputs"]
    assert (target["port"], target["targetType"], target["preserveClientIp"]) == (8443, "ip", "true")
    assert (target["healthCheck"]["port"], target["healthCheck"]["path"]) == ("8100", "/status/ready")
    # Out of the NLB: Kong's listener and health endpoint only; into the pods' group: from the NLB only.
    pods = cluster_group(plan)
    outbound = rules_of(plan, EGRESS, group)
    assert {(r["referencedSecurityGroupId"], r["fromPort"]) for r in outbound} == {(pods, 8443), (pods, 8100)}
    from_nlb = [r for r in rules_of(plan, INGRESS, pods) if r.get("referencedSecurityGroupId") == group]
    assert {r["fromPort"] for r in from_nlb} == {8443, 8100}


def test_the_target_group_binding_is_valid_and_waits_for_kong_and_the_lb_controller() -> None:
    plan = planned("prod")
    binding = one(plan, BINDING)
    manifest = {k: binding["inputs"][k] for k in ("apiVersion", "kind", "metadata", "spec")}
    assert validate_custom(manifest, crd_schemas()) == []
    target = one(plan, "aws:lb/targetGroup:TargetGroup")
    assert binding["inputs"]["spec"]["targetGroupARN"] == target["outputs"]["arn"]
    assert binding["inputs"]["spec"]["serviceRef"] == {"name": "kong-gateway-proxy", "port": 443}
    releases = {r["urn"]: r["inputs"]["name"] for r in plan.of_type("kubernetes:helm.sh/v3:Release")}
    waited = {releases[d] for d in binding["dependencies"] if d in releases}
    # The load-balancer controller (its webhook, and the finalizer only it removes) and Kong's
    # release (it creates the Service): destroy deletes the binding before both.
    assert {"aws-load-balancer-controller", "kong"} <= waited, binding["dependencies"]


def test_the_broker_admits_only_the_pod_groups_of_its_clients(aws_stack: str) -> None:
    plan, config = planned(aws_stack), stack_config(aws_stack)
    (broker,) = plan.of_type("aws:mq/broker:Broker")
    (group,) = broker["inputs"]["securityGroups"]
    own = pod_groups(plan)
    by_group = {g: w for w, g in own.items()}
    admitted = {
        (by_group.get(r["referencedSecurityGroupId"], r["referencedSecurityGroupId"]), r["fromPort"])
        for r in rules_of(plan, INGRESS, group)
    }
    clients = mt.clients(config.services)
    assert clients
    expected = {(c, 5671) for c in clients} | {("vault", 443), ("messaging-topology-operator", 443)}
    assert admitted == expected
    assert cluster_group(plan) not in {r["referencedSecurityGroupId"] for r in rules_of(plan, INGRESS, group)}


def test_every_broker_client_pod_gets_its_group(aws_stack: str) -> None:
    plan, config = planned(aws_stack), stack_config(aws_stack)
    own, pods = pod_groups(plan), cluster_group(plan)
    policies = {
        (
            r["inputs"]["metadata"]["namespace"],
            r["inputs"]["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        ): r
        for r in plan.of_type(SG_POLICY)
    }
    workloads = [(c, c) for c in mt.clients(config.services)] + [
        ("rabbitmq-system", "messaging-topology-operator"),
        ("vault", "vault"),
    ]
    for namespace, workload in workloads:
        policy = policies[(namespace, workload)]
        assert policy["inputs"]["spec"]["securityGroups"]["groupIds"] == [own[workload], pods]
    # The operator's bundle starts its pods before the policy exists: a pod-template change after
    # the policy rolls them, so the running pods carry the group.
    operator = policies[("rabbitmq-system", "messaging-topology-operator")]
    (rollout,) = [
        r
        for r in plan.of_type("kubernetes:apps/v1:DeploymentPatch")
        if r["inputs"]["metadata"]["name"] == "messaging-topology-operator"
        and "rampart.dev/security-groups" in str(r["inputs"])
    ]
    assert operator["urn"] in rollout["dependencies"]
