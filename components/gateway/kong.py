"""The API gateway: Kong (DB-less; ingress controller + gateway) behind the platform's only
LoadBalancer, and for every public route an Ingress in the service's namespace with its KongPlugins.

Kong checks no JWT. OSS Kong's ``jwt`` plugin verifies keys held by Kong consumers, not an issuer's
JWKS (``openid-connect`` is Enterprise only); tokens are verified at each service's sidecar by Istio
RequestAuthentication, which trusts requests only from the gateway's mesh identity
(:attr:`GatewayHandle.service_account`). The gateway pods are in the mesh for that reason: their calls
to services leave through the sidecar as mTLS with the gateway's own SPIFFE identity.

What Kong does at the edge, per route: TLS (cert-manager certificates, HTTP redirected to HTTPS), IP
allowlist, rate limit, request-size limit, CORS and security response headers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core import charts, labels, quota
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.paved_road import service_network
from rampart.config.models import Gateway as GatewayConfig
from rampart.config.models import Route, ServiceSpec
from rampart.config.types import cpu_millicores, memory_bytes

NAMESPACE = "kong"
RELEASE_NAME = "kong"
CHART = "ingress"
CHART_REPOSITORY = "https://charts.konghq.com"
CHART_VERSION = "0.24.0"
INGRESS_CLASS = "kong"
# The kong sub-charts name their objects "<release>-<alias>" (kong.fullname), the service account
# included; `deployment.serviceAccount.name` is not a declared default, so it is not pinned by values.
GATEWAY_SERVICE_ACCOUNT = f"{RELEASE_NAME}-gateway"
# The controller generates this CA (adminApi.tls.client) and signs its client certificate with it.
ADMIN_API_CA_SECRET = f"{RELEASE_NAME}-controller-admin-api-ca-keypair"
# The default certificate, and the secret cert-manager keeps it in.
GATEWAY_CERTIFICATE = "kong-gateway-tls"
# `secretVolumes` mounts each secret at /etc/secrets/<name>.
GATEWAY_TLS_DIR = f"/etc/secrets/{GATEWAY_CERTIFICATE}"

KONG_API = "configuration.konghq.com/v1"
CERT_MANAGER_API = "cert-manager.io/v1"

# Kong's container ports (chart defaults) and the controller's.
PROXY_HTTP_PORT = 8000
PROXY_TLS_PORT = 8443
STATUS_PORT = 8100
ADMIN_PORT = 8444
WEBHOOK_PORT = 8080
API_SERVER_PORTS = (443, 6443)
# The Service's ports (80, 443): each allocates a node port, which the quota counts.
PROXY_SERVICE_PORTS = 2
# Where the API server (webhook calls) and load balancer health checks come from: the VPC / node
# network, whose exact range this layer is not told.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
MESH_NAMESPACE = "istio-system"

CONTROLLER_REPLICAS = 2
# Kong runs two nginx workers (chart default); requests are what it needs at steady load.
PROXY_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
CONTROLLER_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
# The mesh proxy injected into every pod, at Istio's default size: counted in the quota, and the
# LimitRange default for any container that declares nothing.
SIDECAR_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
# The platform's uid floor; Kong and the controller run under arbitrary uids (the chart supports
# OpenShift's), they only write to their emptyDir prefix and /tmp.
RUN_AS = 10001

AWS_LB = "service.beta.kubernetes.io/aws-load-balancer"
SECURITY_HEADERS = (
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class PublicService:
    spec: ServiceSpec
    namespace: str
    # The service's namespace (or anything its routes must wait for), when created in this program.
    ready: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        if not self.spec.routes:
            raise ValueError(f"{self.spec.name}: a public service needs at least one route")


@dataclass(frozen=True)
class GatewayArgs:
    config: GatewayConfig
    provider: k8s.Provider
    environment: str
    # Internet-facing NLB through the AWS Load Balancer Controller when True.
    on_aws: bool
    # cert-manager ClusterIssuer of every gateway certificate.
    cluster_issuer: str
    # Mesh sidecar injection labels for the kong namespace.
    injection_labels: dict[str, str]
    services: list[PublicService]
    depends_on: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class GatewayHandle:
    namespace: str
    # The Kong gateway (proxy) pods' service account: their mesh identity.
    service_account: str
    ingress_class: str


@dataclass(frozen=True)
class KongPluginSpec:
    name: str
    plugin: str
    config: dict[str, Any]


# -- chart values ------------------------------------------------------------------------------


def chart_pods(component: str) -> dict[str, str]:
    """The labels the chart selects a sub-chart's pods by (kong.selectorLabels)."""
    return {
        labels.NAME: component,
        "app.kubernetes.io/component": "app",
        "app.kubernetes.io/instance": RELEASE_NAME,
    }


