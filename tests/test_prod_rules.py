"""Rules a stack file cannot relax: secrets only as `secure:` values (every environment), prod's NAT gateway
per zone and istiod HA, and the supply chain (allowed registries; digests in staging and prod).

Each hostile stack file runs the real program under the capturing mock monitor: it must stop with one
line naming the file and key, before any resource is registered (only the root Stack is).
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rampart.config import ConfigError, StackFiles, load_platform_config, load_stack, namespace_values
from rampart.offline.mocks import PlanMocks
from rampart.offline.monitor import CapturingMonitor
from rampart.offline.project import load_project, load_stack_config
from rampart.offline.runner import capture
from tests.support.project import stack_document, temp_project

DIGEST = "sha256:" + "5e" * 32


def refused(tmp_path: Path, change: dict[str, Any], stack: str = "prod") -> list[str]:
    """The problems the program reports for the real ``stack`` file with ``change`` applied; asserts that
    nothing but the root Stack was registered."""
    document = stack_document(stack)
    document["config"] |= change
    root = temp_project(tmp_path, {stack: document})
    project = load_project(root)
    settings = load_stack_config(project, stack)
    monitor = CapturingMonitor(PlanMocks())
    with pytest.raises(ConfigError) as caught:
        capture(
            lambda: runpy.run_path(str(project.main), run_name="__main__"),
            stack=stack,
            config=settings.values,
            secret_keys=settings.secret_keys,
            monitor=monitor,
            root_directory=root,
        )
    assert [r["type"] for r in monitor.registrations] == ["pulumi:pulumi:Stack"]
    for problem in caught.value.problems:
        assert "\n" not in problem
    return caught.value.problems


def aws_settings(stack: str = "prod", **changes: Any) -> dict[str, Any]:
    return {"rampart:aws": stack_document(stack)["config"]["rampart:aws"] | changes}


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_a_plaintext_vault_token_is_refused_in_every_environment(tmp_path: Path, stack: str) -> None:
    problems = refused(tmp_path, {"rampart:vault_token": "hvs.CAESIplaintext"}, stack)
    assert problems == [
        f"stacks/Pulumi.{stack}.yaml: rampart:vault_token: a secret in plain text; remove it and set it from "
        "stdin (`pulumi config set --secret rampart:vault_token < file`)"
    ]
    assert "hvs.CAESIplaintext" not in str(problems)


def test_the_stack_file_decides_even_without_the_engines_secret_keys(tmp_path: Path) -> None:
    """A caller that has no secret keys to hand (they are None) still sees the plaintext in the file."""
    document = stack_document("prod")
    document["config"]["rampart:vault_token"] = "hvs.CAESIplaintext"
    root = temp_project(tmp_path, {"prod": document})
    project = load_project(root)
    files = StackFiles(root=root, config_dir=project.stack_config_dir, stack="prod")
    raw = namespace_values(load_stack_config(project, "prod").values)
    with pytest.raises(ConfigError) as caught:
        load_stack(raw, files)
    (problem,) = caught.value.problems
    assert problem.startswith("stacks/Pulumi.prod.yaml: rampart:vault_token: a secret in plain text")
    # The same value as a `secure:` mapping passes this check (the engine decrypts it).
    document["config"]["rampart:vault_token"] = {"secure": "v1:AAAA"}
    (root / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
    assert load_stack(raw, files).vault_token is not None


def test_a_secure_value_the_engine_does_not_mark_secret_is_refused(tmp_path: Path) -> None:
    """A plaintext value injected around the file (PULUMI_CONFIG) is not in the engine's secret keys."""
    root = temp_project(tmp_path, {"prod": stack_document("prod")})
    project = load_project(root)
    files = StackFiles(root=root, config_dir=project.stack_config_dir, stack="prod")
    raw = namespace_values(load_stack_config(project, "prod").values) | {"vault_token": "hvs.x"}
    with pytest.raises(ConfigError) as caught:
        load_stack(raw, files, secret_keys=[])
    assert [p.split(": ")[1] for p in caught.value.problems] == ["rampart:vault_token"]


def test_prod_refuses_a_single_nat_gateway(tmp_path: Path) -> None:
    problems = refused(tmp_path, aws_settings(nat_gateways="single"))
    assert problems == [
        "stacks/Pulumi.prod.yaml: rampart:aws.nat_gateways: prod runs a NAT gateway per availability zone "
        "(got 'single'); one gateway takes every zone's egress down with its own zone"
    ]


def test_prod_refuses_a_single_istiod(tmp_path: Path) -> None:
    mesh = stack_document("prod")["config"]["rampart:mesh"] | {"istiod_replicas": 1}
    (problem,) = refused(tmp_path, {"rampart:mesh": mesh})
    assert problem.startswith(
        "stacks/Pulumi.prod.yaml: rampart:mesh.istiod_replicas: prod runs at least 2 istiod replicas (got 1)"
    )


