"""Print the policy gate's findings grouped by policy, mandatory first."""

from __future__ import annotations

from itertools import groupby

from rich.console import Console

from rampart.offline.gate import Diagnostic, GateResult

__all__ = ["GateResult", "render"]

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
        console.print(f"{mark} {pack}/{policy} ({first.severity}) — {len(found)} violation(s){suffix}")
        shown = found if first.level != "advisory" else found[:ADVISORY_SHOWN]
        for diagnostic in shown:
            detail = diagnostic.message.splitlines()[-1]
            console.print(f"    {diagnostic.urn}\n      {detail}", highlight=False, markup=False)
        if len(found) > len(shown):
            console.print(f"    ... and {len(found) - len(shown)} more")
    for report in result.packs:
        for policy, reason in sorted(report.not_applicable.items()):
            console.print(f"  [dim]- not applicable: {report.name}/{policy}: {reason}[/dim]")
    status = "[red]FAILED[/red]" if result.mandatory else "[green]passed[/green]"
    console.print(
        f"Policy gate {status}: {len(result.mandatory)} mandatory violation(s), "
        f"{len(result.advisory)} advisory"
    )
