"""Security groups for pods: each workload's pods get a security group of their own (on an EKS branch
network interface), so AWS resources such as its database can admit exactly those pods.

A pod security group is an identity, not a firewall: it carries no inline rules. The pods also keep
the cluster security group (DNS, the mesh, the API server and every other in-cluster path work as
before, and NetworkPolicies still apply); layers that protect a resource add the egress rule to that
resource on the pod group themselves (the database layer does, after both groups exist: no cycle).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import labels

SERVICE_TAG = "rampart.dev/service"
# The VPC resource controller's CRD, installed by EKS in every cluster.
API_VERSION = "vpcresources.k8s.aws/v1beta1"
KIND = "SecurityGroupPolicy"
DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class PodSecurityGroupsArgs:
    environment: str
    vpc_id: pulumi.Input[str]
    # Kept on every pod: the paths the cluster itself needs (nodes, DNS, control plane, other pods).
    cluster_security_group_id: pulumi.Input[str]
    # workload (its pods' app.kubernetes.io/name) -> its namespace.
    workloads: Mapping[str, str]
    # None: only the groups; each workload then creates its own policy (security_group_policy) so
    # its pods can wait for it.
    provider: k8s.Provider | None
    tags: Mapping[str, str] = field(default_factory=dict)
    # What the policies wait for: the namespaces they go into.
    depends_on: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        for workload, namespace in self.workloads.items():
            for value in (workload, namespace):
                if not DNS_LABEL.match(value):
                    raise ValueError(f"pod security group for {workload!r}: {value!r} is not a DNS label")


def policy_spec(workload: str, group_ids: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """SecurityGroupPolicy spec: the workload's pods (by the paved road's selector) get these groups."""
    return {
        "podSelector": {"matchLabels": labels.selector(workload)},
        "securityGroups": {"groupIds": list(group_ids)},
    }


class PodSecurityGroups(pulumi.ComponentResource):
    # workload -> the id of its pods' security group.
    security_group_ids: dict[str, pulumi.Output[str]]
    # workload -> its SecurityGroupPolicy: pods created before it exists do not get the group, so the
    # workload's Deployment must depend on it.
    policies: dict[str, k8s.apiextensions.CustomResource]

    def __init__(
        self, name: str, args: PodSecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:aws:PodSecurityGroups", name, {}, opts)
        self.security_group_ids = {}
        self.policies = {}
        for workload in sorted(args.workloads):
            namespace = args.workloads[workload]
            group = aws.ec2.SecurityGroup(
                f"{name}-{workload}-sg",
                vpc_id=args.vpc_id,
                description=f"Pods of {namespace}/{workload} ({args.environment}): their identity in the VPC",
                # No ingress or egress argument: no inline rules (and AWS's default allow-all egress rule
                # is removed on creation), so the rules other layers add stay.
                tags={**args.tags, SERVICE_TAG: workload, "Name": f"{args.environment}-{workload}-pods"},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.security_group_ids[workload] = group.id
            if args.provider is not None:
                self.policies[workload] = security_group_policy(
                    f"{name}-{workload}-policy",
                    workload=workload,
                    namespace=namespace,
                    group_ids=[group.id, args.cluster_security_group_id],
                    environment=args.environment,
                    opts=pulumi.ResourceOptions(
                        parent=self, provider=args.provider, depends_on=list(args.depends_on)
                    ),
                )
        self.register_outputs({"securityGroupIds": dict(self.security_group_ids)})


def security_group_policy(
    resource_name: str,
    *,
    workload: str,
    namespace: pulumi.Input[str],
    group_ids: Sequence[pulumi.Input[str]],
    environment: str,
    opts: pulumi.ResourceOptions,
) -> k8s.apiextensions.CustomResource:
    """The workload's pods get ``group_ids``. Pods created before it exists do not: the workload
    (Deployment, StatefulSet) must depend on it."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=API_VERSION,
        kind=KIND,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"{workload}-pods",
            namespace=namespace,
            labels=labels.common(environment) | labels.selector(workload),
        ),
        spec=policy_spec(workload, group_ids),
        opts=opts,
    )
