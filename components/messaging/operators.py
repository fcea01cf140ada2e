"""The RabbitMQ Cluster Operator and the Messaging Topology Operator, installed for the messaging layer
from their pinned release bundles into ``rabbitmq-system``, which gets the platform's baseline on top,
and the internal CA in the topology operator's trust store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.certificates.cert_manager import CertificatesHandle, certificate
from components.core import labels
from components.core.base import InClusterComponent
from components.core.namespace_baseline import ContainerDefaults, baseline_objects
from components.messaging import OPERATOR_NAMESPACE
from components.messaging.rabbitmq import (
    CLUSTER_OPERATOR,
    OPERATOR_CA_CERTIFICATE,
    OPERATOR_CA_FILE,
    OPERATOR_RESOURCES,
    TOPOLOGY_CRD_PLURALS,
    TOPOLOGY_OPERATOR,
    TOPOLOGY_OPERATOR_CONTAINER,
    TOPOLOGY_OPERATOR_DEPLOYMENT,
    operator_network_policies,
    operator_quota,
    topology_crd_url,
)

CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


@dataclass(frozen=True)
class Operators:
    cluster: pulumi.Resource
    topology: pulumi.Resource
    # The topology operator's CRDs, managed apart from its bundle: topology objects wait for them.
    topology_crds: tuple[pulumi.Resource, ...] = ()


def keep_crds(*, retain: bool) -> pulumi.ResourceTransform:
    """A transform for the children of a manifest component: its CRDs are retained on delete when
    ``retain`` (where the environment protects its stateful resources: the CRDs then stay in the cluster
    with the retained Vhosts and Queues, even if their manifest leaves the program). Not `protect`: a CRD
    holds no data of its own and must not stop a destroy (policies protection-follows-environment).
    yaml/v2 components do not pass retainOnDelete on to their children (pulumi/pulumi-kubernetes#3065,
    closed won't-fix, which points to transforms), and `transforms` reach the children of packaged
    components: https://www.pulumi.com/docs/iac/concepts/options/transforms/"""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ != CRD_TYPE:
            return None
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=retain))
        return pulumi.ResourceTransformResult(args.props, opts)

    return transform


def bundle_keeps_its_crds(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """The bundle ships the same CRDs it installs beside its operator; its copies are always retained on
    delete, so deleting or replacing the bundle never deletes a CRD (and, by cascade, every object of
    it): their lifecycle is the separately managed CRDs' (see :func:`install`)."""
    if args.type_ != CRD_TYPE:
        return None
    return pulumi.ResourceTransformResult(
        args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    )


def install(
    owner: InClusterComponent,
    name: str,
    *,
    labels_: Mapping[str, str],
    on_aws: bool,
    meshed: bool,
    depends_on: Sequence[pulumi.Resource],
    protect: bool = False,
) -> Operators:
    """Both bundles, then rabbitmq-system's baseline (the bundles create the namespace itself).

    The topology operator's CRDs are their own resources, one manifest each from the operator's
    repository at the bundle's tag, retained per environment: Vhosts and Queues are retained objects,
    and a deleted CRD deletes every object of its kind (Kubernetes, "Delete a
    CustomResourceDefinition": https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/
    custom-resource-definitions/#delete-a-customresourcedefinition). The bundle is created after them and
    never deletes its copies (:func:`bundle_keeps_its_crds`), so on destroy the topology objects go
    first, then the operator, then (where not protected) the CRDs."""
    cluster_operator = k8s.yaml.v2.ConfigFile(
        f"{name}-cluster-operator", file=CLUSTER_OPERATOR.url, opts=owner.on_cluster(depends_on)
    )
    crds = tuple(
        k8s.yaml.v2.ConfigFile(
            f"{name}-topology-crd-{plural}",
            file=topology_crd_url(plural),
            opts=pulumi.ResourceOptions.merge(
                owner.on_cluster(depends_on),
                pulumi.ResourceOptions(transforms=[keep_crds(retain=protect)]),
            ),
        )
        for plural in TOPOLOGY_CRD_PLURALS
    )
    # The topology operator watches RabbitmqClusters: their CRD must exist when it starts.
    topology_operator = k8s.yaml.v2.ConfigFile(
        f"{name}-topology-operator",
        file=TOPOLOGY_OPERATOR.url,
        opts=pulumi.ResourceOptions.merge(
            owner.on_cluster([*depends_on, cluster_operator, *crds]),
            pulumi.ResourceOptions(transforms=[bundle_keeps_its_crds]),
        ),
    )
    opts = owner.on_cluster([cluster_operator, topology_operator])
    namespace_labels = dict(labels.PSS_LABELS)
    if meshed:
        # Explicit, so that no injection default of the mesh pulls the operators in.
        namespace_labels["istio-injection"] = "disabled"
    # Both bundles declare the namespace; the patch adds only the labels the platform needs.
    k8s.core.v1.NamespacePatch(
        f"{name}-operator-namespace-labels",
        metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=OPERATOR_NAMESPACE, labels=namespace_labels),
        opts=opts,
    )
    baseline_objects(
        f"{name}-operator",
        namespace=OPERATOR_NAMESPACE,
        labels_=labels_,
        quota=operator_quota(),
        container_defaults=ContainerDefaults.of(OPERATOR_RESOURCES["topology-operator"]),
        policies=operator_network_policies(on_aws),
        opts=opts,
    )
    return Operators(cluster=cluster_operator, topology=topology_operator, topology_crds=crds)


