"""The paths a stack implies, from its service catalog and its plan: what the platform must carry,
what it must refuse, and how each is walked through the layers.

Must carry: each public route (internet -> gateway -> service), each declared ``calls:`` edge, each
service to its own database and its vhosts, each declared egress host, every monitor's scrape, log
and trace shipping, Grafana's data sources, Vault to each database it manages, the operator to Vault,
the gateway's own inbound (controller -> admin API, load balancer health checks), DNS lookups and the
sidecars' control plane.

Must refuse: every undeclared service pair (network and mesh identity both), every service to
another's database or vhost, non-clients to the broker, the internet to anything but the gateway's
proxy, any pod to the cloud metadata endpoint, monitoring to non-metrics ports, DNS egress to
anything but cluster DNS, Vault and the database operator to services, a service to an external
host it does not declare.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rampart.config.models import Egress, Route, ServiceSpec
from rampart.paths import data, gateway, hops, observability
from rampart.paths.credentials import (
    broker_permission,
    broker_secret,
    database_secret,
    delivery,
    foreign_credentials,
)
from rampart.paths.endpoints import Address
from rampart.paths.model import Check, PathSpec, allows, not_applicable, refuses, verdict
from rampart.paths.workloads import Workload
from rampart.paths.world import World

Evaluator = Callable[[], Iterable[Check]]
METADATA = Address("169.254.169.254")
# Stands for a public host nobody declares.
UNDECLARED_HOST = "unlisted.example.net"
PAIR_LAYERS = frozenset({"network", "mesh-authz"})


@dataclass(frozen=True)
class Path:
    spec: PathSpec
    evaluate: Evaluator


def _missing(what: str) -> Evaluator:
    return lambda: [refuses("network", f"{what} is not in the plan")]


def _loopback_host(host: str) -> bool:
    """Names that resolve to the loopback address wherever they are looked up: localhost, and the
    public wildcard domains that answer 127.0.0.1 (readme.localtest.me, lvh.me)."""
    host = host.lower().rstrip(".")
    return (
        host in ("localhost", "localtest.me", "lvh.me")
        or host.endswith((".localhost", ".localtest.me", ".lvh.me"))
        or host.startswith("127.")
    )


def _key_set(text: str) -> bool:
    """An RFC 7517 JWK Set: a JSON object whose non-empty "keys" list holds keys with a "kty"."""
    try:
        loaded = json.loads(text)
    except ValueError:
        return False
    keys = loaded.get("keys") if isinstance(loaded, dict) else None
    return bool(keys) and isinstance(keys, list) and all(isinstance(k, dict) and k.get("kty") for k in keys)


# --- must carry -----------------------------------------------------------------------------------


def route_path(world: World, kong: gateway.Gateway, service: ServiceSpec, route: Route) -> Path:
    spec = PathSpec("route", "internet", service.name, "carry", f"https://{route.host}{route.path}")

    def evaluate() -> list[Check]:
        client, _ = kong.client(route.ip_allowlist)
        checks = [gateway.dns(world, route.host), kong.load_balancer(client)]
        proxy, backend = kong.workload, world.service(service.name)
        if proxy is None or backend is None or client is None:
            return [*checks, refuses("gateway", "no Kong gateway or backend pods in the plan")]
        checks += _edge(world, proxy, kong.arriving_address(client)[0])
        found = kong.find(route.host, route.path)
        if found is None or found.service != service.name or found.namespace != backend.namespace:
            where = f"{found.namespace}/{found.service}" if found else "nothing"
            message = f"Kong routes {route.host}{route.path} to {where}, not {service.name}"
            return [*checks, refuses("gateway", message)]
        port = (backend.front.target_of(found.port) if backend.front else None) or service.port
        checks += _kong(
            world, kong, found, proxy=proxy, backend=backend, port=port, route=route, client=client
        )
        # A request with a valid token: its request principal is "<iss>/<sub>".
        principal = f"{world.config.jwt.issuer}/client" if route.auth and world.config.jwt else None
        checks += hops.pod_to_pod(world, proxy, backend, port, request_principal=principal, path=route.path)
        return [*checks, jwt_check(world, backend, route)]

    return Path(spec, evaluate)


def _edge(world: World, proxy: Workload, client: Address) -> list[Check]:
    """The client to Kong's TLS listener, through the load balancer: ``client`` is the address its
    packets carry when they reach the pod."""
    checks = hops.address_to_pod(world, client, proxy, 8443, "the client")
    if world.aws:
        checks.append(gateway.Gateway(world).edge_security_groups(world.groups.groups_of(proxy.pod)))
    return checks


def _kong(
    world: World,
    kong: gateway.Gateway,
    found: gateway.KongRoute,
    *,
    proxy: Workload,
    backend: Workload,
    port: int,
    route: Route,
    client: Address,
) -> list[Check]:
    """Kong's part: the host's certificate, its plugins on the address it sees, and the Host it
    sends, which the gateway's own sidecar routes by."""
    checks = [c for c in [kong.tls(found, route.host)] if c is not None]
    seen, why = kong.seen_address(client)
    checks += kong.plugin_checks(found, seen, why)
    host, how = kong.upstream_host(found, backend, route.host)
    if world.mesh.installed and proxy.injected:
        routed = world.mesh.routes_host(proxy, backend, port, host)
        if not routed.allowed:
            return [
                *checks,
                refuses("gateway", f"Kong sends Host {host} ({how}); its sidecar: {routed.reason}"),
            ]
    via = f"Ingress {found.namespace}/{found.ingress} -> {backend.key}:{found.port}"
    return [*checks, allows("gateway", f"{via}, Host {host} ({how})")]


