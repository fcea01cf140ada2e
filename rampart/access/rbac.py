"""Kubernetes RBAC as the API server evaluates it, read from the plan's Roles, ClusterRoles and bindings.

https://kubernetes.io/docs/reference/access-authn-authz/rbac/:

- RBAC only adds permissions ("there are no deny rules"); a request is allowed when any rule of any role
  bound to the user, or to one of its groups, matches it.
- A rule matches when its apiGroups, resources and verbs each contain the request's (or ``*``); a
  subresource is named ``pods/log``, and ``*/scale`` names that subresource of any resource. A rule with
  resourceNames matches only requests for one of those names (never list, watch or create).
- A Role grants in its own namespace, through a RoleBinding there. A RoleBinding may reference a
  ClusterRole: its rules then apply in the RoleBinding's namespace only. A ClusterRoleBinding grants a
  ClusterRole in every namespace and on cluster-scoped resources.
- Subjects are users, groups and service accounts; a service account authenticates as
  ``system:serviceaccount:<ns>:<name>`` in the groups ``system:serviceaccounts`` and
  ``system:serviceaccounts:<ns>``, and every authenticated user is in ``system:authenticated``.
- An aggregated ClusterRole's rules are the union of the ClusterRoles its aggregationRule selects.
- Default ClusterRoleBindings: ``cluster-admin`` is bound to the group ``system:masters`` (modelled); the
  discovery roles bound to ``system:authenticated`` grant only non-resource URLs and self reviews (not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rampart.offline.plan import Plan

ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
ANY = "*"


@dataclass(frozen=True)
class Rule:
    """One PolicyRule."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        verbs: Iterable[str],
        api_groups: Iterable[str],
        resources: Iterable[str],
        resource_names: Iterable[str] = (),
    ) -> Rule:
        return cls(frozenset(verbs), frozenset(api_groups), frozenset(resources), frozenset(resource_names))

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Rule | None:
        """A rule of a Role or ClusterRole; None for a nonResourceURLs-only rule (no resources)."""
        resources = raw.get("resources") or []
        if not resources:
            return None
        return cls.of(
            raw.get("verbs") or [], raw.get("apiGroups") or [], resources, raw.get("resourceNames") or []
        )

    def matches(self, verb: str, api_group: str, resource: str, name: str | None = None) -> bool:
        if ANY not in self.verbs and verb not in self.verbs:
            return False
        if ANY not in self.api_groups and api_group not in self.api_groups:
            return False
        if not _resource_matches(self.resources, resource):
            return False
        return not self.resource_names or (name is not None and name in self.resource_names)

    def text(self) -> str:
        groups = ",".join(sorted(g or "core" for g in self.api_groups))
        names = f" [{','.join(sorted(self.resource_names))}]" if self.resource_names else ""
        return f"{','.join(sorted(self.verbs))} {groups}/{','.join(sorted(self.resources))}{names}"


def _resource_matches(resources: frozenset[str], requested: str) -> bool:
    if ANY in resources or requested in resources:
        return True
    if "/" in requested:
        subresource = requested.split("/", 1)[1]
        return f"*/{subresource}" in resources
    return False


@dataclass(frozen=True)
class Subject:
    kind: str  # User, Group or ServiceAccount
    name: str
    namespace: str | None = None

    @property
    def text(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Binding:
    """A RoleBinding (``namespace`` set) or ClusterRoleBinding (``namespace`` None)."""

    name: str
    namespace: str | None
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]
    # Kubernetes' own default bindings, in every cluster (not the plan's).
    default: bool = False

    @property
    def text(self) -> str:
        kind = "RoleBinding" if self.namespace is not None else "ClusterRoleBinding"
        where = f"{self.namespace}/" if self.namespace is not None else ""
        return f"{kind} {where}{self.name} -> {self.role_kind} {self.role_name}"


