"""The API gateway (Kong through the `ingress` chart), built alone under mocks with an explicit
Kubernetes provider and two public services: one with every edge control, one open."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml

from components.gateway import kong as gw
from components.gateway import routes as gw_routes
from components.gateway.kong import Gateway, GatewayArgs, GatewayHandle, PublicService
from policies import catalog
from policies.model import Resource
from rampart.config.models import Gateway as GatewayConfig
from rampart.config.models import ServiceSpec
from rampart.offline import values as values_mod
from rampart.offline.manifests import to_manifest
from rampart.offline.plan import Plan
from tests.support import schemas
from tests.support.harness import plan_of
from tests.support.helm import chart_defaults, unknown_release_keys
from tests.support.plans import K8S_PROVIDER, core_problems, name_of, network_policies, of, one
from tests.support.reference import crd_schemas, helm_values

ISSUER = "letsencrypt"
INJECTION = {"istio-injection": "enabled"}
SOURCE_RANGES = ["203.0.113.0/24", "198.51.100.0/24"]
CONFIG = GatewayConfig(replicas=3, source_ranges=SOURCE_RANGES, default_max_body_mb=8)

ORDERS = ServiceSpec.model_validate(
    {
        "name": "orders",
        "image": "ghcr.io/acme/orders:1.4.2",
        "port": 8080,
        "routes": [
            {
                "host": "api.example.com",
                "path": "/orders",
                "auth": True,
                "rate_limit": {"requests_per_minute": 600},
                "ip_allowlist": ["203.0.113.0/24"],
                "max_body_mb": 2,
                "cors_origins": ["https://shop.example.com"],
            }
        ],
    }
)
CATALOG = ServiceSpec.model_validate(
    {
        "name": "catalog",
        "image": "ghcr.io/acme/catalog:2.3.0",
        "port": 9090,
        "routes": [
            {
                "host": "api.example.com",
                "path": "/catalog",
                "auth": False,
                "rate_limit": {"requests_per_minute": 1200},
            },
            {"host": "shop.example.com", "auth": False, "rate_limit": {"requests_per_minute": 1200}},
        ],
    }
)
SERVICES = [PublicService(ORDERS, "orders"), PublicService(CATALOG, "catalog")]
# The plugins each route must get, by Ingress (namespace, name): nothing more, nothing less.
EXPECTED_PLUGINS = {
    ("orders", "orders-route-0"): {
        "ip-restriction",
        "cors",
        "rate-limiting",
        "request-size-limiting",
        "response-transformer",
    },
    ("catalog", "catalog-route-0"): {"rate-limiting", "request-size-limiting", "response-transformer"},
    ("catalog", "catalog-route-1"): {"rate-limiting", "request-size-limiting", "response-transformer"},
}
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# kong.conf properties set under gateway.env: the chart renders every env entry as KONG_<KEY>, so
# they are not silently dropped like an unknown values key; these are the only ones not in defaults.

HANDLES: dict[bool, GatewayHandle] = {}


@functools.cache
def build(on_aws: bool = True) -> Plan:
    def program() -> None:
        component = Gateway(
            "gateway",
            GatewayArgs(
                config=CONFIG,
                provider=k8s.Provider("k8s"),
                environment="dev",
                on_aws=on_aws,
                cluster_issuer=ISSUER,
                injection_labels=INJECTION,
                services=SERVICES,
            ),
        )
        HANDLES[on_aws] = component.handle

    return plan_of(program)


def values(on_aws: bool = True) -> dict[str, Any]:
    return one(build(on_aws), "Release")["inputs"]["values"]  # type: ignore[no-any-return]


def key(resource: Mapping[str, Any]) -> tuple[str, str]:
    metadata = resource["inputs"]["metadata"]
    return metadata["namespace"], metadata["name"]


def plugins_by_key(plan: Plan) -> dict[tuple[str, str], dict[str, Any]]:
    return {key(r): r["inputs"] for r in of(plan, "KongPlugin")}


def route_plugins(plan: Plan, ingress: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The KongPlugins an Ingress names, by plugin type (each must exist in its namespace)."""
    namespace = ingress["inputs"]["metadata"]["namespace"]
    names = ingress["inputs"]["metadata"]["annotations"]["konghq.com/plugins"].split(",")
    found = plugins_by_key(plan)
    plugins = [found[(namespace, name)] for name in names]
    assert len({p["plugin"] for p in plugins}) == len(plugins), names
    return {p["plugin"]: p["config"] for p in plugins}


