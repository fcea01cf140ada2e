"""Vault's configuration layer and the VSO delivery objects, built alone under mocks with explicit
providers, for a seven-service catalog whose names are prefixes of each other (pay, payments,
payments-admin): least privilege is proved by matching every grant against every other service's
paths with Vault's own glob rules, not by string comparison."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.messaging.topology import Grant, topology
from components.secrets import vault_config as vc
from components.secrets import vault_policies as vp
from components.secrets.vault_config import VaultConfigArgs, VaultConfiguration, VaultService
from rampart.config.models import Queues, ServiceSpec
from rampart.offline import values
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from rampart.paths import postgres_roles as pr
from tests.support import schemas
from tests.support.harness import plan_of
from tests.support.plans import K8S_PROVIDER
from tests.support.reference import crd_schemas

NAME = "vault-config"
VAULT_PROVIDER = (
    f"urn:pulumi:test::rampart::rampart:secrets:VaultConfiguration$pulumi:providers:vault::{NAME}-vault::"
)
VSO_NAMESPACE = "vault-secrets-operator-system"

# Plaintext stand-ins for the real secrets: none may appear in the plan except as a secret object.
TOKEN = "hvs.offline-root-token-must-not-leak"
BROKER_PASSWORD = "broker-admin-password-must-not-leak"
BROKER_URI = "https://rabbitmq.messaging.svc:15671"


# name, has a database, publishes, consumes
DECLARED: list[tuple[str, bool, list[str], list[str]]] = [
    ("orders", True, ["order-created"], []),
    ("pay", True, [], []),
    ("payments", True, ["payment-settled"], ["order-created"]),
    ("payments-admin", False, [], ["payment-settled"]),
    ("inventory", True, [], ["order-created"]),
    ("notifications", False, [], ["order-created", "payment-settled"]),
    ("catalog", False, [], []),
]
TOPOLOGY = topology(
    [
        ServiceSpec(name=name, image="ghcr.io/acme/app:1.0.0", queue=Queues(publishes=pub, consumes=con))
        for name, _, pub, con in DECLARED
    ]
)


def service(name: str, database: bool) -> VaultService:
    # Service account named like the service, in a namespace of its own (as the Microservice does);
    # one service runs under a differently named account to prove the binding uses the argument.
    account = "payments-sa" if name == "payments" else name
    return VaultService(name, name, account, database, TOPOLOGY.grants.get(name, {}))


QUEUE_GRANT = Grant(configure="^$", write="^(q)$", read="^$")
CATALOG = [service(name, database) for name, database, _, _ in DECLARED]
BY_NAME = {s.name: s for s in CATALOG}
WITH_DB = [s for s in CATALOG if s.database]
WITH_QUEUES = [s for s in CATALOG if s.uses_broker]


def admin_password(name: str) -> str:
    return f"{name}-db-admin-password-must-not-leak"


def args(**changes: Any) -> VaultConfigArgs:
    base: dict[str, Any] = {
        "address": "https://vault.vault.svc:8200",
        "token": pulumi.Output.secret(TOKEN),
        "ca_cert_pem": None,
        "kubernetes_host": "https://kubernetes.default.svc",
        "services": CATALOG,
        "database_hosts": {s.name: f"{s.name}-rw.{s.name}.svc:5432" for s in WITH_DB},
        "database_admin_password": {s.name: pulumi.Output.secret(admin_password(s.name)) for s in WITH_DB},
        "database_server_ca_file": "/vault/userconfig/vault-tls/ca.crt",
        "broker": (BROKER_URI, "vault", pulumi.Output.secret(BROKER_PASSWORD)),
        "vso_namespace": VSO_NAMESPACE,
        "vault_connection": "default",
        "provider": k8s.Provider("k8s"),
        "environment": "dev",
    }
    return VaultConfigArgs(**(base | changes))


def program(**changes: Any) -> Callable[[], None]:
    def run() -> None:
        VaultConfiguration(NAME, args(**changes))

    return run


@functools.cache
def build() -> Plan:
    return plan_of(program())


def of(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan.custom() if r["type"] == type_]


def by_input(plan: Plan, type_: str, key: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for resource in of(plan, type_):
        name = resource["inputs"][key]
        assert name not in found, f"two {type_} named {name}"
        found[name] = resource["inputs"]
    return found


def kinds(plan: Plan, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    objects = [to_manifest(r) for r in plan.custom() if r["type"] == f"kubernetes:{vc.VSO_API}:{kind}"]
    return {(m["metadata"]["namespace"], m["metadata"]["name"]): m for m in objects}


# -- Vault's glob semantics, written here independently of the generator -----------------------------


def glob_matches(pattern: str, path: str) -> bool:
    """Vault ACL paths: a trailing ``*`` is a prefix match (it may match ``/``); a ``+`` segment
    matches exactly one path segment; everything else is literal."""
    prefix = pattern.endswith("*")
    body = pattern[:-1] if prefix else pattern
    regex = "/".join("[^/]*" if segment == "+" else re.escape(segment) for segment in body.split("/"))
    return re.fullmatch(regex + (".*" if prefix else ""), path, flags=re.DOTALL) is not None


def owned_paths(name: str, *, database: bool, broker: bool) -> list[str]:
    """Concrete paths that hold ``name``'s secrets (what another service must never reach)."""
    paths = [
        f"kv/data/{name}/",
        f"kv/data/{name}/config",
        f"kv/data/{name}/nested/api-key",
        f"kv/metadata/{name}/",
        f"kv/metadata/{name}/config",
    ]
    if database:
        paths.append(f"database/creds/{name}")
    if broker:
        paths.append(f"rabbitmq/creds/{name}")
    return paths


