"""Which target builds the cluster: the one place that knows them all."""

from __future__ import annotations

from components.contract import Target
from components.targets.aws.cluster import aws_target
from components.targets.kubernetes import kubernetes_target

# config.target -> the function that builds it (the config loader accepts these names only).
TARGETS: dict[str, Target] = {"kubernetes": kubernetes_target, "aws": aws_target}
