"""Building blocks of NetworkPolicies that platform layers share (selectors, ports, peers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi_kubernetes as k8s

from components.core import labels

# The API server, as pods reach it: the kubernetes Service (443) or the endpoints behind it (6443),
# on addresses of the cluster's private ranges.
API_SERVER_PORTS = (443, 6443)
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")


def selector(match_labels: Mapping[str, str]) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match_labels))


def tcp(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


def cidrs(blocks: Sequence[str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=block))
        for block in blocks
    ]


def pods_in(namespace: str, pods: Mapping[str, str] | None = None) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """Pods with these labels in that namespace (every pod of it when ``pods`` is None)."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=selector({labels.NAMESPACE_NAME: namespace}),
        pod_selector=selector(pods) if pods is not None else None,
    )


def egress(
    pods: Mapping[str, str], rules: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=selector(pods), policy_types=["Egress"], egress=rules
    )


def to_api_server(pods: Mapping[str, str]) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return egress(
        pods,
        [
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=cidrs(PRIVATE_RANGES), ports=tcp(*API_SERVER_PORTS)
            )
        ],
    )
