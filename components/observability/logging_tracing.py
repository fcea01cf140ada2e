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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.core import charts, labels
from components.mesh.istio import ROOT_NAMESPACE as MESH_ROOT_NAMESPACE
from components.targets.aws import iam
from components.targets.aws.handles import PodIdentity
from components.targets.aws.karpenter import POD_IDENTITY_AGENT_CIDRS
from components.targets.aws.kms import customer_key

GRAFANA_COMMUNITY_REPOSITORY = "https://grafana-community.github.io/helm-charts"
GRAFANA_REPOSITORY = "https://grafana.github.io/helm-charts"
LOKI_CHART = charts.Chart(GRAFANA_COMMUNITY_REPOSITORY, "loki", "18.11.0")
TEMPO_CHART = charts.Chart(GRAFANA_COMMUNITY_REPOSITORY, "tempo", "2.2.4")
ALLOY_CHART = charts.Chart(GRAFANA_REPOSITORY, "alloy", "1.11.1")

# Release names: each chart names its Service and service account after the release.
LOKI = "loki"
ALLOY = "alloy"
TEMPO = "tempo"

LOKI_HTTP_PORT = 3100
LOKI_GRPC_PORT = 9095
LOKI_MEMBERLIST_PORT = 7946
TEMPO_QUERY_PORT = 3200
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
ZIPKIN_PORT = 9411
# The API server: 443 on EKS, 6443 on kubeadm/kind clusters; addresses in the node / VPC network.
API_SERVER_PORTS = (443, 6443)
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
# S3 answers on public addresses, also through the VPC's gateway endpoint.
NON_PUBLIC_RANGES = [*PRIVATE_RANGES, "100.64.0.0/10", "169.254.0.0/16"]

# The labels each chart puts on its pods (their selector labels).
LOKI_PODS = {
    labels.NAME: LOKI,
    "app.kubernetes.io/instance": LOKI,
    "app.kubernetes.io/component": "single-binary",
}
ALLOY_PODS = {labels.NAME: ALLOY, "app.kubernetes.io/instance": ALLOY}
TEMPO_PODS = {labels.NAME: TEMPO, "app.kubernetes.io/instance": TEMPO}
# Grafana (kube-prometheus-stack's sub-chart, owned by the monitoring layer), whatever its release name.
GRAFANA_PODS = {labels.NAME: "grafana"}

# With auth disabled Loki files every stream under this tenant id (its objects under "fake/").
LOKI_TENANT = "fake"
# Past the retention the compactor deletes chunks itself; the bucket's lifecycle is the backstop a day
# later, and deleted objects stay recoverable as noncurrent versions for a week.
LIFECYCLE_GRACE_DAYS = 1
NONCURRENT_DAYS = 7
RUN_AS = 10001

# The SDK's names for nested S3 blocks, shortened.
_SseByDefault = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
_NoncurrentExpiration = aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs
_AbortMultipart = aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs

Resources = Mapping[str, Mapping[str, str]]
LOKI_RESOURCES: Mapping[bool, Resources] = {
    # object storage (3 replicas) / filesystem (1 replica, small)
    True: {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    False: {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
}
TEMPO_RESOURCES: Resources = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
ALLOY_RESOURCES: Resources = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
RELOADER_RESOURCES: Resources = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}
VOLUME_SIZE = "10Gi"
# The image's own data directory, as an emptyDir (the root filesystem is read-only).
ALLOY_STORAGE_PATH = "/var/lib/alloy/data"


@dataclass(frozen=True)
class LogsAws(PodIdentity):
    """What Loki's object storage needs from the AWS target: its role, and whether the bucket is
    protected from deletion."""

    protect: bool

    @classmethod
    def of(cls, identity: PodIdentity, *, protect: bool) -> LogsAws:
        return cls(**{f.name: getattr(identity, f.name) for f in fields(PodIdentity)}, protect=protect)


@dataclass(frozen=True)
class LoggingTracingArgs:
    environment: str
    provider: k8s.Provider
    # Created (with its baseline) by the monitoring layer; these components only add their policies.
    namespace: str
    retention_days: int
    # Percent of requests Istio traces.
    trace_sampling: float
    aws: LogsAws | None
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class LoggingTracingHandle:
    """What Grafana and the mesh need: datasource URLs, where spans go, and what to wait for."""

    loki_url: str
    tempo_url: str
    zipkin_service: str
    zipkin_port: int
    ready: list[pulumi.Resource]


@dataclass(frozen=True)
class Bucket:
    bucket: aws.s3.Bucket
    key: aws.kms.Key
    companions: list[pulumi.Resource]


# -- addresses ---------------------------------------------------------------------------------


def service_host(release: str, namespace: str) -> str:
    return f"{release}.{namespace}.svc.cluster.local"


def loki_push_url(namespace: str) -> str:
    """Loki's own Service (the chart's nginx gateway is off: one tenant, NetworkPolicies decide)."""
    return f"http://{service_host(LOKI, namespace)}:{LOKI_HTTP_PORT}/loki/api/v1/push"


def tempo_extension_provider(namespace: str) -> dict[str, Any]:
    """The istiod ``meshConfig.extensionProviders`` entry the Telemetry's provider ``tempo`` names."""
    return {"name": TEMPO, "zipkin": {"service": service_host(TEMPO, namespace), "port": ZIPKIN_PORT}}


# -- Loki --------------------------------------------------------------------------------------


def loki_replicas(object_storage: bool) -> int:
    # The chart refuses more than one monolithic replica on a filesystem.
    return 3 if object_storage else 1


def _spread(pods: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(pods)},
        }
    ]


