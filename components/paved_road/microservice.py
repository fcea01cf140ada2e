"""The paved road: everything one declared service gets, hardened, in its own namespace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.contract import ClusterHandle
from components.core import labels, quota
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.mesh import policy as mesh_policy
from components.mesh.policy import ServiceIdentity
from components.paved_road import service_network, workload
from components.paved_road.service_network import Peer
from components.paved_road.team_access import TeamBinding, team_access
from components.targets.aws.pod_security import security_group_policy
from rampart.config import ServiceSpec, Sizing
from rampart.config.models import Jwt


@dataclass(frozen=True)
class MeshBinding:
    """What a service needs from the mesh layer (and the gateway) to join the mesh."""

    trust_domain: str
    root_namespace: str
    injection_labels: dict[str, str]
    # Mesh identities allowed to call the service: its declared callers.
    callers: list[ServiceIdentity]
    # The API gateway's identity, for services with public routes.
    gateway: ServiceIdentity | None
    jwt: Jwt | None
    # The mesh's control plane and CRDs: Istio objects wait for them.
    ready: list[pulumi.Resource] = field(default_factory=list)


@dataclass(frozen=True)
class MicroserviceArgs:
    spec: ServiceSpec
    environment: str
    sizing: Sizing
    cluster: ClusterHandle
    # Namespaces whose pods may call this service (from the other services' `calls:`).
    caller_namespaces: list[str] = field(default_factory=list)
    # The services this one may call (its own `calls:`).
    callees: list[Peer] = field(default_factory=list)
    # The gateway's namespace, for services with public routes.
    gateway_namespace: str | None = None
    mesh: MeshBinding | None = None
    # NetworkPolicies platform layers need in the namespace (span export, the database, the broker).
    extra_policies: dict[str, k8s.networking.v1.NetworkPolicySpecArgs] = field(default_factory=dict)
    # Quota other layers' workloads in the namespace need on top of the service's (its database).
    extra_quota: Mapping[str, str] = field(default_factory=dict)
    # aws: the security groups the pods carry (security groups for pods): its database admits them.
    pod_security_groups: Sequence[pulumi.Input[str]] = ()
    # The image admission policy and its binding (admission.py): the workloads are created after them.
    admission: Sequence[pulumi.Resource] = ()
    # The team that owns the service: its Role and RoleBinding in the namespace (team_access.py).
    team: TeamBinding | None = None


class Microservice(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    # What other layers' objects in this namespace wait for.
    namespace_resource: k8s.core.v1.Namespace
    service_account: pulumi.Output[str]
    address: pulumi.Output[str]

    def __init__(self, name: str, args: MicroserviceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            "rampart:paved:Microservice",
            name,
            {},
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=[args.cluster.provider])),
        )
        spec = args.spec
        child = pulumi.ResourceOptions(parent=self)
        common = labels.common(args.environment) | labels.selector(spec.name)
        replicas_min = max(spec.replicas.min, args.sizing.min_replicas)
        replicas_max = max(spec.replicas.max, replicas_min)

        mesh = args.mesh
        created = namespace_baseline(
            name,
            namespace=spec.name,
            labels_=common,
            quota=quota.combine(
                quota.quota_hard(spec, args.sizing.quota_headroom, quota.MESH_PROXY if mesh else None),
                args.extra_quota,
            ),
            # Containers that do not declare resources (e.g. injected sidecars) get the service's.
            container_defaults=ContainerDefaults(
                requests={"cpu": spec.resources.requests.cpu, "memory": spec.resources.requests.memory},
                limits={"cpu": spec.resources.limits.cpu, "memory": spec.resources.limits.memory},
            ),
            policies=service_network.service_policies(
                spec,
                caller_namespaces=args.caller_namespaces
                + ([args.gateway_namespace] if args.gateway_namespace else []),
                callees=args.callees,
                mesh_root_namespace=mesh.root_namespace if mesh else None,
            )
            | args.extra_policies,
            opts=child,
            extra_namespace_labels={
                **(mesh.injection_labels if mesh else {}),
                labels.TIER: labels.SERVICE_TIER,
            },
        )
        namespace, ns = created.namespace, created.name
        self.namespace_resource = namespace

        def meta(
            object_name: str, annotations: Mapping[str, str] | None = None
        ) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=ns, labels=common, annotations=annotations
            )

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=meta(spec.name, workload.api_access_annotations(spec) or None),
            automount_service_account_token=spec.kubernetes_api_access,
            opts=child,
        )
        if args.team is not None:
            team_access(name, team=args.team, namespace=ns, labels=common, opts=child)
        # Pods created before the policy would start without their security groups.
        before_pods: list[pulumi.Resource] = [account, *args.admission]
        if mesh is not None:
            # Istio adds the sidecar in its mutating webhook when a pod is created: a pod created
            # before istiod serves it runs without one (no mTLS, no JWT check) until it is recreated.
            # https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/
            before_pods += mesh.ready
        if args.pod_security_groups:
            before_pods.append(
                security_group_policy(
                    f"{name}-pod-security-groups",
                    workload=spec.name,
                    namespace=ns,
                    group_ids=list(args.pod_security_groups),
                    environment=args.environment,
                    opts=child,
                )
            )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta(spec.name),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=replicas_min,
                revision_history_limit=5,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels.selector(spec.name)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_unavailable=0, max_surge="25%"
                    ),
                ),
                template=workload.pod_template(
                    spec,
                    args.environment,
                    service_account=spec.name,
                    zone_spread=args.sizing.zone_spread,
                    multi_zone=args.cluster.multi_zone,
                    sidecar=quota.MESH_PROXY if mesh else None,
                ),
            ),
            # The HPA owns the replica count once the Deployment exists.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=before_pods, ignore_changes=["spec.replicas"]
            ),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            # The gateway sends to the ClusterIP, so its calls go through the mesh (mTLS, identity).
            metadata=meta(
                spec.name, {"ingress.kubernetes.io/service-upstream": "true"} if spec.routes else None
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=labels.selector(spec.name),
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name=workload.HTTP_PORT_NAME,
                        port=spec.port,
                        target_port=workload.HTTP_PORT_NAME,
                        protocol="TCP",
                        app_protocol="http",
                    )
                ],
            ),
            opts=child,
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=meta(spec.name),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=deployment.metadata.name
                ),
                min_replicas=replicas_min,
                max_replicas=replicas_max,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization", average_utilization=spec.autoscaling.cpu_utilization
                            ),
                        ),
                    )
                ],
                behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    # Scale down slowly: five minutes of low load before removing pods.
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(stabilization_window_seconds=300),
                ),
            ),
            opts=child,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta(spec.name),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels.selector(spec.name)),
                # Pods that are not ready anyway must not block a node drain.
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=child,
        )

        if mesh is not None:
            self._mesh_objects(name, spec, ns, mesh, depends_on=[namespace, service])

        self.namespace = ns
        self.service_account = account.metadata.name
        self.address = pulumi.Output.concat(
            service.metadata.name, ".", ns, ".svc.cluster.local:", str(spec.port)
        )
        self.register_outputs(
            {"namespace": self.namespace, "serviceAccount": self.service_account, "address": self.address}
        )

    def _mesh_objects(
        self,
        name: str,
        spec: ServiceSpec,
        namespace: pulumi.Output[str],
        mesh: MeshBinding,
        *,
        depends_on: list[pulumi.Resource],
    ) -> None:
        """Who may call the service, its token check, traffic policy and egress, as Istio objects."""
        objects = mesh_policy.service_mesh_objects(
            spec,
            namespace=spec.name,
            trust_domain=mesh.trust_domain,
            callers=mesh.callers,
            gateway=mesh.gateway if spec.routes else None,
            jwt=mesh.jwt,
        )
        for obj in objects:
            k8s.apiextensions.CustomResource(
                f"{name}-{obj.kind.lower()}-{obj.name}",
                api_version=obj.api_version,
                kind=obj.kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=obj.name, namespace=namespace),
                spec=obj.spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*mesh.ready, *depends_on]),
            )