def leaks(grants: Mapping[str, set[str]], other_paths: Iterable[str]) -> list[tuple[str, str]]:
    """(grant, path) pairs where a grant (with any capability) reaches one of another's paths."""
    return [(pattern, path) for pattern in grants for path in other_paths if glob_matches(pattern, path)]


def policies_of(catalog: Iterable[VaultService]) -> dict[str, dict[str, set[str]]]:
    return {
        s.name: vp.parse_policy(
            vp.service_policy(s.name, kv_mount="kv", database=s.database, broker=s.uses_broker)
        )
        for s in catalog
    }


def assert_isolated(catalog: list[VaultService]) -> None:
    policies = policies_of(catalog)
    for a in catalog:
        own = owned_paths(a.name, database=a.database, broker=a.uses_broker)
        for path in own:
            assert any(glob_matches(p, path) and "read" in caps for p, caps in policies[a.name].items()), path
        for b in catalog:
            if b.name != a.name:
                other = owned_paths(b.name, database=b.database, broker=b.uses_broker)
                assert leaks(policies[a.name], other) == [], (a.name, b.name)


# -- (a) policies: each service reads its own paths and nobody else's ------------------------------------


def test_glob_semantics() -> None:
    assert glob_matches("kv/data/pay/*", "kv/data/pay/x/y")
    assert glob_matches("kv/data/pay/*", "kv/data/pay/")
    assert not glob_matches("kv/data/pay/*", "kv/data/payments/x")
    assert glob_matches("kv/data/pay*", "kv/data/payments/x")
    assert glob_matches("kv/+/pay/*", "kv/data/pay/x")
    assert not glob_matches("kv/+/pay/*", "kv/data/more/pay/x")
    assert glob_matches("database/creds/pay", "database/creds/pay")
    assert not glob_matches("database/creds/pay", "database/creds/payments")


def test_catalog_policies_are_isolated() -> None:
    assert_isolated(CATALOG)


def test_the_isolation_check_catches_loose_grants() -> None:
    # What a careless policy would write: each of these reaches another service's secrets.
    for loose in ("kv/data/pay*", "kv/data/+/*", "kv/*", "database/creds/pay*", "rabbitmq/creds/+"):
        assert leaks({loose: {"read"}}, owned_paths("payments", database=True, broker=True)), loose


def test_policy_grants_exactly_its_paths() -> None:
    for s in CATALOG:
        hcl = vp.service_policy(s.name, kv_mount="kv", database=s.database, broker=s.uses_broker)
        expected = {f"kv/data/{s.name}/*": {"read", "list"}, f"kv/metadata/{s.name}/*": {"read", "list"}}
        if s.database:
            expected[f"database/creds/{s.name}"] = {"read"}
        if s.uses_broker:
            expected[f"rabbitmq/creds/{s.name}"] = {"read"}
        assert vp.parse_policy(hcl) == expected
        assert {
            path: set(caps)
            for path, caps in vp.readable_paths(
                s.name, kv_mount="kv", database=s.database, broker=s.uses_broker
            ).items()
        } == expected


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)


