"""The EKS add-ons (Karpenter, AWS Load Balancer Controller), built alone under mocks with
explicit AWS and Kubernetes providers."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.targets.aws.handles import EksHandle
from components.targets.aws.iam import service_trust
from components.targets.aws.karpenter import Karpenter, KarpenterArgs
from components.targets.aws.lb_controller import LoadBalancerController, LoadBalancerControllerArgs
from policies import catalog
from policies.model import Resource
from policies.rules.aws import RULES as AWS_RULES
from rampart.config.models import Karpenter as KarpenterLimits
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from tests.support import schemas
from tests.support.harness import plan_of
from tests.support.helm import chart_defaults, unknown_keys
from tests.support.plans import AWS_PROVIDER, K8S_PROVIDER, core_problems, name_of, of, one
from tests.support.reference import crd_schemas, helm_values

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "rampart-dev"
CLUSTER_ARN = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
ENDPOINT = "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com"
CLUSTER_SG = "sg-0123456789abcdef0"
EBS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
VPC_ID = "vpc-0123456789abcdef0"
NODE_ROLE_NAME = f"KarpenterNodeRole-{CLUSTER}"
# The stack's ownership tags (components/targets/aws/ownership.py), as the aws target hands them down.
TAGS = {"environment": "dev", "owner": "platform-team", "cost-center": "cc-1234"}
# IAM's limit on a managed policy document, whitespace not counted.
MANAGED_POLICY_LIMIT = 6144
# The only actions allowed on Resource "*": AWS offers no resource-level permission for them.
UNSCOPABLE = re.compile(
    r"^(ec2:Describe\w+|ec2:GetSecurityGroupsForVpc|elasticloadbalancing:Describe\w+|pricing:GetProducts"
    r"|iam:ListInstanceProfiles|acm:ListCertificates|shield:GetSubscriptionState|shield:DescribeProtection)$"
)

LIMITS = {
    "default": KarpenterLimits(),
    "spot-and-on-demand": KarpenterLimits(
        cpu_limit=128,
        memory_limit_gb=512,
        capacity_types=["spot", "on-demand"],
        instance_categories=["c", "m"],
    ),
}


def eks_handle(provider: aws.Provider) -> EksHandle:
    def known(value: str) -> pulumi.Output[str]:
        return pulumi.Output.from_input(value)

    node_role = aws.iam.Role(
        "karpenter-node",
        name=NODE_ROLE_NAME,
        assume_role_policy=service_trust("ec2.amazonaws.com"),
        opts=pulumi.ResourceOptions(provider=provider),
    )
    return EksHandle(
        cluster_name=known(CLUSTER),
        cluster_arn=known(CLUSTER_ARN),
        endpoint=known(ENDPOINT),
        cluster_security_group_id=known(CLUSTER_SG),
        karpenter_node_role=node_role,
        ebs_kms_key_arn=known(EBS_KEY),
        region=REGION,
        account_id=known(ACCOUNT),
        partition=known("aws"),
    )


def system_nodes(provider: aws.Provider) -> aws.iam.Role:
    """Stands in for what the add-ons must wait for (the system node group)."""
    return aws.iam.Role(
        "system-nodes",
        assume_role_policy=service_trust("ec2.amazonaws.com"),
        opts=pulumi.ResourceOptions(provider=provider),
    )


def on_cluster(add: Callable[[EksHandle, list[pulumi.Resource], pulumi.ResourceOptions], object]) -> Plan:
    """The plan of ``add``, given a stand-in cluster's handle, what an add-on waits for (the system
    node group) and options with an explicit AWS provider."""

    def program() -> None:
        provider = aws.Provider("aws", region=REGION)
        add(eks_handle(provider), [system_nodes(provider)], pulumi.ResourceOptions(providers=[provider]))

    return plan_of(program)


@functools.cache
def build_karpenter(limits: str = "default") -> Plan:
    return on_cluster(
        lambda eks, waits, opts: Karpenter(
            "karpenter",
            KarpenterArgs(
                eks=eks,
                limits=LIMITS[limits],
                environment="dev",
                permissions_boundary=None,
                provider=k8s.Provider("k8s"),
                tags=TAGS,
                depends_on=waits,
            ),
            opts=opts,
        )
    )


@functools.cache
def build_lb_controller() -> Plan:
    return on_cluster(
        lambda eks, waits, opts: LoadBalancerController(
            "lb-controller",
            LoadBalancerControllerArgs(
                eks=eks,
                vpc_id=pulumi.Output.from_input(VPC_ID),
                permissions_boundary=f"arn:aws:iam::{ACCOUNT}:policy/rampart-boundary",
                provider=k8s.Provider("k8s"),
                tags=TAGS,
                depends_on=waits,
            ),
            opts=opts,
        )
    )


PLANS = {"karpenter": build_karpenter, "aws-load-balancer-controller": build_lb_controller}


# -- Helm values against the chart defaults ----------------------------------------------------


def test_key_checker_catches_typos_and_allows_free_form_maps() -> None:
    defaults = {"settings": {"clusterName": ""}, "resources": {}, "podLabels": {}, "image": {"tag": "1"}}
    values = {
        "settings": {"clusterNmae": "x"},
        "resources": {"limits": {"cpu": "1"}},
        "imagee": {},
        "image": {"tag": "2", "digest": "sha256:0"},
    }
    assert sorted(unknown_keys(values, defaults)) == ["image.digest", "imagee", "settings.clusterNmae"]


@pytest.mark.parametrize("chart", sorted(PLANS))
def test_every_values_key_exists_in_the_chart_defaults(chart: str) -> None:
    release = one(PLANS[chart](), "Release")["inputs"]
    assert list(unknown_keys(release["values"], chart_defaults(chart))) == []


@pytest.mark.parametrize(
    ("chart", "reference", "repository", "version", "namespace"),
    [
        (
            "karpenter",
            "oci://public.ecr.aws/karpenter/karpenter",
            "oci://public.ecr.aws/karpenter",
            "1.14.1",
            "karpenter",
        ),
        (
            "aws-load-balancer-controller",
            "aws-load-balancer-controller",
            "https://aws.github.io/eks-charts",
            "3.5.0",
            "kube-system",
        ),
    ],
)
def test_chart_is_pinned_to_the_reference_version(
    chart: str, reference: str, repository: str, version: str, namespace: str
) -> None:
    release = one(PLANS[chart](), "Release")["inputs"]
    assert (release["chart"], release["version"]) == (reference, version)
    assert release["repositoryOpts"] == {"repo": repository}
    assert release["namespace"] == namespace and release["createNamespace"] is False
    chart_file = yaml.safe_load((helm_values() / chart / "Chart.yaml").read_text())
    assert chart_file["version"] == version


def test_karpenter_values() -> None:
    plan = build_karpenter()
    values = one(plan, "Release")["inputs"]["values"]
    queue = one(plan, "Queue")
    assert values["settings"] == {
        "clusterName": CLUSTER,
        "clusterEndpoint": ENDPOINT,
        "interruptionQueue": queue["inputs"]["name"],
        # Security groups for pods: the trunk interface carries no pod addresses (max_pods.py).
        "reservedENIs": "1",
    }
    assert values["serviceAccount"] == {"create": True, "name": "karpenter"}
    assert values["replicas"] == 2
    resources = values["controller"]["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert {"name": "AWS_REGION", "value": REGION} in values["controller"]["env"]


def test_lb_controller_values() -> None:
    values = one(build_lb_controller(), "Release")["inputs"]["values"]
    assert (values["clusterName"], values["region"], values["vpcId"]) == (CLUSTER, REGION, VPC_ID)
    assert values["serviceAccount"] == {"create": True, "name": "aws-load-balancer-controller"}
    assert values["replicaCount"] == 2
    # Only Services that explicitly ask (loadBalancerClass) get an NLB.
    assert values["enableServiceMutatorWebhook"] is False
    assert values["resources"]["requests"] == values["resources"]["limits"]


@pytest.mark.parametrize("chart", sorted(PLANS))
def test_release_waits_for_its_dependencies_and_its_pod_identity(chart: str) -> None:
    plan = PLANS[chart]()
    dependencies = one(plan, "Release")["dependencies"]
    assert any(d.endswith("aws:iam/role:Role::system-nodes") for d in dependencies)
    association = one(plan, "PodIdentityAssociation")
    assert association["urn"] in dependencies


# -- IAM ---------------------------------------------------------------------------------------


def policy_documents(plan: Plan) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(resource name, property, parsed document) for every IAM document in the plan."""
    for resource in plan.custom():
        for prop in ("policy", "assumeRolePolicy"):
            text = resource["inputs"].get(prop)
            if isinstance(text, str):
                yield name_of(resource), prop, json.loads(text)


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return [found] if isinstance(found, dict) else list(found)


