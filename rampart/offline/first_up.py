"""The first `pulumi up` of a stack whose cluster API the deploying runner cannot reach yet.

A private-only EKS endpoint answers only inside the VPC or a network routed to it (EKS user guide,
cluster-endpoint). The VPC is created by the stack's own first `up`, and the route from the deploy
runner's network to it (peering, a transit gateway attachment, a VPN) belongs to the account and can
only be made once the VPC exists. So the first deploy of such a stack is two runs:

1. ``pulumi up --target <urn> ...`` over :func:`first_up_targets`: every resource that needs no Kubernetes
   API, i.e. none of its dependencies, parents or providers (transitively) is a Kubernetes object or
   provider. `--target` creates exactly the targeted resources and refuses a target whose dependency
   neither exists nor is targeted (https://www.pulumi.com/docs/iac/cli/commands/pulumi_up/), so the set
   is closed under them. The cluster security group's rules for `aws.private_access_cidrs` are in it.
2. Route the runner's network to the new VPC, then the full `pulumi up`.

A cluster whose endpoint is public (to `aws.public_access_cidrs`, where the runner's address belongs)
needs no first phase: :func:`first_up_targets` is empty and the full `up` runs at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rampart.offline.plan import STACK_TYPE, Plan

KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
EKS_CLUSTER = "aws:eks/cluster:Cluster"


def needs_kubernetes_api(resource: Mapping[str, Any]) -> bool:
    type_ = str(resource["type"])
    return type_.startswith("kubernetes:") or type_ == KUBERNETES_PROVIDER


def private_endpoint(plan: Plan) -> bool:
    """The plan builds an EKS cluster whose API endpoint is private only."""
    clusters = plan.of_type(EKS_CLUSTER)
    return any(not (c.get("inputs") or {}).get("vpcConfig", {}).get("endpointPublicAccess") for c in clusters)


def _prerequisites(resource: Mapping[str, Any]) -> set[str]:
    provider = str(resource.get("provider") or "").rsplit("::", 1)[0]
    return {
        *(resource.get("dependencies") or ()),
        *([resource["parent"]] if resource.get("parent") else ()),
    } | ({provider} if provider else set())


def first_up_targets(plan: Plan) -> list[str]:
    """The URNs the first, targeted `up` of a private stack creates, in the plan's order; none when the
    plan has no private cluster endpoint."""
    if not private_endpoint(plan):
        return []
    by_urn = {r["urn"]: r for r in plan.resources}
    blocked: dict[str, bool] = {}

    def needs_api(urn: str, trail: frozenset[str]) -> bool:
        if urn not in blocked:
            resource = by_urn.get(urn)
            if resource is None:
                return False
            blocked[urn] = needs_kubernetes_api(resource) or any(
                needs_api(other, trail | {urn}) for other in _prerequisites(resource) if other not in trail
            )
        return blocked[urn]

    return [
        r["urn"]
        for r in plan.resources
        # The engine creates the root stack and default providers itself; they take no --target.
        if r["type"] != STACK_TYPE and not r.get("defaultProvider") and not needs_api(r["urn"], frozenset())
    ]
