"""The one base of every component whose objects live in the cluster."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s


class InCluster(TypedDict):
    """Where an in-cluster component goes, as a layer's context fills it in
    (``LayerContext.in_cluster``) for an :class:`InClusterArgs`: ``Args(..., **ctx.in_cluster())``."""

    provider: k8s.Provider
    environment: str
    depends_on: Sequence[pulumi.Resource]


class Placement(TypedDict):
    """:class:`InClusterComponent`'s own keywords, as an :class:`InClusterArgs` gives them."""

    provider: k8s.Provider
    waits_for: Sequence[pulumi.Resource]


@dataclass(frozen=True, kw_only=True)
class InClusterArgs:
    """The arguments every in-cluster component shares; each component's own are keyword-only
    fields of a subclass."""

    # The cluster's provider: every object names it, none falls back to the ambient kubeconfig.
    provider: k8s.Provider
    environment: str
    # What the component's objects are created after (all of them, with `placement`).
    depends_on: Sequence[pulumi.Resource] = ()

    def placement(self) -> Placement:
        """For a component every object of which waits for ``depends_on``:
        ``super().__init__(type_, name, **args.placement(), opts=opts)``."""
        return Placement(provider=self.provider, waits_for=self.depends_on)


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
