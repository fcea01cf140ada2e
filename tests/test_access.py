"""Teams and `rampart access` (rampart/access): the RBAC and EKS models on hand-made fragments, each with a
mutation that flips it; every stack's isolation (no team acts in another team's namespace, in a platform
namespace or cluster-wide) and what a team may do at home; revocation when a service changes team;
mutations of a real plan that must fail the verdict; the Role and RoleBinding as Kubernetes validates them;
the CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.namespaces import PLATFORM_NAMESPACES
from components.paved_road.team_access import ROLE, TEAM_RULES
from rampart.access import Access, evaluate
from rampart.access.eks import POLICIES, USER_FACING_ROLES, Association
from rampart.access.rbac import Identity, Rbac, Rule, service_account
from rampart.config import PlatformConfig, load_platform_config
from rampart.offline import schemas
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.support.cli import rampart
from tests.support.harness import platform_plan
from tests.support.plans import KUBERNETES_VERSION

ROLE_TYPE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING_TYPE = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING_TYPE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
ENTRY_TYPE = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION_TYPE = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"


def expand(rules: tuple[Rule, ...]) -> frozenset[tuple[str, str, str]]:
    return frozenset(
        (v, g, r) for rule in rules for v in rule.verbs for g in rule.api_groups for r in rule.resources
    )


# What item 2 of the issue gives a team in each of its namespaces, and (aws) the view policy on top.
ROLE_TRIPLES = expand(tuple(Rule.of(r.verbs, r.api_groups, r.resources) for r in TEAM_RULES))
VIEW_TRIPLES = expand(POLICIES["AmazonEKSViewPolicy"])


# --- the models on fragments ------------------------------------------------------------------------


def resource(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:t::rampart::{type_}::{name}", "type": type_, "custom": True, "inputs": inputs}


def role(namespace: str, name: str, *rules: dict[str, Any], kind: str = "Role") -> dict[str, Any]:
    type_ = ROLE_TYPE if kind == "Role" else "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
    metadata = {"name": name} | ({"namespace": namespace} if kind == "Role" else {})
    return resource(type_, f"{namespace}-{name}", {"metadata": metadata, "rules": list(rules)})


def binding(
    namespace: str | None, role_kind: str, role_name: str, *subjects: dict[str, Any]
) -> dict[str, Any]:
    type_ = ROLE_BINDING_TYPE if namespace else CLUSTER_ROLE_BINDING_TYPE
    metadata = {"name": f"b-{role_name}"} | ({"namespace": namespace} if namespace else {})
    inputs = {
        "metadata": metadata,
        "roleRef": {"kind": role_kind, "name": role_name},
        "subjects": list(subjects),
    }
    return resource(type_, f"{namespace}-{role_name}-{len(subjects)}", inputs)


def group(name: str) -> dict[str, Any]:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def rbac_of(*resources: dict[str, Any]) -> Rbac:
    return Rbac.from_plan(Plan("rampart", "t", list(resources)), USER_FACING_ROLES)


def allowed(rbac: Rbac, who: Identity, namespace: str | None, *request: str) -> bool:
    verb, api_group, res = request
    return any(
        rule.matches(verb, api_group, res) for grant in rbac.grants(who, namespace) for rule in grant.rules
    )


TEAM_A = Identity(groups=frozenset({"team-a", "system:authenticated"}))


def test_rule_matching_follows_rbac_resources_subresources_and_names() -> None:
    """A subresource is named in full; ``*/scale`` names the subresource of any resource; resourceNames
    limit a rule to requests naming one of them (never a list)."""
    logs = Rule.of(["get"], [""], ["pods/log"])
    assert logs.matches("get", "", "pods/log")
    assert not logs.matches("get", "", "pods")  # mutation: the parent resource is another resource
    assert not Rule.of(["get"], [""], ["pods"]).matches("get", "", "pods/log")
    scale = Rule.of(["patch"], ["apps"], ["*/scale"])
    assert scale.matches("patch", "apps", "deployments/scale")
    assert not scale.matches("patch", "apps", "deployments")
    named = Rule.of(["patch"], ["apps"], ["deployments"], ["orders"])
    assert named.matches("patch", "apps", "deployments", "orders")
    assert not named.matches("patch", "apps", "deployments", "payments")
    assert not named.matches("patch", "apps", "deployments")
    assert Rule.of(["*"], ["*"], ["*"]).matches("delete", "rbac.authorization.k8s.io", "rolebindings")
    assert not Rule.of(["get"], ["apps"], ["*"]).matches("get", "", "pods")  # the API group must match


def test_a_role_grants_in_its_namespace_only_and_only_through_a_binding_there() -> None:
    base = [
        role("a", "ops", {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}),
        binding("a", "Role", "ops", group("team-a")),
    ]
    rbac = rbac_of(*base)
    assert allowed(rbac, TEAM_A, "a", "patch", "apps", "deployments")
    assert not allowed(rbac, TEAM_A, "b", "patch", "apps", "deployments")
    assert not allowed(rbac, TEAM_A, None, "patch", "apps", "deployments")
    # Mutation: a binding in namespace b naming the Role grants nothing (a Role is its namespace's alone).
    assert not allowed(
        rbac_of(*base, binding("b", "Role", "ops", group("team-a"))),
        TEAM_A,
        "b",
        "patch",
        "apps",
        "deployments",
    )
    # Mutation: another group bound instead.
    other = rbac_of(base[0], binding("a", "Role", "ops", group("team-b")))
    assert not allowed(other, TEAM_A, "a", "patch", "apps", "deployments")


def test_a_cluster_role_grants_where_its_binding_is() -> None:
    """Through a RoleBinding, in that namespace; through a ClusterRoleBinding, everywhere and cluster-wide."""
    secrets = role(
        "", "reader", {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, kind="ClusterRole"
    )
    namespaced = rbac_of(secrets, binding("a", "ClusterRole", "reader", group("team-a")))
    assert allowed(namespaced, TEAM_A, "a", "get", "", "secrets")
    assert not allowed(namespaced, TEAM_A, "vault", "get", "", "secrets")
    everywhere = rbac_of(secrets, binding(None, "ClusterRole", "reader", group("team-a")))
    assert allowed(everywhere, TEAM_A, "vault", "get", "", "secrets")
    assert allowed(everywhere, TEAM_A, None, "get", "", "secrets")


def test_aggregated_cluster_roles_and_built_in_roles_and_service_accounts() -> None:
    parts = role(
        "", "part", {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}, kind="ClusterRole"
    )
    parts["inputs"]["metadata"]["labels"] = {"agg": "yes"}
    whole = role("", "whole", kind="ClusterRole")
    whole["inputs"]["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}
    sa = {"kind": "ServiceAccount", "name": "app", "namespace": "a"}
    rbac = rbac_of(
        parts, whole, binding("a", "ClusterRole", "whole", sa), binding("b", "ClusterRole", "edit", sa)
    )
    app = service_account("a", "app")
    assert allowed(rbac, app, "a", "delete", "", "pods")
    assert allowed(rbac, app, "b", "create", "", "pods/exec")  # edit (as AmazonEKSEditPolicy)
    assert not allowed(rbac, service_account("b", "app"), "a", "delete", "", "pods")
    # system:masters is cluster-admin in every cluster.
    masters = Identity(groups=frozenset({"system:masters"}))
    assert allowed(rbac_of(), masters, None, "delete", "", "nodes")
    assert not allowed(rbac_of(), TEAM_A, None, "get", "", "pods")


def test_eks_scopes_and_wildcard_namespaces() -> None:
    scoped = Association(
        "arn", "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy", "namespace", ("orders",)
    )
    assert scoped.covers("orders")
    assert not scoped.covers("payments")
    assert not scoped.covers(None)
    wild = Association("arn", scoped.policy_arn, "namespace", ("team-*",))
    assert wild.covers("team-x") and not wild.covers("vault")
    assert Association("arn", scoped.policy_arn, "cluster", ()).covers(None)
    # The view policy reads no Secrets and cannot exec.
    view = POLICIES["AmazonEKSViewPolicy"]
    assert not any(r.matches("get", "", "secrets") for r in view)
    assert not any(r.matches(v, "", "pods/exec") for r in view for v in ("get", "create"))
    assert any(r.matches("get", "", "pods/log") for r in view)


# --- the stacks ---------------------------------------------------------------------------------------


def access_of(stack: str) -> Access:
    return evaluate(planned(stack), stack_config(stack))


def own(config: PlatformConfig, team: str) -> set[str]:
    return set(config.services_of(team))


def test_every_service_has_a_team_and_its_namespace_the_team_role(stack: str) -> None:
    config, plan = stack_config(stack), planned(stack)
    assert all(service.team for service in config.services)
    roles = {
        r["inputs"]["metadata"]["namespace"]
        for r in plan.of_type(ROLE_TYPE)
        if r["inputs"]["metadata"]["name"] == ROLE
    }
    assert roles == {s.name for s in config.services}
    for found in plan.of_type(ROLE_BINDING_TYPE):
        namespace = found["inputs"]["metadata"]["namespace"]
        team = config.team(config.service(namespace).team or "")
        assert found["inputs"]["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": team.group}
        ]


def test_no_team_acts_outside_its_own_namespaces(stack: str) -> None:
    """No team can do anything in another team's namespace, in a platform namespace or cluster-wide."""
    config, access = stack_config(stack), access_of(stack)
    assert access.ok, access.violations
    assert set(access.namespaces) >= PLATFORM_NAMESPACES
    for team in config.teams:
        mine = own(config, team.name)
        assert mine, team.name
        for namespace in [*access.namespaces, None]:
            cell = access.team_cell(team.name, namespace)
            if namespace in mine:
                assert cell.grants, (team.name, namespace)
            else:
                assert cell.grants == (), (team.name, namespace, cell.sources)


