"""Pod Security Standards ``restricted``, plus the platform's own floor (a read-only root filesystem, a
uid of 10000 or more): as Helm charts take it (camelCase dicts for their values), and as typed
arguments for the pods Rampart builds itself (the paved road's Deployments)."""

from __future__ import annotations

from typing import Any

import pulumi_kubernetes as k8s

RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


def run_as(uid: int) -> dict[str, Any]:
    """Non-root, as this uid and its group."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid}


def restricted_container(*, seccomp: bool = True) -> dict[str, Any]:
    """No privilege escalation, no capabilities, nothing written outside volumes. ``seccomp`` False
    where the chart applies the pod's profile instead (a container's would be rendered twice)."""
    context: dict[str, Any] = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    if seccomp:
        context["seccompProfile"] = dict(RUNTIME_DEFAULT)
    return context


def restricted_pod(
    uid: int | None, *, fs_group: bool = False, change_policy: str | None = None
) -> dict[str, Any]:
    """Non-root (as ``uid`` when given) with the RuntimeDefault seccomp profile. ``fs_group`` makes
    the pod's volumes group-writable for the uid; ``change_policy`` (OnRootMismatch) limits the
    recursive change to volumes whose root does not match yet."""
    context: dict[str, Any] = run_as(uid) if uid is not None else {"runAsNonRoot": True}
    if fs_group and uid is not None:
        context["fsGroup"] = uid
        if change_policy is not None:
            context["fsGroupChangePolicy"] = change_policy
    return context | {"seccompProfile": dict(RUNTIME_DEFAULT)}


def _typed_run_as(uid: int) -> dict[str, Any]:
    """:func:`run_as` and the RuntimeDefault seccomp profile, as keyword arguments of the typed
    pod and container security contexts (both take these four under the same names)."""
    return {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": uid,
        "seccomp_profile": k8s.core.v1.SeccompProfileArgs(type=RUNTIME_DEFAULT["type"]),
    }


def container_args(uid: int) -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        **_typed_run_as(uid),
    )


def pod_args(uid: int) -> k8s.core.v1.PodSecurityContextArgs:
    """Volumes group-writable for ``uid`` (fsGroup)."""
    return k8s.core.v1.PodSecurityContextArgs(fs_group=uid, **_typed_run_as(uid))
