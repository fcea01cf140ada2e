"""Reliability rules prod relies on that a stack file could otherwise relax (rampart/config/load.py refuses
them at config time; these catch a plan made elsewhere): egress that survives the loss of a zone, and a
mesh control plane that survives the loss of a node. Off by default (dev runs one of each); staging and
prod switch them on in policies/config/<stack>/reliability.json."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.controllers import chart_name
from policies.model import Resource, Rule, Violation, boolean, number, of_types, positive_integer
from policies.rules.aws import SUBNET
from policies.table import on, table_rules, whole_plan

NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def _nat_per_zone(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    # A NAT gateway lives in one zone; private subnets of other zones that route through it lose egress
    # with that zone. https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-basics.html
    # ("create a NAT gateway in each Availability Zone").
    if not config["requireNatPerZone"]:
        return
    zone_of = {
        s.urn: str(s.get("availabilityZone"))
        for s in of_types(resources, SUBNET)
        if s.get("availabilityZone")
    }
    zones = set(zone_of.values())
    if not zones:
        return
    gateways = [
        g for g in of_types(resources, NAT_GATEWAY) if g.get("connectivityType", "public") != "private"
    ]
    # Each gateway's zone is its subnet's: the subnet is among its dependencies (subnetId is one of its
    # outputs, so the engine records the edge even when the id is not known yet).
    covered = {zone_of[urn] for g in gateways for urn in g.dependencies if urn in zone_of}
    if len(gateways) < len(zones) or (covered and covered != zones):
        missing = ", ".join(sorted(zones - covered)) or "?"
        yield Violation(
            f"{len(gateways)} public NAT gateway(s) for {len(zones)} availability zones (none in {missing}): "
            "the loss of one zone takes the other zones' egress with it"
        )


def _istiod_replicas(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if chart_name(resource.props) != "istiod":
        return
    values = resource.get("values") or {}
    minimum = config["minReplicas"]
    # Chart defaults: replicaCount 1, autoscaleEnabled true, autoscaleMin 1 (the HPA's minReplicas).
    replicas = number(values.get("replicaCount"), 1)
    if replicas < minimum:
        yield f"{resource.name}: replicaCount {replicas:g} (needs at least {minimum:g})"
    floor = number(values.get("autoscaleMin"), 1)
    if values.get("autoscaleEnabled", True) is not False and floor < minimum:
        yield f"{resource.name}: autoscaleMin {floor:g} lets the HPA scale istiod below {minimum:g}"


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "nat-gateway-per-zone": whole_plan(_nat_per_zone, {"requireNatPerZone": boolean(False)}),
        "istiod-replicas": on((HELM_RELEASE,), _istiod_replicas, {"minReplicas": positive_integer(1)}),
    },
)
