"""The workloads a path can start or end at, read from the plan.

Pods the program declares itself (the paved road's Deployments) are read from their pod templates.
Pods that charts and operators create are not in the plan: each is described here from its chart's or
operator's documented labels, service account and container ports at the pinned version (the
reference is beside each entry), with the release's values applied where the chart takes them
(pod labels and annotations, the scheme Vault serves). Injection follows Istio's rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from components.core.chart_archive import chart_name as archive_chart_name
from rampart.offline.plan import Plan
from rampart.paths.endpoints import Pod
from rampart.paths.network import NAMESPACE, NAMESPACE_PATCH
from rampart.paths.selectors import matches

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
RELEASE = "kubernetes:helm.sh/v3:Release"
CNPG_CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
RABBITMQ_CLUSTER = "kubernetes:rabbitmq.com/v1beta1:RabbitmqCluster"
INJECT = "sidecar.istio.io/inject"
# The ports the injected istio-proxy container declares; Envoy serves 15090 (Prometheus) and 15021
# (health) itself, outside traffic capture.
# https://istio.io/latest/docs/ops/deployment/application-requirements/#ports-used-by-istio
SIDECAR_PORTS = {"http-envoy-prom": 15090}


@dataclass(frozen=True)
class Front:
    """The Service in front of a workload: its name, labels and ports (name, port, target port)."""

    name: str
    labels: Mapping[str, str]
    ports: tuple[tuple[str, int, int], ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    def target(self, port_name: str) -> int | None:
        return next((target for name, _, target in self.ports if name == port_name), None)

    def target_of(self, port: int) -> int | None:
        """The container port behind a Service port."""
        return next((target for _, number, target in self.ports if number == port), None)


@dataclass(frozen=True)
class Workload:
    """Pods of one kind: where they run, how they are labelled, who they are, what they serve."""

    key: str
    namespace: str
    labels: Mapping[str, str]
    service_account: str
    # Container ports by name (the sidecar's included when injected).
    ports: Mapping[str, int]
    annotations: Mapping[str, str] = field(default_factory=dict)
    front: Front | None = None
    # Whether Istio injects a sidecar (set by the inventory from the namespace and the pod).
    injected: bool = False
    # "service" | "database" | "broker" | "platform" | "system"
    role: str = "platform"
    # Where the description comes from: the plan object, or the chart and its reference.
    source: str = ""
    # The Helm release that creates it, for chart workloads.
    release: str | None = None

    @property
    def pod(self) -> Pod:
        return Pod(self.namespace, self.labels, ports=self.ports)

    @property
    def host(self) -> str | None:
        """The in-cluster name clients use (its Service), if it has one."""
        return f"{self.front.name}.{self.namespace}.svc.cluster.local" if self.front else None


def injected(
    namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str], annotations: Mapping[str, str]
) -> bool:
    """Istio's sidecar injector: a pod label (or annotation) ``sidecar.istio.io/inject`` decides
    when set; otherwise the namespace label ``istio-injection=enabled`` (or a revision label).
    https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/#controlling-the-injection-policy
    """
    if namespace_labels.get("istio-injection") == "disabled":
        return False
    pod_choice = pod_labels.get(INJECT, annotations.get(INJECT))
    if pod_choice is not None:
        return str(pod_choice).lower() == "true"
    return namespace_labels.get("istio-injection") == "enabled" or "istio.io/rev" in namespace_labels


# --- chart workloads ------------------------------------------------------------------------------
# Each function returns the pods a release of that chart creates, from its values.
ChartPods = Callable[[str, str, Mapping[str, Any]], list[Workload]]


def _get(values: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    node: Any = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def _merged(default: Mapping[str, str], values: Mapping[str, Any], *path: str) -> dict[str, str]:
    """Helm merges a map value over the chart's default map key by key (null removes a key)."""
    given = _get(values, *path, default={}) or {}
    merged = {**default, **{k: v for k, v in given.items() if v is not None}}
    return {k: str(v) for k, v in merged.items() if k not in {k for k, v in given.items() if v is None}}


