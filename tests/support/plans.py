"""Looking things up in a plan the way most tests do: custom resources by the kind their type ends in,
exactly one of them by name, the plan as the policy packs see it, and its core objects validated."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from components.targets.aws.handles import PodIdentity
from policies import catalog
from policies.model import Pack, Resource, Rule
from policies.rules import lifecycle
from rampart.offline.plan import Plan
from tests.support import schemas

# The Kubernetes version core objects are validated against.
KUBERNETES_VERSION = "1.33"
# The providers the tests build components with, as the plan names them.
K8S_PROVIDER = "urn:pulumi:test::rampart::pulumi:providers:kubernetes::k8s::"
AWS_PROVIDER = "urn:pulumi:test::rampart::pulumi:providers:aws::aws::"
RELEASE = "kubernetes:helm.sh/v3:Release"
# The tags an aws stack puts on everything (environment, owner, cost-center).
TAGS = {"environment": "prod", "owner": "platform", "cost-center": "cc-1"}
# The stand-in account, cluster and permissions boundary the aws component tests build in.
REGION = "eu-west-1"
ACCOUNT = "123456789012"
CLUSTER_NAME = "rampart-prod"
CLUSTER_ARN = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER_NAME}"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/rampart-boundary"
# What the aws target hands a layer for its pods' AWS permissions (EKS Pod Identity), in that account.
POD_IDENTITY = PodIdentity(
    cluster_name=CLUSTER_NAME,
    cluster_arn=CLUSTER_ARN,
    account_id=ACCOUNT,
    partition="aws",
    region=REGION,
    permissions_boundary=BOUNDARY,
)


def of(plan: Plan, kind: str) -> list[dict[str, Any]]:
    """Custom resources whose type ends in ``:<kind>`` (e.g. ``Subnet``, ``NetworkPolicy``)."""
    return [r for r in plan.custom() if r["type"].endswith(f":{kind}")]


def one(plan: Plan, kind: str, name: str | None = None, namespace: str | None = None) -> dict[str, Any]:
    """The one resource of ``kind`` (with that Kubernetes name and namespace, when given)."""
    found = [
        r
        for r in of(plan, kind)
        if (name is None or r["inputs"].get("metadata", {}).get("name") == name)
        and (namespace is None or r["inputs"].get("metadata", {}).get("namespace") == namespace)
    ]
    assert len(found) == 1, f"{kind} {namespace or ''}/{name or ''}: {len(found)}"
    return found[0]


def network_policies(plan: Plan, namespace: str | None = None) -> dict[str, dict[str, Any]]:
    """NetworkPolicy name -> its spec, of those in ``namespace`` (of every namespace when None)."""
    return {
        r["inputs"]["metadata"]["name"]: r["inputs"]["spec"]
        for r in of(plan, "NetworkPolicy")
        if namespace is None or r["inputs"]["metadata"]["namespace"] == namespace
    }


def name_of(resource: Mapping[str, Any]) -> str:
    """The resource's Pulumi name (the last part of its URN)."""
    return str(resource["urn"].rsplit("::", 1)[1])


def policy_resources(plan: Plan, props: Literal["inputs", "outputs"] = "inputs") -> list[Resource]:
    """Every resource as the analyzers see it: inputs for resource rules, outputs for stack rules."""
    return [
        Resource(
            urn=r["urn"],
            type=r["type"],
            name=name_of(r),
            props=r.get(props) or {},
            protect=bool(r.get("protect")),
            parent=r.get("parent"),
            dependencies=tuple(r.get("dependencies") or ()),
            # The engine names a provider by its URN (the plan stores "<urn>::<id>").
            provider=r["provider"].rsplit("::", 1)[0] if r.get("provider") else None,
        )
        for r in plan.resources
    ]


def core_problems(manifests: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """ "<kind> <name>" -> what strict validation of the core object finds wrong, for those it does."""
    return {
        f"{m['kind']} {m['metadata']['name']}": found
        for m in manifests
        if (found := schemas.validate_core(m, KUBERNETES_VERSION))
    }


def checked_pod_identity(
    plan: Plan,
    role: Mapping[str, Any],
    *,
    cluster_arn: str,
    namespace: str,
    service_account: str,
    boundary: str,
) -> dict[str, Any]:
    """The Pod Identity association of ``role``, once both are checked to admit exactly that service
    account of that namespace in that cluster, within the permissions boundary."""
    (trust,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-arn": cluster_arn,
        "aws:RequestTag/kubernetes-namespace": namespace,
        "aws:RequestTag/kubernetes-service-account": service_account,
    }
    assert role["inputs"]["permissionsBoundary"] == boundary
    association = one(plan, "PodIdentityAssociation")
    assert (association["inputs"]["namespace"], association["inputs"]["serviceAccount"]) == (
        namespace,
        service_account,
    )
    return association


# Rules that judge a whole stack's dependency graph (CRD installers, controllers, the injector, IAM
# attachments, protection per environment). A layer built alone lacks the other layers they look for,
# so layer tests leave them out; the gate runs them on every stack's whole plan (tests/test_plans.py).
WHOLE_PLAN_RULES = frozenset(rule.name for rule in lifecycle.RULES)


def layer_rules(pack: Pack | None = None) -> list[Rule]:
    """The catalog's rules that can judge one layer built on its own."""
    rules = catalog.rules_for(pack) if pack else catalog.RULES
    return [rule for rule in rules if rule.name not in WHOLE_PLAN_RULES]
