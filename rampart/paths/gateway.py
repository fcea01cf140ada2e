"""Layer models at the edge: DNS for public hosts, the load balancer in front of Kong, and Kong's
routing (Ingress -> Service), the Host it sends upstream, its TLS and the client address its plugins
see.

Semantics:
- Kong Ingress Controller: an Ingress of its class becomes Kong routes (host, path prefix) to the
  backend Service. With ``ingress.kubernetes.io/service-upstream: "true"`` on the Service, Kong's
  upstream target is the Service's DNS name (``<svc>.<ns>.svc``) instead of the pod endpoints
  (Kong/kubernetes-ingress-controller#365). KIC preserves the client's Host by default; the Ingress
  annotation ``konghq.com/preserve-host: "false"`` sends the upstream's host instead, and with it
  disabled the Service annotation ``konghq.com/host-header`` sets the Host explicitly.
  https://developer.konghq.com/kubernetes-ingress-controller/reference/host-manipulation,
  https://developer.konghq.com/kubernetes-ingress-controller/reference/annotations
- ip-restriction allows or denies by the connection's address as Kong sees it
  (https://developer.konghq.com/plugins/ip-restriction/). Behind an intercepting sidecar that is
  127.0.0.6 (https://istio.io/latest/blog/2021/upcoming-networking-changes/); behind a Kubernetes
  LoadBalancer with externalTrafficPolicy Cluster it is a node address
  (https://kubernetes.io/docs/tasks/access-application-cluster/create-external-load-balancer/#preserving-the-client-source-ip);
  an NLB with ip targets keeps the client address only with ``preserve_client_ip.enabled=true``
  (https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/service/annotations/).
- ``loadBalancerSourceRanges`` limits who reaches the load balancer
  (https://kubernetes.io/docs/concepts/services-networking/service/#aws-nlb-support); an NLB of type
  ``external`` is built by the AWS Load Balancer Controller, which must be installed.
- An NLB the program owns (aws:lb): a listener forwards to a target group, whose targets a
  ``TargetGroupBinding`` registers from a Service's endpoints (AWS Load Balancer Controller,
  https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/targetgroupbinding/targetgroupbinding/).
  Its security group filters clients; a target's group that references it admits its traffic even
  with client IP preservation, which ip targets over TCP keep only with ``preserve_client_ip``
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html,
  https://docs.aws.amazon.com/elasticloadbalancing/latest/network/edit-target-group-attributes.html).
- Route 53: a public host resolves only through a record in its hosted zone, written by Pulumi
  (aws:route53/record) or by external-dns for the hosts of Ingresses in its domain filters
  (https://kubernetes-sigs.github.io/external-dns/latest/docs/tutorials/aws/). An alias record
  answers with the addresses of the resource it names (its DNS name and hosted zone), so the host
  reaches the gateway only if the alias names the gateway's load balancer
  (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-choosing-alias-non-alias.html).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rampart.paths.endpoints import Address
from rampart.paths.model import Check, allows, not_applicable, refuses
from rampart.paths.workloads import Workload
from rampart.paths.world import World

INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
KONG_PLUGIN = "kubernetes:configuration.konghq.com/v1:KongPlugin"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ROUTE53_RECORD = "aws:route53/record:Record"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
TARGET_GROUP_BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
AWS_LB = "service.beta.kubernetes.io/aws-load-balancer"
SIDECAR_INBOUND_SOURCE = "127.0.0.6"
# A documentation address (RFC 5737) standing for an internet client, and a node address.
INTERNET = "198.51.100.23"
NODE = "10.0.0.10"


@dataclass(frozen=True)
class KongRoute:
    namespace: str
    ingress: str
    host: str
    path: str
    service: str
    port: int
    annotations: Mapping[str, str]
    tls_secret: str | None


@dataclass(frozen=True)
class Edge:
    """The program's own NLB in front of Kong: listener -> target group -> TargetGroupBinding ->
    Kong's proxy Service."""

    dns_name: str
    zone_id: str
    internal: bool
    security_groups: frozenset[str]
    listener_port: int
    service_port: int
    preserve_client_ip: bool


