"""Chart names as a Helm release gives them, also when the chart comes from a local chart mirror.

A release's ``chart`` is a name in its repository (``cert-manager``), an OCI reference
(``oci://public.ecr.aws/karpenter/karpenter``) or, installed from a chart mirror
(``rampart:charts.mirror``), the archive ``<dir>/<chart>-<version>.tgz``. Policies, the render and the
paths all name the chart the same way through :func:`chart_name`. No heavy imports: the policy packs
read this.
"""

from __future__ import annotations

ARCHIVE_SUFFIX = ".tgz"


def archive_names(name: str, version: str) -> tuple[str, ...]:
    """The file names a mirror may hold the chart under: ``<chart>-<version>.tgz`` (what `helm pull`
    and `helm package` write), also with a leading ``v`` of the version left off."""
    versions = [version] + ([version[1:]] if version.startswith("v") else [])
    return tuple(f"{name}-{v}{ARCHIVE_SUFFIX}" for v in versions)


def chart_name(reference: str, version: str = "") -> str:
    """``cert-manager`` -> itself; ``oci://.../karpenter`` -> ``karpenter``; ``<dir>/istiod-1.30.3.tgz``
    (version ``1.30.3``) -> ``istiod``."""
    last = reference.rstrip("/").rsplit("/", 1)[-1]
    if version and last.endswith(ARCHIVE_SUFFIX):
        for candidate in (version, version[1:] if version.startswith("v") else ""):
            suffix = f"-{candidate}{ARCHIVE_SUFFIX}"
            if candidate and last.endswith(suffix):
                return last[: -len(suffix)]
    return last