def _loki_storage(bucket: pulumi.Input[str] | None, region: str | None) -> dict[str, Any]:
    if bucket is None:
        return {"type": "filesystem"}
    # No credentials: the pods get them from EKS Pod Identity. `insecure: false` (the default) keeps
    # the client on HTTPS, which the bucket policy requires anyway.
    return {"type": "s3", "s3": {"region": region}, "bucketNames": {"chunks": bucket, "ruler": bucket}}


def loki_values(
    retention_days: int, *, bucket: pulumi.Input[str] | None = None, region: str | None = None
) -> dict[str, Any]:
    """Values of the `loki` chart: monolithic, one tenant, retention applied by the compactor."""
    object_storage = bucket is not None
    replicas = loki_replicas(object_storage)
    store = "s3" if object_storage else "filesystem"
    single_binary: dict[str, Any] = {
        "replicas": replicas,
        "resources": LOKI_RESOURCES[object_storage],
        "persistence": {"enabled": True, "size": VOLUME_SIZE},
        # The rules sidecar watches ConfigMaps and Secrets cluster-wide; rules are not managed that way.
        "sidecar": False,
    }
    if replicas > 1:
        single_binary["podDisruptionBudget"] = {"maxUnavailable": 1}
        single_binary["topologySpreadConstraints"] = _spread(LOKI_PODS)
    return {
        "deploymentMode": "Monolithic",
        "loki": {
            "auth_enabled": False,
            "commonConfig": {"replication_factor": replicas},
            "storage": _loki_storage(bucket, region),
            "schemaConfig": {
                "configs": [
                    {
                        "from": "2024-04-01",
                        "store": "tsdb",
                        "object_store": store,
                        "schema": "v13",
                        "index": {"prefix": "index_", "period": "24h"},
                    }
                ]
            },
            "compactor": {
                "working_directory": "/var/loki/compactor",
                "compaction_interval": "10m",
                "retention_enabled": True,
                "retention_delete_delay": "2h",
                "delete_request_store": store,
            },
            # limits_config's chart defaults are a closed list; the chart deep-merges structuredConfig
            # over the Loki config it renders, so the retention lands in limits_config.
            "structuredConfig": {"limits_config": {"retention_period": f"{retention_days * 24}h"}},
            "analytics": {"reporting_enabled": False},
        },
        "singleBinary": single_binary,
        # The simple-scalable targets default to 3 replicas each; the chart rejects them beside monolithic.
        "write": {"replicas": 0},
        "read": {"replicas": 0},
        "backend": {"replicas": 0},
        "gateway": {"enabled": False},
        # The canary and the Helm test push and query as tenants (the test image is tagged `latest`).
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        # Memcached caches are sized for large installs (gigabytes each).
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "sidecar": {"rules": {"enabled": False}},
        # No cluster-wide role: with the sidecar off Loki never calls the API server.
        "rbac": {"namespaced": True},
        "serviceAccount": {"name": LOKI, "automountServiceAccountToken": False},
        "defaults": {"automountServiceAccountToken": False},
    }


