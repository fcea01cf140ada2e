"""Kubernetes workload, namespace and network rules (Pod Security Standards restricted,
the checkov Kubernetes baseline, CIS EKS section 4)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from components.namespaces import PRIVILEGED_NAMESPACES, PUBLIC_NAMESPACES
from policies.model import (
    Resource,
    ResourceCheck,
    Rule,
    Severity,
    Violation,
    number,
    of_types,
    string_list,
)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
WORKLOADS = (DEPLOYMENT, STATEFUL_SET, DAEMON_SET, JOB, CRON_JOB, POD)
NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE = "kubernetes:core/v1:Service"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
LIMIT_RANGE = "kubernetes:core/v1:LimitRange"
# Volume types Pod Security Standards `restricted` allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
MIN_UID = 10000


def pod_spec(resource: Resource) -> Mapping[str, Any]:
    """The pod spec inside any workload kind."""
    if resource.type == POD:
        spec = resource.get("spec", {})
    elif resource.type == CRON_JOB:
        spec = resource.get("spec.jobTemplate.spec.template.spec", {})
    else:
        spec = resource.get("spec.template.spec", {})
    return spec if isinstance(spec, Mapping) else {}


def containers(resource: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, container) for every container, init and ephemeral containers included."""
    spec = pod_spec(resource)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            yield f"{key[:-1]} {container.get('name', '?')!r}", container