@st.composite
def catalogs(draw: st.DrawFn) -> list[VaultService]:
    """Services whose names are often prefixes of one another: pay / payments / payments-admin."""
    bases = draw(st.lists(LABEL, min_size=1, max_size=4, unique=True))
    names = set(bases)
    for base in bases:
        if len(base) > 1 and draw(st.booleans()):
            names.add(base[: draw(st.integers(1, len(base) - 1))].rstrip("-") or base)
        if draw(st.booleans()):
            names.add(f"{base}{draw(st.sampled_from(['s', '-admin', '0', '-v2']))}")
    return [
        VaultService(
            name, name, name, draw(st.booleans()), {name: QUEUE_GRANT} if draw(st.booleans()) else {}
        )
        for name in sorted(names)
    ]


@settings(max_examples=150, deadline=None)
@given(catalogs())
def test_any_catalog_is_isolated(catalog: list[VaultService]) -> None:
    assert_isolated(catalog)


@pytest.mark.parametrize("bad", ["*", "pay*", "pay/*", "+", "a/b", "Orders", "-pay", 'x"', "pay ments", ""])
def test_names_that_could_widen_a_grant_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="DNS label"):
        vp.service_policy(bad, kv_mount="kv", database=True, broker=True)
    with pytest.raises(ValueError, match="DNS label"):
        vp.database_creation_statements(bad, "orders")


@pytest.mark.parametrize(
    "hcl",
    [
        'path "kv/data/a/*" { capabilities = ["read", "sudo2"] }',
        'path "kv/data/a/*" { capabilities = ["read"] allowed_parameters = {} }',
        'path "kv/data/a/*" { capabilities = ["read"] }\nidentity_token "x" {}',
    ],
)
def test_parser_refuses_what_it_does_not_understand(hcl: str) -> None:
    with pytest.raises(ValueError):
        vp.parse_policy(hcl)


# -- (c) database statements and (broker) vhost permissions ---------------------------------------------


@pytest.mark.parametrize("s", WITH_DB, ids=lambda s: s.name)
def test_database_statements_touch_only_the_service_database(s: VaultService) -> None:
    creation = vp.database_creation_statements(s.name, s.name)
    assert (
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
        in creation
    )
    # The owner role is created before anything is granted to it, and only if it is missing.
    assert creation[0].startswith(f'DO $$ BEGIN CREATE ROLE "{s.name}_owner" NOLOGIN;')
    text = "\n".join(creation + vp.database_revocation_statements(s.name, s.name))
    assert re.findall(r"ON DATABASE \"([^\"]+)\"", text) == [s.name]
    # Other services' databases and owner roles are never named (as whole identifiers).
    assert set(re.findall(r'"([^"]+)"', text)) == {"{{name}}", s.name, f"{s.name}_owner"}
    assert not re.search(
        r"ALL TABLES IN SCHEMA (?!public)|ON ALL .* IN DATABASE|SUPERUSER|CREATEROLE|CREATEDB", text
    )
    # Every GRANT goes to this lease's user, the database's owner role or (the owner role itself, once,
    # when Vault's admin creates it) that admin; nothing to PUBLIC.
    for grantee in re.findall(r"\bTO (\S+?);", text):
        assert grantee in ('"{{name}}"', f'"{s.name}_owner"', "CURRENT_USER"), grantee
    assert vp.database_revocation_statements(s.name, s.name)[-1] == 'DROP ROLE IF EXISTS "{{name}}";'


def test_broker_grants_are_exact() -> None:
    grants = TOPOLOGY.grants["payments"]
    assert set(grants) == {"payments", "orders"}
    own, upstream = grants["payments"], grants["orders"]
    assert (own.configure, own.write, own.read) == ("^$", "^(payment-settled)$", "^$")
    assert (upstream.configure, upstream.write, upstream.read) == ("^$", "^$", r"^(order-created\.payments)$")
    # RabbitMQ searches with its regex: only the declared names may match, a dot is no wildcard.
    for name in ("payment-settled-dlq", "xpayment-settled", "payment", "amq.default", ""):
        assert not re.search(own.write, name), name
    for name in ("order-created.inventory", "order-createdXpayments", "order-created", "amq.gen-123"):
        assert not re.search(upstream.read, name), name
    assert re.search(own.write, "payment-settled") and re.search(upstream.read, "order-created.payments")


# -- (c) database connections and roles ----------------------------------------------------------------


