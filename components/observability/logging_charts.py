"""Loki, Alloy and Tempo as values: the three charts' values, the Alloy pipeline, Loki's bucket rules and
IAM document, the mesh's Telemetry and the namespace's allows for logs and traces.
:mod:`components.observability.logging_tracing` installs them."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from components.core import charts, labels, netpol, quota, scheduling, security_context
from components.core.quota import Resources
from components.targets.aws import iam

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
# The API server's addresses in the node / VPC network.
PRIVATE_RANGES = netpol.RFC1918_RANGES

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
_NoncurrentExpiration = aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs
_AbortMultipart = aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs

LOKI_RESOURCES: Mapping[bool, Resources] = {
    # object storage (3 replicas) / filesystem (1 replica, small)
    True: quota.resources(requests=("500m", "1Gi"), limits=("2", "2Gi")),
    False: quota.resources(requests=("250m", "512Mi"), limits=("1", "1Gi")),
}
TEMPO_RESOURCES = quota.resources(requests=("250m", "512Mi"), limits=("1", "2Gi"))
ALLOY_RESOURCES = quota.resources(requests=("50m", "128Mi"), limits=("500m", "512Mi"))
RELOADER_RESOURCES = quota.resources(requests=("10m", "32Mi"), limits=("100m", "64Mi"))
VOLUME_SIZE = "10Gi"
# Single binary on a PersistentVolume: one replica.
TEMPO_REPLICAS = 1
# The image's own data directory, as an emptyDir (the root filesystem is read-only).
ALLOY_STORAGE_PATH = "/var/lib/alloy/data"


# -- Loki --------------------------------------------------------------------------------------


def loki_replicas(object_storage: bool) -> int:
    # The chart refuses more than one monolithic replica on a filesystem.
    return 3 if object_storage else 1


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
        single_binary["topologySpreadConstraints"] = [scheduling.spread(LOKI_PODS)]
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

_READ = ["get", "list", "watch"]
# Pods and their logs (discovery.kubernetes role pod, loki.source.kubernetes), and namespaces (the
# namespace metadata discovery attaches): the chart puts both lists into one ClusterRole.
ALLOY_RULES: list[dict[str, Any]] = [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": _READ}]
ALLOY_CLUSTER_RULES: list[dict[str, Any]] = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ}]


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
    // K8S_NODE_NAME: the chart sets it from the downward API's spec.nodeName
    // (alloy 1.11.1 templates/containers/_agent.yaml); sys.env of an unset name is "".
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
            "securityContext": security_context.restricted_container(),
        },
        "global": {"podSecurityContext": security_context.restricted_pod(RUN_AS, fs_group=True)},
        "controller": {
            "type": "daemonset",
            # Logs from every node, tainted ones included.
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
            "volumes": {"extra": [{"name": "storage", "emptyDir": {}}]},
        },
        "configReloader": {"resources": RELOADER_RESOURCES},
        # Only what discovery.kubernetes (role pod) and loki.source.kubernetes read; the chart's
        # defaults also grant secrets, configmaps and nodes cluster-wide. Both lists must be non-empty:
        # alloy 1.11.1 templates/rbac.yaml renders the ClusterRole's rules as
        # `rules | toYaml` followed by `clusterRules | toYaml`, so an empty list (`[]`) after list items
        # is invalid YAML, and null for either brings the chart's broad defaults back.
        # https://github.com/grafana/alloy/blob/main/operations/helm/charts/alloy/templates/rbac.yaml
        "rbac": {"rules": copy.deepcopy(ALLOY_RULES), "clusterRules": copy.deepcopy(ALLOY_CLUSTER_RULES)},
        # The PodLogs CRD is not used.
        "crds": {"create": False},
    }


# -- Tempo -------------------------------------------------------------------------------------


def tempo_values(retention_days: int) -> dict[str, Any]:
    """Single binary on a PVC; OTLP (gRPC, HTTP) and Zipkin (Istio's sidecars) receivers. The chart's
    Jaeger receivers stay in its defaults (Helm keys cannot be removed through a Pulumi Release);
    NetworkPolicies admit none of their ports."""
    return {
        "replicas": TEMPO_REPLICAS,
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
            "securityContext": security_context.restricted_container(),
            "extraVolumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # nosec B108 # noqa: S108 - an emptyDir
        },
        "extraVolumes": [{"name": "tmp", "emptyDir": {}}],
        "persistence": {"enabled": True, "size": VOLUME_SIZE},
        "serviceAccount": {"automountServiceAccountToken": False},
    }


def telemetry_spec(trace_sampling: float) -> dict[str, Any]:
    """Mesh-wide (root namespace, no selector): every sidecar reports to the `tempo` provider."""
    return {"tracing": [{"providers": [{"name": TEMPO}], "randomSamplingPercentage": trace_sampling}]}


# -- quota -------------------------------------------------------------------------------------


def quota_hard(*, object_storage: bool, max_nodes: int) -> dict[str, str]:
    """What Loki, Tempo and Alloy run in the monitoring namespace at most, as the pinned charts render
    them (loki 18.11.0, tempo 2.2.4, alloy 1.11.1, checked by `rampart render`): Loki's and Tempo's
    StatefulSets roll one pod at a time (no surge pod) and claim a volume per pod; Alloy is a
    DaemonSet (a pod with its config reloader on every node, rolled without surge by default) on at
    most ``max_nodes`` nodes. node-exporter, the other usual DaemonSet, is off (monitoring.py)."""
    loki, tempo = loki_replicas(object_storage), TEMPO_REPLICAS
    containers = [
        (LOKI_RESOURCES[object_storage], loki),
        (TEMPO_RESOURCES, tempo),
        (ALLOY_RESOURCES, max_nodes),
        (RELOADER_RESOURCES, max_nodes),
    ]
    return quota.pods_total(loki + tempo + max_nodes, containers) | {
        "persistentvolumeclaims": str(loki + tempo),
        "requests.storage": quota.storage_total([(VOLUME_SIZE, loki), (VOLUME_SIZE, tempo)]),
    }


# -- NetworkPolicies ---------------------------------------------------------------------------


def network_policies(object_storage: bool) -> dict[str, netpol.Spec]:
    """The monitoring namespace's allows for logs and traces (on top of its default-deny and DNS)."""
    loki, tempo = [netpol.pods(LOKI_PODS)], [netpol.pods(TEMPO_PODS)]
    loki_peer_ports = (LOKI_HTTP_PORT, LOKI_GRPC_PORT, LOKI_MEMBERLIST_PORT)
    policies = {
        # Pushes from Alloy, queries from Grafana: nothing else reaches the tenant-less API.
        "loki-ingress": netpol.ingress_from(
            LOKI_PODS, [netpol.pods(ALLOY_PODS), netpol.pods(GRAFANA_PODS)], LOKI_HTTP_PORT
        ),
        # Ring (memberlist), query scheduling and the compactor, between Loki's own replicas.
        "loki-peers-ingress": netpol.ingress_from(LOKI_PODS, loki, *loki_peer_ports),
        "loki-peers-egress": netpol.egress_to(LOKI_PODS, loki, *loki_peer_ports),
        "loki-grafana-egress": netpol.egress_to(GRAFANA_PODS, loki, LOKI_HTTP_PORT),
        # Alloy lists pods and streams their logs from the API server, and pushes to Loki.
        "alloy-egress": netpol.egress(
            ALLOY_PODS,
            [
                netpol.EgressRule(
                    to=netpol.cidrs(PRIVATE_RANGES), ports=netpol.tcp(*netpol.API_SERVER_PORTS)
                ),
                netpol.EgressRule(to=loki, ports=netpol.tcp(LOKI_HTTP_PORT)),
            ],
        ),
        # Spans from every namespace's sidecars and SDKs.
        "tempo-spans-ingress": netpol.ingress_from(
            TEMPO_PODS, [netpol.every_namespace()], OTLP_GRPC_PORT, OTLP_HTTP_PORT, ZIPKIN_PORT
        ),
        "tempo-query-ingress": netpol.ingress_from(TEMPO_PODS, [netpol.pods(GRAFANA_PODS)], TEMPO_QUERY_PORT),
        "tempo-grafana-egress": netpol.egress_to(GRAFANA_PODS, tempo, TEMPO_QUERY_PORT),
    }
    if object_storage:
        # S3 over HTTPS (KMS is called by S3, not by Loki) and the node's Pod Identity agent for
        # credentials. S3's addresses are not known in advance: any public address, 443 only.
        policies["loki-object-storage-egress"] = netpol.egress(
            LOKI_PODS,
            [
                netpol.EgressRule(
                    to=netpol.cidrs(["0.0.0.0/0"], except_=netpol.NON_PUBLIC_RANGES), ports=netpol.tcp(443)
                ),
                iam.to_pod_identity_agent(),
            ],
        )
    return policies
