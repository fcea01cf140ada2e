"""A captured plan: every resource the program registered, in the `pulumi stack export` format."""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rampart.offline.mocks import digest

DEPLOYMENT_VERSION = 3
PROVIDER_PREFIX = "pulumi:providers:"
STACK_TYPE = "pulumi:pulumi:Stack"
# A plan is a function of its config: the same config gives the same bytes. The export's one
# timestamp follows the reproducible-builds convention (https://reproducible-builds.org/specs/source-date-epoch/):
# $SOURCE_DATE_EPOCH when set, else the Unix epoch.
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
# The order `pulumi stack export` writes a resource's fields in (apitype.ResourceV3); others follow, sorted.
FIELD_ORDER = (
    "urn",
    "custom",
    "delete",
    "id",
    "type",
    "inputs",
    "outputs",
    "parent",
    "protect",
    "external",
    "dependencies",
    "initErrors",
    "provider",
    "propertyDependencies",
    "pendingReplacement",
    "additionalSecretOutputs",
    "aliases",
    "customTimeouts",
    "importID",
    "retainOnDelete",
    "deletedWith",
    "created",
    "modified",
    "sourcePosition",
    "ignoreChanges",
    "replaceOnChanges",
)


class PlanFileError(Exception):
    """A plan file that cannot be read. ``str()`` is one line."""