# Kong chart 3.2.0 (the `ingress` 0.24.0 chart's dependency, aliased `controller` and `gateway`):
# podAnnotations default {kuma.io/gateway: enabled, traffic.sidecar.istio.io/includeInboundPorts: ""}
# (charts/kong/values.yaml); the ingress chart adds excludeOutboundPorts 8444 to the controller's
# (charts/ingress/values.yaml). Container ports from templates/deployment.yaml and _helpers.tpl.
KONG_POD_ANNOTATIONS = {"kuma.io/gateway": "enabled", "traffic.sidecar.istio.io/includeInboundPorts": ""}
KONG_CONTROLLER_ANNOTATIONS = {
    "traffic.kuma.io/exclude-outbound-ports": "8444",
    "traffic.sidecar.istio.io/excludeOutboundPorts": "8444",
}
KONG_SOURCE = "Kong/charts kong-3.2.0 charts/kong (values.yaml, templates/deployment.yaml)"


def kong_selector(release: str, component: str) -> dict[str, str]:
    """kong.selectorLabels: the alias is the chart's name."""
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/component": "app",
        "app.kubernetes.io/instance": release,
    }


def kong_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    gateway_annotations = _merged(KONG_POD_ANNOTATIONS, values, "gateway", "podAnnotations")
    controller_annotations = _merged(
        KONG_POD_ANNOTATIONS | KONG_CONTROLLER_ANNOTATIONS, values, "controller", "podAnnotations"
    )
    proxy = _get(values, "gateway", "proxy", default={}) or {}
    # proxy.http / proxy.tls (enabled: true, servicePort 80 / 443, containerPort 8000 / 8443 by default):
    # a disabled listener is neither a container port nor a Service port (templates/_helpers.tpl).
    listeners = [
        (
            name,
            port_name,
            int(_get(proxy, key, "servicePort", default=service)),
            int(_get(proxy, key, "containerPort", default=container)),
        )
        for key, name, port_name, service, container in (
            ("http", "proxy", "kong-proxy", 80, 8000),
            ("tls", "proxy-tls", "kong-proxy-tls", 443, 8443),
        )
        if _get(proxy, key, "enabled", default=True) is not False
    ]
    return [
        Workload(
            key="kong-gateway",
            namespace=namespace,
            labels=kong_selector(release, "gateway") | _merged({}, values, "gateway", "podLabels"),
            service_account=f"{release}-gateway",
            ports={name: container for name, _, _, container in listeners}
            | {"status": 8100, "admin-tls": 8444},
            annotations=gateway_annotations,
            front=Front(
                f"{release}-gateway-proxy",
                kong_selector(release, "gateway"),
                tuple((port_name, service, container) for _, port_name, service, container in listeners),
            ),
            source=KONG_SOURCE + f"; proxy Service type {proxy.get('type', 'LoadBalancer')}",
        ),
        Workload(
            key="kong-controller",
            namespace=namespace,
            labels=kong_selector(release, "controller") | _merged({}, values, "controller", "podLabels"),
            service_account=f"{release}-controller",
            ports={"webhook": 8080, "cmetrics": 10255, "cstatus": 10254},
            annotations=controller_annotations,
            source=KONG_SOURCE,
        ),
    ]