def test_a_team_operates_its_workloads_at_home_and_nothing_more(stack: str) -> None:
    """Rolls its Deployments, reads pods, logs, events and ConfigMaps, port-forwards; reads no Secrets,
    execs into nothing, deletes nothing, changes no RBAC. On aws the read-only view policy adds reads."""
    config, access = stack_config(stack), access_of(stack)
    expected = ROLE_TRIPLES | (VIEW_TRIPLES if config.target == "aws" else frozenset())
    for team in config.teams:
        for namespace in own(config, team.name):
            cell = access.team_cell(team.name, namespace)
            assert cell.triples() == expected, (team.name, namespace, cell.triples() ^ expected)
            assert cell.can("patch", "apps", "deployments")
            assert cell.can("get", "", "pods/log") and cell.can("list", "", "events")
            assert cell.can("create", "", "pods/portforward") and cell.can("get", "", "configmaps")
            for verb, group_, res in [
                ("get", "", "secrets"),
                ("list", "", "secrets"),
                ("create", "", "pods/exec"),
                ("get", "", "pods/exec"),
                ("delete", "", "pods"),
                ("create", "rbac.authorization.k8s.io", "rolebindings"),
                ("update", "apps", "deployments"),
            ]:
                assert not cell.can(verb, group_, res), (team.name, namespace, verb, res)


