"""The observability layer in the composition root: metrics and alerts, then logs and traces, in the
one `monitoring` namespace; every service reports spans to it."""

from __future__ import annotations

from typing import Any

from components.contract import LayerContext, ServiceNeeds
from components.mesh.istio import MeshHandle
from components.observability import NAMESPACE
from components.observability.logging_charts import quota_hard as logs_and_traces_quota
from components.observability.logging_tracing import (
    LoggingTracing,
    LoggingTracingArgs,
    LogsAws,
    span_export_egress,
    tempo_extension_provider,
)
from components.observability.monitoring import Monitoring, MonitoringArgs
from components.observability.scrape_targets import CLOUDNATIVE_PG, IN_CLUSTER_BROKER
from components.paved_road.layer import ServicesHandle
from rampart.config import PlatformConfig, ServiceSpec


def tracing_provider() -> dict[str, Any]:
    """The mesh's extension provider that sidecars send spans to."""
    return tempo_extension_provider(NAMESPACE)


class SpanExport:
    """Every service's sidecars report spans to Tempo: their namespace's default deny must let them."""

    def service_needs(self, spec: ServiceSpec) -> ServiceNeeds:
        return ServiceNeeds(policies={"allow-span-export": span_export_egress(NAMESPACE)})


def build(ctx: LayerContext, config: PlatformConfig, mesh: MeshHandle, services: ServicesHandle) -> None:
    settings = config.observability
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            retention=f"{settings.retention_days}d",
            replicas=settings.prometheus_replicas,
            alertmanager_replicas=settings.alertmanager_replicas,
            storage_size=f"{settings.storage_gb}Gi",
            services=config.services,
            # CloudNativePG and the RabbitMQ operator run in the cluster only off aws, and only when
            # some service declares a database / a queue (components/data/layer.py decides the same).
            in_cluster_systems=frozenset(
                ({CLOUDNATIVE_PG} if any(s.database for s in config.services) else set())
                | ({IN_CLUSTER_BROKER} if config.uses_queues else set())
            )
            if config.target != "aws"
            else frozenset(),
            # Per-service monitors, rules and dashboards go into each service's own namespace.
            service_ready={name: [namespace] for name, namespace in services.namespaces.items()},
            # Room for Loki, Tempo and Alloy (one pod per node, on as many nodes as the stack allows),
            # from the charts' own sizes: they run in this namespace too.
            extra_quota=logs_and_traces_quota(
                object_storage=ctx.aws is not None, max_nodes=ctx.cluster.max_nodes
            ),
            **ctx.in_cluster(),
        ),
        opts=ctx.opts,
    ).handle
    LoggingTracing(
        "logging-tracing",
        LoggingTracingArgs(
            environment=ctx.environment,
            provider=ctx.provider,
            namespace=monitoring.namespace,
            retention_days=settings.log_retention_days,
            trace_sampling=config.mesh.trace_sampling,
            aws=LogsAws.of(ctx.aws.pod_identity, protect=ctx.protect) if ctx.aws else None,
            depends_on=[*monitoring.ready, *mesh.ready],
        ),
        opts=ctx.cloud_opts,
    )
