"""The data layer: a database per service (CloudNativePG in the cluster, RDS or Aurora on aws).

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

# The CloudNativePG operator.
OPERATOR_NAMESPACE = "cnpg-system"
