"""NetworkPolicy specs for a service namespace: deny everything, then allow what `calls:` declares."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_kubernetes as k8s

from components.core import labels, netpol
from rampart.config import ServiceSpec

ISTIOD_XDS_PORT = 15012


@dataclass(frozen=True)
class Peer:
    """Another service, as seen from the network: where it lives and what it listens on."""

    name: str
    namespace: str
    port: int


def allow_from_callers(service: str, port: int, caller_namespaces: list[str]) -> netpol.Spec:
    return netpol.ingress_from(
        labels.selector(service), [netpol.pods_in(namespace) for namespace in sorted(caller_namespaces)], port
    )


def allow_to_callees(service: str, callees: list[Peer]) -> netpol.Spec:
    return netpol.egress(
        labels.selector(service),
        [
            netpol.EgressRule(
                to=[netpol.pods_in(callee.namespace, labels.selector(callee.name))],
                ports=netpol.tcp(callee.port),
            )
            for callee in sorted(callees, key=lambda peer: peer.name)
        ],
    )


def allow_to_mesh_control_plane(root_namespace: str) -> netpol.Spec:
    """Sidecars fetch configuration and certificates from istiod (xDS and CA on 15012)."""
    return netpol.egress_to(None, [netpol.pods_in(root_namespace, {"app": "istiod"})], ISTIOD_XDS_PORT)


def allow_external_https() -> netpol.Spec:
    """Public addresses, for services that call external hosts through the mesh on 443 (the mesh
    itself admits only the hosts the service declares in `egress:`)."""
    return netpol.egress_to(None, netpol.cidrs(["0.0.0.0/0"], except_=netpol.NON_PUBLIC_RANGES), 443)


def service_policies(
    spec: ServiceSpec,
    *,
    caller_namespaces: list[str],
    callees: list[Peer],
    mesh_root_namespace: str | None,
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """A service namespace's allows, by name, on top of the baseline's default-deny and DNS."""
    policies: dict[str, k8s.networking.v1.NetworkPolicySpecArgs] = {}
    if caller_namespaces:
        policies["allow-from-callers"] = allow_from_callers(spec.name, spec.port, caller_namespaces)
    if callees:
        policies["allow-to-callees"] = allow_to_callees(spec.name, callees)
    if mesh_root_namespace:
        policies["allow-mesh-control-plane"] = allow_to_mesh_control_plane(mesh_root_namespace)
    if spec.egress:
        policies["allow-external-https"] = allow_external_https()
    return policies
