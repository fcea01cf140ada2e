"""Phase 2 of Vault (`vault.configure: true` with a secret token) on the real prod stack: per-service
policies that isolate services, roles bound to exactly one service account, a database role per
database, operator objects that validate, and the token never in plaintext."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from components.secrets.vault_chart import (
    DATABASE_CA_CONFIGMAP,
    DATABASE_CA_FILE,
    DATABASE_CA_KEY,
    server_dns_names,
)
from components.secrets.vault_policies import parse_policy
from rampart.config.load import ConfigError
from rampart.offline import values
from rampart.offline.gate import discover_packs, run_gate
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from rampart.offline.runner import run_plan, stack_platform_config
from rampart.paths import data, prove
from rampart.paths.world import World
from tests.conftest import stack_config
from tests.support import schemas
from tests.support.project import stack_document, temp_project
from tests.support.reference import PROJECT_ROOT, crd_schemas
from tests.support.tls import TEST_CA_PEM
from tests.test_vault_config import glob_matches

CIPHERTEXT = "v1:cGhhc2UyLXRva2Vu:c2VjcmV0"


# As `rampart vault-phase2` sets a stack up: the port-forward's address and the CA it pinned.
LOCAL_ADDRESS = "https://127.0.0.1:8200"
CA_FILE = "stacks/vault-ca/prod.pem"
# As `make rds-ca-bundle` writes it (a test CA stands in for AWS's bundle).
RDS_CA_FILE = "stacks/rds-ca/eu-west-1-bundle.pem"


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    document = stack_document("prod")
    document["config"]["rampart:vault"] |= {
        "configure": True,
        "address": LOCAL_ADDRESS,
        "ca_cert_file": CA_FILE,
    }
    document["config"]["rampart:vault_token"] = {"secure": CIPHERTEXT}
    document["config"]["rampart:databases"] |= {"ca_bundle_file": RDS_CA_FILE}
    # What `pulumi stack init --secrets-provider awskms://...` writes beside the first secret.
    document["encryptedkey"] = "cmFtcGFydC1vZmZsaW5lLWRhdGEta2V5"
    root = temp_project(tmp_path_factory.mktemp("phase2"), {"prod": document})
    (root / CA_FILE).parent.mkdir(parents=True)
    (root / CA_FILE).write_text(TEST_CA_PEM)
    (root / RDS_CA_FILE).parent.mkdir(parents=True)
    (root / RDS_CA_FILE).write_text(TEST_CA_PEM)
    # The provider takes the CA as a file: the program copies it into a private cache directory.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        return run_plan("prod", root)


def test_the_provider_verifies_vault_by_its_ca_and_in_cluster_name(captured: Plan) -> None:
    """Through the port-forward the provider dials 127.0.0.1, which Vault's certificate does not name:
    it must verify the in-cluster name on that certificate against the pinned CA, never skip."""
    (provider,) = captured.of_type("pulumi:providers:vault")
    inputs = provider["inputs"]
    assert inputs["address"] == LOCAL_ADDRESS
    assert inputs["tlsServerName"] == "vault.vault.svc"
    assert inputs["tlsServerName"] in server_dns_names(3)  # a name the certificate carries
    assert Path(inputs["caCertFile"]).read_text() == TEST_CA_PEM
    assert json.loads(str(inputs["skipTlsVerify"])) is False


def of(captured: Plan, type_: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in captured.of_type(type_)]


def test_each_service_reads_only_its_own_paths(captured: Plan) -> None:
    config = stack_config("prod")
    policies = {p["name"]: parse_policy(p["policy"]) for p in of(captured, "vault:index/policy:Policy")}
    assert set(policies) == {s.name for s in config.services}
    own = {
        s.name: [f"kv/data/{s.name}/x", f"kv/metadata/{s.name}/x"]
        + ([f"database/creds/{s.name}"] if s.database else [])
        for s in config.services
    }
    for name, grants in policies.items():
        for path in own[name]:
            assert any(glob_matches(pattern, path) for pattern in grants), (name, path)
        for other, paths in own.items():
            if other != name:
                assert not [p for p in paths for pattern in grants if glob_matches(pattern, p)], (name, other)


def test_roles_are_bound_to_exactly_one_service_account(captured: Plan) -> None:
    roles = of(captured, "vault:kubernetes/authBackendRole:AuthBackendRole")
    assert {r["roleName"] for r in roles} == {s.name for s in stack_config("prod").services}
    for role in roles:
        assert role["boundServiceAccountNames"] == [role["roleName"]]
        assert role["boundServiceAccountNamespaces"] == [role["roleName"]]
        assert role["tokenPolicies"] == [role["roleName"]]


def test_one_database_role_per_database_for_that_database_only(captured: Plan) -> None:
    roles = {r["name"]: r for r in of(captured, "vault:database/secretBackendRole:SecretBackendRole")}
    with_database = {s.name for s in stack_config("prod").services if s.database}
    assert set(roles) == with_database
    for name, role in roles.items():
        assert (role["defaultTtl"], role["maxTtl"]) == (3600, 86400)
        statements = " ".join(role["creationStatements"])
        assert f'DATABASE "{name}"' in statements or f"DATABASE {name}" in statements
        for other in with_database - {name}:
            assert f'"{other}"' not in statements


def test_operator_objects_validate_and_the_token_stays_secret(captured: Plan) -> None:
    operator_objects = [
        r for r in captured.custom() if r["type"].startswith("kubernetes:secrets.hashicorp.com/")
    ]
    assert len(operator_objects) >= 7 + 4  # a VaultAuth per service, a VaultDynamicSecret per database
    for resource in operator_objects:
        assert schemas.validate_custom(to_manifest(resource), crd_schemas()) == [], resource["urn"]
    (provider,) = captured.of_type("pulumi:providers:vault")
    assert values.is_secret(provider["inputs"]["token"])
    text = json.dumps(captured.to_export())
    assert CIPHERTEXT not in text and "rampart-offline-secret:" not in text


def test_phase2_passes_the_policy_gate(captured: Plan) -> None:
    result = run_gate(captured, discover_packs(PROJECT_ROOT), PROJECT_ROOT / "policies" / "config")
    assert result.mandatory == []


# --- Vault and RDS: the server verified, the users revocable (issue 14) -----------------------------


def proof_world(plan: Plan) -> World:
    return World(plan, stack_config("prod"))


def databases() -> list[str]:
    return sorted(s.name for s in stack_config("prod").services if s.database)


def test_vault_verifies_rds_against_the_bundle_mounted_in_its_pods(captured: Plan) -> None:
    """verify-full against the RDS CA bundle: the stack's PEM in a ConfigMap of Vault's namespace, on a
    volume of Vault's server pods at the path the connection names."""
    for connection in of(captured, "vault:database/secretBackendConnection:SecretBackendConnection"):
        url = connection["postgresql"]["connectionUrl"]
        assert url.endswith(f"?sslmode=verify-full&sslrootcert={DATABASE_CA_FILE}"), url
    (bundle,) = [
        c
        for c in of(captured, "kubernetes:core/v1:ConfigMap")
        if c["metadata"]["name"] == DATABASE_CA_CONFIGMAP
    ]
    assert bundle["metadata"]["namespace"] == "vault" and bundle["data"] == {DATABASE_CA_KEY: TEST_CA_PEM}
    world = proof_world(captured)
    for owner in databases():
        check = data.vault_connection_tls(world, owner)
        assert check.verdict == "allows", check.reason

    # Mutations: the bundle missing from the plan, or the connection back to sslmode=require.
    without = Plan(
        captured.project,
        captured.stack,
        [r for r in captured.resources if r["inputs"].get("data") != bundle["data"]],
    )
    assert data.vault_connection_tls(proof_world(without), databases()[0]).verdict == "refuses"
    loose = copy.deepcopy(captured)
    for resource in loose.of_type("vault:database/secretBackendConnection:SecretBackendConnection"):
        postgresql = resource["inputs"]["postgresql"]
        postgresql["connectionUrl"] = postgresql["connectionUrl"].split("?")[0] + "?sslmode=require"
    check = data.vault_connection_tls(proof_world(loose), databases()[0])
    assert check.verdict == "refuses" and "sslmode=require" in check.reason


