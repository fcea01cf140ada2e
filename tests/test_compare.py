"""The refactor proof: two exports compare equal exactly when Pulumi would do the same thing."""

from __future__ import annotations

import copy

from rampart.offline.compare import compare
from rampart.offline.plan import Plan
from tests.conftest import planned


def _plan() -> Plan:
    return planned("local")


def _copy(plan: Plan) -> Plan:
    return Plan(plan.project, plan.stack, copy.deepcopy(plan.resources), plan.secrets_provider)


def _with_dependencies(plan: Plan) -> dict[str, object]:
    return next(r for r in plan.resources if len(r.get("dependencies") or []) > 1)


def test_order_of_resources_and_dependencies_carries_no_meaning() -> None:
    after = _copy(_plan())
    after.resources.reverse()
    resource = _with_dependencies(after)
    resource["dependencies"] = list(reversed(resource["dependencies"]))  # type: ignore[call-overload]
    assert compare(_plan(), after).identical


def test_a_changed_input_a_dropped_dependency_and_a_new_resource_are_each_reported() -> None:
    before, after = _plan(), _copy(_plan())
    changed = next(r for r in after.resources if r["custom"] and r["inputs"])
    changed["inputs"] = {**changed["inputs"], "extra": 1}
    waits = _with_dependencies(after)
    waits["dependencies"] = waits["dependencies"][1:]  # type: ignore[index]
    removed = after.resources.pop()
    result = compare(before, after)
    assert not result.identical
    assert result.removed == [removed["urn"]]
    assert {(c.urn, c.fields) for c in result.changed} >= {
        (changed["urn"], ("inputs",)),
        (waits["urn"], ("dependencies",)),
    }
    assert f"- {removed['urn']}" in result.lines()


def test_a_rename_is_a_removal_and_an_addition() -> None:
    after = _copy(_plan())
    resource = next(r for r in after.resources if r["custom"])
    old = resource["urn"]
    resource["urn"] = old + "-renamed"
    result = compare(_plan(), after)
    assert result.removed == [old] and result.added == [old + "-renamed"]
