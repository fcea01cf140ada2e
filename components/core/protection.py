"""One rule for what a stack protects from `pulumi destroy` and from a removed declaration."""

from __future__ import annotations

# Staging and prod keep their state (keys, databases, the broker, log buckets, the cluster) through a
# destroy or a removed service; local and dev stay disposable so they can be torn down in one go.
PROTECTED_ENVIRONMENTS = frozenset({"staging", "prod"})


def is_protected(environment: str) -> bool:
    return environment in PROTECTED_ENVIRONMENTS
