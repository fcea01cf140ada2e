"""The service mesh: Istio in sidecar mode, STRICT mTLS everywhere, and nothing allowed until a
service's own AuthorizationPolicy says so.

Four pieces: ``base`` (CRDs, validation webhook), ``cni`` (in kube-system: it sets up each pod's
traffic redirection on the node, so injected pods need no NET_ADMIN init container and stay Pod
Security Standards `restricted`), ``istiod`` (control plane and CA), and the mesh-wide root
policies in istio-system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core import charts, labels, netpol, quota, scheduling, security_context
from components.core.base import InClusterArgs, InClusterComponent
from components.core.namespace_baseline import ContainerDefaults, namespace_baseline
from components.core.quota import MESH_PROXY
from components.mesh import CNI_NAMESPACE, ROOT_NAMESPACE, TRUST_DOMAIN
from rampart.config.models import Mesh as MeshConfig

INJECTION_LABELS = {"istio-injection": "enabled"}
CHART_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
ISTIO_VERSION = "1.30.3"
# The registry and tag of the images istiod runs and injects (global.hub, global.tag): set, not left to the
# chart's defaults, so the injected sidecar is exactly PROXY_IMAGE, the one mesh image the service
# namespaces' image admission policy admits beside the stack's registries (paved_road/admission.py).
PROXY_HUB = "docker.io/istio"
PROXY_IMAGE = f"{PROXY_HUB}/proxyv2:{ISTIO_VERSION}"
# Helm release name -> chart name.
BASE_RELEASE, CNI_RELEASE, ISTIOD_RELEASE = "istio-base", "istio-cni", "istiod"
CHARTS = {BASE_RELEASE: "base", CNI_RELEASE: "cni", ISTIOD_RELEASE: "istiod"}
SECURITY_API = "security.istio.io/v1"

# istiod's ports (chart's Service): 15012 xDS + CA over mTLS (every sidecar), 15017 the injection
# and validation webhooks (the API server), 15014 metrics. Plaintext xDS (15010) stays closed.
ISTIOD_PORTS = (15012, 15017, 15014)
# The API server (443 on EKS, 6443 on kubeadm/kind) and JWKS endpoints istiod fetches (443).
ISTIOD_EGRESS_PORTS = (443, 6443)
ISTIOD_POD_LABELS = {"app": "istiod"}
# istiod may scale out to this many replicas (at least its configured minimum).
ISTIOD_MAX_REPLICAS = 5

ISTIOD_RESOURCES = quota.resources(requests=("250m", "512Mi"), limits=("2", "2Gi"))
# Every injected pod carries one sidecar, counted against its namespace quota. A service's quota
# leaves room for half its own size (quota_headroom 1.5); these fit that for the default service
# size (requests 100m/128Mi, limits 500m/256Mi).
# The default proxy size; the paved road sets the same per pod (and counts it in its quota).
SIDECAR_RESOURCES = quota.resources(
    requests=(MESH_PROXY.cpu_request, MESH_PROXY.memory_request),
    limits=(MESH_PROXY.cpu_limit, MESH_PROXY.memory_limit),
)


@dataclass(frozen=True, kw_only=True)
class MeshArgs(InClusterArgs):
    config: MeshConfig
    # meshConfig.extensionProviders, e.g. the tracing backend spans go to.
    extension_providers: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class MeshHandle:
    """What services need from the mesh: where root policies live, how identities are spelled,
    how to join the mesh, and what to wait for."""

    root_namespace: str
    trust_domain: str
    injection_labels: dict[str, str]
    ready: list[pulumi.Resource]


def principal(handle: MeshHandle, namespace: str, service_account: str) -> str:
    """A workload's mTLS identity as AuthorizationPolicy `source.principals` spells it."""
    return f"{handle.trust_domain}/ns/{namespace}/sa/{service_account}"


def is_ha(config: MeshConfig) -> bool:
    return config.istiod_replicas >= 2


def mesh_config(
    config: MeshConfig, extension_providers: Sequence[Mapping[str, Any]] = ()
) -> dict[str, object]:
    """The chart's free-form ``meshConfig``: every key is an Istio MeshConfig field
    (istio.mesh.v1alpha1.MeshConfig; ``defaultConfig`` is a ProxyConfig)."""
    mesh: dict[str, object] = {
        "trustDomain": TRUST_DOMAIN,
        "rootNamespace": ROOT_NAMESPACE,
        # Sidecars reach only hosts in the registry: services, and ServiceEntries for external hosts.
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        # `/a//b` and `/a/../b` match AuthorizationPolicy paths as the backend sees them. Escaped
        # slashes are left alone: with ALLOW-only policies a mismatch denies, it never lets through.
        "pathNormalization": {"normalization": "MERGE_SLASHES"},
        "enableTracing": config.trace_sampling > 0,
        "defaultConfig": {
            "tracing": {"sampling": config.trace_sampling},
            # The app starts once its sidecar is ready: under REGISTRY_ONLY and STRICT mTLS early
            # calls would otherwise fail.
            "holdApplicationUntilProxyStarts": True,
        },
    }
    if config.access_logs:
        mesh |= {"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON"}
    if extension_providers:
        # Where Telemetry resources send spans (the tracing backend of the observability layer).
        mesh["extensionProviders"] = [dict(provider) for provider in extension_providers]
    return mesh