@dataclass(frozen=True)
class Identity:
    """Who a request comes from, as the authenticator hands it to RBAC."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def bound_by(self, subject: Subject) -> bool:
        if subject.kind == "Group":
            return subject.name in self.groups
        if subject.kind == "User":
            return subject.name in self.users
        if subject.kind == "ServiceAccount":
            return f"system:serviceaccount:{subject.namespace}:{subject.name}" in self.users
        return False


def service_account(namespace: str, name: str) -> Identity:
    return Identity(
        frozenset({f"system:serviceaccount:{namespace}:{name}"}),
        frozenset({"system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED}),
    )


@dataclass(frozen=True)
class Grant:
    """Rules that apply to someone somewhere, and what in the plan grants them."""

    rules: tuple[Rule, ...]
    source: str


@dataclass
class Rbac:
    """The plan's RBAC objects, with the built-in user-facing ClusterRoles beside them."""

    roles: dict[tuple[str, str], tuple[Rule, ...]]
    cluster_roles: dict[str, tuple[Rule, ...]]
    bindings: list[Binding]

    @classmethod
    def from_plan(cls, plan: Plan, built_in: Mapping[str, Sequence[Rule]]) -> Rbac:
        roles = {(_namespace(r["inputs"]), _name(r)): _rules(r["inputs"]) for r in plan.of_type(ROLE)}
        raw_cluster_roles = {_name(r): r["inputs"] for r in plan.of_type(CLUSTER_ROLE)}
        cluster_roles: dict[str, tuple[Rule, ...]] = {name: tuple(rules) for name, rules in built_in.items()}
        for name, inputs in raw_cluster_roles.items():
            cluster_roles[name] = _aggregated(inputs, raw_cluster_roles)
        bindings = [_binding(r, namespaced=True) for r in plan.of_type(ROLE_BINDING)]
        bindings += [_binding(r, namespaced=False) for r in plan.of_type(CLUSTER_ROLE_BINDING)]
        # Kubernetes' own default binding: cluster-admin to system:masters.
        bindings.append(
            Binding(
                "cluster-admin",
                None,
                "ClusterRole",
                "cluster-admin",
                (Subject("Group", MASTERS),),
                default=True,
            )
        )
        return cls(roles, cluster_roles, bindings)

    def role_rules(self, binding: Binding) -> tuple[Rule, ...] | None:
        """The rules a binding grants; None when it names a role that does not exist (grants nothing)."""
        if binding.role_kind == "Role" and binding.namespace is not None:
            return self.roles.get((binding.namespace, binding.role_name))
        if binding.role_kind == "ClusterRole":
            return self.cluster_roles.get(binding.role_name)
        return None

    def grants(self, identity: Identity, namespace: str | None) -> list[Grant]:
        """What RBAC grants ``identity`` in ``namespace`` (None: cluster-wide, from ClusterRoleBindings)."""
        found = []
        for binding in self.bindings:
            if binding.namespace is not None and binding.namespace != namespace:
                continue
            if not any(identity.bound_by(subject) for subject in binding.subjects):
                continue
            rules = self.role_rules(binding)
            if rules:
                found.append(Grant(rules, binding.text))
        return found

    def subjects(self) -> set[Subject]:
        """Everyone the plan's bindings name (the defaults' system groups aside)."""
        return {subject for binding in self.bindings if not binding.default for subject in binding.subjects}

    def namespaces(self) -> set[str]:
        return {b.namespace for b in self.bindings if b.namespace is not None} | {ns for ns, _ in self.roles}


def _name(resource: Mapping[str, Any]) -> str:
    metadata = resource["inputs"].get("metadata") or {}
    return str(metadata.get("name") or resource["urn"].rsplit("::", 1)[-1])


def _namespace(inputs: Mapping[str, Any]) -> str:
    return str((inputs.get("metadata") or {}).get("namespace") or "default")


def _rules(inputs: Mapping[str, Any]) -> tuple[Rule, ...]:
    return tuple(rule for raw in inputs.get("rules") or [] if (rule := Rule.parse(raw)) is not None)


def _aggregated(inputs: Mapping[str, Any], all_roles: Mapping[str, Mapping[str, Any]]) -> tuple[Rule, ...]:
    """A ClusterRole's rules; with an aggregationRule, those of every ClusterRole its selectors match."""
    selectors = (inputs.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if not selectors:
        return _rules(inputs)
    rules: list[Rule] = []
    for other in all_roles.values():
        labels = (other.get("metadata") or {}).get("labels") or {}
        if any(_labels_match(selector.get("matchLabels") or {}, labels) for selector in selectors):
            rules += _rules(other)
    return tuple(rules)


def _labels_match(wanted: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(wanted) and all(labels.get(key) == value for key, value in wanted.items())


def _binding(resource: Mapping[str, Any], *, namespaced: bool) -> Binding:
    inputs = resource["inputs"]
    ref = inputs.get("roleRef") or {}
    subjects = tuple(
        Subject(str(s.get("kind")), str(s.get("name")), s.get("namespace"))
        for s in inputs.get("subjects") or []
    )
    return Binding(
        _name(resource),
        _namespace(inputs) if namespaced else None,
        str(ref.get("kind")),
        str(ref.get("name")),
        subjects,
    )
