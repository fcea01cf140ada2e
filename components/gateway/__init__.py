"""The API gateway layer: Kong (DB-less, ingress controller) in front of the public routes.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

NAMESPACE = "kong"
RELEASE_NAME = "kong"
# The proxy pods' mesh identity.
GATEWAY_SERVICE_ACCOUNT = f"{RELEASE_NAME}-gateway"
