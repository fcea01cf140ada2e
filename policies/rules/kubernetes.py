"""Kubernetes workload, namespace and network rules (Pod Security Standards restricted,
the checkov Kubernetes baseline, CIS EKS section 4)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from components.namespaces import PLATFORM_NAMESPACES, PRIVILEGED_NAMESPACES, PUBLIC_NAMESPACES
from components.paved_road import API_ACCESS_ANNOTATION
from policies.model import (
    Resource,
    Rule,
    Violation,
    number,
    of_types,
    string_list,
)
from policies.table import on, table_rules, whole_plan

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
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
# Kinds that live in a namespace (no-default-namespace looks at these).
NAMESPACED = (
    *WORKLOADS,
    SERVICE,
    NETWORK_POLICY,
    RESOURCE_QUOTA,
    LIMIT_RANGE,
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Secret",
    SERVICE_ACCOUNT,
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:policy/v1:PodDisruptionBudget",
)
# Quota keys that keep a namespace from exposing a Service of its own on the nodes or a load balancer.
EXPOSURE_QUOTA = ("services.loadbalancers", "services.nodeports")
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


def _pod_part(resource: Resource, part: str) -> Mapping[str, Any]:
    """``part`` (spec, metadata) of the pod template inside any workload kind; a bare Pod's own."""
    if resource.type == POD:
        found = resource.get(part, {})
    elif resource.type == CRON_JOB:
        found = resource.get(f"spec.jobTemplate.spec.template.{part}", {})
    else:
        found = resource.get(f"spec.template.{part}", {})
    return found if isinstance(found, Mapping) else {}


def pod_spec(resource: Resource) -> Mapping[str, Any]:
    """The pod spec inside any workload kind."""
    return _pod_part(resource, "spec")


def pod_metadata(resource: Resource) -> Mapping[str, Any]:
    """The pod template's metadata (the pod's own, for a bare Pod)."""
    return _pod_part(resource, "metadata")


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
    return resource.type in NAMESPACED


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


def _opted_in(metadata: Any) -> bool:
    annotations = (metadata or {}).get("annotations") if isinstance(metadata, Mapping) else None
    return str((annotations or {}).get(API_ACCESS_ANNOTATION, "")).lower() == "true"


def _token_opt_in(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """A pod gets its service account's token unless the pod or, when the pod says nothing, its
    service account sets automountServiceAccountToken: false; a service account the plan does not
    declare (the namespace's `default`) mounts it
    (https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#opt-out-of-api-credential-automounting)."""
    exempt = set(config["exemptNamespaces"])
    accounts = {(a.namespace, a.object_name): a for a in of_types(resources, SERVICE_ACCOUNT)}
    mark = f"the {API_ACCESS_ANNOTATION}: 'true' opt-in"
    for (namespace, name), account in sorted(accounts.items(), key=lambda item: str(item[0])):
        if namespace in exempt or account.get("automountServiceAccountToken") is False:
            continue
        if not _opted_in(account.get("metadata")):
            shown = account.get("automountServiceAccountToken", "unset (true)")
            yield Violation(
                f"ServiceAccount {namespace}/{name}: automountServiceAccountToken is {shown} without {mark}",
                account.urn,
            )
    for workload in of_types(resources, *WORKLOADS):
        if not workload.namespace or workload.namespace in exempt:
            continue
        spec = pod_spec(workload)
        mounted = spec.get("automountServiceAccountToken")
        account_name = str(spec.get("serviceAccountName") or "default")
        declared = accounts.get((workload.namespace, account_name))
        if mounted is None and declared is not None:
            mounted = declared.get("automountServiceAccountToken")
        if mounted is not False and not _opted_in(pod_metadata(workload)):
            yield Violation(
                f"{workload.namespace}/{workload.object_name}: its pods mount the API token of service "
                f"account {account_name!r} without {mark}",
                workload.urn,
            )


def _empty_selector(selector: Any) -> bool:
    """A label selector that selects everything: no matchLabels and no matchExpressions."""
    return not isinstance(selector, Mapping) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    )