def jwt_check(world: World, backend: Workload, route: Route) -> Check:
    if not route.auth:
        return not_applicable("jwt", "the route needs no token")
    rules = world.mesh.jwt_rules(backend)
    if not rules:
        return refuses("jwt", f"no RequestAuthentication on {backend.key}: tokens are not validated")
    refusal, fetched = _key_sources(rules)
    if refusal is not None:
        return refusal
    issuer = rules[0].get("issuer")
    if not fetched:
        return allows("jwt", f"RequestAuthentication with issuer {issuer}, keys inline (no fetch)")
    istiod = world.workload("istiod")
    if istiod is not None:
        out, _ = world.network.allowing_rule(istiod.pod, Address(gateway.INTERNET), 443, "Egress")
        if not out:
            return refuses("jwt", "istiod may not reach the JWKS endpoint on 443")
    return allows("jwt", f"RequestAuthentication with issuer {issuer}")


def _key_sources(rules: Iterable[Mapping[str, Any]]) -> tuple[Check | None, list[str]]:
    """Where each jwtRule's keys come from, per Istio's jwtRules
    (https://istio.io/latest/docs/reference/config/security/jwt/): an inline ``jwks`` is handed to
    the sidecars as it is, and ``jwksUri`` is then ignored; otherwise istiod fetches ``jwksUri``
    itself (or, with neither, the issuer's OpenID discovery document) from its own pod. A name that
    resolves to the loopback address reaches istiod, not the issuer, and a failed fetch leaves a key
    set that rejects every token. Returns a refusal, or the URIs istiod must fetch."""
    fetched: list[str] = []
    for rule in rules:
        inline = rule.get("jwks")
        if inline is not None:
            if not _key_set(str(inline)):
                return refuses(
                    "jwt", "the inline jwks is not a JSON Web Key Set: every token is rejected"
                ), []
            continue
        issuer = str(rule.get("issuer") or "").rstrip("/")
        uri = str(rule.get("jwksUri") or f"{issuer}/.well-known/openid-configuration")
        host = uri.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        if _loopback_host(host):
            message = f"jwksUri {uri} resolves to the loopback address: istiod fetches keys from itself"
            return refuses("jwt", message), []
        fetched.append(uri)
    return None, fetched


def call_path(world: World, caller: ServiceSpec, callee: ServiceSpec) -> Path:
    spec = PathSpec("call", caller.name, callee.name, "carry", f"port {callee.port}")
    source, destination = world.service(caller.name), world.service(callee.name)
    if source is None or destination is None:
        return Path(spec, _missing(f"{caller.name} or {callee.name}"))
    return Path(spec, lambda: hops.pod_to_pod(world, source, destination, callee.port))


# what -> the service's Secret for it, and the Vault mount its credentials come from.
_CREDENTIALS: dict[str, tuple[Callable[[str], str], str]] = {
    "database": (database_secret, "database"),
    "broker": (broker_secret, "rabbitmq"),
}


