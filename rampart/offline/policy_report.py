"""Print the policy gate's findings grouped by policy, mandatory first."""

from __future__ import annotations

from itertools import groupby

from rich.console import Console
from rich.markup import escape

from rampart.offline.gate import Diagnostic, GateResult
from rampart.verdict import Verdict, count

__all__ = ["GateResult", "judge", "render"]

ADVISORY_SHOWN = 3
ORDER = {"mandatory": 0, "remediate": 0, "advisory": 1}


def render(result: GateResult, console: Console) -> None:
    policies = sum(len(p.policies) for p in result.packs)
    packs = ", ".join(f"{p.name}@{p.version} ({len(p.policies)})" for p in result.packs)
    console.print(
        f"[bold]Policy gate[/bold]: {len(result.packs)} packs, {policies} policies — {packs}; "
        f"{result.resources} resources analysed in {result.seconds:.1f} s"
    )
    reasons = {(p.name, policy): reason for p in result.packs for policy, reason in p.reasons.items()}

    def key(d: Diagnostic) -> tuple[int, str, str]:
        return (ORDER.get(d.level, 1), d.pack, d.policy)

    for (_, pack, policy), group in groupby(sorted(result.diagnostics, key=key), key=key):
        found = list(group)
        first = found[0]
        mark = "[red]✗ mandatory[/red]" if first.level != "advisory" else "[yellow]! advisory [/yellow]"
        reason = reasons.get((pack, policy)) or reasons.get((pack, "all"))
        suffix = f" — relaxed: {reason}" if first.level == "advisory" and reason else ""
        heading = f"{pack}/{policy} ({first.severity}) — {count(len(found), 'violation')}{suffix}"
        console.print(f"{mark} {escape(heading)}", soft_wrap=True)
        shown = found if first.level != "advisory" else found[:ADVISORY_SHOWN]
        for diagnostic in shown:
            detail = diagnostic.message.splitlines()[-1]
            console.print(
                f"    {diagnostic.urn}\n      {detail}", highlight=False, markup=False, soft_wrap=True
            )
        if len(found) > len(shown):
            console.print(f"    ... and {len(found) - len(shown)} more")
    for report in result.packs:
        for policy, reason in sorted(report.not_applicable.items()):
            console.print(f"  [dim]- not applicable: {escape(f'{report.name}/{policy}: {reason}')}[/dim]")


def judge(result: GateResult, verdict: Verdict) -> None:
    """Add the gate's outcome to a command's verdict: mandatory violations fail it."""
    advisory = f"{len(result.advisory)} advisory"
    if result.mandatory:
        verdict.fail(
            f"policy gate FAILED ({count(len(result.mandatory), 'mandatory violation')}, {advisory})"
        )
    else:
        verdict.add(f"policy gate passed (0 mandatory, {advisory})")
