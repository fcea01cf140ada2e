"""The paved road: everything one declared service gets, hardened, in its own namespace."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import labels, quota, service_network, workload
from components.cluster import ClusterHandle
from components.service_network import Peer
from rampart.config import ServiceSpec, Sizing


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


class Microservice(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
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

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=spec.name, labels=common | labels.PSS_LABELS),
            opts=child,
        )
        ns = namespace.metadata.name

        def meta(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=ns, labels=common)

        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota.quota_hard(spec, args.sizing.quota_headroom)),
            opts=child,
        )
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta("limits"),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    # Containers that do not declare resources (e.g. injected sidecars) get these.
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default={"cpu": spec.resources.limits.cpu, "memory": spec.resources.limits.memory},
                        default_request={
                            "cpu": spec.resources.requests.cpu,
                            "memory": spec.resources.requests.memory,
                        },
                    )
                ]
            ),
            opts=child,
        )
        policies = {
            "default-deny": service_network.default_deny(),
            "allow-dns": service_network.allow_dns(),
        }
        if args.caller_namespaces:
            policies["allow-from-callers"] = service_network.allow_from_callers(
                spec.name, spec.port, args.caller_namespaces
            )
        if args.callees:
            policies["allow-to-callees"] = service_network.allow_to_callees(spec.name, args.callees)
        for policy_name, policy_spec in policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy_name}", metadata=meta(policy_name), spec=policy_spec, opts=child
            )

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=meta(spec.name),
            automount_service_account_token=spec.kubernetes_api_access,
            opts=child,
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
                ),
            ),
            # The HPA owns the replica count once the Deployment exists.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account], ignore_changes=["spec.replicas"]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(spec.name),
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

        self.namespace = ns
        self.service_account = account.metadata.name
        self.address = pulumi.Output.concat(
            service.metadata.name, ".", ns, ".svc.cluster.local:", str(spec.port)
        )
        self.register_outputs(
            {"namespace": self.namespace, "serviceAccount": self.service_account, "address": self.address}
        )
