"""The path proof (rampart/paths): each layer model on small hand-made plan fragments, each with a
mutation that flips its verdict; mutations of a real stack's plan that flip exactly the affected
verdicts; every stack against the list of known defects; random catalogs (hypothesis) keeping
carried = declared and refused = the rest for the layers that are already right; the CLI."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rampart.config import PlatformConfig
from rampart.config.models import Database, Egress, Queues, Route
from rampart.offline.plan import Plan
from rampart.paths import catalog, credentials, gateway, observability, prove
from rampart.paths.endpoints import Address, Pod
from rampart.paths.mesh import Mesh, Request
from rampart.paths.model import Check, PathResult, PathSpec, Proof
from rampart.paths.network import Network
from rampart.paths.security_groups import SecurityGroups
from rampart.paths.workloads import RELEASE, Workload, chart_name, inventory
from rampart.paths.world import World
from tests.conftest import planned, stack_config
from tests.support.harness import platform_plan
from tests.support.reference import PROJECT_ROOT
from tests.support.reference import helm_values as helm_values_dir

RAMPART = str(Path(sys.executable).parent / "rampart")

# --- plan fragments -------------------------------------------------------------------------------


def res(
    type_: str, inputs: dict[str, Any], *, id_: str | None = None, outputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    name = inputs.get("metadata", {}).get("name") or inputs.get("name") or id_ or "x"
    return {
        "type": type_,
        "urn": f"urn:pulumi:test::rampart::{type_}::{name}",
        "custom": True,
        "id": id_ or name,
        "inputs": inputs,
        "outputs": outputs or {},
        "dependencies": [],
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return res("kubernetes:core/v1:Namespace", {"metadata": {"name": name, "labels": labels}})


def netpol(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return res(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        {"metadata": {"namespace": ns, "name": name}, "spec": spec},
    )


def istio(kind: str, ns: str, name: str, spec: dict[str, Any], api: str = "security") -> dict[str, Any]:
    return res(
        f"kubernetes:{api}.istio.io/v1:{kind}", {"metadata": {"namespace": ns, "name": name}, "spec": spec}
    )


def deployment(ns: str, name: str, port: int = 8080, **template: Any) -> dict[str, Any]:
    spec = {
        "serviceAccountName": name,
        "containers": [{"name": name, "ports": [{"name": "http", "containerPort": port}]}],
    }
    spec.update(template.get("spec", {}))
    return res(
        "kubernetes:apps/v1:Deployment",
        {
            "metadata": {"namespace": ns, "name": name},
            "spec": {
                "template": {
                    "metadata": {
                        "labels": {"app.kubernetes.io/name": name},
                        "annotations": template.get("annotations", {}),
                    },
                    "spec": spec,
                }
            },
        },
    )


def service(
    ns: str, name: str, port: int = 8080, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return res(
        "kubernetes:core/v1:Service",
        {
            "metadata": {"namespace": ns, "name": name, "annotations": annotations or {}},
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "http", "port": port, "targetPort": "http"}],
            },
        },
    )


def fragment(*resources: dict[str, Any]) -> Plan:
    return Plan("rampart", "test", list(resources))


def istiod(mesh_config: dict[str, Any] | None = None) -> dict[str, Any]:
    config = {
        "rootNamespace": "istio-system",
        "trustDomain": "cluster.local",
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
    }
    return res(
        "kubernetes:helm.sh/v3:Release",
        {
            "name": "istiod",
            "chart": "istiod",
            "namespace": "istio-system",
            "values": {"meshConfig": config | (mesh_config or {})},
        },
    )


def without(plan: Plan, predicate: Callable[[dict[str, Any]], bool]) -> Plan:
    return Plan(plan.project, plan.stack, [r for r in plan.resources if not predicate(r)])


def workload(
    ns: str, name: str, *, injected: bool = True, annotations: dict[str, str] | None = None
) -> Workload:
    return Workload(
        name, ns, {"app.kubernetes.io/name": name}, name, {"http": 8080}, annotations or {}, injected=injected
    )


# --- NetworkPolicy --------------------------------------------------------------------------------

DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def two_services() -> list[dict[str, Any]]:
    a_to_b = {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "a"}},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "b"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        ],
    }
    b_from_a = {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "b"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "a"}}}],
                "ports": [{"protocol": "TCP", "port": "http"}],
            }
        ],
    }
    return [
        namespace("a"),
        namespace("b"),
        netpol("a", "deny", DENY_ALL),
        netpol("b", "deny", DENY_ALL),
        netpol("a", "to-b", a_to_b),
        netpol("b", "from-a", b_from_a),
    ]


def test_network_policy_needs_both_sides_and_a_dropped_rule_flips_it() -> None:
    a, b = (
        Pod("a", {"app.kubernetes.io/name": "a"}),
        Pod("b", {"app.kubernetes.io/name": "b"}, ports={"http": 8080}),
    )
    plan = fragment(*two_services())
    assert Network(plan).pod_to_pod(a, b, 8080)
    assert not Network(plan).pod_to_pod(a, b, 9090)
    assert not Network(plan).pod_to_pod(b, a, 8080)
    # Drop the ingress rule (by its named port): the egress side alone does not open the path.
    dropped = without(plan, lambda r: r["inputs"].get("metadata", {}).get("name") == "from-a")
    assert not Network(dropped).pod_to_pod(a, b, 8080)
    # A named port matches only the destination's container port of that name.
    assert not Network(plan).pod_to_pod(
        a, Pod("b", {"app.kubernetes.io/name": "b"}, ports={"http": 9000}), 8080
    )


def test_ip_blocks_match_pods_only_when_a_private_address_is_left() -> None:
    public_only = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "ipBlock": {
                            "cidr": "0.0.0.0/0",
                            "except": [
                                "10.0.0.0/8",
                                "172.16.0.0/12",
                                "192.168.0.0/16",
                                "100.64.0.0/10",
                                "169.254.0.0/16",
                            ],
                        }
                    }
                ],
                "ports": [{"port": 443}],
            }
        ],
    }
    plan = fragment(
        namespace("a"), namespace("b"), netpol("a", "deny", DENY_ALL), netpol("a", "public", public_only)
    )
    network, a, b = Network(plan), Pod("a", {}), Pod("b", {})
    assert not network.pod_to_pod(a, b, 443)
    assert network.pod_to_address(a, Address("203.0.113.9"), 443)
    assert not network.pod_to_address(a, Address("169.254.169.254"), 443)
    # Mutation: drop one exception and in-cluster pods in that range become reachable.
    public_only["egress"][0]["to"][0]["ipBlock"]["except"].remove("10.0.0.0/8")
    assert Network(plan).pod_to_pod(a, b, 443)


# --- security groups for pods ---------------------------------------------------------------------


def sg_fragment(admit: bool) -> Plan:
    database = {
        "ingress": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-pods"]}]
        if admit
        else [],
        "egress": [],
    }
    return fragment(
        res("aws:ec2/securityGroup:SecurityGroup", {}, id_="sg-pods"),
        res("aws:ec2/securityGroup:SecurityGroup", database, id_="sg-db"),
        res(
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
            {
                "securityGroupId": "sg-pods",
                "referencedSecurityGroupId": "sg-db",
                "fromPort": 5432,
                "toPort": 5432,
                "ipProtocol": "tcp",
            },
            id_="out",
        ),
        res(
            "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy",
            {
                "metadata": {"namespace": "a", "name": "a"},
                "spec": {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "a"}},
                    "securityGroups": {"groupIds": ["sg-pods"]},
                },
            },
        ),
        res(
            "aws:eks/cluster:Cluster",
            {},
            id_="eks",
            outputs={"vpcConfig": {"clusterSecurityGroupId": "sg-cluster"}},
        ),
    )


def test_security_groups_for_pods_and_a_dropped_inbound_rule() -> None:
    groups = SecurityGroups(sg_fragment(admit=True))
    owner, stranger = Pod("a", {"app.kubernetes.io/name": "a"}), Pod("b", {"app.kubernetes.io/name": "b"})
    assert groups.groups_of(owner) == {"sg-pods"}
    # A pod no SecurityGroupPolicy selects carries its node's group: the cluster group.
    assert groups.groups_of(stranger) == {"sg-cluster"}
    db = Address("10.0.0.50")
    assert groups.sending_rule(groups.groups_of(owner), frozenset({"sg-db"}), 5432, db) is not None
    assert groups.admitting_rule({"sg-db"}, groups.groups_of(owner), 5432) is not None
    assert groups.admitting_rule({"sg-db"}, groups.groups_of(stranger), 5432) is None
    # The cluster group admits what carries it and sends anywhere (EKS's own rules).
    assert groups.admitting_rule({"sg-cluster"}, frozenset({"sg-cluster"}), 8080) is not None
    assert (
        SecurityGroups(sg_fragment(admit=False)).admitting_rule({"sg-db"}, frozenset({"sg-pods"}), 5432)
        is None
    )


# --- Istio ----------------------------------------------------------------------------------------

A, B, C = "cluster.local/ns/a/sa/a", "cluster.local/ns/b/sa/b", "cluster.local/ns/c/sa/c"


def mesh_fragment(principals: list[str], *extra: dict[str, Any]) -> Mesh:
    return Mesh(
        fragment(
            istiod(),
            istio("PeerAuthentication", "istio-system", "default", {"mtls": {"mode": "STRICT"}}),
            istio("AuthorizationPolicy", "istio-system", "allow-nothing", {}),
            istio(
                "AuthorizationPolicy",
                "target",
                "allow-callers",
                {
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "target"}},
                    "action": "ALLOW",
                    "rules": [
                        {
                            "from": [{"source": {"principals": principals}}],
                            "to": [{"operation": {"ports": ["8080"]}}],
                        }
                    ],
                },
            ),
            *extra,
        )
    )


def test_authorization_policy_admits_exactly_its_principals() -> None:
    target = workload("target", "target")
    mesh = mesh_fragment([A, B])
    assert mesh.authorize(target, Request(A, "a", 8080)).allowed
    assert mesh.authorize(target, Request(B, "b", 8080)).allowed
    assert not mesh.authorize(target, Request(C, "c", 8080)).allowed
    assert not mesh.authorize(target, Request(A, "a", 9090)).allowed
    assert not mesh.authorize(target, Request(None, None, 8080)).allowed
    # Mutation: drop one principal and exactly that caller is refused.
    dropped = mesh_fragment([A])
    assert dropped.authorize(target, Request(A, "a", 8080)).allowed
    assert not dropped.authorize(target, Request(B, "b", 8080)).allowed


def test_deny_policies_win_and_allow_nothing_refuses_everyone() -> None:
    target = workload("target", "target")
    deny = istio(
        "AuthorizationPolicy",
        "target",
        "require-jwt",
        {
            "action": "DENY",
            "rules": [{"from": [{"source": {"principals": [A], "notRequestPrincipals": ["*"]}}]}],
        },
    )
    mesh = mesh_fragment([A], deny)
    assert not mesh.authorize(target, Request(A, "a", 8080)).allowed
    assert mesh.authorize(target, Request(A, "a", 8080, request_principal="https://issuer/sub")).allowed
    other = workload("other", "other")
    assert not mesh.authorize(other, Request(A, "a", 8080)).allowed


def test_strict_mtls_refuses_plaintext_unless_the_port_is_not_captured() -> None:
    mesh = mesh_fragment([A])
    client, target = workload("a", "a"), workload("target", "target")
    assert mesh.mtls(client, target, 8080, "target.target.svc.cluster.local").allowed
    outside = workload("a", "a", injected=False)
    assert not mesh.mtls(outside, target, 8080, None).allowed
    # Envoy's own Prometheus port is never captured: a plain scrape reaches it.
    assert mesh.mtls(outside, target, 15090, None).allowed
    # includeInboundPorts "" (the Kong chart's default) turns inbound capture off.
    uncaptured = workload(
        "target", "target", annotations={"traffic.sidecar.istio.io/includeInboundPorts": ""}
    )
    assert mesh.mtls(outside, uncaptured, 8080, None).allowed
    assert mesh.authorize(uncaptured, Request(None, None, 8080)).allowed
    # A DestinationRule that turns TLS off toward a STRICT workload breaks the call.
    disabled = mesh_fragment(
        [A],
        istio(
            "DestinationRule",
            "a",
            "plain",
            {"host": "target.target.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
            "networking",
        ),
    )
    assert not disabled.mtls(client, target, 8080, "target.target.svc.cluster.local").allowed


def test_registry_only_needs_a_service_entry_exported_to_the_caller() -> None:
    entry = istio(
        "ServiceEntry",
        "a",
        "stripe",
        {
            "hosts": ["api.stripe.com"],
            "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
            "exportTo": ["."],
        },
        "networking",
    )
    mesh = mesh_fragment([], entry)
    assert mesh.registry_allows(workload("a", "a"), "api.stripe.com", 443).allowed
    assert not mesh.registry_allows(workload("b", "b"), "api.stripe.com", 443).allowed
    assert not mesh.registry_allows(workload("a", "a"), "api.stripe.com", 8443).allowed
    assert not mesh_fragment([]).registry_allows(workload("a", "a"), "api.stripe.com", 443).allowed
    # A Sidecar resource narrows the namespace's egress further: "./*" keeps what the namespace
    # declares itself; naming only istio-system drops the entry.
    own = istio("Sidecar", "a", "default", {"egress": [{"hosts": ["./*"]}]}, "networking")
    assert mesh_fragment([], entry, own).registry_allows(workload("a", "a"), "api.stripe.com", 443).allowed
    sidecar = istio("Sidecar", "a", "default", {"egress": [{"hosts": ["istio-system/*"]}]}, "networking")
    assert (
        not mesh_fragment([], entry, sidecar)
        .registry_allows(workload("a", "a"), "api.stripe.com", 443)
        .allowed
    )


def test_http_is_routed_by_host_against_the_service_names() -> None:
    mesh = mesh_fragment([])
    backend = Workload(
        "orders", "orders", {}, "orders", {"http": 8080}, front=gateway_front("orders"), injected=True
    )
    kong = workload("kong", "kong-gateway")
    assert mesh.routes_host(kong, backend, 8080, "orders.orders.svc:8080").allowed
    assert mesh.routes_host(kong, backend, 8080, "orders.orders.svc.cluster.local").allowed
    refused = mesh.routes_host(kong, backend, 8080, "api.example.com")
    assert not refused.allowed and "502" in refused.reason


def gateway_front(name: str, annotations: dict[str, str] | None = None) -> Any:
    from rampart.paths.workloads import Front

    return Front(name, {"app.kubernetes.io/name": name}, (("http", 8080, 8080),), annotations or {})


# --- Kong: routing, Host, client address ----------------------------------------------------------


def kong_world(
    *, ingress_annotations: dict[str, str] | None = None, service_annotations: dict[str, str] | None = None
) -> World:
    annotations = {"konghq.com/plugins": "ip"} | (ingress_annotations or {})
    ingress = res(
        "kubernetes:networking.k8s.io/v1:Ingress",
        {
            "metadata": {"namespace": "orders", "name": "orders-route-0", "annotations": annotations},
            "spec": {
                "ingressClassName": "kong",
                "tls": [{"hosts": ["api.example.com"], "secretName": "orders-tls"}],
                "rules": [
                    {
                        "host": "api.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/orders",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "orders", "port": {"number": 8080}}},
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    plan = fragment(
        namespace("kong", **{"istio-injection": "enabled"}),
        namespace("orders", **{"istio-injection": "enabled"}),
        istiod(),
        res(
            "kubernetes:helm.sh/v3:Release",
            {
                "name": "kong",
                "chart": "ingress",
                "namespace": "kong",
                "values": {
                    "gateway": {"proxy": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["0.0.0.0/0"]}}
                },
            },
        ),
        deployment("orders", "orders"),
        service(
            "orders",
            "orders",
            annotations={"ingress.kubernetes.io/service-upstream": "true"} | (service_annotations or {}),
        ),
        ingress,
        res(
            "kubernetes:configuration.konghq.com/v1:KongPlugin",
            {
                "metadata": {"namespace": "orders", "name": "ip"},
                "plugin": "ip-restriction",
                "config": {"allow": ["198.51.100.0/24"]},
            },
        ),
        res(
            "kubernetes:cert-manager.io/v1:Certificate",
            {
                "metadata": {"namespace": "orders", "name": "orders-tls"},
                "spec": {"secretName": "orders-tls", "dnsNames": ["api.example.com"]},
            },
        ),
    )
    return World(plan, stack_config("local"))


def sent_host(world: World) -> tuple[str, bool]:
    kong = gateway.Gateway(world)
    route = kong.find("api.example.com", "/orders")
    assert route is not None
    backend = world.service("orders")
    assert backend is not None and kong.workload is not None
    host, _ = kong.upstream_host(route, backend, "api.example.com")
    return host, world.mesh.routes_host(kong.workload, backend, 8080, host).allowed


def test_kong_keeps_the_client_host_unless_preserve_host_is_off() -> None:
    # KIC's default: the client's Host reaches the gateway's sidecar, which has no such virtual host.
    assert sent_host(kong_world()) == ("api.example.com", False)
    # Mutation: preserve-host "false" with service-upstream sends the Service's in-mesh name.
    assert sent_host(kong_world(ingress_annotations={"konghq.com/preserve-host": "false"})) == (
        "orders.orders.svc:8080",
        True,
    )
    # host-header alone does not win over preserve-host (KIC: disable preserve-host, then set it).
    explicit = {"konghq.com/host-header": "orders.orders.svc.cluster.local"}
    assert sent_host(kong_world(service_annotations=explicit))[1] is False
    both = kong_world(ingress_annotations={"konghq.com/preserve-host": "false"}, service_annotations=explicit)
    assert sent_host(both) == ("orders.orders.svc.cluster.local", True)


def test_ip_restriction_sees_the_address_that_reaches_kong() -> None:
    world = kong_world()
    kong = gateway.Gateway(world)
    route = kong.find("api.example.com", "/orders")
    assert route is not None and kong.workload is not None
    client, _ = kong.client(["198.51.100.0/24"])
    assert client is not None
    # Locally (externalTrafficPolicy Cluster) Kong sees a node address: the allowlist refuses.
    seen, why = kong.seen_address(client)
    assert [c.verdict for c in kong.plugin_checks(route, seen, why)] == ["refuses"]
    assert [c.verdict for c in kong.plugin_checks(route, client, "kept")] == ["allows"]
    # Kong's chart turns inbound capture off; were the sidecar to capture 8443, every client would
    # be 127.0.0.6.
    assert kong.workload.annotations["traffic.sidecar.istio.io/includeInboundPorts"] == ""


NLB_DNS = "gw-0123456789abcdef.elb.us-east-1.amazonaws.com"


def edge_resources(*, preserve: bool = True, admit: str = "0.0.0.0/0") -> list[dict[str, Any]]:
    """The program's own NLB in front of Kong (components/gateway/edge_aws.py), as a plan holds it."""
    tg_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tls/1"
    lb_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/gw/1"
    return [
        res("aws:ec2/securityGroup:SecurityGroup", {"vpcId": "vpc-1"}, id_="sg-nlb"),
        res(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            {
                "securityGroupId": "sg-nlb",
                "cidrIpv4": admit,
                "ipProtocol": "tcp",
                "fromPort": 443,
                "toPort": 443,
            },
            id_="nlb-in",
        ),
        res(
            "aws:lb/loadBalancer:LoadBalancer",
            {"loadBalancerType": "network", "internal": False, "securityGroups": ["sg-nlb"]},
            id_="gw",
            outputs={"arn": lb_arn, "dnsName": NLB_DNS, "zoneId": "Z26RNL4JYFTOTI"},
        ),
        res(
            "aws:lb/targetGroup:TargetGroup",
            {"port": 8443, "protocol": "TCP", "targetType": "ip", "preserveClientIp": str(preserve).lower()},
            id_="tls",
            outputs={"arn": tg_arn},
        ),
        res(
            "aws:lb/listener:Listener",
            {
                "loadBalancerArn": lb_arn,
                "port": 443,
                "protocol": "TCP",
                "defaultActions": [{"type": "forward", "targetGroupArn": tg_arn}],
            },
            id_="https",
        ),
        res(
            "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
            {
                "metadata": {"namespace": "kong", "name": "gateway-proxy-tls"},
                "spec": {"serviceRef": {"name": "kong-gateway-proxy", "port": 443}, "targetGroupARN": tg_arn},
            },
        ),
    ]


