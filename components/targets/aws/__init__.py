"""The `aws` target: VPC, EKS, nodes, Karpenter, the load-balancer controller, KMS and IAM.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

KARPENTER_NAMESPACE = "karpenter"
