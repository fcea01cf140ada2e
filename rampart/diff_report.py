"""`rampart diff`: two plan exports shown the way `pulumi preview` shows a change, data loss first."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rampart.offline.diff import OPS, PlanDiff, Step
from rampart.verdict import Verdict, count

# The symbols and colours `pulumi preview` uses for each step.
SYMBOLS = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}
STYLES = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}


def _info(step: Step) -> str:
    parts = []
    if step.diff:
        parts.append(f"[diff: {''.join(step.diff)}]")
    if step.replaced_by:
        parts.append(f"replaced by {', '.join(step.replaced_by)}")
    if step.delete_before_replace:
        parts.append("delete before replace")
    if step.aliased_from:
        parts.append(f"aliased from {step.aliased_from.rsplit('::', 1)[-1]}")
    if step.protected:
        parts.append("protected: `pulumi up` stops on it")
    if step.fails:
        parts.append(f"fails: {step.fails}")
    return "; ".join(parts)


def _table(steps: list[Step], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, show_header=title is None)
    table.add_column("", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Plan", no_wrap=True)
    table.add_column("Info", overflow="fold")
    for step in steps:
        style = STYLES[step.op]
        table.add_row(
            Text(SYMBOLS[step.op], style=style),
            Text(step.type),
            Text(step.name),
            Text(step.op, style=style),
            Text(_info(step)),
        )
    return table


def _totals(result: PlanDiff) -> list[str]:
    counts = result.counts()
    return [f"{counts[op]} to {op}" for op in OPS if counts[op]] + [f"{result.unchanged} unchanged"]


def render(result: PlanDiff, before: Path, after: Path, console: Console, verdict: Verdict) -> None:
    """Print the change; add its outcome to ``verdict`` (a stateful resource replaced or deleted, or a
    step `pulumi up` would fail at, fails it)."""
    console.print(Text(f"Previewing update ({result.stack}): {before} -> {after}", style="bold"))
    lost = result.lost
    if lost:
        console.print()
        console.print(
            _table(lost, title="Stateful resources replaced or deleted (their data goes with them):")
        )
    others = result.others
    if others:
        console.print()
        console.print(_table(others))
    console.print()
    console.print("Resources:")
    counts = result.counts()
    for op in OPS:
        if counts[op]:
            console.print(
                Text.assemble(("    ", ""), (f"{SYMBOLS[op]:<2}", STYLES[op]), f"{counts[op]} to {op}")
            )
    console.print(f"    {result.unchanged} unchanged")
    replaced = [s.name for s in lost if s.op == "replace"]
    deleted = [s.name for s in lost if s.op == "delete"]
    if replaced:
        verdict.fail(f"{count(len(replaced), 'stateful resource')} would be replaced ({', '.join(replaced)})")
    if deleted:
        verdict.fail(f"{count(len(deleted), 'stateful resource')} would be deleted ({', '.join(deleted)})")
    for step in result.failing:
        verdict.fail(f"`pulumi up` would fail at {step.name}: {step.fails}")
    verdict.add(
        ", ".join(_totals(result)) if result.changed else f"no changes ({result.unchanged} unchanged)"
    )