def _restricted_pod() -> dict[str, Any]:
    """Pod Security Standards `restricted` for the chart's pods, containers and init containers."""
    return {
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {
            "enabled": True,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def nlb_annotations() -> dict[str, str]:
    return {
        # "external": the AWS Load Balancer Controller (not the legacy in-tree one) builds an NLB.
        f"{AWS_LB}-type": "external",
        f"{AWS_LB}-nlb-target-type": "ip",
        f"{AWS_LB}-scheme": "internet-facing",
        # ip targets hide the client address unless asked: ip-restriction, per-IP rate limits and
        # the NetworkPolicy's ipBlocks all need it.
        f"{AWS_LB}-target-group-attributes": "preserve_client_ip.enabled=true",
        # Health checks ask Kong whether it is ready rather than whether the port accepts.
        f"{AWS_LB}-healthcheck-port": str(STATUS_PORT),
        f"{AWS_LB}-healthcheck-protocol": "http",
        f"{AWS_LB}-healthcheck-path": "/status/ready",
    }


def helm_values(config: GatewayConfig, *, on_aws: bool) -> dict[str, Any]:
    """Values of the `ingress` chart: `controller` and `gateway` are two aliases of the kong chart."""
    proxy: dict[str, Any] = {
        "type": "LoadBalancer",
        "loadBalancerSourceRanges": list(config.source_ranges),
    }
    if on_aws:
        proxy["annotations"] = nlb_annotations()
    return {
        "controller": {
            "replicaCount": CONTROLLER_REPLICAS,
            "ingressController": {
                "ingressClass": INGRESS_CLASS,
                "resources": CONTROLLER_RESOURCES,
                # The controller authenticates to Kong's admin API with a client certificate.
                "adminApi": {"tls": {"client": {"enabled": True}}},
            },
            **_restricted_pod(),
        },
        "gateway": {
            "replicaCount": config.replicas,
            "resources": PROXY_RESOURCES,
            "proxy": proxy,
            # Kong Manager is Enterprise UI; its NodePort Service would be a second exposure.
            "manager": {"enabled": False},
            # The admin API accepts only clients signed by the controller's CA.
            "admin": {"tls": {"client": {"secretName": ADMIN_API_CA_SECRET}}},
            # The default certificate (clients without SNI): kong.conf ssl_cert / ssl_cert_key, which
            # the chart renders as KONG_SSL_CERT*; routed hosts get theirs by SNI from the Ingresses.
            "secretVolumes": [GATEWAY_CERTIFICATE],
            "env": {"ssl_cert": f"{GATEWAY_TLS_DIR}/tls.crt", "ssl_cert_key": f"{GATEWAY_TLS_DIR}/tls.key"},
            **_restricted_pod(),
        },
    }


# -- namespace baseline ------------------------------------------------------------------------


def pod_budget(replicas: int) -> int:
    """Replicas plus the pods a rolling update surges (Kubernetes' default 25%)."""
    return replicas + math.ceil(replicas * quota.SURGE_FRACTION)


def quota_hard(gateway_replicas: int) -> dict[str, str]:
    budgets = (
        (pod_budget(gateway_replicas), PROXY_RESOURCES),
        (pod_budget(CONTROLLER_REPLICAS), CONTROLLER_RESOURCES),
    )

    def total(kind: str, resource: str) -> int:
        def amount(resources: Mapping[str, Mapping[str, str]]) -> int:
            value = resources[kind][resource]
            return cpu_millicores(value) if resource == "cpu" else memory_bytes(value)

        return sum(pods * (amount(resources) + amount(SIDECAR_RESOURCES)) for pods, resources in budgets)

    hard = {"pods": str(sum(pods for pods, _ in budgets))}
    for kind in ("requests", "limits"):
        hard[f"{kind}.cpu"] = f"{total(kind, 'cpu')}m"
        hard[f"{kind}.memory"] = f"{math.ceil(total(kind, 'memory') / 2**20)}Mi"
    return hard | {
        "persistentvolumeclaims": "0",
        # The proxy is the platform's one LoadBalancer; the quota counts the node port each of its
        # ports allocates (the chart cannot set allocateLoadBalancerNodePorts: false). No NodePorts.
        "services.loadbalancers": "1",
        "services.nodeports": str(PROXY_SERVICE_PORTS),
    }


def _selector(match_labels: Mapping[str, str]) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels=dict(match_labels))


def _from_cidrs(cidrs: Iterable[str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    return [
        k8s.networking.v1.NetworkPolicyPeerArgs(ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr))
        for cidr in dict.fromkeys(cidrs)
    ]


def _tcp(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


def _pods_in(namespace: str, pods: Mapping[str, str]) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=_selector({labels.NAMESPACE_NAME: namespace}), pod_selector=_selector(pods)
    )


def allow_proxy_ingress(source_ranges: Sequence[str]) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Clients in the configured ranges reach Kong's HTTP and TLS listeners (the NLB keeps the
    client address). Elsewhere a LoadBalancer that SNATs (externalTrafficPolicy Cluster) shows node
    addresses instead: there only 0.0.0.0/0 lets traffic in."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(chart_pods("gateway")),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=_from_cidrs(source_ranges), ports=_tcp(PROXY_HTTP_PORT, PROXY_TLS_PORT)
            )
        ],
    )