def lifecycle_rules(retention_days: int) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Chunks (the bulk, under the tenant's prefix) expire a day after the retention. The index, the
    compactor's delete requests (both under index/) and ruler rules (rules/) are left to Loki."""
    expire = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=retention_days + LIFECYCLE_GRACE_DAYS)
    return [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-chunks",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{LOKI_TENANT}/"),
            expiration=expire,
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="clean-up",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            # Versioning keeps what Loki deletes; drop it after a recovery window, then the markers.
            noncurrent_version_expiration=_NoncurrentExpiration(noncurrent_days=NONCURRENT_DAYS),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                expired_object_delete_marker=True
            ),
            abort_incomplete_multipart_upload=_AbortMultipart(days_after_initiation=1),
        ),
    ]


def tls_only_policy(bucket_arn: str) -> str:
    """Deny any request over plain HTTP or TLS older than 1.2 (a Deny on s3:*, so not iam.document)."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": resources}
    statements = [
        deny | {"Sid": "DenyInsecureTransport", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        deny | {"Sid": "DenyOldTls", "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def loki_storage_policy(bucket_arn: str, key_arn: str, region: str) -> str:
    """Objects of the one bucket, and the key only as S3 uses it for SSE-KMS on Loki's behalf."""
    return iam.document(
        [
            iam.allow(["s3:ListBucket"], [bucket_arn], Sid="ListBucket"),
            iam.allow(
                ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                [f"{bucket_arn}/*"],
                Sid="ReadWriteObjects",
            ),
            # GenerateDataKey encrypts new objects, Decrypt reads them (and completes multipart uploads).
            iam.allow(
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [key_arn],
                Sid="UseBucketKey",
                Condition={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
        ]
    )


# -- Alloy -------------------------------------------------------------------------------------


def _alloy_string(value: str) -> str:
    # JSON string escapes are valid Alloy string escapes.
    return json.dumps(value)


def _relabel_rule(source: str, target: str) -> str:
    return (
        f"  rule {{\n    source_labels = [{_alloy_string(source)}]\n"
        f"    target_label  = {_alloy_string(target)}\n  }}"
    )


def alloy_config(push_url: str, environment: str) -> str:
    """Pod logs of this node, read through the API server, to Loki; Vault audit lines tagged."""
    vault_audit = '{namespace="vault"} |~ `"type":"(request|response)"`'
    relabels = (
        ("__meta_kubernetes_namespace", "namespace"),
        ("__meta_kubernetes_pod_name", "pod"),
        ("__meta_kubernetes_pod_container_name", "container"),
        ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "app"),
        ("__meta_kubernetes_pod_node_name", "node"),
    )
    rules = "\n".join(_relabel_rule(source, target) for source, target in relabels)
    return f"""// Pods of this node only: every DaemonSet pod tails its own node's pods.
discovery.kubernetes "pods" {{
  role = "pod"
  selectors {{
    role  = "pod"
    field = "spec.nodeName=" + sys.env("K8S_NODE_NAME")
  }}
}}

discovery.relabel "pods" {{
  targets = discovery.kubernetes.pods.targets
{rules}
}}

// Through the API server: no hostPath, no root.
loki.source.kubernetes "pods" {{
  targets    = discovery.relabel.pods.output
  forward_to = [loki.process.platform.receiver]
}}

loki.process "platform" {{
  // Vault's audit device writes JSON request/response entries to stdout.
  stage.match {{
    selector = {_alloy_string(vault_audit)}
    stage.static_labels {{
      values = {{ log_type = "vault_audit" }}
    }}
  }}
  forward_to = [loki.write.default.receiver]
}}

loki.write "default" {{
  endpoint {{
    url = {_alloy_string(push_url)}
  }}
  external_labels = {{ environment = {_alloy_string(environment)} }}
}}
"""


def _restricted_container() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def alloy_values(push_url: str, environment: str) -> dict[str, Any]:
    return {
        "alloy": {
            "configMap": {"content": alloy_config(push_url, environment)},
            # The chart's hostPath mounts of /var/log and /var/lib/docker/containers: never.
            "mounts": {
                "varlog": False,
                "dockercontainers": False,
                "extra": [{"name": "storage", "mountPath": ALLOY_STORAGE_PATH}],
            },
            # Read positions, on an emptyDir: a replaced pod starts without them.
            "storagePath": ALLOY_STORAGE_PATH,
            "enableReporting": False,
            "resources": ALLOY_RESOURCES,
            "securityContext": _restricted_container(),
        },
        "global": {
            "podSecurityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "runAsGroup": RUN_AS,
                "fsGroup": RUN_AS,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
        },
        "controller": {
            "type": "daemonset",
            # Logs from every node, tainted ones included.
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
            "volumes": {"extra": [{"name": "storage", "emptyDir": {}}]},
        },
        "configReloader": {"resources": RELOADER_RESOURCES},
        # Only what discovery.kubernetes (role pod) and loki.source.kubernetes read; the chart's
        # defaults also grant secrets, configmaps and nodes cluster-wide.
        "rbac": {
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/log", "namespaces"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
            "clusterRules": [],
        },
        # The PodLogs CRD is not used.
        "crds": {"create": False},
    }


# -- Tempo -------------------------------------------------------------------------------------


def tempo_values(retention_days: int) -> dict[str, Any]:
    """Single binary on a PVC; OTLP (gRPC, HTTP) and Zipkin (Istio's sidecars) receivers. The chart's
    Jaeger receivers stay in its defaults (Helm keys cannot be removed through a Pulumi Release);
    NetworkPolicies admit none of their ports."""
    return {
        "replicas": 1,
        "tempo": {
            "retention": f"{retention_days * 24}h",
            "reportingEnabled": False,
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"},
                        "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"},
                    }
                },
                # The chart renders `receivers` verbatim as the distributor's receivers.
                "zipkin": {"endpoint": f"0.0.0.0:{ZIPKIN_PORT}"},
            },
            "resources": TEMPO_RESOURCES,
            "securityContext": _restricted_container(),
            "extraVolumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # nosec B108 # noqa: S108 - an emptyDir
        },
        "extraVolumes": [{"name": "tmp", "emptyDir": {}}],
        "persistence": {"enabled": True, "size": VOLUME_SIZE},
        "serviceAccount": {"automountServiceAccountToken": False},
    }


