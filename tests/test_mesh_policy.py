"""The Istio objects built per service: exact shapes, CRD schemas, and the mesh policy rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.mesh.policy import (
    CustomObject,
    ServiceIdentity,
    istio_duration,
    path_patterns,
    service_mesh_objects,
)
from policies.catalog import rule
from policies.model import Resource
from policies.rules.mesh import AUTHORIZATION_POLICY
from rampart.config import ServiceSpec
from rampart.config.models import Jwt
from rampart.paths.mesh import value_matches
from tests.support.reference import crd_schemas
from tests.support.schemas import validate_custom

NS = "orders"
TRUST = "cluster.local"
HOST = "orders.orders.svc.cluster.local"
RETRY_ON = "5xx,reset,connect-failure,refused-stream"
NEVER_REACHED = "connect-failure,refused-stream"
IDEMPOTENT = [{"method": {"exact": m}} for m in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")]
GATEWAY = ServiceIdentity("kong", "kong-gateway")
GATEWAY_PRINCIPAL = "cluster.local/ns/kong/sa/kong-gateway"
CHECKOUT = ServiceIdentity("checkout", "checkout")
BACKOFFICE = ServiceIdentity("backoffice", "backoffice")
JWT = Jwt.model_validate(
    {
        "issuer": "https://id.example.com/",
        "jwks_uri": "https://id.example.com/.well-known/jwks.json",
        "audiences": ["orders-api"],
    }
)
ORDERS: dict[str, Any] = {
    "name": "orders",
    "image": "ghcr.io/acme/orders:1.4.2",
    "port": 8080,
    "calls": ["payments"],
    "routes": [
        {"host": "api.example.com", "path": "/orders", "auth": True},
        {"host": "api.example.com", "path": "/orders/catalog", "auth": False},
    ],
    "load_balancing": "least_request",
    "traffic": {
        "timeout_seconds": 2.5,
        "retries": 3,
        "per_try_timeout_seconds": 0.75,
        "max_connections": 64,
        "max_pending_requests": 32,
        "consecutive_5xx_errors": 7,
    },
    "egress": ["api.stripe.com", "*.s3.amazonaws.com"],
}


def service(**overrides: Any) -> ServiceSpec:
    return ServiceSpec.model_validate(ORDERS | overrides)


def build(
    spec: ServiceSpec | None = None,
    callers: list[ServiceIdentity] | None = None,
    gateway: ServiceIdentity | None = GATEWAY,
    jwt: Jwt | None = JWT,
) -> list[CustomObject]:
    return service_mesh_objects(
        spec or service(),
        namespace=NS,
        trust_domain=TRUST,
        callers=[CHECKOUT, BACKOFFICE] if callers is None else callers,
        gateway=gateway,
        jwt=jwt,
    )


def internal(**overrides: Any) -> ServiceSpec:
    """A service with no public routes (so it needs no gateway and no JWT)."""
    return service(routes=[], **overrides)


def by_name(objects: list[CustomObject]) -> dict[str, CustomObject]:
    """The security objects by name (DestinationRule and VirtualService share the service's name)."""
    named = {obj.name: obj for obj in objects if obj.api_version == "security.istio.io/v1"}
    assert len(named) == len([o for o in objects if o.api_version == "security.istio.io/v1"])
    return named


def manifest(obj: CustomObject, namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": obj.api_version,
        "kind": obj.kind,
        "metadata": {"name": obj.name, "namespace": namespace},
        "spec": obj.spec,
    }


def policy_resource(obj: CustomObject) -> Resource:
    return Resource(
        urn=f"urn:pulumi:test::rampart::{AUTHORIZATION_POLICY}::{obj.name}",
        type=AUTHORIZATION_POLICY,
        name=obj.name,
        props=manifest(obj),
    )


def allow_principals(objects: list[CustomObject]) -> list[str]:
    [allow] = [o for o in objects if o.name.endswith("-allow-callers")]
    [rule_] = allow.spec["rules"]
    return rule_["from"][0]["source"]["principals"]  # type: ignore[no-any-return]


# --- who may call -------------------------------------------------------------------------------


def test_allow_policy_admits_exactly_the_callers_and_the_gateway() -> None:
    allow = by_name(build())["orders-allow-callers"]
    assert (allow.api_version, allow.kind) == ("security.istio.io/v1", "AuthorizationPolicy")
    assert allow.spec == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "orders"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [
                    {
                        "source": {
                            "principals": [
                                "cluster.local/ns/backoffice/sa/backoffice",
                                "cluster.local/ns/checkout/sa/checkout",
                                GATEWAY_PRINCIPAL,
                            ]
                        }
                    }
                ],
                "to": [{"operation": {"ports": ["8080"]}}],
            }
        ],
    }


