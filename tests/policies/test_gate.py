"""The offline gate drives the real packs over gRPC, as the engine does, on real plan exports."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policies.catalog import RULES
from policies.model import Resource
from rampart.offline.gate import GateError, _read_config, discover_packs, run_gate
from rampart.offline.plan import Plan
from tests.conftest import STACKS, planned, stack_config
from tests.policies.fixtures import aws as aws_fixtures
from tests.policies.fixtures import mesh as mesh_fixtures
from tests.support.reference import PROJECT_ROOT

PACKS = discover_packs(PROJECT_ROOT)
CONFIG_DIR = PROJECT_ROOT / "policies" / "config"
RAMPART = str(Path(sys.executable).parent / "rampart")


def gate(plan: Plan) -> Any:
    return run_gate(plan, PACKS, CONFIG_DIR)


def with_resource(plan: Plan, type_: str, name: str, inputs: dict[str, Any], **extra: Any) -> Plan:
    changed = copy.deepcopy(plan)
    urn = f"urn:pulumi:{plan.stack}::{plan.project}::{type_}::{name}"
    changed.resources.append(
        {
            "urn": urn,
            "custom": True,
            "id": name,
            "type": type_,
            "inputs": inputs,
            "outputs": inputs,
            "parent": None,
            "dependencies": [],
            "protect": False,
        }
        | extra
    )
    return changed


def with_resources(plan: Plan, resources: list[Resource]) -> Plan:
    """The plan plus fixture resources, as the engine would hold them (inputs = outputs)."""
    changed = plan
    for fixture in resources:
        changed = with_resource(
            changed, fixture.type, fixture.name, dict(fixture.props), protect=fixture.protect
        )
    return changed


def compliant_database() -> list[Resource]:
    """An RDS instance with everything around it the rules ask for."""
    instance = aws_fixtures.rds_instance()
    # Owned by a service of the prod stack that has no database of its own.
    owner = next(s.name for s in stack_config("prod").services if s.database is None)
    props = {**instance.props, "tags": {**instance.props.get("tags", {}), "rampart.dev/service": owner}}
    return [
        Resource(instance.urn, instance.type, instance.name, props, protect=True),
        *aws_fixtures.parameter_groups(),
        *aws_fixtures.subnets(),
        aws_fixtures.subnet_group("subnet-0private0a", "subnet-0isolated0b"),
        aws_fixtures.security_group(),
    ]


def resource_named(plan: Plan, name: str) -> dict[str, Any]:
    (found,) = [r for r in plan.resources if r["urn"].endswith(f"::{name}")]
    return found


def test_both_packs_are_found() -> None:
    assert [p.name for p in PACKS] == ["reliability", "security"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_with_zero_mandatory_violations(stack: str) -> None:
    result = gate(planned(stack))
    assert result.mandatory == [], [(d.policy, d.urn) for d in result.mandatory]
    assert {p.name for p in result.packs} == {"rampart-security", "rampart-reliability"}


def test_enforcement_follows_the_stack_config() -> None:
    local = {p.name: p for p in gate(planned("local")).packs}
    prod = {p.name: p for p in gate(planned("prod")).packs}
    # local relaxes redundancy, never the lifecycle: a broken first `up` or destroy is broken anywhere
    lifecycle_rules = {r.name for r in RULES if r.group == "lifecycle"}
    local_levels = local["rampart-reliability"].policies
    assert {level for name, level in local_levels.items() if name not in lifecycle_rules} == {"advisory"}
    assert {local_levels[name] for name in lifecycle_rules} == {"mandatory"}
    assert set(prod["rampart-reliability"].policies.values()) == {"mandatory"}
    assert set(prod["rampart-security"].policies.values()) == {"mandatory"}
    # local runs single replicas: reported, but only as advisory
    advisory = [d for d in gate(planned("local")).advisory if d.policy == "workload-replicas"]
    assert advisory


def test_a_host_network_deployment_is_a_mandatory_violation() -> None:
    plan = copy.deepcopy(planned("prod"))
    name = stack_config("prod").services[0].name
    (deployment,) = [r for r in plan.resources if r["urn"].endswith(f"Deployment::{name}-deployment")]
    deployment["inputs"]["spec"]["template"]["spec"]["hostNetwork"] = True
    result = gate(plan)
    assert [(d.policy, d.urn) for d in result.mandatory] == [("pod-no-host-namespaces", deployment["urn"])]


def test_a_missing_default_deny_is_caught_by_the_stack_policy() -> None:
    plan = copy.deepcopy(planned("staging"))
    name = stack_config("staging").services[-1].name
    plan.resources = [r for r in plan.resources if not r["urn"].endswith(f"::{name}-default-deny")]
    result = gate(plan)
    assert [d.policy for d in result.mandatory] == ["namespace-default-deny"]
    assert name in result.mandatory[0].message


def test_a_load_balancer_service_outside_the_gateway_is_rejected() -> None:
    plan = with_resource(
        planned("dev"),
        "kubernetes:core/v1:Service",
        "leak",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "leak", "namespace": stack_config("dev").services[0].name},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 5432}]},
        },
    )
    assert [d.policy for d in gate(plan).mandatory] == ["service-no-public-exposure"]


def test_not_applicable_results_come_back_from_the_pack() -> None:
    plan = copy.deepcopy(planned("local"))
    plan.resources = [
        r
        for r in plan.resources
        if "istio" not in r["type"] and r.get("inputs", {}).get("chart") not in ("istiod", "base")
    ]
    security = next(p for p in gate(plan).packs if p.name == "rampart-security")
    assert security.not_applicable["mesh-mtls-strict"] == "no service mesh in this plan"
    mesh_present = next(p for p in gate(planned("local")).packs if p.name == "rampart-security")
    assert "mesh-mtls-strict" not in mesh_present.not_applicable


def test_the_cli_gate_exits_non_zero_and_names_the_policy(tmp_path: Path) -> None:
    plan = copy.deepcopy(planned("dev"))
    name = stack_config("dev").services[0].name
    (deployment,) = [r for r in plan.resources if r["urn"].endswith(f"Deployment::{name}-deployment")]
    deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    export = tmp_path / "plan.json"
    plan.write(export)
    result = subprocess.run(
        [RAMPART, "policy", "--file", str(export)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "rampart-security/container-no-privilege" in result.stdout
    # The verdict, last, on stderr because it failed.
    assert result.stderr.splitlines()[-1].startswith(
        "policy FAILED: policy gate FAILED (1 mandatory violation, "
    ), result.stderr
    clean = tmp_path / "clean.json"
    planned("dev").write(clean)
    ok = subprocess.run(
        [RAMPART, "policy", "--file", str(clean)], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith("policy passed: policy gate passed (0 mandatory, ")


def test_config_files_relax_only_with_a_reason_and_never_in_staging_or_prod() -> None:
    for path in sorted(CONFIG_DIR.glob("*/*.json")):
        config, reasons = _read_config(path)
        for name, (level, _) in config.items():
            if level in ("advisory", "disabled"):
                assert path.parent.name not in ("staging", "prod"), f"{path}: {name} is {level}"
                assert reasons.get(name, "").strip(), f"{path}: {name} is {level} without a reason"


def test_a_config_naming_an_unknown_policy_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "security.json").write_text(
        json.dumps({"all": "mandatory", "pod-no-hostnet": "advisory"})
    )
    (tmp_path / "local" / "reliability.json").write_text(json.dumps({"all": "mandatory"}))
    with pytest.raises(GateError, match="no policy named 'pod-no-hostnet'"):
        run_gate(planned("local"), PACKS, tmp_path)


def test_a_stack_without_policy_config_is_an_error_that_says_how_to_create_it(tmp_path: Path) -> None:
    """Without it every policy would silently be its pack's default level."""
    plan = Plan("rampart", "qa", [])
    with pytest.raises(GateError) as missing:
        run_gate(plan, PACKS, tmp_path)
    message = str(missing.value)
    assert "no policy-pack config for stack 'qa'" in message and "\n" not in message
    assert f"mkdir -p {tmp_path / 'qa'} && cp {tmp_path}/staging/*.json {tmp_path / 'qa'}/" in message
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "security.json").write_text(json.dumps({"all": "mandatory"}))
    with pytest.raises(GateError, match=r"no reliability\.json in .*qa/ \(the reliability pack's config\)"):
        run_gate(plan, PACKS, tmp_path)