def ingress(plan: Plan, namespace: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in of(plan, "Ingress") if key(r) == (namespace, name)]
    return found


# -- Helm values against the chart defaults ----------------------------------------------------


def test_key_checker_catches_typos_in_sub_chart_values() -> None:
    typo = {"gateway": {"proxy": {"loadBalancerSourceRange": []}}, "controller": {"replicas": 2}, "kong": {}}
    assert unknown_release_keys("kong-ingress", typo) == {
        "gateway.proxy.loadBalancerSourceRange",
        "controller.replicas",
        "kong",
    }


@pytest.mark.parametrize("on_aws", [True, False])
def test_every_values_key_exists_in_the_chart_defaults(on_aws: bool) -> None:
    assert unknown_release_keys("kong-ingress", values(on_aws)) == set()


def test_sub_charts_are_the_kong_chart_under_the_aliases_walked() -> None:
    chart = yaml.safe_load((helm_values() / "kong-ingress" / "Chart.yaml").read_text())
    assert {(d["name"], d["alias"]) for d in chart["dependencies"]} == {
        ("kong", "controller"),
        ("kong", "gateway"),
    }


def test_chart_is_pinned_to_the_reference_version() -> None:
    release = one(build(), "Release")["inputs"]
    assert (release["chart"], release["version"]) == ("ingress", "0.24.0")
    assert release["repositoryOpts"] == {"repo": "https://charts.konghq.com"}
    assert release["name"] == "kong"
    assert release["namespace"] == "kong" and release["createNamespace"] is False
    chart = yaml.safe_load((helm_values() / "kong-ingress" / "Chart.yaml").read_text())
    assert (chart["name"], chart["version"]) == ("ingress", "0.24.0")


# -- the proxy: the platform's only LoadBalancer ------------------------------------------------


