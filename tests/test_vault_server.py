"""The secrets layer (Vault + Vault Secrets Operator), built alone under mocks with explicit providers:
the server HCL, chart pins and values, TLS, HA raft, KMS auto-unseal, schemas and the policy rules."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.certificates.cert_manager import ACME_ISSUER, CertificatesHandle
from components.core import netpol
from components.mesh.istio import MeshHandle
from components.secrets import vault_chart as v
from components.secrets.vault_server import AwsKmsSeal, VaultHandle, VaultServer, VaultServerArgs
from policies import catalog
from policies.model import NotApplicable, Pack, Resource
from policies.rules.kubernetes import DEPLOYMENT, POD
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from tests.support import pod_rules, schemas
from tests.support.harness import plan_of
from tests.support.helm import chart_defaults, unknown_keys
from tests.support.plans import (
    AWS_PROVIDER,
    BOUNDARY,
    CLUSTER_ARN,
    K8S_PROVIDER,
    POD_IDENTITY,
    REGION,
    RELEASE,
    TAGS,
    checked_pod_identity,
    layer_rules,
    name_of,
    network_policies,
    of,
    one,
    policy_resources,
)
from tests.support.reference import crd_schemas, helm_values

ISSUER = "rampart-ca"
MESH = MeshHandle(
    root_namespace="istio-system",
    trust_domain="cluster.local",
    injection_labels={"istio-injection": "enabled"},
    ready=[],
)
SERVER_CONFIG_PATHS = (("standalone", "config"), ("ha", "config"), ("ha", "raft", "config"))
# Chart values rendered with toYaml as Kubernetes objects: their keys are Kubernetes fields, checked by
# validating a stand-in pod strictly (see test_operator_security_contexts_are_kubernetes_objects).
OPERATOR_K8S_OBJECTS = ("controller.podSecurityContext.", "controller.securityContext.")


# -- building the layer --------------------------------------------------------------------------------


def certificates_handle(issuer: str = ISSUER) -> CertificatesHandle:
    return CertificatesHandle(
        cluster_issuer=issuer, internal_issuer=ISSUER, namespace="cert-manager", ready=[]
    )


@functools.cache
def build(
    replicas: int = 1, *, on_aws: bool = False, mesh: bool = False, backend_ports: tuple[int, ...] = ()
) -> Plan:
    def program() -> None:
        opts = None
        if on_aws:
            provider = aws.Provider("aws", region=REGION, default_tags=aws.ProviderDefaultTagsArgs(tags=TAGS))
            opts = pulumi.ResourceOptions(providers=[provider])
        VaultServer(
            "vault",
            VaultServerArgs(
                environment="prod" if on_aws else "local",
                ha_replicas=replicas,
                provider=k8s.Provider("k8s"),
                certificates=certificates_handle(),
                mesh=MESH if mesh else None,
                aws=POD_IDENTITY if on_aws else None,
                storage_class="gp3" if on_aws else None,
                storage_gb=20,
                backend_ports=backend_ports,
                # As the prod stack's context hands it over.
                protect=on_aws,
            ),
            opts=opts,
        )

    return plan_of(program)


PLANS: dict[str, Callable[[], Plan]] = {
    "standalone": build,
    "ha": lambda: build(3, mesh=True, backend_ports=(15671, 5432)),
    "aws-ha": lambda: build(3, on_aws=True, mesh=True),
    "aws-standalone": lambda: build(1, on_aws=True),
}


def release(plan: Plan, release_name: str) -> dict[str, Any]:
    (found,) = [r for r in plan.of_type(RELEASE) if r["inputs"]["name"] == release_name]
    return found


def values_of(plan: Plan, release_name: str) -> dict[str, Any]:
    return release(plan, release_name)["inputs"]["values"]  # type: ignore[no-any-return]


def merged(defaults: Any, values: Any) -> Any:
    """Values over defaults as Helm merges them: maps deeply, everything else replaced."""
    if isinstance(defaults, Mapping) and isinstance(values, Mapping):
        out = dict(defaults)
        for key, value in values.items():
            out[key] = merged(defaults.get(key), value) if key in defaults else value
        return out
    return copy.deepcopy(values)


def at(node: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


# -- the server configuration (pure) ---------------------------------------------------------------------

STANDALONE_HCL = """\
ui = false
disable_mlock = true