def _own_credentials(world: World, service: ServiceSpec, server: data.Server, what: str) -> Check:
    """The service's own credentials for ``server`` (its database or the broker), delivered to its pods."""
    secret, mount = _CREDENTIALS[what]
    return delivery(
        world,
        service=service.name,
        namespace=service.name,
        secret=secret(service.name),
        mount=mount,
        endpoints=[server.host],
        what=what,
    )


def database_path(world: World, service: ServiceSpec, owner: str, *, expect: str) -> Path:
    required = frozenset({"security-groups"} if world.aws else {"network"})
    spec = PathSpec(
        "database",
        service.name,
        f"{owner} database",
        "carry" if expect == "carry" else "refuse",
        f"port {data.POSTGRES_PORT}",
        required if expect == "refuse" else frozenset(),
    )
    source, server = world.service(service.name), data.database(world, owner)
    if source is None or server is None:
        return Path(spec, _missing(f"{service.name} or {owner}'s database"))

    def evaluate() -> list[Check]:
        checks = server_hop(world, source, server, server.port, what=server.name)
        checks.append(data.database_tls(world, owner))
        if expect == "carry":
            checks.append(_own_credentials(world, service, server, "database"))
        else:
            checks.append(
                foreign_credentials(
                    world, source=service.name, owner=owner, path=f"database/creds/{owner}", what="database"
                )
            )
        return checks

    return Path(spec, evaluate)


def vhost_traffic(
    services: list[ServiceSpec], service: ServiceSpec
) -> dict[str, tuple[list[str], list[str]]]:
    """vhost -> (exchanges the service writes there, queues it reads there): a publisher owns a vhost
    with an exchange per published queue; a consumer reads ``<queue>.<consumer>`` in the
    publisher's vhost (components/messaging/topology.py)."""
    publisher = {queue: s.name for s in services for queue in s.queue.publishes}
    traffic: dict[str, tuple[list[str], list[str]]] = {}
    for queue in service.queue.publishes:
        traffic.setdefault(service.name, ([], []))[0].append(queue)
    for queue in service.queue.consumes:
        owner = publisher.get(queue)
        if owner is not None:
            traffic.setdefault(owner, ([], []))[1].append(f"{queue}.{service.name}")
    return traffic


def broker_path(
    world: World, service: ServiceSpec, vhost: str, write: list[str], read: list[str], *, expect: str
) -> Path:
    detail = (
        f"vhost {vhost}"
        + (f", publishes {', '.join(write)}" if write else "")
        + (f", consumes {', '.join(read)}" if read else "")
    )
    spec = PathSpec(
        "vhost",
        service.name,
        f"broker vhost {vhost}",
        "carry" if expect == "carry" else "refuse",
        detail,
        frozenset({"broker-permissions"}) if expect == "refuse" else frozenset(),
    )
    source, server = world.service(service.name), data.broker(world)
    if source is None or server is None:
        return Path(spec, _missing(f"{service.name} or the broker"))

    def evaluate() -> list[Check]:
        checks = broker_hop(world, source, server, server.port)
        checks.append(data.broker_tls(world))
        if expect == "carry":
            checks.append(_own_credentials(world, service, server, "broker"))
        checks.append(broker_permission(world, service=service.name, vhost=vhost, write=write, read=read))
        return checks

    return Path(spec, evaluate)


def server_hop(world: World, source: Workload, server: data.Server, port: int, *, what: str) -> list[Check]:
    """The hop from `source` to a database or the broker, in the cluster or outside it."""
    if server.workload is not None:
        return hops.pod_to_pod(world, source, server.workload, port)
    assert server.address is not None
    return hops.pod_to_external(
        world, source, server.address, port, host=server.host, groups=server.groups, what=what
    )


def broker_hop(world: World, source: Workload, server: data.Server, port: int) -> list[Check]:
    return server_hop(world, source, server, port, what="the broker")


def egress_address(destination: Egress) -> Address:
    """Where the destination's connections go. Its addresses are not in the plan: inside its declared
    block for a private one, else a public one (RFC 5737 documentation range)."""
    if destination.cidr is not None:
        network = ipaddress.ip_network(destination.cidr, strict=False)
        return Address(str(network.network_address + min(25, network.num_addresses - 1)))
    return Address("203.0.113.80")


