"""Prove a refactor changed nothing: record every stack's plan export, then compare against it.

    python scripts/compare_plans.py record --dir out/baseline     # before the first move
    python scripts/compare_plans.py check  --dir out/baseline     # after the last one

`check` exits 1 and lists every added, removed or changed resource (by URN and field).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rampart.offline.compare import compare
from rampart.offline.plan import Plan
from rampart.offline.project import load_project
from rampart.offline.runner import project_root, run_plan

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
DirOption = Annotated[Path, typer.Option("--dir", help="Where the baseline exports live")]
StacksOption = Annotated[list[str] | None, typer.Option("--stack", help="Default: every stack file")]


def _stacks(chosen: list[str] | None) -> list[str]:
    return chosen or load_project(project_root()).stacks()


@app.command()
def record(directory: DirOption, stack: StacksOption = None) -> None:
    for name in _stacks(stack):
        run_plan(name).write(directory / f"{name}.json")
        print(f"recorded {name}")


@app.command()
def check(directory: DirOption, stack: StacksOption = None) -> None:
    failed = False
    for name in _stacks(stack):
        result = compare(Plan.read(directory / f"{name}.json"), run_plan(name))
        print(f"{name}: {'identical' if result.identical else 'CHANGED'}")
        for line in result.lines():
            print(f"  {line}")
        failed |= not result.identical
    print("plans FAILED: see the changes above" if failed else "plans identical")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    app()
