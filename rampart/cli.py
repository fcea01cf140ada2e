"""`rampart`: see the whole platform plan, and its Kubernetes manifests, without any cloud account."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Annotated, Protocol, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from components.core.protection import is_protected
from rampart import diff_report, progress, vault_route
from rampart.config import ConfigError, PlatformConfig
from rampart.config import reference as config_reference
from rampart.graph import render as render_graph
from rampart.offline import policy_report, stateful, summary
from rampart.offline.diff import DiffError
from rampart.offline.diff import diff as diff_plans
from rampart.offline.first_up import first_up_targets
from rampart.offline.gate import GateError, discover_packs, run_gate
from rampart.offline.manifests import chart_releases, sync_manifests
from rampart.offline.plan import Plan, PlanFileError
from rampart.offline.project import StackFileError, load_project, load_stack_config
from rampart.offline.runner import project_root, run_plan, stack_platform_config
from rampart.order_report import render as render_order
from rampart.verdict import Verdict, console, count

app = typer.Typer(
    help="Rampart: plan the platform offline, under the Pulumi SDK's mocks, from a stack's config.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Styled on a terminal; plain text on a pipe (CI logs), laid out wide (rampart.verdict.LOG_WIDTH).
out = console()
err = console(stderr=True)

# As the Pulumi CLI does, the stack comes from --stack, else from $PULUMI_STACK.
STACK_ENV = "PULUMI_STACK"
StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        "-s",
        envvar=STACK_ENV,
        help="Stack name: stacks/Pulumi.<stack>.yaml",
    ),
]
# Commands that plan a stack or read an export (--file): the environment fills the stack only without --file.
SourceStackOption = Annotated[
    str | None,
    typer.Option("--stack", "-s", help="Plan this stack (default: $PULUMI_STACK, unless --file is given)"),
]
ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", help="Directory holding Pulumi.yaml (default: found upwards from here)"),
]
PlanFileOption = Annotated[
    Path | None, typer.Option("--file", "-f", help="Use an existing plan export instead of planning")
]
T = TypeVar("T")
R_contra = TypeVar("R_contra", contravariant=True)


def _version(value: bool) -> None:
    if value:
        out.print(
            f"rampart {metadata.version('rampart')} (pulumi {metadata.version('pulumi')})", highlight=False
        )
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    pass


def _error(message: str) -> None:
    err.print(Text.assemble(("error:", "red"), f" {message}"), highlight=False, soft_wrap=True)


# What each kind of bad input means for the command's verdict.
_INPUT_ERRORS = {StackFileError: "unusable stack file", PlanFileError: "unusable plan file"}


@contextmanager
def _user_errors(stack: str | None = None, verdict: Verdict | None = None) -> Iterator[None]:
    """Bad input ends in one line per problem, the verdict and exit code 1, never a traceback."""
    verdict = verdict or Verdict("rampart")
    try:
        yield
    except ConfigError as exc:
        where = f" for stack {stack!r}" if stack else ""
        err.print(f"[red]error:[/red] invalid configuration{escape(where)}:", highlight=False)
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
        verdict.stop(out, err, f"invalid configuration ({count(len(exc.problems), 'problem')})")
    except (StackFileError, PlanFileError, GateError) as exc:
        _error(str(exc))
        verdict.stop(out, err, _INPUT_ERRORS.get(type(exc), "the policy gate could not run"))


def _plan(stack: str, project: Path | None, verdict: Verdict | None = None) -> Plan:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    with _user_errors(stack, verdict), progress.shown():
        return run_plan(stack, project)


def _guard(fn: Callable[[], T], stack: str | None = None, verdict: Verdict | None = None) -> T:
    with _user_errors(stack, verdict):
        return fn()


def _stack_name(stack: str | None, verdict: Verdict, project: Path | None) -> str:
    """--stack, else $PULUMI_STACK (typer reads it for StackOption); neither is a usage error."""
    stack = stack or os.environ.get(STACK_ENV) or None
    if stack:
        return stack
    known = _guard(lambda: load_project(project or project_root()).stacks(), None, verdict)
    _error(f"no stack: give --stack <name> or set {STACK_ENV} (stacks: {', '.join(known) or 'none'})")
    verdict.stop(out, err, "no stack given", code=2)


def _one_source(stack: str | None, plan_file: Path | None, verdict: Verdict) -> str | None:
    """Exactly one of --stack (or $PULUMI_STACK) and --file: the stack to plan, or None for the file."""
    if stack is not None and plan_file is not None:
        _error("give exactly one of --stack or --file")
        verdict.stop(out, err, "both --stack and --file given", code=2)
    if plan_file is not None:
        return None
    if stack is None and not os.environ.get(STACK_ENV):
        _error(f"give exactly one of --stack or --file (or set {STACK_ENV})")
        verdict.stop(out, err, "no stack and no plan file given", code=2)
    return stack or os.environ[STACK_ENV]


def _source_plan(stack: str | None, plan_file: Path | None, project: Path | None, verdict: Verdict) -> Plan:
    """The plan of --stack, or the export --file names (exactly one of them, see `_one_source`)."""
    name = _one_source(stack, plan_file, verdict)
    if name is not None:
        return _plan(name, project, verdict)
    assert plan_file is not None
    export = plan_file
    return _guard(lambda: Plan.read(export), None, verdict)


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


MATRIX_FORMATS = ("table", "json", "markdown")
MatrixFormatOption = Annotated[str, typer.Option("--format", help="table | json | markdown")]
MatrixOutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Write the matrix to this file")]


class _MatrixReport(Protocol[R_contra]):
    """What `paths` and `access` each render their matrix with (rampart/paths/report.py,
    rampart/access/report.py): a rich table for the terminal, text for a file or a pipe."""

    def render_table(self, result: R_contra, console: Console, /) -> None: ...
    def table_text(self, result: R_contra, /) -> str: ...
    def render_json(self, result: R_contra, /) -> str: ...
    def render_markdown(self, result: R_contra, /) -> str: ...
    def render_problems(self, result: R_contra, console: Console, /) -> None: ...


def _check_matrix_format(output: str, verdict: Verdict) -> None:
    if output not in MATRIX_FORMATS:
        _error(f"--format must be {', '.join(MATRIX_FORMATS[:-1])} or {MATRIX_FORMATS[-1]}, not {output!r}")
        verdict.stop(out, err, "unknown format", code=2)


def _plan_and_config(
    stack: str | None, plan_file: Path | None, project: Path | None, verdict: Verdict
) -> tuple[Plan, PlatformConfig]:
    """The plan (see `_source_plan`) and the typed config of its stack, which a matrix is judged by."""
    captured = _source_plan(stack, plan_file, project, verdict)
    return captured, _guard(lambda: stack_platform_config(captured.stack, project), captured.stack, verdict)


def _write_matrix(
    result: T, report: _MatrixReport[T], *, output: str, out_file: Path | None, stack: str, verdict: Verdict
) -> None:
    """The terminal gets a rich table; --out or another --format gets text (to the file or stdout),
    and the problems go to stderr so the text stays clean."""
    if output == "table" and out_file is None:
        report.render_table(result, out)
        return
    text = {"table": report.table_text, "json": report.render_json, "markdown": report.render_markdown}[
        output
    ](result)
    if out_file is None:
        out.file.write(text)
        out.file.flush()
    else:
        _guard(lambda: out_file.write_text(text), stack, verdict)
        verdict.add(f"matrix in {_shown(out_file)}")
    report.render_problems(result, err)


@app.command()
def plan(  # noqa: PLR0917 - one parameter per command-line option
    stack: StackOption = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the plan as a `pulumi stack export` (v3) file")
    ] = None,
    project: ProjectOption = None,
    no_policy: Annotated[bool, typer.Option("--no-policy", help="Skip the policy gate")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also count the resources by type")
    ] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Full image references in the services table")] = False,
) -> None:
    """Run the real program under mocks, summarise every resource it would register, and run
    the policy packs against it. Exit 1 when a recorded stateful resource would be deleted or a
    mandatory policy is violated; the last line says which."""
    verdict = Verdict("plan")
    name = _stack_name(stack, verdict, project)
    captured = _plan(name, project, verdict)
    config = _guard(lambda: stack_platform_config(name, project), name, verdict)
    summary.render(captured, out, config, verbose=verbose, wide=wide)
    verdict.add(count(len(captured.resources), "resource"))
    if out_file is not None:
        _guard(lambda: captured.write(out_file), name, verdict)
        out.print(f"wrote {escape(str(out_file))} ({len(captured.resources)} resources, secrets redacted)")
    _check_stateful(captured, project, config, verdict)
    if no_policy:
        verdict.add("policy gate skipped (--no-policy)")
    else:
        _gate(captured, project, verdict)
    verdict.finish(out, err)


def _check_stateful(
    captured: Plan, project: Path | None, config: PlatformConfig, verdict: Verdict, *, strict: bool = False
) -> None:
    """Compare the plan's stateful URNs with the stack's golden file. A recorded URN the plan lost
    fails the verdict; a new, unrecorded one is a note (``strict``: a failure, as `make test` has it)."""
    path = stateful.golden_path(project or project_root(), captured.stack)
    record = stateful.record_command(captured.stack)
    if not path.is_file():
        out.print(
            Text.assemble(("note: ", "cyan"), f"no {_shown(path)} recorded yet: `{record}`"), soft_wrap=True
        )
        verdict.add(f"no stateful URNs recorded yet (`{record}`)")
        return
    drift = stateful.compare(stateful.read_golden(path), captured)
    protected = is_protected(config.environment)
    for message in drift.lost_messages(captured.stack, protected):
        err.print(
            Text.assemble(("✗ stateful resource lost: ", "bold red"), message),
            highlight=False,
            soft_wrap=True,
        )
    for message in drift.new_messages(captured.stack):
        out.print(Text.assemble(("note: ", "cyan"), message), highlight=False, soft_wrap=True)
    if drift.lost:
        fate = "would stop `pulumi up` (protected)" if protected else "would be deleted"
        verdict.fail(f"{count(len(drift.lost), 'stateful resource')} {fate}")
    if drift.new:
        unrecorded = f"{count(len(drift.new), 'new stateful resource')} not recorded (`{record}`)"
        (verdict.fail if strict else verdict.add)(unrecorded)


@app.command(name="stateful")
def stateful_command(
    stack: StackOption = None,
    record: Annotated[
        bool, typer.Option("--record", help="Write the plan's stateful URNs as the golden file")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Check (or --record) the URNs of the stack's stateful resources: a database, broker, key or
    namespace whose URN changes would be deleted and created anew. Checking fails on a lost URN and
    on a new one not recorded yet, as `make test` does."""
    verdict = Verdict("stateful")
    name = _stack_name(stack, verdict, project)
    captured = _plan(name, project, verdict)
    path = stateful.golden_path(project or project_root(), name)
    if record:
        recorded = stateful.write_golden(path, captured)
        verdict.add(f"recorded {count(recorded, 'stateful URN')} in {_shown(path)}")
        verdict.finish(out, err)
        return
    if not path.is_file():
        _error(f"{_shown(path)} does not exist: record it with `{stateful.record_command(name)}`")
        verdict.stop(out, err, "no golden file")
    config = _guard(lambda: stack_platform_config(name, project), name, verdict)
    _check_stateful(captured, project, config, verdict, strict=True)
    if verdict.passed:
        verdict.add(f"{count(len(stateful.stateful_urns(captured)), 'stateful URN')} match {_shown(path)}")
    verdict.finish(out, err)