listener "tcp" {
  address = "[::]:8200"
  cluster_address = "[::]:8201"
  tls_cert_file = "/vault/userconfig/vault-tls/tls.crt"
  tls_key_file = "/vault/userconfig/vault-tls/tls.key"
  tls_client_ca_file = "/vault/userconfig/vault-tls/ca.crt"
  tls_min_version = "tls12"
  telemetry {
    unauthenticated_metrics_access = true
  }
}

storage "raft" {
  path = "/vault/data"
}

service_registration "kubernetes" {
}

telemetry {
  prometheus_retention_time = "60s"
  disable_hostname = true
}
"""


def test_standalone_hcl_is_a_tls_listener_and_raft_storage() -> None:
    assert v.server_hcl(1) == STANDALONE_HCL


def test_ha_hcl_joins_every_peer_over_verified_tls() -> None:
    hcl = v.server_hcl(3)
    assert hcl.startswith(STANDALONE_HCL.split('storage "raft"', maxsplit=1)[0])
    storage = hcl.split('storage "raft" {\n', 1)[1].split("\n}\n", 1)[0]
    joins = re.findall(r"  retry_join \{\n(.*?)\n  \}", storage, re.DOTALL)
    assert len(joins) == 3
    for index, join in enumerate(joins):
        host = f"vault-{index}.vault-internal"
        assert join.splitlines() == [
            f'    leader_api_addr = "https://{host}:8200"',
            f'    leader_tls_servername = "{host}"',
            '    leader_ca_cert_file = "/vault/userconfig/vault-tls/ca.crt"',
        ]
    assert storage.startswith('  path = "/vault/data"\n')
    assert v.server_hcl(5).count("retry_join {") == 5


def test_kms_seal_stanza_names_region_and_key() -> None:
    hcl = v.server_hcl(3, AwsKmsSeal(region=REGION, kms_key_id="1234abcd-12ab"))
    assert hcl.endswith('seal "awskms" {\n  region = "eu-west-1"\n  kms_key_id = "1234abcd-12ab"\n}\n')
    assert 'seal "' not in v.server_hcl(3)
    # Strings are quoted and escaped, never spliced in raw.
    assert 'kms_key_id = "a\\"b"' in v.server_hcl(1, AwsKmsSeal(region=REGION, kms_key_id='a"b'))


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_hcl_is_well_formed_and_safe_for_the_charts_rendering(replicas: int) -> None:
    hcl = v.server_hcl(replicas, AwsKmsSeal(region=REGION, kms_key_id="key"))
    depth = 0
    for char in hcl:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    assert "tls_disable" not in hcl
    # The chart passes the config through `tpl` and then sed-replaces these words at start-up.
    assert "{{" not in hcl
    assert not [word for word in v.CHART_PLACEHOLDERS if word in hcl]


def test_certificate_names_cover_the_service_and_every_peer() -> None:
    assert v.server_dns_names(3) == [
        "vault",
        "vault.vault",
        "vault.vault.svc",
        "vault.vault.svc.cluster.local",
        "*.vault-internal",
        "vault-0.vault-internal",
        "vault-1.vault-internal",
        "vault-2.vault-internal",
    ]


@pytest.mark.parametrize("replicas", [0, 2])
def test_raft_needs_one_or_a_quorum(replicas: int) -> None:
    with pytest.raises(ValueError, match="raft needs 1"):
        v.vault_values(
            replicas, "", storage_gb=1, storage_class=None, zones_required=False, out_of_mesh=False
        )


def test_vault_certificates_come_from_the_internal_ca_even_where_public_names_use_acme() -> None:
    def program() -> None:
        VaultServer(
            "vault",
            VaultServerArgs(
                environment="dev",
                ha_replicas=1,
                provider=k8s.Provider("k8s"),
                certificates=certificates_handle(ACME_ISSUER),
                mesh=None,
                aws=None,
                storage_class=None,
            ),
        )

    certificates = [r for r in plan_of(program).custom() if r["type"].endswith(":Certificate")]
    assert certificates
    assert {c["inputs"]["spec"]["issuerRef"]["name"] for c in certificates} == {ISSUER}


# -- Helm charts: pins and values -----------------------------------------------------------------------


@pytest.mark.parametrize("plan", sorted(PLANS))
@pytest.mark.parametrize(
    ("release_name", "chart", "version", "namespace"),
    [
        ("vault", "vault", "0.34.1", "vault"),
        ("vault-secrets-operator", "vault-secrets-operator", "1.4.1", "vault-secrets-operator-system"),
    ],
)
def test_charts_are_pinned(plan: str, release_name: str, chart: str, version: str, namespace: str) -> None:
    inputs = release(PLANS[plan](), release_name)["inputs"]
    assert (inputs["chart"], inputs["version"]) == (chart, version)
    assert inputs["repositoryOpts"] == {"repo": "https://helm.releases.hashicorp.com"}
    assert inputs["namespace"] == namespace and inputs["createNamespace"] is False
    reference = yaml.safe_load((helm_values() / chart / "Chart.yaml").read_text())
    assert (reference["name"], reference["version"]) == (chart, version)


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_vault_values_key_exists_and_matches_the_charts_schema(plan: str) -> None:
    values = values_of(PLANS[plan](), "vault")
    assert list(unknown_keys(values, chart_defaults("vault"))) == []
    schema = json.loads((helm_values() / "vault" / "values.schema.json").read_text())
    # The schema says draft-07 (under an https URL jsonschema does not recognise).
    jsonschema.Draft7Validator(schema).validate(merged(chart_defaults("vault"), values))


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_operator_values_key_exists_in_its_defaults(plan: str) -> None:
    values = values_of(PLANS[plan](), "vault-secrets-operator")
    unknown = list(unknown_keys(values, chart_defaults("vault-secrets-operator")))
    assert [key for key in unknown if not key.startswith(OPERATOR_K8S_OBJECTS)] == []


def test_key_checker_would_catch_a_misspelled_vault_key() -> None:
    values = copy.deepcopy(values_of(build(3), "vault"))
    values["server"]["ha"]["raft"]["enabeld"] = True
    values["server"]["dataStorge"] = {}
    assert sorted(unknown_keys(values, chart_defaults("vault"))) == [
        "server.dataStorge",
        "server.ha.raft.enabeld",
    ]


def test_defaults_disable_tls_which_is_why_every_config_is_ours() -> None:
    defaults = chart_defaults("vault")
    assert defaults["global"]["tlsDisable"] is True
    assert all("tls_disable = 1" in at(defaults["server"], path) for path in SERVER_CONFIG_PATHS)


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_vault_serves_tls_only(plan: str) -> None:
    values = values_of(PLANS[plan](), "vault")
    effective = merged(chart_defaults("vault"), values)
    assert effective["global"]["tlsDisable"] is False
    for path in SERVER_CONFIG_PATHS:
        config = at(effective["server"], path)
        assert "tls_disable" not in config, path
        assert 'tls_cert_file = "/vault/userconfig/vault-tls/tls.crt"' in config
    rule = catalog.rule("vault-tls")
    (vault_release,) = [r for r in policy_resources(PLANS[plan]()) if r.get("chart") == "vault"]
    assert rule.evaluate(vault_release) == []


def test_vault_tls_rule_would_catch_a_plaintext_listener() -> None:
    rule = catalog.rule("vault-tls")
    resource = release(build(), "vault")
    values = copy.deepcopy(resource["inputs"]["values"])
    values["server"]["ha"]["raft"]["config"] += '\nlistener "tcp" {\n  tls_disable = 1\n}\n'
    weakened = Resource(resource["urn"], RELEASE, "vault", resource["inputs"] | {"values": values})
    assert rule.evaluate(weakened) == ["vault: server.ha.raft.config disables TLS on a listener"]


def test_the_server_mounts_its_certificate_where_the_config_reads_it() -> None:
    server = values_of(build(), "vault")["server"]
    (tls,) = [vol for vol in server["volumes"] if vol["name"] == "vault-tls"]
    assert tls["secret"]["secretName"] == "vault-tls"
    (mount,) = [m for m in server["volumeMounts"] if m["name"] == "vault-tls"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/vault/userconfig/vault-tls", True)
    assert server["extraEnvironmentVars"]["VAULT_CACERT"] == "/vault/userconfig/vault-tls/ca.crt"
    assert server["extraEnvironmentVars"]["VAULT_TLS_SERVER_NAME"] in v.server_dns_names(1)
    host = server["ha"]["apiAddr"].removeprefix("https://$(VAULT_K8S_POD_NAME)").removesuffix(":8200")
    assert f"vault-0{host}" in v.server_dns_names(1)


def test_injector_and_ui_are_off_and_storage_is_persistent() -> None:
    values = values_of(build(1, on_aws=True), "vault")
    assert values["injector"] == {"enabled": False} and values["ui"] == {"enabled": False}
    server = values["server"]
    assert server["dataStorage"] == {
        "enabled": True,
        "size": "20Gi",
        "storageClass": "gp3",
        "mountPath": "/vault/data",
    }
    assert server["auditStorage"] == {
        "enabled": True,
        "size": "20Gi",
        "storageClass": "gp3",
        "mountPath": "/vault/audit",
    }
    assert set(server["resources"]) == {"requests", "limits"}
    # No storage class given: the key is left out, so the chart keeps the cluster default (null).
    assert "storageClass" not in values_of(build(), "vault")["server"]["dataStorage"]


# -- standalone and HA -------------------------------------------------------------------------------------


def test_standalone_is_one_raft_server() -> None:
    server = values_of(build(), "vault")["server"]
    assert server["standalone"]["enabled"] is True
    assert server["ha"]["enabled"] is False and server["ha"]["raft"]["enabled"] is False
    assert "retry_join" not in server["standalone"]["config"]
    assert 'storage "raft"' in server["standalone"]["config"]
    assert "topologySpreadConstraints" not in server


@pytest.mark.parametrize("plan", ["ha", "aws-ha"])
def test_ha_is_a_raft_quorum_spread_over_nodes_and_zones(plan: str) -> None:
    server = values_of(PLANS[plan](), "vault")["server"]
    ha = server["ha"]
    assert server["standalone"]["enabled"] is False
    assert ha["enabled"] is True and ha["replicas"] >= 3
    assert ha["raft"]["enabled"] is True and ha["raft"]["setNodeId"] is True
    assert ha["raft"]["config"].count("retry_join {") == ha["replicas"]
    assert ha["disruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    (anti,) = server["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti == {"labelSelector": {"matchLabels": v.SERVER_PODS}, "topologyKey": "kubernetes.io/hostname"}
    (spread,) = server["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"] == {"matchLabels": v.SERVER_PODS}
    assert spread["whenUnsatisfiable"] == ("DoNotSchedule" if plan == "aws-ha" else "ScheduleAnyway")
    # The operator follows: two controllers with a disruption budget the API accepts.
    controller = values_of(PLANS[plan](), "vault-secrets-operator")["controller"]
    assert controller["replicas"] == 2
    assert controller["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1, "minAvailable": ""}


# -- pods: Pod Security Standards restricted -------------------------------------------------------------


def stand_in_pod(
    name: str, pod_context: dict[str, Any], containers: list[dict[str, Any]], volumes: list[Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": name},
        "spec": {"securityContext": pod_context, "containers": containers, "volumes": volumes},
    }


def vault_pod() -> dict[str, Any]:
    """The server pod as the chart renders it from our values (statefulset template, 0.34.1)."""
    server = values_of(build(3), "vault")["server"]
    probe = {"exec": {"command": ["/bin/sh", "-ec", "vault status -tls-skip-verify"]}}
    container = {
        "name": "vault",
        "image": "hashicorp/vault:2.0.4",
        "resources": server["resources"],
        "securityContext": server["statefulSet"]["securityContext"]["container"],
        "volumeMounts": server["volumeMounts"],
        "readinessProbe": probe,
        "livenessProbe": {
            "httpGet": {"path": server["livenessProbe"]["path"], "port": 8200, "scheme": "HTTPS"}
        },
    }
    chart_volumes = [
        {"name": "config", "configMap": {"name": "vault-config"}},
        {"name": "home", "emptyDir": {}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-vault-0"}},
    ]
    manifest = stand_in_pod(
        "vault",
        server["statefulSet"]["securityContext"]["pod"],
        [container, *server["extraContainers"]],
        [*server["volumes"], *chart_volumes],
    )
    manifest["spec"]["shareProcessNamespace"] = server["shareProcessNamespace"]
    return manifest


def operator_pod() -> dict[str, Any]:
    controller = values_of(build(3), "vault-secrets-operator")["controller"]
    probe = {"httpGet": {"path": "/healthz", "port": 8081}}
    containers = [
        {
            "name": name,
            "image": "hashicorp/vault-secrets-operator:1.4.1",
            "resources": resources,
            "securityContext": controller["securityContext"],
            "livenessProbe": probe,
            "readinessProbe": probe,
        }
        for name, resources in (
            ("manager", controller["manager"]["resources"]),
            ("kube-rbac-proxy", controller["kubeRbacProxy"]["resources"]),
        )
    ]
    podinfo = {
        "name": "podinfo",
        "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]},
    }
    return stand_in_pod("vault-secrets-operator", controller["podSecurityContext"], containers, [podinfo])


@pytest.mark.parametrize("pod", [vault_pod, operator_pod], ids=["vault", "operator"])
def test_chart_pods_meet_the_platform_workload_rules(pod: Callable[[], dict[str, Any]]) -> None:
    manifest = pod()
    assert pod_rules.violations(manifest, (*pod_rules.RESTRICTED_POD_RULES, "container-probes")) == {}
    assert manifest["spec"]["securityContext"]["runAsUser"] >= 10000


def test_operator_security_contexts_are_kubernetes_objects() -> None:
    # The values keys outside the chart's defaults are exactly PodSecurityContext / SecurityContext
    # fields: a pod carrying them validates strictly.
    assert schemas.validate_core(operator_pod(), "1.33") == []
    assert schemas.validate_core(vault_pod(), "1.33") == []


def test_stand_in_pods_would_fail_without_our_contexts() -> None:
    manifest = vault_pod()
    manifest["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 100}
    manifest["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False}
    resource = Resource("urn:stand-in", POD, "vault", manifest)
    assert catalog.rule("container-non-root").evaluate(resource)
    assert catalog.rule("container-read-only-root-fs").evaluate(resource)


# -- AWS: KMS auto-unseal ----------------------------------------------------------------------------------


def test_aws_adds_the_awskms_seal_with_the_layers_own_key() -> None:
    plan = build(3, on_aws=True, mesh=True)
    key = one(plan, "Key")
    # Protected as the (prod) context says: losing the unseal key loses every secret.
    assert key["inputs"]["enableKeyRotation"] is True and key["protect"] is True
    key_id = key["outputs"]["keyId"]
    for path in SERVER_CONFIG_PATHS:
        config = at(values_of(plan, "vault")["server"], path)
        assert config.endswith(f'seal "awskms" {{\n  region = "{REGION}"\n  kms_key_id = "{key_id}"\n}}\n')
    assert 'seal "' not in values_of(build(3), "vault")["server"]["ha"]["raft"]["config"]


def test_unseal_role_touches_only_that_key_and_only_for_vaults_service_account() -> None:
    plan = build(3, on_aws=True, mesh=True)
    key_arn = one(plan, "Key")["outputs"]["arn"]
    document = json.loads(one(plan, "Policy")["inputs"]["policy"])
    (statement,) = document["Statement"]
    assert statement == {
        "Sid": "VaultAutoUnseal",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"],
        "Resource": [key_arn],
    }
    role = one(plan, "Role")
    association = checked_pod_identity(
        plan, role, cluster_arn=CLUSTER_ARN, namespace="vault", service_account="vault", boundary=BOUNDARY
    )
    # Credentials are injected at pod start: the association exists before the servers.
    assert association["urn"] in release(plan, "vault")["dependencies"]


def test_without_aws_there_is_no_iam_and_no_seal() -> None:
    plan = build(3)
    assert not [r for r in plan.custom() if r["type"].startswith("aws:")]
    assert "allow-aws-kms" not in network_policies(plan, "vault")


# -- Kubernetes objects -------------------------------------------------------------------------------------


def test_certificates_come_from_the_platform_issuer() -> None:
    plan = build(3)
    server = one(plan, "Certificate", "vault-tls", "vault")["inputs"]["spec"]
    assert server["secretName"] == "vault-tls"
    assert server["dnsNames"] == v.server_dns_names(3)
    assert server["issuerRef"] == {"name": ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"}
    client_ca = one(plan, "Certificate", "vault-client-ca", "vault-secrets-operator-system")["inputs"]["spec"]
    assert client_ca["secretName"] == "vault-client-ca"
    # Same issuer: its Secret's ca.crt is the CA that signed Vault's certificate.
    assert client_ca["issuerRef"] == server["issuerRef"]
    assert one(plan, "Certificate", "vault-tls")["urn"] in release(plan, "vault")["dependencies"]


def test_the_operators_default_connection_trusts_the_ca_copy() -> None:
    plan = build(3)
    connection = one(plan, "VaultConnection")
    assert connection["inputs"]["metadata"]["name"] == "default"
    assert connection["inputs"]["metadata"]["namespace"] == "vault-secrets-operator-system"
    assert connection["inputs"]["spec"] == {
        "address": "https://vault.vault.svc:8200",
        "caCertSecretRef": "vault-client-ca",
        "skipTLSVerify": False,
    }
    assert release(plan, "vault-secrets-operator")["urn"] in connection["dependencies"]
    assert one(plan, "Certificate", "vault-client-ca")["urn"] in connection["dependencies"]
    assert values_of(plan, "vault-secrets-operator")["defaultVaultConnection"] == {"enabled": False}
    # The address is a name on Vault's certificate.
    host = connection["inputs"]["spec"]["address"].removeprefix("https://").removesuffix(":8200")
    assert host in v.server_dns_names(3)


def test_vault_network_allows_only_the_operator_peers_and_the_api_server() -> None:
    policies = network_policies(build(3, on_aws=True), "vault")
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    (ingress,) = policies["allow-operator"]["ingress"]
    assert ingress["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "vault-secrets-operator-system"}
            },
            "podSelector": {"matchLabels": v.OPERATOR_PODS},
        }
    ]
    assert [p["port"] for p in ingress["ports"]] == [8200]
    raft = policies["allow-raft-peers"]
    peers = [{"podSelector": {"matchLabels": v.SERVER_PODS}}]
    assert raft["ingress"][0]["from"] == peers and raft["egress"][0]["to"] == peers
    assert [p["port"] for p in raft["ingress"][0]["ports"]] == [8200, 8201]
    (api,) = policies["allow-kubernetes-api"]["egress"]
    assert [p["port"] for p in api["ports"]] == [443, 6443]
    assert "0.0.0.0/0" not in json.dumps(policies)
    kms, agent = policies["allow-aws-kms"]["egress"]
    assert [p["port"] for p in kms["ports"]] == [443]
    assert {"ipBlock": {"cidr": "169.254.170.23/32"}} in agent["to"]


def test_secret_engines_reach_their_backends_only_when_asked() -> None:
    assert "allow-secret-engine-backends" not in network_policies(build(3), "vault")
    (rule,) = network_policies(build(3, mesh=True, backend_ports=(15671, 5432)), "vault")[
        "allow-secret-engine-backends"
    ]["egress"]
    assert [p["port"] for p in rule["ports"]] == [5432, 15671]
    assert {peer["ipBlock"]["cidr"] for peer in rule["to"]} == set(netpol.PRIVATE_RANGES)


def test_operator_network_reaches_vault_and_the_api_server_only() -> None:
    policies = network_policies(build(3), "vault-secrets-operator-system")
    assert set(policies) == {"default-deny", "allow-dns", "allow-to-vault", "allow-kubernetes-api"}
    (to_vault,) = policies["allow-to-vault"]["egress"]
    assert to_vault["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "vault"}},
            "podSelector": {"matchLabels": v.SERVER_PODS},
        }
    ]
    assert [p["port"] for p in to_vault["ports"]] == [8200]
    assert not [p for p in policies.values() if "Ingress" in p["policyTypes"] and p.get("ingress")]


@pytest.mark.parametrize("replicas", [1, 3])
def test_quotas_fit_what_the_charts_run(replicas: int) -> None:
    plan = build(replicas)
    vault_hard = one(plan, "ResourceQuota", namespace="vault")["inputs"]["spec"]["hard"]
    assert vault_hard["pods"] == str(replicas)
    assert vault_hard["persistentvolumeclaims"] == str(2 * replicas)
    assert vault_hard["requests.storage"] == f"{2 * replicas * 20}Gi"
    # Each server (1Gi) with its TLS reloader (32Mi).
    assert vault_hard["limits.memory"] == f"{replicas * (1024 + 32)}Mi"
    operator_hard = one(plan, "ResourceQuota", namespace="vault-secrets-operator-system")["inputs"]["spec"][
        "hard"
    ]
    controllers = 2 if replicas > 1 else 1
    # Controllers, one surge pod each rollout, and a hook Job's pod.
    assert operator_hard["pods"] == str(controllers + 1 + 1)
    assert operator_hard["persistentvolumeclaims"] == "0" and operator_hard["services.loadbalancers"] == "0"


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_namespaces_are_restricted_and_out_of_the_mesh(plan: str) -> None:
    namespaces = {r["inputs"]["metadata"]["name"]: r for r in of(PLANS[plan](), "Namespace")}
    assert set(namespaces) == {"vault", "vault-secrets-operator-system"}
    with_mesh = plan in ("ha", "aws-ha")
    rule = catalog.rule("namespace-pod-security-restricted")
    for namespace in namespaces.values():
        labels = namespace["inputs"]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels.get("istio-injection") == ("disabled" if with_mesh else None)
        view = Resource(namespace["urn"], namespace["type"], "ns", namespace["inputs"])
        assert rule.evaluate(view, {"exemptNamespaces": []}) == []
    server = values_of(PLANS[plan](), "vault")["server"]
    controller = values_of(PLANS[plan](), "vault-secrets-operator")["controller"]
    for pod_labels in (server.get("extraLabels"), controller.get("extraLabels")):
        assert pod_labels == ({"sidecar.istio.io/inject": "false"} if with_mesh else None)


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_custom_resources_validate_against_their_crd_schemas(plan: str) -> None:
    schema_dir = crd_schemas()
    kinds = []
    for resource in PLANS[plan]().custom():
        if not resource["type"].startswith("kubernetes:") or resource["type"] == RELEASE:
            continue
        manifest = to_manifest(resource)
        if not schemas.is_core(manifest):
            kinds.append(manifest["kind"])
            assert schemas.validate_custom(manifest, schema_dir) == [], name_of(resource)
    assert sorted(kinds) == ["Certificate", "Certificate", "VaultConnection"]


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_core_objects_validate_strictly(plan: str) -> None:
    found = 0
    for resource in PLANS[plan]().custom():
        if not resource["type"].startswith("kubernetes:") or resource["type"] == RELEASE:
            continue
        manifest = to_manifest(resource)
        if schemas.is_core(manifest):
            found += 1
            assert schemas.validate_core(manifest, "1.33") == [], name_of(resource)
    assert found >= 12


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_resource_uses_the_explicit_providers(plan: str) -> None:
    for resource in PLANS[plan]().custom():
        expected = {"kubernetes": K8S_PROVIDER, "aws": AWS_PROVIDER}[resource["type"].split(":")[0]]
        assert resource["provider"].startswith(expected), resource["urn"]
    assert catalog.rule("explicit-providers").evaluate_stack(policy_resources(PLANS[plan]())) == []


def stand_in_workloads() -> list[Resource]:
    """The charts' pods are not plan objects: a Deployment per namespace makes each one 'run workloads'."""
    return [
        Resource(f"urn:stand-in:{ns}", DEPLOYMENT, ns, {"metadata": {"name": ns, "namespace": ns}})
        for ns in ("vault", "vault-secrets-operator-system")
    ]


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_namespace_rules_pass_for_both_namespaces(plan: str) -> None:
    resources = [*policy_resources(PLANS[plan]()), *stand_in_workloads()]
    for name in ("namespace-default-deny", "namespace-quota"):
        assert catalog.rule(name).evaluate_stack(resources) == [], name
    # ... and they look at these namespaces: without the baseline both would fail.
    bare = [r for r in resources if r.type.startswith(("kubernetes:apps/", "kubernetes:helm"))]
    for name in ("namespace-default-deny", "namespace-quota"):
        assert len(catalog.rule(name).evaluate_stack(bare)) == 2, name


