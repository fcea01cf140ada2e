"""The lifecycle invariants: each failing fixture fails for the stated edge, mutations flip verdicts,
the policies and `rampart order` share one model, and the real gate enforces them on the real plans."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from components.core.protection import is_protected
from policies.catalog import rule
from policies.controllers import injected_revision
from policies.model import NotApplicable, Resource
from policies.rules import lifecycle
from policies.rules.lifecycle import STATEFUL_TYPES, ratchet
from policies.waits import provider_urn
from rampart import order
from rampart.offline.gate import discover_packs, run_gate
from rampart.offline.plan import Plan
from tests.conftest import STACKS, planned, stack_config
from tests.policies.fixtures import lifecycle as fx
from tests.support.reference import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "policies" / "config"
LIFECYCLE = [r.name for r in lifecycle.RULES]


def keys(name: str, resources: list[Resource], config: Mapping[str, Any] | None = None) -> list[str]:
    """The keys of a rule's violations (ratchet appends `[key: ...]`)."""
    messages = [v.message for v in rule(name).evaluate_stack(resources, config)]
    return [m.rsplit("[key: ", 1)[-1].removesuffix("]") for m in messages]


# ---------------------------------------------------------------- each failing case, for its reason


def test_failing_fixtures_name_the_missing_edge() -> None:
    failing = {name: fx.FIXTURES[name].failing for name in LIFECYCLE}
    assert [keys("crd-installed-first", case) for case in failing["crd-installed-first"]] == [
        ["tls -> cert-manager"],
        ["tls: no installer of cert-manager.io"],
        ["tls: no installer of cert-manager.io"],
        ["w: no known installer of example.com"],
    ]
    assert [keys("workload-waits-for-injector", c) for c in failing["workload-waits-for-injector"]] == [
        ["orders-workload -> mesh-istiod"],
        ["orders-workload -> mesh-istiod"],
        ["gateway-release -> mesh-istiod"],
        ["orders-workload: no injector for revision canary"],
        ["orders-workload -> mesh-istiod"],
    ]
    assert [keys("finalized-waits-for-controller", c) for c in failing["finalized-waits-for-controller"]] == [
        ["gateway-release -> lb-controller"],
        ["edge-service -> lb-controller"],
        ["web-ingress -> lb-controller"],
        ["queue -> topology-operator"],
        ["conn -> vault-operator"],
    ]
    assert [
        keys("iam-attachments-before-consumers", c) for c in failing["iam-attachments-before-consumers"]
    ] == [
        ["cluster -> cluster-policy"],
        ["node-class -> node-policy"],
        ["nodes -> node-policy"],
    ]
    assert [keys("discovery-selectors-match", c) for c in failing["discovery-selectors-match"]] == [
        ["node-class: securityGroupSelectorTerms[0]"],
        ["node-class: securityGroupSelectorTerms[0]"],
        ["node-class: subnetSelectorTerms[0]"],
        ["gateway-release: kubernetes.io/role/elb"],
        ["web-ingress: kubernetes.io/role/elb"],
    ]
    assert keys("iam-role-permissions-boundary", failing["iam-role-permissions-boundary"][0]) == [
        "flow-logs: permissions boundary"
    ]
    assert [keys("protection-follows-environment", c) for c in failing["protection-follows-environment"]] == [
        ["key: protect"],
        ["ns: protect"],
    ]


def test_messages_name_both_ends_and_the_fix() -> None:
    (violation,) = rule("workload-waits-for-injector").evaluate_stack(
        [*fx.PROVIDERS, fx.ISTIOD, fx.INJECTED, fx.deployment("orders")]
    )
    assert "Deployment orders/orders (orders-workload)" in violation.message
    assert "Release istio-system/mesh-istiod (mesh-istiod)" in violation.message
    assert "Make orders-workload depend on mesh-istiod" in violation.message
    assert violation.urn == fx.urn(fx.DEPLOYMENT, "orders-workload")


# --------------------------------------------------------------------------------- the ratchet


