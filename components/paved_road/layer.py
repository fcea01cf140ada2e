"""The paved road as a layer: one `Microservice` per declared service, with the needs every other
layer contributed merged into it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components import gateway
from components.contract import LayerContext, ServiceNeeds
from components.mesh.istio import MeshHandle
from components.mesh.policy import ServiceIdentity
from components.paved_road.admission import ImageAdmission, ImageRules, platform_images
from components.paved_road.microservice import MeshBinding, Microservice, MicroserviceArgs
from components.paved_road.service_network import Peer
from components.paved_road.team_access import TeamBinding
from rampart.config import PlatformConfig

# Each service lives in the namespace named after it, under a service account of its name.
GATEWAY_IDENTITY = ServiceIdentity(gateway.NAMESPACE, gateway.GATEWAY_SERVICE_ACCOUNT)


@dataclass(frozen=True)
class ServicesHandle:
    """What the layers built after the services need: each service's namespace, to put their own
    objects in it (and wait for it), and its address."""

    services: Mapping[str, Microservice]

    @property
    def namespaces(self) -> dict[str, pulumi.Resource]:
        return {name: service.namespace_resource for name, service in self.services.items()}

    def namespace(self, name: str) -> pulumi.Resource:
        return self.services[name].namespace_resource


def build(
    ctx: LayerContext, config: PlatformConfig, mesh: MeshHandle, needs: Mapping[str, ServiceNeeds]
) -> ServicesHandle:
    peers = {s.name: Peer(name=s.name, namespace=s.name, port=s.port) for s in config.services}
    # Which images the cluster admits in service namespaces: in place before any service workload.
    rules = ImageRules.of(
        ctx.environment,
        config.supply_chain.allowed_registries if config.supply_chain else None,
        platform_images(
            in_cluster_databases=ctx.aws is None and any(s.database for s in config.services),
            postgres_engine=config.databases.engine_version,
        ),
    )
    admission = (
        ImageAdmission(
            "service-images",
            rules,
            environment=ctx.environment,
            provider=ctx.provider,
            waits_for=ctx.cluster.ready,
            opts=ctx.opts,
        ).ready
        if rules.enforced
        else []
    )
    services: dict[str, Microservice] = {}
    for spec in config.services:
        callers = config.callers_of(spec.name)
        contributed = needs[spec.name]
        services[spec.name] = Microservice(
            spec.name,
            MicroserviceArgs(
                spec=spec,
                environment=ctx.environment,
                sizing=config.sizing,
                cluster=ctx.cluster,
                caller_namespaces=[peers[caller].namespace for caller in callers],
                callees=[peers[callee] for callee in spec.calls],
                gateway_namespace=gateway.NAMESPACE if spec.routes else None,
                extra_policies=dict(contributed.policies),
                extra_quota=contributed.quota,
                pod_security_groups=contributed.pod_security_groups,
                admission=admission,
                team=TeamBinding(spec.team, config.team(spec.team).group) if spec.team else None,
                mesh=MeshBinding(
                    trust_domain=mesh.trust_domain,
                    root_namespace=mesh.root_namespace,
                    injection_labels=mesh.injection_labels,
                    callers=[ServiceIdentity(peers[c].namespace, c) for c in callers],
                    gateway=GATEWAY_IDENTITY if spec.routes else None,
                    jwt=config.jwt,
                    ready=mesh.ready,
                ),
            ),
            opts=ctx.opts,
        )
    return ServicesHandle(services)
