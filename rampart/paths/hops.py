"""One hop of a path through every layer it crosses: pod to pod, pod to an address outside the
cluster's pods, and an outside address to a pod."""

from __future__ import annotations

from rampart.paths.endpoints import Address
from rampart.paths.mesh import Request
from rampart.paths.model import Check, allows, not_applicable, refuses, verdict
from rampart.paths.network import Direction
from rampart.paths.workloads import Workload
from rampart.paths.world import World


def _policy(workload: Workload, rule: str | None, direction: str) -> str:
    """The NetworkPolicy of ``workload`` that lets the traffic through, or that none restricts it."""
    return f"{workload.namespace}/{rule}" if rule else f"{workload.key} {direction} unrestricted"


def network_pod_to_pod(world: World, source: Workload, destination: Workload, port: int) -> Check:
    out, out_rule = world.network.allowing_rule(source.pod, destination.pod, port, "Egress")
    into, in_rule = world.network.allowing_rule(destination.pod, source.pod, port, "Ingress")
    if not out:
        return refuses(
            "network",
            f"no egress NetworkPolicy of {source.namespace} lets {source.key} reach {destination.key}:{port}",
        )
    if not into:
        return refuses(
            "network",
            f"no ingress NetworkPolicy of {destination.namespace} admits {source.key} "
            f"on {destination.key}:{port}",
        )
    return allows(
        "network", f"{_policy(source, out_rule, 'egress')} + {_policy(destination, in_rule, 'ingress')}"
    )


def _network_address(
    world: World, workload: Workload, address: Address, port: int, *, direction: Direction, refusal: str
) -> Check:
    """The NetworkPolicy layer between ``workload`` and an address outside the cluster's pods."""
    ok, rule = world.network.allowing_rule(workload.pod, address, port, direction)
    if not ok:
        return refuses("network", refusal)
    return allows("network", _policy(workload, rule, direction.lower()))


def network_pod_to_address(world: World, source: Workload, address: Address, port: int, what: str) -> Check:
    refusal = (
        f"no egress NetworkPolicy of {source.namespace} lets {source.key} reach {what} ({address.ip}:{port})"
    )
    return _network_address(world, source, address, port, direction="Egress", refusal=refusal)


def network_address_to_pod(
    world: World, address: Address, destination: Workload, port: int, what: str
) -> Check:
    refusal = (
        f"no ingress NetworkPolicy of {destination.namespace} admits {what} ({address.ip}) "
        f"on {destination.key}:{port}"
    )
    return _network_address(world, destination, address, port, direction="Ingress", refusal=refusal)


def security_groups(
    world: World,
    source_groups: frozenset[str],
    destination_groups: frozenset[str],
    port: int,
    *,
    destination_address: Address | None,
    source_address: Address | None,
    what: str,
) -> Check:
    """A connection through AWS security groups. No destination groups: a destination outside the
    VPC's interfaces (the internet), where only the source's outbound rules apply."""
    if not world.groups.enabled:
        return not_applicable("security-groups", "no AWS security groups on this target")
    sent = world.groups.sending_rule(source_groups, destination_groups, port, destination_address)
    if sent is None:
        return refuses(
            "security-groups", f"no outbound rule of {sorted(source_groups)} lets {what} out on {port}"
        )
    if not destination_groups:
        return allows("security-groups", f"{sent.description or 'outbound rule'} lets it out")
    admitted = world.groups.admitting_rule(destination_groups, source_groups, port, source_address)
    if admitted is None:
        return refuses(
            "security-groups", f"no inbound rule of {sorted(destination_groups)} admits {what} on {port}"
        )
    matched = sorted(source_groups & admitted.groups) or list(admitted.cidrs)
    return allows("security-groups", f"{admitted.description or 'inbound rule'} (from {matched})")


def mesh_request(
    world: World, source: Workload | None, destination: Workload, port: int, **http: str | None
) -> Request:
    """The request as the destination's sidecar sees it: the source's identity when the connection is
    Istio mTLS (both ends meshed and both captured)."""
    mtls = (
        source is not None
        and world.mesh.outbound_captured(source, port).allowed
        and world.mesh.inbound_captured(destination, port).allowed
    )
    principal = world.mesh.principal(source) if mtls and source is not None else None
    return Request(
        principal=principal,
        namespace=source.namespace if principal and source else None,
        port=port,
        request_principal=http.get("request_principal"),
        path=http.get("path") or "/",
        method=http.get("method") or "GET",
        host=http.get("host") or "",
    )