def test_one_database_role_per_service_database() -> None:
    plan = build()
    roles = by_input(plan, "vault:database/secretBackendRole:SecretBackendRole", "name")
    connections = by_input(plan, "vault:database/secretBackendConnection:SecretBackendConnection", "name")
    assert set(roles) == set(connections) == {s.name for s in WITH_DB}
    others = {s.name for s in WITH_DB}
    for name, role in roles.items():
        assert role["dbName"] == name and role["backend"] == "database"
        assert (role["defaultTtl"], role["maxTtl"]) == (3600, 86400)
        assert role["creationStatements"] == vp.database_creation_statements(name, name)
        assert role["revocationStatements"] == vp.database_revocation_statements(name, name)
        named = set(re.findall(r'"([^"]+)"', " ".join(role["creationStatements"])))
        assert not named & (others - {name}), named
        connection = connections[name]
        assert connection["allowedRoles"] == [name]
        postgres = connection["postgresql"]
        assert postgres["connectionUrl"] == (
            f"postgresql://{{{{username}}}}:{{{{password}}}}@{name}-rw.{name}.svc:5432/{name}"
            "?sslmode=verify-full&sslrootcert=/vault/userconfig/vault-tls/ca.crt"
        )
        assert postgres["username"] == "vault_admin"
        assert connection["rootRotationStatements"] == vp.database_root_rotation_statements()


def test_root_credentials_are_rotated_after_each_connection() -> None:
    plan = build()
    connections = {
        r["inputs"]["name"]: r["urn"]
        for r in of(plan, "vault:database/secretBackendConnection:SecretBackendConnection")
    }
    endpoints = by_input(plan, "vault:generic/endpoint:Endpoint", "path")
    assert set(endpoints) == {f"database/rotate-root/{name}" for name in connections}
    for resource in of(plan, "vault:generic/endpoint:Endpoint"):
        name = resource["inputs"]["path"].rsplit("/", 1)[1]
        assert connections[name] in resource["dependencies"]
        assert resource["inputs"]["disableRead"] is True and resource["inputs"]["disableDelete"] is True


def test_one_broker_role_per_service_with_queues() -> None:
    roles = by_input(build(), "vault:rabbitMq/secretBackendRole:SecretBackendRole", "name")
    assert set(roles) == {s.name for s in WITH_QUEUES}
    for name, role in roles.items():
        s = BY_NAME[name]
        expected = [
            {"host": vhost, "configure": g.configure, "write": g.write, "read": g.read}
            for vhost, g in sorted(s.broker_grants.items())
        ]
        assert role["vhosts"] == expected
        assert role["tags"] == "" and role["backend"] == "rabbitmq"


# -- (d) VSO objects -----------------------------------------------------------------------------------


def test_vso_objects_validate_against_the_crd_schemas() -> None:
    directory = crd_schemas()
    manifests = [*kinds(build(), "VaultAuth").values(), *kinds(build(), "VaultDynamicSecret").values()]
    assert manifests
    for manifest in manifests:
        assert schemas.validate_custom(manifest, directory) == [], manifest["metadata"]


def test_each_service_authenticates_as_itself() -> None:
    auths = kinds(build(), "VaultAuth")
    assert set(auths) == {(s.namespace, s.name) for s in CATALOG}
    for (namespace, name), manifest in auths.items():
        s = BY_NAME[name]
        assert namespace == s.namespace
        assert manifest["spec"] == {
            "vaultConnectionRef": f"{VSO_NAMESPACE}/default",
            "method": "kubernetes",
            "mount": "kubernetes",
            "kubernetes": {
                "role": name,
                "serviceAccount": s.service_account,
                "audiences": ["vault"],
                "tokenExpirationSeconds": 600,
            },
        }


def test_dynamic_secrets_deliver_each_credential_into_its_namespace() -> None:
    secrets = kinds(build(), "VaultDynamicSecret")
    expected = {(s.namespace, f"{s.name}-db") for s in WITH_DB} | {
        (s.namespace, f"{s.name}-broker") for s in WITH_QUEUES
    }
    assert set(secrets) == expected
    for (namespace, object_name), manifest in secrets.items():
        name, kind = object_name.rsplit("-", 1)
        spec = manifest["spec"]
        assert namespace == BY_NAME[name].namespace
        assert spec["vaultAuthRef"] == name
        assert spec["mount"] == ("database" if kind == "db" else "rabbitmq")
        assert spec["path"] == f"creds/{name}"
        assert spec["destination"] == {"name": f"{name}-{kind}-credentials", "create": True}
        assert spec["rolloutRestartTargets"] == [{"kind": "Deployment", "name": name}]
        assert spec["revoke"] is True


