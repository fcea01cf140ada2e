"""NetworkPolicy specs for a service namespace: deny everything, then allow what `calls:` declares."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_kubernetes as k8s

from components.core import labels
from rampart.config import ServiceSpec

# Public addresses, for services that call external hosts through the mesh on 443 (the mesh
# itself admits only the hosts the service declares in `egress:`).
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]


@dataclass(frozen=True)
class Peer:
    """Another service, as seen from the network: where it lives and what it listens on."""

    name: str
    namespace: str
    port: int


def _namespace(name: str) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels={labels.NAMESPACE_NAME: name})


def _pods(service: str) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels=labels.selector(service))


def default_deny() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Every pod in the namespace: no ingress, no egress, unless another policy allows it."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Ingress", "Egress"],
    )


def allow_dns() -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=_namespace("kube-system"),
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
                    )
                ],
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=53)
                    for protocol in ("UDP", "TCP")
                ],
            )
        ],
    )


def allow_from_callers(
    service: str, port: int, caller_namespaces: list[str]
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_pods(service),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=_namespace(namespace))
                    for namespace in sorted(caller_namespaces)
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)],
            )
        ],
    )


def allow_to_callees(service: str, callees: list[Peer]) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_pods(service),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=_namespace(callee.namespace),
                        pod_selector=_pods(callee.name),
                    )
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=callee.port)],
            )
            for callee in sorted(callees, key=lambda peer: peer.name)
        ],
    )


def allow_to_mesh_control_plane(root_namespace: str) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Sidecars fetch configuration and certificates from istiod (xDS and CA on 15012)."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=_namespace(root_namespace),
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": "istiod"}),
                    )
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=15012)],
            )
        ],
    )


def allow_external_https() -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        ip_block=k8s.networking.v1.IPBlockArgs(cidr="0.0.0.0/0", except_=PRIVATE_RANGES)
                    )
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=443)],
            )
        ],
    )


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
