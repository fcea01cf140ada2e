"""NetworkPolicy specs for a service namespace: deny everything, then allow what `calls:` declares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi_kubernetes as k8s

from components.core import labels, netpol
from rampart.config import ServiceSpec
from rampart.config.models import Egress

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


def allow_external(destinations: Sequence[Egress]) -> netpol.Spec:
    """What the service's `egress:` declares, port by port: a public host on its port to public
    addresses only (the mesh admits only the declared names, on their ports); a private destination on
    its port to its declared block only. Nothing else: other ports, and private space not declared."""
    public = sorted({d.port for d in destinations if d.cidr is None})
    private: dict[str, set[int]] = {}
    for destination in destinations:
        if destination.cidr is not None:
            private.setdefault(destination.cidr, set()).add(destination.port)
    rules = []
    if public:
        rules.append(
            netpol.EgressRule(
                to=netpol.cidrs(["0.0.0.0/0"], except_=netpol.NON_PUBLIC_RANGES), ports=netpol.tcp(*public)
            )
        )
    rules += [
        netpol.EgressRule(to=netpol.cidrs([cidr]), ports=netpol.tcp(*sorted(ports)))
        for cidr, ports in sorted(private.items())
    ]
    return netpol.egress(None, rules)


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
        # The historical name, kept (it still holds every public HTTPS destination).
        policies["allow-external-https"] = allow_external(spec.egress)
    return policies
