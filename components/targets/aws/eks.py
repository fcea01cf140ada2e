"""The EKS cluster, secure by default: secrets envelope-encrypted with a dedicated KMS key,
private endpoint, all control-plane logs, API access entries only (no implicit creator admin),
IMDSv2-only nodes on encrypted volumes, EKS Pod Identity for every add-on, and the
Kubernetes provider every in-cluster layer uses."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.targets.aws import iam, kms, ownership
from components.targets.aws.addons import addon_version
from components.targets.aws.handles import EksHandle, NetworkHandle
from components.targets.aws.karpenter import DISCOVERY_TAG
from components.targets.aws.max_pods import node_group_max_pods
from components.targets.aws.team_access import TeamAccess, team_access_entries
from rampart.config.models import AwsTarget

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CLUSTER_ADMIN_POLICY = "arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
# EKS standard support only: a version leaving it is an upgrade to plan, not a silent move to
# extended support at six times the control-plane price (EKS user guide, "Understand the Kubernetes
# version lifecycle on EKS"; UpgradePolicy.supportType in the EKS API reference).
SUPPORT_TYPE = "STANDARD"
# terraform-aws-eks `before_compute = true`: the CNI (and the Pod Identity agent its credentials come
# from, since the node roles lack AmazonEKS_CNI_Policy) exist before the first node joins, or nodes stay
# NotReady until the CNI can reach EC2.
BEFORE_COMPUTE = ("eks-pod-identity-agent", "vpc-cni")
# The cluster role's use of the secrets key: EKS encrypts and decrypts with it directly (no kms:ViaService
# to narrow by); a grant it makes is for the cluster, an AWS resource.
SECRETS_KEY_USE = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"]
SECRETS_KEY_GRANTS = ["kms:CreateGrant"]
VPC_CNI_CONFIGURATION: dict[str, object] = {
    # Network-policy enforcement on: the paved road's NetworkPolicies are enforced, not advisory.
    "enableNetworkPolicy": "true",
    "env": {
        # Security groups for pods (SecurityGroupPolicy): a service's pods get a group its database admits.
        "ENABLE_POD_ENI": "true",
        # Standard mode (VPC CNI >= 1.11): kubelet probes reach branch-interface pods without
        # DISABLE_TCP_EARLY_DEMUX on the CNI's init container.
        "POD_SECURITY_GROUP_ENFORCING_MODE": "standard",
    },
}


@dataclass(frozen=True)
class EksClusterArgs:
    cluster_name: str
    kubernetes_version: str
    network: NetworkHandle
    settings: AwsTarget
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    # Staging and prod protect the cluster and its keys from `pulumi destroy`.
    protect: bool
    # The ownership tags (ownership.OWNERSHIP_KEYS) for what EKS and the CSI driver create untagged by the
    # provider: the system nodes' instances, volumes and interfaces, and persistent volumes.
    tags: Mapping[str, str]
    # The teams whose roles get access entries scoped to their namespaces.
    teams: Sequence[TeamAccess] = ()


def node_user_data(max_pods: int) -> str:
    """AL2023 user data for the managed node group: a nodeadm NodeConfig that sets kubelet's maxPods,
    MIME multipart as EKS merges it with its own (https://docs.aws.amazon.com/eks/latest/userguide/
    launch-templates.html#launch-template-user-data; https://awslabs.github.io/amazon-eks-ami/nodeadm/)."""
    node_config = (
        "---\n"
        "apiVersion: node.eks.aws/v1alpha1\n"
        "kind: NodeConfig\n"
        "spec:\n"
        "  kubelet:\n"
        "    config:\n"
        f"      maxPods: {max_pods}\n"
    )
    document = (
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="RAMPART"\n'
        "\n"
        "--RAMPART\n"
        "Content-Type: application/node.eks.aws\n"
        "\n"
        f"{node_config}"
        "\n"
        "--RAMPART--\n"
    )
    return base64.b64encode(document.encode()).decode()


def secrets_key_document(key_arn: str) -> str:
    """The cluster role's policy on the secrets key; its grants only for AWS resources."""
    return iam.document(
        [
            iam.allow(SECRETS_KEY_USE, [key_arn]),
            iam.allow(
                SECRETS_KEY_GRANTS, [key_arn], Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}}
            ),
        ]
    )