def test_known_violations_are_silent_stale_ones_fail_new_ones_fail() -> None:
    missing = [*fx.PROVIDERS, fx.ISTIOD, fx.INJECTED, fx.deployment("orders")]
    known = {"knownViolations": ["orders-workload -> mesh-istiod"]}
    assert keys("workload-waits-for-injector", missing, known) == []
    fixed = [*fx.PROVIDERS, fx.ISTIOD, fx.INJECTED, fx.deployment("orders", fx.ISTIOD)]
    (stale,) = rule("workload-waits-for-injector").evaluate_stack(fixed, known)
    assert "knownViolations lists 'orders-workload -> mesh-istiod', which no longer occurs" in stale.message
    other = [*missing, fx.namespace("cart", **{"istio-injection": "enabled"}), fx.deployment("cart")]
    assert keys("workload-waits-for-injector", other, known) == ["cart-workload -> mesh-istiod"]


def test_ratchet_reports_each_stale_key_once() -> None:
    violations = list(ratchet([], {"knownViolations": ["b", "a"]}))
    assert [v.message.split("'")[1] for v in violations] == ["a", "b"]


# -------------------------------------------------------------------- mutations flip the verdict


def test_crd_waits_are_transitive_through_a_component_dependency() -> None:
    layer = fx.res("rampart:test:Tls", "tls-layer")
    inner = fx.res(fx.RELEASE, "cert-manager", dict(fx.CERT_MANAGER.props), parent=layer)
    # depending on a component means depending on its custom descendants (SDK _add_dependency)
    assert keys("crd-installed-first", [*fx.PROVIDERS, layer, inner, fx.certificate(layer)]) == []
    assert keys("crd-installed-first", [*fx.PROVIDERS, layer, inner, fx.certificate()]) == [
        "tls -> cert-manager"
    ]


@pytest.mark.parametrize(
    ("values", "installs"),
    [
        ({"crds": {"enabled": True}}, True),
        ({"installCRDs": True}, True),
        ({}, False),
        ({"crds": {"enabled": False}}, False),
    ],
)
def test_cert_manager_installs_crds_only_when_its_values_say_so(
    values: dict[str, Any], installs: bool
) -> None:
    manager = fx.release("cert-manager", "cert-manager", "cert-manager", **values)
    found = keys("crd-installed-first", [*fx.PROVIDERS, manager, fx.certificate(manager)])
    assert found == ([] if installs else ["tls: no installer of cert-manager.io"])


def test_skip_crds_removes_a_charts_crds_directory() -> None:
    karpenter = fx.res(fx.RELEASE, "karpenter", {"chart": "oci://public.ecr.aws/karpenter/karpenter"})
    pool = fx.res("kubernetes:karpenter.sh/v1:NodePool", "pool", fx.k8s("NodePool", "p"), deps=(karpenter,))
    assert keys("crd-installed-first", [*fx.PROVIDERS, karpenter, pool]) == []
    skipping = Resource(
        karpenter.urn,
        karpenter.type,
        karpenter.name,
        {**karpenter.props, "skipCrds": True},
        provider=karpenter.provider,
    )
    assert keys("crd-installed-first", [*fx.PROVIDERS, skipping, pool]) == [
        "pool: no installer of karpenter.sh"
    ]


def test_rabbitmq_kinds_need_their_own_operator() -> None:
    cluster_op = fx.res(
        fx.CONFIG_FILE,
        "cluster-operator",
        {
            "file": "https://github.com/rabbitmq/cluster-operator/releases/download/v2.22.3/cluster-operator.yml"
        },
    )
    rabbit = "kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster"
    cluster = fx.res(rabbit, "broker", fx.k8s(rabbit, "b", "messaging"), deps=(fx.TOPOLOGY,))
    queue = fx.res(fx.QUEUE, "queue", fx.k8s(fx.QUEUE, "q", "messaging"), deps=(cluster_op,))
    found = keys("crd-installed-first", [*fx.PROVIDERS, cluster_op, fx.TOPOLOGY, cluster, queue])
    assert found == ["broker -> cluster-operator", "queue -> topology-operator"]


