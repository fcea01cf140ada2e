"""The platform: the cluster layer, certificates, the mesh, the paved road for every declared
service, and the API gateway in front of the public ones.

Layers hand each other small typed handles (ClusterHandle, CertificatesHandle, MeshHandle);
no layer reaches into another's children.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.certificates.cert_manager import AcmeAws, Certificates, CertificatesArgs
from components.data import layer as data_layer
from components.data.names import POSTGRES_PORT
from components.gateway import kong as gateway_layer
from components.gateway.kong import Gateway, GatewayArgs, PublicService
from components.mesh.istio import Mesh, MeshArgs, MeshHandle
from components.mesh.policy import ServiceIdentity
from components.messaging.broker import MANAGEMENT_PORT as RABBITMQ_MANAGEMENT_PORT
from components.messaging.topology import topology
from components.observability.logging_tracing import (
    LoggingTracing,
    LoggingTracingArgs,
    LogsAws,
    span_export_egress,
    tempo_extension_provider,
)
from components.observability.monitoring import Monitoring, MonitoringArgs
from components.paved_road.microservice import MeshBinding, Microservice, MicroserviceArgs
from components.paved_road.service_network import Peer
from components.secrets.vault_config import VaultConfigArgs, VaultConfiguration, VaultService
from components.secrets.vault_server import NAMESPACE as VAULT_NAMESPACE
from components.secrets.vault_server import VaultHandle, VaultServer, VaultServerArgs
from components.targets.aws.cluster import AwsCluster, AwsClusterArgs
from components.targets.aws.handles import PodIdentity
from components.targets.aws.pod_security import PodSecurityGroups, PodSecurityGroupsArgs
from components.targets.kubernetes import ClusterHandle, ExistingCluster, ExistingClusterArgs
from rampart.config import PlatformConfig

OBSERVABILITY_NAMESPACE = "monitoring"
# Room in the monitoring namespace's quota for Loki, Tempo and Alloy (one Alloy pod per node).
LOGS_AND_TRACES_QUOTA = {
    "pods": "40",
    "requests.cpu": "4",
    "requests.memory": "8Gi",
    "limits.cpu": "8",
    "limits.memory": "16Gi",
    "persistentvolumeclaims": "4",
}


class Platform(pulumi.ComponentResource):
    cluster: ClusterHandle
    services: dict[str, Microservice]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:index:Platform", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        acme_aws: AcmeAws | None = None
        logs_aws: LogsAws | None = None
        vault_aws: PodIdentity | None = None
        aws_cluster: AwsCluster | None = None
        # workload -> the security groups its pods carry (aws: services with a database, and Vault).
        pod_groups: dict[str, list[pulumi.Input[str]]] = {}
        aws_opts = child
        if config.target == "aws":
            assert config.aws is not None  # enforced when the config is loaded
            aws_cluster = AwsCluster(
                "cluster",
                AwsClusterArgs(
                    environment=config.environment,
                    settings=config.aws,
                    kubernetes_version=config.kubernetes.version,
                    tags={
                        "environment": config.environment,
                        "owner": config.owner,
                        "cost-center": config.cost_center,
                    },
                    protect=config.environment in ("staging", "prod"),
                ),
                opts=child,
            )
            self.cluster = aws_cluster.handle
            aws_opts = pulumi.ResourceOptions(parent=self, providers=[aws_cluster.aws_provider])
            eks = aws_cluster.eks
            acme_aws = AcmeAws(
                cluster_name=eks.cluster_name,
                cluster_arn=eks.cluster_arn,
                partition=eks.partition,
                permissions_boundary=config.aws.permissions_boundary_arn,
            )
            vault_aws = PodIdentity(
                cluster_name=eks.cluster_name,
                cluster_arn=eks.cluster_arn,
                account_id=eks.account_id,
                partition=eks.partition,
                region=eks.region,
                permissions_boundary=config.aws.permissions_boundary_arn,
            )
            logs_aws = LogsAws.of(vault_aws, protect=config.environment in ("staging", "prod"))
            pod_groups = self._pod_security_groups(config, aws_cluster, aws_opts)
        else:
            self.cluster = ExistingCluster(
                "cluster",
                ExistingClusterArgs(
                    context=config.kubernetes.context,
                    kubernetes_version=config.kubernetes.version,
                    multi_zone=config.kubernetes.multi_zone,
                ),
                opts=child,
            ).handle
        provider, ready = self.cluster.provider, self.cluster.ready

        certificates = Certificates(
            "certificates",
            CertificatesArgs(
                config=config.certificates,
                provider=provider,
                environment=config.environment,
                depends_on=ready,
                aws=acme_aws if config.certificates.issuer == "acme" else None,
            ),
            opts=aws_opts,
        ).handle
        mesh = Mesh(
            "mesh",
            MeshArgs(
                config=config.mesh,
                provider=provider,
                environment=config.environment,
                depends_on=ready,
                extension_providers=[tempo_extension_provider(OBSERVABILITY_NAMESPACE)],
            ),
            opts=child,
        ).handle

        vault = VaultServer(
            "vault",
            VaultServerArgs(
                environment=config.environment,
                ha_replicas=config.vault.replicas,
                provider=provider,
                certificates=certificates,
                mesh=mesh,
                aws=vault_aws,
                storage_class=None,
                depends_on=[*ready, *certificates.ready],
                storage_gb=config.vault.storage_gb,
                # Its secrets engines reach the databases and, in the cluster, the broker's management API.
                pod_security_groups=pod_groups.get(VAULT_NAMESPACE, []),
                backend_ports=[POSTGRES_PORT]
                + ([RABBITMQ_MANAGEMENT_PORT] if config.uses_queues and config.target != "aws" else []),
            ),
            opts=aws_opts,
        ).handle

        needs = data_layer.service_needs(config)
        self.services = self._services(config, mesh, child, needs, pod_groups)
        # The first password of each database's Vault admin: Vault rotates it on first use.
        admin_passwords = {
            s.name: random.RandomPassword(
                f"{s.name}-vault-admin", length=32, special=False, opts=child
            ).result
            for s in config.services
            if s.database
        }
        data = data_layer.DataLayer(
            "data",
            data_layer.DataLayerArgs(
                config=config,
                provider=provider,
                certificates=certificates,
                mesh=mesh,
                namespaces={name: svc.namespace_resource for name, svc in self.services.items()},
                admin_passwords=admin_passwords,
                aws=self._data_aws(config, aws_cluster, pod_groups, aws_opts) if aws_cluster else None,
                depends_on=ready,
            ),
            opts=child,
        ).handle
        if config.vault.configure:
            self._configure_vault(
                config, provider=provider, vault=vault, data=data, admin_passwords=admin_passwords, opts=child
            )
        Gateway(
            "gateway",
            GatewayArgs(
                config=config.gateway,
                provider=provider,
                environment=config.environment,
                on_aws=config.target == "aws",
                cluster_issuer=certificates.cluster_issuer,
                injection_labels=mesh.injection_labels,
                # Routes live in the services' namespaces: each waits for its own namespace only.
                services=[
                    PublicService(spec=s, namespace=s.name, ready=[self.services[s.name].namespace_resource])
                    for s in config.services
                    if s.routes
                ],
                depends_on=[*mesh.ready, *certificates.ready],
            ),
            opts=child,
        )
        self._observability(config, provider, mesh, logs_aws, aws_opts)
        self.register_outputs({"services": {name: svc.address for name, svc in self.services.items()}})

    def _pod_security_groups(
        self, config: PlatformConfig, aws_cluster: AwsCluster, aws_opts: pulumi.ResourceOptions
    ) -> dict[str, list[pulumi.Input[str]]]:
        """A security group for the pods that reach databases (their services' and Vault's): the
        databases admit these groups only. Each workload's pods also keep the cluster's group."""
        workloads = {s.name: s.name for s in config.services if s.database} | {
            VAULT_NAMESPACE: VAULT_NAMESPACE
        }
        cluster_group = aws_cluster.eks.cluster_security_group_id
        groups = PodSecurityGroups(
            "pod-security-groups",
            PodSecurityGroupsArgs(
                environment=config.environment,
                vpc_id=aws_cluster.network.vpc_id,
                cluster_security_group_id=cluster_group,
                workloads=workloads,
                # Each workload attaches its groups itself, before its pods start.
                kubernetes_provider=None,
                tags={"environment": config.environment, "owner": config.owner},
            ),
            opts=aws_opts,
        )
        return {workload: [group, cluster_group] for workload, group in groups.security_group_ids.items()}

    def _data_aws(
        self,
        config: PlatformConfig,
        aws_cluster: AwsCluster,
        pod_groups: dict[str, list[pulumi.Input[str]]],
        aws_opts: pulumi.ResourceOptions,
    ) -> data_layer.DataAws:
        assert config.aws is not None  # enforced when the config is loaded
        eks = aws_cluster.eks
        return data_layer.DataAws(
            network=aws_cluster.network,
            cluster_security_group_id=eks.cluster_security_group_id,
            # The workload's own group (the first): the cluster's group is every pod's.
            pod_security_groups={workload: groups[0] for workload, groups in pod_groups.items()},
            account_id=eks.account_id,
            partition=eks.partition,
            region=eks.region,
            log_retention_days=config.aws.control_plane_log_retention_days,
            tags={"environment": config.environment, "owner": config.owner},
            permissions_boundary=config.aws.permissions_boundary_arn,
            opts=aws_opts,
        )

    def _configure_vault(
        self,
        config: PlatformConfig,
        *,
        provider: k8s.Provider,
        vault: VaultHandle,
        data: data_layer.DataHandle,
        admin_passwords: dict[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions,
    ) -> None:
        """Phase 2 (vault.configure: true), once Vault is initialised: auth, engines, per-service
        policies and roles, and the operator objects that deliver credentials into namespaces."""
        assert config.vault_token is not None  # enforced when the config is loaded
        grants = topology(config.services).grants
        VaultConfiguration(
            "vault-config",
            VaultConfigArgs(
                address=config.vault.address,
                token=pulumi.Output.secret(config.vault_token.get_secret_value()),
                ca_cert_pem=None,
                kubernetes_host="https://kubernetes.default.svc",
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
                database_admin_password=dict(admin_passwords),
                database_server_ca_file=data.database_server_ca_file,
                broker=data.broker.vault_broker() if data.broker else None,
                vso_namespace=vault.operator_namespace,
                vault_connection=vault.connection_name,
                kubernetes_provider=provider,
                environment=config.environment,
                depends_on=[
                    *vault.ready,
                    *data.ready,
                    *(svc.namespace_resource for svc in self.services.values()),
                ],
            ),
            opts=opts,
        )

    def _observability(
        self,
        config: PlatformConfig,
        provider: k8s.Provider,
        mesh: MeshHandle,
        logs_aws: LogsAws | None,
        aws_opts: pulumi.ResourceOptions,
    ) -> None:
        settings = config.observability
        monitoring = Monitoring(
            "monitoring",
            MonitoringArgs(
                environment=config.environment,
                provider=provider,
                retention=f"{settings.retention_days}d",
                replicas=settings.prometheus_replicas,
                alertmanager_replicas=settings.alertmanager_replicas,
                storage_size=f"{settings.storage_gb}Gi",
                services=config.services,
                depends_on=self.cluster.ready,
                # Per-service monitors, rules and dashboards go into each service's own namespace.
                service_ready={name: [svc.namespace_resource] for name, svc in self.services.items()},
                extra_quota=LOGS_AND_TRACES_QUOTA,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        ).handle
        LoggingTracing(
            "logging-tracing",
            LoggingTracingArgs(
                environment=config.environment,
                provider=provider,
                namespace=monitoring.namespace,
                retention_days=settings.log_retention_days,
                trace_sampling=config.mesh.trace_sampling,
                aws=logs_aws,
                depends_on=[*monitoring.ready, *mesh.ready],
            ),
            opts=aws_opts,
        )

    def _services(
        self,
        config: PlatformConfig,
        mesh: MeshHandle,
        opts: pulumi.ResourceOptions,
        needs: dict[str, data_layer.ServiceData],
        pod_groups: dict[str, list[pulumi.Input[str]]],
    ) -> dict[str, Microservice]:
        # Each service lives in the namespace named after it, under a service account of its name.
        peers = {s.name: Peer(name=s.name, namespace=s.name, port=s.port) for s in config.services}
        gateway = ServiceIdentity(gateway_layer.NAMESPACE, gateway_layer.GATEWAY_SERVICE_ACCOUNT)
        services: dict[str, Microservice] = {}
        for spec in config.services:
            callers = config.callers_of(spec.name)
            services[spec.name] = Microservice(
                spec.name,
                MicroserviceArgs(
                    spec=spec,
                    environment=config.environment,
                    sizing=config.sizing,
                    cluster=self.cluster,
                    caller_namespaces=[peers[caller].namespace for caller in callers],
                    callees=[peers[callee] for callee in spec.calls],
                    gateway_namespace=gateway.namespace if spec.routes else None,
                    # Sidecars report spans to the tracing backend; the data layer adds its own paths.
                    extra_policies={"allow-span-export": span_export_egress(OBSERVABILITY_NAMESPACE)}
                    | needs[spec.name].policies,
                    extra_quota=needs[spec.name].quota,
                    pod_security_groups=pod_groups.get(spec.name, []),
                    mesh=MeshBinding(
                        trust_domain=mesh.trust_domain,
                        root_namespace=mesh.root_namespace,
                        injection_labels=mesh.injection_labels,
                        callers=[ServiceIdentity(peers[c].namespace, c) for c in callers],
                        gateway=gateway if spec.routes else None,
                        jwt=config.jwt,
                        ready=mesh.ready,
                    ),
                ),
                opts=opts,
            )
        return services
