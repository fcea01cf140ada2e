"""Where a route's token keys come from (issue 14): a JWKS URI istiod fetches, or the key set inline.

Istio (https://istio.io/latest/docs/reference/config/security/jwt/): istiod fetches ``jwksUri`` from
its own pod, so a name that resolves to the loopback address (the local stack's *.localtest.me)
reaches istiod itself and every token is rejected; an inline ``jwks`` is used as it is."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from components.mesh.policy import CustomObject, ServiceIdentity, service_mesh_objects
from rampart.config import ServiceSpec
from rampart.config.models import Jwt
from rampart.paths.catalog import _key_sources
from tests.conftest import stack_config
from tests.support.reference import crd_schemas
from tests.support.schemas import validate_custom

ISSUER = "https://auth.example.test/"
KEYS = json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]})
ORDERS = ServiceSpec.model_validate(
    {
        "name": "orders",
        "image": "ghcr.io/acme/orders:1.0.0",
        "routes": [{"host": "api.example.test", "path": "/orders", "auth": True}],
    }
)


def authentication(jwt: Jwt) -> CustomObject:
    objects = service_mesh_objects(
        ORDERS,
        namespace="orders",
        trust_domain="cluster.local",
        callers=[],
        gateway=ServiceIdentity("kong", "kong-gateway"),
        jwt=jwt,
    )
    (found,) = [o for o in objects if o.kind == "RequestAuthentication"]
    return found


def manifest(obj: CustomObject) -> dict[str, Any]:
    return {
        "apiVersion": obj.api_version,
        "kind": obj.kind,
        "metadata": {"name": obj.name, "namespace": "orders"},
        "spec": obj.spec,
    }


def test_inline_keys_go_to_the_request_authentication_as_they_are() -> None:
    inline = authentication(Jwt.model_validate({"issuer": ISSUER, "jwks": KEYS}))
    (rule,) = inline.spec["jwtRules"]
    assert rule["jwks"] == KEYS and "jwksUri" not in rule
    fetched = authentication(Jwt.model_validate({"issuer": ISSUER, "jwks_uri": f"{ISSUER}jwks.json"}))
    (rule,) = fetched.spec["jwtRules"]
    assert rule["jwksUri"] == f"{ISSUER}jwks.json" and "jwks" not in rule
    for obj in (inline, fetched):
        assert validate_custom(manifest(obj), crd_schemas()) == []


@pytest.mark.parametrize(
    ("jwt", "expected"),
    [
        ({"issuer": ISSUER}, "exactly one of jwks_uri and jwks"),
        ({"issuer": ISSUER, "jwks": KEYS, "jwks_uri": f"{ISSUER}k"}, "exactly one of jwks_uri and jwks"),
        ({"issuer": ISSUER, "jwks": "{not json"}, "is not JSON"),
        ({"issuer": ISSUER, "jwks": '{"keys": []}'}, "non-empty"),
        ({"issuer": ISSUER, "jwks": '[{"kty": "RSA"}]'}, "JSON Web Key Set"),
        ({"issuer": ISSUER, "jwks": '{"keys": [{"kid": "k1"}]}'}, '"kty"'),
    ],
)
def test_a_bad_key_source_is_refused_with_its_reason(jwt: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Jwt.model_validate(jwt)
    assert expected in str(caught.value)


def test_the_local_stack_carries_its_keys_inline() -> None:
    jwt = stack_config("local").jwt
    assert jwt is not None and jwt.jwks_uri is None and jwt.jwks is not None
    assert json.loads(jwt.jwks)["keys"][0]["kty"] == "RSA"
    # The cloud stacks keep fetching their issuer's published keys.
    prod = stack_config("prod").jwt
    assert prod is not None and prod.jwks_uri is not None and prod.jwks is None


def test_the_model_refuses_a_loopback_fetch_and_accepts_inline_keys() -> None:
    loopback = {"issuer": ISSUER, "jwksUri": "https://auth.rampart.localtest.me/.well-known/jwks.json"}
    refusal, _ = _key_sources([loopback])
    assert refusal is not None and refusal.verdict == "refuses"
    # With neither, istiod fetches the issuer's discovery document: the issuer's host counts.
    refusal, _ = _key_sources([{"issuer": "https://localhost/"}])
    assert refusal is not None
    assert _key_sources([{"issuer": ISSUER, "jwks": KEYS}]) == (None, [])
    # An inline jwks wins over jwksUri (istiod uses it and fetches nothing).
    assert _key_sources([loopback | {"jwks": KEYS}]) == (None, [])
    refusal, _ = _key_sources([{"issuer": ISSUER, "jwks": '{"keys": []}'}])
    assert refusal is not None
    assert _key_sources([{"issuer": ISSUER, "jwksUri": f"{ISSUER}jwks.json"}]) == (
        None,
        [f"{ISSUER}jwks.json"],
    )
