"""The gate catches what the tests catch: realistic defects written into real plan exports (local,
prod, and a prod phase-2 plan with Vault configured) each make the packs, driven over gRPC exactly
as `rampart policy` and `pulumi preview --policy-pack` drive them (rampart/offline/gate.py), fail with
a mandatory violation of the rule that covers the defect, while the unmutated plans pass.

Users run the packs on plans Rampart's tests never saw; a defect only a test notices is a defect the
gate lets through. Each mutation must also change the plan (a selector that matches nothing fails
the test rather than passing vacuously)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from components.secrets.vault_config import TOKEN_MAX_TTL, TOKEN_TTL
from policies.catalog import rule
from rampart.offline.gate import GateResult, discover_packs, run_gate
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.support.phase2 import phase2_plan
from tests.support.reference import PROJECT_ROOT

PACKS = discover_packs(PROJECT_ROOT)
CONFIG_DIR = PROJECT_ROOT / "policies" / "config"
Source = Literal["local", "prod", "phase2"]
Props = dict[str, Any]


@pytest.fixture(scope="module")
def phase2(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return phase2_plan("prod", tmp_path_factory.mktemp("phase2"), tmp_path_factory.mktemp("cache"))


def gate(plan: Plan) -> GateResult:
    return run_gate(plan, PACKS, CONFIG_DIR)


# -- finding and changing resources in a plan -------------------------------------------------------


def _matches(resource: dict[str, Any], kind: str, name: str | None, namespace: str | None) -> bool:
    metadata = (resource.get("inputs") or {}).get("metadata") or {}
    return (
        resource["type"].endswith(f":{kind}")
        and (name is None or metadata.get("name") == name)
        and (namespace is None or metadata.get("namespace") == namespace)
    )


def objects(plan: Plan, kind: str, name: str | None = None, namespace: str | None = None) -> list[Any]:
    found = [r for r in plan.resources if _matches(r, kind, name, namespace)]
    assert found, f"no {kind} {namespace}/{name} in the {plan.stack} plan"
    return found


def release(plan: Plan, chart: str) -> list[Any]:
    found = [r for r in plan.resources if r["type"] == "kubernetes:helm.sh/v3:Release"]
    found = [r for r in found if str(r["inputs"].get("chart", "")).rsplit("/", 1)[-1] == chart]
    assert len(found) == 1, f"release of chart {chart}: {len(found)}"
    return found


def by_urn_name(plan: Plan, name: str) -> list[Any]:
    found = [r for r in plan.resources if r["urn"].endswith(f"::{name}")]
    assert len(found) == 1, f"{name}: {len(found)}"
    return found


def _views(resource: dict[str, Any]) -> Iterator[Props]:
    """What the analyzers read: inputs (resource policies) and outputs (stack policies)."""
    yield resource["inputs"]
    if isinstance(resource.get("outputs"), dict) and resource["outputs"]:
        yield resource["outputs"]


def edit(resources: list[Any], change: Callable[[Props], None]) -> None:
    """Apply ``change`` to the inputs and outputs of each resource, and prove it changed something."""
    for resource in resources:
        before = copy.deepcopy(resource["inputs"])
        for props in _views(resource):
            change(props)
        assert resource["inputs"] != before, f"mutation left {resource['urn']} unchanged"


def _parts(path: str | tuple[str, ...]) -> tuple[str, ...]:
    """A dotted path, or its parts when a key has dots of its own (``services.nodeports``)."""
    return tuple(path.split(".")) if isinstance(path, str) else path


def at(props: Props, path: str | tuple[str, ...]) -> Any:
    node: Any = props
    for part in _parts(path):
        node = node[int(part)] if part.isdigit() else node[part]
    return node


def setter(path: str | tuple[str, ...], value: Any) -> Callable[[Props], None]:
    *parents, last = _parts(path)

    def change(props: Props) -> None:
        node = at(props, tuple(parents))
        node[int(last) if last.isdigit() else last] = copy.deepcopy(value)

    return change


def without_plugin(plugin: str) -> Callable[[Props], None]:
    def change(props: Props) -> None:
        annotations = props["metadata"]["annotations"]
        names = annotations["konghq.com/plugins"].split(",")
        kept = [name for name in names if not name.endswith(f"-{plugin}")]
        assert len(kept) == len(names) - 1, names
        annotations["konghq.com/plugins"] = ",".join(kept)

    return change


def vault_policy(extra: str) -> Callable[[Props], None]:
    def change(props: Props) -> None:
        props["policy"] += extra

    return change


POD = "spec.template.spec"
CONTAINER = f"{POD}.containers.0"


def removed(plan: Plan, kind: str, name: str, namespace: str) -> None:
    gone = objects(plan, kind, name, namespace)
    plan.resources = [r for r in plan.resources if r not in gone]


def _open_database_sg(props: Props) -> None:
    props["ingress"].append(
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]}
    )


def _plaintext_port(props: Props) -> None:
    props["spec"]["trafficPolicy"]["portLevelSettings"] = [
        {"port": {"number": 8080}, "tls": {"mode": "SIMPLE"}}
    ]


def _no_peers(props: Props) -> None:
    del props["spec"]["ingress"][0]["from"]


def _pinned_to_one(props: Props) -> None:
    props["spec"]["maxReplicas"] = props["spec"]["minReplicas"]


def _drop_nodeports(props: Props) -> None:
    del props["spec"]["hard"]["services.nodeports"]


def _host_path(props: Props) -> None:
    at(props, POD)["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}})


@dataclass(frozen=True)
class Mutation:
    """A defect, the plan it is written into, and the rule of the gate that must refuse it."""

    id: str
    source: Source
    apply: Callable[[Plan], None]
    policy: str


def change(find: Callable[[Plan], list[Any]], how: Callable[[Props], None]) -> Callable[[Plan], None]:
    return lambda plan: edit(find(plan), how)


def k8s(kind: str, name: str, namespace: str | None = None) -> Callable[[Plan], list[Any]]:
    return lambda plan: objects(plan, kind, name, namespace)


def orders_callers(principals: list[str]) -> Callable[[Plan], None]:
    """Who the orders service's ALLOW policy admits, replaced."""
    return change(
        k8s("AuthorizationPolicy", "orders-allow-callers", "orders"),
        setter("spec.rules.0.from.0.source.principals", principals),
    )


