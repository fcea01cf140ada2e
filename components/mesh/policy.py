"""The Istio objects one service gets: who may call it, where its JWT is checked, how callers reach
it, and which external hosts it may reach.

Pure builders (plain data, no Pulumi resources) so the rules are testable on their own; the
Microservice component turns each :class:`CustomObject` into a CustomResource.

The mesh root namespace holds an allow-nothing AuthorizationPolicy, so a service is reachable only
through the ALLOW policy built here; with no callers and no gateway none is built and every
request to the service is denied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from components.core import labels
from rampart.config.models import Egress, Jwt, LoadBalancing, ServiceSpec

SECURITY_API = "security.istio.io/v1"
NETWORKING_API = "networking.istio.io/v1"
# A retry re-sends the request. For every method only what never reached the application:
# connect-failure (no connection to the upstream) and refused-stream (HTTP/2 REFUSED_STREAM: the
# server did not process the stream). A reset or a 5xx can come after the application acted, so
# only idempotent methods (RFC 9110 section 9.2.2: GET, HEAD, OPTIONS, PUT, DELETE; TRACE is never
# routed) are retried on those as well. Envoy's x-envoy-retry-on semantics:
# https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on,
# https://www.rfc-editor.org/rfc/rfc9110#section-9.2.2
RETRY_ON_ANY_METHOD = "connect-failure,refused-stream"
RETRY_ON_IDEMPOTENT = "5xx,reset,connect-failure,refused-stream"
IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
OUTLIER_INTERVAL = "10s"
OUTLIER_BASE_EJECTION = "30s"
OUTLIER_MAX_EJECTION_PERCENT = 50
EGRESS_PORT = {"number": 443, "name": "https", "protocol": "TLS"}
LOAD_BALANCERS: dict[LoadBalancing, dict[str, Any]] = {
    "round_robin": {"simple": "ROUND_ROBIN"},
    "least_request": {"simple": "LEAST_REQUEST"},
    "source_ip_hash": {"consistentHash": {"useSourceIp": True}},
}
# Istio durations: at least 1ms (CRD validation), at most nanosecond precision (protobuf JSON).
_MIN_DURATION = Decimal("0.001")
_NANOSECOND = Decimal("0.000000001")


@dataclass(frozen=True)
class CustomObject:
    """A namespaced Istio custom resource, without its namespace (the caller places it)."""

    api_version: str
    kind: str
    name: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class ServiceIdentity:
    """A workload's mesh identity: the service account its pods run as."""

    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        # A principal built from '' or '*' would match more than one workload.
        for part in (self.namespace, self.service_account):
            if not part or "*" in part or "/" in part:
                raise ValueError(f"invalid identity part {part!r} in {self}")

    def principal(self, trust_domain: str) -> str:
        """The SPIFFE principal Istio matches in `source.principals` (no 'spiffe://' prefix)."""
        if not trust_domain or "*" in trust_domain or "/" in trust_domain:
            raise ValueError(f"invalid trust domain {trust_domain!r}")
        return f"{trust_domain}/ns/{self.namespace}/sa/{self.service_account}"


def service_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def istio_duration(seconds: float) -> str:
    """15.0 -> '15s', 2.5 -> '2.5s' (protobuf JSON duration, as Istio's CRDs expect)."""
    value = Decimal(repr(seconds)).quantize(_NANOSECOND).normalize()
    if value < _MIN_DURATION:
        raise ValueError(f"duration {seconds}s is below Istio's minimum of 1ms")
    return f"{value:f}s"


