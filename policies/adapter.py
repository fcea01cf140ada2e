"""Adapt Rampart rules to pulumi_policy, so each pack runs under `pulumi preview --policy-pack`
and under Rampart's offline gate alike."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.catalog import rules_for
from policies.model import NotApplicable, Pack, Resource, Rule, Violation
from policies.server import serve

T = TypeVar("T")

SEVERITY = {
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
# Every rule accepts a free-text reason, so a config file can say why a rule is relaxed.
REASON_SCHEMA = {"reason": {"type": "string"}}


def plain(value: Any) -> Any:
    """pulumi_policy hands policies read-only proxies (a Mapping, a Sequence that is not a
    list); rules see plain dicts and lists, exactly as in their fixture tests."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(item) for item in value]
    return value


# The last view each server thread built, keyed by the SDK object it came from: the server hands
# every policy of one request the same props proxy (and every stack policy the same resource list),
# so the plain copy is made once per request rather than once per policy.
_last_view = threading.local()


def _shared(source: object, build: Callable[[], T]) -> T:
    slot = getattr(_last_view, "slot", None)
    if slot is not None and slot[0] is source:
        return slot[1]  # type: ignore[no-any-return]
    view = build()
    _last_view.slot = (source, view)  # holds ``source``, so its id cannot be reused meanwhile
    return view


def _config(args: Any, rule: Rule) -> Mapping[str, Any]:
    # Config arrives through a protobuf Struct, where every number is a double: a count (minReplicas 2)
    # is handed back as 2.0. Whole numbers become ints again, so messages read "needs 2".
    given = {k: _whole(plain(v)) for k, v in dict(args.get_config() or {}).items() if k != "reason"}
    return rule.defaults() | given


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


def _report(
    args: Any, report_violation: ReportViolation, violations: Callable[[], Iterable[Violation]]
) -> None:
    """Hand each violation to the engine; a rule that does not apply to this plan says so instead."""
    try:
        for violation in violations():
            report_violation(violation.message, violation.urn)
    except NotApplicable as exc:
        args.not_applicable(str(exc))


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    assert rule.check is not None
    check = rule.check

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        resource = _shared(
            args.props,
            lambda: Resource(
                urn=args.urn,
                type=args.resource_type,
                name=args.name,
                props=plain(args.props),
                protect=bool(args.opts.protect),
                parent=getattr(args.opts, "parent", None),
                provider=args.provider.urn if args.provider is not None else None,
            ),
        )
        config = _config(args, rule)
        _report(args, report_violation, lambda: (Violation(message) for message in check(resource, config)))

    return ResourceValidationPolicy(validate=validate, **_metadata(rule))


def _stack_resource(resource: Any) -> Resource:
    return Resource(
        urn=resource.urn,
        type=resource.resource_type,
        name=resource.name,
        props=plain(resource.props),
        protect=bool(resource.opts.protect),
        parent=resource.parent.urn if resource.parent is not None else None,
        dependencies=tuple(d.urn for d in resource.dependencies),
        provider=resource.provider.urn if resource.provider is not None else None,
    )


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    assert rule.stack_check is not None
    stack_check = rule.stack_check

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        # A fresh list of the shared resources: a rule may reorder its list, not the resources.
        resources = list(_shared(args.resources, lambda: [_stack_resource(r) for r in args.resources]))
        config = _config(args, rule)
        _report(args, report_violation, lambda: stack_check(resources, config))

    return StackValidationPolicy(validate=validate, **_metadata(rule))


def _metadata(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "description": rule.description,
        "config_schema": PolicyConfigSchema(properties={**rule.config_schema, **REASON_SCHEMA}),
        "severity": SEVERITY[rule.severity],
        "remediation_steps": rule.remediation,
        "tags": [rule.group, *rule.controls],
    }


def to_policy(rule: Rule) -> ResourceValidationPolicy | StackValidationPolicy:
    return _stack_policy(rule) if rule.is_stack_rule else _resource_policy(rule)


def serve_pack(pack: Pack, description: str) -> None:
    """Build the pack and serve it to the engine (blocks; this is the pack's __main__)."""
    rules = rules_for(pack)
    # Mandatory unless a stack's policy config relaxes a rule (with a reason).
    serve(
        f"rampart-{pack}",
        [to_policy(rule) for rule in rules],
        description,
        {rule.name: frozenset(rule.types) for rule in rules if not rule.is_stack_rule},
    )
