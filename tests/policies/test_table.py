"""policies/table.py: a rule module's metadata table and its checks must name the same rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from policies.model import Resource
from policies.table import on, table_rules, whole_plan

ROW = """
["{name}"]
description = "Nothing is ${{what}}."
severity = "low"
remediation = "Remove the $$5 thing."
group = "{group}"
controls = ["rampart-baseline"]
"""


def _never(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    yield from ()


def _module(tmp_path: Path, *rows: tuple[str, str]) -> str:
    (tmp_path / "rules.toml").write_text("".join(ROW.format(name=n, group=g) for n, g in rows))
    return str(tmp_path / "rules.py")


def test_rows_become_rules_in_the_order_of_the_checks(tmp_path: Path) -> None:
    module = _module(tmp_path, ("b-rule", "reliability"), ("a-rule", "network"))
    a, b = table_rules(
        module,
        {"a-rule": on(("t",), _never), "b-rule": whole_plan(lambda r, c: iter(()))},
        params={"what": "public"},
    )
    assert (a.name, a.pack, a.types, a.is_stack_rule) == ("a-rule", "security", ("t",), False)
    assert (b.name, b.pack, b.is_stack_rule) == ("b-rule", "reliability", True)
    assert a.description == "Nothing is public." and a.remediation == "Remove the $5 thing."


def test_a_row_without_a_check_or_a_check_without_a_row_is_an_error(tmp_path: Path) -> None:
    module = _module(tmp_path, ("a-rule", "network"), ("b-rule", "network"))
    with pytest.raises(ValueError, match=r"rows without a check \['b-rule'\], checks without a row \['c'\]"):
        table_rules(module, {"a-rule": on(("t",), _never), "c": on(("t",), _never)}, params={"what": "x"})


def test_a_constant_the_module_does_not_give_is_an_error(tmp_path: Path) -> None:
    module = _module(tmp_path, ("a-rule", "network"))
    with pytest.raises(KeyError, match="what"):
        table_rules(module, {"a-rule": on(("t",), _never)})