def test_the_vault_paths_to_every_rds_database_are_carried_in_phase_2(captured: Plan) -> None:
    proof = prove(captured, stack_config("prod"))
    paths = [r for r in proof.of_kind("vault") if r.spec.destination.endswith(" database")]
    assert {r.spec.destination for r in paths} == {f"{name} database" for name in databases()}
    for result in paths:
        assert result.check("tls").verdict == "allows", result.problems  # type: ignore[union-attr]
        assert result.check("credentials").verdict == "allows", result.problems  # type: ignore[union-attr]


def test_vault_can_revoke_what_it_creates_on_rds(captured: Plan) -> None:
    """RDS's master user has CREATEROLE without createrole_self_grant: the creation statements must
    grant it each user, or revocation fails (PostgreSQL 16 role rules, rampart/paths/postgres_roles.py)."""
    world = proof_world(captured)
    for owner in databases():
        check = data.vault_revocation(world, owner)
        assert check.verdict == "allows", check.reason
    mutated = copy.deepcopy(captured)
    for resource in mutated.of_type("vault:database/secretBackendRole:SecretBackendRole"):
        statements = resource["inputs"]["creationStatements"]
        resource["inputs"]["creationStatements"] = [
            s for s in statements if "TO CURRENT_USER;" not in s or "DO $$" in s
        ]
    check = data.vault_revocation(proof_world(mutated), databases()[0])
    assert check.verdict == "refuses" and "revocation fails: permission denied" in check.reason


def test_configuring_vault_on_aws_needs_the_rds_ca_bundle(tmp_path: Path) -> None:
    document = stack_document("prod")
    document["config"]["rampart:vault"] |= {"configure": True, "ca_cert_file": CA_FILE}
    document["config"]["rampart:vault_token"] = {"secure": CIPHERTEXT}
    document["encryptedkey"] = "cmFtcGFydC1vZmZsaW5lLWRhdGEta2V5"
    root = temp_project(tmp_path, {"prod": document})
    (root / CA_FILE).parent.mkdir(parents=True)
    (root / CA_FILE).write_text(TEST_CA_PEM)
    with pytest.raises(ConfigError, match=r"databases\.ca_bundle_file"):
        stack_platform_config("prod", root)
