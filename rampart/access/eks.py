"""EKS access entries and access policies, as EKS authorizes them, read from the plan.

https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html and
https://docs.aws.amazon.com/eks/latest/userguide/access-policies.html:

- An access entry lets an IAM principal authenticate; its ``kubernetesGroups`` are the groups the
  principal has for Kubernetes RBAC (in API authentication mode, the only way in: Rampart sets it).
- An access policy associated with a STANDARD entry grants its rules either on the whole cluster
  (``accessScope.type: cluster``) or in the listed namespaces (``type: namespace``; a name may end in
  the wildcard ``*``). Several policies add up, and add to what RBAC grants the entry's groups.
- Entries of other types (EC2_LINUX, FARGATE_LINUX, ...) are nodes: EKS gives them what kubelets need.

The policies' rules are transcribed from "Review access policy permissions" (EKS user guide,
access-policy-permissions); a policy not listed here is taken to grant everything (and said so).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rampart.access.rbac import Rule
from rampart.offline.plan import Plan

ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")


def _rules(*rows: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]) -> tuple[Rule, ...]:
    return tuple(Rule.of(verbs, groups, resources) for groups, resources, verbs in rows)


_VIEW_ROWS = (
    (
        ("apps",),
        (
            "controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
            "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
            "statefulsets/scale", "statefulsets/status",
        ),
        READ,
    ),
    (("autoscaling",), ("horizontalpodautoscalers", "horizontalpodautoscalers/status"), READ),
    (("batch",), ("cronjobs", "cronjobs/status", "jobs", "jobs/status"), READ),
    (("discovery.k8s.io",), ("endpointslices",), READ),
    (
        ("extensions",),
        (
            "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
            "ingresses", "ingresses/status", "networkpolicies", "replicasets", "replicasets/scale",
            "replicasets/status", "replicationcontrollers/scale",
        ),
        READ,
    ),
    (("networking.k8s.io",), ("ingresses", "ingresses/status", "networkpolicies"), READ),
    (("policy",), ("poddisruptionbudgets", "poddisruptionbudgets/status"), READ),
    (
        ("",),
        (
            "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
            "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
            "services/status",
        ),
        READ,
    ),
    (
        ("",),
        (
            "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
            "replicationcontrollers/status", "resourcequotas", "resourcequotas/status",
        ),
        READ,
    ),
    (("",), ("namespaces",), READ),
)  # fmt: skip
_EDIT_ROWS = (
    *_VIEW_ROWS,
    (
        ("apps",),
        (
            "daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
            "replicasets/scale", "statefulsets", "statefulsets/scale",
        ),
        WRITE,
    ),
    (("autoscaling",), ("horizontalpodautoscalers",), WRITE),
    (("batch",), ("cronjobs", "jobs"), WRITE),
    (
        ("extensions",),
        (
            "daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
            "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale",
        ),
        WRITE,
    ),
    (("networking.k8s.io",), ("ingresses", "networkpolicies"), WRITE),
    (("policy",), ("poddisruptionbudgets",), WRITE),
    (
        ("",),
        ("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"),
        READ,
    ),
    (("",), ("serviceaccounts",), ("impersonate",)),
    (("",), ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"), WRITE),
    (
        ("",),
        (
            "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
            "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy",
        ),
        WRITE,
    ),
)  # fmt: skip
_ADMIN_ROWS = (
    *_EDIT_ROWS,
    (("authorization.k8s.io",), ("localsubjectaccessreviews",), ("create",)),
    (("rbac.authorization.k8s.io",), ("rolebindings", "roles"), (*WRITE, *READ)),
)

POLICIES: dict[str, tuple[Rule, ...]] = {
    "AmazonEKSClusterAdminPolicy": (Rule.of(["*"], ["*"], ["*"]),),
    "AmazonEKSAdminPolicy": _rules(*_ADMIN_ROWS),
    "AmazonEKSEditPolicy": _rules(*_EDIT_ROWS),
    "AmazonEKSViewPolicy": _rules(*_VIEW_ROWS),
    "AmazonEKSAdminViewPolicy": (Rule.of(READ, ["*"], ["*"]),),
    "AmazonEKSSecretReaderPolicy": (Rule.of(READ, [""], ["secrets"]),),
}
# The user-facing ClusterRoles every cluster has (bindings may name them without the plan defining them),
# as the EKS policies that mirror them grant ("similar to the permissions in the Kubernetes user-facing
# cluster roles", access-policy-permissions).
USER_FACING_ROLES: dict[str, tuple[Rule, ...]] = {
    "cluster-admin": POLICIES["AmazonEKSClusterAdminPolicy"],
    "admin": POLICIES["AmazonEKSAdminPolicy"],
    "edit": POLICIES["AmazonEKSEditPolicy"],
    "view": POLICIES["AmazonEKSViewPolicy"],
}
CLUSTER_ADMIN = "AmazonEKSClusterAdminPolicy"


def policy_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def policy_rules(arn: str) -> tuple[tuple[Rule, ...], bool]:
    """A policy's rules, and whether they are known (an unknown policy is taken to grant everything)."""
    known = POLICIES.get(policy_name(arn))
    return (known, True) if known is not None else ((Rule.of(["*"], ["*"], ["*"]),), False)


@dataclass(frozen=True)
class Association:
    principal_arn: str
    policy_arn: str
    # "cluster" or "namespace"
    scope: str
    namespaces: tuple[str, ...]

    @property
    def policy(self) -> str:
        return policy_name(self.policy_arn)

    def covers(self, namespace: str | None) -> bool:
        """Whether it applies in ``namespace`` (None: cluster-wide, which only a cluster scope covers)."""
        if self.scope == "cluster":
            return True
        # "You can use wildcard characters for a namespace name" (access-policies): a suffix *.
        return namespace is not None and any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces
        )

    @property
    def text(self) -> str:
        where = "cluster" if self.scope == "cluster" else f"namespaces {','.join(self.namespaces)}"
        return f"EKS {self.policy} ({where})"


@dataclass(frozen=True)
class AccessEntry:
    principal_arn: str
    type: str
    groups: tuple[str, ...]
    associations: tuple[Association, ...]

    @property
    def standard(self) -> bool:
        return self.type == "STANDARD"


def access_entries(plan: Plan) -> dict[str, AccessEntry]:
    """Access entries by principal ARN, each with its access policy associations."""
    associations: dict[str, list[Association]] = {}
    for resource in plan.of_type(ASSOCIATION):
        inputs: Mapping[str, Any] = resource["inputs"]
        scope = inputs.get("accessScope") or {}
        associations.setdefault(str(inputs.get("principalArn")), []).append(
            Association(
                str(inputs.get("principalArn")),
                str(inputs.get("policyArn")),
                str(scope.get("type")),
                tuple(scope.get("namespaces") or ()),
            )
        )
    entries: dict[str, AccessEntry] = {}
    for resource in plan.of_type(ACCESS_ENTRY):
        inputs = resource["inputs"]
        arn = str(inputs.get("principalArn"))
        entries[arn] = AccessEntry(
            arn,
            str(inputs.get("type") or "STANDARD"),
            tuple(inputs.get("kubernetesGroups") or ()),
            tuple(associations.get(arn, ())),
        )
    return entries
