"""The CloudNativePG layer built under mocks with an explicit provider, next to the service namespaces and
Vault it serves: chart values, the Cluster against its CRD schema, TLS, the bootstrap SQL and pg_hba,
secrets, quotas, the policy rules, and who can reach a service's database pods."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.certificates.cert_manager import ACME_ISSUER, CA_ISSUER, CertificatesHandle
from components.contract import ClusterHandle
from components.core import labels, quota
from components.data import cloudnative_pg as cnpg
from components.data import postgres
from components.data.cloudnative_pg import (
    CloudNativePgArgs,
    CloudNativePgOperator,
    PostgresCluster,
    PostgresClusterArgs,
)
from components.data.names import ADMIN_USER, cluster_name, in_cluster_host
from components.paved_road.microservice import Microservice, MicroserviceArgs
from components.paved_road.service_network import Peer
from components.secrets import vault_chart as vault_layer
from components.secrets.vault_policies import owner_role
from components.secrets.vault_server import VaultServer, VaultServerArgs
from policies import catalog
from policies.model import Resource
from policies.rules.kubernetes import DEPLOYMENT
from rampart.config import ServiceSpec, Sizing
from rampart.offline import values as stored
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from tests.support import schemas
from tests.support.harness import plan_of
from tests.support.helm import unknown_release_keys
from tests.support.plans import K8S_PROVIDER, RELEASE, name_of, of, one, policy_resources
from tests.support.reachability import Network, Pod
from tests.support.reference import crd_schemas

CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
# Both services have a database; payments calls orders.
ORDERS = ServiceSpec.model_validate(
    {"name": "orders", "image": "ghcr.io/acme/orders:1.4.2", "database": {"storage_gb": 20}}
)
PAYMENTS = ServiceSpec.model_validate(
    {
        "name": "payments",
        "image": "ghcr.io/acme/payments:2.0.1",
        "calls": ["orders"],
        "database": {"storage_gb": 5},
    }
)
SERVICES = (ORDERS, PAYMENTS)


def admin_password(service: str) -> str:
    return f"{service}AdminPasswordMustNotLeak0"


def build(*, environment: str = "local", instances: int = 1, engine_version: str = "16") -> Plan:
    prod = environment == "prod"

    def program() -> None:
        provider = k8s.Provider("k8s")
        # The internal issuer, never the public one: cluster_issuer is ACME here on purpose.
        certificates = CertificatesHandle(
            cluster_issuer=ACME_ISSUER, internal_issuer=CA_ISSUER, namespace="cert-manager", ready=[]
        )
        cluster = ClusterHandle(provider=provider, name="test", kubernetes_version="1.33", multi_zone=False)
        operator = CloudNativePgOperator(
            "cnpg", CloudNativePgArgs(environment=environment, provider=provider)
        ).handle
        VaultServer(
            "vault",
            VaultServerArgs(
                environment=environment,
                ha_replicas=1,
                provider=provider,
                certificates=certificates,
                mesh=None,
                aws=None,
                storage_class=None,
                backend_ports=[5432],
            ),
        )
        for spec in SERVICES:
            assert spec.database is not None
            service = Microservice(
                spec.name,
                MicroserviceArgs(
                    spec=spec,
                    environment=environment,
                    sizing=Sizing(),
                    cluster=cluster,
                    caller_namespaces=["payments"] if spec.name == "orders" else [],
                    callees=[Peer("orders", "orders", ORDERS.port)] if spec.name == "payments" else [],
                    extra_quota=postgres.database_quota(instances, spec.database.storage_gb),
                ),
            )
            PostgresCluster(
                f"{spec.name}-db",
                PostgresClusterArgs(
                    service=spec.name,
                    namespace=spec.name,
                    instances=instances,
                    storage_gb=spec.database.storage_gb,
                    admin_password=pulumi.Output.secret(admin_password(spec.name)),
                    certificates=certificates,
                    provider=provider,
                    operator=operator,
                    environment=environment,
                    depends_on=[service.namespace_resource],
                    engine_version=engine_version,
                    storage_class="gp3" if prod else None,
                    protect=prod,
                ),
            )

    return plan_of(program)


PLANS: dict[str, Callable[[], Plan]] = {
    "local": functools.cache(build),
    "prod": functools.cache(lambda: build(environment="prod", instances=3, engine_version="17")),
}


def database(plan: Plan, service: str = "orders") -> dict[str, Any]:
    return one(plan, "Cluster", cluster_name(service), service)


def spec_of(plan: Plan, service: str = "orders") -> dict[str, Any]:
    return database(plan, service)["inputs"]["spec"]  # type: ignore[no-any-return]


def operator_values(plan: Plan) -> dict[str, Any]:
    (release,) = [r for r in plan.of_type(RELEASE) if r["inputs"]["chart"] == "cloudnative-pg"]
    return release["inputs"]["values"]  # type: ignore[no-any-return]


def layer_resources(plan: Plan) -> list[dict[str, Any]]:
    """What this module's components registered (not the Microservices and Vault around them)."""
    types = ("rampart:data:CloudNativePgOperator", "rampart:data:PostgresCluster")
    return [r for r in plan.custom() if r.get("parent") and r["parent"].split("::")[2] in types]


