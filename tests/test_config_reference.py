"""The config reference (JSON Schemas, docs/configuration.md): generated from the models, kept current."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from rampart.cli import app
from rampart.config import PlatformConfig
from rampart.config.reference import (
    MODELINE,
    SCHEMA_DIR,
    SERVICE_SCHEMA,
    STACK_SCHEMA,
    configuration_page,
    generated_files,
    service_schema,
    stack_schema,
)
from rampart.config.rules import RULES
from tests.support.project import CATALOG
from tests.support.reference import PROJECT_ROOT

STACKS_DIR = PROJECT_ROOT / "stacks"
STACK_FILES = sorted(STACKS_DIR.glob("Pulumi.*.yaml"))
SERVICE_FILES = sorted(CATALOG.glob("*.yaml"))


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(schema: dict[str, Any], document: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(document)
    ]


def test_the_committed_reference_is_what_the_models_generate() -> None:
    for path, text in generated_files(PROJECT_ROOT).items():
        assert path.is_file(), f"{path} is missing: run `rampart config-schema`"
        assert path.read_text() == text, f"{path} is out of date: run `rampart config-schema`"


def test_the_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    files = generated_files(tmp_path)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "Pulumi.yaml").write_text("name: rampart\nruntime: python\nstackConfigDir: stacks\n")
    runner = CliRunner()
    current = runner.invoke(app, ["config-schema", "--check", "--project", str(tmp_path)])
    assert (
        current.exit_code == 0 and current.output.splitlines()[-1] == "config-schema passed: 3 files current"
    )
    stale = next(iter(files))
    stale.write_text(stale.read_text().replace("pinned image", "image"))
    result = runner.invoke(app, ["config-schema", "--check", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "config-schema FAILED: 1 file out of date"


def _assert_names_and_validates(path: Path, schema_path: str, schema: dict[str, Any]) -> None:
    """The file's first line is the modeline naming ``schema_path`` (an existing file), and it validates."""
    first = path.read_text().splitlines()[0]
    assert first == f"{MODELINE}{schema_path}"
    assert (path.parent / first.removeprefix(MODELINE)).is_file()
    assert errors(schema, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("path", STACK_FILES, ids=lambda p: p.name)
def test_every_stack_file_names_its_schema_and_validates(path: Path) -> None:
    _assert_names_and_validates(path, f"{SCHEMA_DIR}/{STACK_SCHEMA}", stack_schema())


@pytest.mark.parametrize("path", SERVICE_FILES, ids=lambda p: p.name)
def test_every_service_file_names_its_schema_and_validates(path: Path) -> None:
    _assert_names_and_validates(path, f"../{SCHEMA_DIR}/{SERVICE_SCHEMA}", service_schema())


def _a_stack() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(STACK_FILES[0].read_text())
    return document


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.update({"rampart:sizng": {}}), "'rampart:sizng' does not match any of the regexes"),
        (lambda c: c["rampart:vault"].update({"replicaz": 3}), "'replicaz' was unexpected"),
        (
            lambda c: c.update({"rampart:service_overrides": {c["rampart:services"][0]: {"imagee": "x:1"}}}),
            "'imagee' was unexpected",
        ),
        (
            lambda c: c.update({"rampart:service_overrides": {c["rampart:services"][0]: {"name": "other"}}}),
            "'name' was unexpected",
        ),
        (lambda c: c.update({"rampart:vault_token": "hvs.plaintext"}), "is not of type 'object'"),
        (lambda c: c.update({"rampart:environment": "qa"}), "'qa' is not one of"),
        (lambda c: c.update({"rampart:services": ["Not_A_Label"]}), "does not match"),
    ],
)
def test_the_stack_schema_rejects_what_the_loader_rejects(change: Any, expected: str) -> None:
    document = _a_stack()
    change(document["config"])
    assert any(expected in problem for problem in errors(stack_schema(), document)), errors(
        stack_schema(), document
    )