def test_platform_admins_keep_cluster_admin_and_nobody_else_has_it(stack: str) -> None:
    config, access = stack_config(stack), access_of(stack)
    cluster_wide = {c.principal.key for c in access.granted() if c.namespace is None}
    if config.aws is None:
        assert cluster_wide == set()
        return
    admins = {f"admin {arn}" for arn in config.aws.admin_principal_arns}
    assert cluster_wide == admins
    for key in admins:
        assert access.cell(key, None).can("delete", "", "nodes")


# --- revocation -----------------------------------------------------------------------------------------


def reassigned(config: PlatformConfig, service: str, team: str) -> PlatformConfig:
    raw = config.model_dump(mode="json", exclude={"vault_token"})
    for entry in raw["services"]:
        if entry["name"] == service:
            entry["team"] = team
    return load_platform_config(raw)


def cell_map(access: Access) -> dict[tuple[str, str | None], frozenset[tuple[str, str, str]]]:
    return {(c.principal.key, c.namespace): c.triples() for c in access.cells}


@pytest.mark.parametrize("stack_name", ["local", "dev"])
def test_moving_a_service_to_another_team_moves_exactly_that_access(stack_name: str) -> None:
    """cart goes from commerce to support: commerce loses cart, support gains what commerce had there,
    and no other principal, namespace or verb changes (RBAC and, on aws, the access entries' scope)."""
    before_config = stack_config(stack_name)
    assert before_config.service("cart").team == "commerce"
    after_config = reassigned(before_config, "cart", "support")
    after_plan = platform_plan(after_config, stack_name)
    before, after = access_of(stack_name), evaluate(after_plan, after_config)
    assert after.ok, after.violations
    # The same objects: the binding's subject (and the access scopes) change in place.
    assert {r["urn"] for r in after_plan.resources} == {r["urn"] for r in planned(stack_name).resources}
    old, new = cell_map(before), cell_map(after)
    assert set(old) == set(new)
    changed = {key for key in old if old[key] != new[key]}
    assert changed == {("team commerce", "cart"), ("team support", "cart")}
    assert new["team commerce", "cart"] == frozenset()
    assert new["team support", "cart"] == old["team commerce", "cart"] != frozenset()


