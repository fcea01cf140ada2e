"""Every rule has passing and failing fixtures, and behaves on them."""

from __future__ import annotations

import pytest

from policies.catalog import RULES
from policies.model import Rule
from tests.policies.fixtures import Fixture
from tests.policies.fixtures import aws as aws_fixtures
from tests.policies.fixtures import baseline as baseline_fixtures
from tests.policies.fixtures import data as data_fixtures
from tests.policies.fixtures import kubernetes as kubernetes_fixtures
from tests.policies.fixtures import lifecycle as lifecycle_fixtures
from tests.policies.fixtures import mesh as mesh_fixtures
from tests.policies.fixtures import ownership as ownership_fixtures
from tests.policies.fixtures import platform as platform_fixtures
from tests.policies.fixtures import supply_chain as supply_chain_fixtures
from tests.policies.fixtures import workload_reliability as reliability_fixtures

FIXTURES: dict[str, Fixture] = {
    **kubernetes_fixtures.FIXTURES,
    **aws_fixtures.FIXTURES,
    **data_fixtures.FIXTURES,
    **mesh_fixtures.FIXTURES,
    **platform_fixtures.FIXTURES,
    **reliability_fixtures.FIXTURES,
    **lifecycle_fixtures.FIXTURES,
    **baseline_fixtures.FIXTURES,
    **ownership_fixtures.FIXTURES,
    **supply_chain_fixtures.FIXTURES,
}


def test_every_rule_has_fixtures_and_metadata() -> None:
    assert {r.name for r in RULES} == set(FIXTURES), "rules and fixtures differ"
    for rule in RULES:
        assert rule.description and rule.remediation and rule.controls, rule.name
        assert FIXTURES[rule.name].passing and FIXTURES[rule.name].failing, rule.name


def test_rule_names_are_unique() -> None:
    assert len({r.name for r in RULES}) == len(RULES)


def _violations(rule: Rule, case: object, fixture: Fixture) -> list[str]:
    if rule.is_stack_rule:
        assert isinstance(case, list)
        return [v.message for v in rule.evaluate_stack(case, fixture.config)]
    return rule.evaluate(case, fixture.config)  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_passing_fixtures_pass(rule: Rule) -> None:
    fixture = FIXTURES[rule.name]
    for case in fixture.passing:
        assert _violations(rule, case, fixture) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_failing_fixtures_fail(rule: Rule) -> None:
    fixture = FIXTURES[rule.name]
    for index, case in enumerate(fixture.failing):
        assert _violations(rule, case, fixture), f"{rule.name}: failing case {index} passed"