MUTATIONS: tuple[Mutation, ...] = (
    # -- what issue 15 found the gate missing ------------------------------------------------------
    Mutation(
        "pod-mounts-api-token",
        "prod",
        change(k8s("Deployment", "orders", "orders"), setter(f"{POD}.automountServiceAccountToken", True)),
        "service-account-token-opt-in",
    ),
    Mutation(
        "service-account-mounts-api-token",
        "local",
        change(k8s("ServiceAccount", "payments", "payments"), setter("automountServiceAccountToken", True)),
        "service-account-token-opt-in",
    ),
    Mutation(
        "destination-rule-plaintext",
        "prod",
        change(k8s("DestinationRule", "orders", "orders"), setter("spec.trafficPolicy.tls.mode", "DISABLE")),
        "mesh-destination-rules-mutual",
    ),
    Mutation(
        "destination-rule-port-level-simple",
        "local",
        change(k8s("DestinationRule", "catalog", "catalog"), _plaintext_port),
        "mesh-destination-rules-mutual",
    ),
    Mutation(
        "route-loses-rate-limit",
        "prod",
        change(k8s("Ingress", "cart-route-0", "cart"), without_plugin("rate-limiting")),
        "gateway-route-edge-plugins",
    ),
    Mutation(
        "allowlisted-route-loses-ip-restriction",
        "prod",
        change(k8s("Ingress", "backoffice-route-0", "backoffice"), without_plugin("ip-restriction")),
        "gateway-route-edge-plugins",
    ),
    Mutation(
        "route-loses-size-limit",
        "local",
        change(k8s("Ingress", "orders-route-0", "orders"), without_plugin("request-size-limiting")),
        "gateway-route-edge-plugins",
    ),
    Mutation(
        "rate-limit-without-limit",
        "prod",
        change(
            k8s("KongPlugin", "catalog-route-0-rate-limiting", "catalog"),
            setter("config", {"policy": "local"}),
        ),
        "gateway-route-edge-plugins",
    ),
    Mutation(
        "hpa-cannot-scale",
        "prod",
        change(k8s("HorizontalPodAutoscaler", "orders", "orders"), _pinned_to_one),
        "hpa-can-scale",
    ),
    Mutation(
        "quota-admits-load-balancer",
        "prod",
        change(k8s("ResourceQuota", None, "orders"), setter(("spec", "hard", "services.loadbalancers"), "1")),
        "quota-no-public-services",
    ),
    Mutation(
        "quota-forgets-node-ports",
        "local",
        change(k8s("ResourceQuota", None, "payments"), _drop_nodeports),
        "quota-no-public-services",
    ),
    Mutation(
        "network-policy-admits-every-namespace",
        "prod",
        change(
            k8s("NetworkPolicy", "allow-from-callers", "orders"),
            setter("spec.ingress.0.from", [{"namespaceSelector": {}}]),
        ),
        "network-policy-explicit-peers",
    ),
    Mutation(
        "network-policy-rule-without-peers",
        "local",
        change(k8s("NetworkPolicy", "allow-from-callers", "orders"), _no_peers),
        "network-policy-explicit-peers",
    ),
    Mutation(
        "allow-rule-principal-wildcard",
        "prod",
        orders_callers(["cluster.local/ns/backoffice/sa/*"]),
        "mesh-allow-rules-positive",
    ),
    Mutation(
        "allow-rule-trust-domain-wildcard",
        "local",
        orders_callers(["*/ns/backoffice/sa/backoffice"]),
        "mesh-allow-rules-positive",
    ),
    Mutation(
        "node-class-hop-limit-2",
        "prod",
        change(k8s("EC2NodeClass", None), setter("spec.metadataOptions.httpPutResponseHopLimit", 2)),
        "karpenter-node-class-hardened",
    ),
    Mutation(
        "node-class-root-volume-unencrypted",
        "prod",
        change(k8s("EC2NodeClass", None), setter("spec.blockDeviceMappings.0.ebs.encrypted", False)),
        "karpenter-node-class-hardened",
    ),
    Mutation(
        "kong-gateway-may-escalate",
        "prod",
        change(
            lambda plan: release(plan, "ingress"),
            setter("values.gateway.containerSecurityContext.allowPrivilegeEscalation", True),
        ),
        "release-security-contexts",
    ),
    Mutation(
        "kong-controller-context-disabled",
        "local",
        change(
            lambda plan: release(plan, "ingress"),
            setter("values.controller.containerSecurityContext.enabled", False),
        ),
        "release-security-contexts",
    ),
    Mutation(
        "vault-operator-runs-as-root",
        "local",
        change(
            lambda plan: release(plan, "vault-secrets-operator"),
            setter("values.controller.securityContext.runAsNonRoot", False),
        ),
        "release-security-contexts",
    ),
    Mutation(
        "vault-policy-reads-every-service",
        "phase2",
        change(
            lambda plan: [
                r for r in plan.of_type("vault:index/policy:Policy") if r["inputs"]["name"] == "orders"
            ],
            vault_policy('\npath "kv/data/*" {\n  capabilities = ["read", "list"]\n}\n'),
        ),
        "vault-policy-least-privilege",
    ),
    Mutation(
        "vault-policy-sudo",
        "phase2",
        change(
            lambda plan: [
                r for r in plan.of_type("vault:index/policy:Policy") if r["inputs"]["name"] == "cart"
            ],
            vault_policy('\npath "kv/data/cart/*" {\n  capabilities = ["read", "sudo"]\n}\n'),
        ),
        "vault-policy-least-privilege",
    ),
    Mutation(
        "auth-role-unbounded-max-ttl",
        "phase2",
        change(
            lambda plan: plan.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")[:1],
            setter("tokenMaxTtl", 0),
        ),
        "vault-auth-role-bounded",
    ),
    Mutation(
        "auth-role-day-long-tokens",
        "phase2",
        change(
            lambda plan: plan.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")[-1:],
            lambda props: props.update(tokenTtl=86400, tokenMaxTtl=86400),
        ),
        "vault-auth-role-bounded",
    ),
    Mutation(
        "auth-role-any-service-account",
        "phase2",
        change(
            lambda plan: plan.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")[:1],
            setter("boundServiceAccountNames", ["*"]),
        ),
        "vault-auth-role-bounded",
    ),
    Mutation(
        "mq-log-group-kept-forever",
        "prod",
        change(
            # Only the key is set on the group Amazon MQ created: its retention stays "never expire".
            lambda plan: plan.of_type("command:local:Command"),
            lambda props: props.update(create=props["create"].split(" && ")[0]),
        ),
        "mq-log-group-encrypted-and-expiring",
    ),
    # -- what the gate already caught: kept caught -------------------------------------------------
    Mutation(
        "database-open-to-the-internet",
        "prod",
        change(lambda plan: by_urn_name(plan, "databases-orders-sg"), _open_database_sg),
        "sg-no-public-ingress",
    ),
    Mutation(
        "rds-unencrypted",
        "prod",
        change(lambda plan: by_urn_name(plan, "databases-orders-db"), setter("storageEncrypted", False)),
        "rds-storage-encrypted",
    ),
    Mutation(
        "rds-publicly-accessible",
        "prod",
        change(lambda plan: by_urn_name(plan, "databases-payments-db"), setter("publiclyAccessible", True)),
        "rds-not-public",
    ),
    Mutation(
        "peer-authentication-permissive",
        "prod",
        change(k8s("PeerAuthentication", None, "istio-system"), setter("spec.mtls.mode", "PERMISSIVE")),
        "mesh-mtls-strict",
    ),
    Mutation(
        "privileged-container",
        "local",
        change(
            k8s("Deployment", "orders", "orders"), setter(f"{CONTAINER}.securityContext.privileged", True)
        ),
        "container-no-privilege",
    ),
    Mutation(
        "host-network",
        "prod",
        change(k8s("Deployment", "cart", "cart"), setter(f"{POD}.hostNetwork", True)),
        "pod-no-host-namespaces",
    ),
    Mutation(
        "image-latest",
        "prod",
        change(
            k8s("Deployment", "catalog", "catalog"),
            setter(f"{CONTAINER}.image", "ghcr.io/acme/catalog:latest"),
        ),
        "image-pinned",
    ),
    Mutation(
        "host-path-volume",
        "local",
        change(k8s("Deployment", "inventory", "inventory"), _host_path),
        "pod-restricted-volumes",
    ),
    Mutation(
        "default-deny-removed",
        "prod",
        lambda plan: removed(plan, "NetworkPolicy", "default-deny", "payments"),
        "namespace-default-deny",
    ),
    Mutation(
        "mesh-egress-allow-any",
        "prod",
        change(
            lambda plan: release(plan, "istiod"),
            setter("values.meshConfig.outboundTrafficPolicy.mode", "ALLOW_ANY"),
        ),
        "mesh-egress-registry-only",
    ),
    Mutation(
        "service-namespace-load-balancer",
        "local",
        change(k8s("Service", "notifications", "notifications"), setter("spec.type", "LoadBalancer")),
        "service-no-public-exposure",
    ),
    Mutation(
        "launch-template-hop-limit-2",
        "prod",
        change(
            lambda plan: plan.of_type("aws:ec2/launchTemplate:LaunchTemplate"),
            setter("metadataOptions.httpPutResponseHopLimit", 2),
        ),
        "launch-template-hardened",
    ),
    Mutation(
        "vault-tls-disabled",
        "prod",
        change(lambda plan: release(plan, "vault"), setter("values.global.tlsDisable", True)),
        "vault-tls",
    ),
    Mutation(
        "namespace-pss-baseline",
        "local",
        change(
            k8s("Namespace", "orders"),
            setter(("metadata", "labels", "pod-security.kubernetes.io/enforce"), "baseline"),
        ),
        "namespace-pod-security-restricted",
    ),
)


