"""The API gateway: Kong (DB-less; ingress controller + gateway) behind the platform's only
LoadBalancer, and for every public route an Ingress in the service's namespace with its KongPlugins.

Kong checks no JWT. OSS Kong's ``jwt`` plugin verifies keys held by Kong consumers, not an issuer's
JWKS (``openid-connect`` is Enterprise only); tokens are verified at each service's sidecar by Istio
RequestAuthentication, which trusts requests only from the gateway's mesh identity
(:attr:`GatewayHandle.service_account`). The gateway pods are in the mesh for that reason: their calls
to services leave through the sidecar as mTLS with the gateway's own SPIFFE identity.

What Kong does at the edge, per route: TLS (cert-manager certificates; no plaintext listener: only 443
is public), IP allowlist, rate limit, request-size limit, CORS and security response headers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.core import charts, labels, netpol, quota, security_context
from components.core.base import InClusterArgs, InClusterComponent
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.gateway import GATEWAY_SERVICE_ACCOUNT, NAMESPACE, RELEASE_NAME
from components.gateway.routes import (
    CERT_MANAGER_API,
    INGRESS_CLASS,
    KongPlugin,
    PublicService,
    certificate_spec,
    ingress_annotations,
    ingress_spec,
    route_name,
    route_plugins,
    service_tls_secret,
)
from components.mesh import ROOT_NAMESPACE as MESH_ROOT_NAMESPACE
from components.paved_road import service_network
from rampart.config.models import Gateway as GatewayConfig
from rampart.config.models import GatewayServiceType as ServiceType

CHART = "ingress"
CHART_REPOSITORY = "https://charts.konghq.com"
CHART_VERSION = "0.24.0"
# The kong sub-charts name their objects "<release>-<alias>" (kong.fullname), the service account
# included; `deployment.serviceAccount.name` is not a declared default, so it is not pinned by values.
# The controller's client certificate for Kong's admin API (tls.crt/tls.key), signed by a CA Rampart
# creates (pulumi-tls): the chart must not generate it. With only `admin.tls.client.secretName` the
# gateway side `lookup`s the CA Secret the controller side would create in the same release, and fails
# the first install (kong 3.2.0 templates/service-kong-admin.yaml: `fail "... secret not found"`).
# With `certProvided` the controller mounts this Secret; `caBundle` gives Kong the CA as a PEM.
ADMIN_API_CLIENT_SECRET = f"{RELEASE_NAME}-admin-api-client"
# The CA outlives many client certificates; a client certificate is replaced by the first `pulumi up`
# within its early-renewal window (pulumi-tls `early_renewal_hours`). The Secret's name carries the
# certificate's checksum, so a new certificate is a new Secret in the release's values and Helm rolls
# the controller pods onto it (the controller reads its client certificate at start).
ADMIN_API_CA_VALIDITY_HOURS = 10 * 365 * 24
ADMIN_API_CA_EARLY_RENEWAL_HOURS = 365 * 24
ADMIN_API_CLIENT_VALIDITY_HOURS = 365 * 24
ADMIN_API_CLIENT_EARLY_RENEWAL_HOURS = 60 * 24
# The default certificate, and the secret cert-manager keeps it in.
GATEWAY_CERTIFICATE = "kong-gateway-tls"
# `secretVolumes` mounts each secret at /etc/secrets/<name>.
GATEWAY_TLS_DIR = f"/etc/secrets/{GATEWAY_CERTIFICATE}"


# Kong's container ports (chart defaults) and the controller's.
PROXY_TLS_PORT = 8443
STATUS_PORT = 8100
ADMIN_PORT = 8444
WEBHOOK_PORT = 8080
# The Service's ports (443 only: no plaintext listener, see helm_values): each allocates a node port,
# which the quota counts.
PROXY_SERVICE_PORTS = 1
# Where the API server (webhook calls) and load balancer health checks come from: the VPC / node
# network, whose exact range this layer is not told.
PRIVATE_RANGES = netpol.RFC1918_RANGES

CONTROLLER_REPLICAS = 2
# Kong runs two nginx workers (chart default); requests are what it needs at steady load.
PROXY_RESOURCES = quota.resources(requests=("500m", "512Mi"), limits=("1", "1Gi"))
CONTROLLER_RESOURCES = quota.resources(requests=("100m", "256Mi"), limits=("500m", "512Mi"))
# The mesh proxy injected into every pod, at Istio's default size: counted in the quota, and the
# LimitRange default for any container that declares nothing.
SIDECAR_RESOURCES = quota.resources(requests=("100m", "128Mi"), limits=("2", "1Gi"))
# The platform's uid floor; Kong and the controller run under arbitrary uids (the chart supports
# OpenShift's), they only write to their emptyDir prefix and /tmp.
RUN_AS = 10001

# Kong's proxy Service (kong.fullname of the `gateway` alias, "-proxy"): the NLB's targets on aws.
PROXY_SERVICE = f"{RELEASE_NAME}-gateway-proxy"


@dataclass(frozen=True, kw_only=True)
class GatewayArgs(InClusterArgs):
    config: GatewayConfig
    # Internet-facing NLB through the AWS Load Balancer Controller when True.
    on_aws: bool
    # cert-manager ClusterIssuer of every gateway certificate.
    cluster_issuer: str
    # Mesh sidecar injection labels for the kong namespace.
    injection_labels: dict[str, str]
    services: list[PublicService]
    # NetworkPolicies other layers need in the kong namespace (the sidecars' span export to Tempo).
    extra_policies: Mapping[str, k8s.networking.v1.NetworkPolicySpecArgs] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayHandle:
    namespace: str
    # The Kong gateway (proxy) pods' service account: their mesh identity.
    service_account: str
    ingress_class: str


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
        "securityContext": {"seccompProfile": dict(security_context.RUNTIME_DEFAULT)},
        "containerSecurityContext": {"enabled": True}
        | security_context.run_as(RUN_AS)
        | security_context.restricted_container(),
    }


@dataclass(frozen=True)
class AdminApiTls:
    """The admin API's mutual TLS: the CA Kong verifies clients with (a PEM known at deploy time), and
    the Secret holding the controller's client certificate and key."""

    ca_pem: pulumi.Input[str]
    # Named after the client certificate's checksum: a new certificate rolls the controller pods.
    client_secret: pulumi.Input[str] = ADMIN_API_CLIENT_SECRET


