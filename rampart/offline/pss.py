"""Pod Security Standards as the Pod Security admission controller enforces them.

Each check is one control of https://kubernetes.io/docs/concepts/security/pod-security-standards/
(the `latest` version of the policies): ``baseline`` prevents known privilege escalations,
``restricted`` adds the hardening controls. A namespace labelled
``pod-security.kubernetes.io/enforce=<level>`` rejects Pods that break its level; the admission
controller only warns about workload templates, but a Deployment whose template breaks the level
never gets a Pod, so templates are checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# restricted "Volume Types": the policy rules' list.
from policies.rules.kubernetes import RESTRICTED_VOLUMES

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")

# baseline "Capabilities": adding any other capability is disallowed.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
# baseline "SELinux": allowed seLinuxOptions.type values (user and role must be unset).
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# baseline "Sysctls": the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SECCOMP_ALLOWED = {"RuntimeDefault", "Localhost"}
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTAINER_KEYS = ("initContainers", "containers", "ephemeralContainers")
# Where each workload kind keeps its pod template.
TEMPLATE_PATHS = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}
# apiVersion prefixes of the kinds above ("v1" for Pod, ReplicationController, PodTemplate).
WORKLOAD_GROUPS = {"v1", "apps", "batch"}


def pod_template(manifest: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(pod metadata, pod spec) of a Pod or workload object, None for any other kind."""
    path = TEMPLATE_PATHS.get(str(manifest.get("kind")))
    if path is None or str(manifest.get("apiVersion", "")).partition("/")[0] not in WORKLOAD_GROUPS:
        return None
    node: Any = manifest
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        return None
    return node.get("metadata") or {}, node.get("spec") or {}


def check(level: str, metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """Every control of ``level`` (and the levels below it) the pod breaks, one line each."""
    if level not in LEVELS:
        return [f"unknown Pod Security level {level!r}"]
    if level == "privileged":
        return []
    problems = list(_baseline(metadata, spec))
    if level == "restricted":
        problems += list(_restricted(spec))
    return problems


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in CONTAINER_KEYS:
        for container in spec.get(key) or []:
            yield f"{key}[{container.get('name', '?')}]", container


def _context(holder: Mapping[str, Any]) -> Mapping[str, Any]:
    return holder.get("securityContext") or {}


def _contexts(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The pod's security context, then each container's."""
    yield "spec.securityContext", _context(spec)
    for where, container in _containers(spec):
        yield f"{where}.securityContext", _context(container)


def _baseline(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[str]:
    for where, context in _contexts(spec):
        yield from _baseline_context(where, context)
    yield from _baseline_pod(metadata, spec)
    for where, container in _containers(spec):
        yield from _baseline_container(where, container)


def _baseline_context(where: str, context: Mapping[str, Any]) -> Iterator[str]:
    """HostProcess, Seccomp, AppArmor and SELinux: pod- and container-level fields alike."""
    if (context.get("windowsOptions") or {}).get("hostProcess") is True:
        yield f"baseline HostProcess: {where}.windowsOptions.hostProcess is true"
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_ALLOWED:
        yield f"baseline Seccomp: {where}.seccompProfile.type is {seccomp}"
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in SECCOMP_ALLOWED:
        yield f"baseline AppArmor: {where}.appArmorProfile.type is {apparmor}"
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        yield f"baseline SELinux: {where}.seLinuxOptions.type is {selinux['type']}"
    for key in ("user", "role"):
        if selinux.get(key):
            yield f"baseline SELinux: {where}.seLinuxOptions.{key} is set"


def _baseline_pod(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> Iterator[str]:
    """Host Namespaces, HostPath Volumes, AppArmor annotations and Sysctls."""
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            yield f"baseline Host Namespaces: spec.{key} is true"
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            yield f"baseline HostPath Volumes: volume {volume.get('name', '?')!r} is a hostPath"
    for annotation, value in (metadata.get("annotations") or {}).items():
        if annotation.startswith(APPARMOR_ANNOTATION) and not (
            value == "runtime/default" or str(value).startswith("localhost/")
        ):
            yield f"baseline AppArmor: annotation {annotation} is {value}"
    for sysctl in _context(spec).get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"baseline Sysctls: {sysctl.get('name')} is not a safe sysctl"


def _baseline_container(where: str, container: Mapping[str, Any]) -> Iterator[str]:
    """Privileged Containers, Capabilities, /proc Mount Type and Host Ports."""
    context = _context(container)
    if context.get("privileged") is True:
        yield f"baseline Privileged Containers: {where} is privileged"
    added = set((context.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
    if added:
        yield f"baseline Capabilities: {where} adds {', '.join(sorted(added))}"
    if context.get("procMount", "Default") != "Default":
        yield f"baseline /proc Mount Type: {where}.securityContext.procMount is {context['procMount']}"
    for port in container.get("ports") or []:
        if port.get("hostPort"):
            yield f"baseline Host Ports: {where} uses hostPort {port['hostPort']}"


def _restricted(spec: Mapping[str, Any]) -> Iterator[str]:
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if kinds - RESTRICTED_VOLUMES:
            yield (
                f"restricted Volume Types: volume {volume.get('name', '?')!r} is "
                f"{', '.join(sorted(kinds - RESTRICTED_VOLUMES))}"
            )
    pod = _context(spec)
    if pod.get("runAsUser") == 0:
        yield "restricted Running as Non-root user: spec.securityContext.runAsUser is 0"
    windows = (spec.get("os") or {}).get("name") == "windows"
    pod_non_root = pod.get("runAsNonRoot") is True
    pod_seccomp = (pod.get("seccompProfile") or {}).get("type") in SECCOMP_ALLOWED
    for where, container in _containers(spec):
        context = _context(container)
        non_root = context.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            yield (
                f"restricted Running as Non-root: {where} does not set runAsNonRoot: true "
                "(nor does spec.securityContext)"
            )
        if context.get("runAsUser") == 0:
            yield f"restricted Running as Non-root user: {where}.securityContext.runAsUser is 0"
        if windows:
            continue  # the remaining restricted controls exempt Windows pods
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"restricted Privilege Escalation: {where} does not set allowPrivilegeEscalation: false"
        seccomp = (context.get("seccompProfile") or {}).get("type")
        if seccomp is None and not pod_seccomp:
            yield (
                f"restricted Seccomp: {where} sets no seccompProfile RuntimeDefault/Localhost "
                "(nor does spec.securityContext)"
            )
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f"restricted Capabilities: {where} does not drop ALL"
        extra = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            yield f"restricted Capabilities: {where} adds {', '.join(sorted(extra))}"