def service_mesh_objects(
    spec: ServiceSpec,
    *,
    namespace: str,
    trust_domain: str,
    callers: list[ServiceIdentity],
    gateway: ServiceIdentity | None,
    jwt: Jwt | None,
) -> list[CustomObject]:
    """Every Istio object the service needs, in a deterministic order."""
    if spec.routes and gateway is None:
        raise ValueError(f"{spec.name}: has public routes but no gateway identity to admit")
    if any(route.auth for route in spec.routes) and jwt is None:
        # Fail closed: without an issuer the token could not be checked at the sidecar.
        raise ValueError(f"{spec.name}: routes with auth: true need a jwt issuer")
    objects: list[CustomObject] = []
    allow = allow_callers(spec, trust_domain, [*callers, *([gateway] if gateway else [])])
    if allow is not None:
        objects.append(allow)
    if jwt is not None and gateway is not None:
        objects += jwt_objects(spec, jwt, gateway.principal(trust_domain))
    objects.append(destination_rule(spec, namespace))
    objects.append(virtual_service(spec, namespace))
    objects += egress_entries(spec)
    return objects


def allow_callers(
    spec: ServiceSpec, trust_domain: str, identities: Iterable[ServiceIdentity]
) -> CustomObject | None:
    """ALLOW exactly these principals on the service port; None when nobody may call."""
    principals = sorted({identity.principal(trust_domain) for identity in identities})
    if not principals:
        # An ALLOW policy with no principals would be invalid or open; the mesh-wide
        # allow-nothing policy already denies every request.
        return None
    rule = {
        "from": [{"source": {"principals": principals}}],
        "to": [{"operation": {"ports": [str(spec.port)]}}],
    }
    return CustomObject(
        SECURITY_API,
        "AuthorizationPolicy",
        f"{spec.name}-allow-callers",
        {"selector": labels.workload_selector(spec.name), "action": "ALLOW", "rules": [rule]},
    )


def path_patterns(path: str) -> list[str]:
    """Istio path matches for a gateway route path, which the gateway matches as a prefix."""
    if "*" in path:
        # Istio reads '*' as a wildcard; a literal one would change what the rule covers.
        raise ValueError(f"route path {path!r} contains '*'")
    return ["/*"] if path == "/" else [path, f"{path}*"]


def jwt_objects(spec: ServiceSpec, jwt: Jwt, gateway_principal: str) -> list[CustomObject]:
    """Check tokens at the service's own sidecar, and demand one on the auth routes' paths."""
    auth_paths = sorted({route.path for route in spec.routes if route.auth})
    if not auth_paths:
        return []
    public_paths = sorted({route.path for route in spec.routes if not route.auth} - set(auth_paths))
    # Istio: istiod fetches jwksUri itself and hands the keys to the sidecars; an inline jwks is used
    # as it is, with no fetch (https://istio.io/latest/docs/reference/config/security/jwt/).
    keys = {"jwks": jwt.jwks} if jwt.jwks is not None else {"jwksUri": jwt.jwks_uri}
    jwt_rule: dict[str, Any] = {"issuer": jwt.issuer, **keys, "forwardOriginalToken": True}
    if jwt.audiences:
        jwt_rule["audiences"] = list(jwt.audiences)
    authentication = CustomObject(
        SECURITY_API,
        "RequestAuthentication",
        f"{spec.name}-jwt",
        {"selector": labels.workload_selector(spec.name), "jwtRules": [jwt_rule]},
    )
    # RequestAuthentication alone lets token-less requests through: DENY those arriving from the
    # gateway. One rule per auth path; a longer public route under it is exempt, as the gateway
    # routes by longest prefix.
    rules = [
        _deny_without_token(gateway_principal, path, [p for p in public_paths if p.startswith(path)])
        for path in auth_paths
    ]
    require = CustomObject(
        SECURITY_API,
        "AuthorizationPolicy",
        f"{spec.name}-require-jwt",
        {"selector": labels.workload_selector(spec.name), "action": "DENY", "rules": rules},
    )
    return [authentication, require]


def _deny_without_token(gateway_principal: str, path: str, exempt: list[str]) -> dict[str, Any]:
    operation: dict[str, Any] = {"paths": path_patterns(path)}
    if exempt:
        operation["notPaths"] = [pattern for public in exempt for pattern in path_patterns(public)]
    return {
        "from": [{"source": {"principals": [gateway_principal], "notRequestPrincipals": ["*"]}}],
        "to": [{"operation": operation}],
    }