def as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def controller_statements(plan: Plan) -> list[dict[str, Any]]:
    return [
        statement
        for resource in of(plan, "Policy")
        if resource["type"] == "aws:iam/policy:Policy"
        for statement in statements(json.loads(resource["inputs"]["policy"]))
    ]


@pytest.mark.parametrize("chart", sorted(PLANS))
def test_every_policy_document_parses_and_never_allows_every_action(chart: str) -> None:
    plan = PLANS[chart]()
    documents = list(policy_documents(plan))
    assert len(documents) >= 4
    for name, prop, document in documents:
        assert document["Version"] == "2012-10-17", name
        for statement in statements(document):
            assert statement["Effect"] in ("Allow", "Deny")
            if statement["Effect"] == "Allow":
                assert "*" not in as_list(statement["Action"]), f"{name}.{prop}"
    rule = next(r for r in AWS_RULES if r.name == "iam-no-wildcard-action")
    for resource in plan.custom():
        props = resource["inputs"]
        assert rule.evaluate(Resource(resource["urn"], resource["type"], name_of(resource), props)) == []


@pytest.mark.parametrize("chart", sorted(PLANS))
def test_managed_policies_fit_the_iam_size_limit(chart: str) -> None:
    for resource in of(PLANS[chart](), "Policy"):
        size = len(re.sub(r"\s", "", resource["inputs"]["policy"]))
        assert size <= MANAGED_POLICY_LIMIT, f"{name_of(resource)}: {size} characters"


