"""The `kubernetes` target: an existing cluster from the kubeconfig."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.contract import ClusterHandle, TargetHandle
from rampart.config import PlatformConfig


@dataclass(frozen=True)
class ExistingClusterArgs:
    context: str | None
    kubernetes_version: str
    multi_zone: bool
    # The most nodes the cluster has (DaemonSets run a pod on each).
    max_nodes: int = 1


class ExistingCluster(pulumi.ComponentResource):
    """A cluster that already exists (kind, k3d, minikube, ...), reached through the kubeconfig.

    The provider is explicit so no resource ever falls back to the ambient default provider.
    """

    handle: ClusterHandle

    def __init__(
        self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:cluster:ExistingCluster", name, {}, opts)
        provider = k8s.Provider(
            f"{name}-k8s",
            context=args.context,
            # Fail on fields the API server does not know rather than dropping them silently.
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.handle = ClusterHandle(
            provider=provider,
            name=name,
            kubernetes_version=args.kubernetes_version,
            multi_zone=args.multi_zone,
            max_nodes=args.max_nodes,
        )
        self.register_outputs({"context": args.context or "(current)"})


def kubernetes_target(
    config: PlatformConfig, parent: pulumi.Resource, database_clients: Sequence[str] = ()
) -> TargetHandle:
    """Any existing cluster: everything runs in it, so the layers get no cloud context; pods that
    reach databases need no security groups (NetworkPolicies fence the in-cluster databases)."""
    cluster = ExistingCluster(
        "cluster",
        ExistingClusterArgs(
            context=config.kubernetes.context,
            kubernetes_version=config.kubernetes.version,
            multi_zone=config.kubernetes.multi_zone,
            max_nodes=config.kubernetes.max_nodes,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return TargetHandle(cluster=cluster.handle, aws=None, cloud_opts=pulumi.ResourceOptions(parent=parent))