def _gate(captured: Plan, project: Path | None, verdict: Verdict | None = None) -> None:
    root = project or project_root()

    def run() -> policy_report.GateResult:
        project_files = load_project(root)
        known = captured.stack in project_files.stacks()
        stack_values = load_stack_config(project_files, captured.stack).values if known else {}
        with progress.shown():
            return run_gate(captured, discover_packs(root), root / "policies" / "config", stack_values)

    result = _guard(run, captured.stack, verdict)
    policy_report.render(result, out)
    if verdict is not None:
        policy_report.judge(result, verdict)
    elif result.mandatory:
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
    """Run the policy packs against an existing plan export, as `pulumi preview` would; exit 1 on
    a mandatory violation."""
    verdict = Verdict("policy")
    captured = _guard(lambda: Plan.read(plan_file), stack, verdict)
    if stack is not None:
        captured.stack = stack
    _gate(captured, project, verdict)
    verdict.finish(out, err)


@app.command()
def manifests(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory to write one YAML file per object")],
    stack: SourceStackOption = None,
    plan_file: PlanFileOption = None,
    project: ProjectOption = None,
) -> None:
    """Write every Kubernetes object the program declares as YAML, ready for kubeconform or checkov,
    and remove the files an earlier run wrote for objects the plan no longer has. The objects Helm
    charts render at deploy time are not among them: `rampart render` renders and checks those."""
    verdict = Verdict("manifests")
    captured = _source_plan(stack, plan_file, project, verdict)
    written = _guard(lambda: sync_manifests(captured, out_dir), captured.stack, verdict)
    stale = f", removed {count(len(written.removed), 'stale file')}" if written.removed else ""
    out.print(f"wrote {count(len(written.written), 'manifest')} under {escape(_shown(out_dir))}/{stale}")
    releases = chart_releases(captured)
    if releases:
        out.print(
            Text.assemble(
                ("not included: ", "cyan"),
                f"the objects {count(len(releases), 'Helm release')} render at deploy time "
                f"({', '.join(releases)}); `rampart render --stack {captured.stack}` renders and checks them",
            ),
            soft_wrap=True,
        )
    verdict.add(f"{count(len(written.written), 'manifest')} in {_shown(out_dir)}/{stale}")
    if releases:
        verdict.add(f"chart-rendered objects not included (`rampart render --stack {captured.stack}`)")
    verdict.finish(out, err)


