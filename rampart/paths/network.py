"""Layer model: Kubernetes NetworkPolicy. Who may open a TCP connection to whom, read from a plan.

Semantics, from https://kubernetes.io/docs/concepts/services-networking/network-policies/ and the
NetworkPolicy API (networking.k8s.io/v1):
- A pod is isolated for ingress (egress) once any policy in its namespace selects it and lists
  Ingress (Egress) in ``policyTypes`` (a policy without ``policyTypes`` is Ingress, plus Egress when
  it has egress rules). An isolated pod accepts only what the union of those policies' rules allows;
  a pod no policy selects accepts everything. A connection needs both the source's egress and the
  destination's ingress.
- A rule with no ``from``/``to`` matches every peer; with no ``ports`` every port. A peer is an
  ``ipBlock`` (cidr minus ``except``), or ``namespaceSelector`` and/or ``podSelector`` (both given:
  pods matching the podSelector in namespaces matching the namespaceSelector; podSelector alone:
  the policy's own namespace). A named ``port`` matches the destination container port of that name.
- Namespaces carry ``kubernetes.io/metadata.name`` (set by the API server since 1.21).

Where the plan cannot know addresses it stays conservative: pod IPs come from the private ranges,
so an ``ipBlock`` that leaves any private address after its exceptions is taken to match every pod.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, Literal

from rampart.offline.plan import Plan
from rampart.paths.endpoints import PRIVATE, Address, Endpoint, IpNetwork, Pod
from rampart.paths.security_groups import SecurityGroups
from rampart.paths.selectors import matches

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
NAMESPACE_PATCH = "kubernetes:core/v1:NamespacePatch"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
Direction = Literal["Ingress", "Egress"]


def covered(network: IpNetwork, exceptions: Iterable[IpNetwork]) -> bool:
    """Whether the exceptions together cover every address of ``network``."""
    remaining: list[IpNetwork] = [network]
    for excepted in exceptions:
        left: list[IpNetwork] = []
        for part in remaining:
            if part.version != excepted.version or not part.overlaps(excepted):
                left.append(part)
            elif not part.subnet_of(excepted):  # type: ignore[arg-type]
                left.extend(part.address_exclude(excepted))  # type: ignore[arg-type]
        remaining = left
    return not remaining


def block_may_hold_pods(
    cidr: str, excepted: Iterable[str], pod_ranges: Sequence[IpNetwork] = PRIVATE
) -> bool:
    """Whether an ipBlock (cidr minus except) may contain a pod address."""
    network = ipaddress.ip_network(cidr, strict=False)
    exceptions = [ipaddress.ip_network(e, strict=False) for e in excepted]
    for pods in pod_ranges:
        if network.version != pods.version or not network.overlaps(pods):
            continue
        shared = network if network.subnet_of(pods) else pods  # type: ignore[arg-type]
        if not covered(shared, exceptions):
            return True
    return False


def block_holds(cidr: str, excepted: Iterable[str], address: Address) -> bool:
    """Whether an ipBlock holds this exact address."""
    ip = address.address
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != ip.version or ip not in network:
        return False
    return not any(
        ip in ipaddress.ip_network(e, strict=False)
        for e in excepted
        if ipaddress.ip_network(e, strict=False).version == ip.version
    )


def port_allowed(ports: Sequence[Mapping[str, Any]] | None, port: int, named: Mapping[str, int]) -> bool:
    """A rule's ``ports`` (absent or empty: all); TCP only, ``endPort`` ranges, named ports."""
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        start = entry.get("port")
        if start is None:
            return True
        if isinstance(start, str):
            if named.get(start) == port:
                return True
            continue
        end = entry.get("endPort") or start
        if start <= port <= end:
            return True
    return False


def policy_types(spec: Mapping[str, Any]) -> list[str]:
    """``policyTypes``, defaulted as the API server defaults it."""
    declared = spec.get("policyTypes")
    if declared:
        return list(declared)
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


