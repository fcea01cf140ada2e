"""What a service's team may do in the service's namespace: a Role and its RoleBinding to the team's group.

The team operates its own workload and nothing else: it reads and rolls its Deployments (`kubectl
rollout restart` is a patch of the pod template; `rollout status`/`undo` read ReplicaSets), reads pods,
their logs and events, Services and ConfigMaps, and port-forwards to its pods. It does not read Secrets
(credentials come from Vault, and the Secrets the Secrets Operator writes stay with the pods), exec or
attach into pods, create or delete anything, or touch RBAC; nothing here is cluster-wide. Kubernetes
RBAC: https://kubernetes.io/docs/reference/access-authn-authz/rbac/ (`rampart access` evaluates it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

ROLE = "team-operator"
TEAM_LABEL = "rampart.dev/team"
READ = ("get", "list", "watch")


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule: these verbs on these resources of these API groups."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def args(self) -> k8s.rbac.v1.PolicyRuleArgs:
        return k8s.rbac.v1.PolicyRuleArgs(
            api_groups=list(self.api_groups), resources=list(self.resources), verbs=list(self.verbs)
        )


# `kubectl port-forward` opens pods/portforward with a POST over SPDY (verb create) or, from Kubernetes
# 1.31 clients and servers, a WebSocket upgrade, which is a GET (verb get; 1.35 servers check create as
# well): https://kubernetes.io/blog/2024/08/20/websockets-transition/. Both verbs, on the subresource only.
TEAM_RULES: tuple[Rule, ...] = (
    Rule(("apps",), ("deployments",), (*READ, "patch")),
    Rule(("apps",), ("replicasets",), READ),
    Rule(("",), ("pods", "services", "configmaps", "events"), READ),
    Rule(("",), ("pods/log",), ("get",)),
    Rule(("events.k8s.io",), ("events",), READ),
    Rule(("",), ("pods/portforward",), ("get", "create")),
)


@dataclass(frozen=True)
class TeamBinding:
    """The team that owns a service, as the paved road binds it."""

    name: str
    # The Kubernetes group the cluster's authenticator (or the team's EKS access entries) puts its people in.
    group: str


def team_access(
    name: str,
    *,
    team: TeamBinding,
    namespace: pulumi.Input[str],
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[k8s.rbac.v1.Role, k8s.rbac.v1.RoleBinding]:
    """The team's Role in the service's namespace and the RoleBinding that gives it to the team's group.
    Reassigning the service to another team changes the binding's subject in place (roleRef is kept)."""
    meta = k8s.meta.v1.ObjectMetaArgs(
        name=ROLE, namespace=namespace, labels={**labels, TEAM_LABEL: team.name}
    )
    role = k8s.rbac.v1.Role(
        f"{name}-team-role", metadata=meta, rules=[rule.args() for rule in TEAM_RULES], opts=opts
    )
    binding = k8s.rbac.v1.RoleBinding(
        f"{name}-team-binding",
        metadata=meta,
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(api_group="rbac.authorization.k8s.io", kind="Group", name=team.group)
        ],
        opts=opts,
    )
    return role, binding