def service_types(tree: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(tree, Mapping):
        for name, value in tree.items():
            if name == "type" and value in ("LoadBalancer", "NodePort"):
                yield f"{path}{name}", value
            yield from service_types(value, f"{path}{name}.")


def test_proxy_is_the_only_load_balancer_and_admits_only_the_source_ranges() -> None:
    config = CONFIG.model_copy(update={"service_type": "LoadBalancer"})
    released = gw.helm_values(config, on_aws=False)
    assert list(service_types(released)) == [("gateway.proxy.type", "LoadBalancer")]
    assert released["gateway"]["proxy"]["loadBalancerSourceRanges"] == SOURCE_RANGES
    # On aws no Service is exposed: the program's own NLB reaches the pods (tests/aws/test_gateway_edge.py).
    assert list(service_types(values(on_aws=True))) == []
    gateway = values()["gateway"]
    # The chart's other NodePort service (Kong Manager, Enterprise UI) stays off.
    assert chart_defaults("kong")["manager"]["type"] == "NodePort"
    assert gateway["manager"] == {"enabled": False}


def test_on_aws_the_proxy_is_a_cluster_ip_behind_the_programs_own_nlb() -> None:
    """The NLB, its source ranges and the client address are the edge's (components/gateway/edge_aws.py):
    a TargetGroupBinding registers the pods behind this Service."""
    proxy = values(on_aws=True)["gateway"]["proxy"]
    assert proxy == {"type": "ClusterIP", "http": {"enabled": False}}


def test_off_aws_the_proxy_carries_no_aws_annotations() -> None:
    proxy = values(on_aws=False)["gateway"]["proxy"]
    assert "annotations" not in proxy
    # A bare kind/k3d cluster has no load-balancer implementation: NodePort unless configured.
    assert proxy["type"] == "NodePort"
    # kube-proxy keeps the client's address only with externalTrafficPolicy Local (the allowlist and
    # per-IP rate limits need it): https://kubernetes.io/docs/tutorials/services/source-ip/
    assert proxy["externalTrafficPolicy"] == "Local"


@pytest.mark.parametrize(
    ("configured", "on_aws", "expected"),
    [
        (None, True, "ClusterIP"),
        (None, False, "NodePort"),
        ("ClusterIP", False, "ClusterIP"),
        ("LoadBalancer", False, "LoadBalancer"),
    ],
)
def test_the_proxy_service_type_follows_the_target_and_the_config(
    configured: str | None, on_aws: bool, expected: str
) -> None:
    """Helm waits for a LoadBalancer Service's address (helm pkg/kube/ready.go): on a cluster with no
    load-balancer implementation the release never finishes. On aws the program's NLB fronts a
    ClusterIP Service."""
    config = CONFIG.model_copy(update={"service_type": configured})
    proxy = gw.helm_values(config, on_aws=on_aws)["gateway"]["proxy"]
    assert proxy["type"] == expected
    assert ("loadBalancerSourceRanges" in proxy) == (expected == "LoadBalancer")
    assert ("externalTrafficPolicy" in proxy) == (expected != "ClusterIP")
    hard = gw.quota_hard(3, gw.proxy_service_type(config, on_aws=on_aws))
    assert hard["services.loadbalancers"] == ("1" if expected == "LoadBalancer" else "0")
    assert hard["services.nodeports"] == ("0" if expected == "ClusterIP" else "1")


@pytest.mark.parametrize("on_aws", [True, False])
def test_only_443_is_published_kong_has_no_plaintext_listener(on_aws: bool) -> None:
    """README and the network rules: only 443 is public. The kong chart's `proxy.http.enabled: false`
    drops the 80 -> 8000 port from the proxy Service and the 8000 listener from Kong."""
    proxy = values(on_aws)["gateway"]["proxy"]
    assert proxy["http"] == {"enabled": False}
    defaults = chart_defaults("kong")["proxy"]
    assert defaults["http"]["enabled"] is True and defaults["http"]["servicePort"] == 80  # what it turns off
    assert defaults["tls"]["enabled"] is True and defaults["tls"]["servicePort"] == 443  # what stays
    (rule,) = network_policies(build(on_aws))["allow-proxy-ingress"]["ingress"]
    assert [port["port"] for port in rule["ports"]] == [gw.PROXY_TLS_PORT]


def test_gateway_and_controller_are_sized_replicated_and_restricted() -> None:
    released = values()
    gateway, controller = released["gateway"], released["controller"]
    assert gateway["replicaCount"] == 3
    assert controller["replicaCount"] == 2
    for resources in (gateway["resources"], controller["ingressController"]["resources"]):
        assert set(resources) == {"requests", "limits"}
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    for sub_chart in (gateway, controller):
        context = sub_chart["containerSecurityContext"]
        assert context["enabled"] is True and context["runAsNonRoot"] is True
        assert context["runAsUser"] >= 10000 and context["runAsGroup"] >= 10000
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sub_chart["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    # The admin API is mutually authenticated between controller and Kong.
    assert controller["ingressController"]["adminApi"]["tls"]["client"]["enabled"] is True


def test_the_admin_api_ca_and_client_certificate_are_ours_and_exist_before_the_release() -> None:
    """kong 3.2.0 templates/service-kong-admin.yaml: with `admin.tls.client.secretName` the gateway
    `lookup`s a Secret only the same release's controller would create, and `fail`s the first install.
    The CA goes in as a PEM (`caBundle`), the client pair as a Secret we create first (`certProvided`).
    https://github.com/Kong/charts/blob/main/charts/kong/values.yaml (admin.tls.client,
    ingressController.adminApi.tls.client)"""
    plan = build()
    released = values()
    client = released["controller"]["ingressController"]["adminApi"]["tls"]["client"]
    admin = released["gateway"]["admin"]["tls"]["client"]
    assert "secretName" not in admin
    assert admin["caBundle"].startswith("-----BEGIN CERTIFICATE-----")
    assert client["enabled"] is True and client["certProvided"] is True
    (secret,) = [r for r in of(plan, "Secret") if r["inputs"]["metadata"]["name"] == client["secretName"]]
    assert secret["inputs"]["type"] == "kubernetes.io/tls"
    assert secret["inputs"]["metadata"]["namespace"] == "kong"
    # The key never reaches the plan export in the clear: the Secret's data is a secret input.
    assert values_mod.is_secret(secret["inputs"]["stringData"])
    (release,) = of(plan, "Release")
    assert secret["urn"] in release["dependencies"]
    # The CA is its own, and a CA; the client certificate is signed by it for client auth only.
    [ca] = plan.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert ca["inputs"]["isCaCertificate"] is True
    [signed] = plan.of_type("tls:index/locallySignedCert:LocallySignedCert")
    assert "client_auth" in signed["inputs"]["allowedUses"]
    assert "server_auth" not in signed["inputs"]["allowedUses"]
    assert signed["inputs"]["earlyRenewalHours"] < signed["inputs"]["validityPeriodHours"]
    for key in plan.of_type("tls:index/privateKey:PrivateKey"):
        assert values_mod.is_secret(key["outputs"]["privateKeyPem"]), key["urn"]


def test_disruption_budgets_select_the_chart_pods() -> None:
    plan = build()
    for component in ("gateway", "controller"):
        spec = one(plan, "PodDisruptionBudget", f"kong-{component}")["inputs"]["spec"]
        assert spec["maxUnavailable"] == 1
        assert spec["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/component": "app",
            "app.kubernetes.io/instance": "kong",
        }


def test_handle_names_the_gateway_pods_identity_and_the_ingress_class() -> None:
    build()
    handle = HANDLES[True]
    assert handle == GatewayHandle(namespace="kong", service_account="kong-gateway", ingress_class="kong")
    # The kong sub-chart names its service account "<release>-<alias>".
    assert handle.service_account == f"{one(build(), 'Release')['inputs']['name']}-gateway"
    assert values()["controller"]["ingressController"]["ingressClass"] == handle.ingress_class


# -- TLS ---------------------------------------------------------------------------------------


def test_default_certificate_covers_every_route_host_and_is_mounted() -> None:
    certificate = one(build(), "Certificate", "kong-gateway-tls")["inputs"]
    assert certificate["metadata"]["namespace"] == "kong"
    spec = certificate["spec"]
    assert spec["secretName"] == "kong-gateway-tls"
    assert spec["dnsNames"] == ["api.example.com", "shop.example.com"]
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": ISSUER}
    gateway = values()["gateway"]
    assert gateway["secretVolumes"] == ["kong-gateway-tls"]
    assert gateway["env"] == {
        "ssl_cert": "/etc/secrets/kong-gateway-tls/tls.crt",
        "ssl_cert_key": "/etc/secrets/kong-gateway-tls/tls.key",
    }


def test_each_ingress_uses_a_certificate_of_its_own_namespace_for_its_host() -> None:
    plan = build()
    certificates = {key(r): r["inputs"]["spec"] for r in of(plan, "Certificate")}
    assert set(certificates) == {
        ("kong", "kong-gateway-tls"),
        ("orders", "orders-tls"),
        ("catalog", "catalog-tls"),
    }
    assert certificates[("catalog", "catalog-tls")]["dnsNames"] == ["api.example.com", "shop.example.com"]
    for resource in of(plan, "Ingress"):
        namespace, _ = key(resource)
        (tls,) = resource["inputs"]["spec"]["tls"]
        certificate = certificates[(namespace, tls["secretName"])]
        assert certificate["secretName"] == tls["secretName"]
        assert set(tls["hosts"]) <= set(certificate["dnsNames"])
        assert certificate["issuerRef"]["name"] == ISSUER


# -- routes ------------------------------------------------------------------------------------


def test_one_ingress_per_route_to_the_service_backend() -> None:
    plan = build()
    assert {key(r) for r in of(plan, "Ingress")} == set(EXPECTED_PLUGINS)
    for public in SERVICES:
        for index, route in enumerate(public.spec.routes):
            spec = ingress(plan, public.namespace, f"{public.spec.name}-route-{index}")["inputs"]["spec"]
            assert spec["ingressClassName"] == "kong"
            (rule,) = spec["rules"]
            assert rule["host"] == route.host
            (path,) = rule["http"]["paths"]
            assert (path["path"], path["pathType"]) == (route.path, "Prefix")
            assert path["backend"] == {
                "service": {"name": public.spec.name, "port": {"number": public.spec.port}}
            }
            assert spec["tls"] == [{"hosts": [route.host], "secretName": f"{public.spec.name}-tls"}]


def test_ingresses_are_https_only_and_keep_the_path() -> None:
    for resource in of(build(), "Ingress"):
        annotations = resource["inputs"]["metadata"]["annotations"]
        assert annotations["konghq.com/protocols"] == "https"
        assert annotations["konghq.com/https-redirect-status-code"] == "301"
        assert annotations["konghq.com/strip-path"] == "false"


def test_ingresses_send_the_upstream_host_not_the_clients() -> None:
    """Issue 14: with service-upstream, Kong must send the Service's in-mesh host (preserve-host
    "false"), or the backend's sidecar sees Host api.<domain> and answers 502 under REGISTRY_ONLY.
    https://developer.konghq.com/kubernetes-ingress-controller/reference/host-manipulation"""
    ingresses = of(build(), "Ingress")
    assert ingresses
    for resource in ingresses:
        assert resource["inputs"]["metadata"]["annotations"]["konghq.com/preserve-host"] == "false"


def test_each_ingress_names_exactly_its_routes_plugins() -> None:
    plan = build()
    referenced: set[tuple[str, str]] = set()
    for (namespace, name), expected in EXPECTED_PLUGINS.items():
        resource = ingress(plan, namespace, name)
        assert set(route_plugins(plan, resource)) == expected, name
        names = resource["inputs"]["metadata"]["annotations"]["konghq.com/plugins"].split(",")
        referenced |= {(namespace, plugin) for plugin in names}
    # No plugin is left over, and none checks JWTs (the sidecars do).
    assert referenced == set(plugins_by_key(plan))
    assert all(p["plugin"] != "jwt" for p in plugins_by_key(plan).values())


def test_plugin_configs_follow_the_route_config() -> None:
    plan = build()
    orders = route_plugins(plan, ingress(plan, "orders", "orders-route-0"))
    assert orders["ip-restriction"] == {"allow": ["203.0.113.0/24"]}
    # 600 a minute declared, three gateway replicas counting each on its own: 200 each.
    assert orders["rate-limiting"]["minute"] == 600 // CONFIG.replicas == 200
    assert orders["request-size-limiting"] == {"allowed_payload_size": 2, "size_unit": "megabytes"}
    assert orders["cors"] == {
        "origins": ["https://shop.example.com"],
        "credentials": True,
        "methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    }
    for index in (0, 1):
        catalog_route = route_plugins(plan, ingress(plan, "catalog", f"catalog-route-{index}"))
        assert catalog_route["rate-limiting"]["minute"] == 1200 // CONFIG.replicas
        # No max_body_mb on the route: the gateway's default.
        assert catalog_route["request-size-limiting"] == {"allowed_payload_size": 8, "size_unit": "megabytes"}


def test_rate_limiting_is_local_as_db_less_kong_requires() -> None:
    limits = [p["config"] for p in plugins_by_key(build()).values() if p["plugin"] == "rate-limiting"]
    assert len(limits) == 3
    assert all(config["policy"] == "local" for config in limits)


def admitted_in_a_minute(per_node: int, nodes: int, requests: int) -> int:
    """Kong's `local` policy: each node keeps its own counter per client IP and refuses once it reaches
    its limit (https://developer.konghq.com/plugins/rate-limiting/#strategies). The load balancer
    spreads one client's connections over every node (round robin here, its fairest case)."""
    counters = [0] * nodes
    admitted = 0
    for index in range(requests):
        node = index % nodes
        if counters[node] < per_node:
            counters[node] += 1
            admitted += 1
    return admitted


@pytest.mark.parametrize("declared", [1200, 600, 300, 7, 3])
@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
def test_a_client_gets_at_most_the_declared_rate_limit_across_all_replicas(
    declared: int, replicas: int
) -> None:
    if declared < replicas:
        with pytest.raises(ValueError, match="below"):
            gw_routes.per_node_limit(declared, replicas)
        return
    per_node = gw_routes.per_node_limit(declared, replicas)
    flood = declared * replicas * 2
    admitted = admitted_in_a_minute(per_node, replicas, flood)
    # Never more than declared; less only by the rounding (under one request per node).
    assert declared - replicas < admitted <= declared
    # Today's bug, as a mutation: every node allowing the full declaration lets replicas x it through.
    assert admitted_in_a_minute(declared, replicas, flood) == declared * replicas


def test_the_plugins_in_the_plan_carry_each_nodes_share() -> None:
    limits = sorted(
        p["config"]["minute"] for p in plugins_by_key(build()).values() if p["plugin"] == "rate-limiting"
    )
    assert limits == [200, 400, 400]
    for minute in limits:
        assert admitted_in_a_minute(minute, CONFIG.replicas, 10_000) <= minute * CONFIG.replicas <= 1200


def test_every_route_adds_the_security_headers() -> None:
    plan = build()
    for namespace, name in EXPECTED_PLUGINS:
        headers = route_plugins(plan, ingress(plan, namespace, name))["response-transformer"]["add"][
            "headers"
        ]
        assert dict(header.split(":", 1) for header in headers) == SECURITY_HEADERS


def test_a_route_without_limits_gets_only_the_unconditional_plugins() -> None:
    plugins = gw.route_plugins(
        "open-route-0",
        ORDERS.routes[0].model_copy(
            update={"rate_limit": None, "ip_allowlist": [], "cors_origins": [], "max_body_mb": None}
        ),
        4,
    )
    assert [p.plugin for p in plugins] == ["request-size-limiting", "response-transformer"]
    assert plugins[0].config["allowed_payload_size"] == 4


def test_a_public_service_needs_routes() -> None:
    with pytest.raises(ValueError, match="at least one route"):
        PublicService(ORDERS.model_copy(update={"routes": []}), "orders")


# -- the kong namespace ------------------------------------------------------------------------


def test_namespace_is_in_the_mesh_and_enforces_restricted() -> None:
    namespace = one(build(), "Namespace")
    labels = namespace["inputs"]["metadata"]["labels"]
    assert namespace["inputs"]["metadata"]["name"] == "kong"
    assert labels["istio-injection"] == "enabled"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    resource = Resource(namespace["urn"], namespace["type"], "kong", namespace["inputs"])
    assert catalog.rule("namespace-pod-security-restricted").evaluate(resource) == []


def cidrs(peers: list[dict[str, Any]]) -> list[str]:
    return [peer["ipBlock"]["cidr"] for peer in peers]


def test_network_deny_by_default_and_proxy_open_to_the_source_ranges_only() -> None:
    policies = network_policies(build())
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    (rule,) = policies["allow-proxy-ingress"]["ingress"]
    assert cidrs(rule["from"]) == SOURCE_RANGES
    # Only the TLS listener: Kong has no plaintext one (proxy.http.enabled false), so no port 80.
    assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert (
        policies["allow-proxy-ingress"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "gateway"
    )
    # Health checks from inside the network reach the status listener only.
    (health,) = policies["allow-health-checks"]["ingress"]
    assert health["ports"] == [{"protocol": "TCP", "port": 8100}]


def test_gateway_egress_reaches_only_the_public_services_on_their_ports() -> None:
    egress = network_policies(build())["allow-to-services"]["egress"]
    assert [
        (e["to"][0]["namespaceSelector"]["matchLabels"], e["to"][0]["podSelector"]["matchLabels"], e["ports"])
        for e in egress
    ] == [
        (
            {"kubernetes.io/metadata.name": "catalog"},
            {"app.kubernetes.io/name": "catalog"},
            [{"protocol": "TCP", "port": 9090}],
        ),
        (
            {"kubernetes.io/metadata.name": "orders"},
            {"app.kubernetes.io/name": "orders"},
            [{"protocol": "TCP", "port": 8080}],
        ),
    ]


def test_controller_reaches_the_api_server_and_the_admin_api() -> None:
    policies = network_policies(build())
    api_server, admin = policies["allow-controller-egress"]["egress"]
    assert api_server["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    assert admin["ports"] == [{"protocol": "TCP", "port": 8444}]
    (rule,) = policies["allow-admin-api"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": gw.chart_pods("controller")}}]
    assert policies["allow-dns"]["egress"][0]["ports"][0]["port"] == 53


def test_quota_allows_the_one_load_balancer_and_its_node_ports() -> None:
    # On aws the proxy is a ClusterIP Service behind the program's own NLB: no LB Service, no node port.
    hard = one(build(), "ResourceQuota")["inputs"]["spec"]["hard"]
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"
    # Elsewhere an LB Service's one port (443) allocates a node port, which the quota counts.
    elsewhere = one(build(on_aws=False), "ResourceQuota")["inputs"]["spec"]["hard"]
    assert elsewhere["services.nodeports"] == "1"
    assert hard["persistentvolumeclaims"] == "0"
    # 3 gateway + 1 surge, 2 controllers + 1 surge.
    assert hard["pods"] == "7"
    # Each pod counted with its sidecar: 4 x (1 + 2) + 3 x (0.5 + 2) CPU of limits.
    assert hard["limits.cpu"] == "19500m"


# -- schemas, providers, policies --------------------------------------------------------------


def test_custom_resources_validate_against_their_crd_schemas() -> None:
    directory = crd_schemas()
    custom = [
        to_manifest(r)
        for r in build().custom()
        if r["type"].split(":")[1].endswith((".konghq.com/v1", "cert-manager.io/v1"))
    ]
    assert sorted({m["kind"] for m in custom}) == ["Certificate", "KongPlugin"]
    assert len(custom) == 3 + 11
    for manifest in custom:
        assert schemas.validate_custom(manifest, directory) == [], manifest["metadata"]["name"]


def test_schema_check_would_catch_a_mistake() -> None:
    plugin = to_manifest(of(build(), "KongPlugin")[0])
    del plugin["plugin"]
    assert schemas.validate_custom(plugin, crd_schemas())
    certificate = to_manifest(one(build(), "Certificate", "orders-tls"))
    certificate["spec"]["issuerRef"]["namespace"] = "cert-manager"
    assert schemas.validate_custom(certificate, crd_schemas())


def test_core_objects_validate_strictly() -> None:
    core = [
        to_manifest(r)
        for r in build().custom()
        if r["type"].startswith("kubernetes:")
        and r["type"] != "kubernetes:helm.sh/v3:Release"
        and schemas.is_core(to_manifest(r))
    ]
    assert sorted({m["kind"] for m in core}) == [
        "Ingress",
        "LimitRange",
        "Namespace",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ResourceQuota",
        "Secret",
    ]
    assert core_problems(core) == {}


def test_every_kubernetes_resource_uses_the_explicit_provider() -> None:
    resources = [r for r in build().custom() if r["type"].startswith("kubernetes:")]
    assert len(resources) > 20
    for resource in resources:
        assert resource["provider"].startswith(K8S_PROVIDER), resource["urn"]


def test_ingresses_and_plugins_wait_for_the_release_that_installs_their_class_and_crds() -> None:
    plan = build()
    (release,) = of(plan, "Release")
    for resource in [*of(plan, "Ingress"), *of(plan, "KongPlugin")]:
        assert release["urn"] in resource["dependencies"], resource["urn"]
    assert one(plan, "Certificate", "kong-gateway-tls")["urn"] in release["dependencies"]


def chart_objects() -> list[Resource]:
    """What the chart renders into kong (Helm renders it at deploy time, not here): its pods and the
    proxy Service."""
    base = "urn:pulumi:test::rampart::kubernetes:"
    return [
        Resource(
            f"{base}apps/v1:Deployment::kong-gateway",
            "kubernetes:apps/v1:Deployment",
            "kong-gateway",
            {"metadata": {"name": "kong-gateway", "namespace": "kong"}},
        ),
        Resource(
            f"{base}core/v1:Service::kong-gateway-proxy",
            "kubernetes:core/v1:Service",
            "kong-gateway-proxy",
            {
                "metadata": {"name": "kong-gateway-proxy", "namespace": "kong"},
                "spec": {"type": "LoadBalancer"},
            },
        ),
    ]


def policy_resources(plan: Plan) -> list[Resource]:
    return [Resource(r["urn"], r["type"], name_of(r), r["inputs"]) for r in plan.custom()] + chart_objects()


def violations(resources: list[Resource]) -> list[str]:
    found = [
        v.message
        for name in ("namespace-default-deny", "namespace-quota")
        for v in catalog.rule(name).evaluate_stack(resources)
    ]
    exposure = catalog.rule("service-no-public-exposure")
    return found + [message for resource in resources for message in exposure.evaluate(resource)]


@pytest.mark.parametrize("on_aws", [True, False])
def test_the_namespace_baseline_policies_pass(on_aws: bool) -> None:
    assert violations(policy_resources(build(on_aws))) == []


def test_the_policies_would_notice_a_missing_baseline_or_a_stray_load_balancer() -> None:
    resources = policy_resources(build())
    bare = [
        r
        for r in resources
        if r.type not in ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "kubernetes:core/v1:ResourceQuota")
    ]
    assert len(violations(bare)) == 2
    stray = Resource(
        "urn:pulumi:test::rampart::kubernetes:core/v1:Service::orders",
        "kubernetes:core/v1:Service",
        "orders",
        {"metadata": {"name": "orders", "namespace": "orders"}, "spec": {"type": "LoadBalancer"}},
    )
    assert len(violations([*resources, stray])) == 1