def telemetry_spec(trace_sampling: float) -> dict[str, Any]:
    """Mesh-wide (root namespace, no selector): every sidecar reports to the `tempo` provider."""
    return {"tracing": [{"providers": [{"name": TEMPO}], "randomSamplingPercentage": trace_sampling}]}


# -- NetworkPolicies ---------------------------------------------------------------------------


def _selector(match_labels: Mapping[str, str]) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match_labels))


def _pods(match_labels: Mapping[str, str]) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=_selector(match_labels))


def _tcp(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


def _cidrs(
    *cidrs: str, except_: Sequence[str] | None = None
) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr, except_=list(except_) if except_ else None)
        )
        for cidr in cidrs
    ]


def _ingress(
    pods: Mapping[str, str], peers: list[k8s.networking.v1.NetworkPolicyPeerArgs], ports: Sequence[int]
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(pods),
        policy_types=["Ingress"],
        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=peers, ports=_tcp(*ports))],
    )


def _egress(
    pods: Mapping[str, str], rules: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs]
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(pods), policy_types=["Egress"], egress=rules
    )


def _to(
    peers: list[k8s.networking.v1.NetworkPolicyPeerArgs], *ports: int
) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=peers, ports=_tcp(*ports))


def network_policies(object_storage: bool) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """The monitoring namespace's allows for logs and traces (on top of its default-deny and DNS)."""
    loki_peer_ports = (LOKI_HTTP_PORT, LOKI_GRPC_PORT, LOKI_MEMBERLIST_PORT)
    policies = {
        # Pushes from Alloy, queries from Grafana: nothing else reaches the tenant-less API.
        "loki-ingress": _ingress(LOKI_PODS, [_pods(ALLOY_PODS), _pods(GRAFANA_PODS)], [LOKI_HTTP_PORT]),
        # Ring (memberlist), query scheduling and the compactor, between Loki's own replicas.
        "loki-peers-ingress": _ingress(LOKI_PODS, [_pods(LOKI_PODS)], loki_peer_ports),
        "loki-peers-egress": _egress(LOKI_PODS, [_to([_pods(LOKI_PODS)], *loki_peer_ports)]),
        "loki-grafana-egress": _egress(GRAFANA_PODS, [_to([_pods(LOKI_PODS)], LOKI_HTTP_PORT)]),
        # Alloy lists pods and streams their logs from the API server, and pushes to Loki.
        "alloy-egress": _egress(
            ALLOY_PODS,
            [_to(_cidrs(*PRIVATE_RANGES), *API_SERVER_PORTS), _to([_pods(LOKI_PODS)], LOKI_HTTP_PORT)],
        ),
        # Spans from every namespace's sidecars and SDKs.
        "tempo-spans-ingress": _ingress(
            TEMPO_PODS,
            [k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=k8s.meta.v1.LabelSelectorArgs())],
            [OTLP_GRPC_PORT, OTLP_HTTP_PORT, ZIPKIN_PORT],
        ),
        "tempo-query-ingress": _ingress(TEMPO_PODS, [_pods(GRAFANA_PODS)], [TEMPO_QUERY_PORT]),
        "tempo-grafana-egress": _egress(GRAFANA_PODS, [_to([_pods(TEMPO_PODS)], TEMPO_QUERY_PORT)]),
    }
    if object_storage:
        # S3 over HTTPS (KMS is called by S3, not by Loki) and the node's Pod Identity agent for
        # credentials. S3's addresses are not known in advance: any public address, 443 only.
        policies["loki-object-storage-egress"] = _egress(
            LOKI_PODS,
            [
                _to(_cidrs("0.0.0.0/0", except_=NON_PUBLIC_RANGES), 443),
                _to(_cidrs(*POD_IDENTITY_AGENT_CIDRS), 80),
            ],
        )
    return policies


