"""Logs and traces for the platform: Loki (monolithic), Alloy (a DaemonSet shipping pod logs) and Tempo
(single binary), in the monitoring namespace the monitoring layer creates with its baseline, plus the
Istio Telemetry that sends the mesh's spans to Tempo.

Alloy reads container logs through the API server (``loki.source.kubernetes``), not from the node's
disk: it needs no hostPath mount, no root and no privilege, so its pods stay within Pod Security
Standards ``restricted``. Each Alloy pod tails only the pods of its own node. Kong's access log goes to
its proxy container's stdout and is collected like every other container's; Vault's audit device is
collected the same way when it writes to ``stdout`` (its lines are tagged ``log_type="vault_audit"``).

Loki runs single tenant (``auth_enabled: false``): only NetworkPolicies keep it to Alloy and Grafana.
On AWS its chunks and ruler data go to an S3 bucket of its own (SSE-KMS with a dedicated key, public
access blocked, versioned, TLS-only), reached through EKS Pod Identity; elsewhere to a PVC. Tempo keeps
traces on a PVC on every target (S3 for Tempo is out of scope).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core import charts, labels, netpol
from components.core.base import InClusterArgs, InClusterComponent
from components.mesh import ROOT_NAMESPACE as MESH_ROOT_NAMESPACE
from components.observability.logging_charts import (
    ALLOY,
    ALLOY_CHART,
    LOKI,
    LOKI_CHART,
    LOKI_HTTP_PORT,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    TEMPO,
    TEMPO_CHART,
    TEMPO_PODS,
    TEMPO_QUERY_PORT,
    ZIPKIN_PORT,
    alloy_values,
    lifecycle_rules,
    loki_storage_policy,
    loki_values,
    network_policies,
    telemetry_spec,
    tempo_values,
)
from components.targets.aws import iam
from components.targets.aws.handles import PodIdentity
from components.targets.aws.s3 import Bucket, secure_bucket


@dataclass(frozen=True)
class LogsAws(PodIdentity):
    """What Loki's object storage needs from the AWS target: its role, and whether the bucket is
    protected from deletion."""

    protect: bool

    @classmethod
    def of(cls, identity: PodIdentity, *, protect: bool) -> LogsAws:
        return cls(**{f.name: getattr(identity, f.name) for f in fields(PodIdentity)}, protect=protect)


@dataclass(frozen=True, kw_only=True)
class LoggingTracingArgs(InClusterArgs):
    # Created (with its baseline) by the monitoring layer; these components only add their policies.
    namespace: str
    retention_days: int
    # Percent of requests Istio traces.
    trace_sampling: float
    aws: LogsAws | None


@dataclass(frozen=True)
class LoggingTracingHandle:
    """What Grafana and the mesh need: datasource URLs, where spans go, and what to wait for."""

    loki_url: str
    tempo_url: str
    zipkin_service: str
    zipkin_port: int
    ready: list[pulumi.Resource]


# -- addresses ---------------------------------------------------------------------------------


def service_host(release: str, namespace: str) -> str:
    return f"{release}.{namespace}.svc.cluster.local"


def loki_push_url(namespace: str) -> str:
    """Loki's own Service (the chart's nginx gateway is off: one tenant, NetworkPolicies decide)."""
    return f"http://{service_host(LOKI, namespace)}:{LOKI_HTTP_PORT}/loki/api/v1/push"


def tempo_extension_provider(namespace: str) -> dict[str, Any]:
    """The istiod ``meshConfig.extensionProviders`` entry the Telemetry's provider ``tempo`` names."""
    return {"name": TEMPO, "zipkin": {"service": service_host(TEMPO, namespace), "port": ZIPKIN_PORT}}


def span_export_egress(namespace: str) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """For namespaces whose sidecars report spans (their default-deny also blocks egress): to Tempo's
    Zipkin and OTLP receivers."""
    tempo = netpol.pods_in(namespace, TEMPO_PODS)
    return netpol.egress_to({}, [tempo], ZIPKIN_PORT, OTLP_GRPC_PORT, OTLP_HTTP_PORT)


# -- the component -----------------------------------------------------------------------------