def record(name: str, alias: str, zone: str = "Z0PRODRAMPART03") -> dict[str, Any]:
    return res(
        "aws:route53/record:Record",
        {"zoneId": zone, "name": name, "type": "A", "aliases": [{"name": alias, "zoneId": "Z26RNL4JYFTOTI"}]},
    )


def test_dns_needs_a_record_aliasing_the_gateways_load_balancer() -> None:
    kong = kong_world().plan.resources
    prod = stack_config("prod")
    host = "api.example.com"

    def dns(*extra: dict[str, Any]) -> Check:
        return gateway.dns(World(fragment(*kong, *edge_resources(), *extra), prod), host)

    assert dns().verdict == "refuses"
    assert dns(record(host, NLB_DNS)).verdict == "allows"
    # An alias to anything else, or a record in another zone, does not reach the gateway.
    assert dns(record(host, "other-lb.elb.us-east-1.amazonaws.com")).verdict == "refuses"
    assert dns(record(host, NLB_DNS, zone="Z0OTHERZONE01")).verdict == "refuses"
    # Without the gateway's NLB in the plan a record has nothing to point at.
    lone = World(fragment(*kong, record(host, NLB_DNS)), prod)
    assert gateway.dns(lone, host).verdict == "refuses"
    external = res(
        "kubernetes:helm.sh/v3:Release",
        {
            "name": "external-dns",
            "chart": "external-dns",
            "values": {"domainFilters": ["example.com"], "sources": ["ingress"]},
        },
    )
    assert gateway.dns(World(fragment(external), prod), host).verdict == "allows"
    assert gateway.dns(World(fragment(), stack_config("local")), host).verdict == "n/a"


