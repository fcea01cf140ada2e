"""Layer model: the Istio service mesh (sidecar mode), read from the plan.

Four questions, each from Istio's documented semantics:
- capture: which of a pod's ports its sidecar intercepts. Inbound: every port unless the pod's
  ``traffic.sidecar.istio.io/includeInboundPorts`` narrows it ("" disables inbound redirection) or
  ``excludeInboundPorts`` removes ports; Envoy's own ports (15090, 15021, 15020) are never redirected.
  Outbound likewise with ``excludeOutboundPorts``.
  https://istio.io/latest/docs/reference/config/annotations/ (traffic.sidecar.istio.io/*),
  https://istio.io/latest/docs/ops/deployment/application-requirements/#ports-used-by-istio
- mTLS: the PeerAuthentication in force for a workload is the workload-selecting one in its namespace,
  else the namespace-wide one, else the mesh-wide one in the root namespace (PERMISSIVE when none);
  ``portLevelMtls`` overrides per port; UNSET inherits. Under STRICT a captured port accepts only
  Istio mTLS, which a client sends when it is injected and its DestinationRule for the host asks for
  ISTIO_MUTUAL or leaves TLS unset (auto mTLS).
  https://istio.io/latest/docs/reference/config/security/peer_authentication/,
  https://istio.io/latest/docs/concepts/security/#peer-authentication
- authorization: DENY policies that match deny; then, when any ALLOW policy applies to the workload,
  the request needs one that matches; an ALLOW policy without rules matches nothing. Policies in the
  root namespace apply to every workload. Within a rule, ``from``, ``to`` and ``when`` are ANDed,
  entries within each are ORed, fields within an entry ANDed, values ORed (``*`` prefix/suffix).
  https://istio.io/latest/docs/reference/config/security/authorization-policy/
- egress: under ``outboundTrafficPolicy: REGISTRY_ONLY`` a sidecar forwards only to hosts in its
  registry: Kubernetes Services exported to its namespace and ServiceEntries exported to it
  (``exportTo``: "." own namespace, "*" all), narrowed by the Sidecar resource that applies to it
  (workload-selecting > namespace default > root namespace default; ``egress.hosts`` "ns/host").
  HTTP is routed by its Host header against the destination's virtual host names; a Host that
  matches none goes to the BlackHole cluster (502).
  https://istio.io/latest/docs/reference/config/istio.mesh.v1alpha1/#MeshConfig-OutboundTrafficPolicy-Mode,
  https://istio.io/latest/docs/reference/config/networking/service-entry/,
  https://istio.io/latest/docs/reference/config/networking/sidecar/,
  https://istio.io/latest/docs/tasks/traffic-management/egress/egress-control/
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rampart.offline.plan import Plan
from rampart.paths.selectors import matches_labels
from rampart.paths.workloads import RELEASE, Workload, chart_name

SECURITY = "kubernetes:security.istio.io/v1"
NETWORKING = "kubernetes:networking.istio.io/v1"
PEER_AUTHENTICATION = f"{SECURITY}:PeerAuthentication"
AUTHORIZATION_POLICY = f"{SECURITY}:AuthorizationPolicy"
REQUEST_AUTHENTICATION = f"{SECURITY}:RequestAuthentication"
SERVICE_ENTRY = f"{NETWORKING}:ServiceEntry"
DESTINATION_RULE = f"{NETWORKING}:DestinationRule"
SIDECAR = f"{NETWORKING}:Sidecar"
TELEMETRY = "kubernetes:telemetry.istio.io/v1:Telemetry"
ENVOY_OWN_PORTS = frozenset({15090, 15021, 15020})
EXPORT_TO = "networking.istio.io/exportTo"


@dataclass(frozen=True)
class Request:
    """What a destination sidecar knows about a request: the peer's mTLS identity (None when the
    connection is not Istio mTLS), the JWT's request principal, and the HTTP attributes."""

    principal: str | None
    namespace: str | None
    port: int
    request_principal: str | None = None
    path: str = "/"
    method: str = "GET"
    host: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def _ports(annotation: str | None) -> set[int] | None:
    if annotation is None:
        return None
    return {int(p) for p in annotation.replace(" ", "").split(",") if p and p != "*" and p.isdigit()}


