"""Who can do what: every team (and anyone else the plan gives rights) by every namespace, evaluated from
the plan's RBAC objects and EKS access entries (rampart.access.rbac, rampart.access.eks), and the rules a
platform security team holds them to:

- a team acts in its own services' namespaces only: never in another team's, never in a platform
  namespace, never cluster-wide;
- in its own namespaces it operates its workloads but reads no Secrets, does not exec or attach into
  pods, changes no RBAC and impersonates nobody (components/paved_road/team_access.py);
- nobody but the platform admins has cluster-wide rights (controllers' service accounts in platform
  namespaces aside), and on aws every platform admin keeps cluster admin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from components.namespaces import PLATFORM_NAMESPACES
from rampart.access import eks
from rampart.access.rbac import AUTHENTICATED, Grant, Identity, Rbac, Rule, Subject, service_account
from rampart.config import PlatformConfig
from rampart.offline.plan import Plan

Kind = Literal["team", "admin", "controller", "other"]
Request = tuple[str, str, str]  # verb, API group, resource

# What the matrix shows of a set of rules: the things one asks of a team's access.
CAPABILITIES: tuple[tuple[str, tuple[Request, ...]], ...] = (
    ("read deployments", (("get", "apps", "deployments"),)),
    ("roll deployments", (("patch", "apps", "deployments"),)),
    ("read pods", (("get", "", "pods"),)),
    ("read logs", (("get", "", "pods/log"),)),
    ("read events", (("list", "", "events"),)),
    ("port-forward", (("create", "", "pods/portforward"),)),
    ("read configmaps", (("get", "", "configmaps"),)),
    ("read secrets", (("get", "", "secrets"), ("list", "", "secrets"), ("watch", "", "secrets"))),
    # Exec and attach over WebSockets are GETs (Kubernetes 1.31+), over SPDY POSTs: either verb is exec.
    ("exec into pods", tuple((v, "", r) for v in ("create", "get") for r in ("pods/exec", "pods/attach"))),
    (
        "create or delete workloads",
        tuple((v, g, r) for v in ("create", "delete") for g, r in (("", "pods"), ("apps", "deployments"))),
    ),
    (
        "change RBAC",
        tuple(
            (v, "rbac.authorization.k8s.io", r)
            for v in ("create", "update", "patch", "bind", "escalate")
            for r in ("roles", "rolebindings")
        ),
    ),
    ("impersonate", tuple(("impersonate", "", r) for r in ("users", "groups", "serviceaccounts"))),
)  # fmt: skip
# What a team may never do, not even in its own namespaces.
FORBIDDEN_FOR_TEAMS = ("read secrets", "exec into pods", "change RBAC", "impersonate")


@dataclass(frozen=True)
class Principal:
    """Someone the plan gives rights: a team, a platform admin, a controller or anyone else."""

    key: str
    kind: Kind
    identity: Identity
    # The EKS principals acting as it (aws): their access policy associations add to RBAC.
    principal_arns: tuple[str, ...] = ()
    team: str | None = None


@dataclass(frozen=True)
class Cell:
    """What one principal may do in one namespace (None: cluster-wide), and what grants it."""

    principal: Principal
    namespace: str | None
    owner: str
    grants: tuple[Grant, ...]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(rule for grant in self.grants for rule in grant.rules)

    def can(self, verb: str, api_group: str, resource: str, name: str | None = None) -> bool:
        return any(rule.matches(verb, api_group, resource, name) for rule in self.rules)

    @property
    def summary(self) -> str:
        """``everything`` for a wildcard rule, else the capabilities, else the rules themselves."""
        if any(r.verbs == {"*"} and r.api_groups == {"*"} and r.resources == {"*"} for r in self.rules):
            return "everything"
        return ", ".join(self.capabilities) or "act (" + "; ".join(grants_text(self.rules)) + ")"

    @property
    def capabilities(self) -> list[str]:
        return [label for label, asks in CAPABILITIES if any(self.can(*ask) for ask in asks)]

    def triples(self) -> frozenset[tuple[str, str, str]]:
        """Every (verb, API group, resource) granted, wildcards as written (resourceNames-limited rules
        marked with their names)."""
        found = set()
        for rule in self.rules:
            suffix = f"[{','.join(sorted(rule.resource_names))}]" if rule.resource_names else ""
            for verb in rule.verbs:
                for group in rule.api_groups:
                    for resource in rule.resources:
                        found.add((verb, group, resource + suffix))
        return frozenset(found)

    @property
    def sources(self) -> list[str]:
        return sorted({grant.source for grant in self.grants})


@dataclass
class Access:
    stack: str
    principals: list[Principal]
    namespaces: list[str]
    owners: dict[str, str]
    cells: list[Cell]
    violations: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def cell(self, principal: str, namespace: str | None) -> Cell:
        return next(c for c in self.cells if c.principal.key == principal and c.namespace == namespace)

    def team_cell(self, team: str, namespace: str | None) -> Cell:
        return self.cell(f"team {team}", namespace)

    def granted(self) -> list[Cell]:
        return [c for c in self.cells if c.grants]


class _Evaluator:
    def __init__(self, plan: Plan, config: PlatformConfig) -> None:
        self.config = config
        self.rbac = Rbac.from_plan(plan, eks.USER_FACING_ROLES)
        self.entries = eks.access_entries(plan) if config.target == "aws" else {}

    def grants(self, principal: Principal, namespace: str | None) -> tuple[Grant, ...]:
        found = list(self.rbac.grants(principal.identity, namespace))
        for arn in principal.principal_arns:
            entry = self.entries.get(arn)
            if entry is None or not entry.standard:
                continue
            for association in entry.associations:
                if association.covers(namespace):
                    rules, _ = eks.policy_rules(association.policy_arn)
                    found.append(Grant(rules, association.text))
        return tuple(found)


def evaluate(plan: Plan, config: PlatformConfig) -> Access:
    evaluator = _Evaluator(plan, config)
    notes: list[str] = []
    violations: list[str] = []
    principals = _principals(evaluator, notes, violations)
    owners = _owners(config, evaluator)
    namespaces = sorted(owners)
    cells = [
        Cell(
            principal,
            namespace,
            owners[namespace] if namespace else "cluster",
            evaluator.grants(principal, namespace),
        )
        for principal in principals
        for namespace in [*namespaces, None]
    ]
    access = Access(plan.stack, principals, namespaces, owners, cells, violations, notes)
    violations += _violations(access, evaluator)
    for entry in evaluator.entries.values():
        for association in entry.associations:
            if eks.policy_rules(association.policy_arn)[1] is False:
                notes.append(f"{association.policy}: not modelled; taken to grant everything")
    return access


def _principals(evaluator: _Evaluator, notes: list[str], violations: list[str]) -> list[Principal]:
    """The teams, the platform admins (aws), and everyone else an access entry or a binding names."""
    teams = _teams(evaluator, violations)
    admins = _admins(evaluator)
    claimed_arns = {arn for p in [*teams, *admins] for arn in p.principal_arns}
    claimed_arns |= {arn for team in evaluator.config.teams for arn in team.aws_role_arns}
    claimed_groups = {team.group for team in evaluator.config.teams} | {AUTHENTICATED}
    others = []
    for arn, entry in sorted(evaluator.entries.items()):
        if arn in claimed_arns:
            continue
        if not entry.standard:
            notes.append(
                f"access entry {arn} ({entry.type}): a node identity, given what kubelets need by EKS"
            )
            continue
        identity = Identity(groups=frozenset({*entry.groups, AUTHENTICATED}))
        others.append(Principal(f"principal {arn}", "other", identity, (arn,)))
    for subject in sorted(evaluator.rbac.subjects(), key=lambda s: (s.kind, s.namespace or "", s.name)):
        principal = _subject_principal(subject)
        if principal is not None and not (subject.kind == "Group" and subject.name in claimed_groups):
            others.append(principal)
    return [*teams, *admins, *others]


def _teams(evaluator: _Evaluator, violations: list[str]) -> list[Principal]:
    found = []
    for team in evaluator.config.teams:
        if evaluator.config.target == "aws":
            # On EKS a team's groups are what its access entries say, not what the config meant them to be.
            arns = tuple(arn for arn in team.aws_role_arns if arn in evaluator.entries)
            violations += [
                f"team {team.name}: role {arn} has no EKS access entry (its people cannot log in)"
                for arn in team.aws_role_arns
                if arn not in evaluator.entries
            ]
            groups = {group for arn in arns for group in evaluator.entries[arn].groups}
        else:
            # Elsewhere the cluster's authenticator (an OIDC groups claim) puts its people in its group.
            arns, groups = (), {team.group}
        identity = Identity(groups=frozenset({*groups, AUTHENTICATED}))
        found.append(Principal(f"team {team.name}", "team", identity, arns, team.name))
    return found


def _admins(evaluator: _Evaluator) -> list[Principal]:
    settings = evaluator.config.aws
    if settings is None or evaluator.config.target != "aws":
        return []
    found = []
    for arn in settings.admin_principal_arns:
        entry = evaluator.entries.get(arn)
        groups = frozenset({*(entry.groups if entry else ()), AUTHENTICATED})
        found.append(Principal(f"admin {arn}", "admin", Identity(groups=groups), (arn,)))
    return found


def _subject_principal(subject: Subject) -> Principal | None:
    if subject.kind == "Group":
        return Principal(
            f"group {subject.name}", "other", Identity(groups=frozenset({subject.name, AUTHENTICATED}))
        )
    if subject.kind == "User":
        identity = Identity(frozenset({subject.name}), frozenset({AUTHENTICATED}))
        return Principal(f"user {subject.name}", "other", identity)
    if subject.kind == "ServiceAccount" and subject.namespace:
        # Controllers' service accounts in platform namespaces may hold cluster-wide rights; nobody else's.
        kind: Kind = "controller" if subject.namespace in PLATFORM_NAMESPACES else "other"
        key = f"serviceaccount {subject.namespace}/{subject.name}"
        return Principal(key, kind, service_account(subject.namespace, subject.name))
    return None


def _owners(config: PlatformConfig, evaluator: _Evaluator) -> dict[str, str]:
    """Namespace -> who owns it: ``team <name>``, ``platform`` or ``unowned``."""
    owners = dict.fromkeys(PLATFORM_NAMESPACES, "platform")
    for service in config.services:
        owners[service.name] = f"team {service.team}" if service.team else "unowned"
    scoped = {
        ns
        for entry in evaluator.entries.values()
        for association in entry.associations
        for ns in association.namespaces
        if "*" not in ns
    }
    for namespace in evaluator.rbac.namespaces() | scoped:
        owners.setdefault(namespace, "unowned")
    return owners


def _violations(access: Access, evaluator: _Evaluator) -> list[str]:
    found: list[str] = []
    for cell in access.granted():
        principal = cell.principal
        what = cell.summary
        via = "; ".join(cell.sources)
        if cell.namespace is None:
            if principal.kind not in ("admin", "controller"):
                found.append(f"{principal.key} has cluster-wide rights: {what} (via {via})")
            continue
        if principal.kind != "team":
            continue
        if cell.owner != f"team {principal.team}":
            where = "a platform namespace" if cell.owner == "platform" else f"owned by {cell.owner}"
            found.append(f"{principal.key} can {what} in namespace {cell.namespace} ({where}; via {via})")
            continue
        forbidden = [c for c in cell.capabilities if c in FORBIDDEN_FOR_TEAMS]
        if forbidden:
            found.append(
                f"{principal.key} can {', '.join(forbidden)} in its namespace {cell.namespace} (via {via}); "
                "teams read no Secrets (credentials come from Vault), exec into no pods and change no RBAC"
            )
    for principal in access.principals:
        if principal.kind == "admin" and not _has_cluster_admin(principal, evaluator):
            found.append(
                f"{principal.key}: no cluster-scoped {eks.CLUSTER_ADMIN} association "
                "(platform admins keep cluster admin)"
            )
    return found


def _has_cluster_admin(principal: Principal, evaluator: _Evaluator) -> bool:
    return any(
        association.scope == "cluster" and association.policy == eks.CLUSTER_ADMIN
        for arn in principal.principal_arns
        if (entry := evaluator.entries.get(arn)) is not None
        for association in entry.associations
    )


def summary(access: Access) -> str:
    teams = [p for p in access.principals if p.kind == "team"]
    return (
        f"{len(teams)} teams, {len(access.namespaces)} namespaces, "
        f"{len(access.principals) - len(teams)} other principals, {len(access.violations)} violations"
    )


def grants_text(rules: Iterable[Rule]) -> list[str]:
    return sorted(rule.text() for rule in rules)
