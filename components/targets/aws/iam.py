"""IAM documents built in Python (no invokes), and roles for pods through EKS Pod Identity.

Every add-on gets its own role; its trust policy admits only the EKS Pod Identity service
*and* only sessions tagged with its own cluster, namespace and service account, so no other
pod can assume it even if someone associates it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import netpol

PolicyStatement = dict[str, Any]
# The EKS Pod Identity agent on every node: the link-local addresses pods fetch their role's
# credentials from, over plain HTTP.
POD_IDENTITY_AGENT_CIDRS = ("169.254.170.23/32", "fd00:ec2::23/128")
POD_IDENTITY_AGENT_PORT = 80


def to_pod_identity_agent() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """The egress a pod with a Pod Identity role needs to get its credentials."""
    return netpol.EgressRule(
        to=netpol.cidrs(POD_IDENTITY_AGENT_CIDRS), ports=netpol.tcp(POD_IDENTITY_AGENT_PORT)
    )


@dataclass(frozen=True)
class ClusterScope:
    """The cluster, account and region an add-on controller's statements are scoped to."""

    cluster_name: str
    account_id: str
    partition: str
    region: str

    def arn(self, service: str) -> str:
        """The ARN prefix of ``service``'s resources in this account and region."""
        return f"arn:{self.partition}:{service}:{self.region}:{self.account_id}"


def document(statements: Sequence[PolicyStatement]) -> str:
    """An IAM policy document as JSON text (what aws.iam.Policy takes)."""
    for statement in statements:
        actions = statement.get("Action", [])
        if actions == "*" or "*" in actions:
            raise ValueError("a policy statement may not allow every action")
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def allow(actions: Sequence[str], resources: Sequence[str] | str = "*", **extra: Any) -> PolicyStatement:
    statement: PolicyStatement = {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    statement.update(extra)
    return statement


def allow_reads_in(region: str, actions: Sequence[str], **extra: Any) -> PolicyStatement:
    """Read actions that support no resource-level permissions (they need "*"), in one region only."""
    return allow(actions, "*", Condition={"StringEquals": {"aws:RequestedRegion": region}}, **extra)


def service_trust(*services: str) -> str:
    return document(
        [{"Effect": "Allow", "Principal": {"Service": sorted(services)}, "Action": ["sts:AssumeRole"]}]
    )


def pod_identity_trust(
    cluster_arn: pulumi.Input[str], namespace: str, service_account: str
) -> pulumi.Output[str]:
    def build(arn: str) -> str:
        return document(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {
                        "StringEquals": {
                            "aws:RequestTag/eks-cluster-arn": arn,
                            "aws:RequestTag/kubernetes-namespace": namespace,
                            "aws:RequestTag/kubernetes-service-account": service_account,
                        }
                    },
                }
            ]
        )

    return pulumi.Output.from_input(cluster_arn).apply(build)


class PodIdentityRole(pulumi.ComponentResource):
    """A role for one service account, its policies, and the Pod Identity association.

    The association (or, with ``associate=False``, the add-on that creates it: wait for ``policies``)
    comes after the role's policies and goes before them on destroy: credentials handed out before
    the attachment exist lack its permissions, and a pod keeps running after the policy is detached."""

    role: aws.iam.Role
    # The role's policy attachments: what a consumer of the role waits for.
    policies: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        *,
        cluster_name: pulumi.Input[str],
        cluster_arn: pulumi.Input[str],
        namespace: str,
        service_account: str,
        policy_json: pulumi.Input[str] | None = None,
        managed_policy_arns: Sequence[pulumi.Input[str]] = (),
        permissions_boundary: str | None = None,
        associate: bool = True,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("rampart:aws:PodIdentityRole", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pod_identity_trust(cluster_arn, namespace, service_account),
            permissions_boundary=permissions_boundary,
            description=f"{namespace}/{service_account} through EKS Pod Identity",
            opts=child,
        )
        self.policies = []
        if policy_json is not None:
            policy = aws.iam.Policy(f"{name}-policy", policy=policy_json, opts=child)
            self.policies.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-policy", role=self.role.name, policy_arn=policy.arn, opts=child
                )
            )
        for index, arn in enumerate(managed_policy_arns):
            self.policies.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-managed-{index}", role=self.role.name, policy_arn=arn, opts=child
                )
            )
        if associate:
            aws.eks.PodIdentityAssociation(
                f"{name}-association",
                cluster_name=cluster_name,
                namespace=namespace,
                service_account=service_account,
                role_arn=self.role.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=self.policies),
            )
        self.register_outputs({"roleArn": self.role.arn})


def controller_role(
    name: str,
    *,
    title: str,
    documents: pulumi.Output[dict[str, str]],
    concerns: Sequence[str],
    cluster_name: pulumi.Input[str],
    cluster_arn: pulumi.Input[str],
    namespace: str,
    service_account: str,
    permissions_boundary: str | None,
    opts: pulumi.ResourceOptions,
) -> PodIdentityRole:
    """An add-on controller's Pod Identity role with one managed policy per concern (``documents`` by
    concern): together the documents would exceed IAM's 6,144-character managed-policy limit."""

    def document(concern: str) -> pulumi.Output[str]:
        return documents.apply(lambda by_concern: by_concern[concern])

    policies = [
        aws.iam.Policy(
            f"{name}-{concern}", description=f"{title}: {concern}", policy=document(concern), opts=opts
        )
        for concern in concerns
    ]
    return PodIdentityRole(
        f"{name}-controller",
        cluster_name=cluster_name,
        cluster_arn=cluster_arn,
        namespace=namespace,
        service_account=service_account,
        managed_policy_arns=[policy.arn for policy in policies],
        permissions_boundary=permissions_boundary,
        opts=opts,
    )