def proxy_service_type(config: GatewayConfig, *, on_aws: bool) -> ServiceType:
    """The proxy Service's type: ClusterIP on aws, where the program's own NLB reaches the pods through
    a TargetGroupBinding (components/gateway/edge_aws.py); on an existing cluster what the stack
    configures (NodePort by default: a bare kind/k3d cluster has no load-balancer implementation, and
    Helm would wait for a LoadBalancer address forever)."""
    if on_aws:
        return "ClusterIP"
    return config.service_type or "NodePort"


def helm_values(
    config: GatewayConfig, *, on_aws: bool, admin_api: AdminApiTls | None = None
) -> dict[str, Any]:
    """Values of the `ingress` chart: `controller` and `gateway` are two aliases of the kong chart."""
    admin_api = admin_api or AdminApiTls(ca_pem="")
    service_type = proxy_service_type(config, on_aws=on_aws)
    # Only 443 is public: Kong's plaintext listener is off, so the proxy Service has no port 80 and Kong
    # no 8000 (kong chart values.yaml `proxy.http.enabled`). A client that tries http:// gets no answer
    # rather than a redirect; HSTS (route_plugins' response headers) keeps browsers on https.
    proxy: dict[str, Any] = {"type": service_type, "http": {"enabled": False}}
    if service_type == "LoadBalancer":
        proxy["loadBalancerSourceRanges"] = list(config.source_ranges)
    if service_type != "ClusterIP":
        # kube-proxy SNATs external traffic to a node address under the default policy (Cluster);
        # Local keeps the client's address for NodePort and LoadBalancer Services, so ip-restriction,
        # per-IP rate limits and the NetworkPolicy's source ranges see the real client. Nodes without
        # a Kong pod then drop the traffic. https://kubernetes.io/docs/tutorials/services/source-ip/
        # (On aws the NLB targets pod IPs directly and keeps the address with preserve_client_ip.)
        # The kong chart renders it from the proxy values (templates/_helpers.tpl, "kong.service").
        proxy["externalTrafficPolicy"] = "Local"
    return {
        "controller": {
            "replicaCount": CONTROLLER_REPLICAS,
            "ingressController": {
                "ingressClass": INGRESS_CLASS,
                "resources": CONTROLLER_RESOURCES,
                # The controller authenticates to Kong's admin API with a client certificate: ours,
                # from the Secret created before the release (certProvided), never one the chart
                # generates. kong chart values.yaml `ingressController.adminApi.tls.client`:
                # https://github.com/Kong/charts/blob/main/charts/kong/values.yaml
                "adminApi": {
                    "tls": {
                        "client": {
                            "enabled": True,
                            "certProvided": True,
                            "secretName": admin_api.client_secret,
                        }
                    }
                },
            },
            **_restricted_pod(),
        },
        "gateway": {
            "replicaCount": config.replicas,
            "resources": PROXY_RESOURCES,
            "proxy": proxy,
            # Kong Manager is Enterprise UI; its NodePort Service would be a second exposure.
            "manager": {"enabled": False},
            # The admin API accepts only clients signed by the admin CA, given as a PEM: no `secretName`,
            # whose `lookup` fails the first install (templates/service-kong-admin.yaml).
            "admin": {"tls": {"client": {"caBundle": admin_api.ca_pem}}},
            # The default certificate (clients without SNI): kong.conf ssl_cert / ssl_cert_key, which
            # the chart renders as KONG_SSL_CERT*; routed hosts get theirs by SNI from the Ingresses.
            "secretVolumes": [GATEWAY_CERTIFICATE],
            "env": {"ssl_cert": f"{GATEWAY_TLS_DIR}/tls.crt", "ssl_cert_key": f"{GATEWAY_TLS_DIR}/tls.key"},
            **_restricted_pod(),
        },
    }