@dataclass
class Plan:
    project: str
    stack: str
    resources: list[dict[str, Any]]
    secrets_provider: dict[str, Any] = field(default_factory=lambda: {"type": "passphrase"})

    @classmethod
    def from_registrations(
        cls, project: str, stack: str, registrations: list[dict[str, Any]], secrets_provider: dict[str, Any]
    ) -> Plan:
        resources = _with_default_providers(project, stack, registrations)
        return cls(project, stack, canonical_order(resources), secrets_provider)

    # --- queries ---------------------------------------------------------------------------
    def custom(self) -> Iterator[dict[str, Any]]:
        return (r for r in self.resources if r["custom"] and not r["type"].startswith(PROVIDER_PREFIX))

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_]

    def by_urn(self) -> dict[str, dict[str, Any]]:
        return {r["urn"]: r for r in self.resources}

    def descendants(self, urn: str) -> list[dict[str, Any]]:
        children: dict[str | None, list[dict[str, Any]]] = {}
        for resource in self.resources:
            children.setdefault(resource.get("parent"), []).append(resource)
        found: list[dict[str, Any]] = []
        stack = list(children.get(urn, []))
        while stack:
            resource = stack.pop()
            found.append(resource)
            stack.extend(children.get(resource["urn"], []))
        return found

    def stack_outputs(self) -> dict[str, Any]:
        stacks = self.of_type(STACK_TYPE)
        return dict(stacks[0].get("outputs") or {}) if stacks else {}

    # --- (de)serialisation ---------------------------------------------------------------------
    def to_export(self) -> dict[str, Any]:
        return {
            "version": DEPLOYMENT_VERSION,
            "deployment": {
                "manifest": {
                    "time": export_time(),
                    "magic": "",
                    "version": f"v{metadata.version('pulumi')}",
                },
                "secrets_providers": self.secrets_provider,
                "resources": self.resources,
            },
        }

    def to_json(self) -> str:
        """The export as text: the same plan gives the same bytes (see canonical_order)."""
        return json.dumps(self.to_export(), indent=2) + "\n"

    def write(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.to_json())
        except OSError as exc:
            raise PlanFileError(f"{path}: cannot be written ({exc.strerror})") from None

    @classmethod
    def read(cls, path: Path) -> Plan:
        try:
            document = json.loads(path.read_text())
        except OSError as exc:
            raise PlanFileError(f"{path}: cannot be read ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise PlanFileError(f"{path}: not valid JSON (line {exc.lineno})") from None
        if not isinstance(document, dict) or document.get("version") != DEPLOYMENT_VERSION:
            raise PlanFileError(f"{path}: not a version {DEPLOYMENT_VERSION} `pulumi stack export` file")
        deployment = document.get("deployment") or {}
        resources = deployment.get("resources") or []
        stacks = [r for r in resources if r.get("type") == STACK_TYPE]
        if not stacks:
            raise PlanFileError(f"{path}: no {STACK_TYPE} resource in the deployment")
        # urn:pulumi:<stack>::<project>::pulumi:pulumi:Stack::<name>
        _, _, rest = stacks[0]["urn"].partition("urn:pulumi:")
        stack, project = rest.split("::")[:2]
        return cls(project, stack, resources, deployment.get("secrets_providers") or {})


def _with_default_providers(
    project: str, stack: str, registrations: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Resources without an explicit provider get the engine's default provider, as the engine would."""
    resources: list[dict[str, Any]] = []
    defaults: dict[str, str] = {}
    for record in registrations:
        resource = {k: v for k, v in record.items() if k not in ("name", "providerVersion")}
        needs_default = (
            record["custom"] and not record["provider"] and not record["type"].startswith(PROVIDER_PREFIX)
        )
        if needs_default:
            package = record["type"].split(":")[0]
            version = record.get("providerVersion") or ""
            key = f"{package}@{version}"
            if key not in defaults:
                name = "default_" + version.replace(".", "_") if version else "default"
                urn = f"urn:pulumi:{stack}::{project}::{PROVIDER_PREFIX}{package}::{name}"
                provider_id = digest(urn, length=32)
                resources.append(
                    {
                        "urn": urn,
                        "custom": True,
                        "id": provider_id,
                        "type": f"{PROVIDER_PREFIX}{package}",
                        "inputs": {"version": version} if version else {},
                        "outputs": {"version": version} if version else {},
                        "parent": None,
                        "dependencies": [],
                        "propertyDependencies": {},
                        "protect": False,
                        "defaultProvider": True,
                    }
                )
                defaults[key] = f"{urn}::{provider_id}"
            resource["provider"] = defaults[key]
        resources.append(resource)
    return resources


def export_time() -> str:
    """$SOURCE_DATE_EPOCH (seconds) as an RFC 3339 time, else the Unix epoch: never the clock."""
    raw = os.environ.get(SOURCE_DATE_EPOCH, "").strip()
    seconds = int(raw) if raw.isdigit() else 0
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def canonical_order(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resources in one repeatable order, each in canonical form.

    The engine needs every resource after its parent, provider and dependencies (a checkpoint is
    a topological order); registration order is one, but it varies from run to run with the
    SDK's scheduling. This is the topological order that always takes the smallest URN that is
    ready (the root Stack first), so it depends on the graph alone. Within a resource, dependency
    lists are sorted (the engine treats them as sets) and property maps are sorted by key, as the
    Go encoder behind `pulumi stack export` writes them.
    """
    by_urn = {r["urn"]: r for r in resources}
    waiting: dict[str, set[str]] = {}
    dependents: dict[str, list[str]] = {urn: [] for urn in by_urn}
    for urn, resource in by_urn.items():
        needs = {u for u in _prerequisites(resource) if u in by_urn and u != urn}
        waiting[urn] = needs
        for need in needs:
            dependents[need].append(urn)
    # The root Stack leads, as in the engine's checkpoints; then the smallest ready URN.
    ready = [(by_urn[urn]["type"] != STACK_TYPE, urn) for urn, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    ordered: list[dict[str, Any]] = []
    while ready:
        _, urn = heapq.heappop(ready)
        ordered.append(canonical_resource(by_urn[urn]))
        for dependent in dependents[urn]:
            waiting[dependent].discard(urn)
            if not waiting[dependent]:
                heapq.heappush(ready, (by_urn[dependent]["type"] != STACK_TYPE, dependent))
    if len(ordered) != len(by_urn):  # a cycle: the engine would refuse it; keep everything visible
        placed = {r["urn"] for r in ordered}
        ordered += [canonical_resource(r) for urn, r in sorted(by_urn.items()) if urn not in placed]
    return ordered


def _prerequisites(resource: dict[str, Any]) -> list[str]:
    provider = resource.get("provider")
    return [
        *([resource["parent"]] if resource.get("parent") else []),
        *([provider.rsplit("::", 1)[0]] if provider else []),
        *(resource.get("dependencies") or []),
        *(urn for urns in (resource.get("propertyDependencies") or {}).values() for urn in urns),
        *([resource["deletedWith"]] if resource.get("deletedWith") else []),
    ]


def canonical_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """Fields in export order, dependency lists sorted, property maps by key."""
    result = dict(resource)
    result["dependencies"] = sorted(resource.get("dependencies") or [])
    result["propertyDependencies"] = {
        key: sorted(urns) for key, urns in sorted((resource.get("propertyDependencies") or {}).items())
    }
    for key in ("inputs", "outputs"):
        if key in result:
            result[key] = _sorted_keys(result[key])
    rank = {name: i for i, name in enumerate(FIELD_ORDER)}
    return {key: result[key] for key in sorted(result, key=lambda k: (rank.get(k, len(rank)), k))}


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value