def test_allow_policy_follows_the_callers() -> None:
    reports = ServiceIdentity("reports", "reports-reader")
    added = allow_principals(build(callers=[CHECKOUT, BACKOFFICE, reports]))
    assert "cluster.local/ns/reports/sa/reports-reader" in added
    assert len(added) == 4
    removed = allow_principals(build(callers=[CHECKOUT]))
    assert removed == ["cluster.local/ns/checkout/sa/checkout", GATEWAY_PRINCIPAL]


def test_internal_service_admits_only_its_callers() -> None:
    objects = build(internal(), callers=[CHECKOUT], gateway=None, jwt=None)
    assert allow_principals(objects) == ["cluster.local/ns/checkout/sa/checkout"]


def test_no_allow_policy_without_callers_or_gateway() -> None:
    # The mesh-wide allow-nothing policy then denies every request to the service.
    objects = build(internal(), callers=[], gateway=None, jwt=None)
    assert [o.kind for o in objects if o.kind == "AuthorizationPolicy"] == []
    assert [o.kind for o in objects] == ["DestinationRule", "VirtualService", "ServiceEntry", "ServiceEntry"]


def test_gateway_alone_is_admitted_for_a_public_service() -> None:
    assert allow_principals(build(callers=[])) == [GATEWAY_PRINCIPAL]


def test_the_port_follows_the_spec() -> None:
    allow = by_name(build(service(port=9443)))["orders-allow-callers"]
    assert allow.spec["rules"][0]["to"] == [{"operation": {"ports": ["9443"]}}]


identities = st.builds(
    ServiceIdentity,
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(callers=st.lists(identities, max_size=12), gateway=st.one_of(st.none(), identities))
def test_principals_are_exactly_the_callers_plus_gateway(
    callers: list[ServiceIdentity], gateway: ServiceIdentity | None
) -> None:
    spec = service() if gateway else internal()
    objects = build(spec, callers=callers, gateway=gateway, jwt=JWT if gateway else None)
    expected = {f"cluster.local/ns/{c.namespace}/sa/{c.service_account}" for c in callers}
    if gateway:
        expected.add(f"cluster.local/ns/{gateway.namespace}/sa/{gateway.service_account}")
    if not expected:
        assert not any(o.name.endswith("-allow-callers") for o in objects)
        return
    assert allow_principals(objects) == sorted(expected)


@pytest.mark.parametrize(
    "identity",
    [("", "sa"), ("ns", ""), ("*", "sa"), ("ns", "*"), ("ns/x", "sa")],
)
def test_identities_that_would_widen_a_principal_are_rejected(identity: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid identity"):
        ServiceIdentity(*identity)


def test_a_wildcard_trust_domain_is_rejected() -> None:
    with pytest.raises(ValueError, match="trust domain"):
        CHECKOUT.principal("*")


# --- JWT at the service's sidecar -----------------------------------------------------------------


def test_request_authentication_checks_the_issuers_tokens() -> None:
    authn = by_name(build())["orders-jwt"]
    assert (authn.api_version, authn.kind) == ("security.istio.io/v1", "RequestAuthentication")
    assert authn.spec == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "orders"}},
        "jwtRules": [
            {
                "issuer": "https://id.example.com/",
                "jwksUri": "https://id.example.com/.well-known/jwks.json",
                "audiences": ["orders-api"],
                "forwardOriginalToken": True,
            }
        ],
    }


def test_no_audiences_means_no_audiences_key() -> None:
    jwt = Jwt.model_validate({"issuer": "https://id.example.com/", "jwks_uri": "https://id.example.com/k"})
    authn = by_name(build(jwt=jwt))["orders-jwt"]
    assert "audiences" not in authn.spec["jwtRules"][0]