def test_external_crd_groups_are_trusted() -> None:
    assert (
        keys(
            "crd-installed-first",
            [*fx.PROVIDERS, fx.certificate()],
            {"externalCrdGroups": ["cert-manager.io"]},
        )
        == []
    )


@pytest.mark.parametrize(
    ("namespace", "pod", "revision"),
    [
        ({"istio-injection": "enabled"}, {}, ""),
        ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, None),
        ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, None),
        ({"istio-injection": "enabled", "istio.io/rev": "canary"}, {}, ""),  # istio-injection wins
        ({"istio.io/rev": "canary"}, {}, "canary"),
        ({"istio.io/rev": "default"}, {}, ""),
        ({}, {"istio.io/rev": "canary"}, "canary"),
        ({}, {"sidecar.istio.io/inject": "true"}, ""),
        ({}, {}, None),
    ],
)
def test_injection_follows_istios_precedence(
    namespace: dict[str, str], pod: dict[str, str], revision: str | None
) -> None:
    assert injected_revision(namespace, {"labels": pod}) == revision


def test_a_canary_injector_serves_its_revision() -> None:
    canary = fx.release("istiod-canary", "istiod", "istio-system", revision="canary")
    workload = fx.deployment("orders", canary)
    namespace = fx.namespace("orders", **{"istio.io/rev": "canary"})
    assert keys("workload-waits-for-injector", [*fx.PROVIDERS, fx.ISTIOD, canary, namespace, workload]) == []
    waits_for_default = fx.deployment("orders", fx.ISTIOD)
    assert keys(
        "workload-waits-for-injector", [*fx.PROVIDERS, fx.ISTIOD, canary, namespace, waits_for_default]
    ) == ["orders-workload -> istiod-canary"]


def test_a_namespace_patch_can_turn_injection_on() -> None:
    patch = fx.res(
        "kubernetes:core/v1:NamespacePatch",
        "labels",
        {"metadata": {"name": "orders", "labels": {"istio-injection": "enabled"}}},
    )
    assert keys(
        "workload-waits-for-injector",
        [*fx.PROVIDERS, fx.ISTIOD, fx.namespace("orders"), patch, fx.deployment("orders")],
    ) == ["orders-workload -> mesh-istiod"]


def test_no_injector_in_the_plan_is_not_applicable() -> None:
    with pytest.raises(NotApplicable, match="no sidecar injector"):
        rule("workload-waits-for-injector").evaluate_stack(
            [*fx.PROVIDERS, fx.INJECTED, fx.deployment("orders")]
        )


def test_finalizer_edges_count_on_the_destroy_graph() -> None:
    # A component dependency registered after the controller covers it on destroy (DependenciesOf).
    platform = fx.res("rampart:test:Cluster", "cluster-layer")
    controller = fx.res(fx.RELEASE, "lb-controller", dict(fx.LB_CONTROLLER.props), parent=platform)
    assert (
        keys("finalized-waits-for-controller", [*fx.PROVIDERS, platform, controller, fx.kong(platform)]) == []
    )
    assert keys("finalized-waits-for-controller", [*fx.PROVIDERS, platform, controller, fx.kong()]) == [
        "gateway-release -> lb-controller"
    ]