def destination_rule(spec: ServiceSpec, namespace: str) -> CustomObject:
    traffic = spec.traffic
    return CustomObject(
        NETWORKING_API,
        "DestinationRule",
        spec.name,
        {
            "host": service_host(spec.name, namespace),
            "trafficPolicy": {
                "loadBalancer": LOAD_BALANCERS[spec.load_balancing],
                "connectionPool": {
                    "tcp": {"maxConnections": traffic.max_connections},
                    "http": {"http1MaxPendingRequests": traffic.max_pending_requests},
                },
                "outlierDetection": {
                    "consecutive5xxErrors": traffic.consecutive_5xx_errors,
                    "interval": OUTLIER_INTERVAL,
                    "baseEjectionTime": OUTLIER_BASE_EJECTION,
                    "maxEjectionPercent": OUTLIER_MAX_EJECTION_PERCENT,
                },
                "tls": {"mode": "ISTIO_MUTUAL"},
            },
        },
    )


def retries(spec: ServiceSpec, retry_on: str = RETRY_ON_ANY_METHOD) -> dict[str, Any]:
    traffic = spec.traffic
    if traffic.retries == 0:
        # Leaving `retries` out would not disable them: Istio then applies its default of 2.
        return {"attempts": 0}
    return {
        "attempts": traffic.retries,
        "perTryTimeout": istio_duration(traffic.per_try_timeout_seconds),
        "retryOn": retry_on,
    }


def virtual_service(spec: ServiceSpec, namespace: str) -> CustomObject:
    """Two HTTP routes to the same destination, first match wins
    (https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRoute): idempotent
    methods with the wider retry conditions, then every other method (POST, PATCH) with retries only
    for requests that never reached the application."""
    host = service_host(spec.name, namespace)

    def route(name: str, retry_on: str, match: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {
            "name": name,
            **({"match": match} if match else {}),
            "route": [{"destination": {"host": host, "port": {"number": spec.port}}}],
            "timeout": istio_duration(spec.traffic.timeout_seconds),
            "retries": retries(spec, retry_on),
        }

    idempotent = [{"method": {"exact": method}} for method in IDEMPOTENT_METHODS]
    http = [
        route(f"{spec.name}-idempotent", RETRY_ON_IDEMPOTENT, idempotent),
        route(spec.name, RETRY_ON_ANY_METHOD),
    ]
    return CustomObject(NETWORKING_API, "VirtualService", spec.name, {"hosts": [host], "http": http})


def egress_port(destination: Egress) -> dict[str, Any]:
    """The ServiceEntry port: HTTPS and TLS are passed on by SNI (Istio's TLS protocol), anything else
    as TCP. A bare host keeps its historical port (443 named https). https://istio.io/latest/docs/reference/config/networking/service-entry/"""
    if destination.protocol == "HTTPS" and destination.port == 443:
        return dict(EGRESS_PORT)
    protocol = "TCP" if destination.protocol == "TCP" else "TLS"
    return {
        "number": destination.port,
        "name": f"{destination.protocol.lower()}-{destination.port}",
        "protocol": protocol,
    }


def egress_entries(spec: ServiceSpec) -> list[CustomObject]:
    """Register each external destination for this namespace only, on its declared port and protocol;
    the mesh is REGISTRY_ONLY. A private destination (``cidr``) lists its block as the entry's
    addresses and is passed on to the address the application dialled (resolution NONE): Envoy matches
    it by address and port. A public exact name is resolved through DNS; a wildcard passes by SNI."""
    unique = list(dict.fromkeys(spec.egress))
    entries = []
    for index, destination in enumerate(unique):
        body: dict[str, Any] = {
            "hosts": [destination.host],
            "location": "MESH_EXTERNAL",
            "ports": [egress_port(destination)],
            "resolution": "NONE" if destination.host.startswith("*.") or destination.cidr else "DNS",
            "exportTo": ["."],
        }
        if destination.cidr is not None:
            body["addresses"] = [destination.cidr]
        entries.append(CustomObject(NETWORKING_API, "ServiceEntry", f"{spec.name}-egress-{index}", body))
    return entries