def test_deny_rule_requires_a_token_from_the_gateway_on_auth_paths() -> None:
    deny = by_name(build())["orders-require-jwt"]
    assert (deny.api_version, deny.kind) == ("security.istio.io/v1", "AuthorizationPolicy")
    assert deny.spec == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "orders"}},
        "action": "DENY",
        "rules": [
            {
                "from": [{"source": {"principals": [GATEWAY_PRINCIPAL], "notRequestPrincipals": ["*"]}}],
                "to": [
                    {
                        "operation": {
                            "paths": ["/orders", "/orders*"],
                            # The longer public route under /orders stays open.
                            "notPaths": ["/orders/catalog", "/orders/catalog*"],
                        }
                    }
                ],
            }
        ],
    }


def test_root_auth_route_covers_every_path() -> None:
    spec = service(routes=[{"host": "api.example.com", "path": "/"}])
    [deny_rule] = by_name(build(spec))["orders-require-jwt"].spec["rules"]
    assert deny_rule["to"] == [{"operation": {"paths": ["/*"]}}]


def test_one_deny_rule_per_auth_path() -> None:
    spec = service(
        routes=[
            {"host": "api.example.com", "path": "/orders"},
            {"host": "shop.example.com", "path": "/orders"},
            {"host": "api.example.com", "path": "/carts"},
        ]
    )
    rules = by_name(build(spec))["orders-require-jwt"].spec["rules"]
    assert [r["to"][0]["operation"]["paths"] for r in rules] == [
        ["/carts", "/carts*"],
        ["/orders", "/orders*"],
    ]


def test_no_jwt_objects_without_auth_routes() -> None:
    spec = service(routes=[{"host": "api.example.com", "path": "/status", "auth": False}])
    kinds = [(o.kind, o.name) for o in build(spec)]
    assert ("RequestAuthentication", "orders-jwt") not in kinds
    assert ("AuthorizationPolicy", "orders-require-jwt") not in kinds
    assert ("AuthorizationPolicy", "orders-allow-callers") in kinds
    assert not any(o.kind == "RequestAuthentication" for o in build(internal(), gateway=None))


def test_auth_routes_without_an_issuer_fail_closed() -> None:
    with pytest.raises(ValueError, match="need a jwt issuer"):
        build(jwt=None)


def test_public_routes_without_a_gateway_identity_are_an_error() -> None:
    with pytest.raises(ValueError, match="no gateway identity"):
        build(gateway=None)


def test_a_literal_star_in_a_route_path_is_rejected() -> None:
    with pytest.raises(ValueError, match="contains"):
        path_patterns("/orders/*")


def _denied_without_token(deny: CustomObject | None, path: str) -> bool:
    """Would a token-less request from the gateway for ``path`` be denied?"""
    if deny is None:
        return False
    for deny_rule in deny.spec["rules"]:
        operation = deny_rule["to"][0]["operation"]
        inside = any(value_matches(p, path) for p in operation["paths"])
        exempt = any(value_matches(p, path) for p in operation.get("notPaths", []))
        source = deny_rule["from"][0]["source"]
        assert source == {"principals": [GATEWAY_PRINCIPAL], "notRequestPrincipals": ["*"]}
        if inside and not exempt:
            return True
    return False


paths = st.text(alphabet="ab/-", max_size=5).map(lambda s: "/" + s)


@settings(max_examples=300, deadline=None)
@given(
    routes=st.lists(st.tuples(paths, st.booleans()), min_size=1, max_size=5),
    requests=st.lists(paths, min_size=1, max_size=10),
)
def test_the_token_is_required_exactly_where_the_gateway_routes_to_an_auth_route(
    routes: list[tuple[str, bool]], requests: list[str]
) -> None:
    spec = service(routes=[{"host": "api.example.com", "path": p, "auth": a} for p, a in routes])
    deny = by_name(build(spec)).get("orders-require-jwt")
    for path in requests:
        # The gateway picks the longest matching path prefix; the same path declared both ways
        # (on different hosts) counts as auth: fail closed.
        matching = [(p, a) for p, a in routes if path.startswith(p)]
        if not matching:
            continue
        longest = max(len(p) for p, _ in matching)
        wants_token = any(a for p, a in matching if len(p) == longest)
        assert _denied_without_token(deny, path) == wants_token, (routes, path)


# --- traffic ------------------------------------------------------------------------------------