class LoggingTracing(InClusterComponent):
    handle: LoggingTracingHandle
    bucket: Bucket | None
    loki_role: iam.PodIdentityRole | None

    def __init__(
        self, name: str, args: LoggingTracingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:observability:LoggingTracing", name, **args.placement(), opts=opts)
        self._args = args
        ns = args.namespace

        self.bucket, self.loki_role = None, None
        identity: list[pulumi.Resource] = []
        if args.aws is not None:
            self.bucket = self._bucket(name, args.aws, args.retention_days)
            self.loki_role = self._loki_role(name, args.aws, self.bucket)
            identity = [self.loki_role]

        policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy_name}",
                metadata=self._meta(policy_name, policy_name.split("-", 1)[0]),
                spec=spec,
                opts=self.on_cluster(),
            )
            for policy_name, spec in network_policies(args.aws is not None).items()
        ]

        bucket_name = self.bucket.bucket.id if self.bucket is not None else None
        region = args.aws.region if args.aws is not None else None
        # Pods start once their network allows exist (and on AWS the Pod Identity association).
        loki = charts.release(
            f"{name}-loki",
            LOKI_CHART,
            release_name=LOKI,
            namespace=ns,
            values=loki_values(args.retention_days, bucket=bucket_name, region=region),
            opts=self.on_cluster([*policies, *identity]),
        )
        alloy = charts.release(
            f"{name}-alloy",
            ALLOY_CHART,
            release_name=ALLOY,
            namespace=ns,
            values=alloy_values(loki_push_url(ns), args.environment),
            opts=self.on_cluster([*policies, loki]),
        )
        tempo = charts.release(
            f"{name}-tempo",
            TEMPO_CHART,
            release_name=TEMPO,
            namespace=ns,
            values=tempo_values(args.retention_days),
            opts=self.on_cluster(policies),
        )
        telemetry = k8s.apiextensions.CustomResource(
            f"{name}-mesh-tracing",
            api_version="telemetry.istio.io/v1",
            kind="Telemetry",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="mesh-default",
                namespace=MESH_ROOT_NAMESPACE,
                labels=labels.common(args.environment) | {labels.NAME: TEMPO},
            ),
            spec=telemetry_spec(args.trace_sampling),
            opts=self.on_cluster([tempo]),
        )

        self.handle = LoggingTracingHandle(
            loki_url=f"http://{service_host(LOKI, ns)}:{LOKI_HTTP_PORT}",
            tempo_url=f"http://{service_host(TEMPO, ns)}:{TEMPO_QUERY_PORT}",
            zipkin_service=service_host(TEMPO, ns),
            zipkin_port=ZIPKIN_PORT,
            ready=[loki, alloy, tempo, telemetry],
        )
        outputs: dict[str, Any] = {"lokiUrl": self.handle.loki_url, "tempoUrl": self.handle.tempo_url}
        if self.bucket is not None:
            outputs["lokiBucket"] = self.bucket.bucket.id
        self.register_outputs(outputs)

    def _meta(self, object_name: str, component: str) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=object_name,
            namespace=self._args.namespace,
            labels=labels.common(self._args.environment) | {labels.NAME: component},
        )

    def _bucket(self, name: str, target: LogsAws, retention_days: int) -> Bucket:
        return secure_bucket(
            f"{name}-loki",
            key_description="Loki's log bucket (SSE-KMS)",
            key_account=target,
            lifecycle=lifecycle_rules(retention_days),
            protect=target.protect,
            parent=self,
        )

    def _loki_role(self, name: str, target: LogsAws, bucket: Bucket) -> iam.PodIdentityRole:
        def document(arns: list[str]) -> str:
            return loki_storage_policy(arns[0], arns[1], target.region)

        return iam.PodIdentityRole(
            f"{name}-loki",
            cluster_name=target.cluster_name,
            cluster_arn=target.cluster_arn,
            namespace=self._args.namespace,
            service_account=LOKI,
            policy_json=pulumi.Output.all(bucket.bucket.arn, bucket.key.arn).apply(document),
            permissions_boundary=target.permissions_boundary,
            opts=pulumi.ResourceOptions(parent=self),
        )
