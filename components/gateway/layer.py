"""The gateway layer in the composition root: Kong in front of every service with public routes."""

from __future__ import annotations

from components.certificates.cert_manager import CertificatesHandle
from components.contract import LayerContext
from components.gateway.edge_aws import GatewayEdge, GatewayEdgeArgs
from components.gateway.kong import PROXY_SERVICE, Gateway, GatewayArgs, GatewayHandle
from components.gateway.routes import PublicService
from components.mesh.istio import MeshHandle
from components.observability import NAMESPACE as MONITORING_NAMESPACE
from components.observability.logging_tracing import span_export_egress
from components.paved_road.layer import ServicesHandle
from rampart.config import PlatformConfig


def build(
    ctx: LayerContext,
    config: PlatformConfig,
    certificates: CertificatesHandle,
    mesh: MeshHandle,
    services: ServicesHandle,
) -> GatewayHandle:
    gateway = Gateway(
        "gateway",
        GatewayArgs(
            config=config.gateway,
            provider=ctx.provider,
            environment=ctx.environment,
            on_aws=ctx.aws is not None,
            cluster_issuer=certificates.cluster_issuer,
            injection_labels=mesh.injection_labels,
            # Routes live in the services' namespaces: each waits for its own namespace only.
            services=[
                PublicService(spec=s, namespace=s.name, ready=[services.namespace(s.name)])
                for s in config.services
                if s.routes
            ],
            # A LoadBalancer proxy Service (or, on aws, the TargetGroupBinding to it) goes before the
            # load-balancer controller on destroy.
            depends_on=[*mesh.ready, *certificates.ready, *ctx.cluster.load_balancer_ready],
            # Kong's sidecar reports the gateway's spans to Tempo like every service's (issue 14):
            # the namespace's default deny blocks egress too.
            # https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-deny-all-egress-traffic
            extra_policies={"allow-span-export": span_export_egress(MONITORING_NAMESPACE)},
        ),
        opts=ctx.opts,
    )
    hosts = sorted({route.host for s in config.services for route in s.routes})
    if ctx.aws is not None and hosts:
        # The config loader requires the hosted zone on aws when any route is public.
        assert config.certificates.hosted_zone_id is not None
        GatewayEdge(
            "gateway-edge",
            GatewayEdgeArgs(
                environment=ctx.environment,
                network=ctx.aws.network,
                cluster_security_group_id=ctx.aws.cluster_security_group_id,
                source_ranges=config.gateway.source_ranges,
                hosts=hosts,
                hosted_zone_id=config.certificates.hosted_zone_id,
                namespace=gateway.handle.namespace,
                proxy_service=PROXY_SERVICE,
                provider=ctx.provider,
                binding_after=[gateway, *ctx.cluster.load_balancer_ready],
                tags=ctx.aws.tags,
            ),
            opts=ctx.cloud_opts,
        )
    return gateway.handle
