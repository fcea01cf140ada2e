"""The packs' server reads each request once (policies/server.py); its answers must be the SDK's.

Both servicers get the same requests, built from a real plan the way the gate and the engine build
them, after mutations that make many rules of both packs fire, and must report the same
violations, enforcement levels and not-applicable results.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from pulumi.runtime.proto import analyzer_pb2 as analyzer
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from policies.adapter import to_policy
from policies.catalog import rules_for
from policies.model import Pack
from policies.server import SharedViewAnalyzer
from rampart.offline.gate import _analyze_request, _stack_resource
from rampart.offline.plan import Plan
from tests.conftest import planned

PACKS: tuple[Pack, ...] = ("security", "reliability")


def mutated(plan: Plan) -> Plan:
    """Realistic defects across layers: privileged pods, an open security group, lost waits,
    unprotected state, a dropped NetworkPolicy."""
    changed = copy.deepcopy(plan)
    dropped_policy = False
    kept = []
    for index, resource in enumerate(changed.resources):
        for props in (resource.get("inputs") or {}, resource.get("outputs") or {}):
            if resource["type"] == "kubernetes:apps/v1:Deployment":
                for container in (
                    props.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
                ):
                    container["securityContext"] = {"privileged": True, "runAsUser": 0}
            if resource["type"] == "aws:ec2/securityGroup:SecurityGroup":
                props["ingress"] = [
                    {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}
                ]
        if index % 7 == 0:
            resource["dependencies"] = []
        resource["protect"] = False
        if resource["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy" and not dropped_policy:
            dropped_policy = True
            continue
        kept.append(resource)
    changed.resources = kept
    return changed


def findings(servicer: Any, plan: Plan) -> tuple[Counter[tuple[Any, ...]], set[tuple[str, str]]]:
    servicer.Configure(analyzer.ConfigureAnalyzerRequest(), None)
    by_urn = plan.by_urn()
    responses = [servicer.Analyze(_analyze_request(r, by_urn), None) for r in plan.resources]
    stack = analyzer.AnalyzeStackRequest(resources=[_stack_resource(r, by_urn) for r in plan.resources])
    responses.append(servicer.AnalyzeStack(stack, None))
    diagnostics: Counter[tuple[Any, ...]] = Counter(
        (d.policyName, d.policyPackName, d.enforcementLevel, d.severity, d.message, d.urn)
        for response in responses
        for d in response.diagnostics
    )
    not_applicable = {(n.policy_name, n.reason) for response in responses for n in response.not_applicable}
    return diagnostics, not_applicable


@pytest.mark.parametrize("stack", ["local", "prod"])
@pytest.mark.parametrize("pack", PACKS)
def test_the_shared_view_reports_what_the_sdk_servicer_reports(stack: str, pack: Pack) -> None:
    plan = mutated(planned(stack))
    rules = rules_for(pack)
    policies = [to_policy(rule) for rule in rules]
    types = {rule.name: frozenset(rule.types) for rule in rules if not rule.is_stack_rule}
    name = f"rampart-{pack}"
    sdk = _PolicyAnalyzerServicer(name, "0.0.1", policies, EnforcementLevel.MANDATORY, None, "d", *[None] * 5)
    shared = SharedViewAnalyzer(name, policies, EnforcementLevel.MANDATORY, "d", types)
    expected = findings(sdk, plan)
    assert findings(shared, plan) == expected
    # The mutations make the comparison meaningful: rules of this pack fire on the mutated plan.
    assert sum(expected[0].values()) >= 5, expected


def test_a_resource_policy_that_skips_a_type_would_change_the_findings() -> None:
    """The type filter is what makes the view cheap, and it is safe only because each rule checks
    exactly its declared types: a wrong filter loses findings, and the comparison sees it."""
    plan = mutated(planned("local"))
    rules = rules_for("security")
    policies = [to_policy(rule) for rule in rules]
    wrong = {rule.name: frozenset({"no:such/type:Kind"}) for rule in rules if not rule.is_stack_rule}
    shared = SharedViewAnalyzer("rampart-security", policies, EnforcementLevel.MANDATORY, "d", wrong)
    sdk = _PolicyAnalyzerServicer(
        "rampart-security", "0.0.1", policies, EnforcementLevel.MANDATORY, None, "d", *[None] * 5
    )
    assert findings(shared, plan) != findings(sdk, plan)
