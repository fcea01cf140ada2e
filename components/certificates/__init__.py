"""The certificates layer: cert-manager, the platform CA and (on aws) ACME through Route 53.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

NAMESPACE = "cert-manager"
SERVICE_ACCOUNT = "cert-manager"