@app.command()
def graph(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Diagram file: .svg, .mmd or .md (Mermaid)")],
    stack: StackOption = None,
    project: ProjectOption = None,
) -> None:
    """Draw the services, who may call whom, public routes, databases and queues, with a legend."""
    verdict = Verdict("graph")
    name = _stack_name(stack, verdict, project)
    config = _guard(lambda: stack_platform_config(name, project), name, verdict)
    try:
        kind = render_graph(config, out_file)
    except ValueError as exc:
        _error(str(exc))
        verdict.stop(out, err, "unknown diagram format", code=2)
    except OSError as exc:
        _error(f"{out_file}: cannot be written ({exc.strerror})")
        verdict.stop(out, err, "the diagram could not be written")
    verdict.add(f"wrote {_shown(out_file)} ({kind}, {count(len(config.services), 'service')})")
    verdict.finish(out, err)


@app.command(name="order")
def order_command(
    stack: SourceStackOption = None,
    plan_file: PlanFileOption = None,
    project: ProjectOption = None,
) -> None:
    """Create waves, a first `pulumi up` estimate with its critical path, and the destroy order; exit 1
    on a destroy finding (an object whose finalizing controller is not its prerequisite, or a retained
    resource whose prerequisites destroy would delete). Protected resources are listed, not failed."""
    verdict = Verdict("order")
    captured = _source_plan(stack, plan_file, project, verdict)
    try:
        render_order(captured, out, verdict)
    except ValueError as exc:  # a dependency cycle: the engine would refuse the program too
        _error(str(exc))
        verdict.stop(out, err, "a dependency cycle")
    verdict.finish(out, err)