def test_overrides_may_give_part_of_a_mapping_and_patch_a_route_by_its_path() -> None:
    document = _a_stack()
    first = document["config"]["rampart:services"][0]
    document["config"]["rampart:service_overrides"] = {
        first: {
            "resources": {"limits": {"cpu": "1"}},
            "database": None,
            "routes": {"/orders": {"host": "api.dev.example.com"}},
        }
    }
    assert errors(stack_schema(), document) == []
    document["config"]["aws:region"] = "eu-west-1"  # another namespace's key is the provider's business
    document["config"]["kubernetes:context"] = "kind"
    assert errors(stack_schema(), document) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"replicaz": 3}, "'replicaz' was unexpected"),
        ({"name": "shipping"}, "'name' was unexpected"),
        ({"image": "ghcr.io/acme/x:latest"}, "should not be valid"),
        ({"image": "ghcr.io/acme/x"}, "does not match"),
        ({"port": 70000}, "is greater than the maximum"),
        ({"routes": [{"path": "/x"}]}, "'host' is a required property"),
        ({"resources": {"requests": {"cpu": "2 cores", "memory": "1Gi"}}}, "does not match"),
    ],
)
def test_the_service_schema_rejects_what_the_loader_rejects(change: dict[str, Any], expected: str) -> None:
    declaration = yaml.safe_load(SERVICE_FILES[0].read_text()) | change
    found = errors(service_schema(), declaration)
    assert any(expected in problem for problem in found), found


def _fields(model: type[BaseModel], at: str = "") -> Iterator[tuple[str, str]]:
    """(path, key) of every field of the config, depth first."""
    for name, info in model.model_fields.items():
        yield at, name
        for nested in _models_in(info.annotation):
            yield from _fields(nested, f"{at}.{name}" if at else name)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in getattr(annotation, "__args__", ()):
        yield from _models_in(argument)


def test_the_page_lists_every_key_with_its_description() -> None:
    page = configuration_page()
    seen: set[tuple[str, str]] = set()
    for at, key in _fields(PlatformConfig):
        if (at, key) in seen or key == "name":
            continue
        seen.add((at, key))
        row = f"| `rampart:{key}` |" if not at else f"| `{key}` |"
        assert row in page, (at, key)
    described = [line for line in page.splitlines() if line.startswith("| `")]
    assert all(not line.rstrip().endswith("|  |") for line in described), "a key without a description"
    assert len(seen) >= 100


def test_the_page_states_every_rule_across_keys_and_each_environment() -> None:
    page = configuration_page()
    for entry in RULES:
        assert f"| {', '.join(f'`{k}`' for k in entry.keys)} | {entry.when} | {entry.text} |" in page
    for environment in ("local", "dev", "staging", "prod"):
        assert f"\n| {environment} | " in page
    assert "| prod | yes |" in page and "| local | no |" in page


def test_a_rule_is_documented_where_its_key_is() -> None:
    page = configuration_page()
    (row,) = [line for line in page.splitlines() if line.startswith("| `backup_retention_days` |")]
    assert "**Rule** (environment prod: at least 14 days)" in row


def test_the_schema_describes_keys_from_the_field_docstrings() -> None:
    schema = json.loads((STACKS_DIR / SCHEMA_DIR / STACK_SCHEMA).read_text())
    replicas = schema["$defs"]["Replicas"]["properties"]["min"]
    assert (
        replicas["description"]
        == PlatformConfig.model_fields["services"]
        .annotation.__args__[0]
        .model_fields[  # type: ignore[union-attr]
            "replicas"
        ]
        .annotation.model_fields["min"]
        .description
    )
    token = schema["properties"]["config"]["properties"]["rampart:vault_token"]
    assert token["required"] == ["secure"] and "stdin" in token["description"]


def test_a_generated_file_changes_when_a_model_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above is not vacuous: a new key shows up in all three files."""
    before = {path.name: text for path, text in generated_files(PROJECT_ROOT).items()}
    original = copy.deepcopy(PlatformConfig.model_json_schema())

    def with_extra_key(*args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = copy.deepcopy(original)
        schema["$defs"]["ServiceSpec"]["properties"]["colour"] = {"type": "string", "description": "New."}
        return schema

    monkeypatch.setattr(PlatformConfig, "model_json_schema", with_extra_key)
    after = {path.name: text for path, text in generated_files(PROJECT_ROOT).items()}
    assert all(after[name] != before[name] for name in before)