def test_the_nlb_admits_only_its_source_ranges_and_keeps_the_client_address() -> None:
    kong = kong_world().plan.resources
    prod = stack_config("prod")
    edge = gateway.Gateway(World(fragment(*kong, *edge_resources(admit="198.51.100.0/24")), prod))
    inside, outside = Address("198.51.100.7"), Address("203.0.113.9")
    assert edge.load_balancer(inside).verdict == "allows"
    assert edge.load_balancer(outside).verdict == "refuses"
    assert edge.arriving_address(inside)[0] == inside
    # Without preserve_client_ip, ip targets over TCP see the NLB's address.
    hidden = gateway.Gateway(World(fragment(*kong, *edge_resources(preserve=False)), prod))
    assert hidden.arriving_address(inside)[0] != inside


def kong_release(plan: Plan) -> dict[str, Any]:
    (release,) = [
        r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["inputs"].get("chart") == "ingress"
    ]
    return release


def test_the_client_address_reaches_kongs_ip_restriction_on_the_local_plan() -> None:
    """What the local plan really sets: the proxy Service keeps client addresses
    (externalTrafficPolicy Local) and Kong's sidecar leaves its inbound ports alone (the chart's
    podAnnotations default, includeInboundPorts ""), so the backoffice allowlist sees the client."""
    world = World(planned("local"), stack_config("local"))
    kong = gateway.Gateway(world)
    assert kong.proxy["externalTrafficPolicy"] == "Local"
    assert kong.workload is not None
    assert kong.workload.annotations["traffic.sidecar.istio.io/includeInboundPorts"] == ""
    assert not world.mesh.inbound_captured(kong.workload, 8443).allowed
    (admin,) = [r for s in world.config.services for r in s.routes if s.name == "backoffice"]
    client, _ = kong.client(admin.ip_allowlist)
    assert client is not None
    seen, why = kong.seen_address(client)
    assert seen == client, why
    found = kong.find(admin.host, admin.path)
    assert found is not None
    assert [c.verdict for c in kong.plugin_checks(found, seen, why)] == ["allows"]
    # Were the sidecar to capture Kong's TLS port, every client would be 127.0.0.6.
    captured = copy.deepcopy(world.plan)
    values = kong_release(captured)["inputs"]["values"]["gateway"]
    values["podAnnotations"] = {"traffic.sidecar.istio.io/includeInboundPorts": "*"}
    recaptured = gateway.Gateway(World(captured, stack_config("local")))
    assert recaptured.seen_address(client)[0] == Address("127.0.0.6")


