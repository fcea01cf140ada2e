"""Print `rampart order`: create waves, the first-`pulumi up` estimate and its critical path, the
destroy antichains, protected resources and the destroy findings. The model is `rampart.order`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rampart import order
from rampart.offline.plan import Plan
from rampart.verdict import Verdict, count

SLOW = 60  # seconds: a step this slow is named in its wave
SHOWN = 3  # layers / types per cell before "+N"


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}:{rest:02d}"


def _top(counts: Counter[str], shown: int = SHOWN) -> str:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{key} {count}" for key, count in ranked[:shown])
    return text + (f", +{len(ranked) - shown}" if len(ranked) > shown else "")


def _slow(graph: order.Graph, urns: Iterable[str]) -> str:
    timed = [(order.typical_seconds(graph.resources[u]), u) for u in urns]
    slow = sorted((su for su in timed if su[0] >= SLOW), key=lambda su: (-su[0], su[1]))
    names = [f"{order.short_type(graph.type(u))} {graph.name(u)} ({_duration(s)})" for s, u in slow[:SHOWN]]
    return ", ".join(names) + (f", +{len(slow) - SHOWN}" if len(slow) > SHOWN else "")


def render(plan: Plan, console: Console, verdict: Verdict | None = None) -> list[order.Finding]:
    """Print the report; return the destroy findings (the caller's exit code). With ``verdict``, the
    estimate and the findings go into the command's closing line instead of a summary line here."""
    graph = order.build_graph(plan)
    waves = order.create_waves(graph)
    layers = order.layer_of(plan)
    console.print(
        f"[bold]Order for stack {plan.stack!r}[/bold]: {len(plan.resources)} resources, {len(graph.steps)} "
        "create steps (custom resources, providers, remote components; components register at once)"
    )

    table = Table(
        title=f"Create: {len(waves)} waves (a wave starts once all it waits for exists)", title_justify="left"
    )
    for column in ("wave", "steps", "by layer", "by type", f"slow (≥ {SLOW} s)"):
        table.add_column(column, justify="right" if column in ("wave", "steps") else "left")
    for index, wave in enumerate(waves):
        table.add_row(
            str(index),
            str(len(wave)),
            _top(Counter(layers[u] for u in wave)),
            _top(order.type_counts(graph, wave)),
            _slow(graph, wave),
        )
    console.print(table)

    plan_schedule = order.schedule(graph)
    console.print(
        f"[bold]First `pulumi up` ≈ {_duration(plan_schedule.total)}[/bold] (min:s) along a critical path of "
        f"{len(plan_schedule.critical_path)} steps; typical create times from rampart/order.py TYPICAL, "
        "parallelism unbounded (the CLI's default)"
    )
    path = Table(show_header=True, box=None, pad_edge=False)
    for column in ("starts", "takes", "type", "name", "figure from"):
        path.add_column(column)
    for urn in plan_schedule.critical_path:
        typical = order.TYPICAL[order.typical_key(graph.resources[urn])]
        path.add_row(
            _duration(plan_schedule.start[urn]),
            _duration(typical.seconds),
            order.short_type(graph.type(urn)),
            graph.name(urn),
            typical.source,
        )
    console.print(path)

    report = order.destroy_report(plan)
    by_urn = plan.by_urn()
    destroy = Table(
        title=f"Destroy: {len(report.waves)} antichains, deleted in order, each in parallel "
        "(components and the stack included)",
        title_justify="left",
    )
    for column in ("wave", "count", "by type"):
        destroy.add_column(column, justify="right" if column != "by type" else "left")
    for index, wave in enumerate(report.waves):
        destroy.add_row(
            str(index), str(len(wave)), _top(Counter(order.short_type(by_urn[u]["type"]) for u in wave), 4)
        )
    console.print(destroy)

    if report.protected:
        stop = report.stops_at
        assert stop is not None
        deleted = sum(len(w) for w in report.waves[:stop])
        first = sorted((p for p in report.protected if p.destroy_wave == stop), key=lambda p: p.urn)
        named = ", ".join(
            f"{order.short_type(by_urn[p.urn]['type'])} {order.name_of(p.urn)}" for p in first[:SHOWN]
        )
        more = f" +{len(first) - SHOWN}" if len(first) > SHOWN else ""
        console.print(
            f"[bold]Protected[/bold]: {len(report.protected)} resources. `pulumi destroy` fails in destroy "
            f"wave {stop} on {named}{more}, after deleting {deleted} of {len(plan.resources)}; the rest "
            "stays (`pulumi state unprotect` first, on purpose).",
            highlight=False,
        )
        for protected in report.protected:
            if protected.retained_note:
                console.print(
                    f"  retained too, {order.name_of(protected.urn)}: once unprotected, destroy still "
                    f"deletes {protected.retained_note}",
                    highlight=False,
                    markup=False,
                )

    for finding in report.findings:
        console.print(f"[red]✗ {escape(finding.kind)}[/red] {escape(finding.message)}", highlight=False)
    _conclude(plan, console, report.findings, _duration(plan_schedule.total), verdict)
    return report.findings


def _conclude(
    plan: Plan, console: Console, findings: list[order.Finding], first_up: str, verdict: Verdict | None
) -> None:
    """The estimate and the findings: in the command's closing line (rampart.verdict), or a line here."""
    if verdict is not None:
        verdict.add(f"first up ≈ {first_up}")
        if findings:
            verdict.fail(count(len(findings), "destroy finding"))
        else:
            verdict.add("no destroy findings")
        return
    summary = (
        f"[red]{len(findings)} destroy finding(s)[/red] (exit 1)"
        if findings
        else "[green]no destroy findings[/green] (exit 0)"
    )
    console.print(f"order {plan.stack}: first up ≈ {first_up}, {summary}")
