"""A readable summary of a plan: counts by type and by component, and a line per service."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rampart.config import PlatformConfig, ServiceSpec
from rampart.offline.plan import PROVIDER_PREFIX, STACK_TYPE, Plan

MICROSERVICE_TYPE = "rampart:paved:Microservice"
# Values that cannot wrap at a space (images, hosts) keep their column this wide at most.
MAX_UNBROKEN = 40


def render(
    plan: Plan,
    console: Console,
    config: PlatformConfig | None = None,
    *,
    verbose: bool = False,
    wide: bool = False,
) -> None:
    """The headline, resources by component and a row per service; counts by type with ``verbose``.
    Rows wrap to the console's width (100 columns stay readable); ``wide`` shows full image references."""
    custom = list(plan.custom())
    components = [r for r in plan.resources if not r["custom"] and r["type"] != STACK_TYPE]
    providers = [r for r in plan.resources if r["type"].startswith(PROVIDER_PREFIX)]
    console.print(
        f"[bold]Plan for stack {escape(repr(plan.stack))}[/bold] (project {escape(plan.project)}): "
        f"{len(plan.resources)} resources — {len(custom)} managed, {len(components)} components, "
        f"{len(providers)} providers"
    )
    console.print(_by_component(plan, components))
    console.print(_services(plan, config, wide=wide))
    if config is not None and any(s.routes for s in config.services):
        console.print(_routes(config))
    if verbose:
        console.print(_by_type(plan))


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


def _services(plan: Plan, config: PlatformConfig | None, *, wide: bool = False) -> Table:
    """A row per service. Narrow by default: cells wrap at spaces, images lose their registry and
    digests shorten to 12 hex (as `docker images` does); ``wide`` shows them whole and the counts."""
    order = {s.name: i for i, s in enumerate(config.services)} if config else {}
    services = sorted(
        plan.of_type(MICROSERVICE_TYPE), key=lambda c: (order.get(_name(c["urn"]), 0), c["urn"])
    )
    rows = []
    for component in services:
        name = _name(component["urn"])
        beneath = plan.descendants(component["urn"])
        spec = next((s for s in config.services if s.name == name), None) if config else None
        image = _image(_first(beneath, "kubernetes:apps/v1:Deployment"), wide)
        managed = [str(sum(1 for r in beneath if r["custom"]))] if wide else []
        rows.append((name, image, _replicas(beneath), *_declared(spec), *managed))
    table = Table(title="Services", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("service", no_wrap=True)
    # Image references do not break at spaces: the column is as wide as the longest (within reason).
    table.add_column(
        "image", overflow="fold", min_width=min(MAX_UNBROKEN, max((len(r[1]) for r in rows), default=5))
    )
    table.add_column("replicas", no_wrap=True)
    table.add_column("calls", overflow="fold")
    table.add_column("data", overflow="fold")
    table.add_column("routes", no_wrap=True)
    if wide:
        table.add_column("managed", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _image(deployment: dict[str, Any] | None, wide: bool) -> str:
    if deployment is None:
        return "-"
    image = str(deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"])
    if wide:
        return image
    # The registry and organisation repeat on every row; the repository and version tell them apart.
    short = image.rsplit("/", 1)[-1]
    repository, _, digest = short.partition("@sha256:")
    return f"{repository}@{digest[:12]}" if digest else short


def _replicas(beneath: list[dict[str, Any]]) -> str:
    hpa = _first(beneath, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    return f"{hpa['inputs']['spec']['minReplicas']}-{hpa['inputs']['spec']['maxReplicas']}" if hpa else "-"


def _declared(spec: ServiceSpec | None) -> tuple[str, str, str]:
    """calls, data (its database and queues) and the number of routes (``-`` for none)."""
    if spec is None:
        return ("-", "-", "-")
    calls = ", ".join(spec.calls)
    data = [f"{spec.database.engine} {spec.database.storage_gb}Gi"] if spec.database else []
    data += [f"→{q}" for q in spec.queue.publishes] + [f"←{q}" for q in spec.queue.consumes]
    return (calls or "-", " ".join(data) or "-", str(len(spec.routes)) if spec.routes else "-")


def _routes(config: PlatformConfig) -> Table:
    """Every public route through the gateway, a row each."""
    table = Table(title="Public routes", title_justify="left", box=box.SIMPLE_HEAD)
    longest = max(len(f"{r.host}{r.path}") for s in config.services for r in s.routes)
    table.add_column("route", overflow="fold", min_width=min(MAX_UNBROKEN, longest))
    table.add_column("service", no_wrap=True)
    table.add_column("auth", no_wrap=True)
    table.add_column("limit", no_wrap=True)
    table.add_column("allowlist", overflow="fold")
    for service in config.services:
        for route in service.routes:
            limit = f"{route.rate_limit.requests_per_minute}/min" if route.rate_limit else "-"
            table.add_row(
                f"{route.host}{route.path}",
                service.name,
                "JWT" if route.auth else "open",
                limit,
                ", ".join(route.ip_allowlist) or "anyone",
            )
    return table


def _first(resources: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((r for r in resources if r["type"] == type_), None)


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]