def _host_namespaces(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    spec = pod_spec(resource)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            yield f"{resource.object_name}: {key} is true"


def _host_ports(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for label, container in containers(resource):
        for port in container.get("ports") or []:
            if number(port.get("hostPort")) > 0:
                yield f"{resource.object_name}: {label} binds hostPort {int(number(port['hostPort']))}"


def _context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return container.get("securityContext") or {}


def _no_privilege(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for label, container in containers(resource):
        context = _context(container)
        if context.get("privileged") is True:
            yield f"{resource.object_name}: {label} is privileged"
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"{resource.object_name}: {label} does not set allowPrivilegeEscalation: false"


def _non_root(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    pod_context = pod_spec(resource).get("securityContext") or {}
    for label, container in containers(resource):
        context = _context(container)
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        uid = context.get("runAsUser", pod_context.get("runAsUser"))
        if non_root is not True:
            yield f"{resource.object_name}: {label} does not set runAsNonRoot: true"
        if uid is None or number(uid) < MIN_UID:
            yield f"{resource.object_name}: {label} runs as uid {uid} (needs a uid >= {MIN_UID})"


def _read_only_root(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for label, container in containers(resource):
        if _context(container).get("readOnlyRootFilesystem") is not True:
            yield f"{resource.object_name}: {label} has a writable root filesystem"


def _drop_all(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for label, container in containers(resource):
        capabilities = _context(container).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f"{resource.object_name}: {label} does not drop ALL capabilities"
        added = [c for c in capabilities.get("add") or [] if c != "NET_BIND_SERVICE"]
        if added:
            yield f"{resource.object_name}: {label} adds capabilities {added}"


def _seccomp(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    pod_profile = ((pod_spec(resource).get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    for label, container in containers(resource):
        profile = (_context(container).get("seccompProfile") or {}).get("type", pod_profile)
        if profile not in ("RuntimeDefault", "Localhost"):
            yield f"{resource.object_name}: {label} has seccomp profile {profile} (needs RuntimeDefault)"


def _resources(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for label, container in containers(resource):
        declared = container.get("resources") or {}
        for kind in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if r not in (declared.get(kind) or {})]
            if missing:
                yield f"{resource.object_name}: {label} has no {kind} for {', '.join(missing)}"


def _probes(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.type in (JOB, CRON_JOB):
        return
    for label, container in containers(resource):
        if label.startswith("container "):
            for probe in ("livenessProbe", "readinessProbe"):
                if not container.get(probe):
                    yield f"{resource.object_name}: {label} has no {probe}"


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def _pinned_images(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for label, container in containers(resource):
        image = str(container.get("image", ""))
        if not image_is_pinned(image):
            yield f"{resource.object_name}: {label} image {image!r} is not pinned to a version tag or digest"


def _volumes(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    for volume in pod_spec(resource).get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            extra = sorted(kinds - RESTRICTED_VOLUMES)
            yield f"{resource.object_name}: volume {volume.get('name')!r} uses {extra}"


def _not_default_namespace(resource: Resource, _: Mapping[str, Any]) -> Iterator[str]:
    if resource.type == NAMESPACE:
        return
    if resource.get("metadata.namespace") in (None, "", "default") and _is_namespaced(resource):
        yield f"{resource.object_name}: {resource.type.rsplit(':', 1)[1]} in the default namespace"


def _is_namespaced(resource: Resource) -> bool:
    return resource.type in (
        *WORKLOADS,
        SERVICE,
        NETWORK_POLICY,
        RESOURCE_QUOTA,
        LIMIT_RANGE,
    ) or resource.type in (
        "kubernetes:core/v1:ConfigMap",
        "kubernetes:core/v1:Secret",
        "kubernetes:core/v1:ServiceAccount",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:policy/v1:PodDisruptionBudget",
    )


def _service_type(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    kind = resource.get("spec.type", "ClusterIP")
    if kind in ("LoadBalancer", "NodePort") and resource.namespace not in config["gatewayNamespaces"]:
        yield (
            f"{resource.object_name}: a {kind} Service in namespace {resource.namespace!r}; only the gateway "
            f"({', '.join(config['gatewayNamespaces'])}) is exposed"
        )


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def _service_types(values: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, type) of every `type: LoadBalancer|NodePort` in a chart's values."""
    if isinstance(values, Mapping):
        for key, value in values.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "type" and value in ("LoadBalancer", "NodePort"):
                yield where, str(value)
            else:
                yield from _service_types(value, where)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from _service_types(item, f"{path}[{index}]")


def _release_service_type(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if resource.get("namespace") in config["gatewayNamespaces"]:
        return
    for path, kind in _service_types(resource.get("values") or {}):
        yield f"{resource.name}: values {path} makes a {kind} Service outside the gateway"


def _namespace_pss(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    if resource.object_name in config["exemptNamespaces"]:
        return
    labels = resource.get("metadata.labels") or {}
    if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        yield f"namespace {resource.object_name}: pod-security.kubernetes.io/enforce is not 'restricted'"


def _workload_namespaces(resources: list[Resource]) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for workload in of_types(resources, *WORKLOADS):
        if workload.namespace:
            found.setdefault(workload.namespace, workload)
    return found


def _is_default_deny(policy: Resource) -> bool:
    spec = policy.get("spec") or {}
    return (
        not (spec.get("podSelector") or {})
        and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def _default_deny(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    covered = {p.namespace for p in of_types(resources, NETWORK_POLICY) if _is_default_deny(p)}
    for namespace, workload in sorted(_workload_namespaces(resources).items()):
        if namespace not in covered:
            yield Violation(
                f"namespace {namespace!r} runs workloads without a default-deny NetworkPolicy", workload.urn
            )


def _quota(resources: list[Resource], _: Mapping[str, Any]) -> Iterator[Violation]:
    quotas = {r.namespace for r in of_types(resources, RESOURCE_QUOTA)}
    limits = {r.namespace for r in of_types(resources, LIMIT_RANGE)}
    for namespace, workload in sorted(_workload_namespaces(resources).items()):
        missing = [
            kind
            for kind, present in (("ResourceQuota", quotas), ("LimitRange", limits))
            if namespace not in present
        ]
        if missing:
            yield Violation(
                f"namespace {namespace!r} runs workloads without a {' or '.join(missing)}", workload.urn
            )


# Where a LoadBalancer may stand: the API gateway's namespace.
GATEWAY_NAMESPACES = {"gatewayNamespaces": string_list(PUBLIC_NAMESPACES)}


def _workload_rule(
    name: str,
    description: str,
    severity: Severity,
    remediation: str,
    *,
    controls: tuple[str, ...],
    check: ResourceCheck,
) -> Rule:
    """A security rule on every kind of workload's pods."""
    return Rule.of(
        name,
        description,
        severity,
        remediation,
        group="workload",
        controls=controls,
        types=WORKLOADS,
        check=check,
    )


def _gateway_only_rule(
    name: str, description: str, remediation: str, type_: str, check: ResourceCheck
) -> Rule:
    """A rule that keeps public Services (LoadBalancer, NodePort) to the gateway namespaces."""
    return Rule.of(
        name,
        description,
        "high",
        remediation,
        group="network",
        controls=("rampart-baseline",),
        types=(type_,),
        check=check,
        config_schema=GATEWAY_NAMESPACES,
    )


RULES: tuple[Rule, ...] = (
    _workload_rule(
        "pod-no-host-namespaces",
        "Pods do not share the node's network, PID or IPC namespace.",
        "critical",
        "Remove hostNetwork/hostPID/hostIPC from the pod spec.",
        controls=(
            "CKV_K8S_17",
            "CKV_K8S_18",
            "CKV_K8S_19",
            "CIS-EKS-4.2.2",
            "CIS-EKS-4.2.3",
            "CIS-EKS-4.2.4",
            "PSS-baseline",
        ),
        check=_host_namespaces,
    ),
    _workload_rule(
        "pod-no-host-ports",
        "Containers do not bind ports on the node.",
        "high",
        "Remove hostPort; expose the container through a Service.",
        controls=("CKV_K8S_26", "PSS-baseline"),
        check=_host_ports,
    ),
    _workload_rule(
        "container-no-privilege",
        "Containers are not privileged and cannot escalate privileges.",
        "critical",
        "Set securityContext.privileged: false and allowPrivilegeEscalation: false.",
        controls=("CKV_K8S_16", "CKV_K8S_20", "CIS-EKS-4.2.1", "CIS-EKS-4.2.5", "PSS-restricted"),
        check=_no_privilege,
    ),
    _workload_rule(
        "container-non-root",
        f"Containers run as non-root with a uid of at least {MIN_UID}.",
        "high",
        f"Set securityContext.runAsNonRoot: true and runAsUser >= {MIN_UID} (build the image for that uid).",
        controls=("CKV_K8S_23", "CKV_K8S_40", "CIS-EKS-4.2.6", "PSS-restricted"),
        check=_non_root,
    ),
    _workload_rule(
        "container-read-only-root-fs",
        "Containers have a read-only root filesystem.",
        "medium",
        "Set readOnlyRootFilesystem: true and mount an emptyDir where the process must write (e.g. /tmp).",
        controls=("CKV_K8S_22",),
        check=_read_only_root,
    ),
    _workload_rule(
        "container-drop-all-capabilities",
        "Containers drop ALL Linux capabilities (adding back at most NET_BIND_SERVICE).",
        "high",
        "Set securityContext.capabilities.drop: [ALL].",
        controls=("CKV_K8S_28", "CKV_K8S_37", "PSS-restricted"),
        check=_drop_all,
    ),
    _workload_rule(
        "pod-seccomp-runtime-default",
        "Pods run under the RuntimeDefault seccomp profile.",
        "medium",
        "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
        controls=("CKV_K8S_31", "PSS-restricted"),
        check=_seccomp,
    ),
    _workload_rule(
        "container-resources",
        "Containers declare CPU and memory requests and limits.",
        "medium",
        "Declare resources.requests and resources.limits for cpu and memory.",
        controls=("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13"),
        check=_resources,
    ),
    _workload_rule(
        "container-probes",
        "Long-running containers have liveness and readiness probes.",
        "low",
        "Declare health.liveness and health.readiness paths for the service.",
        controls=("CKV_K8S_8", "CKV_K8S_9"),
        check=_probes,
    ),
    _workload_rule(
        "image-pinned",
        "Images are pinned to a version tag or a digest, never 'latest'.",
        "medium",
        "Use an explicit version tag or an @sha256 digest.",
        controls=("CKV_K8S_14", "CKV_K8S_43"),
        check=_pinned_images,
    ),
    _workload_rule(
        "pod-restricted-volumes",
        "Pods use only the volume types Pod Security Standards 'restricted' allows (no hostPath).",
        "high",
        "Replace hostPath and other volume types with emptyDir, configMap, secret, projected or a PVC.",
        controls=("CKV_K8S_27", "PSS-restricted"),
        check=_volumes,
    ),
    Rule.of(
        "no-default-namespace",
        "Nothing is deployed into the default namespace.",
        "medium",
        "Give every object an explicit namespace of its own.",
        group="workload",
        controls=("CKV_K8S_21", "CIS-EKS-4.6.3"),
        types=(
            *WORKLOADS,
            SERVICE,
            NETWORK_POLICY,
            RESOURCE_QUOTA,
            LIMIT_RANGE,
            "kubernetes:core/v1:ConfigMap",
            "kubernetes:core/v1:Secret",
            "kubernetes:core/v1:ServiceAccount",
            "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
            "kubernetes:policy/v1:PodDisruptionBudget",
        ),
        check=_not_default_namespace,
    ),
    Rule.of(
        "namespace-pod-security-restricted",
        "Namespaces enforce Pod Security Standards 'restricted'.",
        "high",
        "Label the namespace pod-security.kubernetes.io/enforce=restricted (platform namespaces "
        "that need more are listed in exemptNamespaces).",
        group="workload",
        controls=("CIS-EKS-4.2", "PSS-restricted"),
        types=(NAMESPACE,),
        check=_namespace_pss,
        config_schema={"exemptNamespaces": string_list(PRIVILEGED_NAMESPACES)},
    ),
    _gateway_only_rule(
        "service-no-public-exposure",
        "No LoadBalancer or NodePort Service except the API gateway's.",
        "Use a ClusterIP Service and publish routes through the gateway.",
        SERVICE,
        _service_type,
    ),
    _gateway_only_rule(
        "release-no-public-service",
        "Helm releases expose no LoadBalancer or NodePort Service except the API gateway's.",
        "Keep chart services ClusterIP; publish through the gateway.",
        HELM_RELEASE,
        _release_service_type,
    ),
    Rule.of(
        "namespace-default-deny",
        "Every namespace that runs workloads has a default-deny NetworkPolicy (ingress, egress).",
        "high",
        "Add a NetworkPolicy with an empty podSelector, both policyTypes and no rules.",
        group="network",
        controls=("CIS-EKS-4.3.2", "CKV2_K8S_6"),
        stack_check=_default_deny,
    ),
    Rule.of(
        "namespace-quota",
        "Every namespace that runs workloads has a ResourceQuota and a LimitRange.",
        "medium",
        "Add a ResourceQuota and a LimitRange to the namespace.",
        group="workload",
        controls=("CIS-EKS-4.6.1",),
        stack_check=_quota,
    ),
)
