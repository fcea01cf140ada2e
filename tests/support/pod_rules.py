"""The workload rules a chart's pod must pass once rendered, for pods that are not plan objects (the
charts render them at deploy time): tests build a stand-in pod from the values and check it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from policies import catalog
from policies.model import Resource
from policies.rules.kubernetes import POD

# Pod Security Standards `restricted` plus the platform's own floor; probes are left to each test
# (some workloads have no liveness probe on purpose).
RESTRICTED_POD_RULES = (
    "container-non-root",
    "container-no-privilege",
    "container-read-only-root-fs",
    "container-drop-all-capabilities",
    "pod-seccomp-runtime-default",
    "pod-restricted-volumes",
    "container-resources",
    "image-pinned",
)


def violations(
    manifest: Mapping[str, Any], rules: Sequence[str] = RESTRICTED_POD_RULES
) -> dict[str, list[str]]:
    """Rule name -> what it finds wrong with the pod, for the rules that find something."""
    resource = Resource("urn:stand-in", POD, str(manifest["metadata"]["name"]), manifest)
    found = {rule: catalog.rule(rule).evaluate(resource) for rule in rules}
    return {rule: problems for rule, problems in found.items() if problems}
