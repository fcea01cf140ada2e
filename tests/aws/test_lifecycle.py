"""Issue 13, the aws target's lifecycle: what the first `pulumi up` needs to succeed and `pulumi destroy`
needs to finish, asserted on the registered plans of dev, staging and prod (inputs, dependencies,
protection), each against the upstream behaviour cited where the code does it."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest

from components.core.protection import is_protected
from components.targets.aws.addons import ADDON_VERSIONS, stale_pins
from components.targets.aws.eks import BEFORE_COMPUTE
from components.targets.aws.karpenter import DISCOVERY_TAG
from components.targets.aws.max_pods import ENI_LIMITS, max_pods, node_group_max_pods
from rampart import order
from rampart.config import ConfigError, load_platform_config
from rampart.offline.plan import Plan
from tests.aws.conftest import AWS_STACKS
from tests.conftest import planned, stack_config
from tests.support.harness import cluster_handle

ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
SPOT_ROLE = "aws:iam/serviceLinkedRole:ServiceLinkedRole"


def named(plan: Plan, name: str, kind: str = "") -> dict[str, Any]:
    """The custom resource ``name`` (of the type ending in ``:<kind>``, where names repeat)."""
    (found,) = [
        r
        for r in plan.custom()
        if r["urn"].endswith(f"::{name}") and (not kind or r["type"].endswith(f":{kind}"))
    ]
    return found


def deps(resource: dict[str, Any]) -> set[str]:
    return {urn.rsplit("::", 1)[1] for urn in resource.get("dependencies") or ()}


def of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return plan.of_type(type_)


def settings(stack: str) -> Any:
    aws = stack_config(stack).aws
    assert aws is not None
    return aws


# -- 1. Karpenter finds a security group -------------------------------------------------------


def test_the_cluster_security_group_carries_karpenters_discovery_tag(aws_stack: str) -> None:
    plan = planned(aws_stack)
    cluster = named(plan, "cluster-eks-cluster", "Cluster")
    node_class = named(plan, "cluster-karpenter-node-class")
    ((selector,),) = [[term["tags"] for term in node_class["inputs"]["spec"]["securityGroupSelectorTerms"]]]
    tags = [t["inputs"] for t in of_type(plan, "aws:ec2/tag:Tag")]
    # The EC2NodeClass's selector matches a tag on the group EKS created for the cluster.
    assert {
        "resourceId": cluster["outputs"]["vpcConfig"]["clusterSecurityGroupId"],
        "key": DISCOVERY_TAG,
        "value": selector[DISCOVERY_TAG],
    } in tags
    assert selector[DISCOVERY_TAG] == f"rampart-{aws_stack}"


# -- 2. every role within the boundary ---------------------------------------------------------


def test_the_flow_log_role_carries_the_permissions_boundary_like_every_role() -> None:
    plan = planned("prod")
    boundary = settings("prod").permissions_boundary_arn
    assert boundary
    flow_logs = [r for r in of_type(plan, ROLE) if r["urn"].endswith("::cluster-network-flow-logs")]
    assert [r["inputs"].get("permissionsBoundary") for r in flow_logs] == [boundary]
    without = [r["urn"] for r in of_type(plan, ROLE) if r["inputs"].get("permissionsBoundary") != boundary]
    assert without == []


# -- 3. and 11. what the cluster and the nodes wait for ----------------------------------------


def test_system_nodes_join_after_the_cni_and_the_pod_identity_agent(aws_stack: str) -> None:
    node_group = named(planned(aws_stack), "cluster-eks-system", "NodeGroup")
    assert set(BEFORE_COMPUTE) == {"vpc-cni", "eks-pod-identity-agent"}
    assert {"cluster-eks-vpc-cni", "cluster-eks-eks-pod-identity-agent"} <= deps(node_group)


def test_the_cluster_and_node_group_wait_for_their_roles_policies(aws_stack: str) -> None:
    plan = planned(aws_stack)
    assert {
        "cluster-eks-cluster-policy",
        "cluster-eks-cluster-vpc-resource-controller",
        "cluster-eks-cluster-secrets-key",
    } <= deps(named(plan, "cluster-eks-cluster", "Cluster"))
    node_role = [r for r in of_type(plan, ATTACHMENT) if "::cluster-eks-system-nodes-" in r["urn"]]
    assert len(node_role) == 2
    assert {r["urn"].rsplit("::", 1)[1] for r in node_role} <= deps(
        named(plan, "cluster-eks-system", "NodeGroup")
    )
    # Pod Identity: an association (or the add-on creating it) after its role's policies.
    assert "cluster-karpenter-controller-managed-0" in deps(
        named(plan, "cluster-karpenter-controller-association")
    )
    assert "cluster-eks-vpc-cni-managed-0" in deps(named(plan, "cluster-eks-vpc-cni", "Addon"))


# -- 4. cluster admins are roles, not sessions -------------------------------------------------


def aws_config(environment: str = "dev", **aws: Any) -> dict[str, Any]:
    return {
        "environment": environment,
        "target": "aws",
        "owner": "platform-team",
        "cost_center": "cc-1",
        "aws": {
            "region": "eu-west-1",
            "availability_zones": ["eu-west-1a", "eu-west-1b"],
            "admin_principal_arns": ["arn:aws:iam::123456789012:role/admin"],
            "node_ami_release": "1.33.0-20250627",
        }
        | aws,
        "services": [{"name": "orders", "image": "ghcr.io/acme/orders:1.0.0"}],
    }


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw)
    return caught.value.problems


def test_an_sts_session_is_refused_as_a_cluster_admin() -> None:
    session = "arn:aws:sts::123456789012:assumed-role/platform-admin/alice"
    (problem,) = problems(aws_config(admin_principal_arns=[session]))
    assert problem.startswith("aws.admin_principal_arns: ")
    assert session in problem and "use the role ARN" in problem and "\n" not in problem
    assert load_platform_config(aws_config()).aws is not None


# -- 5. and 6. pods fit their nodes' addresses; Nitro only -------------------------------------


def test_max_pods_leaves_out_the_trunk_interface() -> None:
    # m6i.large: 3 interfaces x 10 addresses; the EKS AMI's default is 3 x 9 + 2 = 29.
    assert max_pods("m6i.large") == 2 * 9 + 2 == 20
    assert max_pods("m6i.xlarge") == 3 * 14 + 2 == 44
    assert max_pods("m6i.large", reserved_enis=0) == 29
    assert node_group_max_pods(["m6i.xlarge", "m6i.large"]) == 20
    with pytest.raises(ValueError, match=r"aws\.system_nodes\.instance_types: 'x1\.huge'"):
        max_pods("x1.huge")


def user_data_max_pods(launch_template: dict[str, Any]) -> int:
    text = base64.b64decode(launch_template["inputs"]["userData"]).decode()
    assert "application/node.eks.aws" in text and "kind: NodeConfig" in text
    (found,) = re.findall(r"maxPods: (\d+)", text)
    return int(found)


def test_nodes_advertise_only_the_pods_they_have_addresses_for(aws_stack: str) -> None:
    plan = planned(aws_stack)
    types = settings(aws_stack).system_nodes.instance_types
    assert all(t in ENI_LIMITS for t in types)
    assert user_data_max_pods(
        named(plan, "cluster-eks-system-nodes", "LaunchTemplate")
    ) == node_group_max_pods(types)
    karpenter = named(plan, "cluster-karpenter-release")
    assert karpenter["inputs"]["values"]["settings"]["reservedENIs"] == "1"


def test_karpenter_launches_nitro_instances_only(aws_stack: str) -> None:
    pool = named(planned(aws_stack), "cluster-karpenter-node-pool")
    requirements = pool["inputs"]["spec"]["template"]["spec"]["requirements"]
    assert {
        "key": "karpenter.k8s.aws/instance-hypervisor",
        "operator": "In",
        "values": ["nitro"],
    } in requirements


# -- 7. the AMI is pinned per stack and promoted -----------------------------------------------


def test_every_node_boots_the_stacks_pinned_ami(aws_stack: str) -> None:
    plan = planned(aws_stack)
    release = settings(aws_stack).node_ami_release
    assert release is not None
    assert named(plan, "cluster-eks-system", "NodeGroup")["inputs"]["releaseVersion"] == release
    node_class = named(plan, "cluster-karpenter-node-class")
    assert node_class["inputs"]["spec"]["amiSelectorTerms"] == [
        {"alias": f"al2023@v{release.rsplit('-', 1)[1]}"}
    ]
    assert "@latest" not in str(node_class["inputs"]["spec"])


def test_an_ami_release_reaches_prod_only_through_dev_and_staging() -> None:
    dates = [str(settings(s).node_ami_release).rsplit("-", 1)[1] for s in AWS_STACKS]
    # dev runs the newest release, staging what dev ran, prod what staging ran.
    assert dates == sorted(dates, reverse=True), dict(zip(AWS_STACKS, dates, strict=True))


def test_staging_and_prod_must_pin_the_ami_and_the_pin_must_match_kubernetes() -> None:
    raw = aws_config("staging")
    del raw["aws"]["node_ami_release"]
    assert "aws.node_ami_release: required in staging" in "\n".join(problems(raw))
    dev = aws_config("dev")
    del dev["aws"]["node_ami_release"]
    assert load_platform_config(dev).aws is not None
    (problem,) = problems(aws_config(node_ami_release="1.32.3-20250627"))
    assert problem.startswith("aws.node_ami_release: 1.32.3-20250627 is a Kubernetes 1.32 AMI")
    (problem,) = problems(aws_config(node_ami_release="latest"))
    assert problem.startswith("aws.node_ami_release: String should match pattern")


# -- 8. upgrade policy and pinned add-ons ------------------------------------------------------


def test_standard_support_and_add_ons_pinned_for_the_stacks_kubernetes(aws_stack: str) -> None:
    plan = planned(aws_stack)
    version = stack_config(aws_stack).kubernetes.version
    assert named(plan, "cluster-eks-cluster", "Cluster")["inputs"]["upgradePolicy"] == {
        "supportType": "STANDARD"
    }
    addons = {a["inputs"]["addonName"]: a["inputs"].get("addonVersion") for a in of_type(plan, ADDON)}
    assert addons == ADDON_VERSIONS[version]
    # kube-proxy follows the control plane's minor exactly: a pin for another version is stale.
    assert addons["kube-proxy"].startswith(f"v{version}.")


def test_a_stale_add_on_pin_is_flagged() -> None:
    assert stale_pins() == []
    copied_forward = {**ADDON_VERSIONS, "1.34": dict(ADDON_VERSIONS["1.33"])}
    assert stale_pins(copied_forward) == ["1.34: kube-proxy v1.33.0-eksbuild.2 is not a 1.34 build"]
    missing = {
        "1.33": {k: v for k, v in ADDON_VERSIONS["1.33"].items() if k != "coredns"},
        "1.32": {**ADDON_VERSIONS["1.33"], "kube-proxy": "v1.32.0-eksbuild.2"},
    }
    assert stale_pins(missing) == ["1.33: coredns is not pinned"]


# -- 9. spot where Karpenter may use it --------------------------------------------------------


def test_the_spot_service_linked_role_exists_where_karpenter_may_launch_spot() -> None:
    dev = planned("dev")
    (role,) = of_type(dev, SPOT_ROLE)
    assert role["inputs"] == {"awsServiceName": "spot.amazonaws.com"}
    # The account's role: it stays after a destroy (other stacks' spot instances use it).
    assert role.get("retainOnDelete") is True
    assert "cluster-karpenter-spot" in deps(named(dev, "cluster-karpenter-node-class"))
    # staging is in dev's account and says so (create_spot_service_linked_role: false); prod has no spot.
    assert settings("staging").karpenter.create_spot_service_linked_role is False
    assert "spot" not in settings("prod").karpenter.capacity_types
    assert of_type(planned("staging"), SPOT_ROLE) == [] and of_type(planned("prod"), SPOT_ROLE) == []


# -- 10. destroy removes the NLB before its controller -----------------------------------------


def test_the_gateway_release_waits_for_the_load_balancer_controller(aws_stack: str) -> None:
    plan = planned(aws_stack)
    assert "cluster-lb-controller-release" in deps(named(plan, "gateway-release"))
    finalizer = [f for f in order.destroy_report(plan).findings if f.kind == "finalizer"]
    assert finalizer == []


def test_an_existing_cluster_names_nothing_for_load_balancers_to_wait_for() -> None:
    assert cluster_handle().load_balancer_ready == []
    plan = planned("local")
    assert not any("lb-controller" in d for d in deps(named(plan, "gateway-release")))


# -- 12. protection follows the environment ----------------------------------------------------


def test_keys_and_the_log_bucket_follow_the_stacks_protection(aws_stack: str) -> None:
    plan = planned(aws_stack)
    protected = is_protected(aws_stack)
    keys = of_type(plan, "aws:kms/key:Key")
    assert len(keys) >= 6
    assert {r["urn"].rsplit("::", 1)[1]: bool(r.get("protect")) for r in keys} == {
        r["urn"].rsplit("::", 1)[1]: protected for r in keys
    }
    (bucket,) = of_type(plan, "aws:s3/bucket:Bucket")
    assert bucket["inputs"].get("forceDestroy") is (not protected)
    assert bool(bucket.get("protect")) is protected


# -- 13. the broker and the databases start with the VPC, not behind the cluster ---------------


def prerequisites(graph: order.Graph, urn: str) -> Iterator[str]:
    seen: set[str] = set()
    stack = [urn]
    while stack:
        for before in graph.prereqs[stack.pop()]:
            if before not in seen:
                seen.add(before)
                stack.append(before)
                yield before


def test_the_broker_and_databases_do_not_wait_for_the_cluster() -> None:
    plan = planned("prod")
    graph = order.build_graph(plan)
    cluster = named(plan, "cluster-eks-cluster", "Cluster")["urn"]
    stateful = [
        r["urn"] for r in plan.resources if r["type"] in ("aws:mq/broker:Broker", "aws:rds/instance:Instance")
    ]
    assert len(stateful) == 5
    for urn in stateful:
        assert cluster not in set(prerequisites(graph, urn)), urn
    # The broker's group has no inline rule naming the cluster's group; its rules are separate.
    group = named(plan, "messaging-sg", "SecurityGroup")
    assert "ingress" not in group["inputs"]
    schedule = order.schedule(graph)
    broker = named(plan, "messaging-broker", "Broker")["urn"]
    assert schedule.start[broker] < schedule.finish[cluster]