# -- the operator ----------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_operator_values_key_exists_in_the_chart_defaults(plan: str) -> None:
    assert unknown_release_keys("cloudnative-pg", operator_values(PLANS[plan]())) == set()


def test_the_operator_is_a_pinned_release_in_its_own_namespace() -> None:
    (release,) = [
        r["inputs"] for r in PLANS["local"]().of_type(RELEASE) if r["inputs"]["chart"] == "cloudnative-pg"
    ]
    assert release["version"] == "0.29.0"
    assert release["repositoryOpts"] == {"repo": "https://cloudnative-pg.github.io/charts"}
    assert (release["name"], release["namespace"]) == ("cnpg", "cnpg-system")
    assert release["createNamespace"] is False


@pytest.mark.parametrize(("plan", "replicas"), [("local", 1), ("prod", 2)])
def test_operator_values_are_hardened(plan: str, replicas: int) -> None:
    values = operator_values(PLANS[plan]())
    assert values["replicaCount"] == replicas
    assert values["crds"] == {"create": True}
    assert values["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    container = values["containerSecurityContext"]
    assert container["runAsUser"] >= 10000 and container["runAsNonRoot"] is True
    assert container["allowPrivilegeEscalation"] is False and container["readOnlyRootFilesystem"] is True
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert values["monitoring"]["podMonitorEnabled"] is False
    assert ("topologySpreadConstraints" in values) is (replicas > 1)


def test_operator_namespace_is_restricted_out_of_the_mesh_with_a_quota_for_its_pods() -> None:
    plan = PLANS["prod"]()
    namespace = one(plan, "Namespace", "cnpg-system")["inputs"]["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace["istio-injection"] == "disabled"
    hard = one(plan, "ResourceQuota", "quota", "cnpg-system")["inputs"]["spec"]["hard"]
    # Two replicas and one surge pod of 500m / 512Mi limits each.
    assert hard["pods"] == "3" and hard["limits.cpu"] == "1500m" and hard["limits.memory"] == "1536Mi"
    assert hard["persistentvolumeclaims"] == "0"


# -- the Cluster -----------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_cluster_validates_against_its_crd_schema(plan: str) -> None:
    for service in SERVICES:
        manifest = to_manifest(database(PLANS[plan](), service.name))
        assert schemas.validate_custom(manifest, crd_schemas()) == [], service.name


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_custom_and_core_objects_of_the_layer_validate(plan: str) -> None:
    kinds: set[str] = set()
    for resource in layer_resources(PLANS[plan]()):
        if resource["type"] == RELEASE:
            continue
        manifest = to_manifest(resource)
        kinds.add(manifest["kind"])
        if schemas.is_core(manifest):
            assert schemas.validate_core(manifest, "1.33") == [], name_of(resource)
        else:
            assert schemas.validate_custom(manifest, crd_schemas()) == [], name_of(resource)
    assert {"Namespace", "ResourceQuota", "NetworkPolicy", "Secret", "Certificate", "Cluster"} <= kinds


def test_instances_storage_and_image_come_from_the_arguments() -> None:
    local, prod = spec_of(PLANS["local"]()), spec_of(PLANS["prod"]())
    assert (local["instances"], local["storage"]) == (1, {"size": "20Gi"})
    assert (prod["instances"], prod["storage"]) == (3, {"size": "20Gi", "storageClass": "gp3"})
    assert spec_of(PLANS["local"](), "payments")["storage"] == {"size": "5Gi"}
    assert local["imageName"] == "ghcr.io/cloudnative-pg/postgresql:16.15-minimal-trixie"
    assert prod["imageName"] == "ghcr.io/cloudnative-pg/postgresql:17.11-minimal-trixie"


def test_no_superuser_and_only_tls_1_3_with_scram() -> None:
    spec = spec_of(PLANS["local"]())
    assert spec["enableSuperuserAccess"] is False
    assert spec["postgresql"]["parameters"] == {
        "ssl_min_protocol_version": "TLSv1.3",
        "password_encryption": "scram-sha-256",
    }
    assert spec["logLevel"] == "info" and spec["primaryUpdateStrategy"] == "unsupervised"


def test_the_server_certificate_comes_from_the_internal_ca_and_names_every_service() -> None:
    plan = PLANS["local"]()
    spec = spec_of(plan)
    certificate = one(plan, "Certificate", "orders-db-server-tls", "orders")["inputs"]["spec"]
    assert spec["certificates"] == {
        "serverTLSSecret": certificate["secretName"],
        "serverCASecret": certificate["secretName"],
    }
    assert certificate["issuerRef"]["name"] == CA_ISSUER
    names = set(certificate["dnsNames"])
    assert in_cluster_host("orders", "orders") in names
    for suffix in ("rw", "ro", "r"):
        assert {
            f"orders-db-{suffix}",
            f"orders-db-{suffix}.orders",
            f"orders-db-{suffix}.orders.svc",
        } <= names


def test_the_cluster_waits_for_what_its_pods_need() -> None:
    plan = PLANS["local"]()
    resource = database(plan)
    dependencies = set(resource["dependencies"])
    needed = [
        one(plan, "Certificate", "orders-db-server-tls", "orders"),
        one(plan, "Secret", "orders-db-admin", "orders"),
        one(plan, "Namespace", "orders"),
        *[r for r in of(plan, "NetworkPolicy") if r["inputs"]["metadata"]["name"].startswith("orders-db-")],
        *[r for r in plan.of_type(RELEASE) if r["inputs"]["chart"] == "cloudnative-pg"],
    ]
    assert {r["urn"] for r in needed} <= dependencies
    assert resource["inputs"]["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    # The certificate waits for the namespace too (through the admin Secret it takes it from).
    certificate = one(plan, "Certificate", "orders-db-server-tls", "orders")
    assert one(plan, "Secret", "orders-db-admin")["urn"] in certificate["dependencies"]


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_kubernetes_resource_uses_the_explicit_provider(plan: str) -> None:
    resources = layer_resources(PLANS[plan]())
    assert len(resources) >= 20
    for resource in resources:
        assert resource["provider"].startswith(K8S_PROVIDER), resource["urn"]


def test_database_pods_stay_out_of_the_mesh_and_off_the_services_selectors() -> None:
    inherited = spec_of(PLANS["local"]())["inheritedMetadata"]
    assert inherited["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert inherited["labels"]["sidecar.istio.io/inject"] == "false"
    # Network policies tell service pods from database pods by the service's own selector label.
    assert labels.NAME not in inherited["labels"]


def test_a_service_named_like_cloudnative_pgs_pods_is_refused() -> None:
    with pytest.raises(ValueError, match="postgresql"):
        args(service="postgresql")


def test_high_availability_only_with_more_than_one_instance() -> None:
    local, prod = spec_of(PLANS["local"]()), spec_of(PLANS["prod"]())
    assert "affinity" not in local and "synchronous" not in local["postgresql"]
    assert local["primaryUpdateMethod"] == "restart"
    assert prod["affinity"] == {
        "enablePodAntiAffinity": True,
        "podAntiAffinityType": "required",
        "topologyKey": "kubernetes.io/hostname",
    }
    (spread,) = prod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"]["matchLabels"] == {
        "cnpg.io/cluster": "orders-db",
        "cnpg.io/podRole": "instance",
    }
    # A committed transaction is on a standby before the client hears so: failover loses nothing.
    assert prod["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}
    assert prod["primaryUpdateMethod"] == "switchover"
    two = postgres.cluster_spec("orders", "orders", instances=2, storage_gb=1, environment="dev")
    assert two["postgresql"]["synchronous"]["dataDurability"] == "preferred"
    assert two["affinity"]["podAntiAffinityType"] == "preferred"


def test_only_protected_in_prod() -> None:
    assert database(PLANS["prod"]())["protect"] is True
    assert database(PLANS["local"]())["protect"] is False


# -- Vault's admin, bootstrap SQL and pg_hba -------------------------------------------------------


def args(**overrides: Any) -> PostgresClusterArgs:
    values: dict[str, Any] = {
        "service": "orders",
        "namespace": "orders",
        "instances": 1,
        "storage_gb": 1,
        "admin_password": pulumi.Output.secret("x"),
        "certificates": CertificatesHandle(CA_ISSUER, CA_ISSUER, "cert-manager", []),
        "provider": None,
        "operator": cnpg.CloudNativePgHandle("cnpg-system", []),
        "environment": "local",
    }
    return PostgresClusterArgs(**(values | overrides))


def test_a_plain_string_password_is_refused() -> None:
    with pytest.raises(TypeError, match="secret pulumi Output"):
        args(admin_password="hunter2")
    with pytest.raises(ValueError, match="engine_version '15'"):
        args(engine_version="15")


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_admin_password_never_reaches_the_export_in_any_form(plan: str) -> None:
    exported = json.dumps(PLANS[plan]().to_export())
    for service in SERVICES:
        password = admin_password(service.name)
        verifier = postgres.scram_sha256_verifier(password, postgres.admin_salt(service.name, service.name))
        assert password not in exported and verifier.split("$")[2] not in exported
        secret = one(PLANS[plan](), "Secret", f"{service.name}-db-admin", service.name)["inputs"]
        assert stored.is_secret(secret["stringData"]), service.name


def test_the_admin_role_gets_the_verifier_never_the_cleartext() -> None:
    salt = postgres.admin_salt("orders", "orders")
    sql = postgres.admin_role_sql("s3cretPassword", salt)
    verifier = postgres.scram_sha256_verifier("s3cretPassword", salt)
    assert sql == f"CREATE ROLE \"{ADMIN_USER}\" WITH LOGIN PASSWORD '{verifier}';\n"
    assert "s3cretPassword" not in sql
    # The same password gives the same Secret; another database gets another salt.
    assert postgres.admin_role_sql("s3cretPassword", postgres.admin_salt("orders", "orders")) == sql
    assert postgres.admin_salt("payments", "payments") != salt
    with pytest.raises(ValueError, match="printable ASCII"):
        postgres.scram_sha256_verifier("pässword", salt)


def test_the_scram_verifier_answers_the_rfc_7677_exchange() -> None:
    # RFC 7677 section 3: user "user", password "pencil".
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = postgres.scram_sha256_verifier("pencil", salt)
    head, keys = verifier.split("$", 1)[1].split("$")
    assert head == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    server_signature = hmac.new(server_key, auth_message, "sha256").digest()
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    # The client's proof, unmasked with the stored key, is a client key that hashes to the stored key.
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.new(stored_key, auth_message, "sha256").digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_bootstrap_makes_vault_admin_a_role_creator_owning_the_database_not_the_initdb_owner() -> None:
    initdb = spec_of(PLANS["local"]())["bootstrap"]["initdb"]
    # CloudNativePG re-applies the initdb owner's password from its Secret on every primary start:
    # Vault's admin must not be that role, or each restart would undo Vault's rotate-root.
    assert initdb["owner"] == owner_role("orders") != ADMIN_USER
    assert "secret" not in initdb
    assert initdb["database"] == "orders" and initdb["dataChecksums"] is True
    assert initdb["postInitSQLRefs"] == {
        "secretRefs": [{"name": "orders-db-admin", "key": postgres.ADMIN_SQL_KEY}]
    }
    sql = initdb["postInitApplicationSQL"]
    assert f'ALTER ROLE "{ADMIN_USER}" CREATEROLE;' in sql
    assert f'ALTER DATABASE "orders" OWNER TO "{ADMIN_USER}";' in sql
    assert 'ALTER ROLE "orders_owner" NOLOGIN;' in sql
    assert f'GRANT "orders_owner" TO "{ADMIN_USER}" WITH ADMIN OPTION;' in sql
    assert any("createrole_self_grant = 'set, inherit'" in statement for statement in sql)


# CloudNativePG 1.30's pg_hba.conf around the user rules (pkg/postgres/configuration.go).
CNPG_FIXED_RULES = [
    "local all cnpg_metrics_exporter peer",
    "local all all peer",
    "hostssl postgres streaming_replica all cert",
    "hostssl replication streaming_replica all cert",
    "hostssl all cnpg_pooler_pgbouncer all cert",
]
CNPG_DEFAULT_RULES = ["host all all all scram-sha-256"]


def hba_method(rules: list[str], connection: str, database_: str, user: str) -> str | None:
    """The first matching pg_hba line's method (connection: local, ssl or plain; address is `all`)."""
    for line in rules:
        kind, db, role, *rest = line.split()
        method = rest[-1] if kind == "local" else rest[1]
        kinds = {"local": {"local"}, "host": {"ssl", "plain"}, "hostssl": {"ssl"}, "hostnossl": {"plain"}}
        databases = {database_} if db == "all" and database_ != "replication" else {db}
        if connection in kinds[kind] and database_ in databases and role in ("all", user):
            return method
    return None


def test_pg_hba_admits_only_tls_with_scram_to_the_service_database() -> None:
    rules = [*CNPG_FIXED_RULES, *spec_of(PLANS["local"]())["postgresql"]["pg_hba"], *CNPG_DEFAULT_RULES]
    assert hba_method(rules, "ssl", "orders", ADMIN_USER) == "scram-sha-256"
    assert hba_method(rules, "ssl", "orders", "v-token-orders-abc") == "scram-sha-256"
    assert hba_method(rules, "plain", "orders", ADMIN_USER) == "reject"
    assert hba_method(rules, "ssl", "postgres", ADMIN_USER) == "reject"
    assert hba_method(rules, "plain", "template1", "anyone") == "reject"
    # What CloudNativePG itself needs still comes first.
    assert hba_method(rules, "ssl", "replication", "streaming_replica") == "cert"
    assert hba_method(rules, "local", "orders", "postgres") == "peer"
    # Without our lines its default would let a password in over plaintext.
    assert (
        hba_method([*CNPG_FIXED_RULES, *CNPG_DEFAULT_RULES], "plain", "orders", ADMIN_USER) == "scram-sha-256"
    )


# -- quota ------------------------------------------------------------------------------------------


def test_database_quota_counts_instances_a_job_pod_and_their_volumes() -> None:
    assert postgres.database_quota(3, 20) == {
        "pods": "4",
        "requests.cpu": "1000m",
        "requests.memory": "2048Mi",
        "limits.cpu": "4000m",
        "limits.memory": "2048Mi",
        "persistentvolumeclaims": "4",
        "requests.storage": "80Gi",
    }


def test_the_service_namespace_quota_makes_room_for_its_database() -> None:
    plan = PLANS["local"]()
    hard = one(plan, "ResourceQuota", "quota", "orders")["inputs"]["spec"]["hard"]
    own = quota.quota_hard(ORDERS, Sizing().quota_headroom)
    assert hard == quota.combine(own, postgres.database_quota(1, 20))
    assert hard["persistentvolumeclaims"] == "2" and hard["requests.storage"] == "40Gi"


# -- policies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_the_data_layer_rules_pass(plan: str) -> None:
    resources = policy_resources(PLANS[plan]())
    clusters = [r for r in resources if r.type == CLUSTER]
    assert len(clusters) == 2
    hardened = catalog.rule("postgres-cluster-hardened")
    assert [message for r in clusters for message in hardened.evaluate(r)] == []
    protected = catalog.rule("in-cluster-stateful-protected")
    found = [message for r in clusters for message in protected.evaluate(r)]
    assert (found == []) is (plan == "prod")


def test_the_namespace_rules_pass_for_the_operator_namespace() -> None:
    stand_in = Resource(
        "urn:stand-in:cnpg", DEPLOYMENT, "cnpg", {"metadata": {"name": "x", "namespace": "cnpg-system"}}
    )
    resources = [*policy_resources(PLANS["local"]()), stand_in]
    for name in ("namespace-default-deny", "namespace-quota"):
        assert catalog.rule(name).evaluate_stack(resources) == [], name
    bare = [r for r in resources if r.namespace != "cnpg-system" or r.type == DEPLOYMENT]
    for name in ("namespace-default-deny", "namespace-quota"):
        assert catalog.rule(name).evaluate_stack(bare), name


# -- who reaches a database ---------------------------------------------------------------------------


def database_pod(plan: Plan, service: str, role: str = "primary") -> Pod:
    """A pod of the service's Cluster: the labels CloudNativePG gives every instance, and inherited ones."""
    name = cluster_name(service)
    own = {
        "cnpg.io/cluster": name,
        "cnpg.io/podRole": "instance",
        "cnpg.io/instanceRole": role,
        labels.NAME: "postgresql",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "cloudnative-pg",
    }
    return Pod(service, own | spec_of(plan, service)["inheritedMetadata"]["labels"])


def service_pod(service: str) -> Pod:
    return Pod(service, labels.selector(service))


OPERATOR = Pod("cnpg-system", postgres.OPERATOR_PODS)
VAULT = Pod("vault", vault_layer.SERVER_PODS)
VAULT_OPERATOR = Pod("vault-secrets-operator-system", vault_layer.OPERATOR_PODS)


@pytest.fixture(scope="module")
def network() -> Network:
    return Network(PLANS["local"]())


def test_only_the_owner_vault_the_operator_and_its_peers_reach_a_database(network: Network) -> None:
    plan = PLANS["local"]()
    primary, replica = database_pod(plan, "orders"), database_pod(plan, "orders", "replica")
    assert network.pod_to_pod(service_pod("orders"), primary, 5432)
    assert network.pod_to_pod(VAULT, primary, 5432)
    assert network.pod_to_pod(OPERATOR, primary, 8000) and network.pod_to_pod(OPERATOR, primary, 5432)
    assert network.pod_to_pod(replica, primary, 5432) and network.pod_to_pod(replica, primary, 8000)
    # Nobody else: not the other service (which calls orders), its database, Vault's operator, or a
    # pod in the service's namespace without the service's labels.
    for stranger in (
        service_pod("payments"),
        database_pod(plan, "payments"),
        VAULT_OPERATOR,
        Pod("orders", {"app": "debug"}),
    ):
        assert not network.pod_to_pod(stranger, primary, 5432), stranger
    # The service and Vault get Postgres, not the instance manager.
    assert not network.pod_to_pod(service_pod("orders"), primary, 8000)
    assert not network.pod_to_pod(VAULT, primary, 8000)


def admits(network: Network, destination: Pod, source: Pod, port: int) -> bool:
    """The destination's ingress side alone (its namespace's policies), whatever the source may send."""
    return network._allowed(destination, source, port, "Ingress")


def test_the_database_side_refuses_strangers_whatever_their_egress(network: Network) -> None:
    plan = PLANS["local"]()
    primary = database_pod(plan, "orders")
    # Pods in a namespace without policies may send anywhere: the database's ingress alone stops them,
    # even one that wears the owner's labels.
    for stranger in (Pod("default", {}), Pod("default", labels.selector("orders"))):
        assert not network.pod_to_pod(stranger, primary, 5432), stranger
    for stranger in (Pod("orders", {"app": "debug"}), service_pod("payments"), VAULT_OPERATOR):
        assert not admits(network, primary, stranger, 5432), stranger
    assert admits(network, primary, service_pod("orders"), 5432)


def test_each_service_reaches_its_own_database_only(network: Network) -> None:
    plan = PLANS["local"]()
    assert network.pod_to_pod(service_pod("payments"), database_pod(plan, "payments"), 5432)
    assert not network.pod_to_pod(service_pod("orders"), database_pod(plan, "payments"), 5432)
    # The call graph is untouched: payments still reaches orders' pods, on their port only.
    assert network.pod_to_pod(service_pod("payments"), service_pod("orders"), ORDERS.port)


def test_database_pods_reach_the_api_server_and_their_peers_not_the_service(network: Network) -> None:
    plan = PLANS["local"]()
    primary = database_pod(plan, "orders")
    assert network.pod_to_private_address(primary, 6443) and network.pod_to_private_address(primary, 443)
    assert not network.pod_to_private_address(service_pod("orders"), 6443)
    assert not network.pod_to_pod(primary, service_pod("orders"), ORDERS.port)
    assert not network.pod_to_pod(primary, database_pod(plan, "payments"), 5432)


def test_the_operator_reaches_instances_and_the_api_server_and_admits_only_webhook_calls(
    network: Network,
) -> None:
    plan = PLANS["local"]()
    assert network.pod_to_private_address(OPERATOR, 443)
    assert not network.pod_to_pod(OPERATOR, service_pod("orders"), ORDERS.port)
    # The API server comes from a private address that is not a pod: the conservative reading of the
    # webhook's ipBlock rule lets any pod in, on the webhook port only.
    assert network.pod_to_pod(Pod("default", {}), OPERATOR, postgres.WEBHOOK_PORT)
    assert not network.pod_to_pod(Pod("default", {}), OPERATOR, 8080)
    assert not network.pod_to_pod(database_pod(plan, "orders"), OPERATOR, postgres.WEBHOOK_PORT)


def test_policy_names_say_what_they_allow() -> None:
    names = {r["inputs"]["metadata"]["name"] for r in of(PLANS["local"](), "NetworkPolicy")}
    assert {
        "orders-db-allow-from-orders",
        "orders-db-allow-from-vault",
        "orders-db-allow-from-cnpg-operator",
        "orders-db-allow-replication",
        "orders-db-allow-kubernetes-api",
        "orders-allow-to-orders-db",
        "allow-webhook-from-api-server",
        "allow-to-postgres-instances",
    } <= names