@pytest.mark.parametrize("chart", sorted(PLANS))
def test_wildcard_resources_only_where_aws_offers_no_resource_scope(chart: str) -> None:
    for statement in controller_statements(PLANS[chart]()):
        if "*" in as_list(statement["Resource"]):
            actions = as_list(statement["Action"])
            assert all(UNSCOPABLE.match(action) for action in actions), statement["Sid"]


@pytest.mark.parametrize("chart", sorted(PLANS))
def test_controller_role_trusts_only_its_own_service_account(chart: str) -> None:
    plan = PLANS[chart]()
    namespace, account = {
        "karpenter": ("karpenter", "karpenter"),
        "aws-load-balancer-controller": ("kube-system", "aws-load-balancer-controller"),
    }[chart]
    role = next(r for r in of(plan, "Role") if name_of(r).endswith("-controller-role"))
    (trust,) = statements(json.loads(role["inputs"]["assumeRolePolicy"]))
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-arn": CLUSTER_ARN,
        "aws:RequestTag/kubernetes-namespace": namespace,
        "aws:RequestTag/kubernetes-service-account": account,
    }
    association = one(plan, "PodIdentityAssociation")["inputs"]
    assert (association["namespace"], association["serviceAccount"]) == (namespace, account)
    assert association["roleArn"] == role["outputs"]["arn"]
    attached = {a["inputs"]["policyArn"] for a in of(plan, "RolePolicyAttachment")}
    assert attached == {p["outputs"]["arn"] for p in of(plan, "Policy")}


