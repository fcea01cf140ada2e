"""Render every Helm release of a plan with its pinned chart, and check what it would install.

``helm template`` stands in for what ``kubernetes:helm.sh/v3:Release`` runs at deploy time (the
provider drives Helm's install action with the same chart, values, name and namespace):

* the chart comes from a local mirror (``--charts DIR``) or, online, from the release's repository;
* values are the release's ``values`` input (secrets and unknowns replaced by placeholder strings,
  nulls dropped as Pulumi drops them unless ``allowNullValues``), given to Helm as a values file;
* the Kubernetes version is the plan's (EKS cluster version, else the stack's
  ``kubernetes.version``); the API versions beyond the built-in ones are those served by the CRDs of
  the releases this one depends on (transitively): at first install only those exist, so a chart
  that asks ``.Capabilities.APIVersions.Has`` sees what it would see on a fresh cluster;
* CRDs are included (the provider installs a chart's ``crds/`` unless ``skipCrds``), test hooks are
  not (the provider never runs ``helm test``), other hooks are (unless ``disableHooks``).

Then every object is checked like Rampart's own (:mod:`rampart.offline.schemas`): core kinds with
kubernetes-validate, custom resources against the reference CRD schemas, else against a CRD the
releases render; pods against the Pod Security Standards level their namespace enforces in the plan
(:mod:`rampart.offline.pss`); a custom resource whose CRD no earlier release installs, and an object
two owners both create, would fail the install and are problems too.

Known differences from a real install: ``lookup`` returns nothing under ``helm template`` (the
report notes every chart whose templates call it); admission webhooks and controllers do not run.

Chart mirror layout (``--charts DIR``), either form per chart:
  ``DIR/<chart>-<version>.tgz``     what ``helm pull`` writes (``scripts/build_chart_mirror.py``)
  ``DIR/<chart>/<version>/``        an unpacked chart (Chart.yaml inside, dependencies in charts/)
``<chart>`` is the chart's name (the last path segment of the release's ``chart``), ``<version>``
the release's ``version`` exactly as pinned (a leading ``v`` may also be left off).
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.core.chart_archive import chart_name
from rampart import progress
from rampart.offline import pss, values
from rampart.offline.manifests import kubernetes_objects
from rampart.offline.plan import Plan

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
EKS_CLUSTER_TYPE = "aws:eks/cluster:Cluster"
SECRET_PLACEHOLDER = "rampart-offline-secret"  # nosec B105 # noqa: S105 - a stand-in, never a secret
UNKNOWN_PLACEHOLDER = "rampart-offline-unknown"
# Release inputs `helm template` cannot reproduce offline: the release is reported as not rendered.
UNSUPPORTED_INPUTS = ("valueYamlFiles", "postrender")
HELM_TIMEOUT_SECONDS = 300
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".tpl", ".txt")
CRD_KIND = "CustomResourceDefinition"
# Kinds that ship with Kubernetes and live outside namespaces (plus any CRD with scope: Cluster).
CLUSTER_SCOPED_KINDS = {
    "APIService",
    "CertificateSigningRequest",
    "ClusterRole",
    "ClusterRoleBinding",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
}


# --- releases of a plan -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Chart:
    name: str  # as in Chart.yaml: the last path segment of the release's `chart`
    version: str
    reference: str  # the release's `chart` input
    repo: str | None  # repositoryOpts.repo


@dataclass(frozen=True)
class Release:
    urn: str
    name: str
    namespace: str
    chart: Chart
    values: Mapping[str, Any]
    include_crds: bool = True
    hooks: bool = True
    dependencies: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()

    @property
    def resource_name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


def release_from_resource(resource: Mapping[str, Any]) -> Release:
    inputs = resource.get("inputs") or {}
    reference = str(inputs.get("chart", ""))
    repo = (inputs.get("repositoryOpts") or {}).get("repo")
    allow_null = str(inputs.get("allowNullValues", "")).lower() == "true"
    return Release(
        urn=resource["urn"],
        name=str(inputs.get("name") or resource["urn"].rsplit("::", 1)[-1]),
        namespace=str(inputs.get("namespace") or "default"),
        chart=Chart(
            # The last path part (OCI references), the name in a mirror's <chart>-<version>.tgz.
            name=chart_name(reference, str(inputs.get("version", ""))),
            version=str(inputs.get("version", "")),
            reference=reference,
            repo=str(repo) if repo else None,
        ),
        values=helm_values(inputs.get("values") or {}, allow_null=allow_null),
        include_crds=str(inputs.get("skipCrds", "")).lower() != "true",
        hooks=str(inputs.get("disableHooks", "")).lower() != "true",
        dependencies=tuple(resource.get("dependencies") or ()),
        unsupported=tuple(key for key in UNSUPPORTED_INPUTS if inputs.get(key)),
    )


def releases(plan: Plan) -> list[Release]:
    """Every Helm release of the plan, each after the releases it (transitively) depends on."""
    found = [release_from_resource(r) for r in plan.of_type(RELEASE_TYPE)]
    closure = dependency_closure(plan.resources)
    ordered: list[Release] = []
    pending = list(found)
    while pending:
        waiting = _urns(pending)
        ready = [r for r in pending if not closure.get(r.urn, set()) & (waiting - {r.urn})]
        if not ready:  # a cycle cannot be planned by Pulumi; keep the plan's order rather than loop
            ready = pending[:1]
        ordered.extend(ready)
        pending = [r for r in pending if r not in ready]
    return ordered


def _urns(items: Iterable[Release]) -> set[str]:
    return {r.urn for r in items}


def dependency_closure(resources: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """URN -> every URN it depends on, directly or through others (the engine's create order)."""
    direct = {r["urn"]: set(r.get("dependencies") or ()) for r in resources}
    closure: dict[str, set[str]] = {}

    def visit(urn: str, trail: frozenset[str]) -> set[str]:
        if urn in closure:
            return closure[urn]
        found: set[str] = set()
        for dependency in direct.get(urn, set()):
            if dependency in trail:
                continue
            found |= {dependency} | visit(dependency, trail | {dependency})
        closure[urn] = found
        return found

    for urn in direct:
        visit(urn, frozenset({urn}))
    return closure


def helm_values(value: Any, allow_null: bool = False) -> Any:
    """Release values as Helm receives them: secrets and unknowns as placeholder strings, nulls
    dropped (the Python SDK strips them before the provider sees them) unless ``allow_null``."""
    if values.is_secret(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, Mapping):
        return {
            key: helm_values(item, allow_null)
            for key, item in value.items()
            if item is not None or allow_null
        }
    if isinstance(value, list):
        return [helm_values(item, allow_null) for item in value]
    if isinstance(value, str) and values.UNKNOWN in value:
        return UNKNOWN_PLACEHOLDER
    return value


def kubernetes_version(plan: Plan, default: str) -> str:
    """The EKS cluster's version when the plan has one, else ``default`` (the stack's setting)."""
    for cluster in plan.of_type(EKS_CLUSTER_TYPE):
        version = (cluster.get("inputs") or {}).get("version")
        if isinstance(version, str) and version:
            return version
    return default


def namespace_levels(objects: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """Namespace name -> the Pod Security level it enforces (None: created without the label)."""
    return {
        str(o["metadata"]["name"]): (o["metadata"].get("labels") or {}).get(pss.ENFORCE_LABEL)
        for o in objects
        if o.get("apiVersion") == "v1" and o.get("kind") == "Namespace"
    }


# --- the chart and the helm command line --------------------------------------------------------------
def mirror_chart(mirror: Path, chart: Chart) -> Path | None:
    """The chart in the mirror (see the module doc for the layout), or None."""
    versions = [chart.version] + ([chart.version[1:]] if chart.version.startswith("v") else [])
    for version in versions:
        for candidate in (mirror / f"{chart.name}-{version}.tgz", mirror / chart.name / version):
            if candidate.is_file() or (candidate / "Chart.yaml").is_file():
                return candidate
    return None


def remote_chart(chart: Chart) -> tuple[str, list[str]]:
    """(chart argument, extra flags) to fetch the chart from its repository."""
    if chart.reference.startswith("oci://"):
        return chart.reference, []
    if chart.repo and chart.repo.startswith("oci://"):
        return f"{chart.repo.rstrip('/')}/{chart.name}", []
    if chart.repo:
        return chart.name, ["--repo", chart.repo]
    return chart.reference, []


def helm_pull_args(chart: Chart, destination: Path) -> list[str]:
    """The ``helm`` arguments that download the pinned chart as ``<destination>/<chart>-<version>.tgz``,
    the mirror's layout (``scripts/build_chart_mirror.py``)."""
    reference, flags = remote_chart(chart)
    return ["pull", reference, *flags, "--version", chart.version, "--destination", str(destination)]


def pinned_charts(plans: Iterable[Plan]) -> list[Chart]:
    """Every distinct chart the plans' releases pin, sorted by name and version."""
    found = {release.chart for plan in plans for release in releases(plan)}
    return sorted(found, key=lambda chart: (chart.name, chart.version, chart.reference))


def helm_template_args(
    release: Release,
    chart_source: Path | None,
    values_file: Path,
    kube_version: str,
    api_versions: Iterable[str] = (),
) -> list[str]:
    """The ``helm`` arguments rendering ``release`` (from ``chart_source``, else its repository)."""
    fetch: list[str]
    if chart_source is not None:
        chart, fetch = str(chart_source), []
    else:
        chart, fetch = remote_chart(release.chart)
        fetch += ["--version", release.chart.version]
    args = [
        "template",
        release.name,
        chart,
        *fetch,
        "--namespace",
        release.namespace,
        "--values",
        str(values_file),
        "--kube-version",
        kube_version,
        "--skip-tests",
    ]
    for api_version in sorted(set(api_versions)):
        args += ["--api-versions", api_version]
    if release.include_crds:
        args.append("--include-crds")
    if not release.hooks:
        args.append("--no-hooks")
    return args


@dataclass(frozen=True)
class HelmRun:
    returncode: int
    stdout: str
    stderr: str


def run_helm(helm: str, args: list[str], timeout: int = HELM_TIMEOUT_SECONDS) -> HelmRun:
    """The one place helm runs."""
    try:
        done = subprocess.run(  # nosec B603 # noqa: S603 - an argument list, never a shell
            [helm, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        return HelmRun(127, "", f"helm binary {helm!r} not found")
    except subprocess.TimeoutExpired:
        return HelmRun(124, "", f"helm did not finish within {timeout}s")
    return HelmRun(done.returncode, done.stdout, done.stderr)


def helm_error(run: HelmRun) -> str:
    """Helm's own message, without its usage noise."""
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return " | ".join(errors or lines[-3:]) or f"helm exited with {run.returncode}"


# --- helm's output ---------------------------------------------------------------------------------
class RenderedYamlError(Exception):
    """A rendered document that is not YAML."""


class _Loader(yaml.SafeLoader):
    """YAML as the API server reads it: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _value_scalar(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    # `=` as a plain scalar (YAML's obsolete "value" tag): keep it as the string it is.
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


_Loader.add_constructor("tag:yaml.org,2002:value", _value_scalar)
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_SOURCE = re.compile(r"^# Source: (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    source: str  # the chart file it came from ("" when helm did not say)
    manifest: dict[str, Any]


def parse_documents(text: str) -> list[Document]:
    """Helm's multi-document output as objects, empty documents skipped, `List`s expanded."""
    found: list[Document] = []
    source = ""
    for chunk in _SEPARATOR.split(text):
        # Helm heads each file with its source; a file's further documents (e.g. a CRD file that
        # starts with its own `---`) come without one.
        source_match = _SOURCE.search(chunk)
        source = source_match.group(1).strip() if source_match else source
        try:
            loaded = yaml.load(chunk, Loader=_Loader)  # nosec B506 # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise RenderedYamlError(f"{source or 'a document'} is not valid YAML: {exc}") from None
        if loaded is None:
            continue
        if not isinstance(loaded, dict) or "kind" not in loaded or "apiVersion" not in loaded:
            raise RenderedYamlError(f"{source or 'a document'} is not a Kubernetes object")
        items = loaded.get("items") if loaded["kind"].endswith("List") else None
        for item in items if isinstance(items, list) else [loaded]:
            found.append(Document(source, item))
    return found


def is_chart_crd_dir(source: str) -> bool:
    """Whether the document came from a chart's (or sub-chart's) ``crds/`` directory: Helm installs
    those before anything else and waits for them."""
    return "/crds/" in f"/{source}" and "/templates/" not in f"/{source}"


# --- checks ------------------------------------------------------------------------------------------
def served_api_versions(crd: Mapping[str, Any]) -> set[str]:
    """``group/version`` and ``group/version/Kind`` for every version the CRD serves."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
    found: set[str] = set()
    for version in spec.get("versions") or []:
        if version.get("served", True):
            found |= {f"{group}/{version['name']}", f"{group}/{version['name']}/{kind}"}
    return found


def object_key(manifest: Mapping[str, Any], namespace: str, cluster_kinds: set[str]) -> tuple[str, ...]:
    """What identifies the object in the cluster: group, kind, namespace (namespaced kinds), name."""
    group = str(manifest["apiVersion"]).rpartition("/")[0]
    metadata = manifest.get("metadata") or {}
    scope = "" if manifest["kind"] in cluster_kinds else str(metadata.get("namespace") or namespace)
    return group, str(manifest["kind"]), scope, str(metadata.get("name", ""))


def describe(manifest: Mapping[str, Any], namespace: str = "") -> str:
    metadata = manifest.get("metadata") or {}
    where = metadata.get("namespace") or namespace
    return f"{manifest.get('kind')} {where + '/' if where else ''}{metadata.get('name', '?')}"


def pss_problems(
    manifest: Mapping[str, Any], namespace: str, levels: Mapping[str, str | None]
) -> tuple[list[str], str | None]:
    """(problems, note) of a workload against its namespace's enforced level."""
    template = pss.pod_template(manifest)
    if template is None:
        return [], None
    target = str((manifest.get("metadata") or {}).get("namespace") or namespace)
    level = levels.get(target)
    if level is None:
        state = "is not in the plan" if target not in levels else "has no pod-security enforce label"
        return [], f"namespace {target} {state}: Pod Security not checked"
    return [f"{level}: {p}" for p in pss.check(level, *template)], None


def lookup_calls(chart: Path) -> list[str]:
    """Template files of a chart (directory or .tgz, sub-charts included) that call ``lookup``."""
    found: list[str] = []
    if chart.is_dir():
        for path in sorted(chart.rglob("*")):
            name = str(path.relative_to(chart))
            if _is_template(name) and path.is_file() and _LOOKUP.search(path.read_text(errors="replace")):
                found.append(name)
    elif tarfile.is_tarfile(chart):
        with tarfile.open(chart) as archive:
            for member in archive.getmembers():
                handle = (
                    archive.extractfile(member) if member.isfile() and _is_template(member.name) else None
                )
                if handle and _LOOKUP.search(handle.read().decode(errors="replace")):
                    found.append(member.name)
    return found


_LOOKUP = re.compile(r"\blookup\s+\"")


def _is_template(name: str) -> bool:
    return "templates/" in name and name.endswith(TEMPLATE_SUFFIXES)


# --- rendering a plan -------------------------------------------------------------------------------
@dataclass
class ReleaseResult:
    release: Release
    chart_source: str = ""
    error: str | None = None
    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    output: str = ""

    @property
    def rendered(self) -> bool:
        return self.error is None

    @property
    def ok(self) -> bool:
        return self.rendered and not self.problems


Validator = Callable[[Mapping[str, Any]], list[str]]
HelmRunner = Callable[[list[str]], HelmRun]


@dataclass
class RenderSettings:
    kube_version: str
    mirror: Path | None = None  # None: fetch each chart from its repository
    crd_schemas: Path | None = None  # the reference CRD schema directory
    runner: HelmRunner | None = None  # default: run_helm("helm", ...)
    validate_core: Validator | None = None  # default: kubernetes-validate at kube_version
    validate_custom: Callable[[Mapping[str, Any], Path], list[str]] | None = None


def render_plan(plan: Plan, settings: RenderSettings) -> list[ReleaseResult]:
    """Render and check every release, each after those it depends on."""
    own = list(kubernetes_objects(plan))
    closure = dependency_closure(plan.resources)
    results: list[ReleaseResult] = []
    crds_by_release: dict[str, list[dict[str, Any]]] = {}
    for release in releases(plan):
        before = closure.get(release.urn, set())
        available = [crd for urn, crds in crds_by_release.items() if urn in before for crd in crds]
        result = render_release(release, settings, available)
        crds_by_release[release.urn] = [
            d.manifest for d in result.documents if d.manifest["kind"] == CRD_KIND
        ]
        results.append(result)
        progress.advance("releases rendered")
    check_results(results, own, closure, settings)
    return results


def render_release(
    release: Release, settings: RenderSettings, available_crds: list[dict[str, Any]]
) -> ReleaseResult:
    """Run helm for one release; the result holds the parsed documents or helm's error."""
    result = ReleaseResult(release)
    if release.unsupported:
        result.error = f"inputs not reproducible offline: {', '.join(release.unsupported)}"
        return result
    source: Path | None = None
    if settings.mirror is not None:
        source = mirror_chart(settings.mirror, release.chart)
        if source is None:
            result.error = (
                f"chart {release.chart.name} {release.chart.version} is not in the mirror {settings.mirror} "
                f"(expected {release.chart.name}-{release.chart.version}.tgz or "
                f"{release.chart.name}/{release.chart.version}/)"
            )
            return result
        result.chart_source = str(source)
        calls = lookup_calls(source)
        if calls:
            result.notes.append(
                "templates call `lookup`, which returns nothing under `helm template`: " + ", ".join(calls)
            )
    else:
        chart, flags = remote_chart(release.chart)
        result.chart_source = " ".join([chart, *flags, "--version", release.chart.version])
    api_versions = {v for crd in available_crds for v in served_api_versions(crd)}
    runner = settings.runner or (lambda args: run_helm("helm", args))
    with tempfile.TemporaryDirectory(prefix="rampart-render-") as scratch:
        values_file = Path(scratch) / "values.json"
        values_file.write_text(json.dumps(release.values, indent=1, sort_keys=True))
        run = runner(helm_template_args(release, source, values_file, settings.kube_version, api_versions))
    if run.returncode != 0:
        result.error = helm_error(run)
        return result
    result.output = run.stdout
    warnings = [line.strip() for line in run.stderr.splitlines() if line.strip()]
    if warnings:
        result.notes.append("helm: " + " | ".join(warnings))
    try:
        result.documents = parse_documents(run.stdout)
    except RenderedYamlError as exc:
        result.error = str(exc)
    return result


def check_results(
    results: list[ReleaseResult],
    own_objects: list[dict[str, Any]],
    closure: Mapping[str, set[str]],
    settings: RenderSettings,
) -> None:
    """Validate every rendered object; add its problems and notes to its release's result."""
    rendered = [r for r in results if r.rendered]
    crds = [d.manifest for r in rendered for d in r.documents if d.manifest["kind"] == CRD_KIND]
    crd_schema_of: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in crds:
        crd_schema_of.update(_crd_schemas(crd))
    cluster_kinds = CLUSTER_SCOPED_KINDS | {
        (crd.get("spec") or {}).get("names", {}).get("kind", "")
        for crd in crds
        if (crd.get("spec") or {}).get("scope") == "Cluster"
    }
    levels = namespace_levels(own_objects) | namespace_levels(
        d.manifest for r in rendered for d in r.documents
    )
    owners: dict[tuple[str, ...], str] = {
        object_key(o, "default", cluster_kinds): "Rampart's own objects" for o in own_objects
    }
    validate_core = settings.validate_core or _default_core(settings.kube_version)
    by_urn = {r.release.urn: r for r in rendered}
    for result in rendered:
        release = result.release
        before = {urn for urn in closure.get(release.urn, set()) if urn in by_urn}
        installed_before = {
            v
            for urn in before
            for d in by_urn[urn].documents
            if d.manifest["kind"] == CRD_KIND
            for v in served_api_versions(d.manifest)
        }
        own_crd_dir = {
            v
            for d in result.documents
            if d.manifest["kind"] == CRD_KIND and is_chart_crd_dir(d.source)
            for v in served_api_versions(d.manifest)
        }
        own_template_crds = {
            v
            for d in result.documents
            if d.manifest["kind"] == CRD_KIND and not is_chart_crd_dir(d.source)
            for v in served_api_versions(d.manifest)
        }
        unchecked: set[str] = set()
        for document in result.documents:
            manifest = document.manifest
            name = describe(manifest, "" if manifest["kind"] in cluster_kinds else release.namespace)
            problems: list[str] = []
            if _is_core(manifest):
                problems += validate_core(manifest)
            else:
                problems += _validate_custom(manifest, settings, crd_schema_of, unchecked)
                kind_version = f"{manifest['apiVersion']}/{manifest['kind']}"
                if kind_version not in installed_before | own_crd_dir:
                    problems.append(_missing_crd(kind_version, kind_version in own_template_crds))
            found, note = pss_problems(manifest, release.namespace, levels)
            problems += found
            if note and note not in result.notes:
                result.notes.append(note)
            # Helm creates a chart's crds/ only when absent and never owns them: no conflict there.
            if not is_chart_crd_dir(document.source):
                key = object_key(manifest, release.namespace, cluster_kinds)
                owner = owners.setdefault(key, f"release {release.name}")
                if owner != f"release {release.name}":
                    problems.append(f"also created by {owner}: the install would fail on ownership")
            result.problems += [f"{name}: {p}" for p in problems]
        if unchecked:
            result.notes.append("no schema to validate " + ", ".join(sorted(unchecked)))


def _missing_crd(kind_version: str, in_own_templates: bool) -> str:
    if in_own_templates:
        return (
            f"the CRD serving {kind_version} is in this chart's templates, not crds/: Helm maps every "
            "object before creating any, so the install fails with 'no matches for kind'"
        )
    return (
        f"no release this one depends on installs the CRD serving {kind_version}: on a fresh cluster "
        "the install fails with 'no matches for kind'"
    )


def _is_core(manifest: Mapping[str, Any]) -> bool:
    from rampart.offline.schemas import is_core  # noqa: PLC0415 - validation libraries are dev extras

    return is_core(manifest)


def _default_core(kube_version: str) -> Validator:
    from rampart.offline.schemas import validate_core  # noqa: PLC0415 - validation libraries are dev extras

    return lambda manifest: validate_core(manifest, kube_version)


def _crd_schemas(crd: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    from rampart.offline.schemas import crd_schemas  # noqa: PLC0415 - validation libraries are dev extras

    return crd_schemas(crd)


def _validate_custom(
    manifest: Mapping[str, Any],
    settings: RenderSettings,
    rendered_schemas: Mapping[tuple[str, str], dict[str, Any]],
    unchecked: set[str],
) -> list[str]:
    from rampart.offline import schemas  # noqa: PLC0415 - validation libraries are dev extras

    if settings.crd_schemas is not None and schemas.schema_path(manifest, settings.crd_schemas).is_file():
        validate = settings.validate_custom or schemas.validate_custom
        return validate(manifest, settings.crd_schemas)
    schema = rendered_schemas.get((manifest["apiVersion"], manifest["kind"]))
    if schema is not None:
        return schemas.validate_with_schema(manifest, schema)
    unchecked.add(f"{manifest['apiVersion']} {manifest['kind']}")
    return []


# --- output -------------------------------------------------------------------------------------------
def write_rendered(results: Iterable[ReleaseResult], out_dir: Path) -> list[Path]:
    """Each rendered release's manifests as ``<out_dir>/<release>.yaml`` (``<namespace>.<release>``
    when two releases share a name), as helm printed them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = [r for r in results if r.rendered]
    names = [r.release.name for r in rendered]
    written: list[Path] = []
    for result in rendered:
        stem = result.release.name
        if names.count(stem) > 1:
            stem = f"{result.release.namespace}.{stem}"
        path = out_dir / f"{stem}.yaml"
        path.write_text(result.output)
        written.append(path)
    return written


def summary_rows(results: Iterable[ReleaseResult]) -> Iterator[tuple[str, str, str, str]]:
    """(release, chart, namespace, result) per release, for the CLI's table."""
    for result in results:
        release = result.release
        if not result.rendered:
            outcome = f"helm error: {result.error}"
        else:
            outcome = f"rendered, {len(result.documents)} objects, {len(result.problems)} problems"
        yield release.name, f"{release.chart.name} {release.chart.version}", release.namespace, outcome