def trust_internal_ca(
    owner: InClusterComponent,
    name: str,
    *,
    certificates: CertificatesHandle,
    provider: k8s.Provider,
    topology_operator: pulumi.Resource,
) -> pulumi.Resource:
    """The internal CA in the topology operator's trust store, so it verifies the broker: a
    certificate from the same issuer puts the CA (its ca.crt) into rabbitmq-system, and a patch of
    the bundle's Deployment mounts it under /etc/ssl/certs."""
    ca_copy = certificate(
        f"{name}-operator-ca",
        namespace=OPERATOR_NAMESPACE,
        dns_names=[f"{OPERATOR_CA_CERTIFICATE}.{OPERATOR_NAMESPACE}.svc"],
        secret_name=OPERATOR_CA_CERTIFICATE,
        handle=certificates.internal(topology_operator),
        provider=provider,
        parent=owner,
    )
    return k8s.apps.v1.DeploymentPatch(
        f"{name}-topology-operator-trust",
        metadata=k8s.meta.v1.ObjectMetaPatchArgs(
            name=TOPOLOGY_OPERATOR_DEPLOYMENT, namespace=OPERATOR_NAMESPACE
        ),
        spec=_ca_mount(),
        opts=owner.on_cluster([topology_operator, ca_copy]),
    )


def _ca_mount() -> k8s.apps.v1.DeploymentSpecPatchArgs:
    """The CA copy's ca.crt as a file in the operator container's system trust directory."""
    return k8s.apps.v1.DeploymentSpecPatchArgs(
        template=k8s.core.v1.PodTemplateSpecPatchArgs(
            spec=k8s.core.v1.PodSpecPatchArgs(
                volumes=[
                    k8s.core.v1.VolumePatchArgs(
                        name=OPERATOR_CA_CERTIFICATE,
                        secret=k8s.core.v1.SecretVolumeSourcePatchArgs(
                            secret_name=OPERATOR_CA_CERTIFICATE,
                            items=[k8s.core.v1.KeyToPathPatchArgs(key="ca.crt", path="ca.crt")],
                        ),
                    )
                ],
                containers=[
                    k8s.core.v1.ContainerPatchArgs(
                        name=TOPOLOGY_OPERATOR_CONTAINER,
                        volume_mounts=[
                            k8s.core.v1.VolumeMountPatchArgs(
                                name=OPERATOR_CA_CERTIFICATE,
                                mount_path=OPERATOR_CA_FILE,
                                sub_path="ca.crt",
                                read_only=True,
                            )
                        ],
                    )
                ],
            )
        )
    )
