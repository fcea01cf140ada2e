"""Building blocks of NetworkPolicies that every layer shares (selectors, ports, peers, rules), and the
two policies every namespace gets: deny everything, then allow DNS."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pulumi_kubernetes as k8s

from components.core import labels

Spec = k8s.networking.v1.NetworkPolicySpecArgs
Peer = k8s.networking.v1.NetworkPolicyPeerArgs
Port = k8s.networking.v1.NetworkPolicyPortArgs
IngressRule = k8s.networking.v1.NetworkPolicyIngressRuleArgs
EgressRule = k8s.networking.v1.NetworkPolicyEgressRuleArgs

# The API server, as pods reach it: the kubernetes Service (443) or the endpoints behind it (6443),
# on addresses of the cluster's private ranges.
API_SERVER_PORTS = (443, 6443)
# RFC 1918: the addresses of a VPC or node network (the control plane's, load balancers' health checks).
RFC1918_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
# ...plus carrier-grade NAT, which some CNIs give pods.
PRIVATE_RANGES = (*RFC1918_RANGES, "100.64.0.0/10")
# ...plus link-local (instance metadata, the Pod Identity agent): everything that is not the internet.
NON_PUBLIC_RANGES = (*PRIVATE_RANGES, "169.254.0.0/16")
DNS_PORT = 53


def selector(match_labels: Mapping[str, str] | None = None) -> k8s.meta.v1.LabelSelectorArgs:
    """The pods (or namespaces) with these labels; None: every one."""
    return k8s.meta.v1.LabelSelectorArgs(
        match_labels=dict(match_labels) if match_labels is not None else None
    )


def tcp(*ports: int) -> list[Port]:
    return [Port(protocol="TCP", port=port) for port in ports]


def cidrs(blocks: Iterable[str], except_: Sequence[str] | None = None) -> list[Peer]:
    """One peer per address block (each once), minus ``except_``."""
    return [
        Peer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=block, except_=list(except_) if except_ else None))
        for block in dict.fromkeys(blocks)
    ]


def pods(match_labels: Mapping[str, str]) -> Peer:
    """Pods with these labels in the policy's own namespace."""
    return Peer(pod_selector=selector(match_labels))


def peers(*pods: Mapping[str, str]) -> list[Peer]:
    """One peer per label set, each in the policy's own namespace."""
    return [Peer(pod_selector=selector(labels_)) for labels_ in pods]


def pods_in(namespace: str, pods: Mapping[str, str] | None = None) -> Peer:
    """Pods with these labels in that namespace (every pod of it when ``pods`` is None)."""
    return Peer(
        namespace_selector=selector({labels.NAMESPACE_NAME: namespace}),
        pod_selector=selector(pods) if pods is not None else None,
    )


def every_namespace() -> Peer:
    return Peer(namespace_selector=selector())


def policy(
    pods: Mapping[str, str] | None,
    *,
    ingress: list[IngressRule] | None = None,
    egress: list[EgressRule] | None = None,
) -> Spec:
    """A policy for ``pods`` (None: every pod of the namespace) with the directions it has rules for."""
    directions = [name for name, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
    return Spec(pod_selector=selector(pods), policy_types=directions, ingress=ingress, egress=egress)


def ingress(pods: Mapping[str, str] | None, rules: list[IngressRule]) -> Spec:
    return policy(pods, ingress=rules)


def egress(pods: Mapping[str, str] | None, rules: list[EgressRule]) -> Spec:
    return policy(pods, egress=rules)


def ingress_from(pods: Mapping[str, str] | None, peers: list[Peer], *ports: int) -> Spec:
    """``pods`` admit ``peers`` on these TCP ports."""
    return ingress(pods, [IngressRule(from_=peers, ports=tcp(*ports))])


def egress_to(pods: Mapping[str, str] | None, peers: list[Peer], *ports: int) -> Spec:
    """``pods`` reach ``peers`` on these TCP ports."""
    return egress(pods, [EgressRule(to=peers, ports=tcp(*ports))])


def between(pods: Mapping[str, str], ports: list[Port]) -> Spec:
    """``pods`` reach each other on these ports, both ways (the members of a cluster or quorum)."""
    peers = [Peer(pod_selector=selector(pods))]
    return policy(
        pods, ingress=[IngressRule(from_=peers, ports=ports)], egress=[EgressRule(to=peers, ports=ports)]
    )


def to_api_server(pods: Mapping[str, str] | None) -> Spec:
    return egress_to(pods, cidrs(PRIVATE_RANGES), *API_SERVER_PORTS)


def default_deny() -> Spec:
    """Every pod in the namespace: no ingress, no egress, unless another policy allows it."""
    return Spec(pod_selector=selector(), policy_types=["Ingress", "Egress"])


def allow_dns() -> Spec:
    return egress(
        None,
        [
            EgressRule(
                to=[pods_in("kube-system", {"k8s-app": "kube-dns"})],
                ports=[Port(protocol=protocol, port=DNS_PORT) for protocol in ("UDP", "TCP")],
            )
        ],
    )