def test_karpenter_can_pass_only_the_node_role() -> None:
    plan = build_karpenter()
    node_role = next(r for r in of(plan, "Role") if name_of(r) == "karpenter-node")
    passing = [
        s
        for s in controller_statements(plan)
        if s["Effect"] == "Allow"
        and any(re.fullmatch(a.replace("*", ".*"), "iam:PassRole") for a in s["Action"])
    ]
    assert len(passing) == 1
    assert as_list(passing[0]["Resource"]) == [node_role["outputs"]["arn"]]
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_karpenter_writes_are_scoped_to_this_clusters_nodes() -> None:
    by_sid = {s["Sid"]: s for s in controller_statements(build_karpenter())}
    launch = by_sid["AllowScopedEC2InstanceActionsWithTags"]["Condition"]
    assert launch["StringEquals"] == {
        f"aws:RequestTag/kubernetes.io/cluster/{CLUSTER}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": CLUSTER,
    }
    assert launch["StringLike"] == {"aws:RequestTag/karpenter.sh/nodepool": "*"}
    delete = by_sid["AllowScopedDeletion"]
    assert delete["Action"] == ["ec2:DeleteLaunchTemplate", "ec2:TerminateInstances"]
    assert delete["Condition"]["StringEquals"] == {
        f"aws:ResourceTag/kubernetes.io/cluster/{CLUSTER}": "owned"
    }
    profiles = by_sid["AllowScopedInstanceProfileActions"]["Condition"]
    assert profiles["StringLike"] == {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}
    queue = by_sid["AllowInterruptionQueueActions"]
    assert queue["Resource"] == [one(build_karpenter(), "Queue")["outputs"]["arn"]]
    assert by_sid["AllowAPIServerEndpointDiscovery"]["Resource"] == [CLUSTER_ARN]
    assert by_sid["AllowNodeVolumeEncryption"]["Resource"] == [EBS_KEY]
    assert by_sid["AllowSSMReadActions"]["Resource"] == [
        f"arn:aws:ssm:{REGION}::parameter/aws/service/eks/optimized-ami/*"
    ]


def test_lb_controller_writes_are_scoped_to_this_clusters_tag() -> None:
    by_sid = {s["Sid"]: s for s in controller_statements(build_lb_controller())}
    owned = {"aws:RequestTag/elbv2.k8s.aws/cluster": CLUSTER}
    assert by_sid["CreateOwnedLoadBalancers"]["Condition"] == {"StringEquals": owned}
    assert by_sid["CreateOwnedSecurityGroup"]["Condition"] == {"StringEquals": owned}
    assert by_sid["CreateSecurityGroupInClusterVpc"]["Resource"] == [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC_ID}"
    ]
    for sid in ("ManageOwnedSecurityGroups", "ManageOwnedLoadBalancers", "SetWebAclOnOurAlbs"):
        assert by_sid[sid]["Condition"] == {
            "StringEquals": {"aws:ResourceTag/elbv2.k8s.aws/cluster": CLUSTER}
        }, sid
    for sid in ("RetagOwnedSecurityGroup", "RetagOwnedLoadBalancers"):
        assert by_sid[sid]["Condition"]["Null"] == {"aws:RequestTag/elbv2.k8s.aws/cluster": "true"}
    assert by_sid["AllowLoadBalancerTrafficToNodes"]["Resource"] == [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{CLUSTER_SG}"
    ]
    service_linked = by_sid["ElbServiceLinkedRole"]
    assert service_linked["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
    }
    assert all(s["Effect"] == "Allow" and "iam:PassRole" not in s["Action"] for s in by_sid.values())


def test_lb_controller_role_has_the_permissions_boundary() -> None:
    role = next(r for r in of(build_lb_controller(), "Role") if name_of(r).endswith("-controller-role"))
    assert role["inputs"]["permissionsBoundary"] == f"arn:aws:iam::{ACCOUNT}:policy/rampart-boundary"


# -- interruption queue ------------------------------------------------------------------------


def test_interruption_queue_is_encrypted_and_short_lived() -> None:
    queue = one(build_karpenter(), "Queue")["inputs"]
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 300