def egress_path(
    world: World, service: ServiceSpec, destination: Egress, *, expect: str, note: str = ""
) -> Path:
    """The service to one external destination on its port: NetworkPolicy (public addresses, or the
    declared block), the sidecar's registry (REGISTRY_ONLY: a ServiceEntry for the host on that port),
    the pods' security groups on aws."""
    where = f" in {destination.cidr}" if destination.cidr else ""
    refuse = expect == "refuse"
    spec = PathSpec(
        "egress",
        service.name,
        destination.host,
        "refuse" if refuse else "carry",
        f"{destination.protocol} {destination.port}{where}{note}",
        frozenset({"mesh-egress"}) if refuse else frozenset(),
    )
    source = world.service(service.name)
    if source is None:
        return Path(spec, _missing(service.name))
    address = egress_address(destination)
    return Path(
        spec,
        lambda: hops.pod_to_external(
            world,
            source,
            address,
            destination.port,
            host=destination.host,
            groups=frozenset(),
            what=f"{destination.host}:{destination.port}",
        ),
    )


def other_port(destination: Egress, declared: set[tuple[str, int]]) -> Egress:
    """The same destination on a port the service does not declare for it."""
    port = destination.port + 1
    while (destination.host, port) in declared or port > 65535:
        port = port + 1 if port < 65535 else 1
    return destination.model_copy(update={"port": port})


def scrape_path(world: World, target: observability.ScrapeTarget) -> Path:
    spec = PathSpec(
        "scrape", "prometheus", target.name, "carry", f"{target.port_name} {target.path} ({target.monitor})"
    )
    prometheus = world.workload("prometheus")

    def evaluate() -> list[Check]:
        checks = [observability.monitor_selection(world), observability.scrape_config(world, target)]
        if prometheus is None:
            return [*checks, refuses("network", "no Prometheus in the plan")]
        if target.workload is None or target.port is None:
            return checks
        return checks + hops.pod_to_pod(world, prometheus, target.workload, target.port)

    return Path(spec, evaluate)


def log_paths(world: World) -> Iterator[Path]:
    alloy = world.workload("alloy")
    if alloy is None:
        return
    yield Path(
        PathSpec("logs", "every node's pods", "alloy", "carry", "loki.source.kubernetes via the API server"),
        lambda: [
            observability.alloy_tails_pods(world),
            hops.network_pod_to_address(
                world, alloy, api_server(world), 443 if world.aws else 6443, "the API server"
            ),
        ],
    )

    def to_loki() -> list[Check]:
        loki, port, reason = observability.loki_endpoint(world)
        if loki is None or port is None:
            return [refuses("telemetry", reason)]
        return [allows("telemetry", reason), *hops.pod_to_pod(world, alloy, loki, port)]

    yield Path(PathSpec("logs", "alloy", "loki", "carry", "push"), to_loki)


def api_server(world: World) -> Address:
    if world.config.aws is not None:
        import ipaddress  # noqa: PLC0415 - only here

        return Address(str(ipaddress.ip_network(world.config.aws.vpc_cidr).network_address + 20))
    return Address("172.18.0.2")


def trace_paths(world: World) -> Iterator[Path]:
    namespaces = sorted({w.namespace for w in world.workloads.values() if w.injected})
    for namespace in namespaces:
        candidates = sorted(
            (w for w in world.workloads.values() if w.namespace == namespace and w.injected),
            key=lambda w: (w.key != "kong-gateway", w.role != "service", w.key),
        )
        source = candidates[0]
        spec = PathSpec("traces", f"sidecars in {namespace}", "tempo", "carry", f"from {source.key}")

        def evaluate(source: Workload = source) -> list[Check]:
            backend, port, check = observability.tracing(world)
            if backend is None or port is None:
                return [check]
            return [check, *hops.pod_to_pod(world, source, backend, port)]

        yield Path(spec, evaluate)