def test_flipping_rds_encryption_fails_the_gate() -> None:
    plan = with_resources(planned("prod"), compliant_database())
    assert gate(plan).mandatory == []
    resource_named(plan, "orders-db")["inputs"]["storageEncrypted"] = False
    assert [d.policy for d in gate(plan).mandatory] == ["rds-storage-encrypted"]


def test_opening_postgres_to_the_internet_fails_the_gate() -> None:
    plan = with_resources(planned("prod"), compliant_database())
    ingress = resource_named(plan, "orders-db-sg")["inputs"]["ingress"]
    ingress.append({"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["0.0.0.0/0"]})
    result = gate(plan)
    assert [d.policy for d in result.mandatory] == ["sg-no-public-ingress"]
    assert "5432" in result.mandatory[0].message


def test_relaxing_mesh_mtls_fails_the_gate() -> None:
    # staging runs istiod highly available (istiod-replicas), as the stack's own release does.
    ha = {"replicaCount": 2, "autoscaleMin": 2}
    istiod = mesh_fixtures.resource(
        mesh_fixtures.HELM_RELEASE,
        {**mesh_fixtures.ISTIOD, "values": {**mesh_fixtures.ISTIOD["values"], **ha}},
        name="istiod",
    )
    mesh = [
        istiod,
        mesh_fixtures.peer_authentication("STRICT"),
        mesh_fixtures.ALLOW_NOTHING,
    ]
    plan = with_resources(planned("staging"), mesh)
    # as the mesh layer builds them: after istio-base, which installs their CRDs (crd-installed-first)
    base = resource_named(plan, "mesh-istio-base")["urn"]
    for added in plan.resources[-len(mesh) :]:
        added["dependencies"] = [base]
    result = gate(plan)
    assert result.mandatory == []
    assert (
        "mesh-mtls-strict" not in next(p for p in result.packs if p.name == "rampart-security").not_applicable
    )
    resource_named(plan, "default")["outputs"]["spec"]["mtls"]["mode"] = "PERMISSIVE"
    assert {d.policy for d in gate(plan).mandatory} == {"mesh-mtls-strict"}
