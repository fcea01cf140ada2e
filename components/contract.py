"""The two contracts the composition root (components/platform.py) is written against.

A **target** builds (or finds) the cluster and hands the layers a `TargetHandle`: the cluster, and
on a cloud the context layers need to create their own cloud resources. A **layer** is built from a
`LayerContext` and its own config slice, returns a small typed handle, and may contribute to each
declared service what the service's namespace and pods need (`ServiceNeeds`). Contributions are
merged in one loop (`merge_needs`) and handed to the paved road as plain typed arguments, so a new
per-service concern is one contributor, not an edit of every layer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_kubernetes as k8s

from components.core import quota
from components.core.base import InCluster
from components.core.protection import is_protected
from components.targets.aws.handles import AwsContext
from rampart.config import PlatformConfig, ServiceSpec


@dataclass(frozen=True)
class ClusterHandle:
    """What every in-cluster layer needs from the cluster layer, whichever target built it."""

    provider: k8s.Provider
    name: str
    kubernetes_version: str
    # Zone-spread topology is only meaningful where nodes carry zone labels.
    multi_zone: bool
    # What in-cluster layers wait for before installing (nodes, CNI, DNS); empty for an
    # existing cluster.
    ready: list[pulumi.Resource] = field(default_factory=list)
    # What a Service of type LoadBalancer must wait for: the controller that provisions its load balancer
    # and holds its finalizer (aws: the AWS Load Balancer Controller release), so `pulumi destroy` deletes
    # the Service while the controller still runs to delete the NLB. Empty for an existing cluster, whose
    # load balancers come from outside the plan.
    load_balancer_ready: list[pulumi.Resource] = field(default_factory=list)
    # The most nodes the stack lets the cluster have: a DaemonSet runs this many pods at most, and
    # namespace quotas are sized for it (aws: the system node group's max_size plus what Karpenter's
    # limits allow; an existing cluster: kubernetes.max_nodes from config).
    max_nodes: int = 1


@dataclass(frozen=True)
class ServiceNeeds:
    """What the platform layers add to one service's namespace and pods."""

    # NetworkPolicies by name, next to the service's own (egress to its database, span export, ...).
    policies: Mapping[str, k8s.networking.v1.NetworkPolicySpecArgs] = field(default_factory=dict)
    # Quota for other layers' workloads in the namespace (its in-cluster database).
    quota: Mapping[str, str] = field(default_factory=dict)
    # aws: security groups the pods carry (security groups for pods).
    pod_security_groups: tuple[pulumi.Input[str], ...] = ()

    def merged(self, other: ServiceNeeds) -> ServiceNeeds:
        clash = self.policies.keys() & other.policies.keys()
        if clash:
            # Two layers writing one policy name would silently replace each other's rules.
            raise ValueError(f"two layers contribute the NetworkPolicy {sorted(clash)[0]!r}")
        return ServiceNeeds(
            policies={**self.policies, **other.policies},
            quota=quota.combine(self.quota, other.quota)
            if self.quota and other.quota
            else dict(self.quota or other.quota),
            pod_security_groups=(*self.pod_security_groups, *other.pod_security_groups),
        )


class ServiceContributor(Protocol):
    """A layer (or target) that adds to what each declared service gets."""

    def service_needs(self, spec: ServiceSpec) -> ServiceNeeds: ...


def merge_needs(
    services: Sequence[ServiceSpec], contributors: Sequence[ServiceContributor]
) -> dict[str, ServiceNeeds]:
    """Every contributor's needs for every service, merged: the one place they meet."""
    return {
        spec.name: functools.reduce(
            ServiceNeeds.merged, (c.service_needs(spec) for c in contributors), ServiceNeeds()
        )
        for spec in services
    }


@dataclass(frozen=True)
class TargetHandle:
    """What a target hands the layers, whichever it is."""

    cluster: ClusterHandle
    # aws: what layers need to create their own AWS resources (Pod Identity roles, buckets,
    # databases); None on an existing cluster, where everything runs in the cluster.
    aws: AwsContext | None
    # Options for layers' cloud resources: the platform as parent, and the target's cloud provider.
    cloud_opts: pulumi.ResourceOptions
    # workload (service or platform namespace) -> the security groups its pods carry.
    pod_security_groups: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)

    def service_needs(self, spec: ServiceSpec) -> ServiceNeeds:
        return ServiceNeeds(pod_security_groups=tuple(self.pod_security_groups.get(spec.name, ())))


class Target(Protocol):
    """Builds the cluster (or reaches an existing one) for a stack's config."""

    def __call__(
        self, config: PlatformConfig, parent: pulumi.Resource, database_clients: Sequence[str] = ()
    ) -> TargetHandle: ...


@dataclass(frozen=True)
class LayerContext:
    """What every layer is built from, besides its own config slice."""

    environment: str
    # One per-environment rule (components.core.protection): what survives a destroy.
    protect: bool
    cluster: ClusterHandle
    target: TargetHandle
    # Children of the platform component.
    opts: pulumi.ResourceOptions

    @classmethod
    def of(cls, config: PlatformConfig, target: TargetHandle, parent: pulumi.Resource) -> LayerContext:
        return cls(
            environment=config.environment,
            protect=is_protected(config.environment),
            cluster=target.cluster,
            target=target,
            opts=pulumi.ResourceOptions(parent=parent),
        )

    @property
    def provider(self) -> k8s.Provider:
        return self.cluster.provider

    def in_cluster(self, *after: pulumi.Resource) -> InCluster:
        """An in-cluster component's placement: the cluster's provider, created once the cluster is
        ready and after ``after``."""
        return InCluster(
            provider=self.provider, environment=self.environment, depends_on=[*self.cluster.ready, *after]
        )

    @property
    def aws(self) -> AwsContext | None:
        return self.target.aws

    @property
    def cloud_opts(self) -> pulumi.ResourceOptions:
        return self.target.cloud_opts
