"""Nothing lost on change: the golden files of stateful URNs, and the checker behind them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from rampart.config import PlatformConfig
from rampart.offline import stateful
from rampart.offline.plan import Plan
from tests.conftest import PROJECT_ROOT, STACKS, planned, stack_config
from tests.support.harness import plan_of, platform_plan


def test_every_stack_matches_its_golden_file(stack: str) -> None:
    golden = stateful.read_golden(stateful.golden_path(PROJECT_ROOT, stack))
    drift = stateful.compare(golden, planned(stack))
    assert drift.lost == [], drift.problems(stack, protected=True)
    assert drift.new == [], f"record new stateful resources: {stateful.record_command(stack)}"
    # Every namespace and database of the stack's services is among them.
    config = stack_config(stack)
    for service in config.services:
        assert any(urn.endswith(f"::{service.name}-namespace") for urn in golden), service.name


def _namespaces(name: str, aliases: list[pulumi.Alias] | None = None) -> Callable[[], None]:
    def program() -> None:
        provider = k8s.Provider("k8s")
        k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name="orders"),
            opts=pulumi.ResourceOptions(provider=provider, aliases=aliases),
        )

    return program


def test_a_rename_without_an_alias_is_caught() -> None:
    golden = stateful.stateful_urns(plan_of(_namespaces("orders-namespace")))
    drift = stateful.compare(golden, plan_of(_namespaces("orders-ns")))
    assert drift.lost == golden and len(drift.new) == 1
    (message,) = drift.problems("prod", protected=True)[:1]
    assert "gone from the plan" in message and "pulumi.Alias(name='orders-namespace'" in message
    assert "nothing is deleted" in message
    assert "would DELETE" in drift.problems("dev", protected=False)[0]


def test_a_rename_with_an_alias_keeps_the_resource() -> None:
    golden = stateful.stateful_urns(plan_of(_namespaces("orders-namespace")))
    renamed = plan_of(_namespaces("orders-ns", aliases=[pulumi.Alias(name="orders-namespace")]))
    assert stateful.compare(golden, renamed).lost == []


def _with_services(config: PlatformConfig, services: list[object]) -> PlatformConfig:
    return config.model_copy(update={"services": services})


@pytest.mark.parametrize("stack", [s for s in ("local", "prod") if s in STACKS])
def test_reordering_services_changes_no_stateful_urn(stack: str) -> None:
    config = stack_config(stack)
    reordered = platform_plan(_with_services(config, list(reversed(config.services))), stack)
    assert stateful.stateful_urns(reordered) == stateful.stateful_urns(planned(stack))


def test_removing_a_service_in_prod_names_its_database_and_what_to_do() -> None:
    config = stack_config("prod")
    victim = next(s.name for s in config.services if s.database)
    # The catalog as its owners would leave it: nobody calls the service or consumes its queue any more.
    gone = set(config.service(victim).queue.publishes)
    remaining = [
        s.model_copy(
            update={
                "calls": [c for c in s.calls if c != victim],
                "queue": s.queue.model_copy(
                    update={"consumes": [q for q in s.queue.consumes if q not in gone]}
                ),
            }
        )
        for s in config.services
        if s.name != victim
    ]
    without_orders: Plan = platform_plan(_with_services(config, remaining), "prod")
    golden = stateful.read_golden(stateful.golden_path(PROJECT_ROOT, "prod"))
    lost = stateful.compare(golden, without_orders).lost
    kinds = {urn.split("::")[2].rsplit("$", 1)[-1] for urn in lost}
    assert {"aws:rds/instance:Instance", "kubernetes:core/v1:Namespace"} <= kinds, lost
    # Nothing else is reported: only what belonged to the service.
    assert all(victim in urn.rsplit("::", 1)[1] for urn in lost), lost
    # It is protected in prod, and kept even once unprotected.
    databases = planned("prod").of_type("aws:rds/instance:Instance")
    assert databases and all(d["protect"] and d["retainOnDelete"] for d in databases)


def test_recording_writes_a_sorted_commented_file(tmp_path: Path) -> None:
    plan = plan_of(_namespaces("b-namespace"))
    path = tmp_path / "stacks" / "stateful" / "x.txt"
    assert stateful.write_golden(path, plan) == 1
    assert path.read_text().startswith("#") and stateful.read_golden(path) == stateful.stateful_urns(plan)
