"""Who can do what on the cluster: teams by namespaces by verbs, evaluated from the plan's Roles, bindings
and EKS access entries with Kubernetes RBAC semantics, and the isolation rules they are held to.

`rampart access --stack <s>` prints the matrix; :func:`evaluate` is the API.
"""

from __future__ import annotations

from rampart.access.model import CAPABILITIES, Access, Cell, Principal, evaluate

__all__ = ["CAPABILITIES", "Access", "Cell", "Principal", "evaluate"]
