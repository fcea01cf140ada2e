"""A captured plan: every resource the program registered, in the `pulumi stack export` format."""

from __future__ import annotations

import json
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
        return cls(project, stack, _with_default_providers(project, stack, registrations), secrets_provider)

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
                    "time": datetime.now(UTC).isoformat(),
                    "magic": "",
                    "version": f"v{metadata.version('pulumi')}",
                },
                "secrets_providers": self.secrets_provider,
                "resources": self.resources,
            },
        }

    def write(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_export(), indent=2, sort_keys=False) + "\n")
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
