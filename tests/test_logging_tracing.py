"""Logs and traces (Loki, Alloy, Tempo, the mesh's Telemetry), built alone under mocks with explicit
providers, on the AWS target (S3 storage through Pod Identity) and on a plain cluster (PVCs)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.observability import logging_charts as charts
from components.observability import logging_tracing as lt
from components.observability.logging_tracing import (
    LoggingTracing,
    LoggingTracingArgs,
    LoggingTracingHandle,
    LogsAws,
)
from policies import catalog
from policies.model import Resource
from rampart.config.types import cpu_millicores
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from tests.support import schemas
from tests.support.harness import plan_of
from tests.support.helm import chart_defaults, unknown_release_keys
from tests.support.plans import (
    AWS_PROVIDER,
    BOUNDARY,
    CLUSTER_ARN,
    CLUSTER_NAME,
    K8S_PROVIDER,
    POD_IDENTITY,
    REGION,
    RELEASE,
    checked_pod_identity,
    network_policies,
    of,
    one,
    policy_resources,
)
from tests.support.reference import crd_schemas, helm_values

NAMESPACE = "monitoring"
RETENTION_DAYS = 30
SAMPLING = 2.5
# Values keys the charts read although their values.yaml does not list them are allowed only through
# tests/support/helm.PASS_THROUGH (Loki's documented `storage.bucketNames`; Tempo's `receivers`).
PASS_THROUGH = {
    ("loki", True): set(),
    ("loki", False): set(),
    ("alloy", True): set(),
    ("alloy", False): set(),
    ("tempo", True): set(),
    ("tempo", False): set(),
}
CHART_REPOSITORIES = {
    "loki": "https://grafana-community.github.io/helm-charts",
    "tempo": "https://grafana-community.github.io/helm-charts",
    "alloy": "https://grafana.github.io/helm-charts",
}
BUCKET_COMPANIONS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketPolicy:BucketPolicy",
)

HANDLES: dict[tuple[bool, bool], LoggingTracingHandle] = {}


@functools.cache
def build(on_aws: bool = True, protect: bool = True) -> Plan:
    def program() -> None:
        provider = k8s.Provider("k8s")
        opts = None
        target = None
        if on_aws:
            opts = pulumi.ResourceOptions(providers=[aws.Provider("aws", region=REGION)])
            target = LogsAws.of(POD_IDENTITY, protect=protect)
        component = LoggingTracing(
            "logs",
            LoggingTracingArgs(
                environment="prod" if on_aws else "local",
                provider=provider,
                namespace=NAMESPACE,
                retention_days=RETENTION_DAYS,
                trace_sampling=SAMPLING,
                aws=target,
            ),
            opts=opts,
        )
        HANDLES[(on_aws, protect)] = component.handle
        # What a service namespace adds so its sidecars may export spans.
        k8s.networking.v1.NetworkPolicy(
            "orders-span-export",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-span-export", namespace="orders"),
            spec=lt.span_export_egress(NAMESPACE),
            opts=pulumi.ResourceOptions(provider=provider),
        )

    return plan_of(program)


def release(plan: Plan, chart: str) -> dict[str, Any]:
    (found,) = [r for r in plan.of_type(RELEASE) if r["inputs"]["chart"] == chart]
    return found


def values(chart: str, on_aws: bool = True) -> dict[str, Any]:
    return release(build(on_aws), chart)["inputs"]["values"]  # type: ignore[no-any-return]


def walk(tree: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield f"{path}{key}", value
            yield from walk(value, f"{path}{key}.")
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            yield from walk(item, f"{path}{index}.")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- charts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", ["loki", "alloy", "tempo"])
def test_charts_are_pinned_to_the_reference_versions(chart: str) -> None:
    inputs = release(build(), chart)["inputs"]
    reference = yaml.safe_load((helm_values() / chart / "Chart.yaml").read_text())
    assert (inputs["chart"], inputs["version"]) == (reference["name"], reference["version"])
    assert inputs["repositoryOpts"] == {"repo": CHART_REPOSITORIES[chart]}
    assert inputs["name"] == chart
    assert inputs["namespace"] == NAMESPACE and inputs["createNamespace"] is False


@pytest.mark.parametrize("on_aws", [True, False])
@pytest.mark.parametrize("chart", ["loki", "alloy", "tempo"])
def test_every_values_key_exists_in_the_chart_defaults(chart: str, on_aws: bool) -> None:
    assert unknown_release_keys(chart, values(chart, on_aws)) == PASS_THROUGH[(chart, on_aws)]


def test_the_pass_through_keys_are_read_by_the_charts() -> None:
    loki_text = (helm_values() / "loki" / "values.yaml").read_text()
    assert re.search(r"#\s*bucketNames:\n\s*#\s*chunks:", loki_text)
    schema = json.loads((helm_values() / "loki" / "values.schema.json").read_text())
    assert schema["properties"]["loki"]["properties"]["storage"]["additionalProperties"] is True
    assert "toYaml .Values.tempo.receivers" in chart_defaults("tempo")["config"]


def test_the_key_checker_catches_typos() -> None:
    typo = {"singleBinary": {"replica": 1}, "alloy": {"mounts": {"varlogs": False}}}
    assert unknown_release_keys("loki", typo) == {"singleBinary.replica", "alloy"}
    assert unknown_release_keys("alloy", {"alloy": {"mounts": {"varlogs": False}}}) == {
        "alloy.mounts.varlogs"
    }


# -- Loki --------------------------------------------------------------------------------------


@pytest.mark.parametrize("on_aws", [True, False])
def test_loki_values_pass_the_charts_own_validation(on_aws: bool) -> None:
    """The conditions of the chart's templates/validate.yaml that these values touch."""
    loki = values("loki", on_aws)
    replicas = loki["singleBinary"]["replicas"]
    object_storage = loki["loki"]["storage"]["type"] in ("s3", "gcs", "azure")
    assert object_storage or replicas <= 1
    assert all(loki[target]["replicas"] == 0 for target in ("write", "read", "backend"))
    assert loki["loki"]["schemaConfig"] and not loki["loki"].get("useTestSchema")
    assert loki["lokiCanary"]["enabled"] is False and loki["test"]["enabled"] is False
    assert chart_defaults("loki")["minio"]["enabled"] is False
    assert loki["deploymentMode"] == "Monolithic"
    assert "minio" not in loki and not loki.get("ignoreMinioDeprecation")


