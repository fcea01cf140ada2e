"""Rules whose metadata is a table: what each rule says (description, severity, remediation, group,
controls) lives in a TOML file beside its module (``policies/rules/<module>.toml``), what it checks in
Python. A module binds each rule's name to its check in the order its pack lists them::

    RULES = table_rules(
        __file__,
        {
            "kms-key-rotation": on((KMS_KEY,), _kms_key_rotation),
            "rds-force-ssl": whole_plan(_rds_force_ssl),
        },
        params={"tag": PUBLIC_GATEWAY_TAG},
    )

Texts may name a module constant as ``${name}`` (string.Template; ``$$`` is a literal ``$``), given
in ``params``, so a message that quotes a constant follows it. A rule in the table without a check, or
a check without a row, is an error when the module is imported.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from policies.model import ResourceCheck, Rule, StackCheck


@dataclass(frozen=True)
class Check:
    """What a row of the table checks: a resource check and the types it reads, or a stack check."""

    types: tuple[str, ...] = ()
    check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    config_schema: Mapping[str, Any] = field(default_factory=dict)


def on(types: tuple[str, ...], check: ResourceCheck, config_schema: Mapping[str, Any] | None = None) -> Check:
    return Check(types=types, check=check, config_schema=config_schema or {})


def whole_plan(check: StackCheck, config_schema: Mapping[str, Any] | None = None) -> Check:
    return Check(stack_check=check, config_schema=config_schema or {})


def table_rules(
    module_file: str, checks: Mapping[str, Check], params: Mapping[str, str] | None = None
) -> tuple[Rule, ...]:
    """The rules of ``<module>.toml`` beside ``module_file``, in the order of ``checks``."""
    table_file = Path(module_file).with_suffix(".toml")
    table: dict[str, Any] = tomllib.loads(table_file.read_text())
    if set(table) != set(checks):
        raise ValueError(
            f"{table_file.name}: rows without a check {sorted(set(table) - set(checks))}, "
            f"checks without a row {sorted(set(checks) - set(table))}"
        )

    def text(value: str) -> str:
        return Template(value).substitute(params or {})

    return tuple(
        Rule.of(
            name,
            text(table[name]["description"]),
            table[name]["severity"],
            text(table[name]["remediation"]),
            group=table[name]["group"],
            controls=tuple(table[name]["controls"]),
            types=check.types,
            check=check.check,
            stack_check=check.stack_check,
            config_schema=check.config_schema,
        )
        for name, check in checks.items()
    )
