"""Issue 13, an RDS major-version bump in one `pulumi up`: the real program planned at PostgreSQL 16 (the
stack as committed) and at 17 (its databases config changed as a reviewer would), compared with the
diff model of `rampart diff` (rampart/offline/diff.py).

What AWS and Pulumi do (ModifyDBInstance, docs.aws.amazon.com/AmazonRDS/latest/APIReference/
API_ModifyDBInstance.html; https://www.pulumi.com/docs/iac/concepts/options/deletebeforereplace/):
* an EngineVersion of another major is refused without AllowMajorVersionUpgrade;
* without ApplyImmediately the engine and parameter-group change wait for the maintenance window;
* a parameter group of a new family is a new resource (`family` forces replacement); Pulumi creates
  the replacement first and deletes the old one at the end of the update, unless deleteBeforeReplace.
So the instance must be updated in place, with both flags, and the group replaced create-before-delete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rampart.config.models import Databases
from rampart.offline.diff import PlanDiff, Step, diff
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.plan import Plan
from rampart.offline.project import load_project, load_stack_config
from rampart.offline.runner import capture, run_plan
from tests.aws.test_databases import AURORA, REGION, Profile, RdsMocks, program_for
from tests.aws.test_databases import STACK as STACK_NAME
from tests.conftest import PROJECT_ROOT, planned
from tests.support.cli import rampart

STACK = "dev"
INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
UPGRADE = {"engine_version": "17", "allow_major_version_upgrade": True, "apply_immediately": True}


def with_databases(stack: str, **changes: Any) -> Plan:
    """``stack`` planned with its `rampart:databases` config changed."""
    values = load_stack_config(load_project(PROJECT_ROOT), stack).values
    databases = json.loads(values["rampart:databases"]) | changes
    return run_plan(stack, PROJECT_ROOT, {"rampart:databases": json.dumps(databases)})


@pytest.fixture(scope="module")
def upgraded() -> Plan:
    return with_databases(STACK, **UPGRADE)


def steps(result: PlanDiff, type_: str) -> list[Step]:
    return sorted((s for s in result.steps if s.type == type_), key=lambda s: s.urn)


def inputs(plan: Plan, urn: str) -> dict[str, Any]:
    (found,) = [r for r in plan.resources if r["urn"] == urn]
    return dict(found["inputs"])


def test_the_committed_stacks_do_not_allow_a_major_upgrade() -> None:
    # Opt-in per upgrade: without a change under review, a major engine change stays refused.
    for instance in planned(STACK).of_type(INSTANCE):
        assert instance["inputs"]["engineVersion"] == "16"
        assert instance["inputs"]["allowMajorVersionUpgrade"] is False


def test_a_major_upgrade_replaces_the_parameter_group_and_updates_the_instance_in_place(
    upgraded: Plan,
) -> None:
    before = planned(STACK)
    result = diff(before, upgraded)
    instances = steps(result, INSTANCE)
    groups = steps(result, PARAMETER_GROUP)
    assert instances and len(groups) == len(instances) == len(before.of_type(INSTANCE))
    # No data lost: every instance keeps its URN and is updated, never replaced.
    assert result.lost == [] and result.failing == []
    for step in instances:
        assert (step.op, step.replaced_by, step.fails) == ("update", (), None), step
        assert step.urn in {r["urn"] for r in before.of_type(INSTANCE)}
        new = inputs(upgraded, step.urn)
        assert new["engineVersion"] == "17"
        assert new["allowMajorVersionUpgrade"] is True and new["applyImmediately"] is True
    # The parameter group of the new family replaces the old one, created before it is deleted.
    for step in groups:
        assert (step.op, step.replaced_by, step.delete_before_replace) == ("replace", ("family",), False)
        assert inputs(before, step.urn)["family"] == "postgres16"
        assert inputs(upgraded, step.urn)["family"] == "postgres17"
        assert not _resource(upgraded, step.urn).get("deleteBeforeReplace")
    # Nothing else of the stack changes.
    assert {s.type for s in result.steps} == {INSTANCE, PARAMETER_GROUP}


def _resource(plan: Plan, urn: str) -> dict[str, Any]:
    (found,) = [r for r in plan.resources if r["urn"] == urn]
    return found


@pytest.mark.parametrize("flag", ["allowMajorVersionUpgrade", "applyImmediately"])
def test_a_major_upgrade_without_either_flag_fails_the_diff(
    upgraded: Plan, flag: str, tmp_path: Path
) -> None:
    broken = Plan(upgraded.project, upgraded.stack, json.loads(json.dumps(upgraded.resources)))
    for instance in broken.of_type(INSTANCE):
        instance["inputs"][flag] = False
    result = diff(planned(STACK), broken)
    failing = result.failing
    assert [s.urn for s in failing] == [s.urn for s in steps(result, INSTANCE)]
    assert all(s.fails == f"major upgrade 16 -> 17 without {flag}" for s in failing)
    # `rampart diff` fails on it, naming the instance.
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    planned(STACK).write(before)
    broken.write(after)
    run = rampart("diff", str(before), str(after), timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    name = failing[0].name
    assert f"`pulumi up` would fail at {name}: major upgrade 16 -> 17 without {flag}" in run.stderr


def test_a_minor_or_no_engine_change_needs_no_flag(upgraded: Plan) -> None:
    same = Plan(upgraded.project, upgraded.stack, json.loads(json.dumps(upgraded.resources)))
    for instance in same.of_type(INSTANCE):
        instance["inputs"]["engineVersion"] = "17.2"
        instance["inputs"]["allowMajorVersionUpgrade"] = False
    assert diff(upgraded, same).failing == []


def aurora_plan(settings: Databases) -> Plan:
    """The Aurora databases of a prod-like stack (tests/aws/test_databases.py's harness)."""
    profile = Profile("prod", settings, protect=True, log_retention_days=365)
    monitor = CapturingMonitor(RdsMocks(region=REGION))
    registrations = capture(program_for(profile), stack=STACK_NAME, monitor=monitor)
    return Plan.from_registrations("rampart", STACK_NAME, registrations, {"type": "passphrase"})


def test_an_aurora_major_upgrade_replaces_the_cluster_parameter_group_and_keeps_the_cluster() -> None:
    before = aurora_plan(AURORA)
    result = diff(before, aurora_plan(AURORA.model_copy(update=UPGRADE)))
    assert result.lost == [] and result.failing == []
    clusters, groups = steps(result, CLUSTER), steps(result, CLUSTER_PARAMETER_GROUP)
    assert len(clusters) == len(groups) == len(before.of_type(CLUSTER)) > 0
    assert all((s.op, s.fails) == ("update", None) for s in clusters)
    assert all(
        (s.op, s.replaced_by, s.delete_before_replace) == ("replace", ("family",), False) for s in groups
    )
    # The members follow the cluster's engine version in place.
    assert {s.op for s in steps(result, CLUSTER_INSTANCE)} == {"update"}
    assert {s.type for s in result.steps} == {CLUSTER, CLUSTER_PARAMETER_GROUP, CLUSTER_INSTANCE}
