"""Third-party software goes in as Helm releases: pinned chart, values we can inspect offline.

Every release goes through :func:`release`, the one place a pinned chart becomes the release's source:
its repository, or, for air-gapped installs, a local chart mirror (``rampart:charts.mirror``: the
composition root hands the typed :class:`ChartMirror` to :func:`installing_from`; no component reads
config). From a mirror the release's ``chart`` is ``<mirror>/<chart>-<version>.tgz`` and it has no
repository: Helm installs a chart archive given as a path without contacting any repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core.chart_archive import archive_names, chart_name


@dataclass(frozen=True)
class Chart:
    repository: str
    name: str
    version: str

    @property
    def short_name(self) -> str:
        """The name in Chart.yaml (an OCI reference's last part)."""
        return chart_name(self.name)


@dataclass(frozen=True)
class ChartMirror:
    """A local chart mirror: ``<directory>/<chart>-<version>.tgz`` per chart (the layout
    scripts/build_chart_mirror.py and `rampart render --charts` use)."""

    directory: Path

    def archive(self, chart: Chart) -> Path | None:
        """The chart's archive in the mirror, or None."""
        for name in archive_names(chart.short_name, chart.version):
            if (self.directory / name).is_file():
                return self.directory / name
        return None

    def missing(self, charts: Iterable[Chart]) -> list[str]:
        """The archive names of the charts the mirror lacks, sorted."""
        return sorted({archive_names(c.short_name, c.version)[0] for c in charts if self.archive(c) is None})


# The mirror releases install from (None: the charts' repositories), set by the composition root.
_MIRROR: ContextVar[ChartMirror | None] = ContextVar("rampart_chart_mirror", default=None)


@contextmanager
def installing_from(mirror: ChartMirror | None) -> Iterator[None]:
    """Every release built inside installs from ``mirror`` (None: from its repository)."""
    token = _MIRROR.set(mirror)
    try:
        yield
    finally:
        _MIRROR.reset(token)


def _source(chart: Chart) -> tuple[str, k8s.helm.v3.RepositoryOptsArgs | None]:
    """(the release's ``chart``, its repository options): from the mirror when one is in use."""
    mirror = _MIRROR.get()
    if mirror is None:
        return chart.name, k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository)
    archive = mirror.archive(chart)
    if archive is None:  # the config check (charts.mirror) refuses such a mirror before any resource
        raise ValueError(
            f"chart mirror {mirror.directory} has no {archive_names(chart.short_name, chart.version)[0]}"
        )
    return str(archive), None


def release(
    resource_name: str,
    chart: Chart,
    *,
    release_name: str,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    source, repository = _source(chart)
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=release_name,
            chart=source,
            version=chart.version,
            repository_opts=repository,
            namespace=namespace,
            # Namespaces are ours: created with their security baseline before the release.
            create_namespace=False,
            max_history=10,
            values=dict(values),
        ),
        opts=opts,
    )
