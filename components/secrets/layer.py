"""The secrets layer in the composition root: Vault's server (phase 1) and, once Vault is initialised,
its per-service configuration (phase 2, `vault.configure: true`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pulumi

from components import secrets
from components.certificates.cert_manager import CertificatesHandle
from components.contract import LayerContext
from components.data.layer import DataHandle
from components.mesh.istio import MeshHandle
from components.messaging.topology import topology
from components.paved_road.layer import ServicesHandle
from components.secrets.vault_config import VaultConfigArgs, VaultConfiguration, VaultService
from components.secrets.vault_server import VaultHandle, VaultServer, VaultServerArgs
from rampart.config import PlatformConfig
from rampart.config.models import Vault as VaultSettings

# As Vault, in the cluster, reaches the API server for TokenReviews.
IN_CLUSTER_API_SERVER = "https://kubernetes.default.svc"


def build_server(
    ctx: LayerContext,
    settings: VaultSettings,
    certificates: CertificatesHandle,
    mesh: MeshHandle,
    *,
    backend_ports: Sequence[int],
    database_ca: tuple[bool, str | None] = (False, None),
) -> VaultHandle:
    """``backend_ports``: where its secrets engines connect (the data layer's servers);
    ``database_ca``: whether to mount the RDS CA bundle, and its PEM (data.layer.vault_database_ca)."""
    return VaultServer(
        "vault",
        VaultServerArgs(
            ha_replicas=settings.replicas,
            certificates=certificates,
            mesh=mesh,
            aws=ctx.aws.pod_identity if ctx.aws else None,
            storage_class=None,
            storage_gb=settings.storage_gb,
            pod_security_groups=ctx.target.pod_security_groups.get(secrets.NAMESPACE, []),
            backend_ports=backend_ports,
            protect=ctx.protect,
            database_ca=database_ca[0],
            database_ca_pem=database_ca[1],
            **ctx.in_cluster(*certificates.ready),
        ),
        opts=ctx.cloud_opts,
    ).handle


def configure(
    ctx: LayerContext, config: PlatformConfig, vault: VaultHandle, data: DataHandle, services: ServicesHandle
) -> None:
    """Phase 2: auth, engines, per-service policies and roles, and the operator objects that deliver
    credentials into the services' namespaces."""
    # The config loader requires both with vault.configure (and has read the CA file once already).
    assert config.vault_token is not None and config.vault.ca_cert_file is not None
    grants = topology(config.services).grants
    VaultConfiguration(
        "vault-config",
        VaultConfigArgs(
            address=config.vault.address,
            token=pulumi.Output.secret(config.vault_token.get_secret_value()),
            ca_cert_pem=Path(config.vault.ca_cert_file).read_text(),
            # Vault's in-cluster name, on its certificate: verified on any route, the port-forward too.
            tls_server_name=urlsplit(vault.address).hostname,
            kubernetes_host=IN_CLUSTER_API_SERVER,
            services=[
                VaultService(
                    name=s.name,
                    namespace=s.name,
                    service_account=s.name,
                    database=bool(s.database),
                    broker_grants=grants.get(s.name, {}),
                )
                for s in config.services
            ],
            database_hosts=data.database_hosts,
            database_admin_password=dict(data.admin_passwords),
            database_server_ca_file=data.database_server_ca_file,
            broker=data.broker.vault_broker() if data.broker else None,
            vso_namespace=vault.operator_namespace,
            vault_connection=vault.connection_name,
            provider=ctx.provider,
            environment=ctx.environment,
            depends_on=[*vault.ready, *data.ready, *services.namespaces.values()],
        ),
        opts=ctx.opts,
    )
