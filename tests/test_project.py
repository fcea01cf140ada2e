"""Project files: Pulumi.yaml against the upstream schema, stack files in place."""

from __future__ import annotations

import json

import jsonschema
import yaml

from rampart.offline.project import load_project
from tests.support.reference import PROJECT_ROOT, reference_path


def test_pulumi_yaml_validates_against_the_project_schema() -> None:
    schema = json.loads(reference_path("pulumi/project.schema.json").read_text())
    document = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())
    jsonschema.validate(document, schema)
    assert document["name"] == "rampart"
    assert document["main"] == "infra/"
    assert document["stackConfigDir"] == "stacks"
    assert document["runtime"]["name"] == "python"


def test_the_schema_check_would_catch_a_bad_project_file() -> None:
    schema = json.loads(reference_path("pulumi/project.schema.json").read_text())
    errors = list(
        jsonschema.Draft7Validator(schema).iter_errors({"name": "rampart", "runtime": {"nme": "python"}})
    )
    assert errors


def test_every_stack_uses_the_rampart_namespace() -> None:
    """(Which secrets provider each stack uses: tests/test_secrets_provider.py.)"""
    project = load_project(PROJECT_ROOT)
    assert project.stacks() == ["dev", "local", "prod", "staging"]
    for stack in project.stacks():
        document = yaml.safe_load(project.stack_file(stack).read_text())
        assert all(key.startswith("rampart:") for key in document["config"])
        assert document["config"]["rampart:environment"] == stack
