"""`rampart diff`: what `pulumi up` would create, update, replace and delete between two exports."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from rampart.offline.diff import DiffError, diff, replace_keys
from rampart.offline.plan import Plan
from tests.conftest import planned, stack_config
from tests.support.cli import rampart

# The command as a CI log shows it.
LOG_ENV = dict(os.environ)
STACK_URN = "urn:pulumi:s::rampart::pulumi:pulumi:Stack::rampart-s"
K8S = "urn:pulumi:s::rampart::pulumi:providers:kubernetes::k8s"


def resource(type_: str, name: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:s::rampart::{type_}::{name}",
        "custom": True,
        "type": type_,
        "inputs": inputs,
        "parent": STACK_URN,
        "dependencies": [],
        "protect": False,
        **extra,
    }


def plan(*resources: dict[str, Any]) -> Plan:
    stack = {
        "urn": STACK_URN,
        "custom": False,
        "type": "pulumi:pulumi:Stack",
        "inputs": {},
        "dependencies": [],
    }
    provider = resource("pulumi:providers:kubernetes", "k8s", {}, id="p1")
    return Plan("rampart", "s", [stack, provider, *resources])


def cluster(name: str = "orders-db", **spec: Any) -> dict[str, Any]:
    inputs = {"metadata": {"name": name, "namespace": "orders"}, "spec": {"instances": 1, **spec}}
    return resource(
        "kubernetes:postgresql.cnpg.io/v1:Cluster", "orders-db-cluster", inputs, provider=f"{K8S}::p1"
    )


def deployment(replicas: int = 1, selector: str = "orders") -> dict[str, Any]:
    inputs = {
        "metadata": {"name": "orders", "namespace": "orders"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": selector}}},
    }
    return resource("kubernetes:apps/v1:Deployment", "orders-deployment", inputs, provider=f"{K8S}::p1")


def test_nothing_changed_is_no_step() -> None:
    result = diff(plan(cluster(), deployment()), plan(cluster(), deployment()))
    assert result.steps == () and result.unchanged == 3 and not result.changed


def test_an_in_place_change_is_an_update_and_an_immutable_one_a_replacement() -> None:
    result = diff(plan(deployment(replicas=1)), plan(deployment(replicas=3)))
    (step,) = result.steps
    assert (step.op, step.diff, step.replaced_by) == ("update", ("~spec",), ())
    result = diff(plan(deployment()), plan(deployment(selector="orders-v2")))
    (step,) = result.steps
    assert step.op == "replace" and step.replaced_by == ("spec.selector.matchLabels.app",)


def test_renaming_a_database_cluster_replaces_it_and_it_is_listed_first() -> None:
    before = plan(deployment(), cluster())
    after = plan(
        deployment(replicas=2),
        cluster(name="orders-db-v2"),
        resource("random:index/randomId:RandomId", "x", {}),
    )
    result = diff(before, after)
    assert [(s.op, s.name) for s in result.lost] == [("replace", "orders-db-cluster")]
    assert result.lost[0].replaced_by == ("metadata.name",)
    assert [(s.op, s.name) for s in result.others] == [("update", "orders-deployment"), ("create", "x")]
    assert result.counts() == {"replace": 1, "update": 1, "create": 1}


def test_a_removed_resource_is_deleted_unless_an_alias_carries_it() -> None:
    old = cluster()
    renamed = {
        **cluster(),
        "urn": old["urn"].replace("orders-db-cluster", "orders-database"),
        "aliases": [old["urn"]],
    }
    result = diff(plan(old), plan(renamed))
    (step,) = result.steps
    assert (step.op, step.aliased_from) == ("update", old["urn"])
    result = diff(plan(old), plan({**renamed, "aliases": []}))
    assert sorted((s.op, s.name) for s in result.steps) == [
        ("create", "orders-database"),
        ("delete", "orders-db-cluster"),
    ]
    assert [s.name for s in result.lost] == ["orders-db-cluster"]


def test_protection_and_delete_before_replace_are_reported() -> None:
    before = plan({**cluster(), "protect": True})
    after = plan({**cluster(name="x"), "deleteBeforeReplace": True})
    (step,) = diff(before, after).steps
    assert step.protected and step.delete_before_replace


def test_config_maps_replace_unless_the_provider_makes_them_mutable() -> None:
    config_map = resource("kubernetes:core/v1:ConfigMap", "cm", {"data": {"a": "1"}}, provider=f"{K8S}::p1")
    assert "data" in replace_keys(config_map, {K8S: {}})
    assert "data" not in replace_keys(config_map, {K8S: {"enableConfigMapMutable": "true"}})


def test_aws_data_stores_replace_on_what_the_provider_documents() -> None:
    rds = resource("aws:rds/instance:Instance", "db", {"identifier": "dev-orders", "allocatedStorage": 20})
    changed = resource(
        "aws:rds/instance:Instance", "db", {"identifier": "dev-orders", "allocatedStorage": 40}
    )
    assert diff(plan(rds), plan(changed)).steps[0].op == "update"
    renamed = resource(
        "aws:rds/instance:Instance", "db", {"identifier": "dev-orders-2", "allocatedStorage": 20}
    )
    (step,) = diff(plan(rds), plan(renamed)).lost
    assert (step.op, step.replaced_by) == ("replace", ("identifier",))


def test_plans_of_different_stacks_cannot_be_compared() -> None:
    with pytest.raises(DiffError, match="different stacks"):
        diff(planned("local"), planned("dev"))


def _replace_a_database(stack: str) -> Plan:
    """The stack's plan with one service's database given a new name, as a rename would."""
    changed = copy.deepcopy(planned(stack))
    owner = next(s.name for s in stack_config(stack).services if s.database)
    for candidate in changed.of_type("kubernetes:postgresql.cnpg.io/v1:Cluster") + changed.of_type(
        "aws:rds/instance:Instance"
    ):
        if candidate["urn"].endswith((f"::{owner}-db-cluster", f"::databases-{owner}-db")):
            if "identifier" in candidate["inputs"]:
                candidate["inputs"]["identifier"] += "-v2"
            else:
                candidate["inputs"]["metadata"]["name"] += "-v2"
            return changed
    raise AssertionError(f"no database of {owner}")


def test_the_command_reports_a_replaced_database_first_and_fails(tmp_path: Path) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    planned("local").write(before)
    changed = _replace_a_database("local")
    name = stack_config("local").services[0].name
    for r in changed.of_type("kubernetes:apps/v1:Deployment"):
        if r["inputs"]["metadata"]["name"] == name:
            r["inputs"]["spec"]["replicas"] = 7
    changed.write(after)
    result = rampart("diff", str(before), str(after), timeout=120, env=LOG_ENV)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    first_step = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("+-", "~ ", "+ ", "- ")))
    assert "Stateful resources replaced or deleted" in lines[first_step - 1]
    assert "postgresql.cnpg.io/v1:Cluster" in lines[first_step] and "replace" in lines[first_step]
    assert any(f"{name}-deployment" in line and "update" in line for line in lines[first_step + 1 :])
    assert result.stderr.splitlines()[-1].startswith("diff FAILED: 1 stateful resource would be replaced (")


def test_the_command_passes_without_changes_and_can_expect_none(tmp_path: Path) -> None:
    export = tmp_path / "plan.json"
    planned("local").write(export)
    same = rampart("diff", str(export), str(export))
    assert same.returncode == 0
    assert same.stdout.splitlines()[-1].startswith("diff passed: no changes (")
    changed = copy.deepcopy(planned("local"))
    changed.resources[-1]["inputs"]["touched"] = True
    other = tmp_path / "other.json"
    changed.write(other)
    strict = rampart("diff", "--expect-no-changes", str(export), str(other))
    assert strict.returncode == 1
    assert strict.stderr.splitlines()[-1] == "diff FAILED: changes found (--expect-no-changes); " + (
        f"1 to update, {len(changed.resources) - 2} unchanged"
    )