def edge(world: World, namespace: str, service: str) -> Edge | None:
    """The NLB whose listener forwards to a target group bound to ``namespace/service``."""
    bindings = [
        b
        for b in world.of_type(TARGET_GROUP_BINDING)
        if b["metadata"].get("namespace") == namespace
        and ((b.get("spec") or {}).get("serviceRef") or {}).get("name") == service
    ]
    groups = {str((g.get("outputs") or {}).get("arn") or ""): g for g in world.plan.of_type(TARGET_GROUP)}
    balancers = {str((b.get("outputs") or {}).get("arn") or ""): b for b in world.plan.of_type(LOAD_BALANCER)}
    for binding in bindings:
        spec = binding.get("spec") or {}
        group = groups.get(str(spec.get("targetGroupARN") or ""))
        if group is None:
            continue
        arn = (group.get("outputs") or {}).get("arn")
        for listener in world.of_type(LISTENER):
            forwards = [
                a
                for a in listener.get("defaultActions") or []
                if a.get("type") == "forward" and a.get("targetGroupArn") == arn
            ]
            balancer = balancers.get(str(listener.get("loadBalancerArn") or ""))
            if not forwards or balancer is None:
                continue
            inputs, outputs = balancer["inputs"], balancer.get("outputs") or {}
            return Edge(
                dns_name=str(outputs.get("dnsName") or ""),
                zone_id=str(outputs.get("zoneId") or ""),
                internal=bool(inputs.get("internal")),
                security_groups=frozenset(inputs.get("securityGroups") or []),
                listener_port=int(listener.get("port") or 0),
                service_port=int((spec.get("serviceRef") or {}).get("port") or 0),
                preserve_client_ip=str(group["inputs"].get("preserveClientIp")).lower() == "true",
            )
    return None


