"""How many pods a node can hold when security groups for pods put a trunk interface on it.

The VPC CNI gives every pod an address from the node's network interfaces; the EKS AMI's default
max-pods is `ENIs x (IPv4 per ENI - 1) + 2` (https://github.com/awslabs/amazon-eks-ami, eni-max-pods.txt).
With `ENABLE_POD_ENI` the VPC resource controller attaches a trunk interface to every supported node,
and "the trunk network interface is included in the maximum number of network interfaces supported by
the instance type" (https://docs.aws.amazon.com/eks/latest/userguide/security-groups-pods-deployment.html):
one interface fewer carries pod addresses, so the default overstates the node and the extra pods hang
in ContainerCreating. Karpenter takes the same correction as `settings.reservedENIs`
(https://karpenter.sh/docs/reference/settings/: "Reserved ENIs are not included in the calculations for
max-pods or kube-reserved").

Why not prefix delegation: pods with their own security group sit on branch interfaces, which get one
address each and no prefixes, so delegation would not add room for them; it also needs free contiguous
/28 blocks in the subnets, and Karpenter would still need an explicit maxPods (it does not know about
prefixes). Reserving the trunk's slot is exact for both node sources with one number.
"""

from __future__ import annotations

from collections.abc import Sequence

# The trunk interface security groups for pods attaches to each node.
RESERVED_ENIS = 1
# instance type -> (network interfaces, IPv4 addresses per interface), from the EC2 user guide
# (https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html#gp_network, ...co.html, ...mo.html).
ENI_LIMITS: dict[str, tuple[int, int]] = {
    "m5.large": (3, 10),
    "m5.xlarge": (4, 15),
    "m5.2xlarge": (4, 15),
    "m6i.large": (3, 10),
    "m6i.xlarge": (4, 15),
    "m6i.2xlarge": (4, 15),
    "m6i.4xlarge": (8, 30),
    "m7i.large": (3, 10),
    "m7i.xlarge": (4, 15),
    "m7i.2xlarge": (4, 15),
    "c6i.large": (3, 10),
    "c6i.xlarge": (4, 15),
    "c6i.2xlarge": (4, 15),
    "r6i.large": (3, 10),
    "r6i.xlarge": (4, 15),
    "r6i.2xlarge": (4, 15),
}


def max_pods(instance_type: str, reserved_enis: int = RESERVED_ENIS) -> int:
    """The EKS AMI's formula with ``reserved_enis`` interfaces carrying no pod addresses."""
    if instance_type not in ENI_LIMITS:
        raise ValueError(
            f"aws.system_nodes.instance_types: {instance_type!r} has no interface limits in "
            f"components/targets/aws/max_pods.py (known: {', '.join(sorted(ENI_LIMITS))})"
        )
    enis, addresses = ENI_LIMITS[instance_type]
    return (enis - reserved_enis) * (addresses - 1) + 2


def node_group_max_pods(instance_types: Sequence[str]) -> int:
    """One launch template serves every instance type of the group: the smallest fits them all."""
    return min(max_pods(instance_type) for instance_type in instance_types)
