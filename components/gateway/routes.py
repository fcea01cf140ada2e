"""A public service's routes through the gateway: its certificate, and per route the KongPlugins that
enforce the edge policy (IP allowlist, CORS, rate limit, request size, security headers) and the
Ingress that sends the route to the service."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from rampart.config.models import Route, ServiceSpec

INGRESS_CLASS = "kong"
KONG_API = "configuration.konghq.com/v1"
CERT_MANAGER_API = "cert-manager.io/v1"
SECURITY_HEADERS = (
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class PublicService:
    spec: ServiceSpec
    namespace: str
    # The service's namespace (or anything its routes must wait for), when created in this program.
    ready: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        if not self.spec.routes:
            raise ValueError(f"{self.spec.name}: a public service needs at least one route")


@dataclass(frozen=True)
class KongPluginSpec:
    name: str
    plugin: str
    config: dict[str, Any]


def route_name(service: str, index: int) -> str:
    return f"{service}-route-{index}"


def per_node_limit(requests_per_minute: int, gateway_replicas: int) -> int:
    """What each Kong node allows a client so that all of them together allow at most the declared
    number. DB-less Kong's ``local`` policy counts in each node's memory
    (https://developer.konghq.com/plugins/rate-limiting/#strategies), and the load balancer spreads a
    client's connections over every replica, so N nodes each counting the full limit let N times it
    through. Rounded down: the total never exceeds the declaration; a client whose connections all land
    on one node gets a little less (the config loader refuses a limit below the replica count)."""
    if requests_per_minute < gateway_replicas:
        raise ValueError(
            f"requests_per_minute {requests_per_minute} is below the {gateway_replicas} gateway replicas"
        )
    return requests_per_minute // gateway_replicas


def route_plugins(
    prefix: str, route: Route, default_max_body_mb: int, gateway_replicas: int = 1
) -> list[KongPluginSpec]:
    """The route's KongPlugins, in the order Kong's priorities run them anyway."""
    plugins: list[KongPluginSpec] = []

    def add(plugin: str, config: dict[str, Any]) -> None:
        plugins.append(KongPluginSpec(name=f"{prefix}-{plugin}", plugin=plugin, config=config))

    if route.ip_allowlist:
        add("ip-restriction", {"allow": list(route.ip_allowlist)})
    if route.cors_origins:
        add(
            "cors",
            {"origins": list(route.cors_origins), "credentials": True, "methods": list(CORS_METHODS)},
        )
    if route.rate_limit is not None:
        # DB-less Kong counts per node: `local` (or redis) is all it accepts; each node gets its share.
        minute = per_node_limit(route.rate_limit.requests_per_minute, gateway_replicas)
        add("rate-limiting", {"minute": minute, "policy": "local", "limit_by": "ip"})
    add(
        "request-size-limiting",
        {"allowed_payload_size": route.max_body_mb or default_max_body_mb, "size_unit": "megabytes"},
    )
    add(
        "response-transformer",
        {"add": {"headers": [f"{header}:{value}" for header, value in SECURITY_HEADERS]}},
    )
    return plugins


def ingress_annotations(plugins: Sequence[KongPluginSpec]) -> dict[str, str]:
    return {
        "konghq.com/plugins": ",".join(plugin.name for plugin in plugins),
        # HTTPS only (the gateway has no plaintext listener at all; the redirect is for any that may).
        "konghq.com/protocols": "https",
        "konghq.com/https-redirect-status-code": "301",
        "konghq.com/strip-path": "false",
        # Send the upstream's host (with service-upstream: the Service's in-mesh name), not the
        # client's: the backend's sidecar routes by Host, and under REGISTRY_ONLY an unknown Host
        # (api.<domain>) gets a 502. KIC preserves the client's Host unless this is "false".
        # https://developer.konghq.com/kubernetes-ingress-controller/reference/annotations/#konghqcompreserve-host
        "konghq.com/preserve-host": "false",
    }


def ingress_spec(spec: ServiceSpec, route: Route, tls_secret: str) -> k8s.networking.v1.IngressSpecArgs:
    backend = k8s.networking.v1.IngressBackendArgs(
        service=k8s.networking.v1.IngressServiceBackendArgs(
            name=spec.name, port=k8s.networking.v1.ServiceBackendPortArgs(number=spec.port)
        )
    )
    return k8s.networking.v1.IngressSpecArgs(
        ingress_class_name=INGRESS_CLASS,
        # The secret must live in the Ingress's own namespace: Kong's controller reads it from there.
        tls=[k8s.networking.v1.IngressTLSArgs(hosts=[route.host], secret_name=tls_secret)],
        rules=[
            k8s.networking.v1.IngressRuleArgs(
                host=route.host,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                    paths=[
                        k8s.networking.v1.HTTPIngressPathArgs(
                            path=route.path, path_type="Prefix", backend=backend
                        )
                    ]
                ),
            )
        ],
    )


def certificate_spec(hosts: Iterable[str], cluster_issuer: str, secret: str) -> dict[str, Any]:
    return {
        "secretName": secret,
        "dnsNames": sorted(set(hosts)),
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": cluster_issuer},
        # A fresh key at every renewal.
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    }


def service_tls_secret(service: str) -> str:
    return f"{service}-tls"


class KongPlugin(k8s.apiextensions.CustomResource):
    """A KongPlugin: its `plugin` and `config` sit at the top level of the object, next to
    `metadata`, which the Python SDK's CustomResource (spec only) cannot express
    (pulumi/pulumi-kubernetes#2363). The provider receives the whole object as its inputs."""

    def __init__(
        self,
        resource_name: str,
        *,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        spec: KongPluginSpec,
        opts: pulumi.ResourceOptions,
    ) -> None:
        props = {
            "apiVersion": KONG_API,
            "kind": "KongPlugin",
            "metadata": metadata,
            "plugin": spec.plugin,
            "config": spec.config,
        }
        pulumi.CustomResource.__init__(self, f"kubernetes:{KONG_API}:KongPlugin", resource_name, props, opts)