def test_loki_is_one_tenant_with_the_configured_retention() -> None:
    for on_aws in (True, False):
        config = values("loki", on_aws)["loki"]
        assert config["auth_enabled"] is False
        assert config["structuredConfig"]["limits_config"]["retention_period"] == "720h"
        compactor = config["compactor"]
        assert compactor["retention_enabled"] is True
        (schema,) = config["schemaConfig"]["configs"]
        assert compactor["delete_request_store"] == schema["object_store"]
        assert (schema["store"], schema["index"]["period"]) == ("tsdb", "24h")


def test_loki_scales_on_object_storage_and_stays_single_on_a_filesystem() -> None:
    local, remote = values("loki", on_aws=False), values("loki", on_aws=True)
    assert local["singleBinary"]["replicas"] == local["loki"]["commonConfig"]["replication_factor"] == 1
    assert local["loki"]["storage"] == {"type": "filesystem"}
    assert local["singleBinary"]["persistence"]["enabled"] is True
    assert remote["singleBinary"]["replicas"] == remote["loki"]["commonConfig"]["replication_factor"] == 3
    assert remote["singleBinary"]["podDisruptionBudget"] == {"maxUnavailable": 1}
    bucket = one(build(), "Bucket")["outputs"]["id"]
    storage = remote["loki"]["storage"]
    assert storage["type"] == "s3" and storage["s3"] == {"region": REGION}
    assert storage["bucketNames"] == {"chunks": bucket, "ruler": bucket}
    assert remote["loki"]["schemaConfig"]["configs"][0]["object_store"] == "s3"


def test_loki_runs_without_api_access_gateway_or_caches() -> None:
    loki = values("loki")
    assert loki["gateway"]["enabled"] is False
    assert loki["chunksCache"]["enabled"] is False and loki["resultsCache"]["enabled"] is False
    assert loki["sidecar"]["rules"]["enabled"] is False and loki["singleBinary"]["sidecar"] is False
    assert loki["rbac"]["namespaced"] is True
    assert loki["serviceAccount"] == {"name": "loki", "automountServiceAccountToken": False}
    assert loki["defaults"]["automountServiceAccountToken"] is False
    resources = loki["singleBinary"]["resources"]
    assert set(resources) == {"requests", "limits"} and set(resources["limits"]) == {"cpu", "memory"}