def allow_health_checks() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Load balancer health checks come from the load balancer's private addresses inside the
    cluster's network, not from the client ranges: they probe the status listener only."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(chart_pods("gateway")),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=_from_cidrs(PRIVATE_RANGES), ports=_tcp(STATUS_PORT)
            )
        ],
    )


def allow_admin_api() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Only the controller configures Kong, through its admin API."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(chart_pods("gateway")),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=_selector(chart_pods("controller")))
                ],
                ports=_tcp(ADMIN_PORT),
            )
        ],
    )


def allow_webhook() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """The API server calls the controller's validating webhook from the control-plane network."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(chart_pods("controller")),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=_from_cidrs(PRIVATE_RANGES), ports=_tcp(WEBHOOK_PORT)
            )
        ],
    )


def allow_controller_egress() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """The controller watches the API server and pushes configuration to Kong's admin API."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(chart_pods("controller")),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=_from_cidrs(PRIVATE_RANGES), ports=_tcp(*API_SERVER_PORTS)
            ),
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=_selector(chart_pods("gateway")))],
                ports=_tcp(ADMIN_PORT),
            ),
        ],
    )


def allow_to_services(services: Sequence[PublicService]) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Kong reaches the public services' pods, each on its own port, and nothing else."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=_selector(chart_pods("gateway")),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_pods_in(public.namespace, labels.selector(public.spec.name))],
                ports=_tcp(public.spec.port),
            )
            for public in sorted(services, key=lambda s: s.spec.name)
        ],
    )