def value_matches(pattern: str, value: str | None) -> bool:
    """Istio string match: exact, ``*`` alone, ``prefix*`` or ``*suffix``."""
    if value is None:
        return False
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return pattern == value


def _any(patterns: Iterable[str], value: str | None) -> bool:
    return any(value_matches(p, value) for p in patterns)


class Mesh:
    """The mesh as configured in the plan: istiod's mesh config and every Istio object."""

    def __init__(self, plan: Plan) -> None:
        istiod = [r["inputs"] for r in plan.of_type(RELEASE) if chart_name(r["inputs"]) == "istiod"]
        values = (istiod[0].get("values") or {}) if istiod else {}
        self.installed = bool(istiod)
        self.mesh_config: Mapping[str, Any] = values.get("meshConfig") or {}
        self.root_namespace: str = self.mesh_config.get("rootNamespace") or "istio-system"
        self.trust_domain: str = self.mesh_config.get("trustDomain") or "cluster.local"
        mode = (self.mesh_config.get("outboundTrafficPolicy") or {}).get("mode", "ALLOW_ANY")
        self.outbound_mode: str = mode

        def objects(kind: str) -> list[Mapping[str, Any]]:
            return [r["inputs"] for r in plan.of_type(kind)]

        self.peer_authentications = objects(PEER_AUTHENTICATION)
        self.authorization_policies = objects(AUTHORIZATION_POLICY)
        self.request_authentications = objects(REQUEST_AUTHENTICATION)
        self.service_entries = objects(SERVICE_ENTRY)
        self.destination_rules = objects(DESTINATION_RULE)
        self.sidecars = objects(SIDECAR)
        self.telemetries = objects(TELEMETRY)
        # The proof asks about every pair of services: what applies to a workload is looked up once,
        # and a client's DestinationRules only in the namespaces that can hold them.
        self._applying_to: dict[tuple[str, frozenset[tuple[str, str]]], list[Mapping[str, Any]]] = {}
        self._rules_in: dict[str, list[Mapping[str, Any]]] = {}
        for rule in self.destination_rules:
            self._rules_in.setdefault(rule["metadata"].get("namespace"), []).append(rule)

    # --- identity ------------------------------------------------------------------------------
    def principal(self, workload: Workload) -> str | None:
        """The SPIFFE identity an injected workload presents (source.principals spelling)."""
        if not workload.injected:
            return None
        return f"{self.trust_domain}/ns/{workload.namespace}/sa/{workload.service_account}"

    # --- capture -------------------------------------------------------------------------------
    def inbound_captured(self, workload: Workload, port: int) -> Decision:
        if not self.installed or not workload.injected:
            return Decision(False, f"{workload.key} has no sidecar")
        if port in ENVOY_OWN_PORTS:
            return Decision(False, f"port {port} is served by Envoy itself, never redirected")
        include = workload.annotations.get("traffic.sidecar.istio.io/includeInboundPorts")
        included = _ports(include)
        if include is not None and include.strip() != "*" and port not in (included or set()):
            shown = f'"{include}"' if include else '"" (no inbound redirection)'
            return Decision(False, f"{workload.key} sets includeInboundPorts {shown}")
        if port in (
            _ports(workload.annotations.get("traffic.sidecar.istio.io/excludeInboundPorts")) or set()
        ):
            return Decision(False, f"{workload.key} excludes inbound port {port}")
        return Decision(True, f"{workload.key}'s sidecar captures inbound port {port}")

    def outbound_captured(self, workload: Workload, port: int) -> Decision:
        if not self.installed or not workload.injected:
            return Decision(False, f"{workload.key} has no sidecar")
        excluded = _ports(workload.annotations.get("traffic.sidecar.istio.io/excludeOutboundPorts")) or set()
        if port in excluded:
            return Decision(False, f"{workload.key} excludes outbound port {port}")
        return Decision(True, f"{workload.key}'s sidecar captures outbound port {port}")

    # --- peer authentication ---------------------------------------------------------------------
    def mtls_mode(self, workload: Workload, port: int) -> tuple[str, str]:
        """The mTLS mode in force on a workload's port, and the policy that sets it."""

        def applies(policy: Mapping[str, Any], namespace: str, selected: bool) -> bool:
            meta, spec = policy["metadata"], policy.get("spec") or {}
            if meta.get("namespace") != namespace:
                return False
            selector = (spec.get("selector") or {}).get("matchLabels")
            return bool(selector) == selected and (not selected or matches_labels(selector, workload.labels))

        layers = [
            [p for p in self.peer_authentications if applies(p, workload.namespace, True)],
            [p for p in self.peer_authentications if applies(p, workload.namespace, False)],
            [p for p in self.peer_authentications if applies(p, self.root_namespace, False)],
        ]
        for candidates in layers:
            for policy in candidates:
                spec = policy.get("spec") or {}
                name = f"{policy['metadata'].get('namespace')}/{policy['metadata'].get('name')}"
                levels: Mapping[Any, Any] = spec.get("portLevelMtls") or {}
                port_level = levels.get(str(port)) or levels.get(port)
                if spec.get("selector") and port_level and port_level.get("mode", "UNSET") != "UNSET":
                    return port_level["mode"], f"PeerAuthentication {name} port {port}"
                mode = (spec.get("mtls") or {}).get("mode", "UNSET")
                if mode != "UNSET":
                    return mode, f"PeerAuthentication {name}"
        return "PERMISSIVE", "no PeerAuthentication (Istio's default)"

    def client_tls(self, client: Workload, host: str, port: int) -> tuple[str, str]:
        """The TLS mode the client's sidecar uses toward ``host``: its DestinationRule (client
        namespace, then the service's, then the root namespace), else auto mTLS.
        https://istio.io/latest/docs/ops/best-practices/traffic-management/#cross-namespace-configuration"""
        host_namespace = host.split(".")[1] if host.count(".") >= 2 else client.namespace
        for namespace in (client.namespace, host_namespace, self.root_namespace):
            for rule in self._rules_in.get(namespace, ()):
                spec = rule.get("spec") or {}
                if not _host_matches(spec.get("host", ""), host):
                    continue
                if not _exported(rule, namespace, client.namespace, spec.get("exportTo")):
                    continue
                policy = spec.get("trafficPolicy") or {}
                for setting in policy.get("portLevelSettings") or []:
                    if (setting.get("port") or {}).get("number") == port and "tls" in setting:
                        return str(
                            setting["tls"].get("mode", "DISABLE")
                        ), f"DestinationRule {namespace}/{rule['metadata']['name']}"
                if "tls" in policy:
                    return str(
                        policy["tls"].get("mode", "DISABLE")
                    ), f"DestinationRule {namespace}/{rule['metadata']['name']}"
        if self.mesh_config.get("enableAutoMtls", True):
            return "AUTO", "auto mTLS"
        return "DISABLE", "no DestinationRule and auto mTLS off"

    def mtls(self, client: Workload | None, destination: Workload, port: int, host: str | None) -> Decision:
        """Whether the destination's sidecar accepts the connection's transport."""
        captured = self.inbound_captured(destination, port)
        if not captured.allowed:
            return Decision(True, f"not intercepted: {captured.reason}")
        mode, source = self.mtls_mode(destination, port)
        if mode != "STRICT":
            return Decision(True, f"{mode} ({source})")
        who = client.key if client else "the client"
        if client is None or not client.injected:
            return Decision(
                False,
                f"STRICT ({source}) on {destination.key}:{port}, and {who} is not in the mesh: "
                "plaintext is refused",
            )
        out = self.outbound_captured(client, port)
        if not out.allowed:
            return Decision(
                False, f"STRICT ({source}) on {destination.key}:{port}, and {out.reason}: it sends no mTLS"
            )
        tls, tls_source = self.client_tls(client, host or destination.host or "", port)
        if tls in ("ISTIO_MUTUAL", "AUTO"):
            return Decision(True, f"STRICT ({source}); {client.key} sends Istio mTLS ({tls_source})")
        return Decision(False, f"STRICT ({source}), but {tls_source} sets TLS {tls} toward {destination.key}")

    # --- authorization ---------------------------------------------------------------------------
    def _applying(self, workload: Workload) -> list[Mapping[str, Any]]:
        key = (workload.namespace, frozenset(workload.labels.items()))
        if key not in self._applying_to:
            self._applying_to[key] = self._authorizations_of(workload)
        return self._applying_to[key]

    def _authorizations_of(self, workload: Workload) -> list[Mapping[str, Any]]:
        found = []
        for policy in self.authorization_policies:
            namespace = policy["metadata"].get("namespace")
            selector = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels")
            if namespace in (self.root_namespace, workload.namespace) and matches_labels(
                selector, workload.labels
            ):
                found.append(policy)
        return found

    def authorize(self, destination: Workload, request: Request) -> Decision:
        """Whether the destination's sidecar lets the request through (captured ports only)."""
        captured = self.inbound_captured(destination, request.port)
        if not captured.allowed:
            return Decision(True, f"not intercepted: {captured.reason}")
        policies = self._applying(destination)

        def name(policy: Mapping[str, Any]) -> str:
            return f"{policy['metadata'].get('namespace')}/{policy['metadata'].get('name')}"

        for policy in policies:
            spec = policy.get("spec") or {}
            if spec.get("action") == "DENY" and any(
                _rule_matches(r, request, deny=True) for r in spec.get("rules") or []
            ):
                return Decision(False, f"DENY AuthorizationPolicy {name(policy)} matches")
        allows = [p for p in policies if (p.get("spec") or {}).get("action", "ALLOW") == "ALLOW"]
        if not allows:
            return Decision(True, "no ALLOW policy applies")
        for policy in allows:
            if any(
                _rule_matches(r, request, deny=False) for r in (policy.get("spec") or {}).get("rules") or []
            ):
                return Decision(
                    True, f"ALLOW AuthorizationPolicy {name(policy)} admits {request.principal or 'it'}"
                )
        who = request.principal or "a peer without mesh identity"
        return Decision(False, f"no ALLOW policy on {destination.key} admits {who} on port {request.port}")

    def jwt_rules(self, destination: Workload) -> list[Mapping[str, Any]]:
        """The jwtRules of the RequestAuthentications that apply to the workload."""
        rules: list[Mapping[str, Any]] = []
        for policy in self.request_authentications:
            namespace = policy["metadata"].get("namespace")
            selector = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels")
            if namespace in (self.root_namespace, destination.namespace) and matches_labels(
                selector, destination.labels
            ):
                rules.extend((policy.get("spec") or {}).get("jwtRules") or [])
        return rules

    # --- egress ----------------------------------------------------------------------------------
    def sidecar_for(self, workload: Workload) -> Mapping[str, Any] | None:
        def of(namespace: str, selected: bool) -> list[Mapping[str, Any]]:
            found = []
            for sidecar in self.sidecars:
                spec = sidecar.get("spec") or {}
                labels = (spec.get("workloadSelector") or {}).get("labels")
                in_namespace = sidecar["metadata"].get("namespace") == namespace and bool(labels) == selected
                if in_namespace and (not selected or matches_labels(labels, workload.labels)):
                    found.append(sidecar)
            return found

        for candidates in (
            of(workload.namespace, True),
            of(workload.namespace, False),
            of(self.root_namespace, False),
        ):
            if candidates:
                return candidates[0]
        return None

    def _sidecar_allows(self, workload: Workload, host: str, host_namespace: str) -> Decision:
        sidecar = self.sidecar_for(workload)
        if sidecar is None:
            return Decision(True, "no Sidecar resource narrows its egress")
        name = f"{sidecar['metadata'].get('namespace')}/{sidecar['metadata'].get('name')}"
        for listener in (sidecar.get("spec") or {}).get("egress") or []:
            for entry in listener.get("hosts") or []:
                namespace, _, dns = entry.partition("/")
                namespace_ok = (
                    namespace == "*"
                    or (namespace == "." and host_namespace == workload.namespace)
                    or namespace == host_namespace
                )
                if namespace_ok and (dns == "*" or _host_matches(dns, host)):
                    return Decision(True, f"Sidecar {name} lists {entry}")
        return Decision(False, f"Sidecar {name} does not list {host}")

    def registry_allows(  # noqa: PLR0911 - one return per documented case
        self,
        client: Workload,
        host: str,
        port: int,
        *,
        in_cluster: Workload | None = None,
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
    ) -> Decision:
        """Whether the client's sidecar forwards to ``host:port`` (an in-cluster Service when
        ``in_cluster`` names its workload, else an external host, dialled at ``address``). An entry
        with ``addresses`` matches only connections to those blocks (Envoy's listener is on them)."""
        captured = self.outbound_captured(client, port)
        if not captured.allowed:
            return Decision(True, f"not intercepted: {captured.reason}")
        if in_cluster is not None:
            if in_cluster.front is None:
                return Decision(False, f"{in_cluster.key} has no Service: not in the registry")
            exported = _service_exported(in_cluster, client.namespace)
            if not exported:
                return Decision(False, f"{in_cluster.host} is not exported to {client.namespace}")
            narrowed = self._sidecar_allows(client, in_cluster.host or host, in_cluster.namespace)
            if not narrowed.allowed:
                return narrowed
            return Decision(True, f"{in_cluster.host} is a Service in the registry")
        if self.outbound_mode != "REGISTRY_ONLY":
            return Decision(True, f"outboundTrafficPolicy {self.outbound_mode}")
        for entry in self.service_entries:
            spec = entry.get("spec") or {}
            namespace = entry["metadata"].get("namespace", "")
            if not any(_host_matches(h, host) for h in spec.get("hosts") or []):
                continue
            if not any(int(p.get("number", 0)) == port for p in spec.get("ports") or []):
                continue
            blocks = [ipaddress.ip_network(b, strict=False) for b in spec.get("addresses") or []]
            if blocks and address is not None and not any(address in b for b in blocks):
                continue
            if not _exported(entry, namespace, client.namespace, spec.get("exportTo")):
                continue
            narrowed = self._sidecar_allows(client, host, namespace)
            if not narrowed.allowed:
                return narrowed
            return Decision(
                True,
                f"ServiceEntry {namespace}/{entry['metadata'].get('name')} registers {host}:{port} "
                f"for {client.namespace}",
            )
        return Decision(
            False, f"REGISTRY_ONLY: no ServiceEntry exported to {client.namespace} registers {host}:{port}"
        )

    def routes_host(self, client: Workload, destination: Workload, port: int, host_header: str) -> Decision:
        """HTTP from the client's sidecar to a Service port is routed by Host: the names Istio gives
        the Service's virtual host (short name in its own namespace, ``svc.ns``, ``svc.ns.svc``,
        the FQDN, each with and without ``:port``)."""
        captured = self.outbound_captured(client, port)
        if not captured.allowed:
            return Decision(True, f"not intercepted: {captured.reason}")
        if destination.front is None:
            return Decision(False, f"{destination.key} has no Service")
        service, namespace = destination.front.name, destination.namespace
        names = {
            f"{service}.{namespace}",
            f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.cluster.local",
        }
        if client.namespace == namespace:
            names.add(service)
        service_port = next((p for _, p, target in destination.front.ports if target == port), port)
        domains = names | {f"{n}:{service_port}" for n in names}
        if host_header in domains:
            return Decision(True, f"Host {host_header} matches {service}.{namespace}'s virtual host")
        fallback = "BlackHole (502)" if self.outbound_mode == "REGISTRY_ONLY" else "PassthroughCluster"
        return Decision(
            False, f"Host {host_header} matches no virtual host on port {service_port}: {fallback}"
        )

    # --- tracing ---------------------------------------------------------------------------------
    def tracing_provider(self) -> tuple[Mapping[str, Any] | None, str]:
        """The tracing provider a root-namespace Telemetry enables, from meshConfig.extensionProviders.
        https://istio.io/latest/docs/tasks/observability/distributed-tracing/telemetry-api/"""
        providers = {p.get("name"): p for p in self.mesh_config.get("extensionProviders") or []}
        for telemetry in self.telemetries:
            if telemetry["metadata"].get("namespace") != self.root_namespace:
                continue
            for tracing in (telemetry.get("spec") or {}).get("tracing") or []:
                for provider in tracing.get("providers") or []:
                    if provider.get("name") in providers:
                        return providers[
                            provider["name"]
                        ], f"Telemetry {self.root_namespace}/{telemetry['metadata']['name']}"
        return None, "no root-namespace Telemetry enables a configured tracing provider"


