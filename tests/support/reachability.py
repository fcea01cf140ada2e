"""Who can open a TCP connection to whom, read from a plan: Kubernetes NetworkPolicy semantics, and
AWS security groups (security groups for pods) for destinations outside the cluster.

Deliberately conservative where the plan cannot know: an ipBlock that overlaps a private range is
taken to match every pod (pod IPs come from those ranges), so a broad egress rule counts as a path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rampart.offline.plan import Plan

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_POLICY = "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy"
PRIVATE = [
    ipaddress.ip_network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str]
    # The security groups the pod's traffic leaves with (aws, security groups for pods).
    security_groups: frozenset[str] = field(default_factory=frozenset)


def _expression_holds(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    present = key in labels
    return {
        "In": present and labels.get(key) in values,
        "NotIn": not (present and labels.get(key) in values),
        "Exists": present,
        "DoesNotExist": not present,
    }[operator]


def _matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector; None matches nothing (an absent selector), {} matches everything."""
    if selector is None:
        return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        _expression_holds(e, labels) for e in selector.get("matchExpressions") or []
    )


def _private(cidr: str, excepted: Iterable[str]) -> bool:
    network = ipaddress.ip_network(cidr)
    if network.version != 4 or not any(network.overlaps(p) for p in PRIVATE):
        return False
    # Only an exception covering the whole block takes pods out of it.
    return not any(network.subnet_of(ipaddress.ip_network(e)) for e in excepted)  # type: ignore[arg-type]


def _port_allowed(ports: list[Mapping[str, Any]] | None, port: int) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        start, end = entry.get("port"), entry.get("endPort") or entry.get("port")
        if start is None or (isinstance(start, int) and start <= port <= end):
            return True
    return False


class Network:
    def __init__(self, plan: Plan) -> None:
        self.namespace_labels: dict[str, dict[str, str]] = {}
        for ns in plan.of_type(NAMESPACE):
            name = ns["inputs"]["metadata"]["name"]
            labels = dict(ns["inputs"]["metadata"].get("labels") or {})
            self.namespace_labels[name] = labels | {"kubernetes.io/metadata.name": name}
        self.policies = [r["inputs"] for r in plan.of_type(NETWORK_POLICY)]
        self.security_groups = {r["id"]: r for r in plan.of_type(SECURITY_GROUP)}
        self.ingress_rules = plan.of_type(INGRESS_RULE)
        self.sg_policies = [r["inputs"] for r in plan.of_type(SG_POLICY)]

    def _ns_labels(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace, {"kubernetes.io/metadata.name": namespace})

    def _selecting(self, pod: Pod, direction: str) -> list[Mapping[str, Any]]:
        return [
            p
            for p in self.policies
            if p["metadata"].get("namespace") == pod.namespace
            and _matches(p["spec"].get("podSelector", {}), pod.labels)
            and direction in (p["spec"].get("policyTypes") or ["Ingress"])
        ]

    def _peer_matches(self, peer: Mapping[str, Any], pod: Pod, policy_namespace: str) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            return _private(block["cidr"], block.get("except") or [])
        namespace_selector, pod_selector = peer.get("namespaceSelector"), peer.get("podSelector")
        if namespace_selector is None and pod.namespace != policy_namespace:
            return False
        if namespace_selector is not None and not _matches(
            namespace_selector, self._ns_labels(pod.namespace)
        ):
            return False
        return pod_selector is None or _matches(pod_selector, pod.labels)

    def _allowed(self, pod: Pod, other: Pod, port: int, direction: str) -> bool:
        policies = self._selecting(pod, direction)
        if not policies:
            return True
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in policies:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if not _port_allowed(rule.get("ports"), port):
                    continue
                if not peers or any(self._peer_matches(p, other, pod.namespace) for p in peers):
                    return True
        return False

    def pod_to_pod(self, source: Pod, destination: Pod, port: int) -> bool:
        return self._allowed(source, destination, port, "Egress") and self._allowed(
            destination, source, port, "Ingress"
        )

    def pod_to_private_address(self, source: Pod, port: int) -> bool:
        """Whether the source's egress policies let it reach some private address outside the
        cluster (an RDS instance, the broker) on ``port``."""
        policies = self._selecting(source, "Egress")
        if not policies:
            return True
        for policy in policies:
            for rule in policy["spec"].get("egress") or []:
                if not _port_allowed(rule.get("ports"), port):
                    continue
                peers = rule.get("to")
                if not peers or any(
                    "ipBlock" in p and _private(p["ipBlock"]["cidr"], p["ipBlock"].get("except") or [])
                    for p in peers
                ):
                    return True
        return False

    def pod_security_groups(self, pod: Pod) -> frozenset[str]:
        """Security groups for pods: a SecurityGroupPolicy selecting the pod gives it its groups."""
        groups: set[str] = set()
        for policy in self.sg_policies:
            if policy["metadata"].get("namespace") == pod.namespace and _matches(
                policy["spec"].get("podSelector"), pod.labels
            ):
                groups.update(policy["spec"]["securityGroups"]["groupIds"])
        return frozenset(groups)

    def security_group_admits(self, group_id: str, sources: frozenset[str], port: int) -> bool:
        """Whether the group admits traffic on ``port`` from any of the ``sources`` groups (or from a
        CIDR, which would admit everything in it)."""
        group = self.security_groups[group_id]["inputs"]
        rules = [dict(r) for r in group.get("ingress") or []] + [
            {
                "fromPort": r["inputs"].get("fromPort"),
                "toPort": r["inputs"].get("toPort"),
                "securityGroups": [r["inputs"]["referencedSecurityGroupId"]]
                if r["inputs"].get("referencedSecurityGroupId")
                else [],
                "cidrBlocks": [r["inputs"]["cidrIpv4"]] if r["inputs"].get("cidrIpv4") else [],
                "ipProtocol": r["inputs"].get("ipProtocol"),
            }
            for r in self.ingress_rules
            if r["inputs"].get("securityGroupId") == group_id
        ]
        for rule in rules:
            if rule.get("protocol", rule.get("ipProtocol")) not in ("tcp", "-1", "6", None):
                continue
            low, high = rule.get("fromPort"), rule.get("toPort")
            if low is not None and high is not None and not (low <= port <= high) and low != -1:
                continue
            if rule.get("cidrBlocks") or set(rule.get("securityGroups") or []) & sources:
                return True
        return False