# -- the bucket and its identity ---------------------------------------------------------------


def stack_violations(resources: list[Resource], *rule_names: str) -> list[str]:
    return [v.message for name in rule_names for v in catalog.rule(name).evaluate_stack(resources)]


def resource_violations(resources: list[Resource], *rule_names: str) -> list[str]:
    return [m for name in rule_names for r in resources for m in catalog.rule(name).evaluate(r)]


def test_the_bucket_passes_s3_bucket_hardened_as_the_stack_rule_sees_it() -> None:
    outputs = policy_resources(build(), "outputs")
    assert any(r.type == "aws:s3/bucket:Bucket" for r in outputs)
    assert stack_violations(outputs, "s3-bucket-hardened") == []


@pytest.mark.parametrize("companion", BUCKET_COMPANIONS)
def test_s3_bucket_hardened_would_notice_a_missing_companion(companion: str) -> None:
    outputs = [r for r in policy_resources(build(), "outputs") if r.type != companion]
    assert len(stack_violations(outputs, "s3-bucket-hardened")) == 1


def test_the_aws_resources_pass_the_encryption_iam_and_protection_rules() -> None:
    inputs = policy_resources(build(), "inputs")
    kinds = {r.type for r in inputs}
    assert {"aws:kms/key:Key", "aws:iam/policy:Policy"} <= kinds
    # No log groups are created, so the log-group rules have nothing to judge.
    assert "aws:cloudwatch/logGroup:LogGroup" not in kinds
    rules = ("kms-key-rotation", "iam-no-wildcard-action", "stateful-protected")
    assert resource_violations(inputs, *rules) == []
    stack = policy_resources(build(), "outputs")
    assert stack_violations(stack, "explicit-providers") == []


def test_the_bucket_and_its_key_follow_the_stacks_protection() -> None:
    # One rule (components.core.protection): staging and prod keep both through a destroy; local and
    # dev can be torn down, so the versioned bucket is emptied on destroy and the key may go.
    for protect in (True, False):
        plan = build(protect=protect)
        assert one(plan, "Bucket")["protect"] is protect
        assert one(plan, "Bucket")["inputs"]["forceDestroy"] is (not protect)
        assert one(plan, "Key")["protect"] is protect
    unprotected = resource_violations(policy_resources(build(protect=False), "inputs"), "stateful-protected")
    # The advisory rule for stacks that keep their data still names both (it is mandatory in staging
    # and prod only, where both are protected).
    assert sorted(message.split(":")[0] for message in unprotected) == ["logs-loki", "logs-loki-key"]