@app.command(name="first-up")
def first_up_command(
    stack: SourceStackOption = None,
    plan_file: PlanFileOption = None,
    project: ProjectOption = None,
) -> None:
    """The URNs the first `pulumi up` of a stack with a private-only cluster endpoint targets, one per
    line on stdout: everything that needs no Kubernetes API (the VPC, the cluster, the databases...).
    Route the deploy runner's network to the new VPC, then run the full `up`. Nothing is printed when
    the endpoint is public (one full `up` does). See docs/bootstrap.md, "The first up of a private stack"."""
    verdict = Verdict("first-up")
    captured = _source_plan(stack, plan_file, project, verdict)
    targets = first_up_targets(captured)
    sys.stdout.write("".join(f"{urn}\n" for urn in targets))
    if targets:
        verdict.add(
            f"{count(len(targets), 'resource')} need no Kubernetes API: `pulumi up --target` each first"
        )
    else:
        verdict.add("no private cluster endpoint: one full `pulumi up`")
    verdict.finish(err, err)


@app.command(name="render")
def render_command(
    stack: StackOption = None,
    *,
    charts: Annotated[
        Path | None,
        typer.Option(
            "--charts",
            envvar="RAMPART_CHART_MIRROR",
            help="Chart mirror: <chart>-<version>.tgz or <chart>/<version>/ (default: chart repositories)",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write each release's manifests as <dir>/<release>.yaml"),
    ] = None,
    plan_file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Use an existing plan export of the stack")
    ] = None,
    helm: Annotated[str, typer.Option("--helm", envvar="RAMPART_HELM", help="The helm binary")] = "helm",
    project: ProjectOption = None,
) -> None:
    """Render every Helm release with its pinned chart (`helm template`) and validate what it would
    install: schemas, Pod Security level of the namespace, CRDs installed first, no object owned twice."""
    verdict = Verdict("render")
    try:
        from rampart.offline import render  # noqa: PLC0415 - needs the dev extras' validators
        from rampart.offline.schemas import reference_crd_schemas  # noqa: PLC0415
    except ImportError as exc:
        _error(f"{exc.name} is missing: pip install -e '.[dev]'")
        verdict.stop(out, err, "the renderer's dependencies are missing", code=2)
    stack = _stack_name(stack, verdict, project)
    if plan_file is None:
        captured = _plan(stack, project, verdict)
    else:
        captured = _guard(lambda: Plan.read(plan_file), stack, verdict)
    config = _guard(lambda: stack_platform_config(stack, project), stack, verdict)
    settings = render.RenderSettings(
        kube_version=render.kubernetes_version(captured, config.kubernetes.version),
        mirror=charts,
        crd_schemas=reference_crd_schemas(project or project_root()),
        runner=lambda args: render.run_helm(helm, args),
    )
    with progress.shown():
        results = render.render_plan(captured, settings)
    table = Table(title=f"Helm releases of {stack} (Kubernetes {settings.kube_version})")
    for column in ("release", "chart", "namespace", "result"):
        table.add_column(column)
    for release, chart, namespace, outcome in render.summary_rows(results):
        table.add_row(release, chart, namespace, outcome)
    out.print(table)
    for result in results:
        for line in result.problems:
            err.print(Text.assemble((f"{result.release.name}: ", "red"), line))
        for line in result.notes:
            out.print(Text.assemble((f"{result.release.name}: note: ", "yellow"), line))
    if out_dir is not None:
        written = render.write_rendered(results, out_dir)
        out.print(f"wrote {len(written)} rendered releases under {escape(_shown(out_dir))}/")
    failed = [result for result in results if not result.ok]
    if failed:
        verdict.fail(f"{count(len(failed), 'release')} with problems")
    verdict.add(f"{count(len(results), 'release')} rendered")
    verdict.finish(out, err)