def istiod_values(
    config: MeshConfig, extension_providers: Sequence[Mapping[str, Any]] = ()
) -> dict[str, object]:
    replicas = config.istiod_replicas
    values: dict[str, object] = {
        # The chart names this `cni.enabled`; the injector sees it as `pilot.cni.enabled`. Injected
        # pods then get the unprivileged istio-validation init container instead of istio-init.
        "cni": {"enabled": True},
        "autoscaleEnabled": True,
        "autoscaleMin": replicas,
        "autoscaleMax": max(ISTIOD_MAX_REPLICAS, replicas),
        "replicaCount": replicas,
        "resources": ISTIOD_RESOURCES,
        # With it istiod's pod meets `restricted` (the chart sets the rest).
        "seccompProfile": security_context.RUNTIME_DEFAULT,
        "meshConfig": mesh_config(config, extension_providers),
        "global": {
            "istioNamespace": ROOT_NAMESPACE,
            "hub": PROXY_HUB,
            "tag": ISTIO_VERSION,
            # The chart renders the PDB only when more than one replica runs.
            "defaultPodDisruptionBudget": {"enabled": is_ha(config)},
            "proxy": {"resources": SIDECAR_RESOURCES, "seccompProfile": security_context.RUNTIME_DEFAULT},
        },
    }
    if is_ha(config):
        values["topologySpreadConstraints"] = [
            scheduling.spread(ISTIOD_POD_LABELS, key) for key in (scheduling.ZONE, scheduling.HOST)
        ]
    return values


def base_values() -> dict[str, object]:
    return {"global": {"istioNamespace": ROOT_NAMESPACE}}


def cni_values() -> dict[str, object]:
    # Sidecar mode: the plugin only redirects traffic of injected pods; ambient stays off.
    return {"ambient": {"enabled": False}}


def quota_hard(config: MeshConfig) -> dict[str, str]:
    """istiod at its autoscaling maximum, doubled: the chart rolls out with 100% surge."""
    pods = 2 * max(ISTIOD_MAX_REPLICAS, config.istiod_replicas)
    return (
        quota.pods_total(pods, [(ISTIOD_RESOURCES, pods)])
        | {"persistentvolumeclaims": "0"}
        | quota.NOT_EXPOSED
    )


def allow_istiod() -> netpol.Spec:
    """Sidecars in every namespace and the API server (not a pod: no selector names it) call istiod;
    istiod calls the API server and JWKS endpoints, whose addresses are not known in advance."""
    return netpol.policy(
        ISTIOD_POD_LABELS,
        ingress=[netpol.IngressRule(ports=netpol.tcp(*ISTIOD_PORTS))],
        egress=[netpol.EgressRule(ports=netpol.tcp(*ISTIOD_EGRESS_PORTS))],
    )


class Mesh(InClusterComponent):
    handle: MeshHandle

    def __init__(self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:mesh:Mesh", name, provider=args.provider, opts=opts)
        config = args.config
        common = labels.common(args.environment) | {labels.NAME: "istio"}

        # `restricted`, though the policy packs exempt istio-system: the only pod here is istiod,
        # which meets it (non-root, no privilege escalation, ALL capabilities dropped, read-only
        # root fs, RuntimeDefault seccomp, only secret/configMap/projected/emptyDir volumes). The
        # privileged CNI agent runs in kube-system instead.
        ns, baseline = self._baseline(name, config, common)

        base = self._release(name, BASE_RELEASE, ns, base_values(), [*args.depends_on, *baseline])
        cni = self._release(name, CNI_RELEASE, CNI_NAMESPACE, cni_values(), [*args.depends_on, base])
        istiod = self._release(
            name,
            ISTIOD_RELEASE,
            ns,
            istiod_values(config, args.extension_providers),
            [*args.depends_on, base, *baseline],
        )

        # Root-namespace policies apply mesh-wide: mTLS only, and deny everything not allowed.
        peer_authentication = self._root_policy(
            name, "PeerAuthentication", "default", {"mtls": {"mode": "STRICT"}}, istiod
        )
        allow_nothing = self._root_policy(name, "AuthorizationPolicy", "allow-nothing", {}, istiod)

        self.handle = MeshHandle(
            root_namespace=ROOT_NAMESPACE,
            trust_domain=TRUST_DOMAIN,
            injection_labels=dict(INJECTION_LABELS),
            ready=[cni, istiod, peer_authentication, allow_nothing],
        )
        self.register_outputs({"rootNamespace": ns, "trustDomain": TRUST_DOMAIN})

    def _baseline(
        self, name: str, config: MeshConfig, common: dict[str, str]
    ) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
        created = namespace_baseline(
            name,
            namespace=ROOT_NAMESPACE,
            labels_=common,
            quota=quota_hard(config),
            container_defaults=ContainerDefaults.of(ISTIOD_RESOURCES),
            policies={"allow-istiod": allow_istiod()},
            opts=self.on_cluster(),
        )
        return created.name, created.resources

    def _release(
        self,
        name: str,
        release: str,
        namespace: pulumi.Input[str],
        values: Mapping[str, object],
        depends_on: Sequence[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        return charts.release(
            f"{name}-{release}",
            charts.Chart(CHART_REPOSITORY, CHARTS[release], ISTIO_VERSION),
            release_name=release,
            namespace=namespace,
            values=dict(values),
            opts=self.on_cluster(depends_on),
        )

    def _root_policy(
        self, name: str, kind: str, object_name: str, spec: Mapping[str, object], istiod: pulumi.Resource
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-{object_name}-{kind.lower()}",
            api_version=SECURITY_API,
            kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=ROOT_NAMESPACE),
            spec=dict(spec),
            opts=self.on_cluster([istiod]),
        )