def source_plan(source: Source, phase2: Plan) -> Plan:
    return phase2 if source == "phase2" else planned(source)


def test_the_mutation_list_covers_every_defect_of_issue_15() -> None:
    assert len(MUTATIONS) >= 24
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
    issue_15 = {
        "service-account-token-opt-in",
        "mesh-destination-rules-mutual",
        "gateway-route-edge-plugins",
        "hpa-can-scale",
        "quota-no-public-services",
        "network-policy-explicit-peers",
        "mesh-allow-rules-positive",
        "karpenter-node-class-hardened",
        "release-security-contexts",
        "vault-policy-least-privilege",
        "vault-auth-role-bounded",
    }
    assert issue_15 <= {m.policy for m in MUTATIONS}
    for mutation in MUTATIONS:
        rule(mutation.policy)  # a rule of the catalog, so a rename cannot leave a mutation behind
    assert {m.source for m in MUTATIONS} == {"local", "prod", "phase2"}


@pytest.mark.parametrize("source", ["local", "prod", "phase2"])
def test_the_unmutated_plans_pass(source: Source, phase2: Plan) -> None:
    result = gate(source_plan(source, phase2))
    assert result.mandatory == [], [(d.policy, d.message) for d in result.mandatory]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_the_gate_fails_on_each_mutation(mutation: Mutation, phase2: Plan) -> None:
    plan = copy.deepcopy(source_plan(mutation.source, phase2))
    mutation.apply(plan)
    result = gate(plan)
    refused = {d.policy for d in result.mandatory}
    assert mutation.policy in refused, (mutation.id, [(d.policy, d.message) for d in result.mandatory])