# -- namespace baseline ------------------------------------------------------------------------


def quota_hard(gateway_replicas: int, service_type: ServiceType = "LoadBalancer") -> dict[str, str]:
    """Each pod counted with its mesh sidecar."""
    gateways, controllers = quota.with_surge(gateway_replicas), quota.with_surge(CONTROLLER_REPLICAS)
    containers = [
        (PROXY_RESOURCES, gateways),
        (SIDECAR_RESOURCES, gateways),
        (CONTROLLER_RESOURCES, controllers),
        (SIDECAR_RESOURCES, controllers),
    ]
    exposed = service_type != "ClusterIP"
    return quota.pods_total(gateways + controllers, containers) | {
        "persistentvolumeclaims": "0",
        # The proxy is the platform's one LoadBalancer (or NodePort Service); the quota counts the node
        # port each of its ports allocates (the chart cannot set allocateLoadBalancerNodePorts: false).
        "services.loadbalancers": "1" if service_type == "LoadBalancer" else "0",
        "services.nodeports": str(PROXY_SERVICE_PORTS if exposed else 0),
    }


GATEWAY_PODS = chart_pods("gateway")
CONTROLLER_PODS = chart_pods("controller")


def allow_proxy_ingress(source_ranges: Sequence[str]) -> netpol.Spec:
    """Clients in the configured ranges reach Kong's TLS listener (the only one): the NLB keeps the
    client address (preserve_client_ip), and elsewhere the proxy Service's externalTrafficPolicy
    Local does."""
    return netpol.ingress_from(GATEWAY_PODS, netpol.cidrs(source_ranges), PROXY_TLS_PORT)


def allow_health_checks() -> netpol.Spec:
    """Load balancer health checks come from the load balancer's private addresses inside the
    cluster's network, not from the client ranges: they probe the status listener only."""
    return netpol.ingress_from(GATEWAY_PODS, netpol.cidrs(PRIVATE_RANGES), STATUS_PORT)


def allow_admin_api() -> netpol.Spec:
    """Only the controller configures Kong, through its admin API."""
    return netpol.ingress_from(GATEWAY_PODS, [netpol.pods(CONTROLLER_PODS)], ADMIN_PORT)


def allow_webhook() -> netpol.Spec:
    """The API server calls the controller's validating webhook from the control-plane network."""
    return netpol.ingress_from(CONTROLLER_PODS, netpol.cidrs(PRIVATE_RANGES), WEBHOOK_PORT)


def allow_controller_egress() -> netpol.Spec:
    """The controller watches the API server and pushes configuration to Kong's admin API."""
    return netpol.egress(
        CONTROLLER_PODS,
        [
            netpol.EgressRule(to=netpol.cidrs(PRIVATE_RANGES), ports=netpol.tcp(*netpol.API_SERVER_PORTS)),
            netpol.EgressRule(to=[netpol.pods(GATEWAY_PODS)], ports=netpol.tcp(ADMIN_PORT)),
        ],
    )


def allow_to_services(services: Sequence[PublicService]) -> netpol.Spec:
    """Kong reaches the public services' pods, each on its own port, and nothing else."""
    return netpol.egress(
        GATEWAY_PODS,
        [
            netpol.EgressRule(
                to=[netpol.pods_in(public.namespace, labels.selector(public.spec.name))],
                ports=netpol.tcp(public.spec.port),
            )
            for public in sorted(services, key=lambda s: s.spec.name)
        ],
    )


