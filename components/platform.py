"""The composition root: the target, then the layers, in the order they depend on each other.

Each layer is a package under components/ with a `layer.py` entry point, built from the typed
`LayerContext` and its own config slice; it hands later layers a small typed handle and may
contribute to every service (components.contract). See docs/architecture.md.
"""

from __future__ import annotations

import pulumi

from components.certificates import layer as certificates_layer
from components.contract import ClusterHandle, LayerContext, merge_needs
from components.data import layer as data_layer
from components.gateway import layer as gateway_layer
from components.mesh import layer as mesh_layer
from components.observability import layer as observability_layer
from components.paved_road import layer as paved_road_layer
from components.paved_road.microservice import Microservice
from components.secrets import layer as secrets_layer
from components.targets.select import TARGETS
from rampart.config import PlatformConfig


class Platform(pulumi.ComponentResource):
    cluster: ClusterHandle
    services: dict[str, Microservice]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:index:Platform", name, {}, opts)
        target = TARGETS[config.target](config, self, data_layer.security_group_clients(config))
        ctx = LayerContext.of(config, target, parent=self)
        self.cluster = ctx.cluster

        tls = certificates_layer.build(ctx, config.certificates)
        service_mesh = mesh_layer.build(
            ctx, config.mesh, extension_providers=[observability_layer.tracing_provider()]
        )
        vault = secrets_layer.build_server(
            ctx,
            config.vault,
            tls,
            service_mesh,
            backend_ports=data_layer.vault_backend_ports(config, in_cluster=ctx.aws is None),
            database_ca=data_layer.vault_database_ca(config, on_aws=ctx.aws is not None),
        )
        # What every layer adds to each service, merged once, then the paved road per service.
        needs = merge_needs(
            config.services, [target, observability_layer.SpanExport(), data_layer.DataNeeds(config)]
        )
        services = paved_road_layer.build(ctx, config, service_mesh, needs)
        databases = data_layer.build(ctx, config, tls, service_mesh, services)
        if config.vault.configure:
            secrets_layer.configure(ctx, config, vault, databases, services)
        gateway_layer.build(ctx, config, tls, service_mesh, services)
        observability_layer.build(ctx, config, service_mesh, services)

        self.services = dict(services.services)
        self.register_outputs({"services": {n: svc.address for n, svc in self.services.items()}})
