"""What Prometheus scrapes besides the services: the platform components' metrics endpoints, each as a
ServiceMonitor or PodMonitor the monitoring layer creates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from components.certificates import NAMESPACE as CERT_MANAGER_NAMESPACE
from components.certificates import cert_manager as certificates
from components.core import labels
from components.data import OPERATOR_NAMESPACE as CNPG_NAMESPACE
from components.gateway import NAMESPACE as GATEWAY_NAMESPACE
from components.gateway import kong as gateway
from components.mesh import ROOT_NAMESPACE as MESH_ROOT_NAMESPACE
from components.mesh import istio as mesh
from components.messaging import NAMESPACE as MESSAGING_NAMESPACE
from components.messaging import rabbitmq
from components.observability import NAMESPACE
from components.observability import service_objects as objects
from components.secrets import NAMESPACE as VAULT_NAMESPACE


@dataclass(frozen=True)
class ScrapeTarget:
    """A platform component's metrics endpoint."""

    name: str
    kind: Literal["ServiceMonitor", "PodMonitor"]
    # None: any namespace (the layer that runs it decides where).
    namespace: str | None
    selector: Mapping[str, str]
    port_name: str
    port_number: int
    path: str = "/metrics"
    scheme: str | None = None
    params: Mapping[str, Sequence[str]] | None = None
    tls_config: Mapping[str, Any] | None = None
    # Where the monitor object lives: `monitoring`, unless it reads a Secret of the target's namespace.
    home: str = NAMESPACE
    # The in-cluster system the target belongs to when it is not always there (CLOUDNATIVE_PG,
    # IN_CLUSTER_BROKER): on aws neither runs in the cluster, and a monitor (or an alert) that
    # selects nothing only hides that it can never fire.
    only_with: str | None = None
    # True: the monitoring layer writes the NetworkPolicy in the target's namespace that lets
    # Prometheus in on exactly this port (the namespace's default deny refuses it otherwise).
    admit: bool = False

    def spec(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "path": self.path,
            "scheme": self.scheme,
            "params": self.params,
            "tls_config": self.tls_config,
        }
        if self.kind == "ServiceMonitor":
            return objects.service_monitor(
                self.name, self.namespace, self.port_name, selector=self.selector, **options
            )
        return objects.pod_monitor(self.selector, self.namespace, self.port_name, **options)


CLOUDNATIVE_PG = "cloudnative-pg"
IN_CLUSTER_BROKER = "rabbitmq"

# The Vault layer's serving certificate (cert-manager writes the issuing CA as ca.crt).
VAULT_TLS_SECRET = "vault-tls"  # nosec B105 # noqa: S105 - a Secret's name or key, not a credential
VAULT_SERVER_NAME = f"vault.{VAULT_NAMESPACE}.svc"

PLATFORM_TARGETS: tuple[ScrapeTarget, ...] = (
    ScrapeTarget(
        "istiod",
        "ServiceMonitor",
        MESH_ROOT_NAMESPACE,
        {**mesh.ISTIOD_POD_LABELS, "istio": "pilot"},
        "http-monitoring",
        15014,
    ),
    ScrapeTarget("kong", "PodMonitor", GATEWAY_NAMESPACE, gateway.chart_pods("gateway"), "status", 8100),
    ScrapeTarget(
        "cert-manager",
        "PodMonitor",
        CERT_MANAGER_NAMESPACE,
        {labels.NAME: certificates.POD_NAMES["controller"], "app.kubernetes.io/component": "controller"},
        "http-metrics",
        9402,
        admit=True,
    ),
    ScrapeTarget(
        "vault",
        "PodMonitor",
        VAULT_NAMESPACE,
        {labels.NAME: "vault", "component": "server"},
        "https",
        8200,
        path="/v1/sys/metrics",
        scheme="https",
        params={"format": ["prometheus"]},
        tls_config={
            "ca": {"secret": {"name": VAULT_TLS_SECRET, "key": "ca.crt"}},
            "serverName": VAULT_SERVER_NAME,
        },
        home=VAULT_NAMESPACE,
        admit=True,
    ),
    ScrapeTarget(
        "cnpg-operator",
        "PodMonitor",
        CNPG_NAMESPACE,
        {labels.NAME: "cloudnative-pg"},
        "metrics",
        8080,
        only_with=CLOUDNATIVE_PG,
        admit=True,
    ),
    # PostgreSQL instances wherever the data layer puts them: cnpg_collector_up, replication lag.
    ScrapeTarget(
        "cnpg-instances",
        "PodMonitor",
        None,
        {"cnpg.io/podRole": "instance"},
        "metrics",
        9187,
        only_with=CLOUDNATIVE_PG,
        admit=True,
    ),
    # With TLS on (disableNonTLSListeners) the operator exposes the Prometheus plugin only as
    # `prometheus-tls` (15691); 15692 is the plaintext listener it drops.
    # https://www.rabbitmq.com/docs/prometheus#tls,
    # https://www.rabbitmq.com/kubernetes/operator/using-operator#tls
    ScrapeTarget(
        "rabbitmq",
        "ServiceMonitor",
        MESSAGING_NAMESPACE,
        {"app.kubernetes.io/component": "rabbitmq"},
        "prometheus-tls",
        15691,
        scheme="https",
        tls_config={
            "ca": {"secret": {"name": rabbitmq.SERVER_CERTIFICATE, "key": "ca.crt"}},
            "serverName": f"{rabbitmq.CLUSTER_NAME}.{MESSAGING_NAMESPACE}.svc",
        },
        # The CA is a Secret of the broker's namespace: the monitor lives beside it.
        home=MESSAGING_NAMESPACE,
        only_with=IN_CLUSTER_BROKER,
        admit=True,
    ),
)
