"""Who makes what work in the cluster: what installs each CRD, which controller finalizes which
object, which webhook injects the mesh sidecar. Facts about upstream software, each with its source.

Shared by the lifecycle policies (`policies/rules/lifecycle.py`) and `rampart order`
(`rampart/order.py`). Functions take a resource's type and properties: the inputs in an export, the
outputs in the engine's stack-validation view (a `kubernetes:yaml/v2:ConfigFile` reports no `file`
there, so its resource name stands in for the manifest).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from components.core.chart_archive import chart_name as archive_chart_name

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
EKS_ADDON = "aws:eks/addon:Addon"
EKS_CLUSTER = "aws:eks/cluster:Cluster"


def path(props: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = props
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def chart_name(props: Mapping[str, Any]) -> str:
    """`oci://public.ecr.aws/karpenter/karpenter` -> `karpenter`; a mirror's `<dir>/istiod-1.30.3.tgz`
    -> `istiod` (components.core.chart_archive)."""
    return archive_chart_name(str(props.get("chart") or ""), str(props.get("version") or ""))


def plural(kind: str) -> str:
    return kind.lower()[:-1] + "ies" if kind.endswith("y") else kind.lower() + "s"


@dataclass(frozen=True)
class Installer:
    """What installs something, found in the plan: a Helm release of one of `charts`, a
    `kubernetes:yaml/*` manifest whose `file` (or, where the engine reports no `file`, resource name)
    contains one of `manifests`, an EKS add-on named one of `addons`, or any resource of `types`."""

    charts: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()
    addons: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def matches(self, type_: str, props: Mapping[str, Any], name: str = "") -> bool:
        if type_ in self.types:
            return True
        if type_ == HELM_RELEASE:
            return chart_name(props) in self.charts
        if type_.startswith("kubernetes:yaml/"):
            manifest = str(props.get("file") or name)
            return any(m in manifest for m in self.manifests)
        if type_ == EKS_ADDON:
            return props.get("addonName") in self.addons
        return False


# ------------------------------------------------------------------------------ finalizing controllers


@dataclass(frozen=True)
class Controller:
    """A controller that removes finalizers; found in the plan by its Helm chart or manifest."""

    name: str
    charts: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()

    @property
    def installer(self) -> Installer:
        """Its Helm chart or manifest, as an installer (the RabbitMQ operators also install their CRDs)."""
        return Installer(self.charts, self.manifests)

    def installs(self, type_: str, props: Mapping[str, Any], name: str = "") -> bool:
        return self.installer.matches(type_, props, name)


LB_CONTROLLER = Controller("aws-load-balancer-controller", charts=("aws-load-balancer-controller",))
CONTROLLERS: dict[str, Controller] = {
    c.name: c
    for c in (
        LB_CONTROLLER,
        Controller("karpenter", charts=("karpenter",)),
        Controller(
            "rabbitmq-cluster-operator",
            charts=("rabbitmq-cluster-operator",),
            manifests=("cluster-operator",),
        ),
        Controller(
            "rabbitmq-messaging-topology-operator",
            charts=("rabbitmq-messaging-topology-operator",),
            manifests=("messaging-topology-operator",),
        ),
        Controller("cloudnative-pg", charts=("cloudnative-pg",)),
        Controller("vault-secrets-operator", charts=("vault-secrets-operator",)),
    )
}

# kind -> (controller, finalizer, source). Kinds not listed carry no controller finalizer: cert-manager
# Certificates/Issuers (the Secret goes by owner reference, `--enable-certificate-owner-ref`, removed by
# the garbage collector; cert-manager/cert-manager#2993), Istio and Prometheus-operator objects,
# KongPlugins, CNPG `Cluster` (the operator finalizes only Database, Publication, Subscription and
# plugin Services, cloudnative-pg/cloudnative-pg#10535; a Cluster's pods and volumes go by owner
# references) and any built-in kind. pulumi-kubernetes treats a custom resource whose CRD is gone as
# deleted (pulumi-kubernetes#530), so only a finalizer makes the order matter. Certificates and CNPG
# Clusters still come down before their controller: the same release installs their CRD, and
# `crd-installed-first` makes them wait for it.
_TOPOLOGY = "messaging-topology-operator controllers: `deletion.finalizers.<plural>.rabbitmq.com`"
_VSO = "vault-secrets-operator controllers: `<kind>.secrets.hashicorp.com/finalizer`"
FINALIZED_KINDS: dict[str, tuple[str, str, str]] = {
    "rabbitmq.com/v1beta1:RabbitmqCluster": (
        "rabbitmq-cluster-operator",
        "deletion.finalizers.rabbitmqclusters.rabbitmq.com",
        "rabbitmq/cluster-operator controllers/reconcile_finalizer.go",
    ),
    **{
        f"rabbitmq.com/v1beta1:{kind}": (
            "rabbitmq-messaging-topology-operator",
            f"deletion.finalizers.{plural(kind)}.rabbitmq.com",
            _TOPOLOGY,
        )
        for kind in (
            *("Queue", "Exchange", "Binding", "Policy", "Vhost", "User", "Permission", "TopicPermission"),
            *("Federation", "Shovel", "SchemaReplication", "OperatorPolicy", "SuperStream"),
        )
    },
    **{
        f"postgresql.cnpg.io/v1:{kind}": (
            "cloudnative-pg",
            f"cnpg.io/delete{kind}",
            "CloudNativePG docs: a finalizer is added to each Database/Publication/Subscription",
        )
        for kind in ("Database", "Publication", "Subscription")
    },
    **{
        f"secrets.hashicorp.com/v1beta1:{kind}": (
            "vault-secrets-operator",
            f"{kind.lower()}.secrets.hashicorp.com/finalizer",
            _VSO,
        )
        for kind in (
            "VaultConnection",
            "VaultAuth",
            "VaultStaticSecret",
            "VaultDynamicSecret",
            "VaultPKISecret",
            "HCPAuth",
            "HCPVaultSecretsApp",
        )
    },
    "karpenter.sh/v1:NodePool": (
        "karpenter",
        "karpenter.sh/termination",
        "Karpenter: the controller drains and terminates the pool's nodes; without it, instances leak",
    ),
    "karpenter.k8s.aws/v1:EC2NodeClass": (
        "karpenter",
        "karpenter.k8s.aws/termination",
        "Karpenter: waits for the class's NodeClaims, then deletes its instance profile",
    ),
    "elbv2.k8s.aws/v1beta1:TargetGroupBinding": (
        LB_CONTROLLER.name,
        "elbv2.k8s.aws/resources",
        "AWS Load Balancer Controller: deregisters targets",
    ),
}
_LB_SERVICE_SOURCE = (
    "AWS Load Balancer Controller manages a Service annotated aws-load-balancer-type external/nlb-ip "
    "(the in-tree provider ignores it) and holds finalizer service.k8s.aws/resources until the NLB is deleted"
)
_LB_INGRESS_SOURCE = "AWS Load Balancer Controller: ingress.k8s.aws/resources until the ALB is deleted"
LB_SCHEME_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-scheme"
LB_SUBNETS_ANNOTATION = "service.beta.kubernetes.io/aws-load-balancer-subnets"
ALB_SCHEME_ANNOTATION = "alb.ingress.kubernetes.io/scheme"
ALB_SUBNETS_ANNOTATION = "alb.ingress.kubernetes.io/subnets"


@dataclass(frozen=True)
class FinalizedObject:
    label: str  # "Service kong/kong-gateway-proxy"
    controller: str  # a CONTROLLERS key
    finalizer: str
    source: str
    # For load balancers the LB controller provisions: their scheme and whether subnets are explicit.
    scheme: str = ""
    explicit_subnets: bool = False


def service_type(props: Mapping[str, Any]) -> str:
    return str((props.get("spec") or {}).get("type") or "")


def lb_controller_service(spec: Mapping[str, Any], annotations: Mapping[str, Any]) -> bool:
    if spec.get("type") != "LoadBalancer":
        return False
    kind = annotations.get("service.beta.kubernetes.io/aws-load-balancer-type")
    return kind in ("external", "nlb-ip") or spec.get("loadBalancerClass") == "service.k8s.aws/nlb"


def _kong_proxy(values: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    # `ingress` chart: the proxy Service is gateway.proxy; the `kong` chart has it at .proxy.
    found = []
    for dotted in ("gateway.proxy", "proxy"):
        node = path(values, dotted)
        if isinstance(node, Mapping):
            found.append(("Service " + dotted, node, node.get("annotations") or {}))
    return found


# Charts whose rendered objects carry a finalizer, by chart name: values -> (label, spec, annotations)
CHART_SERVICES: dict[
    str, Callable[[Mapping[str, Any]], list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]]
] = {
    "ingress": _kong_proxy,
    "kong": _kong_proxy,
}


def _lb_service(label: str, annotations: Mapping[str, Any]) -> FinalizedObject:
    return FinalizedObject(
        label,
        LB_CONTROLLER.name,
        "service.k8s.aws/resources",
        _LB_SERVICE_SOURCE,
        # The controller's default scheme is internal (annotations reference, "aws-load-balancer-scheme").
        scheme=str(annotations.get(LB_SCHEME_ANNOTATION) or "internal"),
        explicit_subnets=bool(annotations.get(LB_SUBNETS_ANNOTATION)),
    )


def finalized_objects(type_: str, props: Mapping[str, Any]) -> list[FinalizedObject]:
    """The objects this plan resource creates that keep a controller finalizer until the controller
    has cleaned up (the resource itself, or what its Helm chart renders)."""
    meta = props.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
    kind_key = type_.removeprefix("kubernetes:")
    if type_.startswith("kubernetes:") and kind_key in FINALIZED_KINDS:
        controller, finalizer, source = FINALIZED_KINDS[kind_key]
        return [FinalizedObject(f"{type_.rsplit(':', 1)[-1]} {where}", controller, finalizer, source)]
    annotations = meta.get("annotations") or {}
    if type_ == "kubernetes:core/v1:Service" and lb_controller_service(props.get("spec") or {}, annotations):
        return [_lb_service(f"Service {where}", annotations)]
    if type_ == "kubernetes:networking.k8s.io/v1:Ingress" and "alb" in (
        (props.get("spec") or {}).get("ingressClassName"),
        annotations.get("kubernetes.io/ingress.class"),
    ):
        return [
            FinalizedObject(
                f"Ingress {where}",
                LB_CONTROLLER.name,
                "ingress.k8s.aws/resources",
                _LB_INGRESS_SOURCE,
                scheme=str(annotations.get(ALB_SCHEME_ANNOTATION) or "internal"),
                explicit_subnets=bool(annotations.get(ALB_SUBNETS_ANNOTATION)),
            )
        ]
    if type_ == HELM_RELEASE and chart_name(props) in CHART_SERVICES:
        release = f"{props.get('namespace')}/{props.get('name')}"
        return [
            _lb_service(f"{label} of release {release}", annotations)
            for label, spec, annotations in CHART_SERVICES[chart_name(props)](props.get("values") or {})
            if lb_controller_service(spec, annotations)
        ]
    return []


# ---------------------------------------------------------------------------------- CRD installers

# API groups served by the API server itself (no CRD). Everything else under `kubernetes:` is a custom
# resource, including *.k8s.io groups such as gateway.networking.k8s.io and *.x-k8s.io.
BUILTIN_GROUPS = frozenset(
    {
        "core",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)
# pulumi-kubernetes types that are not API objects.
PSEUDO_GROUPS = frozenset({"helm.sh", "yaml", "kustomize"})


def custom_resource(type_: str) -> tuple[str, str] | None:
    """`kubernetes:cert-manager.io/v1:Certificate` -> ("cert-manager.io", "Certificate"); None for a
    built-in kind, a Patch of one, or a pulumi-kubernetes pseudo type (Release, ConfigFile)."""
    if not type_.startswith("kubernetes:"):
        return None
    api_version, _, kind = type_.removeprefix("kubernetes:").rpartition(":")
    group = api_version.split("/", 1)[0] if "/" in api_version else "core"
    if group in BUILTIN_GROUPS or group in PSEUDO_GROUPS or not kind:
        return None
    return group, kind


def _always(_: Mapping[str, Any], __: str) -> bool:
    return True


def _crds_dir(props: Mapping[str, Any], _: str) -> bool:
    # Helm installs a chart's (and enabled subcharts') crds/ directory first, unless --skip-crds
    # (pulumi-kubernetes Release `skipCrds`). https://helm.sh/docs/chart_best_practices/custom_resource_definitions/
    return props.get("skipCrds") is not True


def _cert_manager(props: Mapping[str, Any], _: str) -> bool:
    # cert-manager renders its CRDs as templates only with crds.enabled (or the deprecated
    # installCRDs); both default to false (chart values.yaml, v1.21).
    values = props.get("values") or {}
    return path(values, "crds.enabled") is True or values.get("installCRDs") is True


def _kube_prometheus_stack(props: Mapping[str, Any], kind: str) -> bool:
    # The `crds` subchart (its crds/ directory) is enabled by crds.enabled, default true.
    return path(props.get("values") or {}, "crds.enabled") is not False and _crds_dir(props, kind)


def _cloudnative_pg(props: Mapping[str, Any], _: str) -> bool:
    # templates/crds/crds.yaml, gated by crds.create (default true).
    return path(props.get("values") or {}, "crds.create") is not False


def _istio_base(props: Mapping[str, Any], kind: str) -> bool:
    # base renders crds/crd-all.gen.yaml as templates when base.enableCRDTemplates (default true),
    # minus base.excludedCRDs (templates/crds.yaml); the same file sits in crds/ for Helm itself.
    values = props.get("values") or {}
    return path(values, "base.enableCRDTemplates") is not False or _crds_dir(props, kind)


@dataclass(frozen=True)
class CrdSource:
    """What installs the CRDs of `groups` (only `kinds`, when given; every kind not claimed by a more
    specific entry otherwise) and whether its configuration really renders them."""

    name: str
    groups: tuple[str, ...]
    installer: Installer
    source: str
    kinds: tuple[str, ...] = ()
    renders: Callable[[Mapping[str, Any], str], bool] = _always  # (installer props, kind)


def _chart_crds(groups: tuple[str, ...], *charts: str, note: str = "") -> CrdSource:
    """CRDs shipped in the crds/ directory of a chart; the first of `charts` names the source."""
    return CrdSource(
        charts[0],
        groups,
        Installer(charts=charts),
        f"{charts[0]} chart crds/ directory{note}",
        renders=_crds_dir,
    )


CRD_SOURCES: tuple[CrdSource, ...] = (
    CrdSource(
        "istio base",
        ("networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io"),
        Installer(charts=("base",)),
        "istio manifests/charts/base (crds/crd-all.gen.yaml, templates/crds.yaml)",
        renders=_istio_base,
    ),
    CrdSource(
        "cert-manager",
        ("cert-manager.io", "acme.cert-manager.io"),
        Installer(charts=("cert-manager",)),
        "cert-manager chart values.yaml: crds.enabled (default false), installCRDs (deprecated)",
        renders=_cert_manager,
    ),
    CrdSource(
        "kube-prometheus-stack / prometheus-operator CRDs",
        ("monitoring.coreos.com",),
        Installer(charts=("kube-prometheus-stack", "prometheus-operator-crds")),
        "kube-prometheus-stack values.yaml: crds.enabled (default true), the `crds` subchart",
        renders=_kube_prometheus_stack,
    ),
    CrdSource(
        "cloudnative-pg",
        ("postgresql.cnpg.io",),
        Installer(charts=("cloudnative-pg",)),
        "cloudnative-pg chart values.yaml: crds.create (default true)",
        renders=_cloudnative_pg,
    ),
    CrdSource(
        "RabbitMQ cluster operator",
        ("rabbitmq.com",),
        CONTROLLERS["rabbitmq-cluster-operator"].installer,
        "rabbitmq/cluster-operator release cluster-operator.yml (CRD rabbitmqclusters.rabbitmq.com)",
        kinds=("RabbitmqCluster",),
    ),
    CrdSource(
        "RabbitMQ messaging topology operator",
        ("rabbitmq.com",),
        CONTROLLERS["rabbitmq-messaging-topology-operator"].installer,
        "rabbitmq/messaging-topology-operator release bundle (queues, exchanges, bindings, vhosts, ... CRDs)",
    ),
    _chart_crds(
        ("karpenter.sh", "karpenter.k8s.aws"),
        "karpenter",
        "karpenter-crd",
        note=" (or the karpenter-crd chart)",
    ),
    _chart_crds(("secrets.hashicorp.com",), "vault-secrets-operator"),
    _chart_crds(
        ("elbv2.k8s.aws",), "aws-load-balancer-controller", note=" (TargetGroupBinding, IngressClassParams)"
    ),
    _chart_crds(
        ("configuration.konghq.com", "incubator.konghq.com"),
        "kong",
        "ingress",
        note=" (the `ingress` chart's controller subchart)",
    ),
    CrdSource(
        "EKS control plane (security groups for pods)",
        ("vpcresources.k8s.aws",),
        Installer(types=(EKS_CLUSTER,)),
        # Not the vpc-cni add-on: the EKS control plane's VPC resource controller registers
        # securitygrouppolicies.vpcresources.k8s.aws (and cninodes) when the cluster is created (AWS
        # containers blog, "Introducing security groups for pods": "a new CRD has also been added
        # automatically at the cluster creation"). The vpc-cni add-on only makes policies effective
        # (ENABLE_POD_ENI); pods it cannot place stay Pending, nothing fails.
        # https://docs.aws.amazon.com/eks/latest/userguide/security-groups-for-pods.html
        "EKS: the control plane registers SecurityGroupPolicy at cluster creation",
    ),
)


def crd_sources(group: str, kind: str) -> list[CrdSource]:
    """The table entries for this kind: those naming the kind, else those covering its whole group."""
    of_group = [s for s in CRD_SOURCES if group in s.groups]
    specific = [s for s in of_group if kind in s.kinds]
    return specific or [s for s in of_group if not s.kinds]


def crd_object_installs(props: Mapping[str, Any], group: str, kind: str) -> bool:
    """A CustomResourceDefinition in the plan itself."""
    spec = props.get("spec") or {}
    return spec.get("group") == group and path(spec, "names.kind") == kind


# ---------------------------------------------------------------------------- the sidecar injector

INJECTOR_CHARTS = ("istiod",)
# Charts that create no pods (CRDs, RBAC and webhooks only).
PODLESS_CHARTS = frozenset({"base", "karpenter-crd", "prometheus-operator-crds"})
# Pod-creating kinds and where their pod template's metadata is.
POD_TEMPLATES: dict[str, str] = {
    "kubernetes:apps/v1:Deployment": "spec.template.metadata",
    "kubernetes:apps/v1:StatefulSet": "spec.template.metadata",
    "kubernetes:apps/v1:DaemonSet": "spec.template.metadata",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.metadata",
    "kubernetes:batch/v1:Job": "spec.template.metadata",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.metadata",
    "kubernetes:core/v1:ReplicationController": "spec.template.metadata",
    "kubernetes:core/v1:Pod": "metadata",
}
INJECTION_LABEL = "istio-injection"
REVISION_LABEL = "istio.io/rev"
POD_INJECT = "sidecar.istio.io/inject"


def injected_revision(namespace_labels: Mapping[str, Any], pod_metadata: Mapping[str, Any]) -> str | None:
    """The Istio revision whose webhook injects a sidecar into this pod ("" = the default one), or
    None. Istio, "Controlling the injection policy": if either istio-injection or
    sidecar.istio.io/inject is disabled the pod is not injected; if either of them or istio.io/rev is
    enabled it is; istio-injection takes precedence over istio.io/rev (the default revision). The pod
    label wins over the legacy annotation.
    https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/#controlling-the-injection-policy"""
    labels = pod_metadata.get("labels") or {}
    annotations = pod_metadata.get("annotations") or {}
    pod = str(labels.get(POD_INJECT, annotations.get(POD_INJECT, ""))).lower()
    namespace = str(namespace_labels.get(INJECTION_LABEL, "")).lower()
    if pod == "false" or namespace == "disabled":
        return None
    if namespace == "enabled":
        return ""
    revision = labels.get(REVISION_LABEL, namespace_labels.get(REVISION_LABEL))
    if revision is not None:
        return "" if str(revision) == "default" else str(revision)
    return "" if pod == "true" else None


def injector_revisions(props: Mapping[str, Any]) -> set[str]:
    """The revisions (and revision tags) an istiod release serves ("" = default)."""
    values = props.get("values") or {}
    revision = str(values.get("revision") or "")
    tags = {str(t) for t in values.get("revisionTags") or []}
    served = {revision, *tags}
    return {"" if r == "default" else r for r in served}
