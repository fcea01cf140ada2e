"""The gateway layer in the composition root: Kong in front of every service with public routes."""

from __future__ import annotations

from components.certificates.cert_manager import CertificatesHandle
from components.contract import LayerContext
from components.gateway.kong import Gateway, GatewayArgs, GatewayHandle
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
    return Gateway(
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
            # Kong's proxy is a LoadBalancer Service: the controller behind it goes after it on destroy.
            depends_on=[*mesh.ready, *certificates.ready, *ctx.cluster.load_balancer_ready],
            # Kong's sidecar reports the gateway's spans to Tempo like every service's (issue 14):
            # the namespace's default deny blocks egress too.
            # https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-deny-all-egress-traffic
            extra_policies={"allow-span-export": span_export_egress(MONITORING_NAMESPACE)},
        ),
        opts=ctx.opts,
    ).handle
