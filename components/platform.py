"""The platform: the cluster layer, then one paved-road service per declared service.

Layers hand each other small typed handles (``ClusterHandle``); later layers (mesh,
gateway, secrets, data, messaging, monitoring) slot in between the cluster and the
services the same way.
"""

from __future__ import annotations

import pulumi

from components.aws.cluster import AwsCluster, AwsClusterArgs
from components.cluster import ClusterHandle, ExistingCluster, ExistingClusterArgs
from components.microservice import Microservice, MicroserviceArgs
from components.service_network import Peer
from rampart.config import PlatformConfig


class Platform(pulumi.ComponentResource):
    cluster: ClusterHandle
    services: dict[str, Microservice]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:index:Platform", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = _cluster_layer(config, child)

        # Each service lives in the namespace named after it.
        peers = {s.name: Peer(name=s.name, namespace=s.name, port=s.port) for s in config.services}
        self.services = {
            spec.name: Microservice(
                spec.name,
                MicroserviceArgs(
                    spec=spec,
                    environment=config.environment,
                    sizing=config.sizing,
                    cluster=self.cluster,
                    caller_namespaces=[peers[caller].namespace for caller in config.callers_of(spec.name)],
                    callees=[peers[callee] for callee in spec.calls],
                ),
                opts=child,
            )
            for spec in config.services
        }
        self.register_outputs({"services": {name: svc.address for name, svc in self.services.items()}})


def _cluster_layer(config: PlatformConfig, opts: pulumi.ResourceOptions) -> ClusterHandle:
    """The cluster, by target: an EKS cluster Rampart builds, or one that already exists."""
    if config.target == "aws":
        assert config.aws is not None  # enforced when the config is loaded
        return AwsCluster(
            "cluster",
            AwsClusterArgs(
                environment=config.environment,
                settings=config.aws,
                kubernetes_version=config.kubernetes.version,
                tags={
                    "environment": config.environment,
                    "owner": config.owner,
                    "cost-center": config.cost_center,
                },
                protect=config.environment in ("staging", "prod"),
            ),
            opts=opts,
        ).handle
    return ExistingCluster(
        "cluster",
        ExistingClusterArgs(
            context=config.kubernetes.context,
            kubernetes_version=config.kubernetes.version,
            multi_zone=config.kubernetes.multi_zone,
        ),
        opts=opts,
    ).handle