def findings(
    resources: list[Resource], pack: Pack, config: Mapping[str, Any] | None = None
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for rule in layer_rules(pack):
        try:
            if rule.is_stack_rule:
                messages = [violation.message for violation in rule.evaluate_stack(resources, config)]
            else:
                messages = [message for r in resources for message in rule.evaluate(r, config)]
        except NotApplicable:
            continue
        if messages:
            found[rule.name] = messages
    return found


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_security_rule_passes(plan: str) -> None:
    assert findings(policy_resources(PLANS[plan]()), "security") == {}


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_reliability_rules_pass_for_ha_and_flag_only_standalone(plan: str) -> None:
    found = findings(policy_resources(PLANS[plan]()), "reliability")
    # Standalone is for local and dev, where reliability findings are advisory.
    assert list(found) == ([] if plan.endswith("ha") else ["vault-ha-raft"])


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_kms_seal_rule_as_the_aws_stacks_configure_it(plan: str) -> None:
    rule = catalog.rule("vault-kms-seal")
    (vault_release,) = [r for r in policy_resources(PLANS[plan]()) if r.get("chart") == "vault"]
    found = rule.evaluate(vault_release, {"requireKmsSeal": True})
    assert found == (
        [] if plan.startswith("aws") else ["vault-release: no awskms seal: Vault would need manual unsealing"]
    )


def test_the_handle_names_what_later_layers_need() -> None:
    captured: list[VaultHandle] = []

    def program() -> None:
        layer = VaultServer(
            "vault",
            VaultServerArgs(
                environment="dev",
                ha_replicas=3,
                provider=k8s.Provider("k8s"),
                certificates=certificates_handle(),
                mesh=None,
                aws=None,
                storage_class=None,
            ),
        )
        captured.append(layer.handle)

    plan_of(program)
    (handle,) = captured
    assert handle.address == "https://vault.vault.svc:8200"
    assert (handle.namespace, handle.operator_namespace) == ("vault", "vault-secrets-operator-system")
    assert (handle.ca_secret, handle.connection_name) == ("vault-client-ca", "default")
    assert [type(r) for r in handle.ready] == [k8s.helm.v3.Release] * 2 + [k8s.apiextensions.CustomResource]


# -- TLS renewal: SIGHUP -------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [1, 3])
def test_a_renewed_certificate_is_reloaded_by_sighup_from_a_sidecar(replicas: int) -> None:
    """Vault keeps the listener certificate it loaded until SIGHUP or a restart
    (https://support.hashicorp.com/hc/en-us/articles/5767318985107-Vault-SIGHUP-Behavior); the chart's
    update strategy is OnDelete. A sidecar in the shared process namespace (vault chart
    `server.shareProcessNamespace`) signals the server when cert-manager's renewal lands."""
    server = values_of(build(replicas), "vault")["server"]
    assert server["shareProcessNamespace"] is True
    (reloader,) = server["extraContainers"]
    assert reloader["name"] == v.TLS_RELOADER
    # The very image the server runs, which the chart pins by default.
    defaults = chart_defaults("vault")["server"]["image"]
    assert server["image"] == {"repository": defaults["repository"], "tag": defaults["tag"]}
    assert reloader["image"] == f"{defaults['repository']}:{defaults['tag']}"
    # It watches the file the listener serves, mounted from the same Secret.
    assert f'tls_cert_file = "{reloader["volumeMounts"][0]["mountPath"]}/tls.crt"' in v.server_hcl(replicas)
    assert {"name": v.SERVER_CERTIFICATE, "mountPath": v.TLS_DIR, "readOnly": True} in server["volumeMounts"]
    assert "pkill -HUP -x vault" in reloader["command"][-1]
    # Same uid as the server (a signal needs no capability then), and restricted.
    context = reloader["securityContext"]
    assert context["runAsUser"] == server["statefulSet"]["securityContext"]["pod"]["runAsUser"]
    assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
    assert set(reloader["resources"]) == {"requests", "limits"}


def test_the_reload_script_signals_vault_once_per_change(tmp_path: Any) -> None:
    """The sidecar's script under sh, with a stand-in pkill that records its arguments."""
    import subprocess
    import time

    certificate = tmp_path / "tls.crt"
    certificate.write_text("first")
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pkill = bin_dir / "pkill"
    pkill.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    pkill.chmod(0o755)
    script = v.tls_reload_script(str(certificate), interval=1)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    process = subprocess.Popen(["/bin/sh", "-c", script], env=env, stdout=subprocess.DEVNULL)
    try:
        time.sleep(2.5)
        assert not calls.exists()  # nothing changed: no signal
        certificate.write_text("renewed")
        deadline = time.monotonic() + 10
        while not calls.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.5)
    finally:
        process.kill()
        process.wait()
    assert calls.read_text().splitlines() == ["-HUP -x vault"]