# --- credentials ----------------------------------------------------------------------------------


def credentials_world(mounted: bool) -> World:
    template: dict[str, Any] = {}
    if mounted:
        template["spec"] = {
            "volumes": [{"name": "db", "secret": {"secretName": "orders-db-credentials"}}],
            "containers": [
                {
                    "name": "orders",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "volumeMounts": [{"name": "db", "mountPath": "/var/run/secrets/db"}],
                    "env": [{"name": "DATABASE_HOST", "value": "orders-db-rw.orders.svc"}],
                }
            ],
        }
    return World(fragment(deployment("orders", "orders", **template)), stack_config("local"))


def test_credentials_reach_the_pod_only_through_its_template() -> None:
    def check(world: World) -> Check:
        return credentials.delivery(
            world,
            service="orders",
            namespace="orders",
            secret="orders-db-credentials",
            mount="database",
            endpoints=["orders-db-rw.orders.svc"],
            what="database",
        )

    # Phase 1: the mount is there, Vault's part is pending; without the mount the path is broken.
    assert check(credentials_world(mounted=True)).verdict == "pending"
    assert check(credentials_world(mounted=False)).verdict == "refuses"


def test_secret_names_are_the_paved_roads_contract() -> None:
    from components.secrets.vault_config import broker_secret, database_secret

    assert credentials.database_secret("orders") == database_secret("orders")
    assert credentials.broker_secret("orders") == broker_secret("orders")


# --- observability --------------------------------------------------------------------------------


def scrape_world(admit_monitoring: bool) -> World:
    vault_policies = [namespace("vault"), namespace("monitoring"), netpol("vault", "deny", DENY_ALL)]
    if admit_monitoring:
        vault_policies.append(
            netpol(
                "vault",
                "allow-metrics",
                {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "vault"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                                    },
                                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                                }
                            ],
                            "ports": [{"port": 8200}],
                        }
                    ],
                },
            )
        )
    releases = [
        res(
            "kubernetes:helm.sh/v3:Release",
            {
                "name": "vault",
                "chart": "vault",
                "namespace": "vault",
                "values": {"global": {"tlsDisable": False}},
            },
        ),
        res(
            "kubernetes:helm.sh/v3:Release",
            {
                "name": "kube-prometheus-stack",
                "chart": "kube-prometheus-stack",
                "namespace": "monitoring",
                "values": {},
            },
        ),
        res(
            "kubernetes:monitoring.coreos.com/v1:PodMonitor",
            {
                "metadata": {"namespace": "vault", "name": "vault"},
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/name": "vault"}},
                    "podMetricsEndpoints": [{"port": "https", "path": "/v1/sys/metrics"}],
                },
            },
        ),
    ]
    return World(fragment(*vault_policies, *releases), stack_config("local"))


def test_a_scrape_needs_the_monitored_namespace_to_admit_monitoring() -> None:
    def network(world: World) -> str:
        (target,) = observability.scrape_targets(world)
        path = catalog.scrape_path(world, target)
        check = PathResult(path.spec, tuple(path.evaluate())).check("network")
        assert check is not None
        return check.verdict

    assert network(scrape_world(admit_monitoring=True)) == "allows"
    assert network(scrape_world(admit_monitoring=False)) == "refuses"


def test_a_monitor_naming_a_port_the_pods_do_not_expose_is_a_broken_scrape() -> None:
    world = scrape_world(admit_monitoring=True)
    (target,) = observability.scrape_targets(world)
    assert target.port == 8200
    renamed = observability.ScrapeTarget(target.monitor, target.workload, "prometheus", None, "/metrics")
    assert observability.scrape_config(world, renamed).verdict == "refuses"