def network_policies(
    config: GatewayConfig, services: Sequence[PublicService]
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """The gateway namespace's own allows (on top of the baseline's default-deny and DNS)."""
    policies = {
        "allow-mesh-control-plane": service_network.allow_to_mesh_control_plane(MESH_ROOT_NAMESPACE),
        "allow-proxy-ingress": allow_proxy_ingress(config.source_ranges),
        "allow-health-checks": allow_health_checks(),
        "allow-admin-api": allow_admin_api(),
        "allow-webhook": allow_webhook(),
        "allow-controller-egress": allow_controller_egress(),
    }
    if services:
        policies["allow-to-services"] = allow_to_services(services)
    return policies


# -- the component -----------------------------------------------------------------------------


class Gateway(InClusterComponent):
    handle: GatewayHandle

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:gateway:Gateway", name, **args.placement(), opts=opts)
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
            quota=quota_hard(args.config.replicas, proxy_service_type(args.config, on_aws=args.on_aws)),
            container_defaults=ContainerDefaults(
                requests=SIDECAR_RESOURCES["requests"], limits=SIDECAR_RESOURCES["limits"]
            ),
            policies=network_policies(args.config, args.services) | dict(args.extra_policies),
            opts=self.on_cluster(),
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
            opts=self.on_cluster(),
        )

        admin_api, client_secret = self._admin_api_tls(name, ns, common, baseline)
        release = charts.release(
            f"{name}-release",
            charts.Chart(CHART_REPOSITORY, CHART, CHART_VERSION),
            release_name=RELEASE_NAME,
            namespace=ns,
            values=helm_values(args.config, on_aws=args.on_aws, admin_api=admin_api),
            # Pods start only once the network baseline, the default certificate's secret and the
            # controller's admin API client certificate exist.
            opts=self.on_cluster([*baseline, certificate, client_secret]),
        )
        # The chart's pods are selected by its labels, not ours: the disruption budgets are ours
        # because the chart's takes maxUnavailable, which its defaults do not declare.
        for component in ("gateway", "controller"):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{component}-pdb",
                metadata=meta(f"{RELEASE_NAME}-{component}"),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=netpol.selector(chart_pods(component)),
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=self.on_cluster(),
            )

        for public in args.services:
            self._publish(public, release)

        self.handle = GatewayHandle(
            namespace=NAMESPACE, service_account=GATEWAY_SERVICE_ACCOUNT, ingress_class=INGRESS_CLASS
        )
        self.register_outputs(
            {"namespace": ns, "serviceAccount": GATEWAY_SERVICE_ACCOUNT, "ingressClass": INGRESS_CLASS}
        )

    def _admin_api_tls(
        self,
        name: str,
        namespace: pulumi.Input[str],
        common: dict[str, str],
        baseline: Sequence[pulumi.Resource],
    ) -> tuple[AdminApiTls, k8s.core.v1.Secret]:
        """A CA for the admin API alone and the controller's client certificate, made with pulumi-tls:
        Kong's `caBundle` must be a PEM when the release is rendered, which a CA cert-manager issues
        in the cluster is not. The keys are secret outputs of the provider (never in the plan export)
        and the Secret's data is a secret input."""
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-admin-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-admin-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{RELEASE_NAME} admin API CA"),
            validity_period_hours=ADMIN_API_CA_VALIDITY_HOURS,
            early_renewal_hours=ADMIN_API_CA_EARLY_RENEWAL_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            opts=child,
        )
        client_key = tls.PrivateKey(
            f"{name}-admin-client-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child
        )
        request = tls.CertRequest(
            f"{name}-admin-client-request",
            private_key_pem=client_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=f"{RELEASE_NAME}-controller"),
            opts=child,
        )
        client = tls.LocallySignedCert(
            f"{name}-admin-client",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=ADMIN_API_CLIENT_VALIDITY_HOURS,
            early_renewal_hours=ADMIN_API_CLIENT_EARLY_RENEWAL_HOURS,
            allowed_uses=["client_auth", "digital_signature", "key_encipherment"],
            opts=child,
        )
        secret_name = client.cert_pem.apply(
            lambda pem: f"{ADMIN_API_CLIENT_SECRET}-{hashlib.sha256(pem.encode()).hexdigest()[:10]}"
        )
        key_pem: pulumi.Input[str] = client_key.private_key_pem
        secret = k8s.core.v1.Secret(
            f"{name}-admin-api-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=namespace, labels=common),
            type="kubernetes.io/tls",
            # The key is secret whatever the provider marks: it never reaches the plan export in the clear.
            string_data={
                "tls.crt": client.cert_pem,
                "tls.key": pulumi.Output.secret(key_pem),
            },
            opts=self.on_cluster(baseline),
        )
        return AdminApiTls(ca_pem=ca.cert_pem, client_secret=secret.metadata.name), secret

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
            opts=self.on_cluster(public.ready),
        )
        for index, route in enumerate(spec.routes):
            prefix = route_name(spec.name, index)
            plugins = route_plugins(prefix, route, args.config.default_max_body_mb, args.config.replicas)
            # KongPlugin is a CRD the release installs.
            created = [
                KongPlugin(
                    f"{name}-{plugin.name}",
                    metadata=meta(plugin.name),
                    spec=plugin,
                    opts=self.on_cluster([release, *public.ready]),
                )
                for plugin in plugins
            ]
            k8s.networking.v1.Ingress(
                f"{name}-{prefix}",
                metadata=meta(prefix, ingress_annotations(plugins)),
                spec=ingress_spec(spec, route, secret),
                opts=self.on_cluster([release, certificate, *created]),
            )
