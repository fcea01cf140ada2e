"""Karpenter: workload capacity for the EKS cluster.

What it is made of: an SQS queue fed by EventBridge with the EC2 events that end a node's
life early (spot interruption, rebalance, state change, scheduled maintenance), a
least-privilege controller role through EKS Pod Identity, a hardened namespace, the pinned
Helm chart, and the default EC2NodeClass + NodePool built from the typed `Karpenter` config.

The controller role follows the upstream CloudFormation template of Karpenter v1.14: every
write is scoped by the tags Karpenter itself puts on what it creates
(``kubernetes.io/cluster/<name>``, ``eks:eks-cluster-name``, ``karpenter.sh/nodepool``,
``karpenter.k8s.aws/ec2nodeclass``), so it can only touch nodes of this cluster.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import charts, labels
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.targets.aws import iam
from components.targets.aws.handles import EksHandle
from rampart.config.models import Karpenter as KarpenterLimits

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "karpenter"
RELEASE_NAME = "karpenter"
CHART = "oci://public.ecr.aws/karpenter/karpenter"
CHART_REPOSITORY = "oci://public.ecr.aws/karpenter"
CHART_VERSION = "1.14.1"

NODE_CLASS_NAME = "default"
NODE_POOL_NAME = "default"
# The tag the network layer puts on the private subnets and the cluster puts on the node security group.
DISCOVERY_TAG = "karpenter.sh/discovery"
AMI_ALIAS = "al2023@latest"
ROOT_VOLUME_SIZE = "50Gi"
NODE_EXPIRY = "720h"

REPLICAS = 2
# Requests equal limits (Guaranteed QoS): the controller is what adds capacity, it must not be evicted.
CONTROLLER_RESOURCES = {"cpu": "1", "memory": "1Gi"}
# Replicas, plus one surge pod during a rollout, plus one replacement while a node drains.
QUOTA_PODS = REPLICAS + 2
CONTROLLER_POLICY_CONCERNS = ("node-lifecycle", "iam-integration", "interruption", "discovery")
# The interruption messages are only useful for minutes; older ones describe nodes already gone.
QUEUE_RETENTION_SECONDS = 300

# EKS Pod Identity agent: the link-local address pods fetch their AWS credentials from.
POD_IDENTITY_AGENT_CIDRS = ("169.254.170.23/32", "fd00:ec2::23/128")


@dataclass(frozen=True)
class InterruptionEvent:
    key: str
    description: str
    pattern: dict[str, object]


INTERRUPTION_EVENTS = (
    InterruptionEvent(
        "spot-interruption",
        "EC2 Spot Instance Interruption Warning: two minutes before a spot node is reclaimed",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    ),
    InterruptionEvent(
        "rebalance",
        "EC2 Instance Rebalance Recommendation: a spot node is at elevated risk of interruption",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    ),
    InterruptionEvent(
        "state-change",
        "EC2 Instance State-change Notification: a node stopping or terminating outside Karpenter",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    ),
    InterruptionEvent(
        "scheduled-change",
        "AWS Health Event: scheduled maintenance of an EC2 instance",
        # Karpenter acts only on EC2 scheduled changes and drops every other health event.
        {
            "source": ["aws.health"],
            "detail-type": ["AWS Health Event"],
            "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
        },
    ),
)


@dataclass(frozen=True)
class KarpenterArgs:
    eks: EksHandle
    limits: KarpenterLimits
    environment: str
    permissions_boundary: str | None
    kubernetes_provider: k8s.Provider
    # What the release must wait for: the system node group it runs on, the cluster add-ons.
    depends_on: Sequence[pulumi.Resource] = ()


# -- IAM documents -----------------------------------------------------------------------------


def controller_policies(
    *,
    cluster_name: str,
    cluster_arn: str,
    account_id: str,
    partition: str,
    region: str,
    queue_arn: str,
    node_role_arn: str,
    ebs_kms_key_arn: str,
) -> dict[str, str]:
    """The controller's permissions by concern (upstream v1.14 CloudFormation, tightened to this
    account), one document each: together they exceed IAM's 6,144-character managed-policy limit."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    launched = [
        f"{ec2}:fleet/*",
        f"{ec2}:instance/*",
        f"{ec2}:volume/*",
        f"{ec2}:network-interface/*",
        f"{ec2}:launch-template/*",
        f"{ec2}:spot-instances-request/*",
    ]
    owned = f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}"
    owned_request = f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}"
    instance_profiles = f"arn:{partition}:iam::{account_id}:instance-profile/*"
    node_lifecycle = [
        iam.allow(
            ["ec2:CreateFleet", "ec2:RunInstances"],
            [
                # AMIs belong to AWS, not this account: their ARNs carry no account.
                f"arn:{partition}:ec2:{region}::image/*",
                f"arn:{partition}:ec2:{region}::snapshot/*",
                f"{ec2}:security-group/*",
                f"{ec2}:subnet/*",
            ],
            Sid="AllowScopedEC2InstanceAccessActions",
        ),
        iam.allow(
            ["ec2:CreateFleet", "ec2:RunInstances"],
            [f"{ec2}:launch-template/*"],
            Sid="AllowScopedEC2LaunchTemplateAccessActions",
            Condition={
                "StringEquals": {owned: "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        ),
        iam.allow(
            ["ec2:CreateFleet", "ec2:CreateLaunchTemplate", "ec2:RunInstances"],
            launched,
            Sid="AllowScopedEC2InstanceActionsWithTags",
            Condition={
                "StringEquals": {owned_request: "owned", "aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        iam.allow(
            ["ec2:CreateTags"],
            launched,
            Sid="AllowScopedResourceCreationTagging",
            Condition={
                "StringEquals": {
                    owned_request: "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                    "ec2:CreateAction": ["CreateFleet", "CreateLaunchTemplate", "RunInstances"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        iam.allow(
            ["ec2:CreateTags"],
            [f"{ec2}:instance/*"],
            Sid="AllowScopedResourceTagging",
            Condition={
                "StringEquals": {owned: "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                # Only the labels Karpenter adds after launch; never the ownership tags.
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        ),
        iam.allow(
            ["ec2:DeleteLaunchTemplate", "ec2:TerminateInstances"],
            [f"{ec2}:instance/*", f"{ec2}:launch-template/*"],
            Sid="AllowScopedDeletion",
            Condition={
                "StringEquals": {owned: "owned"},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            },
        ),
        # Node volumes are encrypted with the cluster's EBS key: EC2 uses it on the caller's behalf.
        iam.allow(
            [
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            [ebs_kms_key_arn],
            Sid="AllowNodeVolumeEncryption",
            Condition={"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}},
        ),
        iam.allow(
            ["kms:CreateGrant"],
            [ebs_kms_key_arn],
            Sid="AllowNodeVolumeEncryptionGrants",
            Condition={
                "StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"},
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        ),
    ]
    iam_integration = [
        iam.allow(
            ["iam:PassRole"],
            [node_role_arn],
            Sid="AllowPassingInstanceRole",
            Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        iam.allow(
            ["iam:CreateInstanceProfile"],
            [instance_profiles],
            Sid="AllowScopedInstanceProfileCreationActions",
            Condition={
                "StringEquals": {
                    owned_request: "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.allow(
            ["iam:TagInstanceProfile"],
            [instance_profiles],
            Sid="AllowScopedInstanceProfileTagActions",
            Condition={
                "StringEquals": {
                    owned: "owned",
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                    owned_request: "owned",
                    "aws:RequestTag/eks:eks-cluster-name": cluster_name,
                    "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            },
        ),
        iam.allow(
            [
                "iam:AddRoleToInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
            ],
            [instance_profiles],
            Sid="AllowScopedInstanceProfileActions",
            Condition={
                "StringEquals": {owned: "owned", "aws:ResourceTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.allow(["iam:GetInstanceProfile"], [instance_profiles], Sid="AllowInstanceProfileReadActions"),
        # A List call names no instance profile, so there is no resource to scope it to.
        iam.allow(["iam:ListInstanceProfiles"], "*", Sid="AllowUnscopedInstanceProfileListAction"),
    ]
    cluster_and_interruption = [
        iam.allow(["eks:DescribeCluster"], [cluster_arn], Sid="AllowAPIServerEndpointDiscovery"),
        iam.allow(
            ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            [queue_arn],
            Sid="AllowInterruptionQueueActions",
        ),
    ]
    discovery = [
        # EC2 Describe* calls support no resource-level permissions: they need "*"; region-bound.
        iam.allow(
            [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeInstances",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            "*",
            Sid="AllowRegionalReadActions",
            Condition={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        # The public EKS-optimized AMI ids the al2023 alias resolves through.
        iam.allow(
            ["ssm:GetParameter"],
            [f"arn:{partition}:ssm:{region}::parameter/aws/service/eks/optimized-ami/*"],
            Sid="AllowSSMReadActions",
        ),
        # The Price List API supports no resource-level permissions: it needs "*".
        iam.allow(["pricing:GetProducts"], "*", Sid="AllowPricingReadActions"),
    ]
    return {
        "node-lifecycle": iam.document(node_lifecycle),
        "iam-integration": iam.document(iam_integration),
        "interruption": iam.document(cluster_and_interruption),
        "discovery": iam.document(discovery),
    }


def queue_policy(queue_arn: str, rule_arns: Sequence[str]) -> str:
    """Only this stack's EventBridge rules (and SQS itself, as upstream) may send; TLS only."""
    statements: list[iam.PolicyStatement] = [
        {
            "Sid": "EventBridgeRulesSend",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["sqs:SendMessage"],
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
        },
        {
            "Sid": "SqsSend",
            "Effect": "Allow",
            "Principal": {"Service": "sqs.amazonaws.com"},
            "Action": ["sqs:SendMessage"],
            "Resource": queue_arn,
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["sqs:*"],
            "Resource": queue_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    return iam.document(statements)


# -- Kubernetes specs --------------------------------------------------------------------------


def helm_values(
    *,
    cluster_name: pulumi.Input[str],
    endpoint: pulumi.Input[str],
    queue_name: pulumi.Input[str],
    region: str,
) -> dict[str, object]:
    resources = dict(CONTROLLER_RESOURCES)
    return {
        "settings": {
            "clusterName": cluster_name,
            "clusterEndpoint": endpoint,
            "interruptionQueue": queue_name,
        },
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicas": REPLICAS,
        "controller": {
            # Nodes allow IMDS only to the host (hop limit 1): the SDK learns its region from here.
            "env": [{"name": "AWS_REGION", "value": region}],
            "resources": {"requests": resources, "limits": dict(resources)},
        },
    }


def node_class_spec(
    *,
    cluster_name: pulumi.Input[str],
    node_role_name: pulumi.Input[str],
    ebs_kms_key_arn: pulumi.Input[str],
    environment: str,
) -> dict[str, object]:
    return {
        "amiSelectorTerms": [{"alias": AMI_ALIAS}],
        "role": node_role_name,
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
        "securityGroupSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
        # Nodes live in private subnets; make it explicit.
        "associatePublicIPAddress": False,
        # IMDSv2 only, and a hop limit of 1 so pods cannot reach the node's credentials.
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": ROOT_VOLUME_SIZE,
                    "volumeType": "gp3",
                    "encrypted": True,
                    "kmsKeyID": ebs_kms_key_arn,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": {labels.PART_OF: "rampart", labels.ENVIRONMENT: environment},
    }


def node_pool_spec(limits: KarpenterLimits) -> dict[str, object]:
    return {
        "template": {
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": NODE_CLASS_NAME,
                },
                "requirements": [
                    {
                        "key": "karpenter.sh/capacity-type",
                        "operator": "In",
                        "values": list(limits.capacity_types),
                    },
                    {
                        "key": "karpenter.k8s.aws/instance-category",
                        "operator": "In",
                        "values": list(limits.instance_categories),
                    },
                    # Current generations only (Nitro, ENA, gp3-optimised).
                    {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
                # Nodes are replaced at least monthly: fresh AMIs, no long-lived drift.
                "expireAfter": NODE_EXPIRY,
            }
        },
        "limits": {"cpu": str(limits.cpu_limit), "memory": f"{limits.memory_limit_gb}Gi"},
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "1m",
            # At most a tenth of the nodes are voluntarily disrupted at once.
            "budgets": [{"nodes": "10%"}],
        },
    }


def _quantity(amount: str, count: int) -> str:
    if amount.endswith("Gi"):
        return f"{int(amount[:-2]) * count}Gi"
    return str(math.ceil(float(amount) * count))


def quota_hard() -> dict[str, str]:
    cpu, memory = CONTROLLER_RESOURCES["cpu"], CONTROLLER_RESOURCES["memory"]
    return {
        "pods": str(QUOTA_PODS),
        "requests.cpu": _quantity(cpu, QUOTA_PODS),
        "requests.memory": _quantity(memory, QUOTA_PODS),
        "limits.cpu": _quantity(cpu, QUOTA_PODS),
        "limits.memory": _quantity(memory, QUOTA_PODS),
        "persistentvolumeclaims": "0",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def allow_https_egress() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """The controller calls the Kubernetes API server and the AWS APIs (EC2, SQS, SSM, pricing, EKS,
    IAM), all over TLS on 443, plus the Pod Identity agent on the node for its credentials."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={labels.NAME: RELEASE_NAME}),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=443)]
            ),
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
                    for cidr in POD_IDENTITY_AGENT_CIDRS
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=80)],
            ),
        ],
    )


def _document(documents: pulumi.Output[dict[str, str]], concern: str) -> pulumi.Output[str]:
    return documents.apply(lambda by_concern: by_concern[concern])


# -- the component -----------------------------------------------------------------------------


class Karpenter(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:aws:Karpenter", name, {}, opts)
        eks = args.eks
        child = pulumi.ResourceOptions(parent=self)

        def on_cluster(depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
            # Every Kubernetes object names its provider: none may fall back to the ambient one.
            return pulumi.ResourceOptions(
                parent=self, provider=args.kubernetes_provider, depends_on=list(depends_on)
            )

        # -- interruption handling
        queue = aws.sqs.Queue(
            f"{name}-interruption",
            name=pulumi.Output.concat(eks.cluster_name, "-karpenter"),
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        rules: list[aws.cloudwatch.EventRule] = []
        for event in INTERRUPTION_EVENTS:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event.key}",
                name=pulumi.Output.concat(eks.cluster_name, "-karpenter-", event.key),
                description=event.description,
                event_pattern=json.dumps(event.pattern, sort_keys=True),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event.key}",
                rule=rule.name,
                target_id="karpenter-interruption-queue",
                arn=queue.arn,
                opts=child,
            )
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-interruption",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *[rule.arn for rule in rules]).apply(
                lambda arns: queue_policy(str(arns[0]), [str(arn) for arn in arns[1:]])
            ),
            opts=child,
        )

        # -- controller identity
        documents = pulumi.Output.all(
            eks.cluster_name,
            eks.cluster_arn,
            eks.account_id,
            eks.partition,
            queue.arn,
            eks.karpenter_node_role.arn,
            eks.ebs_kms_key_arn,
        ).apply(
            lambda v: controller_policies(
                cluster_name=str(v[0]),
                cluster_arn=str(v[1]),
                account_id=str(v[2]),
                partition=str(v[3]),
                region=eks.region,
                queue_arn=str(v[4]),
                node_role_arn=str(v[5]),
                ebs_kms_key_arn=str(v[6]),
            )
        )
        policies = [
            aws.iam.Policy(
                f"{name}-{concern}",
                description=f"Karpenter controller: {concern}",
                policy=_document(documents, concern),
                opts=child,
            )
            for concern in CONTROLLER_POLICY_CONCERNS
        ]
        identity = iam.PodIdentityRole(
            f"{name}-controller",
            cluster_name=eks.cluster_name,
            cluster_arn=eks.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            managed_policy_arns=[policy.arn for policy in policies],
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )

        # -- namespace baseline
        common = labels.common(args.environment) | {labels.NAME: RELEASE_NAME}
        # The chart's pod meets `restricted`: non-root uid 65532, no privilege escalation, ALL
        # capabilities dropped, read-only root fs, RuntimeDefault seccomp, no host namespaces.
        created = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=common,
            quota=quota_hard(),
            container_defaults=ContainerDefaults(requests=CONTROLLER_RESOURCES, limits=CONTROLLER_RESOURCES),
            policies={"allow-https-egress": allow_https_egress()},
            opts=on_cluster(),
        )
        ns, baseline = created.name, created.resources

        # -- the controller
        release = charts.release(
            f"{name}-release",
            charts.Chart(CHART_REPOSITORY, CHART, CHART_VERSION),
            release_name=RELEASE_NAME,
            namespace=ns,
            values=helm_values(
                cluster_name=eks.cluster_name,
                endpoint=eks.endpoint,
                queue_name=queue.name,
                region=eks.region,
            ),
            # Pod Identity credentials are injected at pod start: the association must exist first.
            opts=on_cluster(depends_on=[*args.depends_on, identity, *baseline]),
        )

        # -- default capacity (the CRDs come with the chart)
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NODE_CLASS_NAME, labels=common),
            spec=node_class_spec(
                cluster_name=eks.cluster_name,
                node_role_name=eks.karpenter_node_role.name,
                ebs_kms_key_arn=eks.ebs_kms_key_arn,
                environment=args.environment,
            ),
            opts=on_cluster(depends_on=[release]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-node-pool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NODE_POOL_NAME, labels=common),
            spec=node_pool_spec(args.limits),
            opts=on_cluster(depends_on=[release, node_class]),
        )

        self.namespace = ns
        self.queue_name = queue.name
        self.role_arn = identity.role.arn
        self.register_outputs(
            {"namespace": self.namespace, "interruptionQueue": self.queue_name, "roleArn": self.role_arn}
        )
