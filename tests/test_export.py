"""The plan export: `pulumi stack export` v3 format, every option captured, secrets never in plaintext."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from rampart.offline import values
from rampart.offline.mocks import PLACEHOLDER_SECRET
from rampart.offline.plan import Plan
from rampart.offline.project import PLACEHOLDER_PREFIX
from rampart.offline.runner import run_plan
from tests.conftest import planned
from tests.support.harness import plan_of

SECRET_PROGRAM = """
import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config("demo")
provider = k8s.Provider("k8s")
k8s.core.v1.Secret(
    "token",
    metadata={"name": "token", "namespace": "demo"},
    string_data={"token": config.require_secret("apiToken")},
    opts=pulumi.ResourceOptions(provider=provider),
)
# A secret nested in an otherwise plain property stays secret at its own depth.
k8s.core.v1.ConfigMap(
    "settings",
    metadata={"name": "settings", "namespace": "demo"},
    data={"token": config.require_secret("apiToken"), "user": config.require("user")},
    opts=pulumi.ResourceOptions(provider=provider),
)
pulumi.export("token", config.require_secret("apiToken"))
"""


def write_project(root: Path, program: str, stack_yaml: str) -> None:
    (root / "Pulumi.yaml").write_text("name: demo\nruntime: python\nmain: app/\nstackConfigDir: stacks\n")
    (root / "app").mkdir()
    (root / "app" / "__main__.py").write_text(textwrap.dedent(program))
    (root / "stacks").mkdir()
    (root / "stacks" / "Pulumi.dev.yaml").write_text(textwrap.dedent(stack_yaml))


def test_secure_config_stays_secret_in_the_export(tmp_path: Path) -> None:
    ciphertext = "v1:Zm9vYmFyYmF6:c2VjcmV0LWNpcGhlcnRleHQ="
    write_project(
        tmp_path,
        SECRET_PROGRAM,
        f"""
        secretsprovider: passphrase
        encryptionsalt: v1:abc:def
        config:
          demo:user: alice
          demo:apiToken:
            secure: {ciphertext}
        """,
    )
    plan = run_plan("dev", tmp_path)
    out = tmp_path / "plan.json"
    plan.write(out)
    text = out.read_text()
    assert PLACEHOLDER_PREFIX not in text
    assert ciphertext not in text
    (secret,) = plan.of_type("kubernetes:core/v1:Secret")
    # The kubernetes SDK marks a Secret's whole stringData secret.
    assert values.is_secret(secret["inputs"]["stringData"])
    assert values.is_secret(secret["outputs"]["stringData"])
    (settings,) = plan.of_type("kubernetes:core/v1:ConfigMap")
    assert values.is_secret(settings["inputs"]["data"]["token"])
    assert settings["inputs"]["data"]["user"] == "alice"
    # Echoed back through the mock, the map holding a secret comes out secret as a whole.
    assert values.is_secret(settings["outputs"]["data"])
    assert values.is_secret(plan.stack_outputs()["token"])
    assert json.loads(text)["deployment"]["secrets_providers"] == {
        "type": "passphrase",
        "state": {"salt": "v1:abc:def"},
    }


def test_generated_secrets_are_redacted() -> None:
    def program() -> None:
        provider = k8s.Provider("k8s")
        password = random.RandomPassword("db", length=32, special=False)
        k8s.core.v1.Secret(
            "db",
            metadata={"name": "db", "namespace": "demo"},
            string_data={"password": password.result},
            opts=pulumi.ResourceOptions(provider=provider),
        )

    plan = plan_of(program)
    text = json.dumps(plan.to_export())
    assert PLACEHOLDER_SECRET not in text
    (password,) = plan.of_type("random:index/randomPassword:RandomPassword")
    assert values.is_secret(password["outputs"]["result"])


def test_resource_options_are_captured() -> None:
    def program() -> None:
        provider = k8s.Provider("k8s")
        first = k8s.core.v1.ConfigMap(
            "first",
            metadata={"namespace": "demo"},
            data={"a": "1"},
            opts=pulumi.ResourceOptions(provider=provider, protect=True, retain_on_delete=True),
        )
        k8s.core.v1.ConfigMap(
            "second",
            metadata={"namespace": "demo"},
            data={"b": first.metadata.name},
            opts=pulumi.ResourceOptions(
                provider=provider,
                delete_before_replace=True,
                aliases=[pulumi.Alias(name="old-second")],
            ),
        )

    plan = plan_of(program)
    by_name = {r["urn"].rsplit("::", 1)[1]: r for r in plan.resources}
    first, second = by_name["first"], by_name["second"]
    assert first["protect"] is True and first["retainOnDelete"] is True
    assert second["protect"] is False and second["deleteBeforeReplace"] is True
    assert first["urn"] in second["dependencies"]
    assert second["propertyDependencies"]["data"] == [first["urn"]]
    assert second["aliases"] == ["urn:pulumi:test::rampart::kubernetes:core/v1:ConfigMap::old-second"]
    # Auto-named like the provider does it, and the name flows into the dependent's inputs.
    assert first["outputs"]["metadata"]["name"].startswith("first-")
    assert second["inputs"]["data"]["b"] == first["outputs"]["metadata"]["name"]


def test_default_providers_are_made_explicit_in_the_export() -> None:
    def program() -> None:
        random.RandomId("id", byte_length=4)

    plan = plan_of(program)
    (provider,) = [r for r in plan.resources if r["type"] == "pulumi:providers:random"]
    assert provider["defaultProvider"] is True
    (resource,) = plan.of_type("random:index/randomId:RandomId")
    assert resource["provider"] == f"{provider['urn']}::{provider['id']}"


def test_export_is_a_v3_deployment_that_reads_back(tmp_path: Path) -> None:
    plan = planned("local")
    out = tmp_path / "plan.json"
    plan.write(out)
    document = json.loads(out.read_text())
    assert document["version"] == 3
    resources = document["deployment"]["resources"]
    assert resources[0]["type"] == "pulumi:pulumi:Stack"
    seen: set[str] = set()
    for resource in resources:
        assert resource["urn"].startswith("urn:pulumi:local::rampart::")
        for key in ("custom", "type", "inputs", "outputs", "dependencies", "protect"):
            assert key in resource, (key, resource["urn"])
        # Topological order: parents, dependencies and providers come first.
        for urn in [resource["parent"], *resource["dependencies"]]:
            assert urn is None or urn in seen, (resource["urn"], urn)
        if resource.get("provider"):
            assert resource["provider"].rsplit("::", 1)[0] in seen
        seen.add(resource["urn"])
    again = Plan.read(out)
    assert (again.project, again.stack) == ("rampart", "local")
    assert again.resources == plan.resources