def test_alloy_reads_only_environment_the_chart_sets_and_grafana_needs_each_data_source() -> None:
    def alloy(extra_env: list[dict[str, str]], variable: str = "NODE_NAME") -> str:
        config = (
            'discovery.kubernetes "pods" {\n  selectors {\n'
            f'    field = "spec.nodeName=" + sys.env("{variable}")\n  }}\n}}\n'
        )
        values = {"alloy": {"configMap": {"content": config}, "extraEnv": extra_env}}
        world = World(
            fragment(
                res(
                    "kubernetes:helm.sh/v3:Release",
                    {"name": "alloy", "chart": "alloy", "namespace": "monitoring", "values": values},
                )
            ),
            stack_config("local"),
        )
        return observability.alloy_tails_pods(world).verdict

    assert alloy([]) == "refuses"
    assert alloy([{"name": "NODE_NAME", "valueFrom": "spec.nodeName"}]) == "allows"
    # The pinned chart (alloy 1.11.1 templates/containers/_agent.yaml) sets K8S_NODE_NAME itself.
    assert alloy([], variable="K8S_NODE_NAME") == "allows"

    def grafana(additional: list[dict[str, str]]) -> str:
        values = {"grafana": {"additionalDataSources": additional}}
        world = World(
            fragment(
                res(
                    "kubernetes:helm.sh/v3:Release",
                    {
                        "name": "kps",
                        "chart": "kube-prometheus-stack",
                        "namespace": "monitoring",
                        "values": values,
                    },
                )
            ),
            stack_config("local"),
        )
        return observability.datasource(world, "loki").verdict

    assert grafana([]) == "refuses"
    assert grafana([{"name": "Loki", "type": "loki", "url": "http://loki.monitoring:3100"}]) == "allows"


def test_imds_hop_limit_keeps_pods_from_instance_credentials() -> None:
    from rampart.paths import data

    def imds(hops: int) -> str:
        template = res(
            "aws:ec2/launchTemplate:LaunchTemplate",
            {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": hops}},
        )
        return data.imds(World(fragment(template), stack_config("prod"))).verdict

    assert imds(1) == "refuses"
    assert imds(2) == "allows"


# --- the verdict ----------------------------------------------------------------------------------


def test_required_layers_and_minimum_refusals() -> None:
    pair = PathSpec("pair", "a", "b", "refuse", required=frozenset({"network", "mesh-authz"}), minimum=2)
    both = PathResult(pair, (Check("network", "refuses", "x"), Check("mesh-authz", "refuses", "y")))
    assert both.ok and both.independent_refusals == 2
    # mTLS and authorization are one enforcement point (the sidecar): they count once.
    istio_only = PathResult(
        pair,
        (
            Check("mesh-mtls", "refuses", "x"),
            Check("mesh-authz", "refuses", "y"),
            Check("network", "allows", "z"),
        ),
    )
    assert not istio_only.ok and istio_only.independent_refusals == 1 and istio_only.overall == "WEAK"
    carried = PathResult(
        PathSpec("call", "a", "b", "carry"),
        (Check("network", "allows", "x"), Check("credentials", "pending", "p")),
    )
    assert carried.ok
    proof = Proof("s", (both, carried))
    assert proof.verdict_line().startswith("paths passed")
    broken = Proof(
        "s",
        (both, PathResult(PathSpec("call", "a", "b", "carry"), (Check("network", "refuses", "no rule"),))),
    )
    assert "call: a -> b at network" in broken.verdict_line() and broken.verdict_line().startswith(
        "paths FAILED"
    )


# --- mutations of a real stack: exactly the affected verdicts flip ---------------------------------


def verdicts(proof: Proof) -> dict[tuple[str, str], str]:
    return {(r.spec.name, c.layer): c.verdict for r in proof.results for c in r.checks}


def flips(
    plan: Plan, mutate: Callable[[Plan], None], stack: str = "local"
) -> dict[tuple[str, str], tuple[str, str]]:
    config = stack_config(stack)
    before = verdicts(prove(plan, config))
    changed = copy.deepcopy(plan)
    mutate(changed)
    after = verdicts(prove(changed, config))
    return {
        key: (before.get(key, "-"), after.get(key, "-"))
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key)
    }


def find(plan: Plan, type_suffix: str, namespace: str, name: str) -> dict[str, Any]:
    (found,) = [
        r
        for r in plan.resources
        if r["type"].endswith(type_suffix)
        and r["inputs"].get("metadata", {}).get("namespace") == namespace
        and r["inputs"]["metadata"].get("name") == name
    ]
    return found


def test_dropping_one_authorization_principal_flips_exactly_that_call() -> None:
    def mutate(plan: Plan) -> None:
        rule = find(plan, ":AuthorizationPolicy", "payments", "payments-allow-callers")["inputs"]["spec"][
            "rules"
        ][0]
        rule["from"][0]["source"]["principals"].remove("cluster.local/ns/orders/sa/orders")

    assert flips(planned("local"), mutate) == {
        ("call: orders -> payments (port 8080)", "mesh-authz"): ("allows", "refuses")
    }


def test_dropping_one_network_policy_rule_flips_exactly_that_call() -> None:
    def mutate(plan: Plan) -> None:
        spec = find(plan, ":NetworkPolicy", "orders", "allow-to-callees")["inputs"]["spec"]
        spec["egress"] = [r for r in spec["egress"] if "payments" not in json.dumps(r)]

    assert flips(planned("local"), mutate) == {
        ("call: orders -> payments (port 8080)", "network"): ("allows", "refuses")
    }


def test_the_host_header_setting_flips_exactly_that_route() -> None:
    def mutate(plan: Plan) -> None:
        # Dropping the Host-header setting: KIC preserves the client's Host again.
        del find(plan, ":Ingress", "catalog", "catalog-route-0")["inputs"]["metadata"]["annotations"][
            "konghq.com/preserve-host"
        ]

    route = "route: internet -> catalog (https://api.rampart.localtest.me/catalog)"
    assert flips(planned("local"), mutate) == {(route, "gateway"): ("allows", "refuses")}


def test_a_credentials_mount_flips_exactly_that_database_path() -> None:
    def mutate(plan: Plan) -> None:
        # Drop the database credentials' mount (issue 14's fix) from orders' container.
        spec = find(plan, "apps/v1:Deployment", "orders", "orders")["inputs"]["spec"]["template"]["spec"]
        container = spec["containers"][0]
        container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "db-credentials"]

    # Locally Vault's per-service configuration is phase 2: a delivered mount is "pending".
    assert flips(planned("local"), mutate) == {
        ("database: orders -> orders database (port 5432)", "credentials"): ("pending", "refuses")
    }


def test_a_monitoring_ingress_flips_exactly_that_scrape() -> None:
    def mutate(plan: Plan) -> None:
        # Drop the monitoring layer's admission into cert-manager (issue 14's fix).
        found = find(plan, ":NetworkPolicy", "cert-manager", "allow-prometheus-cert-manager")
        plan.resources.remove(found)

    scrape = "scrape: prometheus -> cert-manager (http-metrics /metrics (PodMonitor monitoring/cert-manager))"
    assert flips(planned("local"), mutate) == {(scrape, "network"): ("allows", "refuses")}