def test_an_internal_kong_proxy_needs_internal_subnets() -> None:
    internal = {**fx.LB_ANNOTATIONS, "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
    gateway = fx.kong(fx.LB_CONTROLLER, annotations=internal)

    def discovery_keys(subnet_tags: dict[str, str], kong: Resource) -> list[str]:
        subnet = fx.subnet("p", **subnet_tags)
        return keys("discovery-selectors-match", [*fx.PROVIDERS, fx.LB_CONTROLLER, subnet, kong])

    assert discovery_keys(fx.INTERNAL, gateway) == []
    assert discovery_keys(fx.PUBLIC, gateway) == ["gateway-release: kubernetes.io/role/internal-elb"]
    named = {**internal, "service.beta.kubernetes.io/aws-load-balancer-subnets": "subnet-a"}
    explicit = fx.kong(fx.LB_CONTROLLER, annotations=named)
    assert discovery_keys(fx.PUBLIC, explicit) == []


def test_a_tag_resource_on_the_cluster_security_group_satisfies_karpenter() -> None:
    base = [
        *fx.PROVIDERS,
        fx.subnet("a", **fx.DISCOVERY),
        fx.CLUSTER_WITH_SG,
        fx.selecting(fx.DISCOVERY, fx.DISCOVERY),
    ]
    assert keys("discovery-selectors-match", base) == ["node-class: securityGroupSelectorTerms[0]"]
    assert keys("discovery-selectors-match", [*base, fx.CLUSTER_SG_TAG]) == []


@pytest.mark.parametrize(
    ("config", "roles", "found"),
    [
        ({}, [fx.role("a"), fx.role("b")], []),
        (
            {"requirePermissionsBoundary": True},
            [fx.role("a", fx.BOUNDARY), fx.role("b")],
            ["b: permissions boundary"],
        ),
        (
            {"permissionsBoundaryArn": fx.BOUNDARY},
            [fx.role("a", "arn:aws:iam::1:policy/other")],
            ["a: permissions boundary"],
        ),
        ({"permissionsBoundaryArn": fx.BOUNDARY}, [fx.role("a", fx.BOUNDARY)], []),
    ],
)
def test_permissions_boundary_config(config: dict[str, Any], roles: list[Resource], found: list[str]) -> None:
    assert keys("iam-role-permissions-boundary", [*fx.PROVIDERS, *roles], config) == found


def test_environments_that_protect_nothing_flag_every_protected_resource() -> None:
    disposable = {"protectStateful": False}
    assert (
        keys("protection-follows-environment", [*fx.PROVIDERS, fx.key(False), fx.ns(False)], disposable) == []
    )
    assert keys("protection-follows-environment", [*fx.PROVIDERS, fx.key(True)], disposable) == [
        "key: protect"
    ]


# ------------------------------------------------------------------------------ the real stacks


def stack_resources(plan: Plan) -> list[Resource]:
    """The plan as the engine hands it to a stack policy (policies/adapter.py `_stack_resource`)."""
    return [
        Resource(
            urn=r["urn"],
            type=r["type"],
            name=r["urn"].rsplit("::", 1)[-1],
            props=r.get("outputs") or {},
            protect=bool(r.get("protect")),
            parent=r.get("parent") or None,
            dependencies=tuple(r.get("dependencies") or []),
            provider=provider_urn(r.get("provider")),
        )
        for r in plan.resources
    ]


def test_the_policy_view_and_rampart_order_build_the_same_create_graph() -> None:
    plan = planned("prod")
    graph = order.build_graph(plan)
    policy_view = lifecycle.waits(stack_resources(plan))
    assert policy_view.create == dict(graph.prereqs)


@pytest.mark.parametrize("stack", STACKS)
def test_finalizer_findings_agree_with_rampart_order(stack: str) -> None:
    plan = planned(stack)
    by_order = {(f.urn, f.needs) for f in order.destroy_report(plan).findings if f.kind == "finalizer"}
    by_urn = {r["urn"]: r for r in plan.resources}
    by_policy = {
        (f.urn, next(u for u in by_urn if u.endswith("::" + f.key.split(" -> ")[1])))
        for f in lifecycle._finalizer_findings(stack_resources(plan), {})
    }
    assert by_policy == by_order


@pytest.mark.parametrize("stack", STACKS)
def test_protection_config_follows_the_one_environment_rule(stack: str) -> None:
    config = json.loads((CONFIG_DIR / stack / "reliability.json").read_text())
    assert config["protection-follows-environment"]["protectStateful"] is is_protected(
        stack_config(stack).environment
    )


@pytest.mark.parametrize("stack", STACKS)
def test_boundary_is_required_exactly_where_the_stack_configures_one(stack: str) -> None:
    config = json.loads((CONFIG_DIR / stack / "security.json").read_text())
    required = bool(config.get("iam-role-permissions-boundary", {}).get("requirePermissionsBoundary"))
    aws = stack_config(stack).aws
    assert required is bool(aws and aws.permissions_boundary_arn)


@pytest.mark.parametrize("stack", STACKS)
def test_retain_on_delete_follows_the_same_rule(stack: str) -> None:
    # The Analyzer protocol carries protect but not retainOnDelete, so no policy can check it; the plan
    # can. Where nothing is protected no stateful resource is retained (destroy removes it); elsewhere a
    # retained stateful resource is also protected. Account-wide resources (a service-linked role) may
    # be retained anywhere: they are not the stack's to delete.
    retained = [
        r for r in planned(stack).resources if r.get("retainOnDelete") and r["type"] in STATEFUL_TYPES
    ]
    if not is_protected(stack_config(stack).environment):
        assert retained == []
    else:
        assert all(r.get("protect") for r in retained)


# ------------------------------------------------------------------ through the real gate (gRPC)


def gate_with(plan: Plan, config_dir: Path = CONFIG_DIR) -> Any:
    return run_gate(plan, discover_packs(PROJECT_ROOT), config_dir)


def by_name(plan: Plan, name: str) -> dict[str, Any]:
    (found,) = [r for r in plan.resources if r["urn"].endswith(f"::{name}")]
    return found


def without_wait(plan: Plan, name: str, prerequisite: str) -> Plan:
    """The plan with every path from `name` to `prerequisite` cut: the dependencies that lead there
    dropped and, if its parent's registration still does, the parent too."""
    changed = copy.deepcopy(plan)
    target, gate = by_name(changed, name), by_name(changed, prerequisite)["urn"]
    graph = order.build_graph(changed)
    leads = {u for u in graph.steps if u == gate or gate in order.closure(graph.prereqs, u)}
    components = {r["urn"] for r in changed.resources if not r["custom"]}
    target["dependencies"] = [d for d in target["dependencies"] if d not in leads and d not in components]
    target["propertyDependencies"] = {}
    if gate in order.closure(order.build_graph(changed).prereqs, target["urn"]):
        target["parent"] = None
    assert gate not in order.closure(order.build_graph(changed).prereqs, target["urn"])
    return changed


@pytest.mark.parametrize(
    ("policy", "workload", "prerequisite"),
    [
        ("workload-waits-for-injector", "orders-deployment", "mesh-istiod"),
        # The gateway's NLB is bound to Kong by a TargetGroupBinding that the LB controller finalizes.
        ("finalized-waits-for-controller", "gateway-edge-binding", "cluster-lb-controller-release"),
    ],
)
def test_removing_the_wait_fails_the_gate(policy: str, workload: str, prerequisite: str) -> None:
    plan = planned("prod")
    known = json.loads((CONFIG_DIR / "prod" / f"{rule(policy).pack}.json").read_text())
    if f"{workload} -> {prerequisite}" in (known.get(policy) or {}).get("knownViolations", []):
        pytest.skip(f"{workload} -> {prerequisite} is still a known violation in prod")
    result = gate_with(without_wait(plan, workload, prerequisite))
    found = [d for d in result.mandatory if d.policy == policy]
    assert [d.urn.rsplit("::", 1)[-1] for d in found] == [workload]
    assert f"depend on {prerequisite}" in found[0].message


def test_a_known_violation_that_no_longer_occurs_fails_the_gate(tmp_path: Path) -> None:
    shutil.copytree(CONFIG_DIR, tmp_path / "config")
    path = tmp_path / "config" / "prod" / "security.json"
    document = json.loads(path.read_text())
    document["workload-waits-for-injector"] = {"knownViolations": ["orders-deployment -> istiod-of-the-past"]}
    path.write_text(json.dumps(document))
    (violation,) = gate_with(planned("prod"), tmp_path / "config").mandatory
    assert violation.policy == "workload-waits-for-injector"
    assert "'orders-deployment -> istiod-of-the-past', which no longer occurs" in violation.message