def network_policies(
    config: GatewayConfig, services: Sequence[PublicService]
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """The gateway namespace's own allows (on top of the baseline's default-deny and DNS)."""
    policies = {
        "allow-mesh-control-plane": service_network.allow_to_mesh_control_plane(MESH_NAMESPACE),
        "allow-proxy-ingress": allow_proxy_ingress(config.source_ranges),
        "allow-health-checks": allow_health_checks(),
        "allow-admin-api": allow_admin_api(),
        "allow-webhook": allow_webhook(),
        "allow-controller-egress": allow_controller_egress(),
    }
    if services:
        policies["allow-to-services"] = allow_to_services(services)
    return policies


# -- routes ------------------------------------------------------------------------------------


def route_name(service: str, index: int) -> str:
    return f"{service}-route-{index}"


def route_plugins(prefix: str, route: Route, default_max_body_mb: int) -> list[KongPluginSpec]:
    """The route's KongPlugins, in the order Kong's priorities run them anyway."""
    plugins: list[KongPluginSpec] = []

    def add(plugin: str, config: dict[str, Any]) -> None:
        plugins.append(KongPluginSpec(name=f"{prefix}-{plugin}", plugin=plugin, config=config))

    if route.ip_allowlist:
        add("ip-restriction", {"allow": list(route.ip_allowlist)})
    if route.cors_origins:
        add(
            "cors",
            {"origins": list(route.cors_origins), "credentials": True, "methods": list(CORS_METHODS)},
        )
    if route.rate_limit is not None:
        # DB-less Kong counts per node: `local` (or redis) is all it accepts.
        add(
            "rate-limiting",
            {"minute": route.rate_limit.requests_per_minute, "policy": "local", "limit_by": "ip"},
        )
    add(
        "request-size-limiting",
        {"allowed_payload_size": route.max_body_mb or default_max_body_mb, "size_unit": "megabytes"},
    )
    add(
        "response-transformer",
        {"add": {"headers": [f"{header}:{value}" for header, value in SECURITY_HEADERS]}},
    )
    return plugins


def ingress_annotations(plugins: Sequence[KongPluginSpec]) -> dict[str, str]:
    return {
        "konghq.com/plugins": ",".join(plugin.name for plugin in plugins),
        # HTTPS only: plain HTTP gets a permanent redirect.
        "konghq.com/protocols": "https",
        "konghq.com/https-redirect-status-code": "301",
        "konghq.com/strip-path": "false",
    }


def ingress_spec(spec: ServiceSpec, route: Route, tls_secret: str) -> k8s.networking.v1.IngressSpecArgs:
    backend = k8s.networking.v1.IngressBackendArgs(
        service=k8s.networking.v1.IngressServiceBackendArgs(
            name=spec.name, port=k8s.networking.v1.ServiceBackendPortArgs(number=spec.port)
        )
    )
    return k8s.networking.v1.IngressSpecArgs(
        ingress_class_name=INGRESS_CLASS,
        # The secret must live in the Ingress's own namespace: Kong's controller reads it from there.
        tls=[k8s.networking.v1.IngressTLSArgs(hosts=[route.host], secret_name=tls_secret)],
        rules=[
            k8s.networking.v1.IngressRuleArgs(
                host=route.host,
                http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                    paths=[
                        k8s.networking.v1.HTTPIngressPathArgs(
                            path=route.path, path_type="Prefix", backend=backend
                        )
                    ]
                ),
            )
        ],
    )


def certificate_spec(hosts: Iterable[str], cluster_issuer: str, secret: str) -> dict[str, Any]:
    return {
        "secretName": secret,
        "dnsNames": sorted(set(hosts)),
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": cluster_issuer},
        # A fresh key at every renewal.
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    }


def service_tls_secret(service: str) -> str:
    return f"{service}-tls"


class KongPlugin(k8s.apiextensions.CustomResource):
    """A KongPlugin: its `plugin` and `config` sit at the top level of the object, next to
    `metadata`, which the Python SDK's CustomResource (spec only) cannot express
    (pulumi/pulumi-kubernetes#2363). The provider receives the whole object as its inputs."""

    def __init__(
        self,
        resource_name: str,
        *,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        spec: KongPluginSpec,
        opts: pulumi.ResourceOptions,
    ) -> None:
        props = {
            "apiVersion": KONG_API,
            "kind": "KongPlugin",
            "metadata": metadata,
            "plugin": spec.plugin,
            "config": spec.config,
        }
        pulumi.CustomResource.__init__(self, f"kubernetes:{KONG_API}:KongPlugin", resource_name, props, opts)


# -- the component -----------------------------------------------------------------------------


