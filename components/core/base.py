"""The one base of every component whose objects live in the cluster."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s


class InClusterComponent(pulumi.ComponentResource):
    """A component whose Kubernetes objects all name the cluster's provider explicitly, so none may
    fall back to the ambient kubeconfig; ``waits_for`` is what every one of them is created after."""

    def __init__(
        self,
        type_: str,
        name: str,
        *,
        provider: k8s.Provider,
        waits_for: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(type_, name, {}, opts)
        self._cluster_provider = provider
        self._waits_for = list(waits_for)

    def on_cluster(
        self, depends_on: Sequence[pulumi.Resource] = (), *, protect: bool = False
    ) -> pulumi.ResourceOptions:
        """Options for one of this component's Kubernetes objects, created after ``depends_on``;
        a protected object is also retained on delete, so a removed declaration never drops data."""
        return pulumi.ResourceOptions(
            parent=self,
            provider=self._cluster_provider,
            depends_on=[*self._waits_for, *depends_on],
            protect=protect,
            retain_on_delete=protect,
        )
