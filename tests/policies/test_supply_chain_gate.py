"""The gate enforces the supply chain and prod's zonal rules on plans made elsewhere: each mutation of the
real prod plan below flips the gate's verdict for exactly the rule that owns it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from components.core.supply_chain import requires_digest
from rampart.offline.gate import run_gate
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.policies.test_gate import CONFIG_DIR, PACKS

MINE = {"service-images-supply-chain", "service-images-admission", "nat-gateway-per-zone", "istiod-replicas"}


def violations(plan: Plan) -> set[str]:
    """This module's rules among the gate's mandatory violations."""
    return {d.policy for d in run_gate(plan, PACKS, CONFIG_DIR).mandatory} & MINE


def _deployment(plan: Plan) -> dict[str, Any]:
    name = stack_config("prod").services[0].name
    (found,) = [r for r in plan.resources if r["urn"].endswith(f"Deployment::{name}-deployment")]
    return found


def _views(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Its inputs and outputs: resource rules read the first, stack rules the second."""
    return [resource[key] for key in ("inputs", "outputs") if resource.get(key)]


def tag_only(plan: Plan) -> None:
    for view in _views(_deployment(plan)):
        container = view["spec"]["template"]["spec"]["containers"][0]
        container["image"] = container["image"].split("@")[0]


def foreign_init_container(plan: Plan) -> None:
    for view in _views(_deployment(plan)):
        view["spec"]["template"]["spec"]["initContainers"] = [
            {"name": "migrate", "image": "ghcr.io/acme-evil/migrate@sha256:" + "0d" * 32}
        ]


def audit_only_binding(plan: Plan) -> None:
    (binding,) = [r for r in plan.resources if r["type"].endswith(":ValidatingAdmissionPolicyBinding")]
    for view in _views(binding):
        view["spec"]["validationActions"] = ["Audit"]


def without_admission(plan: Plan) -> None:
    plan.resources = [r for r in plan.resources if "ValidatingAdmissionPolicy" not in r["type"]]


def one_nat_gateway(plan: Plan) -> None:
    gateways = [r for r in plan.resources if r["type"] == "aws:ec2/natGateway:NatGateway"]
    assert len(gateways) == 3
    plan.resources = [r for r in plan.resources if r not in gateways[1:]]


def single_istiod(plan: Plan) -> None:
    (istiod,) = [r for r in plan.resources if r["urn"].endswith("Release::mesh-istiod")]
    istiod["inputs"]["values"] |= {"replicaCount": 1, "autoscaleMin": 1}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (tag_only, {"service-images-supply-chain"}),
        (foreign_init_container, {"service-images-supply-chain"}),
        (audit_only_binding, {"service-images-admission"}),
        (without_admission, {"service-images-admission"}),
        (one_nat_gateway, {"nat-gateway-per-zone"}),
        (single_istiod, {"istiod-replicas"}),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_each_mutation_of_the_prod_plan_fails_the_gate(
    mutate: Callable[[Plan], None], expected: set[str]
) -> None:
    assert violations(planned("prod")) == set()
    plan = copy.deepcopy(planned("prod"))
    mutate(plan)
    assert violations(plan) == expected


def test_each_stacks_policy_config_agrees_with_its_supply_chain(stack: str) -> None:
    config = stack_config(stack)
    assert config.supply_chain is not None
    security = json.loads((CONFIG_DIR / stack / "security.json").read_text())
    for rule in ("service-images-supply-chain", "service-images-admission"):
        assert security[rule] == {
            "allowedRegistries": list(config.supply_chain.allowed_registries),
            "requireDigest": requires_digest(config.environment),
        }, (stack, rule)
    reliability = json.loads((CONFIG_DIR / stack / "reliability.json").read_text())
    strict = config.environment in ("staging", "prod")
    assert reliability.get("nat-gateway-per-zone", {}).get("requireNatPerZone", False) is strict
    assert reliability.get("istiod-replicas", {}).get("minReplicas", 1) == (2 if strict else 1)