def test_the_rds_ca_bundle_is_mounted_optional_so_pods_start_before_phase_2_delivers_it() -> None:
    """aws with databases: Vault's pods mount the ConfigMap `rds-ca-bundle` at the path the database
    connections name (sslrootcert). `optional`: the pods start without it, and the kubelet projects
    it once the program creates it (https://kubernetes.io/docs/concepts/configuration/configmap/
    #mounted-configmaps-are-updated-automatically); the StatefulSet is OnDelete, so the volume must be
    in the pod template from the first install."""
    server = v.vault_values(
        3, "hcl", storage_gb=10, storage_class=None, zones_required=True, out_of_mesh=True, database_ca=True
    )["server"]
    volume = {
        "name": v.DATABASE_CA_CONFIGMAP,
        "configMap": {"name": v.DATABASE_CA_CONFIGMAP, "optional": True},
    }
    assert volume in server["volumes"]
    assert {"name": v.DATABASE_CA_CONFIGMAP, "mountPath": v.DATABASE_CA_DIR, "readOnly": True} in server[
        "volumeMounts"
    ]
    assert f"{v.DATABASE_CA_DIR}/{v.DATABASE_CA_KEY}" == v.DATABASE_CA_FILE
    plain = v.vault_values(
        1, "hcl", storage_gb=10, storage_class=None, zones_required=False, out_of_mesh=True
    )
    assert volume not in plain["server"]["volumes"]
