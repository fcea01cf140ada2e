"""The shape of a Rampart policy: plain data and pure functions, independent of pulumi_policy.

A rule reads a :class:`Resource` (or all of them, for stack rules) and yields violations.
The packs adapt rules to pulumi_policy; tests call the checks directly on fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["low", "medium", "high", "critical"]
Pack = Literal["security", "reliability"]
Group = Literal[
    "encryption", "network", "workload", "mesh", "reliability", "ownership", "identity", "lifecycle"
]
# Groups whose rules make the reliability pack; every other group makes the security pack.
RELIABILITY_GROUPS: tuple[Group, ...] = ("reliability", "lifecycle")


class NotApplicable(Exception):  # noqa: N818 - mirrors pulumi_policy's not_applicable()
    """Raised by a check when the rule does not apply to this plan (e.g. no mesh installed)."""


@dataclass(frozen=True)
class Resource:
    """A resource as a policy sees it: properties (inputs for resource rules, outputs for
    stack rules) and the options the engine passes to analyzers."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    # The URN of the provider that manages it (None for components and providers).
    provider: str | None = None

    def get(self, path: str, default: Any = None) -> Any:
        """``get("spec.template.spec")``: a nested property, or ``default``."""
        node: Any = self.props
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def namespace(self) -> str | None:
        namespace = self.get("metadata.namespace")
        return str(namespace) if namespace else None

    @property
    def object_name(self) -> str:
        return str(self.get("metadata.name") or self.name)


@dataclass(frozen=True)
class Violation:
    message: str
    urn: str | None = None


ResourceCheck = Callable[[Resource, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[list[Resource], Mapping[str, Any]], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    severity: Severity
    remediation: str
    # The CIS EKS Benchmark / checkov / AWS FSBP controls this rule covers.
    controls: tuple[str, ...]
    pack: Pack
    group: Group
    # Resource rules: the types they look at, and the check. Stack rules: stack_check.
    types: tuple[str, ...] = ()
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    # JSON-schema properties of the rule's config (from policies/config/<stack>.json).
    config_schema: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.check is None) == (self.stack_check is None):
            raise ValueError(f"{self.name}: give exactly one of check / stack_check")
        if self.check is not None and not self.types:
            raise ValueError(f"{self.name}: a resource rule names the types it checks")

    @classmethod
    def of(
        cls,
        name: str,
        description: str,
        severity: Severity,
        remediation: str,
        *,
        group: Group,
        controls: tuple[str, ...],
        types: tuple[str, ...] = (),
        check: ResourceCheck | None = None,
        stack_check: StackCheck | None = None,
        config_schema: Mapping[str, Any] | None = None,
    ) -> Rule:
        """A rule in the pack its group belongs to: reliability and lifecycle rules make the reliability
        pack, every other group (encryption, network, workload, mesh, ownership, identity) the security
        pack."""
        return cls(
            name=name,
            description=description,
            severity=severity,
            remediation=remediation,
            controls=controls,
            pack="reliability" if group in RELIABILITY_GROUPS else "security",
            group=group,
            types=types,
            check=check,
            stack_check=stack_check,
            config_schema=config_schema or {},
        )

    @property
    def is_stack_rule(self) -> bool:
        return self.stack_check is not None

    def defaults(self) -> dict[str, Any]:
        return {key: spec["default"] for key, spec in self.config_schema.items() if "default" in spec}

    def evaluate(self, resource: Resource, config: Mapping[str, Any] | None = None) -> list[str]:
        """Violations of a resource rule (empty when the type is not one it checks)."""
        assert self.check is not None
        if resource.type not in self.types:
            return []
        return list(self.check(resource, self.defaults() | dict(config or {})))

    def evaluate_stack(
        self, resources: list[Resource], config: Mapping[str, Any] | None = None
    ) -> list[Violation]:
        assert self.stack_check is not None
        return list(self.stack_check(resources, self.defaults() | dict(config or {})))


def positive_integer(default: int) -> dict[str, Any]:
    """A rule's config property: a whole number of at least 1 (replicas, days)."""
    return {"type": "integer", "minimum": 1, "default": default}


def boolean(default: bool) -> dict[str, Any]:
    """A rule's config property: a switch."""
    return {"type": "boolean", "default": default}


def string_list(default: Iterable[str] = (), description: str | None = None) -> dict[str, Any]:
    """A rule's config property: a list of strings (namespaces, tags, API groups)."""
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "default": list(default)}
    if description is not None:
        schema["description"] = description
    return schema


def of_types(resources: Iterable[Resource], *types: str) -> Iterator[Resource]:
    return (r for r in resources if r.type in types)


def number(value: Any, default: float = 0) -> float:
    """Numbers reach analyzers as doubles (3 -> 3.0); strings and None are tolerated."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