def test_the_proxy_services_traffic_policy_flips_exactly_the_allowlisted_route() -> None:
    def mutate(plan: Plan) -> None:
        # Back to the default (Cluster): kube-proxy SNATs clients to a node address.
        del kong_release(plan)["inputs"]["values"]["gateway"]["proxy"]["externalTrafficPolicy"]

    route = "route: internet -> backoffice (https://admin.rampart.localtest.me/)"
    assert flips(planned("local"), mutate) == {(route, "gateway"): ("allows", "refuses")}


def test_a_loopback_jwks_uri_flips_exactly_the_routes_that_need_a_token() -> None:
    def mutate(plan: Plan) -> None:
        # The local stack's keys fetched from a *.localtest.me URI again: istiod's own loopback.
        for policy in plan.of_type("kubernetes:security.istio.io/v1:RequestAuthentication"):
            for rule in policy["inputs"]["spec"]["jwtRules"]:
                del rule["jwks"]
                rule["jwksUri"] = "https://auth.rampart.localtest.me/.well-known/jwks.json"

    token_routes = [
        "route: internet -> orders (https://api.rampart.localtest.me/orders)",
        "route: internet -> cart (https://api.rampart.localtest.me/cart)",
        "route: internet -> backoffice (https://admin.rampart.localtest.me/)",
    ]
    assert flips(planned("local"), mutate) == {(r, "jwt"): ("allows", "refuses") for r in token_routes}


def test_dropping_a_hosts_alias_record_flips_exactly_its_routes() -> None:
    def mutate(plan: Plan) -> None:
        plan.resources[:] = [
            r
            for r in plan.resources
            if not (r["type"] == "aws:route53/record:Record" and r["inputs"]["name"].startswith("admin."))
        ]

    route = "route: internet -> backoffice (https://admin.dev.rampart.example.com/)"
    assert flips(planned("dev"), mutate, "dev") == {(route, "dns"): ("allows", "refuses")}


def broker_group(plan: Plan) -> str:
    (broker,) = plan.of_type("aws:mq/broker:Broker")
    (group,) = broker["inputs"]["securityGroups"]
    return str(group)


def test_admitting_the_cluster_group_at_the_broker_flips_exactly_the_non_clients() -> None:
    plan = planned("dev")
    cluster_group = SecurityGroups(plan).cluster_group

    def mutate(changed: Plan) -> None:
        # What the broker's group admitted before issue 14: every pod and node of the cluster.
        for port in (5671, 443):
            changed.resources.append(
                res(
                    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                    {
                        "securityGroupId": broker_group(changed),
                        "referencedSecurityGroupId": cluster_group,
                        "ipProtocol": "tcp",
                        "fromPort": port,
                        "toPort": port,
                    },
                    id_=f"cluster-{port}",
                )
            )

    flipped = flips(plan, mutate, "dev")
    non_clients = [r for r in prove(plan, stack_config("dev")).of_kind("broker") if r.spec.expect == "refuse"]
    assert non_clients
    assert flipped == {(r.spec.name, "security-groups"): ("refuses", "allows") for r in non_clients}


def test_the_topology_operators_security_group_policy_flips_exactly_its_path() -> None:
    def mutate(plan: Plan) -> None:
        plan.resources.remove(
            find(plan, ":SecurityGroupPolicy", "rabbitmq-system", "messaging-topology-operator-pods")
        )

    path = "broker: messaging-topology-operator -> broker management API (port 443 (topology objects))"
    assert flips(planned("dev"), mutate, "dev") == {(path, "security-groups"): ("allows", "refuses")}


def test_widening_a_services_callers_to_monitoring_shows_in_the_network_layer() -> None:
    """The gap the old call-graph test had: monitoring added to a service's allowed callers."""

    def mutate(plan: Plan) -> None:
        spec = find(plan, ":NetworkPolicy", "orders", "allow-from-callers")["inputs"]["spec"]
        spec["ingress"][0]["from"].append(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        )

    config = stack_config("local")
    changed = copy.deepcopy(planned("local"))
    mutate(changed)
    (stray,) = [
        r
        for r in prove(changed, config).results
        if r.spec.name == "stray: prometheus -> orders (application port 8080)"
    ]
    assert not stray.ok and any("network must refuse it" in line for line in stray.problems)


# --- every stack: what is broken today, exactly --------------------------------------------------

# The defects of issue 14 the model finds in today's plans, as (path kind, layer): each line says which
# defect it is. When a component fix lands its entry stops occurring and the test below fails: delete
# the entry, which turns that layer's check on for good. All of issue 14's have landed.
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}
# Layers still known broken somewhere, and why: the hypothesis property below leaves them out. Turn
# one on (delete its line) when its component fix lands; its KNOWN_DEFECTS entries go with it.
KNOWN_BROKEN_LAYERS: dict[str, str] = {}


def defects(proof: Proof) -> set[tuple[str, str]]:
    found = set()
    for result in proof.failures:
        if result.spec.expect == "carry":
            found |= {(result.spec.kind, layer) for layer in result.refusing}
        else:
            found |= {
                (result.spec.kind, layer) for layer in result.spec.required if layer not in result.refusing
            }
    return found


def test_every_stack_breaks_only_where_a_known_defect_says(stack: str) -> None:
    proof = prove(planned(stack), stack_config(stack))
    found = defects(proof)
    unexplained = found - KNOWN_DEFECTS.keys()
    assert not unexplained, "\n".join(
        line
        for r in proof.failures
        for line in r.problems
        if any(k in unexplained for k in defects(Proof("", (r,))))
    )
    # Every must-refuse undeclared service pair is refused by network and mesh identity both.
    pairs = proof.of_kind("pair")
    assert pairs and all(r.ok and r.independent_refusals >= 2 for r in pairs)


def test_known_defects_still_occur_somewhere() -> None:
    """A defect that no stack shows any more is fixed: remove it from KNOWN_DEFECTS."""
    found = set().union(*(defects(prove(planned(s), stack_config(s))) for s in ("local", "prod")))
    assert not KNOWN_DEFECTS.keys() - found, sorted(KNOWN_DEFECTS.keys() - found)


def test_every_stack_carries_every_declared_path_and_refuses_the_rest(stack: str) -> None:
    proof = prove(planned(stack), stack_config(stack))
    assert proof.ok, proof.verdict_line()


# --- random catalogs: carried = declared, refused = the rest ---------------------------------------

NAMES = ["alpha", "bravo", "charlie", "delta"]
EXTERNAL = [
    Egress(host="api.stripe.com"),
    Egress(host="hooks.example.org"),
    # A private destination on its own port and protocol (issue 14: prod's SMTP relay).
    Egress(host="smtp.internal.example.com", port=587, protocol="TCP", cidr="10.100.25.0/24"),
]


@st.composite
def catalogs(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=3, unique=True))
    queues = {name: [f"{name}-event"] for name in names if draw(st.booleans())}
    published = [q for qs in queues.values() for q in qs]
    services = []
    for name in names:
        others = [n for n in names if n != name]
        services.append(
            {
                "name": name,
                "calls": draw(st.lists(st.sampled_from(others), unique=True, max_size=len(others)))
                if others
                else [],
                "database": draw(st.booleans()),
                "publishes": queues.get(name, []),
                "consumes": draw(st.lists(st.sampled_from(published), unique=True, max_size=2))
                if published
                else [],
                "route": draw(st.booleans()),
                "egress": draw(st.lists(st.sampled_from(EXTERNAL), unique=True, max_size=2)),
            }
        )
    return services


