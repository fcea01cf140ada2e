"""The access matrix: a terminal table, JSON (evidence for reviews and tools) or Markdown."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from rampart.access.model import Access, Cell, grants_text, summary

NOWHERE = "nothing"


def _rows(access: Access) -> list[tuple[str, str, str, str, str]]:
    """One row per principal and namespace where it may do anything (cluster-wide rows last), and one
    per team saying where else it may act: nowhere, when isolation holds."""
    rows = []
    for principal in access.principals:
        cells = [c for c in access.cells if c.principal.key == principal.key and c.grants]
        cluster_wide = {source for c in cells if c.namespace is None for source in c.sources}
        for cell in cells:
            if cell.namespace is not None and set(cell.sources) <= cluster_wide:
                continue  # shown once, on its cluster-wide row
            rows.append(
                (
                    principal.key,
                    _where(cell),
                    cell.owner,
                    cell.summary,
                    "; ".join(cell.sources),
                )
            )
        if principal.kind == "team":
            elsewhere = [c for c in cells if c.owner != f"team {principal.team}"]
            if not elsewhere:
                rows.append((principal.key, "every other namespace, cluster-wide", "", NOWHERE, ""))
    return rows


def _where(cell: Cell) -> str:
    return cell.namespace if cell.namespace is not None else "(cluster-wide)"


def render_table(access: Access, console: Console) -> None:
    table = Table(title=f"Access on {access.stack}", show_lines=False)
    for column in ("who", "namespace", "owner", "can", "granted by"):
        table.add_column(column, overflow="fold")
    for row in _rows(access):
        table.add_row(*row, style="bold red" if _violating(access, row) else None)
    console.print(table)
    for note in access.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    render_problems(access, console)


def _violating(access: Access, row: tuple[str, str, str, str, str]) -> bool:
    return any(
        v.startswith(row[0] + " ")
        and (f" {row[1]} " in v or (row[1] == "(cluster-wide)" and "cluster-wide" in v))
        for v in access.violations
    )


def render_problems(access: Access, console: Console) -> None:
    for line in access.violations:
        console.print(f"FAIL {line}", highlight=False, markup=False, soft_wrap=True)


def table_text(access: Access) -> str:
    recorder = Console(record=True, width=220, file=io.StringIO(), color_system=None)
    render_table(access, recorder)
    return recorder.export_text()


def to_json(access: Access) -> dict[str, Any]:
    return {
        "stack": access.stack,
        "ok": access.ok,
        "summary": summary(access),
        "violations": list(access.violations),
        "notes": list(access.notes),
        "namespaces": {ns: access.owners[ns] for ns in access.namespaces},
        "principals": [
            {
                "key": p.key,
                "kind": p.kind,
                "team": p.team,
                "groups": sorted(p.identity.groups),
                "aws_principals": list(p.principal_arns),
            }
            for p in access.principals
        ],
        "access": [
            {
                "who": cell.principal.key,
                "namespace": cell.namespace,
                "owner": cell.owner,
                "can": cell.capabilities,
                "rules": grants_text(cell.rules),
                "granted_by": cell.sources,
            }
            for cell in access.granted()
        ],
    }


def render_json(access: Access) -> str:
    return json.dumps(to_json(access), indent=2, ensure_ascii=False) + "\n"


def render_markdown(access: Access) -> str:
    lines = [
        f"# Access on `{access.stack}`",
        "",
        f"**{'passed' if access.ok else 'FAILED'}: {summary(access)}**",
        "",
        "| who | namespace | owner | can | granted by |",
        "|---|---|---|---|---|",
    ]
    for row in _rows(access):
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    lines += [""] + [f"> {note}" for note in access.notes]
    if access.violations:
        lines += ["", "## Violations", ""] + [f"- {line}" for line in access.violations]
    return "\n".join(lines) + "\n"