def test_handle_names_the_secrets_the_workloads_mount() -> None:
    handles: list[vc.VaultConfigHandle] = []
    plan_of(lambda: handles.append(VaultConfiguration(NAME, args()).handle))
    (handle,) = handles
    assert handle.database_secrets == {s.name: f"{s.name}-db-credentials" for s in WITH_DB}
    assert handle.broker_secrets == {s.name: f"{s.name}-broker-credentials" for s in WITH_QUEUES}
    assert (handle.kv_mount, handle.database_mount, handle.broker_mount) == ("kv", "database", "rabbitmq")


# -- (e) secrets are never plaintext ---------------------------------------------------------------


def test_secrets_appear_only_as_secret_objects() -> None:
    plan = build()
    (provider,) = [r for r in plan.resources if r["type"] == "pulumi:providers:vault"]
    assert values.is_secret(provider["inputs"]["token"])
    assert values.is_secret(provider["outputs"]["token"])
    for connection in of(plan, "vault:database/secretBackendConnection:SecretBackendConnection"):
        assert values.is_secret(connection["inputs"]["postgresql"]["password"])
    (rabbit,) = of(plan, "vault:rabbitMq/secretBackend:SecretBackend")
    assert values.is_secret(rabbit["inputs"]["password"])
    exported = json.dumps(plan.to_export())
    for plaintext in (TOKEN, BROKER_PASSWORD, *(admin_password(s.name) for s in WITH_DB)):
        assert plaintext not in exported


@pytest.mark.parametrize(
    "changes",
    [
        {"token": TOKEN},
        {"broker": (BROKER_URI, "vault", BROKER_PASSWORD)},
        {"database_admin_password": {s.name: admin_password(s.name) for s in WITH_DB}},
    ],
    ids=["token", "broker", "database"],
)
def test_plain_string_secrets_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="secret Output"):
        plan_of(program(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"address": "http://vault.vault.svc:8200"}, "only reached over TLS"),
        ({"broker": None}, "orders: uses queues but no broker"),
        ({"database_hosts": {}}, "pay: has a database but no entry in database_hosts"),
        (
            {"database_admin_password": {}},
            "inventory: has a database but no entry in database_admin_password",
        ),
        ({"services": [*CATALOG, CATALOG[0]]}, "'orders' is declared twice"),
        ({"services": [VaultService("a", "Bad_NS", "a", False)]}, "namespace 'Bad_NS'"),
    ],
)
def test_unsafe_or_incomplete_arguments_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        vc.check(args(**changes))


# -- (f) providers ---------------------------------------------------------------------------------


def test_every_resource_uses_an_explicit_provider() -> None:
    plan = build()
    assert not [r["urn"] for r in plan.resources if r.get("defaultProvider")]
    vault_resources = [r for r in plan.custom() if r["type"].startswith("vault:")]
    kubernetes_resources = [r for r in plan.custom() if r["type"].startswith("kubernetes:")]
    assert len(vault_resources) > 20 and len(kubernetes_resources) == len(CATALOG) + len(WITH_DB) + len(
        WITH_QUEUES
    )
    for resource in vault_resources:
        assert resource["provider"].startswith(VAULT_PROVIDER), resource["urn"]
    for resource in kubernetes_resources:
        assert resource["provider"].startswith(K8S_PROVIDER), resource["urn"]


# -- the CA file the provider reads ------------------------------------------------------------------

PEM = "-----BEGIN CERTIFICATE-----\nMIIBofflinetestca\n-----END CERTIFICATE-----\n"


def test_ca_certificate_is_written_to_a_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    plan = plan_of(program(ca_cert_pem=PEM))
    (provider,) = [r for r in plan.resources if r["type"] == "pulumi:providers:vault"]
    path = Path(provider["inputs"]["caCertFile"])
    assert path.parent == tmp_path / "rampart-vault-ca"
    assert path.read_text() == PEM
    assert path.parent.stat().st_mode & 0o077 == 0
    # The same PEM gives the same file; another PEM another one.
    assert vc.ca_cert_file(PEM, path.parent) == str(path)
    assert vc.ca_cert_file(PEM + "\n", path.parent) != str(path)


def test_ca_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match="writable by nobody else"):
        vc.ca_cert_file(PEM, shared)


# --- PostgreSQL 16 role rules: what Vault's admin may do to the users it creates -------------------
# rampart/paths/postgres_roles.py models https://www.postgresql.org/docs/16/sql-createrole.html,
# runtime-config-client.html#GUC-CREATEROLE-SELF-GRANT, sql-grant.html, sql-reassign-owned.html,
# sql-drop-owned.html, sql-droprole.html and functions-admin.html (pg_terminate_backend).


