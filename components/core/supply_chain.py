"""Which images may run: the registries a stack allows, and pinning by digest.

One definition, read by the config rules (rampart/config/load.py), the policy pack
(policies/rules/supply_chain.py) and the admission policy the cluster enforces
(components/paved_road/admission.py), so the three cannot disagree.

An allowed registry is a host (with an optional port) and an optional path prefix, e.g. ``ghcr.io/acme``.
An image comes from it when its reference starts with the prefix followed by ``/``: ``ghcr.io/acme/orders``
does, ``ghcr.io/acme-evil/orders`` and ``ghcr.io/acmeorders`` do not. References are compared as written,
never normalised: an image without a registry host (``nginx``, ``acme/worker``) is refused, so Docker Hub
images are written in full (``docker.io/library/nginx``) and the cluster sees exactly what was checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# An OCI digest in the form Kubernetes pins images with: sha256 and 64 lowercase hex digits, at the end.
DIGEST = re.compile(r"@sha256:[a-f0-9]{64}$")
# A registry host ("." or ":" or localhost, as the Docker reference grammar tells a host from a path),
# an optional port, then optional lowercase path components.
REGISTRY_PREFIX = (
    r"^(localhost|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+)(:[0-9]{1,5})?"
    r"(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)
# Environments whose images must be pinned by digest (a tag can be moved to other content; a digest cannot).
DIGEST_ENVIRONMENTS = ("staging", "prod")


def has_digest(image: str) -> bool:
    """``name@sha256:<64 hex>`` or ``name:tag@sha256:<64 hex>``."""
    return DIGEST.search(image) is not None


def from_registry(image: str, registries: Iterable[str]) -> bool:
    """Whether ``image`` starts with one of ``registries`` followed by ``/`` (no prefix tricks)."""
    return any(image.startswith(registry.rstrip("/") + "/") for registry in registries)


def requires_digest(environment: str) -> bool:
    return environment in DIGEST_ENVIRONMENTS