def prometheus_stack_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    """kube-prometheus-stack: the operator names Prometheus' pods
    (prometheus-operator docs, "Prometheus" StatefulSet labels: app.kubernetes.io/name=prometheus);
    Grafana and kube-state-metrics are its sub-charts (grafana.selectorLabels, ksm selectorLabels)."""
    source = "prometheus-community/helm-charts kube-prometheus-stack 88.5.3"
    return [
        Workload(
            "prometheus",
            namespace,
            {"app.kubernetes.io/name": "prometheus", "prometheus": f"{release}-prometheus"},
            f"{release}-prometheus",
            {"web": 9090},
            front=Front(
                f"{release}-prometheus", {"app": f"{release}-prometheus"}, (("http-web", 9090, 9090),)
            ),
            source=source,
        ),
        Workload(
            "grafana",
            namespace,
            {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": release},
            f"{release}-grafana",
            {"grafana": 3000},
            front=Front(
                f"{release}-grafana", {"app.kubernetes.io/name": "grafana"}, (("http-web", 80, 3000),)
            ),
            source=source + " (grafana sub-chart)",
        ),
        Workload(
            "alertmanager",
            namespace,
            {"app.kubernetes.io/name": "alertmanager", "alertmanager": f"{release}-alertmanager"},
            f"{release}-alertmanager",
            {"http-web": 9093},
            source=source,
        ),
        Workload(
            "kube-state-metrics",
            namespace,
            {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": release},
            f"{release}-kube-state-metrics",
            {"http": 8080},
            source=source + " (kube-state-metrics sub-chart)",
        ),
    ]


def loki_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    """Loki chart, Monolithic mode: the single-binary StatefulSet (loki.singleBinarySelectorLabels)
    and the `loki` Service on 3100."""
    labels = {
        "app.kubernetes.io/name": "loki",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/component": "single-binary",
    }
    return [
        Workload(
            "loki",
            namespace,
            labels,
            str(_get(values, "serviceAccount", "name", default=release)),
            {"http-metrics": 3100, "grpc": 9095, "http-memberlist": 7946},
            front=Front(release, labels, (("http-metrics", 3100, 3100), ("grpc", 9095, 9095))),
            source="grafana-community/helm-charts loki 18.11.0 (single-binary)",
        )
    ]


def tempo_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    """Tempo single-binary chart: HTTP (query API) 3200, OTLP 4317/4318, Zipkin 9411 when its
    receivers are configured (templates/statefulset.yaml, service.yaml)."""
    labels = {"app.kubernetes.io/name": "tempo", "app.kubernetes.io/instance": release}
    ports = {"prom-metrics": 3200, "otlp-grpc": 4317, "otlp-http": 4318, "tempo-zipkin": 9411}
    return [
        Workload(
            "tempo",
            namespace,
            labels,
            release,
            ports,
            front=Front(release, labels, tuple((name, port, port) for name, port in ports.items())),
            source="grafana-community/helm-charts tempo",
        )
    ]


def alloy_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    labels = {"app.kubernetes.io/name": "alloy", "app.kubernetes.io/instance": release}
    return [
        Workload(
            "alloy",
            namespace,
            labels,
            release,
            {"http-metrics": int(_get(values, "alloy", "listenPort", default=12345))},
            source="grafana/alloy operations/helm/charts/alloy 1.11.1",
        )
    ]


def vault_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    """Vault chart: server pods labelled vault.selectorLabels + component=server + server.extraLabels;
    the API port is named after the scheme (`https` unless global.tlsDisable)
    (hashicorp/vault-helm templates/server-statefulset.yaml, _helpers.tpl vault.scheme)."""
    scheme = "http" if _get(values, "global", "tlsDisable", default=True) else "https"
    labels = {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": release, "component": "server"}
    return [
        Workload(
            "vault",
            namespace,
            labels | _merged({}, values, "server", "extraLabels"),
            str(_get(values, "server", "serviceAccount", "name", default=None) or release),
            {scheme: 8200, "https-internal": 8201, "http-rep": 8202},
            annotations=_merged({}, values, "server", "annotations"),
            front=Front(release, {"app.kubernetes.io/name": "vault"}, ((scheme, 8200, 8200),)),
            source="hashicorp/vault-helm 0.34.1",
        )
    ]


def vso_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    return [
        Workload(
            "vault-secrets-operator",
            namespace,
            {
                "control-plane": "controller-manager",
                "app.kubernetes.io/name": "vault-secrets-operator",
                "app.kubernetes.io/instance": release,
            },
            f"{release}-controller-manager",
            {"https": 8443},
            source="hashicorp/vault-secrets-operator chart 1.4.1",
        )
    ]


def cert_manager_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    """cert-manager chart: controller metrics on `http-metrics` 9402, the webhook on 10250
    (templates/deployment.yaml, webhook-deployment.yaml)."""
    return [
        Workload(
            "cert-manager",
            namespace,
            {
                "app.kubernetes.io/name": "cert-manager",
                "app.kubernetes.io/instance": release,
                "app.kubernetes.io/component": "controller",
            },
            release,
            {"http-metrics": 9402, "http-healthz": 9403},
            source="cert-manager chart v1.21.1",
        ),
        Workload(
            "cert-manager-webhook",
            namespace,
            {
                "app.kubernetes.io/name": "webhook",
                "app.kubernetes.io/instance": release,
                "app.kubernetes.io/component": "webhook",
            },
            f"{release}-webhook",
            {"https": 10250},
            source="cert-manager chart v1.21.1",
        ),
    ]


def _one_controller(
    key: str, app: str, ports: Mapping[str, int], *, source: str, account_suffix: str = ""
) -> ChartPods:
    """A chart whose one Deployment carries the recommended labels app.kubernetes.io/name=``app`` and
    /instance=<release>, under the service account <release><account_suffix>."""

    def pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
        labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": release}
        return [Workload(key, namespace, labels, release + account_suffix, dict(ports), source=source)]

    return pods


cnpg_operator_pods = _one_controller(
    "cnpg-operator",
    "cloudnative-pg",
    {"metrics": 8080, "webhook-server": 9443},
    source="cloudnative-pg/charts cloudnative-pg 0.29.0",
    account_suffix="-cloudnative-pg",
)


def istiod_pods(release: str, namespace: str, values: Mapping[str, Any]) -> list[Workload]:
    """istiod chart: pods app=istiod, istio=pilot; the `istiod` Service names 15014 http-monitoring
    (manifests/charts/istio-control/istio-discovery templates/deployment.yaml, service.yaml)."""
    labels = {"app": "istiod", "istio": "pilot"}
    return [
        Workload(
            "istiod",
            namespace,
            labels,
            "istiod",
            {"grpc-xds": 15010, "tls-xds": 15012, "https-webhooks": 15017, "http-monitoring": 15014},
            front=Front(
                "istiod",
                labels,
                (
                    ("grpc-xds", 15010, 15010),
                    ("https-dns", 15012, 15012),
                    ("https-webhook", 443, 15017),
                    ("http-monitoring", 15014, 15014),
                ),
            ),
            source="istio/istio 1.30 istio-discovery chart",
        )
    ]


lb_controller_pods = _one_controller(
    "aws-load-balancer-controller",
    "aws-load-balancer-controller",
    {"webhook-server": 9443, "metrics-server": 8080},
    source="aws/eks-charts aws-load-balancer-controller",
)
karpenter_pods = _one_controller(
    "karpenter", "karpenter", {"http-metrics": 8080}, source="aws/karpenter-provider-aws charts/karpenter"
)


CHARTS: dict[str, ChartPods] = {
    "ingress": kong_pods,
    "kube-prometheus-stack": prometheus_stack_pods,
    "loki": loki_pods,
    "tempo": tempo_pods,
    "alloy": alloy_pods,
    "vault": vault_pods,
    "vault-secrets-operator": vso_pods,
    "cert-manager": cert_manager_pods,
    "cloudnative-pg": cnpg_operator_pods,
    "istiod": istiod_pods,
    "aws-load-balancer-controller": lb_controller_pods,
    "karpenter": karpenter_pods,
}


def chart_name(release: Mapping[str, Any]) -> str:
    """The chart a Release installs (its last path part for OCI references, the name in a mirror's
    `<chart>-<version>.tgz`)."""
    return archive_chart_name(str(release.get("chart") or ""), str(release.get("version") or ""))


# --- operator workloads -------------------------------------------------------------------------


def cnpg_instances(cluster: Mapping[str, Any]) -> Workload:
    """A CloudNativePG Cluster's primary instance: labels per
    https://cloudnative-pg.io/documentation/current/labels_annotations/ (cnpg.io/cluster,
    cnpg.io/podRole=instance, cnpg.io/instanceRole), plus spec.inheritedMetadata; ports postgresql
    5432, metrics 9187, status 8000; the `<cluster>-rw` Service points at the primary
    (https://cloudnative-pg.io/documentation/current/service_management/)."""
    name = cluster["metadata"]["name"]
    inherited = cluster["spec"].get("inheritedMetadata") or {}
    labels = {
        "cnpg.io/cluster": name,
        "cnpg.io/podRole": "instance",
        "cnpg.io/instanceRole": "primary",
        "role": "primary",
        "app.kubernetes.io/name": "postgresql",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "cloudnative-pg",
    } | dict(inherited.get("labels") or {})
    return Workload(
        key=name,
        namespace=cluster["metadata"]["namespace"],
        labels=labels,
        service_account=name,
        ports={"postgresql": 5432, "metrics": 9187, "status": 8000},
        annotations=dict(inherited.get("annotations") or {}),
        front=Front(f"{name}-rw", {"cnpg.io/cluster": name}, (("postgres", 5432, 5432),)),
        role="database",
        source=f"postgresql.cnpg.io/v1 Cluster {name} (CloudNativePG operator)",
    )


def rabbitmq_pods(cluster: Mapping[str, Any]) -> Workload:
    """A RabbitmqCluster's pods and client Service as the cluster operator builds them
    (rabbitmq/cluster-operator internal/resource/statefulset.go, service.go): labels
    app.kubernetes.io/name=<cluster>, component=rabbitmq, part-of=rabbitmq; with TLS the ports
    amqps 5671, management-tls 15671, prometheus-tls 15691, and the plain listeners (amqp 5672,
    management 15672, prometheus 15692) only while spec.tls.disableNonTLSListeners is false
    (https://www.rabbitmq.com/kubernetes/operator/using-operator#tls)."""
    name = cluster["metadata"]["name"]
    spec = cluster.get("spec") or {}
    tls = spec.get("tls") or {}
    ports = {"epmd": 4369, "cluster-links": 25672}
    if tls.get("secretName"):
        ports |= {"amqps": 5671, "management-tls": 15671, "prometheus-tls": 15691}
    if not tls.get("disableNonTLSListeners"):
        ports |= {"amqp": 5672, "management": 15672, "prometheus": 15692}
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "rabbitmq",
        "app.kubernetes.io/part-of": "rabbitmq",
    }
    template = _get(spec, "override", "statefulSet", "spec", "template", "metadata", default={}) or {}
    service_ports = tuple(
        (port_name, port, port)
        for port_name, port in ports.items()
        if port_name not in ("epmd", "cluster-links")
    )
    return Workload(
        key="rabbitmq",
        namespace=cluster["metadata"]["namespace"],
        labels=labels | dict(template.get("labels") or {}),
        service_account=f"{name}-server",
        ports=ports,
        annotations=dict(template.get("annotations") or {}),
        front=Front(name, labels, service_ports),
        role="broker",
        source=f"rabbitmq.com/v1beta1 RabbitmqCluster {name} (cluster operator)",
    )


def rabbitmq_operators(namespace: str) -> list[Workload]:
    """The cluster and messaging-topology operators (their release bundles' Deployments)."""
    return [
        Workload(
            "rabbitmq-cluster-operator",
            namespace,
            {
                "app.kubernetes.io/name": "rabbitmq-cluster-operator",
                "app.kubernetes.io/component": "rabbitmq-operator",
            },
            "rabbitmq-cluster-operator",
            {"metrics": 9782},
            source="rabbitmq/cluster-operator release bundle",
        ),
        Workload(
            "messaging-topology-operator",
            namespace,
            {"app.kubernetes.io/name": "messaging-topology-operator"},
            "messaging-topology-operator",
            {"webhook-server": 9443, "metrics": 8080},
            source="rabbitmq/messaging-topology-operator release bundle",
        ),
    ]


def system_pods() -> list[Workload]:
    """Pods every cluster has in kube-system: cluster DNS (k8s-app=kube-dns, the label CoreDNS keeps
    for compatibility, https://kubernetes.io/docs/tasks/administer-cluster/dns-custom-nameservers/)
    and, standing for any other system pod, one that is not DNS."""
    return [
        Workload(
            "kube-dns",
            "kube-system",
            {"k8s-app": "kube-dns"},
            "coredns",
            {"dns-tcp": 53, "metrics": 9153},
            role="system",
            source="CoreDNS (EKS add-on / kubeadm)",
        ),
        Workload(
            "kube-system-pod",
            "kube-system",
            {"k8s-app": "system-agent"},
            "default",
            {"agent": 53},
            role="system",
            source="any other kube-system pod",
        ),
    ]


# --- the inventory ------------------------------------------------------------------------------


def namespace_labels(plan: Plan) -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = {}
    for resource in plan.of_type(NAMESPACE) + plan.of_type(NAMESPACE_PATCH):
        metadata = resource["inputs"]["metadata"]
        labels.setdefault(metadata["name"], {}).update(metadata.get("labels") or {})
    return labels


def _fronts(plan: Plan) -> list[tuple[str, Mapping[str, Any]]]:
    return [(r["inputs"]["metadata"].get("namespace", ""), r["inputs"]) for r in plan.of_type(SERVICE)]


def deployment_workload(
    deployment: Mapping[str, Any], services: list[tuple[str, Mapping[str, Any]]]
) -> Workload:
    """A Deployment the program declares: its pod template, and the Service selecting it."""
    metadata, template = deployment["metadata"], deployment["spec"]["template"]
    namespace, labels = metadata.get("namespace", "default"), dict(template["metadata"].get("labels") or {})
    ports = {
        p.get("name") or str(p["containerPort"]): int(p["containerPort"])
        for c in template["spec"].get("containers") or []
        for p in c.get("ports") or []
    }
    front = None
    for ns, service in services:
        selector = (service.get("spec") or {}).get("selector")
        if ns == namespace and selector and all(labels.get(k) == v for k, v in selector.items()):
            service_ports = tuple(
                (
                    str(p.get("name") or p["port"]),
                    int(p["port"]),
                    ports.get(str(p.get("targetPort")), p.get("targetPort") or p["port"])
                    if isinstance(p.get("targetPort"), str)
                    else int(p.get("targetPort") or p["port"]),
                )
                for p in service["spec"].get("ports") or []
            )
            front = Front(
                service["metadata"]["name"],
                dict(service["metadata"].get("labels") or {}),
                service_ports,
                dict(service["metadata"].get("annotations") or {}),
            )
            break
    return Workload(
        key=metadata["name"] if metadata["name"] == namespace else f"{namespace}/{metadata['name']}",
        namespace=namespace,
        labels=labels,
        service_account=template["spec"].get("serviceAccountName") or "default",
        ports=ports,
        annotations=dict(template["metadata"].get("annotations") or {}),
        front=front,
        role="service",
        source=f"Deployment {namespace}/{metadata['name']}",
    )


def _declared(plan: Plan) -> Iterator[Workload]:
    services = _fronts(plan)
    for deployment in plan.of_type(DEPLOYMENT):
        yield deployment_workload(deployment["inputs"], services)
    for cluster in plan.of_type(CNPG_CLUSTER):
        yield cnpg_instances(cluster["inputs"])
    for cluster in plan.of_type(RABBITMQ_CLUSTER):
        yield rabbitmq_pods(cluster["inputs"])
    # Both operators run on both targets (components/messaging/broker.py): with Amazon MQ the
    # topology operator configures the broker through its management API.
    if plan.of_type(RABBITMQ_CLUSTER) or plan.of_type("aws:mq/broker:Broker"):
        yield from rabbitmq_operators("rabbitmq-system")
    for release in plan.of_type(RELEASE):
        inputs = release["inputs"]
        build = CHARTS.get(chart_name(inputs))
        if build is not None:
            name = str(inputs.get("name"))
            for workload in build(
                name, str(inputs.get("namespace") or "default"), inputs.get("values") or {}
            ):
                yield replace(workload, release=name)
    yield from system_pods()


def inventory(plan: Plan) -> dict[str, Workload]:
    """Every workload by key, with injection decided and the sidecar's ports added."""
    ns_labels = namespace_labels(plan)
    found: dict[str, Workload] = {}
    for workload in _declared(plan):
        mesh = injected(ns_labels.get(workload.namespace, {}), workload.labels, workload.annotations)
        ports = dict(workload.ports) | (SIDECAR_PORTS if mesh else {})
        found.setdefault(workload.key, replace(workload, ports=ports, injected=mesh))
    return found


def selected(
    workloads: Mapping[str, Workload], namespace: str, selector: Mapping[str, Any] | None
) -> list[Workload]:
    """The workloads of ``namespace`` a LabelSelector selects."""
    return [w for w in workloads.values() if w.namespace == namespace and matches(selector, w.labels)]