def datasource_paths(world: World) -> Iterator[Path]:
    grafana = world.workload("grafana")
    if grafana is None:
        return
    for kind, key in (("prometheus", "prometheus"), ("loki", "loki"), ("tempo", "tempo")):
        backend = world.workload(key)
        spec = PathSpec("datasource", "grafana", key, "carry", f"{kind} data source")

        def evaluate(kind: str = kind, backend: Workload | None = backend) -> list[Check]:
            checks = [observability.datasource(world, kind)]
            if backend is None:
                return [*checks, refuses("network", f"no {kind} in the plan")]
            port = {"prometheus": 9090, "loki": 3100, "tempo": 3200}[kind]
            return checks + hops.pod_to_pod(world, grafana, backend, port)

        yield Path(spec, evaluate)


def vault_paths(world: World) -> Iterator[Path]:
    vault = world.workload("vault")
    if vault is None:
        return
    for service in world.config.services:
        if not service.database:
            continue
        server = data.database(world, service.name)
        spec = PathSpec("vault", "vault", f"{service.name} database", "carry", f"port {data.POSTGRES_PORT}")
        if server is None:
            yield Path(spec, _missing(f"{service.name}'s database"))
            continue

        def evaluate(server: data.Server = server, owner: str = service.name) -> list[Check]:
            checks = server_hop(world, vault, server, server.port, what=server.name)
            return [*checks, data.vault_connection_tls(world, owner), data.vault_revocation(world, owner)]

        yield Path(spec, evaluate)
    server = data.broker(world)
    if (
        server is not None
        and server.management_port
        and any(s.queue.publishes or s.queue.consumes for s in world.config.services)
    ):
        yield Path(
            PathSpec("vault", "vault", "broker management API", "carry", f"port {server.management_port}"),
            lambda: broker_hop(world, vault, server, server.management_port or 0),
        )
        # The topology operator creates the vhosts, queues and permissions through the same API.
        topology = world.workload("messaging-topology-operator")
        if topology is not None:
            yield Path(
                PathSpec(
                    "broker",
                    topology.key,
                    "broker management API",
                    "carry",
                    f"port {server.management_port} (topology objects)",
                ),
                lambda: broker_hop(world, topology, server, server.management_port or 0),
            )
    operator = world.workload("vault-secrets-operator")
    if operator is not None:
        yield Path(
            PathSpec("vault", "vault-secrets-operator", "vault", "carry", "port 8200"),
            lambda: hops.pod_to_pod(world, operator, vault, 8200),
        )


def gateway_paths(world: World, kong: gateway.Gateway) -> Iterator[Path]:
    proxy, controller = kong.workload, world.workload("kong-controller")
    if proxy is None:
        return
    if controller is not None:
        yield Path(
            PathSpec(
                "gateway", "kong-controller", "kong-gateway", "carry", "admin API 8444 (configuration pushes)"
            ),
            lambda: hops.pod_to_pod(world, controller, proxy, 8444),
        )
    node = api_server(world)
    yield Path(
        PathSpec("gateway", "load balancer health check", "kong-gateway", "carry", "status 8100"),
        lambda: hops.address_to_pod(world, node, proxy, 8100, "the load balancer's health check"),
    )


def platform_basics(world: World) -> Iterator[Path]:
    dns_server, istiod = world.workload("kube-dns"), world.workload("istiod")
    for service in world.config.services:
        source = world.service(service.name)
        if source is None:
            continue
        if dns_server is not None:
            yield Path(
                PathSpec("dns", service.name, "kube-dns", "carry", "port 53"),
                lambda source=source: [hops.network_pod_to_pod(world, source, dns_server, 53)],  # type: ignore[misc]
            )
        if istiod is not None and source.injected:
            yield Path(
                PathSpec("control-plane", f"{service.name} sidecar", "istiod", "carry", "xDS 15012"),
                lambda source=source: [hops.network_pod_to_pod(world, source, istiod, 15012)],  # type: ignore[misc]
            )


# --- must refuse ----------------------------------------------------------------------------------


def pair_path(world: World, caller: ServiceSpec, callee: ServiceSpec) -> Path:
    spec = PathSpec(
        "pair", caller.name, callee.name, "refuse", f"port {callee.port} (undeclared)", PAIR_LAYERS, 2
    )
    source, destination = world.service(caller.name), world.service(callee.name)
    if source is None or destination is None:
        return Path(spec, _missing(f"{caller.name} or {callee.name}"))
    return Path(spec, lambda: hops.pod_to_pod(world, source, destination, callee.port))