def _host_covers(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host.count(".") == pattern.count(".")
    return pattern == host


def _path_covers(prefix: str, path: str) -> bool:
    """Ingress pathType Prefix: element-wise prefix of the request path."""
    if prefix in ("", "/"):
        return True
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


class Gateway:
    def __init__(self, world: World) -> None:
        self.world = world
        release = world.release("ingress")
        self.installed = release is not None
        values: Mapping[str, Any] = (release or {}).get("values") or {}
        self.namespace = str((release or {}).get("namespace") or "kong")
        self.ingress_class = str(
            ((values.get("controller") or {}).get("ingressController") or {}).get("ingressClass") or "kong"
        )
        self.proxy: Mapping[str, Any] = (values.get("gateway") or {}).get("proxy") or {}
        self.routes = [route for ingress in world.of_type(INGRESS) for route in self._routes(ingress)]
        self.plugins = {
            (p["metadata"].get("namespace"), p["metadata"]["name"]): p for p in world.of_type(KONG_PLUGIN)
        }
        self.certificates = world.of_type(CERTIFICATE)

    def _routes(self, ingress: Mapping[str, Any]) -> list[KongRoute]:
        meta, spec = ingress["metadata"], ingress.get("spec") or {}
        annotations = dict(meta.get("annotations") or {})
        klass = spec.get("ingressClassName") or annotations.get("kubernetes.io/ingress.class")
        if klass != self.ingress_class:
            return []
        tls = spec.get("tls") or []
        found = []
        for rule in spec.get("rules") or []:
            secret = next(
                (t.get("secretName") for t in tls if rule.get("host") in (t.get("hosts") or [])), None
            )
            for entry in (rule.get("http") or {}).get("paths") or []:
                backend = (entry.get("backend") or {}).get("service") or {}
                found.append(
                    KongRoute(
                        namespace=meta.get("namespace", "default"),
                        ingress=meta["name"],
                        host=rule.get("host") or "*",
                        path=entry.get("path") or "/",
                        service=backend.get("name", ""),
                        port=int((backend.get("port") or {}).get("number") or 0),
                        annotations=annotations,
                        tls_secret=secret,
                    )
                )
        return found

    @property
    def workload(self) -> Workload | None:
        return self.world.workload("kong-gateway")

    @property
    def edge(self) -> Edge | None:
        """The program's own NLB bound to Kong's proxy Service (aws)."""
        front = self.workload.front if self.workload is not None else None
        return edge(self.world, self.namespace, front.name) if front is not None else None

    # --- the load balancer ------------------------------------------------------------------------
    def source_ranges(self) -> list[str]:
        return list(self.proxy.get("loadBalancerSourceRanges") or ["0.0.0.0/0"])

    def client(self, allowlist: Sequence[str] = ()) -> tuple[Address | None, str]:
        """An internet client the route must serve: inside the load balancer's source ranges and the
        route's allowlist."""
        ranges = [ipaddress.ip_network(r, strict=False) for r in self.source_ranges()]
        wanted = [ipaddress.ip_network(a, strict=False) for a in allowlist] or [
            ipaddress.ip_network(f"{INTERNET}/32")
        ]
        for allowed in wanted:
            for source in ranges:
                if allowed.version == source.version and allowed.overlaps(source):
                    inner = allowed if allowed.subnet_of(source) else source  # type: ignore[arg-type]
                    hosts = list(inner.hosts()) if inner.num_addresses > 2 else [inner.network_address]
                    return Address(str(hosts[0])), f"client {hosts[0]}"
        if not allowlist:
            first = ranges[0]
            return Address(str(next(first.hosts(), first.network_address))), "client in the source ranges"
        return None, "no address is in both the gateway's source ranges and the route's allowlist"

    def load_balancer(self, client: Address | None) -> Check:
        """Whether the client reaches Kong's proxy: a LoadBalancer Service admitting its address, or
        a NodePort Service (every node's address; ``loadBalancerSourceRanges`` applies to
        LoadBalancers only, https://kubernetes.io/docs/concepts/services-networking/service/#type-nodeport)."""
        found = self.edge if self.world.aws else None
        if self.installed and found is not None:
            return self._edge_admits(found, client)
        return self._service_admits(client)

    def _service_admits(self, client: Address | None) -> Check:
        kind = str(self.proxy.get("type", "LoadBalancer"))
        if not self.installed or kind not in ("LoadBalancer", "NodePort"):
            return refuses("load-balancer", f"Kong's proxy is not exposed (Service type {kind})")
        if client is None:
            return refuses(
                "load-balancer", "no address is in both the source ranges and the route's allowlist"
            )
        if kind == "NodePort":
            return allows("load-balancer", "NodePort Service: every node's address, node ports -> 8000/8443")
        inside = [r for r in self.source_ranges() if client.address in ipaddress.ip_network(r, strict=False)]
        if not inside:
            return refuses(
                "load-balancer", f"{client.ip} is outside loadBalancerSourceRanges {self.source_ranges()}"
            )
        refusal = self._nlb_refusal() if self.world.aws else None
        if refusal is not None:
            return refuses("load-balancer", refusal)
        scheme = "internet-facing NLB" if self.world.aws else "LoadBalancer Service"
        return allows("load-balancer", f"{scheme}, {client.ip} in {inside[0]}, 443 -> 8443")

    def _edge_admits(self, found: Edge, client: Address | None) -> Check:
        if client is None:
            return refuses(
                "load-balancer", "no address is in both the source ranges and the route's allowlist"
            )
        if found.internal:
            return refuses("load-balancer", "the gateway's NLB is internal")
        if found.listener_port != 443:
            return refuses("load-balancer", f"the gateway's NLB listens on {found.listener_port}, not 443")
        rule = self.world.groups.admitting_rule(sorted(found.security_groups), frozenset(), 443, client)
        if rule is None:
            return refuses("load-balancer", f"the NLB's security group does not admit {client.ip} on 443")
        front = self.workload.front if self.workload is not None else None
        via = f"TargetGroupBinding -> {self.namespace}/{front.name if front else '?'}"
        return allows(
            "load-balancer", f"internet-facing NLB, {client.ip} admitted ({rule.description}), {via}"
        )

    def edge_security_groups(self, pod_groups: frozenset[str]) -> Check:
        """The NLB's traffic to Kong's pods: the NLB's outbound rule and the pods' inbound rule."""
        found = self.edge
        if found is None:
            return allows(
                "security-groups",
                "the AWS Load Balancer Controller adds the NLB's rules to its targets' groups",
            )
        groups = self.world.groups
        out = groups.sending_rule(sorted(found.security_groups), pod_groups, 8443, None)
        into = groups.admitting_rule(sorted(pod_groups), found.security_groups, 8443)
        if out is None or into is None:
            side = "the NLB's group sends nothing" if out is None else "Kong's pods' groups admit nothing"
            return refuses("security-groups", f"{side} to 8443 from the NLB")
        return allows("security-groups", f"NLB -> Kong 8443 ({into.description})")

    def _nlb_refusal(self) -> str | None:
        annotations = self.proxy.get("annotations") or {}
        if (
            annotations.get(f"{AWS_LB}-type") == "external"
            and self.world.release("aws-load-balancer-controller") is None
        ):
            return "an `external` NLB needs the AWS Load Balancer Controller, which is not installed"
        if annotations.get(f"{AWS_LB}-scheme", "internal") != "internet-facing":
            return "the NLB is internal (scheme is not internet-facing)"
        return None

    def arriving_address(self, client: Address) -> tuple[Address, str]:
        """The source address of the client's packets at Kong's pod, which its NetworkPolicy sees:
        what the load balancer or kube-proxy leaves of the client address."""
        annotations = self.proxy.get("annotations") or {}
        found = self.edge if self.world.aws else None
        if found is not None:
            if found.preserve_client_ip:
                return client, "the NLB's target group preserves the client address"
            return Address(NODE), "ip targets without preserve_client_ip: Kong sees the NLB's address"
        if self.world.aws:
            ip_targets = annotations.get(f"{AWS_LB}-nlb-target-type") == "ip"
            preserved = "preserve_client_ip.enabled=true" in annotations.get(
                f"{AWS_LB}-target-group-attributes", ""
            )
            if not ip_targets or preserved:
                return client, "the NLB keeps the client address"
            return Address(NODE), "NLB ip targets without preserve_client_ip: Kong sees the NLB's address"
        # Service.spec.externalTrafficPolicy applies to NodePort and LoadBalancer Services; under
        # Cluster (the default) kube-proxy SNATs to the node's address, under Local it forwards to
        # a local endpoint only and keeps the client's (https://kubernetes.io/docs/tutorials/services/source-ip/).
        if self.proxy.get("externalTrafficPolicy") == "Local":
            return client, "externalTrafficPolicy Local keeps the client address"
        return Address(NODE), "externalTrafficPolicy Cluster: kube-proxy SNATs clients to a node address"

    def seen_address(self, client: Address) -> tuple[Address, str]:
        """The address Kong's plugins see for this client: the arriving one, unless Kong's sidecar
        intercepts the proxy port and connects to Kong from 127.0.0.6."""
        gateway = self.workload
        if gateway is not None and self.world.mesh.inbound_captured(gateway, 8443).allowed:
            return Address(
                SIDECAR_INBOUND_SOURCE
            ), "Kong's sidecar intercepts 8443: every client is 127.0.0.6"
        return self.arriving_address(client)

    # --- routing ----------------------------------------------------------------------------------
    def find(self, host: str, path: str) -> KongRoute | None:
        candidates = [r for r in self.routes if _host_covers(r.host, host) and _path_covers(r.path, path)]
        return max(candidates, key=lambda r: len(r.path), default=None)

    def tls(self, route: KongRoute, host: str) -> Check | None:
        """A refusal when the route's host has no certificate (None when it has)."""
        if route.tls_secret is None:
            return refuses(
                "gateway", f"Ingress {route.namespace}/{route.ingress} has no TLS entry for {host}"
            )
        for cert in self.certificates:
            spec = cert.get("spec") or {}
            if (
                cert["metadata"].get("namespace") == route.namespace
                and spec.get("secretName") == route.tls_secret
                and any(_host_covers(name, host) for name in spec.get("dnsNames") or [])
            ):
                return None
        return refuses("gateway", f"no Certificate in {route.namespace} issues {route.tls_secret} for {host}")

    def upstream_host(self, route: KongRoute, backend: Workload, client_host: str) -> tuple[str, str]:
        """The Host header Kong sends to the backend."""
        preserve = route.annotations.get("konghq.com/preserve-host", "true").lower() != "false"
        if preserve:
            return (
                client_host,
                'KIC preserves the client\'s Host by default (no konghq.com/preserve-host: "false")',
            )
        front = backend.front
        annotations = front.annotations if front else {}
        explicit = annotations.get("konghq.com/host-header")
        if explicit:
            return explicit, f"konghq.com/host-header {explicit}"
        if annotations.get("ingress.kubernetes.io/service-upstream", "false").lower() == "true" and front:
            return f"{front.name}.{backend.namespace}.svc:{route.port}", "preserve-host off, service-upstream"
        target = front.target("http") if front else None
        return f"<pod address>:{target or route.port}", "preserve-host off: Kong targets pod addresses"

    def plugin_checks(self, route: KongRoute, seen: Address, why: str) -> list[Check]:
        names = [n.strip() for n in route.annotations.get("konghq.com/plugins", "").split(",") if n.strip()]
        checks: list[Check] = []
        for name in names:
            plugin = self.plugins.get((route.namespace, name))
            if plugin is None:
                checks.append(
                    refuses("gateway", f"KongPlugin {route.namespace}/{name} is referenced but not declared")
                )
                continue
            if plugin.get("plugin") != "ip-restriction":
                continue
            config = plugin.get("config") or {}
            allow = [ipaddress.ip_network(c, strict=False) for c in config.get("allow") or []]
            deny = [ipaddress.ip_network(c, strict=False) for c in config.get("deny") or []]
            ip = seen.address
            if any(ip in n for n in deny if n.version == ip.version) or (
                allow and not any(ip in n for n in allow if n.version == ip.version)
            ):
                checks.append(refuses("gateway", f"ip-restriction {name} refuses {seen.ip} ({why})"))
            else:
                checks.append(allows("gateway", f"ip-restriction admits {seen.ip} ({why})"))
        return checks


def dns(world: World, host: str) -> Check:
    """Whether ``host`` resolves to the gateway's load balancer."""
    if not world.aws:
        return not_applicable(
            "dns", "kubernetes target: the host must resolve to the cluster's load balancer outside the plan"
        )
    kong = Gateway(world)
    front = kong.workload.front if kong.workload is not None else None
    found = edge(world, kong.namespace, front.name) if front is not None else None
    zone = world.config.certificates.hosted_zone_id
    for record in world.of_type(ROUTE53_RECORD):
        if str(record.get("name") or "").rstrip(".") == host:
            return _record_check(record, host, found, zone)
    external_dns = world.release("external-dns")
    if external_dns is not None:
        values = external_dns.get("values") or {}
        filters = values.get("domainFilters") or []
        sources = values.get("sources") or ["service", "ingress"]
        if "ingress" in sources and any(host == f or host.endswith("." + f) for f in filters):
            return allows("dns", f"external-dns publishes Ingress hosts under {filters}")
        return refuses(
            "dns", f"external-dns does not cover {host} (domainFilters {filters}, sources {sources})"
        )
    return refuses("dns", f"no Route 53 record or external-dns publishes {host}")


def _record_check(record: Mapping[str, Any], host: str, found: Edge | None, zone: str | None) -> Check:
    """A record for ``host``: in the stack's hosted zone, answering with the gateway's NLB."""
    if zone is not None and record.get("zoneId") != zone:
        return refuses("dns", f"the record for {host} is in zone {record.get('zoneId')}, not {zone}")
    aliases = record.get("aliases") or []
    targets = [str(a.get("name") or "").rstrip(".") for a in aliases] or [
        str(r).rstrip(".") for r in record.get("records") or []
    ]
    if found is None:
        return refuses("dns", f"Route 53 record {host}: no gateway load balancer in the plan to point at")
    if found.dns_name not in targets:
        return refuses("dns", f"Route 53 record {host} points at {targets}, not the gateway's NLB")
    kind = "alias" if aliases else str(record.get("type"))
    return allows("dns", f"Route 53 {kind} {host} -> the gateway's NLB {found.dns_name}")