def _host_matches(pattern: str, host: str) -> bool:
    """A host name against a pattern: exact, or ``*.suffix``."""
    if pattern.startswith("*"):
        return fnmatch.fnmatchcase(host, pattern)
    return pattern == host


def _exported(
    obj: Mapping[str, Any], namespace: str, client_namespace: str, export_to: Sequence[str] | None
) -> bool:
    """``exportTo``: absent or "*": everywhere; "." the object's namespace; else named namespaces."""
    targets = list(export_to or ["*"])
    return "*" in targets or client_namespace in targets or ("." in targets and namespace == client_namespace)


def _service_exported(workload: Workload, client_namespace: str) -> bool:
    annotation = (workload.front.annotations if workload.front else {}).get(EXPORT_TO)
    if annotation is None:
        return True
    return _exported({}, workload.namespace, client_namespace, [a.strip() for a in annotation.split(",")])


def _fields_match(fields: Mapping[str, Any], values: Mapping[str, str | None]) -> bool | None:
    """Whether each field of a rule's source or operation (``key`` and its negation ``notKey``)
    holds for the request's value of ``key``; None when it has a field the model does not know."""
    checks: list[bool] = []
    known: set[str] = set()
    for key, value in values.items():
        negated = f"not{key[0].upper()}{key[1:]}"
        known |= {key, negated}
        if key in fields:
            checks.append(_any(fields[key], value))
        if negated in fields:
            checks.append(not _any(fields[negated], value))
    if set(fields) - known:
        return None
    return all(checks)


def _source_matches(source: Mapping[str, Any], request: Request) -> bool | None:
    return _fields_match(
        source,
        {
            "principals": request.principal,
            "namespaces": request.namespace,
            "requestPrincipals": request.request_principal,
        },
    )


def _operation_matches(operation: Mapping[str, Any], request: Request) -> bool | None:
    return _fields_match(
        operation,
        {"ports": str(request.port), "paths": request.path, "methods": request.method, "hosts": request.host},
    )


def _rule_matches(rule: Mapping[str, Any], request: Request, *, deny: bool) -> bool:
    """Fields the model does not evaluate (``when``, ipBlocks) count against the request: a DENY
    rule is taken to match, an ALLOW rule not to."""
    if rule.get("when"):
        return deny

    def any_of(entries: list[Mapping[str, Any]] | None, key: str, check: Any) -> bool:
        if not entries:
            return True
        for entry in entries:
            result = check(entry.get(key) or {}, request)
            if result is None:
                return deny
            if result:
                return True
        return False

    return any_of(rule.get("from"), "source", _source_matches) and any_of(
        rule.get("to"), "operation", _operation_matches
    )
