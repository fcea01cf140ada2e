"""The secrets layer: Vault (server, Secrets Operator) and its per-service configuration.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

NAMESPACE = "vault"
SERVICE_ACCOUNT = "vault"
# The Vault Secrets Operator.
OPERATOR_NAMESPACE = "vault-secrets-operator-system"