@app.command(name="diff")
def diff_command(
    before: Annotated[Path, typer.Argument(help="The plan export before the change (`rampart plan --out`)")],
    after: Annotated[Path, typer.Argument(help="The plan export after it")],
    expect_no_changes: Annotated[
        bool, typer.Option("--expect-no-changes", help="Fail on any change, as `pulumi preview` does")
    ] = False,
) -> None:
    """What `pulumi up` would create, update, replace and delete to go from one plan export to another,
    preview style, stateful replacements and deletions first. Exit 1 when a stateful resource would be
    replaced or deleted, or `pulumi up` would fail at a step (an RDS major upgrade without its flags),
    or (with --expect-no-changes) on any change."""
    verdict = Verdict("diff")
    old = _guard(lambda: Plan.read(before), None, verdict)
    new = _guard(lambda: Plan.read(after), None, verdict)
    try:
        result = diff_plans(old, new)
    except DiffError as exc:
        _error(str(exc))
        verdict.stop(out, err, "the plans cannot be compared", code=2)
    diff_report.render(result, Path(_shown(before)), Path(_shown(after)), out, verdict)
    if expect_no_changes and result.changed:
        verdict.fail("changes found (--expect-no-changes)")
    verdict.finish(out, err)


@app.command(name="config-schema")
def config_schema_command(
    check: Annotated[
        bool, typer.Option("--check", help="Only check that the committed files are current (for CI)")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Write the config reference generated from the config models: the JSON Schemas editors validate
    stack and service files with (stacks/schemas/) and docs/configuration.md."""
    verdict = Verdict("config-schema")
    root = project or project_root()
    files = config_reference.generated_files(root)
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    if check:
        for path in stale:
            _error(f"{_shown(path)} is out of date: run `rampart config-schema`")
        if stale:
            verdict.fail(f"{count(len(stale), 'file')} out of date")
        else:
            verdict.add(f"{count(len(files), 'file')} current")
        verdict.finish(out, err)
        return
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        out.print(f"wrote {escape(_shown(path))}")
    verdict.add(f"{count(len(stale), 'file')} written, {len(files) - len(stale)} already current")
    verdict.finish(out, err)


@app.command(name="paths")
def paths_command(
    stack: SourceStackOption = None,
    plan_file: PlanFileOption = None,
    output: MatrixFormatOption = "table",
    out_file: MatrixOutOption = None,
    project: ProjectOption = None,
) -> None:
    """Every path the platform must carry and every path it must refuse, walked through each layer
    (NetworkPolicy, security groups, the mesh, Kong and the load balancer, DNS, credentials,
    observability); exit 1 naming the path and the layer when one breaks."""
    from rampart.paths import prove  # noqa: PLC0415 - the proof's models load only for this command
    from rampart.paths import report as paths_report  # noqa: PLC0415

    verdict = Verdict("paths")
    _check_matrix_format(output, verdict)
    captured, config = _plan_and_config(stack, plan_file, project, verdict)
    with progress.shown():
        proof = prove(captured, config)
    _write_matrix(
        proof, paths_report, output=output, out_file=out_file, stack=captured.stack, verdict=verdict
    )
    for failure in paths_report.verdict_failures(proof):
        verdict.fail(failure)
    verdict.add(paths_report.verdict_counts(proof))
    verdict.finish(out, err)


@app.command(name="access")
def access_command(
    stack: SourceStackOption = None,
    plan_file: PlanFileOption = None,
    output: MatrixFormatOption = "table",
    out_file: MatrixOutOption = None,
    project: ProjectOption = None,
) -> None:
    """Who can do what: each team (and anyone else the plan gives rights) by namespace by verb, from the
    plan's Roles, bindings and EKS access entries with Kubernetes RBAC semantics; exit 1 naming the
    violation when a team can act outside its own namespaces, reads Secrets or execs into pods, or anyone
    but the platform admins has cluster-wide rights."""
    from rampart.access import evaluate  # noqa: PLC0415 - the access model loads only for this command
    from rampart.access import report as access_report  # noqa: PLC0415
    from rampart.access.model import summary as access_summary  # noqa: PLC0415

    verdict = Verdict("access")
    _check_matrix_format(output, verdict)
    captured, config = _plan_and_config(stack, plan_file, project, verdict)
    access = evaluate(captured, config)
    _write_matrix(
        access, access_report, output=output, out_file=out_file, stack=captured.stack, verdict=verdict
    )
    for violation in access.violations:
        verdict.fail(violation)
    verdict.add(access_summary(access))
    verdict.finish(out, err)


# Vault phase 2 through a verified route (rampart/vault_route.py); what follows `--` is the command to run.
app.command(name="vault-phase2", context_settings=vault_route.CONTEXT_SETTINGS)(vault_route.command)


def main() -> None:  # pragma: no cover - console entry point
    app()
