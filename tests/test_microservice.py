"""The paved-road Microservice component, built alone under mocks."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings as runtime_settings
from pydantic import ValidationError

from components.mesh.policy import ServiceIdentity
from components.paved_road import API_ACCESS_ANNOTATION
from components.paved_road.microservice import MeshBinding, Microservice, MicroserviceArgs
from components.paved_road.service_network import Peer
from rampart.config import ServiceSpec, Sizing
from rampart.config.models import Egress
from rampart.offline.mocks import PlanMocks
from rampart.offline.plan import Plan
from tests.conftest import planned
from tests.support.harness import cluster_handle, plan_of

ORDERS = ServiceSpec.model_validate(
    {
        "name": "orders",
        "image": "ghcr.io/acme/orders:1.4.2",
        "port": 8080,
        "replicas": {"min": 1, "max": 4},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "calls": ["payments"],
    }
)


def build(
    spec: ServiceSpec = ORDERS,
    *,
    sizing: Sizing | None = None,
    callers: list[str] | None = None,
    callees: list[Peer] | None = None,
    multi_zone: bool = False,
    mesh: MeshBinding | None = None,
) -> Plan:
    def program() -> None:
        Microservice(
            spec.name,
            MicroserviceArgs(
                spec=spec,
                environment="dev",
                sizing=sizing or Sizing(),
                cluster=cluster_handle(multi_zone),
                caller_namespaces=callers if callers is not None else ["backoffice"],
                callees=callees if callees is not None else [Peer("payments", "payments", 9090)],
                gateway_namespace="kong" if spec.routes else None,
                mesh=mesh,
            ),
        )

    return plan_of(program)


def one(plan: Plan, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        r["inputs"]
        for r in plan.custom()
        if r["type"].endswith(f":{kind}") and (name is None or r["inputs"]["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)}"
    return found[0]


def pod_spec(plan: Plan) -> dict[str, Any]:
    return one(plan, "Deployment")["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_registers_the_whole_paved_road() -> None:
    plan = build()
    kinds = sorted(r["type"].rsplit(":", 1)[1] for r in plan.custom())
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "ResourceQuota",
            "LimitRange",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
        ]
    )


def test_namespace_enforces_restricted_pod_security() -> None:
    labels = one(build(), "Namespace")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_pod_is_hardened_to_restricted_and_checkov_baseline() -> None:
    pod = pod_spec(build())
    assert pod["automountServiceAccountToken"] is False
    assert pod["hostNetwork"] is False and pod["hostPID"] is False and pod["hostIPC"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsUser"] >= 10000
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "startupProbe" not in container
    assert container["image"] == "ghcr.io/acme/orders:1.4.2"
    # /tmp is the only writable path, and nothing persists.
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_api_access_is_opt_in() -> None:
    """The token is mounted only for a service that asks, and then the pod template and the service
    account carry the opt-in mark the security pack looks for (service-account-token-opt-in)."""
    default = build()
    assert pod_spec(default)["automountServiceAccountToken"] is False
    assert one(default, "ServiceAccount")["automountServiceAccountToken"] is False
    assert API_ACCESS_ANNOTATION not in (one(default, "ServiceAccount")["metadata"].get("annotations") or {})
    plan = build(ORDERS.model_copy(update={"kubernetes_api_access": True}))
    assert pod_spec(plan)["automountServiceAccountToken"] is True
    assert one(plan, "ServiceAccount")["automountServiceAccountToken"] is True
    template = one(plan, "Deployment")["spec"]["template"]["metadata"]
    assert template["annotations"][API_ACCESS_ANNOTATION] == "true"
    assert one(plan, "ServiceAccount")["metadata"]["annotations"] == {API_ACCESS_ANNOTATION: "true"}


def test_network_policies_follow_calls() -> None:
    plan = build(callers=["backoffice", "cart"], callees=[Peer("payments", "payments", 9090)])
    deny = one(plan, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress = one(plan, "NetworkPolicy", "allow-from-callers")["spec"]["ingress"]
    assert [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in ingress[0]["from"]
    ] == [
        "backoffice",
        "cart",
    ]
    assert ingress[0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    egress = one(plan, "NetworkPolicy", "allow-to-callees")["spec"]["egress"]
    assert egress == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "payments"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": 9090}],
        }
    ]


def test_no_callers_and_no_callees_means_no_allow_policies() -> None:
    plan = build(callers=[], callees=[])
    names = sorted(
        r["inputs"]["metadata"]["name"] for r in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    )
    assert names == ["allow-dns", "default-deny"]


def test_quota_is_sized_from_the_declaration() -> None:
    hard = one(build(sizing=Sizing(quota_headroom=1.5)), "ResourceQuota")["spec"]["hard"]
    # max 4 replicas + 1 surge pod = 5 pods; x1.5 headroom
    assert hard["pods"] == "8"
    assert hard["requests.cpu"] == "750m"
    assert hard["limits.memory"] == "1920Mi"
    assert hard["persistentvolumeclaims"] == "0"
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"


def test_sizing_floor_raises_min_replicas() -> None:
    plan = build(sizing=Sizing(min_replicas=2))
    hpa = one(plan, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 4)
    assert one(plan, "Deployment")["spec"]["replicas"] == 2
    assert one(plan, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize(
    ("zone_spread", "multi_zone", "expected"),
    [
        ("required", True, "DoNotSchedule"),
        ("required", False, "ScheduleAnyway"),
        ("preferred", True, "ScheduleAnyway"),
    ],
)
def test_zone_spread(zone_spread: str, multi_zone: bool, expected: str) -> None:
    sizing = Sizing.model_validate({"zone_spread": zone_spread})
    constraints = pod_spec(build(sizing=sizing, multi_zone=multi_zone))["topologySpreadConstraints"]
    by_key = {c["topologyKey"]: c["whenUnsatisfiable"] for c in constraints}
    assert by_key == {"topology.kubernetes.io/zone": expected, "kubernetes.io/hostname": "ScheduleAnyway"}


def test_every_object_uses_the_cluster_provider_and_lives_in_the_service_namespace() -> None:
    plan = build()
    for resource in plan.custom():
        assert resource["provider"].startswith(
            "urn:pulumi:test::rampart::pulumi:providers:kubernetes::test-k8s::"
        ), resource["urn"]
        if resource["type"] != "kubernetes:core/v1:Namespace":
            assert resource["inputs"]["metadata"]["namespace"] == "orders"


def test_hpa_owns_replicas_and_deployment_waits_for_its_account() -> None:
    plan = build()
    (deployment,) = plan.of_type("kubernetes:apps/v1:Deployment")
    assert deployment["ignoreChanges"] == ["spec.replicas"]
    assert any(dep.endswith("::orders-sa") for dep in deployment["dependencies"])
    assert any(dep.endswith("::orders-namespace") for dep in deployment["dependencies"])


MESH = MeshBinding(
    trust_domain="cluster.local",
    root_namespace="istio-system",
    injection_labels={"istio-injection": "enabled"},
    callers=[ServiceIdentity("backoffice", "backoffice")],
    gateway=ServiceIdentity("kong", "kong-gateway"),
    jwt=None,
)


def test_in_the_mesh_the_service_gets_its_istio_objects_and_sidecar_budget() -> None:
    plan = build(mesh=MESH)
    assert one(plan, "Namespace")["metadata"]["labels"]["istio-injection"] == "enabled"
    kinds = sorted(r["type"] for r in plan.custom() if "istio.io" in r["type"])
    assert kinds == [
        "kubernetes:networking.istio.io/v1:DestinationRule",
        "kubernetes:networking.istio.io/v1:VirtualService",
        "kubernetes:security.istio.io/v1:AuthorizationPolicy",
    ]
    allow = one(plan, "AuthorizationPolicy")["spec"]
    assert allow["rules"][0]["from"][0]["source"]["principals"] == [
        "cluster.local/ns/backoffice/sa/backoffice"
    ]
    annotations = one(plan, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/proxyCPULimit"] == "500m"
    # 5 pods x (500m app + 500m proxy) x 1.5 headroom
    assert one(plan, "ResourceQuota")["spec"]["hard"]["limits.cpu"] == "7500m"
    control_plane = one(plan, "NetworkPolicy", "allow-mesh-control-plane")["spec"]["egress"][0]
    assert control_plane["ports"] == [{"protocol": "TCP", "port": 15012}]


def test_public_services_admit_the_gateway_and_external_hosts_open_https_egress() -> None:
    spec = ORDERS.model_copy(
        update={
            "routes": [
                ServiceSpec.model_validate(
                    {"name": "x", "image": "a:1", "routes": [{"host": "api.example.com", "auth": False}]}
                ).routes[0]
            ],
            "egress": [Egress(host="api.stripe.com")],
        }
    )
    plan = build(spec, mesh=MESH)
    ingress = one(plan, "NetworkPolicy", "allow-from-callers")["spec"]["ingress"][0]["from"]
    assert [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in ingress] == [
        "backoffice",
        "kong",
    ]
    allow = one(plan, "AuthorizationPolicy")["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert "cluster.local/ns/kong/sa/kong-gateway" in allow
    assert one(plan, "ServiceEntry")["spec"]["hosts"] == ["api.stripe.com"]
    external = one(plan, "NetworkPolicy", "allow-external-https")["spec"]["egress"][0]
    assert external["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "10.0.0.0/8" in external["to"][0]["ipBlock"]["except"]


@pytest.fixture
def sdk_mocks() -> None:
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(PlanMocks(), project="rampart", stack="test", preview=False)


@pulumi.runtime.test
def test_address_output_is_the_cluster_dns_name(sdk_mocks: None) -> pulumi.Output[None]:
    service = Microservice(
        "orders",
        MicroserviceArgs(spec=ORDERS, environment="dev", sizing=Sizing(), cluster=cluster_handle()),
    )

    def check(values: list[str]) -> None:
        address, namespace = values
        assert address == "orders.orders.svc.cluster.local:8080"
        assert namespace == "orders"

    return pulumi.Output.all(service.address, service.namespace).apply(check)


def test_in_the_mesh_the_deployment_waits_for_the_sidecar_injector() -> None:
    """Istio injects the sidecar in a mutating webhook at pod creation: pods created before istiod
    serves it run without one (https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/).
    The Deployment therefore depends on everything the mesh reports ready, istiod among it."""

    def program() -> None:
        istiod = pulumi.CustomResource("rampart:test:Injector", "mesh-istiod", {})
        Microservice(
            ORDERS.name,
            MicroserviceArgs(
                spec=ORDERS,
                environment="dev",
                sizing=Sizing(),
                cluster=cluster_handle(False),
                mesh=dataclasses.replace(MESH, ready=[istiod]),
            ),
        )

    plan = plan_of(program)
    (deployment,) = plan.of_type("kubernetes:apps/v1:Deployment")
    assert any(dep.endswith("::mesh-istiod") for dep in deployment["dependencies"])
    # Out of the mesh there is nothing to wait for.
    (plain,) = build().of_type("kubernetes:apps/v1:Deployment")
    assert not any("istiod" in dep for dep in plain["dependencies"])


@pytest.mark.parametrize("stack", ["local"])
def test_every_service_deployment_of_a_stack_waits_for_istiod(stack: str) -> None:
    plan = planned(stack)
    [istiod] = [
        r["urn"] for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["inputs"]["name"] == "istiod"
    ]
    deployments = plan.of_type("kubernetes:apps/v1:Deployment")
    assert deployments
    for deployment in deployments:
        assert istiod in deployment["dependencies"], deployment["urn"]


def test_egress_declares_its_port_protocol_and_private_block() -> None:
    """`egress:` entries beyond HTTPS/443: the ServiceEntry carries the declared port and protocol and,
    for a private destination, its block as addresses (resolution NONE); the NetworkPolicy admits
    exactly those ports, public ones to public addresses only, private ones to their block only."""
    spec = ServiceSpec.model_validate(
        {
            "name": "notifications",
            "image": "a:1",
            "egress": [
                "api.stripe.com",
                {
                    "host": "smtp.internal.example.com",
                    "port": 587,
                    "protocol": "TCP",
                    "cidr": "10.100.25.0/24",
                },
                {"host": "mq.example.net", "port": 5671, "protocol": "TLS"},
            ],
        }
    )
    plan = build(spec, mesh=MESH)
    entries = {
        r["inputs"]["spec"]["hosts"][0]: r["inputs"]["spec"]
        for r in plan.custom()
        if r["type"].endswith(":ServiceEntry")
    }
    assert entries["api.stripe.com"]["ports"] == [{"number": 443, "name": "https", "protocol": "TLS"}]
    assert entries["api.stripe.com"]["resolution"] == "DNS" and "addresses" not in entries["api.stripe.com"]
    smtp = entries["smtp.internal.example.com"]
    assert smtp["ports"] == [{"number": 587, "name": "tcp-587", "protocol": "TCP"}]
    assert smtp["addresses"] == ["10.100.25.0/24"] and smtp["resolution"] == "NONE"
    assert entries["mq.example.net"]["ports"] == [{"number": 5671, "name": "tls-5671", "protocol": "TLS"}]
    public, private = one(plan, "NetworkPolicy", "allow-external-https")["spec"]["egress"]
    assert public["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 5671}]
    assert (
        public["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
        and "10.0.0.0/8" in public["to"][0]["ipBlock"]["except"]
    )
    assert private == {
        "to": [{"ipBlock": {"cidr": "10.100.25.0/24"}}],
        "ports": [{"protocol": "TCP", "port": 587}],
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"host": "*.example.com", "protocol": "TCP"}, "wildcard"),
        ({"host": "smtp.example.com", "cidr": "169.254.169.254/32"}, "private destination"),
        ({"host": "smtp.example.com", "cidr": "8.8.8.0/24"}, "private destination"),
        ({"host": "smtp.example.com", "port": 0}, "greater than or equal to 1"),
        ({"host": "smtp.example.com", "protocol": "SMTP"}, "HTTPS"),
    ],
)
def test_bad_egress_entries_are_refused_with_their_key_path(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        ServiceSpec.model_validate({"name": "n", "image": "a:1", "egress": ["ok.example.com", entry]})
    (error,) = raised.value.errors()
    assert error["loc"][:2] == ("egress", 1) and message in str(error["msg"])