def test_bucket_settings() -> None:
    plan = build()
    bucket, key = one(plan, "Bucket"), one(plan, "Key")
    assert bucket["inputs"]["forceDestroy"] is False
    assert key["inputs"]["enableKeyRotation"] is True
    (rule,) = one(plan, "BucketServerSideEncryptionConfiguration")["inputs"]["rules"]
    assert rule["bucketKeyEnabled"] is True
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key["outputs"]["arn"],
    }
    block = one(plan, "BucketPublicAccessBlock")["inputs"]
    assert all(block[flag] is True for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"))
    assert block["restrictPublicBuckets"] is True
    document = json.loads(one(plan, "BucketPolicy")["inputs"]["policy"])
    assert {s["Effect"] for s in document["Statement"]} == {"Deny"}
    arn = bucket["outputs"]["arn"]
    assert all(s["Resource"] == [arn, f"{arn}/*"] for s in document["Statement"])
    assert {"NumericLessThan": {"s3:TlsVersion": "1.2"}} in [s["Condition"] for s in document["Statement"]]


def test_lifecycle_expires_chunks_after_the_retention_and_keeps_index_and_rules() -> None:
    plan = build()
    lifecycle = one(plan, "BucketLifecycleConfiguration")["inputs"]
    assert lifecycle["bucket"] == one(plan, "Bucket")["outputs"]["id"]
    rules = {rule["id"]: rule for rule in lifecycle["rules"]}
    assert all(rule["status"] == "Enabled" for rule in rules.values())
    expiring = {
        r["filter"]["prefix"]: r["expiration"]["days"] for r in rules.values() if "days" in r["expiration"]
    }
    # Only chunks (Loki files them under its single tenant "fake"): index/ and rules/ stay Loki's.
    assert expiring == {"fake/": RETENTION_DAYS + 1}
    clean_up = rules["clean-up"]
    assert clean_up["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
    assert clean_up["expiration"] == {"expiredObjectDeleteMarker": True}
    assert clean_up["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}


def test_the_loki_role_touches_only_its_bucket_and_key() -> None:
    plan = build()
    bucket_arn, key_arn = one(plan, "Bucket")["outputs"]["arn"], one(plan, "Key")["outputs"]["arn"]
    (policy,) = [p for p in of(plan, "Policy") if p["type"] == "aws:iam/policy:Policy"]
    document = json.loads(policy["inputs"]["policy"])
    granted = {
        action: set(as_list(statement["Resource"]))
        for statement in document["Statement"]
        for action in as_list(statement["Action"])
    }
    assert all(s["Effect"] == "Allow" for s in document["Statement"])
    assert granted == {
        "s3:ListBucket": {bucket_arn},
        "s3:GetObject": {f"{bucket_arn}/*"},
        "s3:PutObject": {f"{bucket_arn}/*"},
        "s3:DeleteObject": {f"{bucket_arn}/*"},
        "kms:Decrypt": {key_arn},
        "kms:GenerateDataKey": {key_arn},
    }
    (kms,) = [s for s in document["Statement"] if s["Sid"] == "UseBucketKey"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}


def test_only_lokis_service_account_in_monitoring_can_assume_the_role() -> None:
    plan = build()
    role = one(plan, "Role")
    association = checked_pod_identity(
        plan, role, cluster_arn=CLUSTER_ARN, namespace=NAMESPACE, service_account="loki", boundary=BOUNDARY
    )
    assert association["inputs"]["clusterName"] == CLUSTER_NAME
    assert association["inputs"]["roleArn"] == role["outputs"]["arn"]
    assert values("loki")["serviceAccount"]["name"] == "loki"
    # Pods start only once the association exists.
    assert association["urn"] in release(plan, "loki")["dependencies"]


def test_off_aws_nothing_is_created_in_aws() -> None:
    plan = build(on_aws=False)
    assert not [r for r in plan.custom() if r["type"].startswith("aws:")]
    assert "loki-object-storage-egress" not in network_policies(plan, NAMESPACE)


# -- Alloy -------------------------------------------------------------------------------------


def test_alloy_ships_pod_logs_through_the_api_server_to_loki() -> None:
    config = values("alloy")["alloy"]["configMap"]["content"]
    assert 'url = "http://loki.monitoring.svc.cluster.local:3100/loki/api/v1/push"' in config
    assert HANDLES[(True, True)].loki_url == "http://loki.monitoring.svc.cluster.local:3100"
    assert 'loki.source.kubernetes "pods"' in config and "loki.source.file" not in config
    assert 'field = "spec.nodeName=" + sys.env("K8S_NODE_NAME")' in config
    assert "forward_to = [loki.write.default.receiver]" in config
    assert config.count("{") == config.count("}")
    # Vault's audit entries (its audit device writing to stdout) are tagged.
    assert 'selector = "{namespace=\\"vault\\"} |~ `\\"type\\":\\"(request|response)\\"`"' in config
    assert 'values = { log_type = "vault_audit" }' in config
    assert 'external_labels = { environment = "prod" }' in config


def test_alloy_needs_no_host_path_and_runs_restricted() -> None:
    released = values("alloy")
    assert released["alloy"]["mounts"]["varlog"] is False
    assert released["alloy"]["mounts"]["dockercontainers"] is False
    assert not [path for path, _ in walk(released) if path.endswith("hostPath")]
    # The storage path is an emptyDir the chart mounts, not the node's disk.
    (mount,) = released["alloy"]["mounts"]["extra"]
    (volume,) = released["controller"]["volumes"]["extra"]
    assert mount == {"name": volume["name"], "mountPath": released["alloy"]["storagePath"]}
    assert volume["emptyDir"] == {}
    assert released["controller"]["type"] == "daemonset"
    pod = released["global"]["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = released["alloy"]["securityContext"]
    assert container["readOnlyRootFilesystem"] is True and container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}


def test_alloy_reads_only_pods_their_logs_and_namespaces() -> None:
    rbac = values("alloy")["rbac"]
    rules = [*rbac["rules"], *rbac["clusterRules"]]
    granted = {(group, resource) for r in rules for group in r["apiGroups"] for resource in r["resources"]}
    assert granted == {("", "pods"), ("", "pods/log"), ("", "namespaces")}
    assert all(set(r["verbs"]) == {"get", "list", "watch"} for r in rules)
    # ... where the chart's defaults would grant secrets cluster-wide.
    assert any("secrets" in r["resources"] for r in chart_defaults("alloy")["rbac"]["rules"])


def _alloy_cluster_role_rules(rules: Any, cluster_rules: Any) -> Any:
    """alloy 1.11.1 templates/rbac.yaml, the ClusterRole's `rules:` as the chart renders it:
    `{{- if or rules clusterRules }} {{ rules | toYaml | nindent 2 }} {{ clusterRules | toYaml |
    nindent 2 }} {{- else }} [] {{- end }}` (Helm's toYaml of an empty list is `[]`).
    https://github.com/grafana/alloy/blob/main/operations/helm/charts/alloy/templates/rbac.yaml"""

    def nindent(value: Any) -> str:
        text = yaml.safe_dump(value, default_flow_style=False).rstrip("\n")
        return "\n" + "\n".join(f"  {line}" for line in text.splitlines())

    body = nindent(rules) + nindent(cluster_rules) if (rules or cluster_rules) else "\n  []"
    return yaml.safe_load("rules:" + body)["rules"]


def test_alloys_cluster_role_renders_as_yaml_with_only_its_own_rules() -> None:
    rbac = values("alloy")["rbac"]
    # Null for either list would bring back the chart's defaults (secrets, configmaps, nodes).
    assert rbac["rules"] and rbac["clusterRules"]
    rendered = _alloy_cluster_role_rules(rbac["rules"], rbac["clusterRules"])
    assert rendered == [*rbac["rules"], *rbac["clusterRules"]]
    # The model reproduces the chart's failure with an empty clusterRules after non-empty rules.
    with pytest.raises(yaml.YAMLError):
        _alloy_cluster_role_rules(rbac["rules"], [])


# -- Tempo and the mesh ------------------------------------------------------------------------


def test_tempo_receives_otlp_and_zipkin_and_keeps_traces_on_a_volume() -> None:
    tempo = values("tempo")
    receivers = tempo["tempo"]["receivers"]
    assert receivers["otlp"]["protocols"]["grpc"] == {"endpoint": "0.0.0.0:4317"}
    assert receivers["otlp"]["protocols"]["http"] == {"endpoint": "0.0.0.0:4318"}
    assert receivers["zipkin"] == {"endpoint": "0.0.0.0:9411"}
    assert tempo["tempo"]["retention"] == "720h"
    assert tempo["replicas"] == 1
    assert tempo["persistence"]["enabled"] is True
    assert chart_defaults("tempo")["tempo"]["storage"]["trace"]["backend"] == "local"
    assert tempo["tempo"]["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_mesh_sends_spans_to_tempo() -> None:
    plan = build()
    telemetry = one(plan, "Telemetry")
    assert telemetry["type"] == "kubernetes:telemetry.istio.io/v1:Telemetry"
    metadata = telemetry["inputs"]["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("mesh-default", "istio-system")
    (tracing,) = telemetry["inputs"]["spec"]["tracing"]
    assert tracing == {"providers": [{"name": "tempo"}], "randomSamplingPercentage": SAMPLING}
    # The provider the Telemetry names is the one the lead adds to istiod's meshConfig.
    provider = lt.tempo_extension_provider(NAMESPACE)
    handle = HANDLES[(True, True)]
    assert provider == {"name": "tempo", "zipkin": {"service": handle.zipkin_service, "port": 9411}}
    assert handle.zipkin_service == "tempo.monitoring.svc.cluster.local"
    assert handle.tempo_url == "http://tempo.monitoring.svc.cluster.local:3200"
    assert release(plan, "tempo")["urn"] in telemetry["dependencies"]


def test_the_telemetry_validates_against_its_crd_schema() -> None:
    manifest = to_manifest(one(build(), "Telemetry"))
    assert schemas.validate_custom(manifest, crd_schemas()) == []
    manifest["spec"]["tracing"][0]["randomSamplingPercentage"] = 150
    assert schemas.validate_custom(manifest, crd_schemas())


# -- NetworkPolicies ---------------------------------------------------------------------------


def test_policies_are_in_monitoring_named_for_their_component_and_the_namespace_is_not_ours() -> None:
    plan = build()
    policies = network_policies(plan, NAMESPACE)
    assert set(policies) == {
        "loki-ingress",
        "loki-peers-ingress",
        "loki-peers-egress",
        "loki-grafana-egress",
        "loki-object-storage-egress",
        "alloy-egress",
        "tempo-spans-ingress",
        "tempo-query-ingress",
        "tempo-grafana-egress",
    }
    assert not of(plan, "Namespace")
    for release_resource in plan.of_type(RELEASE):
        policy_urns = {
            r["urn"] for r in of(plan, "NetworkPolicy") if r["inputs"]["metadata"]["namespace"] == NAMESPACE
        }
        assert policy_urns <= set(release_resource["dependencies"]), release_resource["urn"]


def test_loki_is_reachable_only_by_alloy_and_grafana() -> None:
    (rule,) = network_policies(build(), NAMESPACE)["loki-ingress"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3100}]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": charts.ALLOY_PODS}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}},
    ]
    assert network_policies(build(), NAMESPACE)["loki-ingress"]["podSelector"] == {
        "matchLabels": charts.LOKI_PODS
    }


def test_alloy_reaches_the_api_server_and_loki_only() -> None:
    api_server, loki = network_policies(build(), NAMESPACE)["alloy-egress"]["egress"]
    assert {p["port"] for p in api_server["ports"]} == {443, 6443}
    assert all("ipBlock" in peer for peer in api_server["to"])
    assert loki == {
        "to": [{"podSelector": {"matchLabels": charts.LOKI_PODS}}],
        "ports": [{"protocol": "TCP", "port": 3100}],
    }


def test_tempo_takes_spans_from_every_namespace_and_queries_from_grafana() -> None:
    policies = network_policies(build(), NAMESPACE)
    (spans,) = policies["tempo-spans-ingress"]["ingress"]
    assert spans["from"] == [{"namespaceSelector": {}}]
    assert [p["port"] for p in spans["ports"]] == [4317, 4318, 9411]
    (query,) = policies["tempo-query-ingress"]["ingress"]
    assert query["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}]
    assert query["ports"] == [{"protocol": "TCP", "port": 3200}]


def test_loki_reaches_s3_over_https_and_the_pod_identity_agent() -> None:
    public, agent = network_policies(build(), NAMESPACE)["loki-object-storage-egress"]["egress"]
    assert public["ports"] == [{"protocol": "TCP", "port": 443}]
    (block,) = public["to"]
    assert block["ipBlock"]["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in block["ipBlock"]["except"]
    assert agent["ports"] == [{"protocol": "TCP", "port": 80}]
    assert {p["ipBlock"]["cidr"] for p in agent["to"]} == {"169.254.170.23/32", "fd00:ec2::23/128"}


def test_a_service_namespace_may_export_spans_to_tempo() -> None:
    (policy,) = [r for r in of(build(), "NetworkPolicy") if r["inputs"]["metadata"]["namespace"] == "orders"]
    (rule,) = policy["inputs"]["spec"]["egress"]
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
            "podSelector": {"matchLabels": charts.TEMPO_PODS},
        }
    ]
    assert [p["port"] for p in rule["ports"]] == [9411, 4317, 4318]


@pytest.mark.parametrize("on_aws", [True, False])
def test_core_objects_validate_strictly(on_aws: bool) -> None:
    core = [to_manifest(r) for r in build(on_aws).custom() if r["type"].startswith("kubernetes:networking")]
    assert len(core) == (10 if on_aws else 9)
    problems = {m["metadata"]["name"]: found for m in core if (found := schemas.validate_core(m, "1.33"))}
    assert problems == {}


# -- providers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("on_aws", [True, False])
def test_every_resource_uses_the_explicit_provider_of_its_package(on_aws: bool) -> None:
    resources = list(build(on_aws).custom())
    assert len(resources) > 10
    for resource in resources:
        expected = {"aws": AWS_PROVIDER, "kubernetes": K8S_PROVIDER}[resource["type"].split(":")[0]]
        assert resource["provider"].startswith(expected), resource["urn"]


# -- the monitoring namespace's quota, per stack ---------------------------------------------------


def _stack_monitoring(stack: str) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    from tests.conftest import planned

    plan = planned(stack)
    [hard] = [
        r["inputs"]["spec"]["hard"]
        for r in plan.of_type("kubernetes:core/v1:ResourceQuota")
        if r["inputs"]["metadata"]["namespace"] == NAMESPACE
    ]
    releases = {
        r["inputs"]["name"]: r["inputs"]["values"]
        for r in plan.of_type(RELEASE)
        if r["inputs"]["namespace"] == NAMESPACE
    }
    return hard, releases


def _gib(quantity: str) -> float:
    from rampart.config.types import memory_bytes

    return memory_bytes(quantity) / 2**30


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_the_monitoring_quota_holds_every_volume_and_daemonset_pod_of_the_namespace(stack: str) -> None:
    """A ResourceQuota refuses a claim or pod past `hard` ("exceeded quota"): Loki's and Tempo's claims
    must fit next to Prometheus', Alertmanager's and Grafana's, and Alloy's DaemonSet runs a pod on
    every node the stack allows (https://kubernetes.io/docs/concepts/policy/resource-quotas/)."""
    from tests.conftest import stack_config

    hard, releases = _stack_monitoring(stack)
    stack_values = releases["kube-prometheus-stack"]
    prometheus = stack_values["prometheus"]["prometheusSpec"]
    alertmanager = stack_values["alertmanager"]["alertmanagerSpec"]

    def claim(spec: dict[str, Any]) -> str:
        template = spec.get("volumeClaimTemplate", spec)
        return str(template["spec"]["resources"]["requests"]["storage"])

    loki, tempo = releases["loki"]["singleBinary"], releases["tempo"]
    volumes = [
        (claim(prometheus["storageSpec"]), prometheus["replicas"]),
        (claim(alertmanager["storage"]), alertmanager["replicas"]),
        (stack_values["grafana"]["persistence"]["size"], 1),
        (loki["persistence"]["size"], loki["replicas"]),
        (tempo["persistence"]["size"], tempo["replicas"]),
    ]
    assert _gib(hard["requests.storage"]) >= sum(_gib(size) * count for size, count in volumes)
    assert int(hard["persistentvolumeclaims"]) >= sum(count for _, count in volumes)
    # Alloy on every node the stack allows, with its config reloader, beside everything else.
    config = stack_config(stack)
    nodes = (
        config.aws.system_nodes.max_size + config.aws.karpenter.cpu_limit // 2 + 1
        if config.aws
        else config.kubernetes.max_nodes
    )
    alloy = releases["alloy"]
    per_node_cpu = sum(
        cpu_millicores(r["limits"]["cpu"])
        for r in (alloy["alloy"]["resources"], alloy["configReloader"]["resources"])
    )
    own = charts.quota_hard(object_storage=config.aws is not None, max_nodes=nodes)
    assert int(own["pods"]) >= nodes + loki["replicas"] + tempo["replicas"]
    assert cpu_millicores(own["limits.cpu"]) >= nodes * per_node_cpu
    for key, amount in own.items():
        if key.endswith("cpu"):
            assert cpu_millicores(hard[key]) >= cpu_millicores(amount), key
        elif key.endswith(("memory", "storage")):
            assert _gib(hard[key]) >= _gib(amount), key
        else:
            assert int(hard[key]) >= int(amount), key


def test_the_logs_and_traces_quota_follows_the_charts_and_the_node_count() -> None:
    small = charts.quota_hard(object_storage=False, max_nodes=1)
    # One Loki and one Tempo with a 10Gi volume each, one Alloy pod.
    assert small["pods"] == "3"
    assert (small["persistentvolumeclaims"], small["requests.storage"]) == ("2", "20Gi")
    big = charts.quota_hard(object_storage=True, max_nodes=37)
    assert big["pods"] == str(3 + 1 + 37)
    assert (big["persistentvolumeclaims"], big["requests.storage"]) == ("4", "40Gi")
    # Alloy's 500m + the reloader's 100m per node, on top of Loki's and Tempo's limits.
    assert cpu_millicores(big["limits.cpu"]) == 3 * 2000 + 1000 + 37 * 600