class Network:
    """NetworkPolicy reachability over a plan's policies and namespaces."""

    def __init__(self, plan: Plan, pod_ranges: Sequence[IpNetwork] = PRIVATE) -> None:
        self.plan = plan
        self.pod_ranges = tuple(pod_ranges)
        self.namespace_labels: dict[str, dict[str, str]] = {}
        for ns in plan.of_type(NAMESPACE) + plan.of_type(NAMESPACE_PATCH):
            name = ns["inputs"]["metadata"]["name"]
            labels = dict(ns["inputs"]["metadata"].get("labels") or {})
            self.namespace_labels[name] = (
                self.namespace_labels.get(name, {}) | labels | {NAMESPACE_LABEL: name}
            )
        self.policies = [r["inputs"] for r in plan.of_type(NETWORK_POLICY)]
        self._in_namespace: dict[str | None, list[Mapping[str, Any]]] = {}
        for policy in self.policies:
            self._in_namespace.setdefault(policy["metadata"].get("namespace"), []).append(policy)
        # The proof asks about every pair of services, so each pod's policies are looked up once:
        # scanning them per question made the proof cubic in the catalog.
        self._selecting: dict[tuple[str, frozenset[tuple[str, str]], Direction], list[Mapping[str, Any]]] = {}

    # --- the policies that apply ---------------------------------------------------------------
    def ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace, {NAMESPACE_LABEL: namespace})

    def selecting(self, pod: Pod, direction: Direction) -> list[Mapping[str, Any]]:
        """The policies that isolate ``pod`` in ``direction``."""
        key = (pod.namespace, frozenset(pod.labels.items()), direction)
        if key not in self._selecting:
            self._selecting[key] = [
                p
                for p in self._in_namespace.get(pod.namespace, ())
                if matches(p["spec"].get("podSelector", {}), pod.labels)
                and direction in policy_types(p["spec"])
            ]
        return self._selecting[key]

    def _peer_matches(self, peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            if isinstance(other, Address):
                return block_holds(block["cidr"], block.get("except") or [], other)
            return block_may_hold_pods(block["cidr"], block.get("except") or [], self.pod_ranges)
        if isinstance(other, Address):
            return False
        namespace_selector, pod_selector = peer.get("namespaceSelector"), peer.get("podSelector")
        if namespace_selector is None and other.namespace != policy_namespace:
            return False
        if namespace_selector is not None and not matches(
            namespace_selector, self.ns_labels(other.namespace)
        ):
            return False
        return pod_selector is None or matches(pod_selector, other.labels)

    def allowing_rule(
        self, pod: Pod, other: Endpoint, port: int, direction: Direction
    ) -> tuple[bool, str | None]:
        """Whether ``pod``'s policies allow the connection with ``other`` in ``direction``, and the
        name of the policy that does (None when the pod is not isolated or nothing allows)."""
        policies = self.selecting(pod, direction)
        if not policies:
            return True, None
        destination = other if direction == "Egress" else pod
        named = destination.ports if isinstance(destination, Pod) else {}
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in policies:
            for rule in policy["spec"].get(key) or []:
                if not port_allowed(rule.get("ports"), port, named):
                    continue
                peers = rule.get(peers_key)
                if not peers or any(self._peer_matches(p, other, pod.namespace) for p in peers):
                    return True, str(policy["metadata"].get("name"))
        return False, None

    def _allowed(self, pod: Pod, other: Endpoint, port: int, direction: Direction) -> bool:
        return self.allowing_rule(pod, other, port, direction)[0]

    # --- connections ---------------------------------------------------------------------------
    def pod_to_pod(self, source: Pod, destination: Pod, port: int) -> bool:
        return self._allowed(source, destination, port, "Egress") and self._allowed(
            destination, source, port, "Ingress"
        )

    def pod_to_address(self, source: Pod, destination: Address, port: int) -> bool:
        return self._allowed(source, destination, port, "Egress")

    def address_to_pod(self, source: Address, destination: Pod, port: int) -> bool:
        return self._allowed(destination, source, port, "Ingress")

    def pod_to_private_address(self, source: Pod, port: int) -> bool:
        """Whether the source's egress policies let it reach some private address outside the
        cluster (an RDS instance, the broker) on ``port``."""
        policies = self.selecting(source, "Egress")
        if not policies:
            return True
        for policy in policies:
            for rule in policy["spec"].get("egress") or []:
                if not port_allowed(rule.get("ports"), port, {}):
                    continue
                peers = rule.get("to")
                if not peers or any(
                    "ipBlock" in p
                    and block_may_hold_pods(p["ipBlock"]["cidr"], p["ipBlock"].get("except") or [])
                    for p in peers
                ):
                    return True
        return False

    # --- security groups for pods (kept here for callers of the old test helper) ---------------
    @cached_property
    def _groups(self) -> SecurityGroups:
        return SecurityGroups(self.plan)

    def pod_security_groups(self, pod: Pod) -> frozenset[str]:
        return self._groups.pod_security_groups(pod)

    def security_group_admits(self, group_id: str, sources: frozenset[str], port: int) -> bool:
        return self._groups.security_group_admits(group_id, sources, port)
