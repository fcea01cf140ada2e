"""What the AWS layers hand each other: small typed handles, no reaching into children."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class NetworkHandle:
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: list[str]
    # One subnet per availability zone, in the order of availability_zones.
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    isolated_subnet_ids: list[pulumi.Output[str]]


@dataclass(frozen=True)
class EksHandle:
    """The cluster as the add-on layers (Karpenter, load-balancer controller) need it."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    # The security group EKS creates for the control plane and managed nodes.
    cluster_security_group_id: pulumi.Output[str]
    # Role of the nodes Karpenter launches (it needs an access entry, created by the cluster layer).
    karpenter_node_role: aws.iam.Role
    # Encrypts node volumes (EBS) everywhere: managed node group and Karpenter nodes.
    ebs_kms_key_arn: pulumi.Output[str]
    region: str
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    # The Karpenter node role's policy attachments: its EC2NodeClass waits for them, so no node launches
    # with a role that cannot join, and destroy removes the class before the policies.
    karpenter_node_role_policies: list[pulumi.Resource] = field(default_factory=list)


@dataclass(frozen=True)
class PodIdentity:
    """What a platform layer needs to give its pods AWS permissions through EKS Pod Identity."""

    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    permissions_boundary: str | None


@dataclass(frozen=True)
class AwsContext:
    """What the `aws` target hands the layers that create AWS resources of their own."""

    # Pod Identity roles for platform pods (cert-manager's Route 53, Vault's KMS unseal, Loki's bucket).
    pod_identity: PodIdentity
    network: NetworkHandle
    # The group EKS gives the control plane, managed nodes and every pod.
    cluster_security_group_id: pulumi.Output[str]
    # environment and owner, on resources whose tags the layers set themselves.
    tags: dict[str, str]
    log_retention_days: int