def managed_policy(partition: pulumi.Input[str], name: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", name)


class EksCluster(pulumi.ComponentResource):
    handle: EksHandle
    provider: k8s.Provider
    # What in-cluster add-ons must wait for: nodes to schedule on, the CNI, DNS.
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rampart:aws:EksCluster", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        settings, cluster_name = args.settings, args.cluster_name
        region = settings.region

        def key(purpose: str, description: str, **extra: object) -> aws.kms.Key:
            return kms.customer_key(
                f"{name}-{purpose}",
                description,
                kms.Location(args.account_id, args.partition, region),
                protect=args.protect,
                opts=child,
                **extra,  # type: ignore[arg-type]
            )

        secrets_key = key("secrets", f"EKS {cluster_name}: envelope encryption of Kubernetes secrets")
        ebs_key = key(
            "ebs",
            f"EKS {cluster_name}: node and persistent volumes",
            via_ec2=True,
        )
        logs_key = key(
            "logs",
            f"EKS {cluster_name}: control-plane logs",
            log_group_prefixes=[f"/aws/eks/{cluster_name}/"],
        )
        # EKS writes to this exact group; creating it first sets retention and encryption.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=settings.control_plane_log_retention_days,
            kms_key_id=logs_key.arn,
            opts=child,
        )

        cluster_role = aws.iam.Role(
            f"{name}-cluster",
            assume_role_policy=iam.document(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "eks.amazonaws.com"},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                    }
                ]
            ),
            permissions_boundary=settings.permissions_boundary_arn,
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=managed_policy(args.partition, "AmazonEKSClusterPolicy"),
            opts=child,
        )
        # Security groups for pods: the VPC resource controller attaches trunk and branch interfaces.
        vpc_resource_controller = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-vpc-resource-controller",
            role=cluster_role.name,
            policy_arn=managed_policy(args.partition, "AmazonEKSVPCResourceController"),
            opts=child,
        )
        secrets_key_use = aws.iam.RolePolicy(
            f"{name}-cluster-secrets-key",
            role=cluster_role.id,
            policy=secrets_key.arn.apply(secrets_key_document),
            opts=child,
        )

        cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.network.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=settings.endpoint_public_access,
                public_access_cidrs=settings.public_access_cidrs if settings.endpoint_public_access else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
            ),
            enabled_cluster_log_types=LOG_TYPES,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # Admins come from config as access entries; the creating identity gets nothing implicitly.
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=SUPPORT_TYPE),
            # The role's permissions exist before the cluster and outlive it: "Ensure that IAM Role
            # permissions are created before and deleted after EKS Cluster handling. Otherwise, EKS will
            # not be able to properly delete EKS managed EC2 infrastructure such as Security Groups"
            # (terraform-provider-aws, aws_eks_cluster example; terraform-aws-eks does the same).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[log_group, cluster_policy, vpc_resource_controller, secrets_key_use],
                protect=args.protect,
            ),
        )
        # Karpenter's EC2NodeClass selects security groups by this tag, and EKS creates the cluster
        # security group untagged: tag it, as eksctl does ("eksctl automatically tags the cluster's
        # shared node security group with karpenter.sh/discovery", eksctl user guide, Karpenter support;
        # Karpenter getting started: `aws ec2 create-tags ... --resources ${SECURITY_GROUP_IDS}`).
        aws.ec2.Tag(
            f"{name}-cluster-sg-discovery",
            resource_id=cluster.vpc_config.cluster_security_group_id,
            key=DISCOVERY_TAG,
            value=cluster.name,
            opts=child,
        )

        admin_associations = []
        for index, principal in enumerate(settings.admin_principal_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=principal,
                type="STANDARD",
                opts=child,
            )
            admin_associations.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-admin-{index}",
                    cluster_name=cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=args.partition.apply(lambda p: CLUSTER_ADMIN_POLICY.format(partition=p)),
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=child,
                )
            )
        # Each team's roles: entries in the team's group, read access on its namespaces only (team_access.py).
        team_access_entries(
            name, cluster_name=cluster.name, partition=args.partition, teams=args.teams, opts=child
        )

        # The private endpoint answers only what the cluster security group admits: the nodes, and the
        # networks named here (the runner that deploys this stack). "You must ensure that your Amazon EKS
        # control plane security group contains rules to allow ingress traffic on port 443 from your
        # connected network" (EKS user guide, cluster-endpoint, "Accessing a private only API server").
        deploy_routes = [
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-private-access-{index}",
                security_group_id=cluster.vpc_config.cluster_security_group_id,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description="Kubernetes API from the deploy runner's network",
                opts=child,
            )
            for index, cidr in enumerate(settings.private_access_cidrs)
        ]

        system_role, system_role_policies = self._node_role(f"{name}-system-nodes", args, child)
        karpenter_node_role, karpenter_node_policies = self._node_role(f"{name}-karpenter-nodes", args, child)
        # Managed node groups get their access entry from EKS; Karpenter's nodes need one.
        aws.eks.AccessEntry(
            f"{name}-karpenter-nodes",
            cluster_name=cluster.name,
            principal_arn=karpenter_node_role.arn,
            type="EC2_LINUX",
            opts=child,
        )

        nodes = settings.system_nodes
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-system-nodes",
            description=f"EKS {cluster_name} system nodes: IMDSv2 only, encrypted gp3, no SSH",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # Hop limit 1: pods cannot reach the node's instance credentials.
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=nodes.disk_gb,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=ebs_key.arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            # The provider's default tags tag the template, not what EKS launches from it: the ownership
            # tags go to the instances, their volumes and interfaces here (ownership.py).
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind,
                    tags={"Name": f"{cluster_name}-system", **ownership.ownership_only(args.tags)},
                )
                for kind in ownership.LAUNCHED_RESOURCE_TYPES
            ],
            # Security groups for pods take one interface per node for the trunk: max-pods without it.
            user_data=node_user_data(node_group_max_pods(nodes.instance_types)),
            opts=child,
        )
        before_compute = self._before_compute(name, args=args, cluster=cluster)
        node_group = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=system_role.arn,
            subnet_ids=args.network.private_subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            # Pinned per stack (aws.node_ami_release) and promoted dev -> staging -> prod; unset only where
            # config allows following the latest release (docs/node-ami.md).
            release_version=settings.node_ami_release,
            capacity_type="ON_DEMAND",
            instance_types=nodes.instance_types,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=nodes.min_size, max_size=nodes.max_size, desired_size=nodes.desired_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)
            ),
            labels={"rampart.dev/node-role": "system"},
            # The node role's policies before the nodes and after them on destroy (as for the cluster),
            # and the CNI with its credentials before the first node joins (BEFORE_COMPUTE).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*system_role_policies, *before_compute.values()],
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

        addons = self._addons(
            name,
            args=args,
            cluster=cluster,
            ebs_key=ebs_key,
            node_group=node_group,
            before_compute=before_compute,
            opts=child,
        )
        kubeconfig = pulumi.Output.all(
            cluster.endpoint, cluster.certificate_authority.data, cluster.name
        ).apply(lambda values: _kubeconfig(str(values[0]), str(values[1]), str(values[2]), region))
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            enable_server_side_apply=True,
            # Talking to the cluster needs an admin access entry first, and a route to the endpoint.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*admin_associations, *deploy_routes]),
        )
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="gp3-encrypted",
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            # Persistent volumes are created by the CSI driver, past the provider's default tags. Parameters
            # are immutable: a change replaces the class (named, so delete first); volumes already
            # provisioned keep the tags they were created with.
            parameters={
                "type": "gp3",
                "encrypted": "true",
                "kmsKeyId": ebs_key.arn,
                **ownership.storage_class_tag_parameters(args.tags),
            },
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=addons),
        )

        self.ready = [node_group, *addons]
        self.handle = EksHandle(
            cluster_name=cluster.name,
            cluster_arn=cluster.arn,
            endpoint=cluster.endpoint,
            cluster_security_group_id=cluster.vpc_config.cluster_security_group_id,
            karpenter_node_role=karpenter_node_role,
            karpenter_node_role_policies=list(karpenter_node_policies),
            ebs_kms_key_arn=ebs_key.arn,
            region=region,
            account_id=args.account_id,
            partition=args.partition,
        )
        self.register_outputs({"clusterName": cluster.name, "endpoint": cluster.endpoint})

    def _node_role(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        role = aws.iam.Role(
            name,
            assume_role_policy=iam.service_trust("ec2.amazonaws.com"),
            permissions_boundary=args.settings.permissions_boundary_arn,
            opts=opts,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy}",
                role=role.name,
                policy_arn=managed_policy(args.partition, policy),
                opts=opts,
            )
            for policy in NODE_POLICIES
        ]
        return role, attachments

    def _addon(
        self,
        name: str,
        addon_name: str,
        *,
        args: EksClusterArgs,
        cluster: aws.eks.Cluster,
        depends_on: list[pulumi.Resource],
        configuration: dict[str, object] | None = None,
        identity: tuple[iam.PodIdentityRole, str] | None = None,
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon_name}",
            cluster_name=cluster.name,
            addon_name=addon_name,
            # One table per Kubernetes version (addons.py): never "whatever EKS chose at creation".
            addon_version=addon_version(args.kubernetes_version, addon_name),
            configuration_values=json.dumps(configuration) if configuration else None,
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(
                    role_arn=identity[0].role.arn, service_account=identity[1]
                )
            ]
            if identity
            else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _before_compute(
        self, name: str, *, args: EksClusterArgs, cluster: aws.eks.Cluster
    ) -> dict[str, aws.eks.Addon]:
        """The add-ons nodes need to become Ready: the Pod Identity agent, then the CNI with its role."""
        pod_identity = self._addon(
            name, "eks-pod-identity-agent", args=args, cluster=cluster, depends_on=[cluster]
        )
        cni_role = _addon_role(
            f"{name}-vpc-cni",
            args=args,
            cluster=cluster,
            service_account="aws-node",
            policy="AmazonEKS_CNI_Policy",
            opts=pulumi.ResourceOptions(parent=self),
        )
        vpc_cni = self._addon(
            name,
            "vpc-cni",
            args=args,
            cluster=cluster,
            # The add-on creates the association: the role's policies first (PodIdentityRole).
            depends_on=[pod_identity, *cni_role.policies],
            configuration=VPC_CNI_CONFIGURATION,
            identity=(cni_role, "aws-node"),
        )
        return dict(zip(BEFORE_COMPUTE, (pod_identity, vpc_cni), strict=True))

    def _addons(
        self,
        name: str,
        *,
        args: EksClusterArgs,
        cluster: aws.eks.Cluster,
        ebs_key: aws.kms.Key,
        node_group: aws.eks.NodeGroup,
        before_compute: dict[str, aws.eks.Addon],
        opts: pulumi.ResourceOptions,
    ) -> list[pulumi.Resource]:
        def addon(
            addon_name: str,
            depends_on: list[pulumi.Resource],
            identity: tuple[iam.PodIdentityRole, str] | None = None,
        ) -> aws.eks.Addon:
            return self._addon(
                name, addon_name, args=args, cluster=cluster, depends_on=depends_on, identity=identity
            )

        pod_identity, vpc_cni = before_compute["eks-pod-identity-agent"], before_compute["vpc-cni"]
        ebs_role = _addon_role(
            f"{name}-ebs-csi",
            args=args,
            cluster=cluster,
            service_account="ebs-csi-controller-sa",
            policy="service-role/AmazonEBSCSIDriverPolicy",
            opts=opts,
            policy_json=pulumi.Output.all(ebs_key.arn, args.account_id).apply(
                lambda values: iam.document(
                    ownership.ebs_key_statements(str(values[0]), args.settings.region, str(values[1]))
                )
            ),
        )
        after_nodes: list[pulumi.Resource] = [node_group, vpc_cni]
        return [
            pod_identity,
            vpc_cni,
            addon("kube-proxy", [cluster]),
            addon("coredns", after_nodes),
            addon(
                "aws-ebs-csi-driver",
                [*after_nodes, pod_identity, *ebs_role.policies],
                identity=(ebs_role, "ebs-csi-controller-sa"),
            ),
            # The HPAs of the paved road read CPU through metrics-server.
            addon("metrics-server", after_nodes),
        ]


def _kubeconfig(endpoint: str, certificate_authority: str, cluster_name: str, region: str) -> str:
    """An exec-based kubeconfig: short-lived tokens from `aws eks get-token`, nothing stored."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority},
                }
            ],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


def _addon_role(
    name: str,
    *,
    args: EksClusterArgs,
    cluster: aws.eks.Cluster,
    service_account: str,
    policy: str,
    opts: pulumi.ResourceOptions,
    policy_json: pulumi.Input[str] | None = None,
) -> iam.PodIdentityRole:
    """An EKS add-on's Pod Identity role in kube-system, with the AWS managed ``policy``.

    The add-on's own pod_identity_associations creates the association (``associate=False``)."""
    return iam.PodIdentityRole(
        name,
        cluster_name=cluster.name,
        cluster_arn=cluster.arn,
        namespace="kube-system",
        service_account=service_account,
        permissions_boundary=args.settings.permissions_boundary_arn,
        associate=False,
        opts=opts,
        managed_policy_arns=[managed_policy(args.partition, policy)],
        policy_json=policy_json,
    )