def test_the_four_interruption_rules_target_the_queue() -> None:
    plan = build_karpenter()
    queue_arn = one(plan, "Queue")["outputs"]["arn"]
    rules = {r["outputs"]["name"]: r for r in of(plan, "EventRule")}
    detail_types = sorted(json.loads(r["inputs"]["eventPattern"])["detail-type"][0] for r in rules.values())
    assert detail_types == [
        "AWS Health Event",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning",
    ]
    targets = of(plan, "EventTarget")
    assert sorted(t["inputs"]["rule"] for t in targets) == sorted(rules)
    assert all(t["inputs"]["arn"] == queue_arn for t in targets)
    health = next(
        json.loads(r["inputs"]["eventPattern"])
        for r in rules.values()
        if "aws.health" in r["inputs"]["eventPattern"]
    )
    assert health["detail"] == {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]}


def test_only_the_rules_and_sqs_may_send_to_the_queue_over_tls() -> None:
    plan = build_karpenter()
    queue_arn = one(plan, "Queue")["outputs"]["arn"]
    rule_arns = sorted(r["outputs"]["arn"] for r in of(plan, "EventRule"))
    queue_policy = one(plan, "QueuePolicy")["inputs"]
    assert queue_policy.get("queueUrl") == one(plan, "Queue")["outputs"].get("url")
    policy = json.loads(queue_policy["policy"])
    allows = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert sorted(s["Principal"]["Service"] for s in allows) == ["events.amazonaws.com", "sqs.amazonaws.com"]
    assert all(s["Action"] == ["sqs:SendMessage"] and s["Resource"] == queue_arn for s in allows)
    events = next(s for s in allows if s["Principal"]["Service"] == "events.amazonaws.com")
    assert events["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arns}}
    (deny,) = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- custom resources --------------------------------------------------------------------------


@pytest.mark.parametrize("limits", sorted(LIMITS))
def test_node_pool_and_node_class_validate_against_their_crd_schemas(limits: str) -> None:
    directory = crd_schemas()
    plan = build_karpenter(limits)
    custom = [to_manifest(r) for r in plan.custom() if r["type"].startswith("kubernetes:karpenter.")]
    assert sorted(m["kind"] for m in custom) == ["EC2NodeClass", "NodePool"]
    for manifest in custom:
        assert schemas.validate_custom(manifest, directory) == [], manifest["kind"]


def test_schema_check_would_catch_a_mistake() -> None:
    manifest = to_manifest(one(build_karpenter(), "NodePool"))
    manifest["spec"]["disruption"]["consolidationPolicy"] = "WhenIdle"
    assert schemas.validate_custom(manifest, crd_schemas())


def test_node_class_requires_imdsv2_and_encrypts_volumes_with_the_cluster_key() -> None:
    spec = one(build_karpenter(), "EC2NodeClass")["inputs"]["spec"]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert spec["metadataOptions"]["httpEndpoint"] == "enabled"
    (root,) = spec["blockDeviceMappings"]
    assert root["rootVolume"] is True
    assert root["ebs"]["encrypted"] is True
    assert root["ebs"]["kmsKeyID"] == EBS_KEY
    assert root["ebs"]["volumeType"] == "gp3"
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert spec["role"] == NODE_ROLE_NAME
    discovery = [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
    assert spec["subnetSelectorTerms"] == discovery and spec["securityGroupSelectorTerms"] == discovery
    assert spec["associatePublicIPAddress"] is False


def test_node_pool_follows_the_configured_limits() -> None:
    plan = build_karpenter("spot-and-on-demand")
    node_pool = one(plan, "NodePool")["inputs"]
    spec = node_pool["spec"]
    assert node_pool["metadata"]["name"] == "default"
    requirements = {r["key"]: (r["operator"], r["values"]) for r in spec["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ("In", ["spot", "on-demand"])
    assert requirements["karpenter.k8s.aws/instance-category"] == ("In", ["c", "m"])
    assert requirements["kubernetes.io/arch"] == ("In", ["amd64"])
    assert requirements["kubernetes.io/os"] == ("In", ["linux"])
    assert spec["limits"] == {"cpu": "128", "memory": "512Gi"}
    assert spec["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert spec["template"]["spec"]["expireAfter"] == "720h"
    node_class = one(plan, "EC2NodeClass")
    assert spec["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": node_class["inputs"]["metadata"]["name"],
    }


def test_custom_resources_wait_for_the_chart_that_installs_their_crds() -> None:
    plan = build_karpenter()
    release = one(plan, "Release")["urn"]
    for kind in ("EC2NodeClass", "NodePool"):
        assert release in one(plan, kind)["dependencies"], kind


# -- providers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", sorted(PLANS))
def test_every_resource_uses_the_explicit_provider_of_its_package(chart: str) -> None:
    for resource in PLANS[chart]().custom():
        package = resource["type"].split(":")[0]
        expected = {"aws": AWS_PROVIDER, "kubernetes": K8S_PROVIDER}[package]
        assert resource["provider"].startswith(expected), resource["urn"]


# -- the karpenter namespace -------------------------------------------------------------------


def as_policy_resources(plan: Plan) -> list[Resource]:
    return [Resource(r["urn"], r["type"], name_of(r), r["inputs"]) for r in plan.custom()]


def chart_workload() -> Resource:
    """What the chart renders into the namespace (Helm renders it at deploy time, not here)."""
    return Resource(
        "urn:pulumi:test::rampart::kubernetes:apps/v1:Deployment::karpenter",
        "kubernetes:apps/v1:Deployment",
        "karpenter",
        {"metadata": {"name": "karpenter", "namespace": "karpenter"}},
    )


def test_karpenter_namespace_meets_the_namespace_baseline() -> None:
    resources = [*as_policy_resources(build_karpenter()), chart_workload()]
    for rule_name in ("namespace-default-deny", "namespace-quota"):
        assert catalog.rule(rule_name).evaluate_stack(resources) == [], rule_name
    # ... and the rules would notice if the baseline were missing.
    bare = [r for r in resources if r.namespace != "karpenter" or r.type == "kubernetes:apps/v1:Deployment"]
    for rule_name in ("namespace-default-deny", "namespace-quota"):
        assert catalog.rule(rule_name).evaluate_stack(bare), rule_name


def test_karpenter_namespace_enforces_restricted_pod_security() -> None:
    namespace = one(build_karpenter(), "Namespace")
    labels = namespace["inputs"]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    rule = catalog.rule("namespace-pod-security-restricted")
    resource = Resource(namespace["urn"], namespace["type"], name_of(namespace), namespace["inputs"])
    assert rule.evaluate(resource) == []


def test_karpenter_network_policies_deny_by_default_and_allow_only_https_and_dns() -> None:
    policies = {
        r["inputs"]["metadata"]["name"]: r["inputs"]["spec"] for r in of(build_karpenter(), "NetworkPolicy")
    }
    assert sorted(policies) == ["allow-dns", "allow-https-egress", "default-deny"]
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    https = policies["allow-https-egress"]
    assert https["policyTypes"] == ["Egress"] and "ingress" not in https
    assert https["egress"][0] == {"ports": [{"protocol": "TCP", "port": 443}]}
    assert {p["ipBlock"]["cidr"] for p in https["egress"][1]["to"]} == {
        "169.254.170.23/32",
        "fd00:ec2::23/128",
    }


def test_karpenter_quota_covers_the_controller_pods() -> None:
    plan = build_karpenter()
    hard = one(plan, "ResourceQuota")["inputs"]["spec"]["hard"]
    assert hard["pods"] == "4"
    assert (hard["limits.cpu"], hard["limits.memory"]) == ("4", "4Gi")
    assert hard["services.loadbalancers"] == "0"
    (limit,) = one(plan, "LimitRange")["inputs"]["spec"]["limits"]
    assert limit["default"] == limit["defaultRequest"] == {"cpu": "1", "memory": "1Gi"}


def test_karpenter_core_objects_validate_strictly() -> None:
    core = [
        to_manifest(r)
        for r in build_karpenter().custom()
        if r["type"].startswith(("kubernetes:core/", "kubernetes:networking.k8s.io/"))
    ]
    assert len(core) == 6
    assert core_problems(core) == {}
