"""NetworkPolicy specs for a service namespace: deny everything, then allow what `calls:` declares."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_kubernetes as k8s

from components import labels


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