# --- mutations of a real plan ---------------------------------------------------------------------------

Mutation = Callable[[list[dict[str, Any]]], None]


def in_namespace(resources: list[dict[str, Any]], type_: str, namespace: str) -> dict[str, Any]:
    return next(
        r for r in resources if r["type"] == type_ and r["inputs"]["metadata"].get("namespace") == namespace
    )


def team_association(resources: list[dict[str, Any]], team: str) -> dict[str, Any]:
    return next(
        r
        for r in resources
        if r["type"] == ASSOCIATION_TYPE and f"team-{team}" in r["inputs"]["principalArn"]
    )


def add_secrets_to_role(resources: list[dict[str, Any]]) -> None:
    in_namespace(resources, ROLE_TYPE, "orders")["inputs"]["rules"].append(
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}
    )


def add_exec_to_role(resources: list[dict[str, Any]]) -> None:
    # Exec over WebSockets is a GET: `get` alone is exec.
    in_namespace(resources, ROLE_TYPE, "orders")["inputs"]["rules"].append(
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}
    )


def bind_to_another_team(resources: list[dict[str, Any]]) -> None:
    in_namespace(resources, ROLE_BINDING_TYPE, "orders")["inputs"]["subjects"].append(group("team-payments"))


def widen_scope_to_cluster(resources: list[dict[str, Any]]) -> None:
    team_association(resources, "commerce")["inputs"]["accessScope"] = {"type": "cluster"}


def widen_scope_to_a_platform_namespace(resources: list[dict[str, Any]]) -> None:
    team_association(resources, "commerce")["inputs"]["accessScope"]["namespaces"].append("vault")


def wildcard_scope(resources: list[dict[str, Any]]) -> None:
    team_association(resources, "payments")["inputs"]["accessScope"]["namespaces"] = ["*"]


def masters_group(resources: list[dict[str, Any]]) -> None:
    entry = next(
        r for r in resources if r["type"] == ENTRY_TYPE and "team-support" in r["inputs"]["principalArn"]
    )
    entry["inputs"]["kubernetesGroups"].append("system:masters")


def service_account_cluster_admin(resources: list[dict[str, Any]]) -> None:
    sa = {"kind": "ServiceAccount", "name": "orders", "namespace": "orders"}
    resources.append(binding(None, "ClusterRole", "cluster-admin", sa))


def drop_admin_association(resources: list[dict[str, Any]]) -> None:
    first = next(
        r
        for r in resources
        if r["type"] == ASSOCIATION_TYPE and "platform-admin" in r["inputs"]["principalArn"]
    )
    resources.remove(first)