def pg_server(self_grant: str = "") -> pr.Server:
    server = pr.Server()
    server.add(pr.Role("admin", createrole=True, self_grant=pr.self_grant_options(self_grant)))
    server.add(pr.Role("root", superuser=True))
    server.run("admin", ['CREATE ROLE "u" WITH LOGIN;'], "u")
    server.owned["u"] = {"a table"}
    return server


def test_a_createrole_creator_gets_admin_option_only_unless_createrole_self_grant_says_more() -> None:
    server = pg_server()
    assert server.is_admin_of("admin", "u") and not server.has_privs_of("admin", "u")
    # ADMIN OPTION is enough to drop the role and to grant it, not to touch what it owns.
    for statement in ('REASSIGN OWNED BY "u" TO "admin";', 'DROP OWNED BY "u";'):
        with pytest.raises(pr.PgError, match="permission denied"):
            server.run("admin", [statement], "u")
    with pytest.raises(pr.PgError, match="depend on it"):
        server.run("admin", ['DROP ROLE "u";'], "u")
    # 'inherit' (or an explicit GRANT, which is what the setting does) gives the creator u's privileges.
    for fixed in (pg_server("set, inherit"), pg_server()):
        if not fixed.has_privs_of("admin", "u"):
            fixed.run("admin", ['GRANT "u" TO CURRENT_USER;'], "u")
        fixed.run("admin", ['REASSIGN OWNED BY "u" TO "admin";', 'DROP OWNED BY "u";', 'DROP ROLE "u";'], "u")
        assert "u" not in fixed.roles and fixed.owned["admin"] == {"a table"}
    # 'set' alone gives SET ROLE, not the privileges.
    assert not pg_server("set").has_privs_of("admin", "u")


def test_role_rules_refuse_what_postgres_refuses() -> None:
    server = pg_server()
    server.add(pr.Role("other"))
    with pytest.raises(pr.PgError, match="ADMIN OPTION"):
        server.run("admin", ['GRANT "other" TO "u";'], "u")  # a role it did not create
    with pytest.raises(pr.PgError, match="alter role"):
        server.run("admin", ["ALTER ROLE \"other\" SET role = 'u';"], "u")
    server.run("admin", ['GRANT "u" TO CURRENT_USER;'], "u")
    with pytest.raises(pr.PgError, match="circular"):
        server.run("root", ['GRANT "admin" TO "u";'], "u")  # admin is a member of u: not even a superuser
    server.run("root", ['GRANT "other" TO "u";'], "u")  # a superuser may
    with pytest.raises(pr.PgError, match="permission denied to create"):
        server.run("u", ['CREATE ROLE "x";'], "x")
    with pytest.raises(ValueError, match="outside the model"):
        server.run("admin", ["TRUNCATE t;"], "u")


def test_the_do_block_swallows_only_duplicate_object() -> None:
    server = pg_server()
    block = (
        'DO $$ BEGIN CREATE ROLE "o" NOLOGIN; GRANT "o" TO CURRENT_USER; '
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
    )
    server.run("admin", [block, block], "u")  # the second run finds "o" and changes nothing
    assert server.members[("o", "admin")] == pr.Membership(admin=True, inherit=True, set=True)


@pytest.mark.parametrize("self_grant", ["", "set", "set, inherit"])
def test_vault_revokes_the_users_it_creates_whatever_createrole_self_grant(self_grant: str) -> None:
    """RDS's master user (CREATEROLE, createrole_self_grant empty) as well as CloudNativePG's admin: the
    revocation ends the session, hands the user's objects to the owner role and drops the user."""
    admin = pr.Role("vault_admin", createrole=True, self_grant=pr.self_grant_options(self_grant))
    creation = vp.database_creation_statements("orders", "orders")
    revocation = vp.database_revocation_statements("orders", "orders")
    assert pr.lease_lifecycle(admin, creation, revocation) == pr.Lifecycle(True, True)
    # Mutation: without the explicit grant, only createrole_self_grant 'inherit' would save it.
    bare = [s for s in creation if s != 'GRANT "{{name}}" TO CURRENT_USER;']
    assert len(bare) == len(creation) - 1
    outcome = pr.lease_lifecycle(admin, bare, revocation)
    assert outcome.revoked is ("inherit" in self_grant), outcome
