"""Layer model: AWS security groups, with EKS security groups for pods.

Semantics:
- Security groups are stateful allow lists; a connection needs an outbound rule of a group on the
  source's network interface and an inbound rule of a group on the destination's. A rule that
  references a group matches traffic from interfaces carrying that group; a CIDR rule matches
  addresses in it. https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-group-rules.html
- Security groups for pods: a ``SecurityGroupPolicy`` selects pods of its namespace (podSelector or
  serviceAccountSelector); those pods get a branch network interface carrying exactly the listed
  groups. Every other pod uses its node's interface and groups.
  https://docs.aws.amazon.com/eks/latest/userguide/security-groups-for-pods.html,
  https://docs.aws.amazon.com/eks/latest/userguide/sg-pods-example-deployment.html
- Nodes of a managed node group (whose launch template names no groups) carry the EKS cluster
  security group, which admits everything from itself and sends anywhere.
  https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html
- A group created by Pulumi/Terraform has no default allow-all egress rule: only the inline
  ``egress`` entries and ``SecurityGroupEgressRule`` resources
  (registry.terraform.io aws_security_group, "NOTE on Egress rules").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rampart.offline.plan import Plan
from rampart.paths.endpoints import Address, Pod
from rampart.paths.selectors import matches

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG_POLICY = "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
TCP = ("tcp", "-1", "6", None)


@dataclass(frozen=True)
class Rule:
    """One inbound or outbound rule, inline or separate."""

    from_port: int | None
    to_port: int | None
    protocol: str | None
    groups: frozenset[str]
    cidrs: tuple[str, ...]
    description: str

    def covers(self, port: int) -> bool:
        if self.protocol not in TCP:
            return False
        if self.protocol == "-1" or self.from_port in (None, -1) or self.to_port is None:
            return True
        # Inline all-protocol rules use 0/0 as their ports.
        return self.from_port <= port <= self.to_port or (self.from_port == self.to_port == 0)

    def matches(self, groups: frozenset[str], address: Address | None) -> bool:
        if self.groups & groups:
            return True
        if address is None:
            return False
        return any(
            address.address in ipaddress.ip_network(cidr, strict=False)
            for cidr in self.cidrs
            if ipaddress.ip_network(cidr, strict=False).version == address.address.version
        )


def _inline(entry: Mapping[str, Any], group_id: str) -> Rule:
    """An inline rule; ``self: true`` references the group itself."""
    return Rule(
        from_port=entry.get("fromPort"),
        to_port=entry.get("toPort"),
        protocol=entry.get("protocol"),
        groups=frozenset(entry.get("securityGroups") or []) | ({group_id} if entry.get("self") else set()),
        cidrs=tuple(entry.get("cidrBlocks") or []) + tuple(entry.get("ipv6CidrBlocks") or []),
        description=str(entry.get("description") or ""),
    )


def _separate(inputs: Mapping[str, Any]) -> Rule:
    referenced = inputs.get("referencedSecurityGroupId")
    cidrs = [c for c in (inputs.get("cidrIpv4"), inputs.get("cidrIpv6")) if c]
    return Rule(
        from_port=inputs.get("fromPort"),
        to_port=inputs.get("toPort"),
        protocol=inputs.get("ipProtocol"),
        groups=frozenset([referenced] if referenced else []),
        cidrs=tuple(cidrs),
        description=str(inputs.get("description") or ""),
    )


class SecurityGroups:
    """The plan's security groups, their rules, and which groups each pod carries."""

    def __init__(self, plan: Plan) -> None:
        self.groups = {r["id"]: r for r in plan.of_type(SECURITY_GROUP)}
        self.policies = [r["inputs"] for r in plan.of_type(SG_POLICY)]
        self.ingress: dict[str, list[Rule]] = {}
        self.egress: dict[str, list[Rule]] = {}
        for group_id, group in self.groups.items():
            self.ingress[group_id] = [_inline(e, group_id) for e in group["inputs"].get("ingress") or []]
            self.egress[group_id] = [_inline(e, group_id) for e in group["inputs"].get("egress") or []]
        for kind, table in ((INGRESS_RULE, self.ingress), (EGRESS_RULE, self.egress)):
            for rule in plan.of_type(kind):
                table.setdefault(rule["inputs"].get("securityGroupId"), []).append(_separate(rule["inputs"]))
        clusters = plan.of_type(EKS_CLUSTER)
        vpc = ((clusters[0].get("outputs") or {}).get("vpcConfig") or {}) if clusters else {}
        # The EKS cluster security group: created by EKS, not by the program, so its rules are EKS's.
        self.cluster_group: str | None = vpc.get("clusterSecurityGroupId")

    @property
    def enabled(self) -> bool:
        """Whether the plan has any security groups at all (an aws target)."""
        return bool(self.groups) or self.cluster_group is not None

    # --- which groups a pod carries --------------------------------------------------------------
    def pod_security_groups(self, pod: Pod) -> frozenset[str]:
        """The groups SecurityGroupPolicies give the pod (empty: it uses its node's)."""
        groups: set[str] = set()
        for policy in self.policies:
            if policy["metadata"].get("namespace") == pod.namespace and matches(
                policy["spec"].get("podSelector"), pod.labels
            ):
                groups.update(policy["spec"]["securityGroups"]["groupIds"])
        return frozenset(groups)

    def groups_of(self, pod: Pod) -> frozenset[str]:
        """The groups the pod's traffic carries: its own, or its node's (the cluster group)."""
        own = self.pod_security_groups(pod) | pod.security_groups
        if own:
            return own
        return frozenset([self.cluster_group]) if self.cluster_group else frozenset()

    # --- rules ---------------------------------------------------------------------------------
    def _rules(self, table: Mapping[str, list[Rule]], group_id: str, direction: str) -> list[Rule]:
        if group_id == self.cluster_group and group_id not in self.groups:
            # EKS's own rules, and any the program adds to the group as separate rule resources.
            everything = Rule(None, None, "-1", frozenset(), ("0.0.0.0/0",), "EKS default")
            from_self = Rule(None, None, "-1", frozenset([group_id]), (), "EKS default: from itself")
            return [from_self if direction == "in" else everything, *table.get(group_id, [])]
        return table.get(group_id, [])

    def admitting_rule(
        self, groups: Iterable[str], sources: frozenset[str], port: int, address: Address | None = None
    ) -> Rule | None:
        """The inbound rule of one of ``groups`` that admits traffic on ``port`` from interfaces
        carrying ``sources`` (or from ``address``)."""
        return self._first_rule(self.ingress, "in", groups, sources, port, address=address)

    def sending_rule(
        self, groups: Iterable[str], destinations: frozenset[str], port: int, address: Address | None
    ) -> Rule | None:
        """The outbound rule of one of ``groups`` that lets traffic out on ``port`` to interfaces
        carrying ``destinations`` (or to ``address``)."""
        return self._first_rule(self.egress, "out", groups, destinations, port, address=address)

    def _first_rule(
        self,
        table: Mapping[str, list[Rule]],
        direction: str,
        groups: Iterable[str],
        peers: frozenset[str],
        port: int,
        *,
        address: Address | None,
    ) -> Rule | None:
        for group_id in groups:
            for rule in self._rules(table, group_id, direction):
                if rule.covers(port) and rule.matches(peers, address):
                    return rule
        return None

    def security_group_admits(self, group_id: str, sources: frozenset[str], port: int) -> bool:
        """Whether the group admits traffic on ``port`` from any of the ``sources`` groups, or from a
        CIDR (taken to admit everything in it)."""
        for rule in self._rules(self.ingress, group_id, "in"):
            if rule.covers(port) and (rule.cidrs or rule.groups & sources):
                return True
        return False
