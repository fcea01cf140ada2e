"""Vault's configuration layer, applied once Vault is initialised and reachable, and the Vault Secrets
Operator (VSO) objects that deliver each service's credentials into its namespace.

Inside Vault: an audit device (stdout, shipped to Loki); Kubernetes auth; a KV v2 mount; the
database engine with one connection and one dynamic role per service database; the RabbitMQ
engine with one role per service that uses queues; per service a policy
(:mod:`components.secrets.vault_policies`) and an auth role bound to exactly its service account in
exactly its namespace, for tokens with the ``vault`` audience only.

In each service's namespace: a VaultAuth (that service account, that role) and a VaultDynamicSecret
per credential, written to ``<service>-db-credentials`` / ``<service>-broker-credentials``; VSO
renews the lease and restarts the Deployment when the credentials change.

Root credentials: every Postgres connection is followed by ``database/rotate-root/<service>`` (a
``vault.generic.Endpoint``), so the admin password the data layer handed over stops working at once
and from then on only Vault knows one. The provider sends that password again only if it changes
(the data layer re-provisions), and then the rotation runs again (``replacement_trigger``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import pulumi_vault as vault

from components.core import labels
from components.core.base import InClusterArgs, InClusterComponent
from components.data.names import ADMIN_USER, database_name
from components.messaging.topology import Grant
from components.secrets import vault_policies as vp

KUBERNETES_AUTH = "kubernetes"
# Service-account tokens VSO requests for a service carry this audience and nothing else; the auth
# roles accept no other, so a token minted for another audience (the API server's) cannot log in.
AUDIENCE = "vault"
# Vault hashes the passwords it generates before sending them (Vault 1.14+, Postgres 10+).
SCRAM_SHA_256 = "scram-sha-256"
# Vault tokens of a service: short-lived, renewed by VSO.
TOKEN_TTL = 900
TOKEN_MAX_TTL = 3600
# Dynamic database and broker credentials: one hour, renewed up to a day, then replaced.
CREDENTIAL_TTL = 3600
CREDENTIAL_MAX_TTL = 86400
# The smallest service-account token lifetime VSO accepts.
SA_TOKEN_SECONDS = 600

VSO_API = "secrets.hashicorp.com/v1beta1"


@dataclass(frozen=True)
class VaultService:
    """One paved-road service, as Vault sees it."""

    name: str
    namespace: str
    service_account: str
    database: bool
    # vhost -> what the service's broker users may do there (components.messaging.topology).
    broker_grants: Mapping[str, Grant] = field(default_factory=dict)

    @property
    def uses_broker(self) -> bool:
        return bool(self.broker_grants)


@dataclass(frozen=True, kw_only=True)
class VaultConfigArgs(InClusterArgs):
    # https://vault.vault.svc:8200 in the cluster, or a port-forward for the operator.
    address: str
    # A secret Output (`pulumi config set --secret`, config.require_secret): a plain str is refused.
    token: pulumi.Input[str]
    # The CA that signed Vault's serving certificate; None trusts the system store.
    ca_cert_pem: pulumi.Input[str] | None
    # As Vault (in the cluster) reaches the API server for TokenReviews.
    kubernetes_host: str
    services: list[VaultService]
    # service -> Postgres host:port, and the secret admin password the data layer provisions.
    database_hosts: Mapping[str, pulumi.Input[str]]
    database_admin_password: Mapping[str, pulumi.Input[str]]
    # The CA of the database servers' certificates, as a file in Vault's pods (required with databases).
    database_server_ca_file: str | None
    # (management URI, username, secret password), or None where no service uses queues.
    broker: tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str]] | None
    vso_namespace: str
    vault_connection: str
    # depends_on: the services' namespaces, the VSO release (its CRDs), which the VSO objects wait for.
    # The name Vault's certificate must carry, whatever the route: its in-cluster name, also through a
    # port-forward to 127.0.0.1 (Go's TLS verifies ServerName, not the dialled host). None: the address's.
    tls_server_name: str | None = None


@dataclass(frozen=True)
class VaultConfigHandle:
    """What the workload layer needs: where credentials land, and the mounts for anything else."""

    kv_mount: str
    database_mount: str
    broker_mount: str
    auth_mount: str
    audience: str
    # service -> Kubernetes Secret VSO keeps its credentials in.
    database_secrets: dict[str, str]
    broker_secrets: dict[str, str]


def database_secret(service: str) -> str:
    return f"{service}-db-credentials"


def broker_secret(service: str) -> str:
    return f"{service}-broker-credentials"


def connection_url(host: str, database: str, server_ca_file: str) -> str:
    """verify-full against ``server_ca_file`` (a path inside Vault's pods: the platform CA for
    CloudNativePG, the RDS CA bundle on aws): Vault checks the server certificate and its name before
    it sends the admin password (https://www.postgresql.org/docs/current/libpq-ssl.html)."""
    url = f"postgresql://{{{{username}}}}:{{{{password}}}}@{host}/{database}"
    return f"{url}?sslmode=verify-full&sslrootcert={server_ca_file}"


def check(args: VaultConfigArgs) -> None:
    """Refuse arguments that would configure something unsafe or incomplete, all problems at once."""
    problems: list[str] = []
    if not args.address.startswith("https://"):
        problems.append(f"address {args.address!r}: Vault is only reached over TLS (https://)")
    host = urlsplit(args.address).hostname or ""
    if _is_loopback(host) and (args.tls_server_name is None or args.ca_cert_pem is None):
        problems.append(
            f"address {args.address!r}: Vault's certificate names in-cluster hosts only, from the "
            "platform's CA; through a port-forward give tls_server_name (its in-cluster name) and ca_cert_pem"
        )
    names = [service.name for service in args.services]
    problems += [
        f"service {name!r} is declared twice" for name in sorted(set(names)) if names.count(name) > 1
    ]
    for service in args.services:
        for value, what in ((service.name, "service"), (service.namespace, "namespace")):
            try:
                vp.dns_label(value, what)
            except ValueError as error:
                problems.append(str(error))
        if service.database and service.name not in args.database_hosts:
            problems.append(f"{service.name}: has a database but no entry in database_hosts")
        if service.database and service.name not in args.database_admin_password:
            problems.append(f"{service.name}: has a database but no entry in database_admin_password")
        if service.database and not args.database_server_ca_file:
            problems.append(
                f"{service.name}: has a database but no database_server_ca_file: Vault would send the "
                "admin password to a server it has not verified (aws: databases.ca_bundle_file)"
            )
        if service.uses_broker and args.broker is None:
            problems.append(f"{service.name}: uses queues but no broker is configured")
    if problems:
        raise ValueError("invalid Vault configuration:\n  " + "\n  ".join(problems))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def secret(value: pulumi.Input[str], what: str) -> pulumi.Output[str]:
    """The value as a Pulumi secret; a plain string means it already sits in code or plain config."""
    if isinstance(value, str):
        raise TypeError(f"{what}: pass a secret Output (config.require_secret / Output.secret), not a str")
    return pulumi.Output.secret(value)


def ca_cert_file(pem: str, directory: Path | None = None) -> str:
    """The Vault provider takes its CA only as a file path (no inline PEM): write it to a file of our
    own, named by its content, in a private directory nobody else can swap it in."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = directory or cache / "rampart-vault-ca"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(f"{folder}: must be owned by this user and writable by nobody else")
    path = folder / f"vault-ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.is_file() or path.read_text() != pem:
        staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        staging.write_text(pem)
        staging.replace(path)
    return str(path)


def vault_auth_spec(service: VaultService, connection_ref: str) -> dict[str, Any]:
    return {
        "vaultConnectionRef": connection_ref,
        "method": "kubernetes",
        "mount": KUBERNETES_AUTH,
        "kubernetes": {
            "role": service.name,
            "serviceAccount": service.service_account,
            "audiences": [AUDIENCE],
            "tokenExpirationSeconds": SA_TOKEN_SECONDS,
        },
    }


def dynamic_secret_spec(service: VaultService, mount: str, destination: str) -> dict[str, Any]:
    return {
        "vaultAuthRef": service.name,
        "mount": mount,
        "path": f"creds/{service.name}",
        "destination": {"name": destination, "create": True},
        # The service reads its credentials at start-up; new ones reach it through a rollout.
        "rolloutRestartTargets": [{"kind": "Deployment", "name": service.name}],
        # Deleting the object ends the lease: the database user or broker user goes with it.
        "revoke": True,
    }


class VaultConfiguration(InClusterComponent):
    handle: VaultConfigHandle

    def __init__(self, name: str, args: VaultConfigArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:secrets:VaultConfiguration", name, **args.placement(), opts=opts)
        check(args)
        self._name = name
        self._args = args
        ca = args.ca_cert_pem
        self.provider = vault.Provider(
            f"{name}-vault",
            address=args.address,
            token=secret(args.token, "token"),
            ca_cert_file=pulumi.Output.from_input(ca).apply(ca_cert_file) if ca is not None else None,
            # Explicit, so VAULT_SKIP_VERIFY in someone's environment cannot turn verification off.
            skip_tls_verify=False,
            tls_server_name=args.tls_server_name,
            # Work with a short-lived child token, not the configured token itself.
            skip_child_token=False,
            opts=pulumi.ResourceOptions(parent=self),
        )

        # The one audit device writes to stdout (file_path "stdout", the file device's documented
        # stream), which Alloy ships to Loki (labelled log_type=vault_audit): Loki's retention keeps it,
        # the kubelet's container-log rotation bounds what stays on the node. No device writes to a
        # file on a volume: Vault's file device never rotates, and once its volume is full Vault
        # refuses every request it cannot audit. https://developer.hashicorp.com/vault/docs/audit/file,
        # https://developer.hashicorp.com/vault/docs/audit#blocked-audit-devices,
        # https://kubernetes.io/docs/concepts/cluster-administration/logging/#log-rotation
        vault.Audit(
            f"{name}-audit-stdout",
            type="file",
            path="stdout",
            options={"file_path": "stdout"},
            description="Every request and response, HMAC'd, to stdout: shipped to Loki by Alloy.",
            opts=self._in_vault(),
        )
        auth = vault.AuthBackend(
            f"{name}-kubernetes-auth",
            type="kubernetes",
            path=KUBERNETES_AUTH,
            description="Service-account logins (Vault Secrets Operator, on behalf of each service).",
            opts=self._in_vault(),
        )
        vault.kubernetes.AuthBackendConfig(
            f"{name}-kubernetes-auth-config",
            backend=auth.path,
            kubernetes_host=args.kubernetes_host,
            # Vault reviews tokens with its own pod's token and CA (the chart binds it to
            # system:auth-delegator): no long-lived reviewer JWT to store here.
            disable_local_ca_jwt=False,
            # Issuers differ per cluster (EKS: its OIDC URL); the TokenReview is the check that counts.
            disable_iss_validation=True,
            opts=self._in_vault(),
        )
        kv = vault.Mount(
            f"{name}-kv",
            path=vp.KV_MOUNT,
            type="kv",
            options={"version": "2"},
            description="Static secrets, one folder per service: kv/<service>/...",
            opts=self._in_vault(),
        )
        database = vault.Mount(
            f"{name}-database",
            path=vp.DATABASE_MOUNT,
            type="database",
            default_lease_ttl_seconds=CREDENTIAL_TTL,
            max_lease_ttl_seconds=CREDENTIAL_MAX_TTL,
            description="Short-lived Postgres users, one role per service database.",
            opts=self._in_vault(),
        )
        broker = self._broker(args.broker) if args.broker is not None else None

        database_secrets: dict[str, str] = {}
        broker_secrets: dict[str, str] = {}
        for service in args.services:
            grants: list[pulumi.Resource] = [kv]
            if service.database:
                grants.append(self._database_role(service, database))
                database_secrets[service.name] = database_secret(service.name)
            if service.uses_broker and broker is not None:
                grants.append(self._broker_role(service, broker))
                broker_secrets[service.name] = broker_secret(service.name)
            self._deliver(service, self._identity(service, auth, grants))

        self.handle = VaultConfigHandle(
            kv_mount=vp.KV_MOUNT,
            database_mount=vp.DATABASE_MOUNT,
            broker_mount=vp.BROKER_MOUNT,
            auth_mount=KUBERNETES_AUTH,
            audience=AUDIENCE,
            database_secrets=database_secrets,
            broker_secrets=broker_secrets,
        )
        self.register_outputs(
            {
                "kvMount": kv.path,
                "databaseMount": database.path,
                "brokerMount": broker.path if broker else None,
                "authMount": auth.path,
                "databaseSecrets": database_secrets,
                "brokerSecrets": broker_secrets,
            }
        )

    # -- options -----------------------------------------------------------------------------

    def _in_vault(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        # Every Vault resource names this provider: none may fall back to an ambient VAULT_TOKEN.
        return pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=list(depends_on))

    # -- engines and roles -------------------------------------------------------------------

    def _broker(
        self, broker: tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str]]
    ) -> vault.rabbitmq.SecretBackend:
        uri, username, password = broker
        return vault.rabbitmq.SecretBackend(
            f"{self._name}-rabbitmq",
            path=vp.BROKER_MOUNT,
            connection_uri=uri,
            username=username,
            password=secret(password, "broker password"),
            verify_connection=True,
            default_lease_ttl_seconds=CREDENTIAL_TTL,
            max_lease_ttl_seconds=CREDENTIAL_MAX_TTL,
            description="Short-lived RabbitMQ users, one role per service that uses queues.",
            opts=self._in_vault(),
        )

    def _database_role(self, service: VaultService, mount: vault.Mount) -> pulumi.Resource:
        """The service's connection (its own database, its own admin), rotation, and dynamic role."""
        name, svc, args = self._name, service.name, self._args
        password = secret(args.database_admin_password[svc], f"{svc}: database admin password")
        connection = vault.database.SecretBackendConnection(
            f"{name}-{svc}-db-connection",
            backend=mount.path,
            name=svc,
            allowed_roles=[svc],
            postgresql=vault.database.SecretBackendConnectionPostgresqlArgs(
                connection_url=pulumi.Output.from_input(args.database_hosts[svc]).apply(
                    lambda host: connection_url(host, database_name(svc), args.database_server_ca_file or "")
                ),
                username=ADMIN_USER,
                password=password,
                # Vault hashes generated passwords itself: cleartext never reaches Postgres' logs.
                password_authentication=SCRAM_SHA_256,
            ),
            root_rotation_statements=vp.database_root_rotation_statements(),
            verify_connection=True,
            opts=self._in_vault(),
        )
        vault.generic.Endpoint(
            f"{name}-{svc}-db-rotate-root",
            path=pulumi.Output.concat(mount.path, "/rotate-root/", connection.name),
            data_json="{}",
            # A one-shot write: nothing to read back, nothing to undo.
            disable_read=True,
            disable_delete=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=self.provider,
                depends_on=[connection],
                replace_with=[connection],
                replacement_trigger=password,
            ),
        )
        return vault.database.SecretBackendRole(
            f"{name}-{svc}-db-role",
            backend=mount.path,
            name=svc,
            db_name=connection.name,
            default_ttl=CREDENTIAL_TTL,
            max_ttl=CREDENTIAL_MAX_TTL,
            creation_statements=vp.database_creation_statements(svc, database_name(svc)),
            revocation_statements=vp.database_revocation_statements(svc, database_name(svc)),
            opts=self._in_vault(),
        )

    def _broker_role(self, service: VaultService, backend: vault.rabbitmq.SecretBackend) -> pulumi.Resource:
        return vault.rabbitmq.SecretBackendRole(
            f"{self._name}-{service.name}-broker-role",
            backend=backend.path,
            name=service.name,
            # No management-UI or policy tags: the user only publishes and consumes.
            tags="",
            vhosts=[
                vault.rabbitmq.SecretBackendRoleVhostArgs(
                    host=vhost, configure=grant.configure, write=grant.write, read=grant.read
                )
                for vhost, grant in sorted(service.broker_grants.items())
            ],
            opts=self._in_vault(),
        )

    def _identity(
        self, service: VaultService, auth: vault.AuthBackend, grants: Sequence[pulumi.Resource]
    ) -> vault.kubernetes.AuthBackendRole:
        """The service's policy, and the one service account in the one namespace that gets it."""
        svc = service.name
        policy = vault.Policy(
            f"{self._name}-{svc}-policy",
            name=svc,
            policy=vp.service_policy(
                svc,
                kv_mount=vp.KV_MOUNT,
                database=service.database,
                broker=service.uses_broker and self._args.broker is not None,
            ),
            opts=self._in_vault(grants),
        )
        return vault.kubernetes.AuthBackendRole(
            f"{self._name}-{svc}-auth-role",
            backend=auth.path,
            role_name=svc,
            bound_service_account_names=[service.service_account],
            bound_service_account_namespaces=[service.namespace],
            audience=AUDIENCE,
            token_policies=[policy.name],
            token_ttl=TOKEN_TTL,
            token_max_ttl=TOKEN_MAX_TTL,
            opts=self._in_vault(),
        )

    # -- delivery (VSO) ----------------------------------------------------------------------

    def _deliver(self, service: VaultService, role: vault.kubernetes.AuthBackendRole) -> None:
        """VaultAuth and VaultDynamicSecrets; they follow the role, which follows policy and engines."""
        name, svc, args = self._name, service.name, self._args
        common = labels.common(args.environment) | labels.selector(svc)

        def meta(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=service.namespace, labels=common)

        auth = k8s.apiextensions.CustomResource(
            f"{name}-{svc}-vault-auth",
            api_version=VSO_API,
            kind="VaultAuth",
            metadata=meta(svc),
            spec=vault_auth_spec(service, f"{args.vso_namespace}/{args.vault_connection}"),
            opts=self.on_cluster([role]),
        )
        deliveries: list[tuple[str, str, str]] = []
        if service.database:
            deliveries.append(("db", vp.DATABASE_MOUNT, database_secret(svc)))
        if service.uses_broker:
            deliveries.append(("broker", vp.BROKER_MOUNT, broker_secret(svc)))
        for suffix, mount, destination in deliveries:
            k8s.apiextensions.CustomResource(
                f"{name}-{svc}-{suffix}-secret",
                api_version=VSO_API,
                kind="VaultDynamicSecret",
                metadata=meta(f"{svc}-{suffix}"),
                spec=dynamic_secret_spec(service, mount, destination),
                opts=self.on_cluster([auth]),
            )