def test_phase2_auth_roles_issue_short_lived_tokens(phase2: Plan) -> None:
    """The tokens each service's Kubernetes auth role issues: 15 minutes, renewable to an hour
    (components/secrets/vault_config.py), within the gate's bounds for every role."""
    roles = [r["inputs"] for r in phase2.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")]
    assert {r["roleName"] for r in roles} == {s.name for s in stack_config("prod").services}
    bounds = rule("vault-auth-role-bounded").defaults()
    for role in roles:
        assert (role["tokenTtl"], role["tokenMaxTtl"]) == (TOKEN_TTL, TOKEN_MAX_TTL) == (900, 3600)
        assert 0 < role["tokenTtl"] <= role["tokenMaxTtl"] <= bounds["maxTokenMaxTtlSeconds"]
        assert role["tokenTtl"] <= bounds["maxTokenTtlSeconds"]


def test_phase2_plans_are_what_the_gate_sees_of_vault(phase2: Plan) -> None:
    """Every stack file keeps vault.configure false: without the phase-2 plan the Vault rules would
    judge nothing. Here they judge every service's policy and role."""
    services = len(stack_config("prod").services)
    assert len(phase2.of_type("vault:index/policy:Policy")) == services
    assert len(phase2.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")) == services
    assert not planned("prod").of_type("vault:index/policy:Policy")


def test_a_mutation_that_changes_nothing_is_an_error() -> None:
    plan = copy.deepcopy(planned("local"))
    with pytest.raises(AssertionError, match="unchanged"):
        edit(objects(plan, "Deployment", "orders", "orders"), setter(f"{POD}.hostNetwork", False))


def test_mutations_are_written_where_both_analyzer_calls_read() -> None:
    """Resource policies read inputs and stack policies outputs: a mutation changes both."""
    plan = copy.deepcopy(planned("local"))
    (resource,) = objects(plan, "HorizontalPodAutoscaler", "orders", "orders")
    edit([resource], _pinned_to_one)
    assert resource["inputs"]["spec"]["maxReplicas"] == resource["outputs"]["spec"]["maxReplicas"]
    assert resource["inputs"]["spec"]["maxReplicas"] == resource["inputs"]["spec"]["minReplicas"]