def test_destination_rule() -> None:
    rule_ = _one(build(), "DestinationRule")
    assert (rule_.api_version, rule_.name) == ("networking.istio.io/v1", "orders")
    assert rule_.spec == {
        "host": HOST,
        "trafficPolicy": {
            "loadBalancer": {"simple": "LEAST_REQUEST"},
            "connectionPool": {"tcp": {"maxConnections": 64}, "http": {"http1MaxPendingRequests": 32}},
            "outlierDetection": {
                "consecutive5xxErrors": 7,
                "interval": "10s",
                "baseEjectionTime": "30s",
                "maxEjectionPercent": 50,
            },
            "tls": {"mode": "ISTIO_MUTUAL"},
        },
    }


def _one(objects: list[CustomObject], kind: str) -> CustomObject:
    [found] = [o for o in objects if o.kind == kind]
    return found


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("round_robin", {"simple": "ROUND_ROBIN"}),
        ("least_request", {"simple": "LEAST_REQUEST"}),
        ("source_ip_hash", {"consistentHash": {"useSourceIp": True}}),
    ],
)
def test_load_balancing_strategies(strategy: str, expected: dict[str, Any]) -> None:
    rule_ = _one(build(service(load_balancing=strategy)), "DestinationRule")
    assert rule_.spec["trafficPolicy"]["loadBalancer"] == expected


def test_virtual_service_timeouts_and_retries() -> None:
    vs = _one(build(), "VirtualService")
    assert (vs.api_version, vs.name) == ("networking.istio.io/v1", "orders")
    assert vs.spec == {
        "hosts": [HOST],
        "http": [
            {
                "name": "orders-idempotent",
                "match": IDEMPOTENT,
                "route": [{"destination": {"host": HOST, "port": {"number": 8080}}}],
                "timeout": "2.5s",
                "retries": {"attempts": 3, "perTryTimeout": "0.75s", "retryOn": RETRY_ON},
            },
            {
                "name": "orders",
                "route": [{"destination": {"host": HOST, "port": {"number": 8080}}}],
                "timeout": "2.5s",
                "retries": {"attempts": 3, "perTryTimeout": "0.75s", "retryOn": NEVER_REACHED},
            },
        ],
    }


def test_non_idempotent_requests_are_retried_only_when_they_never_reached_the_app() -> None:
    """Issue 14: a POST that reached orders and failed late (reset, 5xx) must not be sent again.
    Envoy: only connect-failure and refused-stream mean the upstream never processed the request."""
    http = _one(build(), "VirtualService").spec["http"]
    # First match wins: the catch-all route (POST, PATCH, anything else) comes last.
    assert "match" not in http[-1]
    assert set(http[-1]["retries"]["retryOn"].split(",")) == {"connect-failure", "refused-stream"}
    for route in http[:-1]:
        methods = {m["method"]["exact"] for m in route["match"]}
        assert methods <= {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}, methods
        assert "POST" not in methods and "PATCH" not in methods


def test_default_traffic_settings() -> None:
    spec = ServiceSpec.model_validate({"name": "orders", "image": "ghcr.io/acme/orders:1.4.2"})
    idempotent, other = _one(build(spec, gateway=None, jwt=None), "VirtualService").spec["http"]
    assert idempotent["timeout"] == other["timeout"] == "15s"
    assert idempotent["retries"] == {"attempts": 2, "perTryTimeout": "5s", "retryOn": RETRY_ON}
    assert other["retries"] == {"attempts": 2, "perTryTimeout": "5s", "retryOn": NEVER_REACHED}


def test_zero_retries_disables_them_explicitly() -> None:
    # Without a retries block Istio would retry twice by default.
    traffic = ORDERS["traffic"] | {"retries": 0}
    for route in _one(build(service(traffic=traffic)), "VirtualService").spec["http"]:
        assert route["retries"] == {"attempts": 0}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(15.0, "15s"), (2.5, "2.5s"), (100.0, "100s"), (0.75, "0.75s"), (0.001, "0.001s"), (300, "300s")],
)
def test_istio_durations(seconds: float, text: str) -> None:
    assert istio_duration(seconds) == text


def test_durations_below_a_millisecond_are_rejected() -> None:
    with pytest.raises(ValueError, match="1ms"):
        istio_duration(0.0004)


