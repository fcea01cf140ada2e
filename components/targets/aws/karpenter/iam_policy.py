"""The Karpenter controller's IAM documents, built in Python beside the component that uses them (as
terraform-aws-eks keeps policy.tf beside main.tf).

They follow the upstream CloudFormation template of Karpenter v1.14: every write is scoped by the tags
Karpenter itself puts on what it creates (``kubernetes.io/cluster/<name>``, ``eks:eks-cluster-name``,
``karpenter.sh/nodepool``, ``karpenter.k8s.aws/ec2nodeclass``), so it can only touch nodes of this
cluster; every ARN is bound to this account and region.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.targets.aws import iam

# One managed policy per concern: together they exceed IAM's 6,144-character managed-policy limit.
CONCERNS = ("node-lifecycle", "iam-integration", "interruption", "discovery")


class _Cluster(iam.ClusterScope):
    """The names the documents scope this cluster's nodes by: the tags Karpenter puts on them."""

    @property
    def owned(self) -> str:
        return f"aws:ResourceTag/kubernetes.io/cluster/{self.cluster_name}"

    @property
    def owned_request(self) -> str:
        return f"aws:RequestTag/kubernetes.io/cluster/{self.cluster_name}"


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
    account), one document each."""
    cluster = _Cluster(cluster_name, account_id, partition, region)
    return {
        "node-lifecycle": iam.document(_node_lifecycle(cluster, ebs_kms_key_arn)),
        "iam-integration": iam.document(_iam_integration(cluster, node_role_arn)),
        "interruption": iam.document(_interruption(cluster_arn, queue_arn)),
        "discovery": iam.document(_discovery(cluster)),
    }


def _node_lifecycle(cluster: _Cluster, ebs_kms_key_arn: str) -> list[iam.PolicyStatement]:
    """Launch, tag and terminate this cluster's nodes; use the EBS key for their volumes."""
    return [*_launch_and_terminate(cluster), *_node_volumes(cluster.region, ebs_kms_key_arn)]


def _launch_and_terminate(cluster: _Cluster) -> list[iam.PolicyStatement]:
    partition, region, ec2 = cluster.partition, cluster.region, cluster.arn("ec2")
    cluster_name, owned, owned_request = cluster.cluster_name, cluster.owned, cluster.owned_request
    launched = [
        f"{ec2}:fleet/*",
        f"{ec2}:instance/*",
        f"{ec2}:volume/*",
        f"{ec2}:network-interface/*",
        f"{ec2}:launch-template/*",
        f"{ec2}:spot-instances-request/*",
    ]
    return [
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
    ]


def _node_volumes(region: str, ebs_kms_key_arn: str) -> list[iam.PolicyStatement]:
    return [
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


def _iam_integration(cluster: _Cluster, node_role_arn: str) -> list[iam.PolicyStatement]:
    """Pass the node role to EC2; manage the instance profiles Karpenter makes for its node classes."""
    region, cluster_name = cluster.region, cluster.cluster_name
    owned, owned_request = cluster.owned, cluster.owned_request
    instance_profiles = f"arn:{cluster.partition}:iam::{cluster.account_id}:instance-profile/*"
    return [
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


def _interruption(cluster_arn: str, queue_arn: str) -> list[iam.PolicyStatement]:
    """Find the API server; read the interruption queue."""
    return [
        iam.allow(["eks:DescribeCluster"], [cluster_arn], Sid="AllowAPIServerEndpointDiscovery"),
        iam.allow(
            ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            [queue_arn],
            Sid="AllowInterruptionQueueActions",
        ),
    ]


def _discovery(cluster: _Cluster) -> list[iam.PolicyStatement]:
    """Instance types, images, prices and the network to launch into: reads only."""
    partition, region = cluster.partition, cluster.region
    return [
        # EC2 Describe* calls support no resource-level permissions: they need "*"; region-bound.
        iam.allow_reads_in(
            region,
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
            Sid="AllowRegionalReadActions",
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
