"""`rampart`: see the whole platform plan, and its Kubernetes manifests, without any cloud account."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from rampart.config import ConfigError
from rampart.graph import render as render_graph
from rampart.offline import policy_report, stateful, summary
from rampart.offline.gate import GateError, discover_packs, run_gate
from rampart.offline.manifests import write_manifests
from rampart.offline.plan import Plan, PlanFileError
from rampart.offline.project import StackFileError, load_project, load_stack_config
from rampart.offline.runner import project_root, run_plan, stack_platform_config

app = typer.Typer(
    help="Rampart: plan the platform offline, under the Pulumi SDK's mocks, from a stack's config.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Piped output (CI logs) gets a wide page instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 180)

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name: stacks/Pulumi.<stack>.yaml")]
ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", help="Directory holding Pulumi.yaml (default: found upwards from here)"),
]
T = TypeVar("T")


@contextmanager
def _user_errors(stack: str | None = None) -> Iterator[None]:
    """Bad input ends in one line per problem and exit code 1, never a traceback."""
    try:
        yield
    except ConfigError as exc:
        where = f" for stack {stack!r}" if stack else ""
        err.print(f"[red]error:[/red] invalid configuration{where}:", highlight=False)
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    except (StackFileError, PlanFileError, GateError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _plan(stack: str, project: Path | None) -> Plan:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    with _user_errors(stack):
        return run_plan(stack, project)


def _guard(fn: Callable[[], T], stack: str | None = None) -> T:
    with _user_errors(stack):
        return fn()


@app.command()
def plan(
    stack: StackOption,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the plan as a `pulumi stack export` (v3) file")
    ] = None,
    project: ProjectOption = None,
    no_policy: Annotated[bool, typer.Option("--no-policy", help="Skip the policy gate")] = False,
) -> None:
    """Run the real program under mocks, summarise every resource it would register, and run
    the policy packs against it (exit 1 on any mandatory violation)."""
    captured = _plan(stack, project)
    summary.render(captured, out, _guard(lambda: stack_platform_config(stack, project), stack))
    if out_file is not None:
        _guard(lambda: captured.write(out_file), stack)
        out.print(f"wrote {out_file} ({len(captured.resources)} resources, secrets redacted)")
    lost = _check_stateful(captured, project)
    if not no_policy:
        _gate(captured, project)
    if lost:
        raise typer.Exit(1)


def _check_stateful(captured: Plan, project: Path | None) -> bool:
    """Compare the plan's stateful URNs with the stack's golden file; True when one would be lost."""
    path = stateful.golden_path(project or project_root(), captured.stack)
    if not path.is_file():
        out.print(f"[yellow]note:[/yellow] no {path.name} recorded yet: `rampart stateful --record`")
        return False
    config = _guard(lambda: stack_platform_config(captured.stack, project), captured.stack)
    drift = stateful.compare(stateful.read_golden(path), captured)
    for problem in drift.problems(captured.stack, protected=config.environment in ("staging", "prod")):
        err.print(f"[red]stateful:[/red] {problem}", highlight=False, markup=False)
    return bool(drift.lost)


@app.command(name="stateful")
def stateful_command(
    stack: StackOption,
    record: Annotated[
        bool, typer.Option("--record", help="Write the plan's stateful URNs as the golden file")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Check (or --record) the URNs of the stack's stateful resources: a database, broker, key or
    namespace whose URN changes would be deleted and created anew."""
    captured = _plan(stack, project)
    path = stateful.golden_path(project or project_root(), stack)
    if record:
        count = stateful.write_golden(path, captured)
        out.print(f"recorded {count} stateful URNs in {path}")
        return
    if not path.is_file():
        err.print(f"[red]error:[/red] {path} does not exist: record it with --record")
        raise typer.Exit(1)
    if _check_stateful(captured, project):
        raise typer.Exit(1)
    out.print(f"{len(stateful.stateful_urns(captured))} stateful URNs match {path}")


def _gate(captured: Plan, project: Path | None) -> None:
    root = project or project_root()

    def run() -> policy_report.GateResult:
        project_files = load_project(root)
        known = captured.stack in project_files.stacks()
        stack_values = load_stack_config(project_files, captured.stack).values if known else {}
        return run_gate(captured, discover_packs(root), root / "policies" / "config", stack_values)

    result = _guard(run, captured.stack)
    policy_report.render(result, out)
    if result.mandatory:
        raise typer.Exit(1)


@app.command()
def policy(
    plan_file: Annotated[Path, typer.Option("--file", "-f", help="A plan export (`rampart plan --out`)")],
    stack: Annotated[
        str | None,
        typer.Option("--stack", "-s", help="Enforce this stack's policy config (default: the plan's)"),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Run the policy packs against an existing plan export, as `pulumi preview` would."""
    captured = _guard(lambda: Plan.read(plan_file))
    if stack is not None:
        captured.stack = stack
    _gate(captured, project)


@app.command()
def manifests(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write one YAML file per object")],
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Plan this stack")] = None,
    plan_file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Use an existing plan export instead of planning")
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Write every Kubernetes object of the plan as YAML, ready for kubeconform or checkov."""
    if (stack is None) == (plan_file is None):
        err.print("[red]error:[/red] give exactly one of --stack or --file")
        raise typer.Exit(2)
    captured = _plan(stack, project) if stack else _guard(lambda: Plan.read(plan_file))  # type: ignore[arg-type]
    written = write_manifests(captured, out_dir)
    out.print(f"wrote {len(written)} manifests under {out_dir}/")


@app.command()
def graph(
    stack: StackOption,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Diagram file: .svg, .mmd or .md (Mermaid)")],
    project: ProjectOption = None,
) -> None:
    """Draw the services, who may call whom, public routes, databases and queues."""
    config = _guard(lambda: stack_platform_config(stack, project), stack)
    try:
        kind = render_graph(config, out_file)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out.print(f"wrote {out_file} ({kind}, {len(config.services)} services)")


def main() -> None:  # pragma: no cover - console entry point
    app()
