"""Every namespace the platform owns, derived from each layer's own names: no service may take one,
and the policy packs' defaults come from the same set."""

from __future__ import annotations

from components import certificates, data, gateway, mesh, messaging, observability, secrets
from components.core import KUBERNETES_NAMESPACES
from components.targets import aws

PLATFORM_NAMESPACES: frozenset[str] = frozenset(
    {
        *KUBERNETES_NAMESPACES,
        mesh.ROOT_NAMESPACE,
        mesh.CNI_NAMESPACE,
        gateway.NAMESPACE,
        certificates.NAMESPACE,
        secrets.NAMESPACE,
        secrets.OPERATOR_NAMESPACE,
        data.OPERATOR_NAMESPACE,
        messaging.NAMESPACE,
        messaging.OPERATOR_NAMESPACE,
        observability.NAMESPACE,
        aws.KARPENTER_NAMESPACE,
    }
)
# Namespaces whose system pods need more than Pod Security Standards `restricted` (node agents).
PRIVILEGED_NAMESPACES: tuple[str, ...] = (mesh.CNI_NAMESPACE, mesh.ROOT_NAMESPACE)
# Namespaces that may expose a LoadBalancer Service: the API gateway's alone.
PUBLIC_NAMESPACES: tuple[str, ...] = (gateway.NAMESPACE,)