@given(st.floats(min_value=0.001, max_value=300, allow_nan=False))
def test_durations_round_trip(seconds: float) -> None:
    text = istio_duration(seconds)
    assert text.endswith("s")
    assert "e" not in text.lower()
    assert float(text[:-1]) == pytest.approx(seconds, abs=1e-9)


# --- egress -------------------------------------------------------------------------------------


def test_egress_service_entries() -> None:
    entries = [o for o in build() if o.kind == "ServiceEntry"]
    assert [(e.api_version, e.name) for e in entries] == [
        ("networking.istio.io/v1", "orders-egress-0"),
        ("networking.istio.io/v1", "orders-egress-1"),
    ]
    common = {
        "location": "MESH_EXTERNAL",
        "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
        "exportTo": ["."],
    }
    assert entries[0].spec == common | {"hosts": ["api.stripe.com"], "resolution": "DNS"}
    # Istio rejects DNS resolution for wildcard hosts; they are matched by SNI instead.
    assert entries[1].spec == common | {"hosts": ["*.s3.amazonaws.com"], "resolution": "NONE"}


def test_no_egress_no_service_entries_and_duplicates_collapse() -> None:
    assert not [o for o in build(service(egress=[])) if o.kind == "ServiceEntry"]
    twice = [
        o for o in build(service(egress=["api.stripe.com", "api.stripe.com"])) if o.kind == "ServiceEntry"
    ]
    assert [e.spec["hosts"] for e in twice] == [["api.stripe.com"]]


# --- whole set: determinism, schemas, policy rules -----------------------------------------------


def test_objects_are_deterministic_and_unique_per_kind() -> None:
    assert build() == build()
    assert [(o.kind, o.name) for o in build()] == [
        ("AuthorizationPolicy", "orders-allow-callers"),
        ("RequestAuthentication", "orders-jwt"),
        ("AuthorizationPolicy", "orders-require-jwt"),
        ("DestinationRule", "orders"),
        ("VirtualService", "orders"),
        ("ServiceEntry", "orders-egress-0"),
        ("ServiceEntry", "orders-egress-1"),
    ]


SCENARIOS: dict[str, list[CustomObject]] = {
    "public": build(),
    "root-auth": build(service(routes=[{"host": "api.example.com", "path": "/"}])),
    "public-only": build(service(routes=[{"host": "api.example.com", "path": "/p", "auth": False}])),
    "internal": build(internal(load_balancing="source_ip_hash"), gateway=None, jwt=None),
    "no-retries": build(service(traffic=ORDERS["traffic"] | {"retries": 0})),
    "isolated": build(internal(egress=[]), callers=[], gateway=None, jwt=None),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_object_validates_against_its_crd_schema(scenario: str) -> None:
    schemas = crd_schemas()
    for obj in SCENARIOS[scenario]:
        assert validate_custom(manifest(obj), schemas) == [], f"{obj.kind} {obj.name}"


def test_schema_validation_catches_a_bad_object() -> None:
    rule_ = _one(build(), "DestinationRule")
    bad = CustomObject(
        rule_.api_version,
        rule_.kind,
        rule_.name,
        rule_.spec | {"trafficPolicy": {"loadBalancer": {"simple": "X"}}},
    )
    assert validate_custom(manifest(bad), crd_schemas()) != []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_authorization_policies_pass_the_positive_allow_rule(scenario: str) -> None:
    positive = rule("mesh-allow-rules-positive")
    for obj in SCENARIOS[scenario]:
        if obj.kind == "AuthorizationPolicy":
            assert positive.evaluate(policy_resource(obj)) == [], obj.name


def test_the_positive_allow_rule_catches_a_wildcard_policy() -> None:
    positive = rule("mesh-allow-rules-positive")
    allow = by_name(build())["orders-allow-callers"]
    wildcard = CustomObject(
        allow.api_version,
        allow.kind,
        "orders-allow-anyone",
        allow.spec | {"rules": [{"from": [{"source": {"principals": ["*"]}}]}]},
    )
    negated = CustomObject(
        allow.api_version,
        allow.kind,
        "orders-allow-all-but",
        allow.spec | {"rules": [{"from": [{"source": {"notPrincipals": [GATEWAY_PRINCIPAL]}}]}]},
    )
    assert positive.evaluate(policy_resource(wildcard)) != []
    assert positive.evaluate(policy_resource(negated)) != []