def pod_to_pod(
    world: World,
    source: Workload,
    destination: Workload,
    port: int,
    *,
    request_principal: str | None = None,
    path: str = "/",
    host_header: str | None = None,
) -> list[Check]:
    """Every layer between two pods: NetworkPolicy both sides, security groups (aws), the source's
    sidecar (registry, Host routing), the destination's (mTLS, authorization)."""
    checks = [network_pod_to_pod(world, source, destination, port)]
    if world.groups.enabled:
        checks.append(
            security_groups(
                world,
                world.groups.groups_of(source.pod),
                world.groups.groups_of(destination.pod),
                port,
                destination_address=world.pod_address,
                source_address=world.pod_address,
                what=f"{source.key} -> {destination.key}",
            )
        )
    mesh = world.mesh
    if not mesh.installed:
        return checks
    outbound = mesh.outbound_captured(source, port)
    if outbound.allowed:
        registry = mesh.registry_allows(
            source, destination.host or destination.key, port, in_cluster=destination
        )
        checks.append(verdict("mesh-egress", registry.allowed, registry.reason))
        if host_header is not None:
            routed = mesh.routes_host(source, destination, port, host_header)
            checks.append(verdict("mesh-egress", routed.allowed, routed.reason))
    else:
        checks.append(not_applicable("mesh-egress", outbound.reason))
    return checks + inbound(world, source, destination, port, request_principal=request_principal, path=path)


def inbound(
    world: World,
    source: Workload | None,
    destination: Workload,
    port: int,
    *,
    request_principal: str | None = None,
    path: str = "/",
) -> list[Check]:
    """The destination's sidecar: mTLS and authorization, when it intercepts the port."""
    captured = world.mesh.inbound_captured(destination, port)
    if not captured.allowed:
        return [not_applicable("mesh-mtls", captured.reason), not_applicable("mesh-authz", captured.reason)]
    mtls = world.mesh.mtls(source, destination, port, destination.host)
    request = mesh_request(world, source, destination, port, request_principal=request_principal, path=path)
    decision = world.mesh.authorize(destination, request)
    return [
        verdict("mesh-mtls", mtls.allowed, mtls.reason),
        verdict("mesh-authz", decision.allowed, decision.reason),
    ]


def address_to_pod(
    world: World, address: Address, destination: Workload, port: int, what: str
) -> list[Check]:
    """A connection from outside the pods (a client, a load balancer, a node) to a pod."""
    return [
        network_address_to_pod(world, address, destination, port, what),
        *inbound(world, None, destination, port),
    ]


def pod_to_external(
    world: World,
    source: Workload,
    address: Address,
    port: int,
    *,
    host: str,
    groups: frozenset[str] | None,
    what: str,
    registry_port: int | None = None,
) -> list[Check]:
    """A pod to something outside the cluster's pods: NetworkPolicy egress, the sidecar's registry
    (REGISTRY_ONLY), and security groups: both ends' when the destination has groups, the source's
    outbound rules alone for an internet address (empty ``groups``), none for link-local addresses
    such as the metadata endpoint, which security groups do not filter (``groups`` None)."""
    checks = [network_pod_to_address(world, source, address, port, what)]
    if groups is not None and world.groups.enabled:
        checks.append(
            security_groups(
                world,
                world.groups.groups_of(source.pod),
                groups,
                port,
                destination_address=address,
                source_address=world.pod_address,
                what=f"{source.key} -> {what}",
            )
        )
    if world.mesh.installed:
        outbound = world.mesh.outbound_captured(source, registry_port or port)
        if outbound.allowed:
            registry = world.mesh.registry_allows(
                source, host, registry_port or port, address=address.address
            )
            checks.append(verdict("mesh-egress", registry.allowed, registry.reason))
        else:
            checks.append(not_applicable("mesh-egress", outbound.reason))
    return checks
