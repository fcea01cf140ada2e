"""Secrets providers: a KMS key for the aws stacks, a passphrase for local, and stack files whose
provider line agrees with what their secure values were encrypted with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rampart.config import ConfigError
from rampart.offline.project import StackFileError, load_project, load_stack_config
from rampart.offline.runner import run_plan
from tests.conftest import STACKS, stack_config
from tests.support.catalog import SHOP
from tests.support.project import shop_stack, stack_document, temp_project
from tests.support.reference import PROJECT_ROOT


def test_aws_stacks_use_a_kms_key_of_their_own_region_and_local_a_passphrase(stack: str) -> None:
    provider = stack_document(stack)["secretsprovider"]
    config = stack_config(stack)
    if config.target == "aws":
        assert config.aws is not None
        assert provider == f"awskms://alias/rampart-{stack}?region={config.aws.region}"
    else:
        assert provider == "passphrase"


def test_the_exports_name_the_stacks_provider() -> None:
    project = load_project(PROJECT_ROOT)
    for stack in STACKS:
        settings = load_stack_config(project, stack)
        exported = settings.export_secrets_provider()
        if settings.is_cloud_provider:
            assert exported == {"type": "cloud", "state": {"url": stack_document(stack)["secretsprovider"]}}
        else:
            assert exported == {"type": "passphrase", "state": {}}


def _project(tmp_path: Path, **file: Any) -> Path:
    document = shop_stack("local") | file
    return temp_project(tmp_path, {"s": document}, catalog=SHOP)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ({"secretsprovider": "vault"}, "secretsprovider 'vault' is not a secrets provider"),
        (
            {"secretsprovider": "awskms://alias/rampart-s", "encryptionsalt": "v1:abc"},
            "encryptionsalt belongs to a passphrase",
        ),
        (
            {"secretsprovider": "passphrase", "encryptedkey": "AQIC"},
            "encryptedkey belongs to a cloud secrets",
        ),
    ],
)
def test_a_provider_line_that_contradicts_the_file_is_one_line_error(
    tmp_path: Path, file: dict[str, Any], expected: str
) -> None:
    project = load_project(_project(tmp_path, **file))
    with pytest.raises(StackFileError) as caught:
        load_stack_config(project, "s")
    assert expected in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ({"secretsprovider": "passphrase"}, "is secure but there is no encryptionsalt"),
        ({"secretsprovider": "awskms://alias/rampart-s"}, "is secure but there is no encryptedkey"),
    ],
)
def test_secure_values_need_what_encrypted_them(tmp_path: Path, file: dict[str, Any], expected: str) -> None:
    root = _project(tmp_path, **file)
    path = root / "stacks" / "Pulumi.s.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["rampart:vault_token"] = {"secure": "v1:AAAA"}
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(StackFileError, match=expected):
        load_stack_config(load_project(root), "s")


def test_a_kms_stack_with_a_secret_plans_with_the_secret_redacted(tmp_path: Path) -> None:
    root = _project(
        tmp_path, secretsprovider="awskms://alias/rampart-s?region=eu-west-1", encryptedkey="AQICAHg"
    )
    path = root / "stacks" / "Pulumi.s.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["rampart:vault_token"] = {"secure": "v1:c2VjcmV0LXRva2Vu"}
    path.write_text(yaml.safe_dump(document))
    plan = run_plan("s", root)
    assert plan.secrets_provider == {
        "type": "cloud",
        "state": {"url": "awskms://alias/rampart-s?region=eu-west-1", "encryptedkey": "AQICAHg"},
    }
    text = plan.to_json()
    assert "c2VjcmV0LXRva2Vu" not in text and "secret-token" not in text
    assert json.loads(text)["deployment"]["secrets_providers"]["type"] == "cloud"


def test_a_secret_setting_in_plain_text_stops_the_plan(tmp_path: Path) -> None:
    """The stack file (and git) would keep the token: the program refuses it, under the CLI as offline."""
    root = _project(tmp_path)
    path = root / "stacks" / "Pulumi.s.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["rampart:vault_token"] = "hvs.plaintext-token"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as caught:
        run_plan("s", root)
    (problem,) = caught.value.problems
    assert problem == (
        "stacks/Pulumi.s.yaml: rampart:vault_token: a secret in plain text; remove it and set it from stdin "
        "(`pulumi config set --secret rampart:vault_token < file`)"
    )
    assert "hvs.plaintext-token" not in str(caught.value)