# name -> (stack, mutation, a text the violations must contain)
MUTATIONS: dict[str, tuple[str, Mutation, str]] = {
    "secrets in the team Role": (
        "local", add_secrets_to_role, "team commerce can read secrets in its namespace orders"
    ),
    "exec in the team Role": (
        "local", add_exec_to_role, "team commerce can exec into pods in its namespace orders"
    ),
    "Role bound to another team": (
        "local", bind_to_another_team, "team payments can read deployments, roll deployments"
    ),
    "access scope widened to the cluster": (
        "dev", widen_scope_to_cluster, "team commerce has cluster-wide rights"
    ),
    "access scope on a platform namespace": (
        "dev", widen_scope_to_a_platform_namespace, "in namespace vault (a platform namespace"
    ),
    "wildcard access scope": ("dev", wildcard_scope, "team payments can read deployments, read pods"),
    "system:masters in an access entry": (
        "dev", masters_group, "team support has cluster-wide rights: everything"
    ),
    "a workload bound to cluster-admin": (
        "local", service_account_cluster_admin, "serviceaccount orders/orders has cluster-wide rights"
    ),
    "an admin without cluster admin": (
        "dev", drop_admin_association, "role/platform-admin: no cluster-scoped AmazonEKSClusterAdminPolicy"
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_mutation_flips_the_verdict(name: str) -> None:
    stack_name, mutate, expected = MUTATIONS[name]
    plan = planned(stack_name)
    assert evaluate(plan, stack_config(stack_name)).ok
    resources = copy.deepcopy(plan.resources)
    mutate(resources)
    access = evaluate(Plan(plan.project, plan.stack, resources), stack_config(stack_name))
    assert not access.ok
    assert any(expected in line for line in access.violations), access.violations


# --- the objects as Kubernetes validates them ----------------------------------------------------------


def test_the_team_role_and_binding_validate() -> None:
    plan = planned("local")
    manifests = [to_manifest(r) for r in plan.resources if r["type"] in (ROLE_TYPE, ROLE_BINDING_TYPE)]
    assert {m["kind"] for m in manifests} == {"Role", "RoleBinding"}
    for manifest in manifests:
        assert schemas.validate_core(manifest, KUBERNETES_VERSION) == [], manifest
    # Mutation: a misspelt field is refused (the validation is strict).
    broken = copy.deepcopy(manifests[0])
    broken["rules" if broken["kind"] == "Role" else "subjects"][0]["verb"] = ["get"]
    assert schemas.validate_core(broken, KUBERNETES_VERSION)


def test_aws_access_entries_put_each_team_role_in_its_group_scoped_to_its_namespaces() -> None:
    config, plan = stack_config("dev"), planned("dev")
    entries = {r["inputs"]["principalArn"]: r for r in plan.of_type(ENTRY_TYPE)}
    associations = {r["inputs"]["principalArn"]: r for r in plan.of_type(ASSOCIATION_TYPE)}
    by_urn = plan.by_urn()
    for team in config.teams:
        for arn in team.aws_role_arns:
            entry = entries[arn]
            assert entry["inputs"]["type"] == "STANDARD" and entry["inputs"]["kubernetesGroups"] == [
                team.group
            ]
            scope = associations[arn]["inputs"]["accessScope"]
            assert scope == {"type": "namespace", "namespaces": sorted(config.services_of(team.name))}
            assert associations[arn]["inputs"]["policyArn"].endswith("/AmazonEKSViewPolicy")
            # Both wait for the cluster (its name is an output of the cluster).
            for found in (entry, associations[arn]):
                assert any(by_urn[d]["type"] == "aws:eks/cluster:Cluster" for d in found["dependencies"])


# --- the CLI ---------------------------------------------------------------------------------------------


def test_the_cli_prints_the_matrix_and_fails_naming_the_violation(tmp_path: Path) -> None:
    plan = planned("local")
    good = tmp_path / "local.json"
    plan.write(good)
    result = rampart("access", "--file", str(good), "--format", "json", timeout=300)
    assert result.returncode == 0, result.stderr
    *matrix, last = result.stdout.rstrip("\n").splitlines()
    assert last.startswith("access passed: 4 teams")
    document = json.loads("\n".join(matrix))
    assert document["ok"] and document["violations"] == []
    assert {row["who"] for row in document["access"]} == {
        f"team {t.name}" for t in stack_config("local").teams
    }
    resources = copy.deepcopy(plan.resources)
    bind_to_another_team(resources)
    bad = tmp_path / "bad.json"
    Plan(plan.project, plan.stack, resources).write(bad)
    failed = rampart("access", "--file", str(bad), timeout=300)
    assert failed.returncode == 1
    # A failed verdict is the last line on stderr, after each violation.
    last = failed.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("access FAILED: team payments can") and "namespace orders" in last