def broker_non_client(world: World, source: Workload, port: int, what: str) -> Path:
    # On aws the broker is outside the cluster: its security group is what must keep strangers out
    # (kube-system's pods have no NetworkPolicy of ours); in the cluster, the broker's NetworkPolicy.
    required = frozenset({"security-groups"} if world.aws else {"network"})
    spec = PathSpec("broker", source.key, f"broker {what}", "refuse", f"port {port} (not a client)", required)
    server = data.broker(world)
    assert server is not None
    return Path(spec, lambda: broker_hop(world, source, server, port))


def internet_paths(world: World, kong: gateway.Gateway) -> Iterator[Path]:
    client = Address(gateway.INTERNET)
    front = kong.workload.front if kong.installed and kong.workload is not None else None
    exposed = {("kong-gateway", target) for _, _, target in (front.ports if front else ())}
    published = (
        ", ".join(f"{port}->{target}" for _, port, target in (front.ports if front else ())) or "nothing"
    )
    targets: list[tuple[Workload, int]] = []
    for workload in sorted(world.workloads.values(), key=lambda w: w.key):
        if workload.role == "system":
            continue
        if workload.key == "kong-gateway":
            # The admin API, the status listener and the plaintext proxy listener (off: only 443 is public).
            targets += [(workload, 8444), (workload, 8100), (workload, 8000)]
            continue
        port = next((p for name, p in workload.ports.items() if name != "http-envoy-prom"), None)
        if port is not None:
            targets.append((workload, port))
    for workload, port in targets:
        spec = PathSpec(
            "internet", "internet", workload.key, "refuse", f"port {port}", frozenset({"load-balancer"})
        )

        def evaluate(workload: Workload = workload, port: int = port) -> list[Check]:
            lb = verdict(
                "load-balancer",
                (workload.key, port) in exposed,
                f"Kong's proxy Service publishes {published}; nothing publishes {workload.key}:{port}",
            )
            return [lb, *hops.address_to_pod(world, client, workload, port, "an internet client")]

        yield Path(spec, evaluate)
    for owner in [s.name for s in world.config.services if s.database]:
        server = data.database(world, owner)
        if server is not None and server.address is not None:
            yield _not_public(
                world,
                client,
                server,
                target=server.name,
                refusal=f"{server.name} is not publicly accessible (isolated subnets)",
            )
    server = data.broker(world)
    if server is not None and server.address is not None:
        yield _not_public(
            world, client, server, target="broker", refusal="the broker is not publicly accessible"
        )


def _not_public(world: World, client: Address, server: data.Server, *, target: str, refusal: str) -> Path:
    """An internet client refused by a database or the broker outside the cluster: no public
    address, and its security groups must not admit the client either."""
    spec = PathSpec(
        "internet", "internet", target, "refuse", f"port {server.port}", frozenset({"load-balancer"})
    )
    return Path(
        spec,
        lambda: [
            refuses("load-balancer", refusal),
            hops.security_groups(
                world,
                frozenset(),
                server.groups,
                server.port,
                destination_address=None,
                source_address=client,
                what="an internet client",
            ),
        ],
    )


def metadata_paths(world: World) -> Iterator[Path]:
    required = frozenset({"imds"} if world.aws else {"network"})
    for workload in sorted(world.workloads.values(), key=lambda w: w.key):
        if workload.role in ("database", "broker") or (workload.namespace == "kube-system" and not world.aws):
            continue
        spec = PathSpec("metadata", workload.key, "cloud metadata", "refuse", "169.254.169.254:80", required)

        def evaluate(workload: Workload = workload) -> list[Check]:
            checks = hops.pod_to_external(
                world, workload, METADATA, 80, host=METADATA.ip, groups=None, what="the metadata endpoint"
            )
            return [*checks, data.imds(world)]

        yield Path(spec, evaluate)