def variant(stack: str, services: list[dict[str, Any]]) -> PlatformConfig:
    base = stack_config(stack)
    template = base.services[0]
    specs = [
        template.model_copy(
            update={
                "name": s["name"],
                "calls": s["calls"],
                "database": Database() if s["database"] else None,
                "queue": Queues(
                    publishes=s["publishes"], consumes=[q for q in s["consumes"] if q not in s["publishes"]]
                ),
                "routes": [Route(host="api.example.test", path=f"/{s['name']}", auth=False)]
                if s["route"]
                else [],
                "egress": s["egress"],
                "env": {},
            }
        )
        for s in services
    ]
    return base.model_copy(update={"services": specs})


def layer_verdict(result: PathResult, layer: str) -> str | None:
    check = result.check(layer)
    return check.verdict if check else None


def assert_declared_equals_carried(proof: Proof, config: PlatformConfig) -> None:
    """For the layers already right: every declared path is let through by each of them, every
    undeclared one refused by its required layers."""
    declared_calls = {(s.name, c) for s in config.services for c in s.calls}
    refused_kinds = {"database", "egress", "internet", "stray", "metadata", "vhost", "broker"}
    for result in proof.results:
        spec = result.spec
        crossing = [c for c in result.checks if c.layer not in KNOWN_BROKEN_LAYERS]
        if spec.kind == "call":
            assert (spec.source, spec.destination) in declared_calls
            assert all(c.verdict != "refuses" for c in crossing), result.problems
        elif spec.kind == "pair":
            assert (spec.source, spec.destination) not in declared_calls
            assert result.ok, result.problems
        elif spec.kind in refused_kinds and spec.expect == "refuse":
            assert result.ok, result.problems
        elif spec.kind in ("database", "egress", "vhost", "route") and spec.expect == "carry":
            assert all(c.verdict != "refuses" for c in crossing), result.problems
    calls = {(r.spec.source, r.spec.destination) for r in proof.of_kind("call")}
    pairs = {(r.spec.source, r.spec.destination) for r in proof.of_kind("pair")}
    names = [s.name for s in config.services]
    assert calls == declared_calls
    assert pairs == {(a, b) for a in names for b in names if a != b} - declared_calls
    owners = {s.name for s in config.services if s.database}
    assert {r.spec.source for r in proof.of_kind("database") if r.spec.expect == "carry"} == owners


@settings(max_examples=4, deadline=None)
@given(catalogs())
def test_random_catalogs_in_the_cluster(services: list[dict[str, Any]]) -> None:
    config = variant("local", services)
    assert_declared_equals_carried(prove(platform_plan(config, "local"), config), config)


@settings(max_examples=2, deadline=None)
@given(catalogs())
def test_random_catalogs_on_aws(services: list[dict[str, Any]]) -> None:
    config = variant("dev", services)
    proof = prove(platform_plan(config, "dev"), config)
    assert_declared_equals_carried(proof, config)
    # Non-clients are kept from the broker by its security group (it admits only the clients' pod
    # groups), and services also by NetworkPolicy and the mesh.
    clients = {s["name"] for s in services if s["publishes"] or s["consumes"]}
    for result in proof.of_kind("broker"):
        if result.spec.expect != "refuse":
            continue
        assert layer_verdict(result, "security-groups") == "refuses", result.problems
        if "AMQPS" in result.spec.destination and result.spec.source in {s.name for s in config.services}:
            assert result.spec.source not in clients
            assert (
                layer_verdict(result, "network") == "refuses"
                and layer_verdict(result, "mesh-egress") == "refuses"
            )


# --- the command ----------------------------------------------------------------------------------


def rampart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RAMPART, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_command_names_the_broken_path_and_layer_in_its_last_line(tmp_path: Path) -> None:
    export = tmp_path / "plan-local.json"
    # The local plan with the proxy Service's externalTrafficPolicy dropped: kube-proxy SNATs clients
    # again, and the backoffice allowlist refuses them.
    broken = copy.deepcopy(planned("local"))
    proxy = kong_release(broken)["inputs"]["values"]["gateway"]["proxy"]
    del proxy["externalTrafficPolicy"]
    broken.write(export)
    result = rampart("paths", "--file", str(export))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    # The broken path, named with its layer.
    assert (
        last.startswith("paths FAILED") and "route: internet -> backoffice" in last and " at gateway" in last
    )
    assert "Traceback" not in result.stdout + result.stderr
    matrix = tmp_path / "paths.json"
    result = rampart("paths", "--file", str(export), "--format", "json", "--out", str(matrix))
    document = json.loads(matrix.read_text())
    assert document["ok"] is False and document["counts"]["must_refuse"] == document["counts"]["refused"]
    assert {p["kind"] for p in document["paths"]} >= {
        "route",
        "call",
        "pair",
        "database",
        "scrape",
        "internet",
    }
    markdown = rampart("paths", "--file", str(export), "--format", "markdown")
    assert markdown.stdout.startswith("# Paths of `local`") and "| pair: orders → catalog" in markdown.stdout
    assert rampart("paths", "--file", str(export), "--format", "yaml").returncode == 2