def _explicit_peers(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    """NetworkPolicy peers (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
    a rule without `from`/`to` admits every source or destination, a rule with neither peers nor
    ports admits all traffic, and an empty podSelector / namespaceSelector selects every pod / every
    namespace. Platform namespaces (exemptNamespaces) may admit every peer on named ports (the API
    server's webhook calls, every pod's calls to istiod), never all traffic."""
    strict = resource.namespace not in config["exemptNamespaces"]
    spec = resource.get("spec") or {}
    for direction, key in (("ingress", "from"), ("egress", "to")):
        for index, rule in enumerate(spec.get(direction) or []):
            where = f"{resource.object_name}: {direction}[{index}]"
            peers = (rule or {}).get(key) or []
            if not peers:
                if not (rule or {}).get("ports"):
                    yield f"{where} has no {key} and no ports: it admits all traffic"
                elif strict:
                    yield f"{where} has no {key}: it admits every peer on its ports"
                continue
            for number_, peer in enumerate(peers):
                if not peer:
                    yield f"{where}.{key}[{number_}] is an empty peer"
                    continue
                empty = [
                    selector
                    for selector in ("namespaceSelector", "podSelector")
                    if selector in peer and _empty_selector(peer[selector])
                ]
                if strict and empty:
                    yield f"{where}.{key}[{number_}] has an empty {' and '.join(empty)} (selects everything)"


def _exposure_pinned(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """Every quota of a namespace applies, so the namespace's limit is the lowest one given
    (https://kubernetes.io/docs/concepts/policy/resource-quotas/#object-count-quota)."""
    quotas: dict[str, list[Resource]] = {}
    for quota in of_types(resources, RESOURCE_QUOTA):
        quotas.setdefault(quota.namespace or "default", []).append(quota)
    namespaces = {n.object_name: n for n in of_types(resources, NAMESPACE)}
    for namespace in sorted(set(quotas) | set(namespaces)):
        if namespace in config["gatewayNamespaces"]:
            continue
        found = quotas.get(namespace, [])
        where = found[0].urn if found else namespaces[namespace].urn
        for key in EXPOSURE_QUOTA:
            limits = [
                number(hard[key], 1)
                for quota in found
                if isinstance(hard := quota.get("spec.hard"), Mapping) and key in hard
            ]
            if not limits:
                yield Violation(f"namespace {namespace!r}: no ResourceQuota pins {key} to 0", where)
            elif min(limits) != 0:
                yield Violation(f"namespace {namespace!r}: ResourceQuota allows {key} {min(limits):g}", where)


# Where a LoadBalancer may stand: the API gateway's namespace.
GATEWAY_NAMESPACES = {"gatewayNamespaces": string_list(PUBLIC_NAMESPACES)}
# The platform's own namespaces: the rules on service namespaces leave them out.
SERVICE_NAMESPACES_ONLY = {"exemptNamespaces": string_list(sorted(PLATFORM_NAMESPACES))}


RULES: tuple[Rule, ...] = table_rules(
    __file__,
    {
        "pod-no-host-namespaces": on(WORKLOADS, _host_namespaces),
        "pod-no-host-ports": on(WORKLOADS, _host_ports),
        "container-no-privilege": on(WORKLOADS, _no_privilege),
        "container-non-root": on(WORKLOADS, _non_root),
        "container-read-only-root-fs": on(WORKLOADS, _read_only_root),
        "container-drop-all-capabilities": on(WORKLOADS, _drop_all),
        "pod-seccomp-runtime-default": on(WORKLOADS, _seccomp),
        "container-resources": on(WORKLOADS, _resources),
        "container-probes": on(WORKLOADS, _probes),
        "image-pinned": on(WORKLOADS, _pinned_images),
        "pod-restricted-volumes": on(WORKLOADS, _volumes),
        "no-default-namespace": on(NAMESPACED, _not_default_namespace),
        "namespace-pod-security-restricted": on(
            (NAMESPACE,), _namespace_pss, {"exemptNamespaces": string_list(PRIVILEGED_NAMESPACES)}
        ),
        "service-no-public-exposure": on((SERVICE,), _service_type, GATEWAY_NAMESPACES),
        "release-no-public-service": on((HELM_RELEASE,), _release_service_type, GATEWAY_NAMESPACES),
        "namespace-default-deny": whole_plan(_default_deny),
        "service-account-token-opt-in": whole_plan(_token_opt_in, SERVICE_NAMESPACES_ONLY),
        "network-policy-explicit-peers": on((NETWORK_POLICY,), _explicit_peers, SERVICE_NAMESPACES_ONLY),
        "quota-no-public-services": whole_plan(_exposure_pinned, GATEWAY_NAMESPACES),
        "namespace-quota": whole_plan(_quota),
    },
    params={
        "min_uid": str(MIN_UID),
        "api_access_annotation": API_ACCESS_ANNOTATION,
    },
)
