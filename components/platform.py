"""The platform: the cluster layer, certificates, the mesh, the paved road for every declared
service, and the API gateway in front of the public ones.

Layers hand each other small typed handles (ClusterHandle, CertificatesHandle, MeshHandle);
no layer reaches into another's children.
"""

from __future__ import annotations

import pulumi

from components import gateway as gateway_layer
from components.aws.cluster import AwsCluster, AwsClusterArgs
from components.certificates import AcmeAws, Certificates, CertificatesArgs
from components.cluster import ClusterHandle, ExistingCluster, ExistingClusterArgs
from components.gateway import Gateway, GatewayArgs, PublicService
from components.mesh import Mesh, MeshArgs, MeshHandle
from components.mesh_policy import ServiceIdentity
from components.microservice import MeshBinding, Microservice, MicroserviceArgs
from components.service_network import Peer
from rampart.config import PlatformConfig


class Platform(pulumi.ComponentResource):
    cluster: ClusterHandle
    services: dict[str, Microservice]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:index:Platform", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        acme_aws: AcmeAws | None = None
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
            acme_aws = AcmeAws(
                cluster_name=aws_cluster.eks.cluster_name,
                cluster_arn=aws_cluster.eks.cluster_arn,
                partition=aws_cluster.eks.partition,
                permissions_boundary=config.aws.permissions_boundary_arn,
            )
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
            MeshArgs(config=config.mesh, provider=provider, environment=config.environment, depends_on=ready),
            opts=child,
        ).handle

        self.services = self._services(config, mesh, child)
        Gateway(
            "gateway",
            GatewayArgs(
                config=config.gateway,
                provider=provider,
                environment=config.environment,
                on_aws=config.target == "aws",
                cluster_issuer=certificates.cluster_issuer,
                injection_labels=mesh.injection_labels,
                services=[PublicService(spec=s, namespace=s.name) for s in config.services if s.routes],
                # Routes live in the services' namespaces; the gateway needs the mesh and certificates.
                depends_on=[*mesh.ready, *certificates.ready, *self.services.values()],
            ),
            opts=child,
        )
        self.register_outputs({"services": {name: svc.address for name, svc in self.services.items()}})

    def _services(
        self, config: PlatformConfig, mesh: MeshHandle, opts: pulumi.ResourceOptions
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
