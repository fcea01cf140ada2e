"""A readable summary of a plan: counts by type and by component, and a line per service."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from rampart.config import PlatformConfig
from rampart.offline.plan import PROVIDER_PREFIX, STACK_TYPE, Plan

MICROSERVICE_TYPE = "rampart:paved:Microservice"


def render(plan: Plan, console: Console, config: PlatformConfig | None = None) -> None:
    custom = list(plan.custom())
    components = [r for r in plan.resources if not r["custom"] and r["type"] != STACK_TYPE]
    providers = [r for r in plan.resources if r["type"].startswith(PROVIDER_PREFIX)]
    console.print(
        f"[bold]Plan for stack {plan.stack!r}[/bold] (project {plan.project}): "
        f"{len(plan.resources)} resources — {len(custom)} managed, {len(components)} components, "
        f"{len(providers)} providers"
    )
    console.print(_by_type(plan))
    console.print(_by_component(plan, components))
    console.print(_services(plan, config))


def _by_type(plan: Plan) -> Table:
    table = Table(title="Resources by type", title_justify="left")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(
        Counter(r["type"] for r in plan.resources).items(), key=lambda kv: (-kv[1], kv[0])
    ):
        table.add_row(type_, str(count))
    return table


def _by_component(plan: Plan, components: list[dict[str, Any]]) -> Table:
    table = Table(title="Resources by component (managed resources beneath each)", title_justify="left")
    table.add_column("component")
    table.add_column("name")
    table.add_column("managed", justify="right")
    per_type: Counter[str] = Counter()
    totals: dict[str, int] = {}
    for component in components:
        managed = sum(1 for r in plan.descendants(component["urn"]) if r["custom"])
        per_type[component["type"]] += 1
        totals[component["type"]] = totals.get(component["type"], 0) + managed
        if component["type"] != MICROSERVICE_TYPE:
            table.add_row(component["type"], _name(component["urn"]), str(managed))
    if per_type[MICROSERVICE_TYPE]:
        table.add_row(
            MICROSERVICE_TYPE, f"{per_type[MICROSERVICE_TYPE]} services", str(totals[MICROSERVICE_TYPE])
        )
    return table


def _services(plan: Plan, config: PlatformConfig | None) -> Table:
    table = Table(title="Services", title_justify="left")
    for column in ("service", "image", "replicas", "calls", "database", "queues", "routes", "resources"):
        table.add_column(column)
    order = {s.name: i for i, s in enumerate(config.services)} if config else {}
    services = sorted(
        plan.of_type(MICROSERVICE_TYPE), key=lambda c: (order.get(_name(c["urn"]), 0), c["urn"])
    )
    for component in services:
        name = _name(component["urn"])
        beneath = plan.descendants(component["urn"])
        deployment = _first(beneath, "kubernetes:apps/v1:Deployment")
        hpa = _first(beneath, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
        image = (
            deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] if deployment else "-"
        )
        replicas = (
            f"{hpa['inputs']['spec']['minReplicas']}-{hpa['inputs']['spec']['maxReplicas']}" if hpa else "-"
        )
        spec = next((s for s in config.services if s.name == name), None) if config else None
        calls = ", ".join(spec.calls) if spec and spec.calls else "-"
        database = f"{spec.database.engine} {spec.database.storage_gb}Gi" if spec and spec.database else "-"
        queues = (
            " ".join([f"→{q}" for q in spec.queue.publishes] + [f"←{q}" for q in spec.queue.consumes])
            if spec
            else "-"
        ) or "-"
        routes = (
            ", ".join(f"{r.host}{r.path}{'' if r.auth else ' (open)'}" for r in spec.routes) if spec else "-"
        )
        managed = sum(1 for r in beneath if r["custom"])
        table.add_row(name, image, replicas, calls, database, queues, routes or "-", str(managed))
    return table


def _first(resources: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((r for r in resources if r["type"] == type_), None)


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]
