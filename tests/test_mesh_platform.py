"""The mesh (Istio) and certificates (cert-manager) layers, built alone under mocks with explicit
providers: chart pins and values, root mesh policies, issuers, IAM, schemas and the policy rules."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.certificates import cert_manager as certificates
from components.certificates.cert_manager import AcmeAws, Certificates, CertificatesArgs, certificate
from components.mesh import istio as mesh
from components.mesh.istio import Mesh, MeshArgs, MeshHandle, principal
from policies import catalog
from policies.model import NotApplicable
from rampart.config.models import Certificates as CertificatesConfig
from rampart.config.models import Mesh as MeshConfig
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from tests.support import schemas
from tests.support.harness import plan_of
from tests.support.helm import chart_defaults, unknown_keys
from tests.support.plans import (
    AWS_PROVIDER,
    BOUNDARY,
    CLUSTER_ARN,
    CLUSTER_NAME,
    K8S_PROVIDER,
    RELEASE,
    TAGS,
    checked_pod_identity,
    layer_rules,
    name_of,
    of,
    one,
    policy_resources,
)
from tests.support.reference import crd_schemas, helm_values

ZONE_ID = "Z0123456789ABCDEFGHIJ"
ACME = CertificatesConfig(
    issuer="acme",
    acme_email="platform@example.com",
    acme_server="https://acme-staging-v02.api.letsencrypt.org/directory",
    hosted_zone_id=ZONE_ID,
)

MESH_ENUMS = {
    ("outboundTrafficPolicy", "mode"): {"REGISTRY_ONLY", "ALLOW_ANY", "ALLOW_ANY_DYNAMIC_DNS"},
    ("pathNormalization", "normalization"): {
        "DEFAULT",
        "NONE",
        "BASE",
        "MERGE_SLASHES",
        "DECODE_AND_MERGE_SLASHES",
    },
    ("accessLogEncoding",): {"TEXT", "JSON"},
}


# -- building the layers -----------------------------------------------------------------------


@functools.cache
def build_mesh(replicas: int = 1, access_logs: bool = True, sampling: float = 1.0) -> Plan:
    def program() -> None:
        config = MeshConfig(istiod_replicas=replicas, access_logs=access_logs, trace_sampling=sampling)
        Mesh("mesh", MeshArgs(config=config, provider=k8s.Provider("k8s"), environment="dev"))

    return plan_of(program)


@functools.cache
def build_certificates(environment: str = "local", *, with_certificate: bool = False) -> Plan:
    def program() -> None:
        provider = k8s.Provider("k8s")
        layer = Certificates(
            "tls",
            CertificatesArgs(config=CertificatesConfig(), provider=provider, environment=environment),
        )
        if with_certificate:
            certificate(
                "orders-tls",
                namespace="orders",
                dns_names=["orders.example.com"],
                secret_name="orders-tls",
                handle=layer.handle,
                provider=provider,
                parent=layer,
            )

    return plan_of(program)


@functools.cache
def build_acme(on_aws: bool = True) -> Plan:
    def program() -> None:
        provider = aws.Provider(
            "aws",
            region="us-east-1",
            default_tags=aws.ProviderDefaultTagsArgs(tags=TAGS),
        )
        acme_aws = AcmeAws(
            cluster_name=CLUSTER_NAME,
            cluster_arn=CLUSTER_ARN,
            partition="aws",
            permissions_boundary=BOUNDARY,
        )
        Certificates(
            "tls",
            CertificatesArgs(
                config=ACME,
                provider=k8s.Provider("k8s"),
                environment="prod",
                aws=acme_aws if on_aws else None,
            ),
            opts=pulumi.ResourceOptions(providers=[provider]),
        )

    return plan_of(program)


ALL_PLANS: dict[str, Callable[[], Plan]] = {
    "mesh": build_mesh,
    "mesh-ha": lambda: build_mesh(replicas=3),
    "self-signed": build_certificates,
    "self-signed-with-certificate": lambda: build_certificates(with_certificate=True),
    "acme": build_acme,
    "acme-without-aws": lambda: build_acme(on_aws=False),
}


def release(plan: Plan, release_name: str) -> dict[str, Any]:
    (found,) = [r for r in plan.of_type(RELEASE) if r["inputs"]["name"] == release_name]
    return found


# -- Helm charts: pins and values ---------------------------------------------------------------


class ChartPin(NamedTuple):
    plan: str
    release: str
    chart: str
    reference: str  # the chart's folder under helm-values/
    repository: str
    version: str
    namespace: str


JETSTACK = "https://charts.jetstack.io"
CHARTS = [
    ChartPin("mesh", "istio-base", "base", "istio-base", mesh.CHART_REPOSITORY, "1.30.3", "istio-system"),
    ChartPin("mesh", "istio-cni", "cni", "istio-cni", mesh.CHART_REPOSITORY, "1.30.3", "kube-system"),
    ChartPin("mesh", "istiod", "istiod", "istiod", mesh.CHART_REPOSITORY, "1.30.3", "istio-system"),
    ChartPin("mesh-ha", "istiod", "istiod", "istiod", mesh.CHART_REPOSITORY, "1.30.3", "istio-system"),
    ChartPin(
        "self-signed", "cert-manager", "cert-manager", "cert-manager", JETSTACK, "v1.21.1", "cert-manager"
    ),
    ChartPin("acme", "cert-manager", "cert-manager", "cert-manager", JETSTACK, "v1.21.1", "cert-manager"),
]


def test_key_checker_catches_typos_in_values_resources_and_mesh_config() -> None:
    defaults = {"meshConfig": {"enablePrometheusMerge": True}, "resources": {"requests": {}}, "env": {}}
    values = {
        "meshConfig": {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY", "tls": {}}, "acessLogFile": "x"},
        "resources": {"limits": {"cpu": "1"}, "limit": {}},
        "env": {"ANY": "1"},
        "cnii": {},
    }
    assert sorted(unknown_keys(values, defaults)) == [
        "cnii",
        "meshConfig.acessLogFile",
        "meshConfig.outboundTrafficPolicy.tls",
        "resources.limit",
    ]


@pytest.mark.parametrize("pin", CHARTS, ids=[f"{pin.plan}:{pin.release}" for pin in CHARTS])
def test_chart_is_pinned_and_every_values_key_exists_in_its_defaults(pin: ChartPin) -> None:
    inputs = release(ALL_PLANS[pin.plan](), pin.release)["inputs"]
    assert (inputs["chart"], inputs["version"]) == (pin.chart, pin.version)
    assert inputs["repositoryOpts"] == {"repo": pin.repository}
    assert inputs["namespace"] == pin.namespace and inputs["createNamespace"] is False
    # The reference values are this chart's (the Chart.yaml there carries a placeholder version).
    assert yaml.safe_load((helm_values() / pin.reference / "Chart.yaml").read_text())["name"] == pin.chart
    assert list(unknown_keys(inputs["values"], chart_defaults(pin.reference))) == []


def test_istiod_chart_takes_mesh_config_and_cni_at_the_top_level() -> None:
    defaults = chart_defaults("istiod")
    assert "meshConfig" in defaults and "cni" in defaults and "enabled" in defaults["cni"]
    assert "pilot" not in defaults


def test_mesh_config_values_are_valid_enum_members() -> None:
    mesh_config = release(build_mesh(), "istiod")["inputs"]["values"]["meshConfig"]
    for path, allowed in MESH_ENUMS.items():
        node: Any = mesh_config
        for part in path:
            node = node[part]
        assert node in allowed, path


# -- the mesh -----------------------------------------------------------------------------------


def istiod_values(plan: Plan) -> dict[str, Any]:
    return release(plan, "istiod")["inputs"]["values"]  # type: ignore[no-any-return]


def test_root_policies_enforce_strict_mtls_and_deny_by_default() -> None:
    plan = build_mesh()
    istiod_urn = release(plan, "istiod")["urn"]
    peer = one(plan, "PeerAuthentication")
    assert peer["inputs"]["metadata"] == {"name": "default", "namespace": "istio-system"}
    assert peer["inputs"]["spec"] == {"mtls": {"mode": "STRICT"}}
    deny = one(plan, "AuthorizationPolicy")
    assert deny["inputs"]["metadata"] == {"name": "allow-nothing", "namespace": "istio-system"}
    assert deny["inputs"]["spec"] == {}
    for policy in (peer, deny):
        assert policy["type"].startswith("kubernetes:security.istio.io/v1:")
        assert istiod_urn in policy["dependencies"]


def test_egress_is_registry_only_and_sidecars_are_bounded() -> None:
    values = istiod_values(build_mesh())
    assert values["meshConfig"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert values["cni"] == {"enabled": True}
    proxy = values["global"]["proxy"]
    assert set(proxy["resources"]) == {"requests", "limits"}
    assert proxy["seccompProfile"] == {"type": "RuntimeDefault"}
    assert values["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(values["resources"]) == {"requests", "limits"}


def test_access_logs_and_trace_sampling_follow_the_config() -> None:
    on = istiod_values(build_mesh(access_logs=True, sampling=10.0))["meshConfig"]
    assert (on["accessLogFile"], on["accessLogEncoding"]) == ("/dev/stdout", "JSON")
    assert on["enableTracing"] is True and on["defaultConfig"]["tracing"] == {"sampling": 10.0}
    off = istiod_values(build_mesh(access_logs=False, sampling=0.0))["meshConfig"]
    assert "accessLogFile" not in off
    assert off["enableTracing"] is False


@pytest.mark.parametrize(("replicas", "pdb"), [(1, False), (2, True), (3, True)])
def test_istiod_is_highly_available_when_asked(replicas: int, pdb: bool) -> None:
    values = istiod_values(build_mesh(replicas=replicas))
    assert values["autoscaleEnabled"] is True
    assert values["autoscaleMin"] == values["replicaCount"] == replicas
    assert values["autoscaleMax"] >= replicas
    assert values["global"]["defaultPodDisruptionBudget"] == {"enabled": pdb}
    assert ("topologySpreadConstraints" in values) is pdb


def test_istio_releases_install_in_order() -> None:
    plan = build_mesh()
    base, cni, istiod = (release(plan, n) for n in ("istio-base", "istio-cni", "istiod"))
    assert base["urn"] in istiod["dependencies"] and base["urn"] in cni["dependencies"]
    quota = one(plan, "ResourceQuota")
    assert quota["urn"] in istiod["dependencies"]


def test_istio_system_is_locked_down_like_any_namespace() -> None:
    plan = build_mesh()
    labels = one(plan, "Namespace")["inputs"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "istio-injection" not in labels
    policies = {p["inputs"]["metadata"]["name"]: p["inputs"]["spec"] for p in of(plan, "NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    istiod = policies["allow-istiod"]
    assert istiod["podSelector"] == {"matchLabels": {"app": "istiod"}}
    assert [p["port"] for p in istiod["ingress"][0]["ports"]] == [15012, 15017, 15014]
    assert "from" not in istiod["ingress"][0]
    hard = one(plan, "ResourceQuota")["inputs"]["spec"]["hard"]
    assert hard["pods"] == "10" and hard["limits.memory"] == "20480Mi"
    assert {r["inputs"]["metadata"]["namespace"] for r in of(plan, "LimitRange")} == {"istio-system"}


def test_principal_is_the_spiffe_path_of_a_service_account() -> None:
    handle = MeshHandle(
        root_namespace="istio-system", trust_domain="example.org", injection_labels={}, ready=[]
    )
    assert principal(handle, "orders", "orders-api") == "example.org/ns/orders/sa/orders-api"


def test_mesh_exposes_its_handle() -> None:
    captured: list[MeshHandle] = []

    def program() -> None:
        layer = Mesh("mesh", MeshArgs(config=MeshConfig(), provider=k8s.Provider("k8s"), environment="dev"))
        captured.append(layer.handle)

    plan_of(program)
    (handle,) = captured
    assert (handle.root_namespace, handle.trust_domain) == ("istio-system", "cluster.local")
    assert handle.injection_labels == {"istio-injection": "enabled"}
    # Workloads wait for the CNI plugin, istiod (the injector) and the root policies.
    kinds = [type(r) for r in handle.ready]
    assert kinds == [k8s.helm.v3.Release, k8s.helm.v3.Release] + [k8s.apiextensions.CustomResource] * 2


# -- certificates ------------------------------------------------------------------------------


def cert_manager_values(plan: Plan) -> dict[str, Any]:
    return release(plan, "cert-manager")["inputs"]["values"]  # type: ignore[no-any-return]


def test_self_signed_issuer_chain() -> None:
    plan = build_certificates()
    issuers = {r["inputs"]["metadata"]["name"]: r for r in of(plan, "ClusterIssuer")}
    assert set(issuers) == {"rampart-selfsigned-root", "rampart-ca"}
    assert issuers["rampart-selfsigned-root"]["inputs"]["spec"] == {"selfSigned": {}}
    root = one(plan, "Certificate", "rampart-root-ca")
    spec = root["inputs"]["spec"]
    assert root["inputs"]["metadata"]["namespace"] == "cert-manager"
    assert spec["isCA"] is True and spec["secretName"] == "rampart-root-ca"
    assert spec["privateKey"]["algorithm"] == "ECDSA" and spec["privateKey"]["size"] == 256
    assert spec["issuerRef"] == {
        "name": "rampart-selfsigned-root",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert issuers["rampart-ca"]["inputs"]["spec"] == {"ca": {"secretName": "rampart-root-ca"}}
    # selfsigned -> root CA -> CA issuer, each after the chart (CRDs, webhook) is up.
    chart = release(plan, "cert-manager")["urn"]
    assert chart in issuers["rampart-selfsigned-root"]["dependencies"]
    assert issuers["rampart-selfsigned-root"]["urn"] in root["dependencies"]
    assert root["urn"] in issuers["rampart-ca"]["dependencies"]
    assert not of(plan, "Role")


def test_cert_manager_values() -> None:
    values = cert_manager_values(build_certificates())
    assert values["crds"] == {"enabled": True, "keep": True}
    for component in (values, values["webhook"], values["cainjector"]):
        assert component["replicaCount"] == 1
        assert set(component["resources"]) == {"requests", "limits"}
        assert "podDisruptionBudget" not in component
    assert values["dns01RecursiveNameserversOnly"] is False


def test_prod_runs_two_of_everything_with_disruption_budgets() -> None:
    values = cert_manager_values(build_acme())
    for component in (values, values["webhook"], values["cainjector"]):
        assert component["replicaCount"] == 2
        assert component["podDisruptionBudget"] == {"enabled": True}
        assert component["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    hard = one(build_acme(), "ResourceQuota")["inputs"]["spec"]["hard"]
    # 3 Deployments x (2 replicas + 1 surge) + the startup check Job.
    assert hard["pods"] == "10"


def test_cert_manager_namespace_baseline() -> None:
    plan = build_certificates()
    labels = one(plan, "Namespace")["inputs"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = {p["inputs"]["metadata"]["name"]: p["inputs"]["spec"] for p in of(plan, "NetworkPolicy")}
    assert set(policies) == {
        "default-deny",
        "allow-dns",
        "allow-api-and-acme-egress",
        "allow-webhook-ingress",
    }
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies["allow-webhook-ingress"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 10250}]}]
    assert policies["allow-webhook-ingress"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "webhook"}
    }
    egress = policies["allow-api-and-acme-egress"]["egress"]
    assert egress == [{"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}]
    baseline = {r["urn"] for kind in ("ResourceQuota", "LimitRange", "NetworkPolicy") for r in of(plan, kind)}
    assert baseline <= set(release(plan, "cert-manager")["dependencies"])


def test_certificate_helper_requests_from_the_platform_issuer() -> None:
    plan = build_certificates(with_certificate=True)
    requested = one(plan, "Certificate", "orders-tls")
    assert requested["inputs"]["metadata"]["namespace"] == "orders"
    spec = requested["inputs"]["spec"]
    assert spec["dnsNames"] == ["orders.example.com"] and spec["secretName"] == "orders-tls"
    assert spec["privateKey"] == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert (spec["duration"], spec["renewBefore"]) == ("2160h", "360h")
    assert spec["issuerRef"] == {"name": "rampart-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    ca_issuer = one(plan, "ClusterIssuer", "rampart-ca")["urn"]
    assert ca_issuer in requested["dependencies"]
    assert release(plan, "cert-manager")["urn"] in requested["dependencies"]


def test_acme_issuer_solves_dns01_in_the_configured_zone() -> None:
    plan = build_acme()
    issuer = one(plan, "ClusterIssuer", "rampart-acme")
    assert issuer["inputs"]["metadata"]["name"] == "rampart-acme"
    acme = issuer["inputs"]["spec"]["acme"]
    assert acme["email"] == "platform@example.com"
    assert acme["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert acme["privateKeySecretRef"] == {"name": "rampart-acme-account"}
    # Ambient credentials (Pod Identity): no keys, no role in the solver.
    assert acme["solvers"] == [{"dns01": {"route53": {"hostedZoneID": ZONE_ID, "region": "eu-west-1"}}}]
    # The only certificate is the internal root CA (in-cluster names never go to ACME).
    assert [c["inputs"]["metadata"]["name"] for c in of(plan, "Certificate")] == ["rampart-root-ca"]
    assert cert_manager_values(plan)["dns01RecursiveNameserversOnly"] is True


def route53_statements(plan: Plan) -> list[dict[str, Any]]:
    (policy,) = [r for r in plan.custom() if r["type"] == "aws:iam/policy:Policy"]
    return list(json.loads(policy["inputs"]["policy"])["Statement"])


def test_route53_policy_touches_only_the_configured_zone() -> None:
    by_sid = {s["Sid"]: s for s in route53_statements(build_acme())}
    zone = [f"arn:aws:route53:::hostedzone/{ZONE_ID}"]
    assert by_sid["WriteChallengeRecords"]["Action"] == ["route53:ChangeResourceRecordSets"]
    assert by_sid["WriteChallengeRecords"]["Resource"] == zone
    assert by_sid["WriteChallengeRecords"]["Condition"] == {
        "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
        "ForAllValues:StringLike": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]
        },
    }
    assert by_sid["ReadZoneRecords"] == {
        "Sid": "ReadZoneRecords",
        "Effect": "Allow",
        "Action": ["route53:ListResourceRecordSets"],
        "Resource": zone,
    }
    assert by_sid["WatchChanges"]["Resource"] == ["arn:aws:route53:::change/*"]
    for statement in by_sid.values():
        assert statement["Effect"] == "Allow"
        assert all(action.startswith("route53:") for action in statement["Action"])
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        hosted_zones = [r for r in resources if ":hostedzone/" in r]
        assert hosted_zones in ([], zone)
        if resources == ["*"]:
            assert statement["Action"] == ["route53:ListHostedZonesByName"]


def test_route53_role_is_for_cert_managers_service_account_only() -> None:
    plan = build_acme()
    (role,) = [r for r in plan.custom() if r["type"] == "aws:iam/role:Role"]
    association = checked_pod_identity(
        plan,
        role,
        cluster_arn=CLUSTER_ARN,
        namespace="cert-manager",
        service_account="cert-manager",
        boundary=BOUNDARY,
    )
    assert association["urn"] in release(plan, "cert-manager")["dependencies"]
    egress = one(plan, "NetworkPolicy", "allow-api-and-acme-egress")["inputs"]["spec"]["egress"]
    assert {"ipBlock": {"cidr": "169.254.170.23/32"}} in egress[1]["to"]


def test_acme_without_aws_creates_no_iam_and_no_region() -> None:
    plan = build_acme(on_aws=False)
    assert not [r for r in plan.custom() if r["type"].startswith("aws:")]
    route53 = one(plan, "ClusterIssuer", "rampart-acme")["inputs"]["spec"]["acme"]["solvers"][0]["dns01"][
        "route53"
    ]
    assert route53 == {"hostedZoneID": ZONE_ID}


# -- every object: schemas, providers, policies -------------------------------------------------


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_custom_resources_validate_against_their_crd_schemas(plan: str) -> None:
    schema_dir = crd_schemas()
    found = 0
    for resource in ALL_PLANS[plan]().custom():
        if not resource["type"].startswith("kubernetes:") or resource["type"] == RELEASE:
            continue
        manifest = to_manifest(resource)
        if not schemas.is_core(manifest):
            found += 1
            assert schemas.validate_custom(manifest, schema_dir) == [], name_of(resource)
    assert found >= 1


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_core_objects_validate_strictly(plan: str) -> None:
    for resource in ALL_PLANS[plan]().custom():
        if not resource["type"].startswith("kubernetes:") or resource["type"] == RELEASE:
            continue
        manifest = to_manifest(resource)
        if schemas.is_core(manifest):
            assert schemas.validate_core(manifest, "1.33") == [], name_of(resource)


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_every_resource_uses_the_explicit_providers(plan: str) -> None:
    resources = list(ALL_PLANS[plan]().custom())
    for resource in resources:
        package = resource["type"].split(":")[0]
        expected = {"kubernetes": K8S_PROVIDER, "aws": AWS_PROVIDER}[package]
        assert resource["provider"].startswith(expected), resource["urn"]
    rule = catalog.rule("explicit-providers")
    assert rule.evaluate_stack(policy_resources(ALL_PLANS[plan]())) == []


def test_mesh_rules_pass_on_the_mesh_plan() -> None:
    resources = policy_resources(build_mesh(replicas=2))
    # Stack rules raise NotApplicable when no mesh is found: reaching the assertion proves they ran.
    for name in ("mesh-mtls-strict", "mesh-default-deny"):
        assert catalog.rule(name).evaluate_stack(resources) == [], name
    registry_only = catalog.rule("mesh-egress-registry-only")
    checked = [r for r in resources if r.type == RELEASE]
    assert [v for r in checked for v in registry_only.evaluate(r)] == []
    assert any(r.get("chart") == "istiod" for r in checked)


@pytest.mark.parametrize("plan", sorted(ALL_PLANS))
def test_every_rule_in_the_catalog_passes(plan: str) -> None:
    resources = policy_resources(ALL_PLANS[plan]())
    for rule in layer_rules():
        try:
            if rule.is_stack_rule:
                found = [v.message for v in rule.evaluate_stack(resources)]
            else:
                found = [m for r in resources for m in rule.evaluate(r)]
        except NotApplicable:
            continue
        assert found == [], rule.name


def test_mesh_rules_would_catch_a_weakened_mesh() -> None:
    resources = policy_resources(build_mesh())
    without_root_policies = [r for r in resources if not r.type.startswith("kubernetes:security.istio.io/")]
    assert catalog.rule("mesh-mtls-strict").evaluate_stack(without_root_policies)
    assert catalog.rule("mesh-default-deny").evaluate_stack(without_root_policies)


@pytest.mark.parametrize("plan", ["mesh", "self-signed", "acme"])
def test_namespaces_are_restricted_without_relying_on_exemptions(plan: str) -> None:
    rule = catalog.rule("namespace-pod-security-restricted")
    namespaces = [r for r in policy_resources(ALL_PLANS[plan]()) if r.type == "kubernetes:core/v1:Namespace"]
    assert namespaces
    for namespace in namespaces:
        assert rule.evaluate(namespace, {"exemptNamespaces": []}) == [], namespace.object_name


def test_certificates_handle() -> None:
    captured: list[certificates.CertificatesHandle] = []

    def program() -> None:
        for config, name in ((CertificatesConfig(), "local"), (ACME, "acme")):
            layer = Certificates(
                name, CertificatesArgs(config=config, provider=k8s.Provider(f"k8s-{name}"), environment="dev")
            )
            captured.append(layer.handle)

    plan_of(program)
    local, acme = captured
    assert (local.cluster_issuer, local.namespace, len(local.ready)) == ("rampart-ca", "cert-manager", 4)
    # ACME for public names, and the internal CA chain for in-cluster names, always.
    assert (acme.cluster_issuer, acme.internal_issuer, len(acme.ready)) == ("rampart-acme", "rampart-ca", 5)
    assert local.internal_issuer == "rampart-ca"
