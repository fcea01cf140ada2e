"""A catalog the tests own, so no test depends on what stacks/services/ declares today.

SHOP is a small shop's services: calls between services, public routes (with and without a JWT, an
allowlist, rate limits), databases, queues with several consumers, egress hosts, every load-balancing
strategy. Tests that need a specific topology build their config from it (or from their own
declarations); tests of the sample stacks derive what they expect from the stack's config instead.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rampart.config import PlatformConfig, load_platform_config
from rampart.config.reference import MODELINE

HOST = "api.rampart.localtest.me"
JWT = {
    "issuer": "https://auth.rampart.localtest.me/",
    "jwks_uri": "https://auth.rampart.localtest.me/.well-known/jwks.json",
    "audiences": ["rampart-api"],
}
SMALL = {"min": 1, "max": 2}
# What every test platform declares besides its environment: the existing-cluster target and the
# owner and cost center its resources are tagged with.
PLATFORM = {"target": "kubernetes", "owner": "platform-team", "cost_center": "cc-1042"}
# The teams that own SHOP's services (the sample stacks declare the same names).
TEAMS: list[dict[str, Any]] = [
    {"name": name, "group": f"team-{name}"} for name in ("commerce", "payments", "fulfilment", "support")
]
SHOP: dict[str, dict[str, Any]] = {
    "orders": {
        "team": "commerce",
        "image": "ghcr.io/acme/orders:1.4.2",
        "replicas": SMALL,
        "calls": ["payments", "inventory"],
        "database": {"storage_gb": 10},
        "queue": {"publishes": ["order-created"]},
        "routes": [
            {
                "host": HOST,
                "path": "/orders",
                "rate_limit": {"requests_per_minute": 600},
                "max_body_mb": 2,
                "cors_origins": ["https://shop.example.com"],
            }
        ],
        "load_balancing": "least_request",
    },
    "payments": {
        "team": "payments",
        "image": "ghcr.io/acme/payments:2.0.7",
        "replicas": SMALL,
        "health": {"startup": "/healthz"},
        "database": {"storage_gb": 10},
        "queue": {"publishes": ["payment-settled"]},
        "traffic": {"timeout_seconds": 10.0, "retries": 1},
        "egress": ["api.stripe.com"],
    },
    "inventory": {
        "team": "fulfilment",
        "image": "ghcr.io/acme/inventory:3.1.0",
        "replicas": SMALL,
        "database": {"storage_gb": 5},
        "queue": {"consumes": ["payment-settled"]},
        "load_balancing": "least_request",
    },
    "catalog": {
        "team": "commerce",
        "image": "ghcr.io/acme/catalog:1.9.0",
        "replicas": SMALL,
        "database": {"storage_gb": 5},
        "routes": [
            {"host": HOST, "path": "/catalog", "auth": False, "rate_limit": {"requests_per_minute": 1200}}
        ],
    },
    "cart": {
        "team": "commerce",
        "image": "ghcr.io/acme/cart@sha256:" + "3f" * 32,
        "replicas": SMALL,
        "calls": ["catalog", "inventory"],
        "routes": [{"host": HOST, "path": "/cart", "rate_limit": {"requests_per_minute": 300}}],
        "load_balancing": "source_ip_hash",
    },
    "notifications": {
        "team": "fulfilment",
        "image": "ghcr.io/acme/notifications:0.8.3",
        "replicas": SMALL,
        "queue": {"consumes": ["order-created", "payment-settled"]},
        "egress": [
            {"host": "smtp.internal.example.com", "port": 587, "protocol": "TCP", "cidr": "10.100.25.0/24"}
        ],
        "env": {"SMTP_HOST": "smtp.internal.example.com", "LOG_LEVEL": "info"},
    },
    "backoffice": {
        "team": "support",
        "image": "ghcr.io/acme/backoffice:5.2.1",
        "replicas": SMALL,
        "calls": ["orders", "payments"],
        "routes": [
            {"host": "admin.rampart.localtest.me", "ip_allowlist": ["203.0.113.0/24", "198.51.100.17/32"]}
        ],
    },
}


def declarations(catalog: Mapping[str, Mapping[str, Any]] = SHOP) -> list[dict[str, Any]]:
    """The catalog as a list of full declarations (name included), as the config models take them."""
    return [{"name": name, **copy.deepcopy(dict(spec))} for name, spec in catalog.items()]


def shop_config(**settings: Any) -> PlatformConfig:
    """SHOP on a local kubernetes platform (``settings`` replace platform keys)."""
    raw = {
        "environment": "local",
        **PLATFORM,
        "kubernetes": {"version": "1.33", "context": "kind-rampart"},
        "jwt": JWT,
        "teams": TEAMS,
        "services": declarations(),
    }
    return load_platform_config(raw | settings)


def with_catalog(config: PlatformConfig, catalog: Mapping[str, Mapping[str, Any]]) -> PlatformConfig:
    """A stack's platform settings with the services of ``catalog`` instead of its own, validated. The
    stack's teams stay when every service of ``catalog`` names one of them."""
    owned = all("team" in spec for spec in catalog.values())
    raw = config.model_dump(mode="json", exclude={"services", "vault_token", *(() if owned else ("teams",))})
    return load_platform_config(raw | {"services": declarations(catalog)})


def write_catalog(directory: Path, catalog: Mapping[str, Mapping[str, Any]] = SHOP) -> None:
    """``catalog`` as files, one per service, as stacks/services/ holds them."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name, spec in catalog.items():
        text = yaml.safe_dump(dict(spec), sort_keys=False)
        (directory / f"{name}.yaml").write_text(f"{MODELINE}../schemas/service.schema.json\n{text}")
