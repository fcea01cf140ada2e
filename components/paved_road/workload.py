"""The hardened pod template of a paved-road service.

Pod Security Standards `restricted` plus the checkov Kubernetes baseline: non-root with a
high uid, read-only root filesystem (an emptyDir for /tmp), every capability dropped,
seccomp RuntimeDefault, no privilege escalation, requests and limits, probes, and no
persistent volumes: services are stateless by construction.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

from components import paved_road as road
from components.core import labels, security_context
from components.core.quota import Sidecar
from rampart.config import ServiceSpec
from rampart.config.types import image_tag

HTTP_PORT_NAME = "http"
TMP_VOLUME = "tmp"
TMP_SIZE_LIMIT = "64Mi"
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


def pod_labels(spec: ServiceSpec, environment: str) -> dict[str, str]:
    # `app` and `version` are the labels Istio's telemetry reads.
    return (
        labels.common(environment)
        | labels.selector(spec.name)
        | {"app": spec.name, "version": image_tag(spec.image)}
    )


def api_access_annotations(spec: ServiceSpec) -> dict[str, str]:
    """The opt-in mark of a service whose pods get a Kubernetes API token; none for every other."""
    return {road.API_ACCESS_ANNOTATION: "true"} if spec.kubernetes_api_access else {}


def sidecar_annotations(sidecar: Sidecar) -> dict[str, str]:
    """Size the injected mesh proxy so it fits the namespace quota."""
    return {
        "sidecar.istio.io/proxyCPU": sidecar.cpu_request,
        "sidecar.istio.io/proxyCPULimit": sidecar.cpu_limit,
        "sidecar.istio.io/proxyMemory": sidecar.memory_request,
        "sidecar.istio.io/proxyMemoryLimit": sidecar.memory_limit,
    }


def container(spec: ServiceSpec) -> k8s.core.v1.ContainerArgs:
    def probe(path: str, failure_threshold: int) -> k8s.core.v1.ProbeArgs:
        return k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=HTTP_PORT_NAME),
            period_seconds=10,
            timeout_seconds=2,
            failure_threshold=failure_threshold,
        )

    return k8s.core.v1.ContainerArgs(
        name=spec.name,
        image=spec.image,
        # Always re-checks registry credentials; with a pinned tag or digest it pulls the same bits.
        image_pull_policy="Always",
        ports=[k8s.core.v1.ContainerPortArgs(name=HTTP_PORT_NAME, container_port=spec.port, protocol="TCP")],
        env=[k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sorted(spec.env.items())],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={"cpu": spec.resources.requests.cpu, "memory": spec.resources.requests.memory},
            limits={"cpu": spec.resources.limits.cpu, "memory": spec.resources.limits.memory},
        ),
        liveness_probe=probe(spec.health.liveness, failure_threshold=3),
        readiness_probe=probe(spec.health.readiness, failure_threshold=2),
        # Up to 5 minutes to boot before liveness takes over.
        startup_probe=probe(spec.health.startup, failure_threshold=30) if spec.health.startup else None,
        security_context=security_context.container_args(spec.run_as_user),
        # Where to connect (libpq's PG* variables, the broker's endpoint and vhosts): see
        # credentials() below.
        env_from=[
            k8s.core.v1.EnvFromSourceArgs(
                config_map_ref=k8s.core.v1.ConfigMapEnvSourceArgs(name=road.connection_config(spec.name))
            )
        ]
        if credentials(spec)
        else None,
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name=TMP_VOLUME, mount_path="/tmp"),  # nosec B108 # noqa: S108 - an emptyDir, not the host's /tmp
            *(
                k8s.core.v1.VolumeMountArgs(name=volume, mount_path=path, read_only=True)
                for volume, (_, path) in credentials(spec).items()
            ),
        ],
    )


def credentials(spec: ServiceSpec) -> dict[str, tuple[str, str]]:
    """volume name -> (the Secret Vault's Secrets Operator writes, where the pod reads it).

    A Secret reaches a container only through the pod template, as a volume or env
    (https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-files-from-a-pod):
    files, so a rotation (VSO rewrites the Secret, then restarts the Deployment) never leaves a
    stale password in the environment, readable by the pod's group only (fsGroup)."""
    found: dict[str, tuple[str, str]] = {}
    if spec.database:
        found["db-credentials"] = (road.database_credentials(spec.name), road.DATABASE_CREDENTIALS_DIR)
    if spec.queue.publishes or spec.queue.consumes:
        found["broker-credentials"] = (road.broker_credentials(spec.name), road.BROKER_CREDENTIALS_DIR)
    return found


def pod_template(
    spec: ServiceSpec,
    environment: str,
    *,
    service_account: str,
    zone_spread: str,
    multi_zone: bool,
    sidecar: Sidecar | None = None,
) -> k8s.core.v1.PodTemplateSpecArgs:
    def spread(key: str, when_unsatisfiable: str) -> k8s.core.v1.TopologySpreadConstraintArgs:
        return k8s.core.v1.TopologySpreadConstraintArgs(
            topology_key=key,
            max_skew=1,
            when_unsatisfiable=when_unsatisfiable,
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels.selector(spec.name)),
            # Count only the pods of the current rollout.
            match_label_keys=["pod-template-hash"],
        )

    zone_rule = "DoNotSchedule" if zone_spread == "required" and multi_zone else "ScheduleAnyway"
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels=pod_labels(spec, environment),
            annotations=(sidecar_annotations(sidecar) if sidecar else {}) | api_access_annotations(spec)
            or None,
        ),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=service_account,
            automount_service_account_token=spec.kubernetes_api_access,
            enable_service_links=False,
            host_network=False,
            host_pid=False,
            host_ipc=False,
            termination_grace_period_seconds=30,
            security_context=security_context.pod_args(spec.run_as_user),
            containers=[container(spec)],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name=TMP_VOLUME,
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=TMP_SIZE_LIMIT),
                ),
                *(
                    k8s.core.v1.VolumeArgs(
                        name=volume,
                        secret=k8s.core.v1.SecretVolumeSourceArgs(
                            secret_name=secret,
                            # Owner root, group fsGroup (the service's uid): 0440.
                            default_mode=0o440,
                            # Written by VSO once Vault's per-service configuration exists (phase 2);
                            # the kubelet fills the files in then, and VSO restarts the Deployment.
                            optional=True,
                        ),
                    )
                    for volume, (secret, _) in credentials(spec).items()
                ),
            ],
            topology_spread_constraints=[
                spread(ZONE_KEY, zone_rule),
                spread(HOST_KEY, "ScheduleAnyway"),
            ],
        ),
    )