def span_export_egress(namespace: str) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """For namespaces whose sidecars report spans (their default-deny also blocks egress): to Tempo's
    Zipkin and OTLP receivers."""
    tempo = k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=_selector({labels.NAMESPACE_NAME: namespace}), pod_selector=_selector(TEMPO_PODS)
    )
    return _egress({}, [_to([tempo], ZIPKIN_PORT, OTLP_GRPC_PORT, OTLP_HTTP_PORT)])


# -- the component -----------------------------------------------------------------------------


class LoggingTracing(pulumi.ComponentResource):
    handle: LoggingTracingHandle
    bucket: Bucket | None
    loki_role: iam.PodIdentityRole | None

    def __init__(
        self, name: str, args: LoggingTracingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rampart:observability:LoggingTracing", name, {}, opts)
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
                opts=self._on_cluster(),
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
            opts=self._on_cluster([*policies, *identity]),
        )
        alloy = charts.release(
            f"{name}-alloy",
            ALLOY_CHART,
            release_name=ALLOY,
            namespace=ns,
            values=alloy_values(loki_push_url(ns), args.environment),
            opts=self._on_cluster([*policies, loki]),
        )
        tempo = charts.release(
            f"{name}-tempo",
            TEMPO_CHART,
            release_name=TEMPO,
            namespace=ns,
            values=tempo_values(args.retention_days),
            opts=self._on_cluster(policies),
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
            opts=self._on_cluster([tempo]),
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

    def _on_cluster(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        # Every Kubernetes object names its provider: none may fall back to the ambient one.
        return pulumi.ResourceOptions(
            parent=self, provider=self._args.provider, depends_on=[*self._args.depends_on, *depends_on]
        )

    def _bucket(self, name: str, target: LogsAws, retention_days: int) -> Bucket:
        child = pulumi.ResourceOptions(parent=self)
        key = customer_key(
            f"{name}-loki-key",
            "Loki's log bucket (SSE-KMS)",
            account_id=target.account_id,
            partition=target.partition,
            region=target.region,
            opts=child,
        )
        bucket = aws.s3.Bucket(
            f"{name}-loki",
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=self, protect=target.protect),
        )
        after_bucket = pulumi.ResourceOptions(parent=self, depends_on=[bucket])
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-loki-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=_SseByDefault(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    # One data key per bucket rather than per object: far fewer KMS calls.
                    bucket_key_enabled=True,
                )
            ],
            opts=after_bucket,
        )
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-loki-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=after_bucket,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-loki-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=after_bucket,
        )
        # S3 rejects concurrent changes to one bucket's policy and its public access block.
        policy = aws.s3.BucketPolicy(
            f"{name}-loki-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket, block]),
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-loki-lifecycle",
            bucket=bucket.id,
            rules=lifecycle_rules(retention_days),
            # Expiration in a versioned bucket makes noncurrent versions: versioning first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket, versioning]),
        )
        return Bucket(bucket=bucket, key=key, companions=[encryption, block, versioning, policy, lifecycle])

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