class Gateway(pulumi.ComponentResource):
    handle: GatewayHandle

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:gateway:Gateway", name, {}, opts)
        self._name = name
        self._args = args
        common = labels.common(args.environment) | {labels.NAME: RELEASE_NAME}

        # The chart's pods meet `restricted` with the values set here: non-root uid 10001, no
        # privilege escalation, ALL capabilities dropped, read-only root fs, RuntimeDefault seccomp,
        # emptyDir/secret/projected volumes, no host namespaces. The injected sidecar does too when
        # the mesh runs the Istio CNI node agent (no NET_ADMIN init container).
        created = namespace_baseline(
            name,
            namespace=NAMESPACE,
            labels_=common,
            quota=quota_hard(args.config.replicas),
            container_defaults=ContainerDefaults(
                requests=SIDECAR_RESOURCES["requests"], limits=SIDECAR_RESOURCES["limits"]
            ),
            policies=network_policies(args.config, args.services),
            opts=self._on_cluster(),
            extra_namespace_labels=args.injection_labels,
        )
        ns, baseline = created.name, created.resources

        def meta(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=ns, labels=common)

        hosts = [route.host for public in args.services for route in public.spec.routes]
        certificate = k8s.apiextensions.CustomResource(
            f"{name}-tls",
            api_version=CERT_MANAGER_API,
            kind="Certificate",
            metadata=meta(GATEWAY_CERTIFICATE),
            spec=certificate_spec(hosts, args.cluster_issuer, GATEWAY_CERTIFICATE),
            opts=self._on_cluster(),
        )

        release = charts.release(
            f"{name}-release",
            charts.Chart(CHART_REPOSITORY, CHART, CHART_VERSION),
            release_name=RELEASE_NAME,
            namespace=ns,
            values=helm_values(args.config, on_aws=args.on_aws),
            # Pods start only once the network baseline and the default certificate's secret exist.
            opts=self._on_cluster([*baseline, certificate]),
        )
        # The chart's pods are selected by its labels, not ours: the disruption budgets are ours
        # because the chart's takes maxUnavailable, which its defaults do not declare.
        for component in ("gateway", "controller"):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{component}-pdb",
                metadata=meta(f"{RELEASE_NAME}-{component}"),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=_selector(chart_pods(component)),
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=self._on_cluster(),
            )

        for public in args.services:
            self._publish(public, release)

        self.handle = GatewayHandle(
            namespace=NAMESPACE, service_account=GATEWAY_SERVICE_ACCOUNT, ingress_class=INGRESS_CLASS
        )
        self.register_outputs(
            {"namespace": ns, "serviceAccount": GATEWAY_SERVICE_ACCOUNT, "ingressClass": INGRESS_CLASS}
        )

    def _on_cluster(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        # Every Kubernetes object names its provider: none may fall back to the ambient one.
        return pulumi.ResourceOptions(
            parent=self, provider=self._args.provider, depends_on=[*self._args.depends_on, *depends_on]
        )

    def _publish(self, public: PublicService, release: k8s.helm.v3.Release) -> None:
        """A service's routes: its certificate, and per route the plugins and the Ingress."""
        spec, args, name = public.spec, self._args, self._name
        common = labels.common(args.environment) | labels.selector(spec.name)

        def meta(object_name: str, annotations: dict[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=public.namespace, labels=common, annotations=annotations
            )

        secret = service_tls_secret(spec.name)
        certificate = k8s.apiextensions.CustomResource(
            f"{name}-{spec.name}-tls",
            api_version=CERT_MANAGER_API,
            kind="Certificate",
            metadata=meta(secret),
            spec=certificate_spec((route.host for route in spec.routes), args.cluster_issuer, secret),
            opts=self._on_cluster(public.ready),
        )
        for index, route in enumerate(spec.routes):
            prefix = route_name(spec.name, index)
            plugins = route_plugins(prefix, route, args.config.default_max_body_mb)
            # KongPlugin is a CRD the release installs.
            created = [
                KongPlugin(
                    f"{name}-{plugin.name}",
                    metadata=meta(plugin.name),
                    spec=plugin,
                    opts=self._on_cluster([release, *public.ready]),
                )
                for plugin in plugins
            ]
            k8s.networking.v1.Ingress(
                f"{name}-{prefix}",
                metadata=meta(prefix, ingress_annotations(plugins)),
                spec=ingress_spec(spec, route, secret),
                opts=self._on_cluster([release, certificate, *created]),
            )