def stray_paths(world: World) -> Iterator[Path]:
    """Platform reach that must stay narrow: monitoring to application ports, DNS egress to anything
    but cluster DNS, Vault and the database operator to services."""
    prometheus, vault, operator = (
        world.workload("prometheus"),
        world.workload("vault"),
        world.workload("cnpg-operator"),
    )
    other = world.workload("kube-system-pod")
    for service in world.config.services:
        target = world.service(service.name)
        if target is None:
            continue
        for name, source in (("prometheus", prometheus), ("vault", vault), ("cnpg-operator", operator)):
            if source is None:
                continue
            yield Path(
                PathSpec(
                    "stray",
                    name,
                    service.name,
                    "refuse",
                    f"application port {service.port}",
                    frozenset({"network"}),
                ),
                lambda source=source, target=target, port=service.port: hops.pod_to_pod(
                    world, source, target, port
                ),  # type: ignore[misc]
            )
        if other is not None:
            yield Path(
                PathSpec(
                    "stray",
                    service.name,
                    "kube-system (not DNS)",
                    "refuse",
                    "port 53",
                    frozenset({"network"}),
                ),
                lambda target=target: [hops.network_pod_to_pod(world, target, other, 53)],  # type: ignore[misc]
            )


# --- all of them ----------------------------------------------------------------------------------


def paths(world: World) -> list[Path]:
    services = list(world.config.services)
    by_name = {s.name: s for s in services}
    kong = gateway.Gateway(world)
    found: list[Path] = []
    for service in services:
        found += [route_path(world, kong, service, route) for route in service.routes]
    found += [call_path(world, s, by_name[c]) for s in services for c in s.calls if c in by_name]
    for service in services:
        if service.database:
            found.append(database_path(world, service, service.name, expect="carry"))
        for vhost, (write, read) in vhost_traffic(services, service).items():
            found.append(broker_path(world, service, vhost, write, read, expect="carry"))
        found += [egress_path(world, service, d, expect="carry") for d in dict.fromkeys(service.egress)]
    found += [scrape_path(world, target) for target in observability.scrape_targets(world)]
    found += list(log_paths(world)) + list(trace_paths(world)) + list(datasource_paths(world))
    found += list(vault_paths(world)) + list(gateway_paths(world, kong)) + list(platform_basics(world))
    # Must refuse.
    found += [
        pair_path(world, a, b)
        for a in services
        for b in services
        if a.name != b.name and b.name not in a.calls
    ]
    owners = [s.name for s in services if s.database]
    found += [
        database_path(world, s, owner, expect="refuse")
        for s in services
        for owner in owners
        if owner != s.name
    ]
    found += list(_broker_refusals(world, services))
    # Another service's destination (as that service declares it), or a host nobody declares.
    others = {(d.host, d.port): d for s in services for d in s.egress} | {
        (UNDECLARED_HOST, 443): Egress(host=UNDECLARED_HOST)
    }
    for s in services:
        own = {(d.host, d.port) for d in s.egress}
        found += [
            egress_path(world, s, destination, expect="refuse")
            for key, destination in sorted(others.items())
            if key not in own and destination.host not in {host for host, _ in own}
        ]
        # Its own destinations on a port it does not declare for them.
        found += [
            egress_path(world, s, other_port(d, own), expect="refuse", note=" (undeclared port)")
            for d in dict.fromkeys(s.egress)
        ]
    found += list(internet_paths(world, kong)) + list(metadata_paths(world)) + list(stray_paths(world))
    return found


def _broker_refusals(world: World, services: list[ServiceSpec]) -> Iterator[Path]:
    server = data.broker(world)
    if server is None:
        return
    clients = {s.name for s in services if s.queue.publishes or s.queue.consumes}
    vhosts = sorted({s.name for s in services if s.queue.publishes})
    for service in services:
        if service.name not in clients:
            continue
        mine = vhost_traffic(services, service)
        for vhost in vhosts:
            if vhost not in mine:
                yield broker_path(world, service, vhost, [], [], expect="refuse")
    sources = [w for s in services if s.name not in clients and (w := world.service(s.name)) is not None]
    sources += [
        w
        for key in (
            "prometheus",
            "grafana",
            "kong-gateway",
            "alloy",
            "cert-manager",
            "vault",
            "kube-dns",
            "kube-system-pod",
            "karpenter",
        )
        if (w := world.workload(key)) is not None
    ]
    for source in sources:
        yield broker_non_client(world, source, server.port, "AMQPS")
    if server.management_port:
        # Its clients are Vault's RabbitMQ engine and the topology operator: no service, no other pod.
        others = [w for w in sources if w.key != "vault"]
        for client in [w for s in services if (w := world.service(s.name)) is not None] + others:
            yield broker_non_client(world, client, server.management_port, "management API")