def test_the_command_passes_with_exit_code_zero_when_every_path_is_as_it_must_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rampart.paths as paths_package
    from rampart.cli import app

    export = tmp_path / "plan-local.json"
    planned("local").write(export)
    ok = PathResult(PathSpec("call", "a", "b", "carry"), (Check("network", "allows", "rule"),))
    monkeypatch.setattr(paths_package, "prove", lambda plan, config: Proof("local", (ok,)))
    result = CliRunner().invoke(app, ["paths", "--file", str(export)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("paths passed: 1 of 1 must-carry paths carried")


def test_inventory_labels_match_the_platforms_own_network_policies() -> None:
    """Chart workloads are described from their charts; the platform's NetworkPolicies select them by
    the same labels, so a drift between the two shows here."""
    plan = planned("local")
    workloads = inventory(plan)
    network = Network(plan)
    for key in (
        "kong-gateway",
        "kong-controller",
        "prometheus",
        "grafana",
        "loki",
        "tempo",
        "alloy",
        "vault",
        "vault-secrets-operator",
        "cnpg-operator",
        "istiod",
        "rabbitmq",
    ):
        pod = workloads[key].pod
        own = [
            p
            for p in network.policies
            if p["metadata"].get("namespace") == pod.namespace
            and p["spec"].get("podSelector", {}).get("matchLabels")
        ]
        assert any(p in network.selecting(pod, "Ingress") + network.selecting(pod, "Egress") for p in own), (
            key
        )


# --- issue 14: Kong's own inbound side, read from the plan's values and the chart's defaults ------


def kong_chart_annotations(component: str, release_values: Mapping[str, Any]) -> dict[str, str]:
    """The pod annotations Helm renders for one alias of the kong chart: the kong chart's default
    `podAnnotations`, the `ingress` chart's values for the alias over it, the plan's values over
    both, key by key (Helm merges maps; null deletes). From the reference chart values themselves."""
    reference = helm_values_dir()
    kong = yaml.safe_load((reference / "kong" / "values.yaml").read_text())
    ingress = yaml.safe_load((reference / "kong-ingress" / "values.yaml").read_text())
    merged: dict[str, Any] = dict(kong.get("podAnnotations") or {})
    for layer in (ingress.get(component) or {}, release_values.get(component) or {}):
        for key, value in (layer.get("podAnnotations") or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
    return {key: str(value) for key, value in merged.items()}


def kong_release_values(plan: Plan) -> dict[str, Any]:
    (release,) = [r["inputs"] for r in plan.of_type(RELEASE) if chart_name(r["inputs"]) == "ingress"]
    return dict(release.get("values") or {})


@pytest.mark.parametrize("stack_name", ["local", "prod"])
def test_kongs_inbound_ports_are_not_captured_and_its_outbound_keeps_the_mesh_identity(
    stack_name: str,
) -> None:
    """Kong chart 3.2.0 sets traffic.sidecar.istio.io/includeInboundPorts "" (no inbound redirection,
    https://istio.io/latest/docs/reference/config/annotations/): clients, health checks, the
    controller and Prometheus reach Kong itself, not its sidecar (which STRICT mTLS would make refuse
    them). Its outbound calls still leave through the sidecar, with the gateway's SPIFFE identity."""
    plan = planned(stack_name)
    world = World(plan, stack_config(stack_name))
    release_values = kong_release_values(plan)
    proxy, controller = world.workload("kong-gateway"), world.workload("kong-controller")
    assert proxy is not None and controller is not None and proxy.injected
    # What the plan really renders, from the charts' own defaults and the plan's values: the model agrees.
    rendered = kong_chart_annotations("gateway", release_values)
    assert rendered["traffic.sidecar.istio.io/includeInboundPorts"] == ""
    assert proxy.annotations == rendered
    assert controller.annotations == kong_chart_annotations("controller", release_values)
    inbound = {8443, 8100, 8444, *proxy.ports.values(), *controller.ports.values()}
    assert {8443, 8100, 8444} <= inbound
    for workload in (proxy, controller):
        for port in sorted(inbound & set(workload.ports.values())):
            decision = world.mesh.inbound_captured(workload, port)
            assert not decision.allowed, (workload.key, port, decision.reason)
    # Outbound: the route to each public service is captured and carries the gateway's identity.
    publics = [s for s in world.config.services if s.routes]
    assert publics
    for spec in publics:
        assert world.mesh.outbound_captured(proxy, spec.port).allowed
    principal = world.mesh.principal(proxy)
    assert principal is not None and principal.endswith(f"/ns/{proxy.namespace}/sa/{proxy.service_account}")

    # Mutation: values that bring capture back (includeInboundPorts "*") flip every inbound port.
    changed = copy.deepcopy(plan)
    for resource in changed.of_type(RELEASE):
        if chart_name(resource["inputs"]) == "ingress":
            gateway_values = resource["inputs"]["values"].setdefault("gateway", {})
            gateway_values["podAnnotations"] = {"traffic.sidecar.istio.io/includeInboundPorts": "*"}
    captured = World(changed, stack_config(stack_name))
    moved = captured.workload("kong-gateway")
    assert moved is not None
    assert all(captured.mesh.inbound_captured(moved, port).allowed for port in (8443, 8100, 8444))


@pytest.mark.parametrize("stack_name", ["local", "prod"])
def test_kongs_plaintext_listener_is_not_published(stack_name: str) -> None:
    """Only 443 is public: the proxy Service has no 80 -> 8000 port and Kong no 8000 listener."""
    proof = prove(planned(stack_name), stack_config(stack_name))
    (plain,) = [r for r in proof.results if r.spec.name == "internet: internet -> kong-gateway (port 8000)"]
    assert plain.ok and plain.check("load-balancer").verdict == "refuses"  # type: ignore[union-attr]
    # Mutation: the chart's default (http enabled) publishes 80 -> 8000 again.
    changed = copy.deepcopy(planned(stack_name))
    for resource in changed.of_type(RELEASE):
        if chart_name(resource["inputs"]) == "ingress":
            resource["inputs"]["values"]["gateway"]["proxy"].pop("http")
    (opened,) = [
        r
        for r in prove(changed, stack_config(stack_name)).results
        if r.spec.name == "internet: internet -> kong-gateway (port 8000)"
    ]
    assert opened.check("load-balancer").verdict == "allows"  # type: ignore[union-attr]


# --- issue 14: egress on its declared port, to a declared private block ---------------------------

SMTP = "smtp.internal.example.com"


def egress_results(proof: Proof, service: str, host: str) -> dict[str, PathResult]:
    return {
        r.spec.detail: r
        for r in proof.of_kind("egress")
        if r.spec.source == service and r.spec.destination == host
    }


@pytest.mark.parametrize("stack_name", ["local", "prod"])
def test_the_smtp_relay_is_reached_on_587_in_its_block_and_nothing_else(stack_name: str) -> None:
    config = stack_config(stack_name)
    (smtp,) = [d for s in config.services if s.name == "notifications" for d in s.egress if d.host == SMTP]
    assert (smtp.port, smtp.protocol, smtp.cidr) == (587, "TCP", "10.100.25.0/24")
    plan = planned(stack_name)
    found = egress_results(prove(plan, config), "notifications", SMTP)
    carried = found["TCP 587 in 10.100.25.0/24"]
    assert carried.spec.expect == "carry" and carried.ok, carried.problems
    assert {c.layer: c.verdict for c in carried.checks}["mesh-egress"] == "allows"
    other = found["TCP 588 in 10.100.25.0/24 (undeclared port)"]
    assert other.ok and {"network", "mesh-egress"} <= set(other.refusing), other.checks

    # Mutation 1, today's ServiceEntry (TLS on 443): the mesh refuses 587.
    tls_only = copy.deepcopy(plan)
    for resource in tls_only.resources:
        spec = (resource["inputs"] or {}).get("spec") or {}
        if resource["type"].endswith(":ServiceEntry") and spec.get("hosts") == [SMTP]:
            spec["ports"] = [{"number": 443, "name": "https", "protocol": "TLS"}]
    broken = egress_results(prove(tls_only, config), "notifications", SMTP)["TCP 587 in 10.100.25.0/24"]
    assert broken.refusing == ("mesh-egress",), broken.checks
    # Mutation 2, today's NetworkPolicy (443 to public addresses): the network refuses 587 in 10.100.25.0/24.
    https_only = copy.deepcopy(plan)
    for resource in https_only.resources:
        meta = (resource["inputs"] or {}).get("metadata") or {}
        if meta.get("name") == "allow-external-https" and meta.get("namespace") == "notifications":
            resource["inputs"]["spec"]["egress"] = [
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12"]}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }
            ]
    broken = egress_results(prove(https_only, config), "notifications", SMTP)["TCP 587 in 10.100.25.0/24"]
    assert "network" in broken.refusing, broken.checks
