"""IAM documents built in Python (no invokes), and roles for pods through EKS Pod Identity.

Every add-on gets its own role; its trust policy admits only the EKS Pod Identity service
*and* only sessions tagged with its own cluster, namespace and service account, so no other
pod can assume it even if someone associates it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

PolicyStatement = dict[str, Any]


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
    """A role for one service account, its policies, and the Pod Identity association."""

    role: aws.iam.Role

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
        if policy_json is not None:
            policy = aws.iam.Policy(f"{name}-policy", policy=policy_json, opts=child)
            aws.iam.RolePolicyAttachment(
                f"{name}-policy", role=self.role.name, policy_arn=policy.arn, opts=child
            )
        for index, arn in enumerate(managed_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-managed-{index}", role=self.role.name, policy_arn=arn, opts=child
            )
        if associate:
            aws.eks.PodIdentityAssociation(
                f"{name}-association",
                cluster_name=cluster_name,
                namespace=namespace,
                service_account=service_account,
                role_arn=self.role.arn,
                opts=child,
            )
        self.register_outputs({"roleArn": self.role.arn})
