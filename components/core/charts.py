"""Third-party software goes in as Helm releases: pinned chart, values we can inspect offline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class Chart:
    repository: str
    name: str
    version: str


def release(
    resource_name: str,
    chart: Chart,
    *,
    release_name: str,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=release_name,
            chart=chart.name,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
            namespace=namespace,
            # Namespaces are ours: created with their security baseline before the release.
            create_namespace=False,
            max_history=10,
            values=dict(values),
        ),
        opts=opts,
    )
