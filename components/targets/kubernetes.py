"""The cluster layer's contract, and the `kubernetes` target: an existing cluster from the kubeconfig."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s


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


@dataclass(frozen=True)
class ExistingClusterArgs:
    context: str | None
    kubernetes_version: str
    multi_zone: bool


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
        )
        self.register_outputs({"context": args.context or "(current)"})
