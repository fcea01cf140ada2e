"""The proof as a matrix: a terminal table, JSON (evidence for reviews and tools) or Markdown."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from rampart.paths.model import LAYERS, PathResult, Proof, summary_by_layer

SHORT = {
    "dns": "dns",
    "load-balancer": "lb",
    "gateway": "gw",
    "jwt": "jwt",
    "network": "net",
    "security-groups": "sg",
    "mesh-mtls": "mtls",
    "mesh-authz": "authz",
    "mesh-egress": "egr",
    "tls": "tls",
    "credentials": "cred",
    "broker-permissions": "perm",
    "imds": "imds",
    "telemetry": "tele",
}
SYMBOL = {"allows": "✓", "refuses": "✗", "n/a": "·", "pending": "…"}
LEGEND = (
    "✓ the layer lets the path through  ✗ it refuses it  · not crossed  … pending (phase 2)  "
    "refusals: independent enforcement points refusing (required layers in brackets)"
)


def layers_used(proof: Proof) -> list[str]:
    used = {c.layer for r in proof.results for c in r.checks}
    return [layer for layer in LAYERS if layer in used]


def cells(result: PathResult, layers: list[str]) -> list[str]:
    row = []
    for layer in layers:
        check = result.check(layer)
        row.append(SYMBOL[check.verdict] if check else "")
    return row


def refusal_cell(result: PathResult) -> str:
    if result.spec.expect == "carry":
        return ""
    required = ",".join(SHORT[r] for r in sorted(result.spec.required))
    return f"{result.independent_refusals}/{result.spec.minimum}" + (f" [{required}]" if required else "")


def render_table(proof: Proof, console: Console) -> None:
    layers = layers_used(proof)
    table = Table(title=f"Paths of {proof.stack}", show_lines=False)
    table.add_column("path", overflow="fold")
    table.add_column("must")
    for layer in layers:
        table.add_column(SHORT[layer], justify="center")
    table.add_column("refusals")
    table.add_column("verdict")
    for result in proof.results:
        style = None if result.ok else "bold red"
        table.add_row(
            f"{result.spec.kind}: {result.spec.source} -> {result.spec.destination}"
            + (f" ({result.spec.detail})" if result.spec.detail else ""),
            result.spec.expect,
            *cells(result, layers),
            refusal_cell(result),
            result.overall,
            style=style,
        )
    console.print(table)
    console.print(LEGEND, highlight=False)
    console.print("layers: " + ", ".join(f"{SHORT[layer]}={layer}" for layer in layers), highlight=False)
    for note in proof.notes:
        console.print(f"note: {note}", highlight=False)
    render_problems(proof, console)


def verdict_failures(proof: Proof) -> list[str]:
    return proof.verdict_failures()


def verdict_counts(proof: Proof) -> str:
    return proof.verdict_counts()


def table_text(proof: Proof) -> str:
    """The table as plain text (for --out)."""
    recorder = Console(record=True, width=220, file=io.StringIO(), color_system=None)
    render_table(proof, recorder)
    return recorder.export_text()


def render_problems(proof: Proof, console: Console) -> None:
    if proof.ok:
        return
    counts = summary_by_layer(proof.results)
    console.print(
        "broken or open paths by layer: " + ", ".join(f"{layer} {n}" for layer, n in sorted(counts.items())),
        highlight=False,
    )
    for line in proof.problems():
        console.print(f"FAIL {line}", highlight=False, markup=False, soft_wrap=True)


def to_json(proof: Proof) -> dict[str, Any]:
    return {
        "stack": proof.stack,
        "ok": proof.ok,
        "verdict": proof.verdict_line(),
        "layers": dict(LAYERS),
        "counts": {
            "must_carry": len(proof.carry),
            "carried": sum(1 for r in proof.carry if r.ok),
            "must_refuse": len(proof.refuse),
            "refused": sum(1 for r in proof.refuse if r.ok),
        },
        "notes": list(proof.notes),
        "paths": [
            {
                "kind": r.spec.kind,
                "source": r.spec.source,
                "destination": r.spec.destination,
                "detail": r.spec.detail,
                "expect": r.spec.expect,
                "overall": r.overall,
                "independent_refusals": r.independent_refusals,
                "required_refusals": sorted(r.spec.required),
                "minimum_refusals": r.spec.minimum,
                "checks": [{"layer": c.layer, "verdict": c.verdict, "reason": c.reason} for c in r.checks],
                "problems": list(r.problems),
            }
            for r in proof.results
        ],
    }


def render_json(proof: Proof) -> str:
    return json.dumps(to_json(proof), indent=2, ensure_ascii=False)


def render_markdown(proof: Proof) -> str:
    layers = layers_used(proof)
    lines = [
        f"# Paths of `{proof.stack}`",
        "",
        f"**{proof.verdict_line()}**",
        "",
        LEGEND,
        "",
        "| path | must | " + " | ".join(SHORT[layer] for layer in layers) + " | refusals | verdict |",
        "|---|---|" + "|".join(":-:" for _ in layers) + "|---|---|",
    ]
    for result in proof.results:
        path = f"{result.spec.kind}: {result.spec.source} → {result.spec.destination}" + (
            f" ({result.spec.detail})" if result.spec.detail else ""
        )
        verdict = result.overall if result.ok else f"**{result.overall}**"
        lines.append(
            f"| {path.replace('|', '/')} | {result.spec.expect} | "
            + " | ".join(cells(result, layers))
            + f" | {refusal_cell(result)} | {verdict} |"
        )
    lines += ["", "Layers: " + ", ".join(f"`{SHORT[layer]}` {layer}" for layer in layers), ""]
    lines += [f"> {note}" for note in proof.notes]
    if not proof.ok:
        lines += ["", "## What breaks", ""] + [f"- {line}" for line in proof.problems()]
    return "\n".join(lines) + "\n"