def test_prod_refuses_a_tag_only_image_and_names_the_key(tmp_path: Path) -> None:
    overrides = {"orders": {"image": "ghcr.io/acme/orders:1.4.3"}}
    (problem,) = refused(tmp_path, {"rampart:service_overrides": overrides})
    assert problem == (
        "stacks/Pulumi.prod.yaml: rampart:service_overrides.orders.image: ghcr.io/acme/orders:1.4.3 is not "
        "pinned by digest; prod runs images as name:tag@sha256:<64 hex> (a tag can be moved, a digest cannot)"
    )


def test_staging_and_prod_need_the_supply_chain(tmp_path: Path) -> None:
    document = stack_document("staging")
    del document["config"]["rampart:supply_chain"]
    root = temp_project(tmp_path, {"staging": document})
    project = load_project(root)
    files = StackFiles(root=root, config_dir=project.stack_config_dir, stack="staging")
    with pytest.raises(ConfigError) as caught:
        load_stack(namespace_values(load_stack_config(project, "staging").values), files, [])
    assert caught.value.problems == [
        "stacks/Pulumi.staging.yaml: rampart:supply_chain: required in staging: set allowed_registries "
        "(e.g. [ghcr.io/acme])"
    ]


# -- the supply-chain rules on their own -----------------------------------------------------------


def config(environment: str, image: str, registries: list[str] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "environment": environment,
        "target": "kubernetes",
        "owner": "platform-team",
        "cost_center": "cc-1",
        "services": [{"name": "orders", "image": image}],
    }
    if registries is not None:
        raw["supply_chain"] = {"allowed_registries": registries}
    if environment == "staging":
        raw["vault"] = {"replicas": 3}
    return raw


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw)
    return caught.value.problems


@pytest.mark.parametrize(
    "image",
    [
        f"ghcr.io/acme-evil/orders@{DIGEST}",
        f"ghcr.io/acmeorders@{DIGEST}",
        f"docker.io/acme/orders@{DIGEST}",
        f"acme/orders@{DIGEST}",
    ],
)
def test_images_from_other_registries_are_refused_in_every_environment(image: str) -> None:
    assert problems(config("dev", image, ["ghcr.io/acme"])) == [
        f"services[0] (orders).image: {image} is not from an allowed registry "
        "(supply_chain.allowed_registries: ghcr.io/acme)"
    ]
    assert load_platform_config(config("dev", f"ghcr.io/acme/orders@{DIGEST}", ["ghcr.io/acme"]))


def test_dev_takes_a_tag_staging_and_prod_need_the_digest() -> None:
    assert load_platform_config(config("dev", "ghcr.io/acme/orders:1.4.2", ["ghcr.io/acme"]))
    assert load_platform_config(config("staging", f"ghcr.io/acme/orders:1.4.2@{DIGEST}", ["ghcr.io/acme"]))
    found = problems(config("staging", "ghcr.io/acme/orders:1.4.2", ["ghcr.io/acme"]))
    assert found == [
        "services[0] (orders).image: ghcr.io/acme/orders:1.4.2 is not pinned by digest; staging runs images "
        "as name:tag@sha256:<64 hex> (a tag can be moved, a digest cannot)"
    ]


@pytest.mark.parametrize("registry", ["acme", "ghcr.io/Acme", "https://ghcr.io/acme", "ghcr.io/acme/"])
def test_a_registry_is_a_host_and_a_path_prefix(registry: str) -> None:
    (problem,) = problems(config("dev", f"ghcr.io/acme/orders@{DIGEST}", [registry]))
    assert problem.startswith("supply_chain.allowed_registries[0]: String should match pattern")


def test_the_admission_policy_needs_a_kubernetes_that_serves_it() -> None:
    raw = config("dev", f"ghcr.io/acme/orders@{DIGEST}", ["ghcr.io/acme"]) | {
        "kubernetes": {"version": "1.29"}
    }
    (problem,) = problems(raw)
    assert problem.startswith("kubernetes.version: 1.29 does not serve admissionregistration.k8s.io/v1")
    # Nothing to enforce (dev, no supply_chain): no admission policy, no floor.
    assert load_platform_config(config("dev", "ghcr.io/acme/orders:1") | {"kubernetes": {"version": "1.29"}})


def test_a_secret_in_a_services_env_is_refused(tmp_path: Path) -> None:
    overrides = {"notifications": {"env": {"SMTP_HOST": "smtp.example.com", "SMTP_PASSWORD": "hunter2"}}}
    (problem,) = refused(tmp_path, {"rampart:service_overrides": overrides})
    assert problem.startswith(
        "stacks/Pulumi.prod.yaml: rampart:service_overrides.notifications.env.SMTP_PASSWORD: a secret in "
        "plain text in a versioned file"
    )
    assert "hunter2" not in problem
    # Plain settings stay fine (the catalog's own env: SMTP_HOST, LOG_LEVEL).
    assert load_platform_config(
        config("dev", "ghcr.io/acme/orders:1")
        | {
            "services": [
                {
                    "name": "orders",
                    "image": "ghcr.io/acme/orders:1",
                    "env": {"SMTP_HOST": "x", "LOG_LEVEL": "info"},
                }
            ]
        }
    )
