"""How a team's people reach an EKS cluster: an access entry per IAM role the team assumes, in the team's
Kubernetes group (which the paved road's team RoleBinding in each of its namespaces names), and a read-only
access policy scoped to those namespaces alone.

EKS access entries and policies: https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html and
https://docs.aws.amazon.com/eks/latest/userguide/access-policies.html ("You can scope an access policy to all
resources on a cluster or by specifying the name of one or more Kubernetes namespaces"). Only the platform
admins' entries carry a cluster scope (eks.py); `rampart access` checks that nobody else does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# AmazonEKSViewPolicy: get/list/watch on most namespaced resources, Secrets excluded (EKS user guide,
# "Review access policy permissions"). Writes (rolling a Deployment, port-forward) come from the team's Role.
VIEW_POLICY = "arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


@dataclass(frozen=True)
class TeamAccess:
    """One team as the cluster admits it: its group, the IAM roles that act for it, and its namespaces."""

    name: str
    group: str
    role_arns: Sequence[str]
    # The team's service namespaces (each service's own); the access policy reaches these only.
    namespaces: Sequence[str]


def team_access_entries(
    name: str,
    *,
    cluster_name: pulumi.Input[str],
    partition: pulumi.Input[str],
    teams: Sequence[TeamAccess],
    opts: pulumi.ResourceOptions,
) -> list[aws.eks.AccessPolicyAssociation]:
    """A STANDARD access entry per team role, in the team's group, and the view policy on its namespaces.
    A team without services gets its entries (so its people can log in) and no policy."""
    associations = []
    for team in teams:
        for index, principal in enumerate(team.role_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-team-{team.name}-{index}",
                cluster_name=cluster_name,
                principal_arn=principal,
                type="STANDARD",
                kubernetes_groups=[team.group],
                opts=opts,
            )
            if not team.namespaces:
                continue
            associations.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-team-{team.name}-{index}",
                    cluster_name=cluster_name,
                    principal_arn=entry.principal_arn,
                    policy_arn=pulumi.Output.from_input(partition).apply(
                        lambda p: VIEW_POLICY.format(partition=p)
                    ),
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                        type="namespace", namespaces=sorted(team.namespaces)
                    ),
                    opts=opts,
                )
            )
    return associations
