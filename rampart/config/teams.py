"""Teams: who owns each service, the group its people are in, and (aws) the IAM roles they assume.

A stack declares its teams (``rampart:teams``); each catalog service names its ``team:``. The paved
road gives the team a Role in each of its services' namespaces, bound to the team's group; on aws each
of the team's roles gets an EKS access entry in that group, scoped to those namespaces
(components/paved_road/team_access.py, components/targets/aws/team_access.py; `rampart access` shows
the result).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from rampart.config.types import DnsLabel

# Group-name prefixes EKS refuses in an access entry's kubernetesGroups (EKS API reference,
# CreateAccessEntry); Kubernetes reserves system: (system:masters is cluster-admin on any cluster).
RESERVED_GROUP_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
# What editors check; the validator below tells a role from a session or a user.
IamArn = Annotated[StrictStr, Field(pattern=r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$")]
_IAM_ROLE = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+")


def refuse_session(arn: str) -> None:
    """An access entry names an IAM role or user; EKS rejects an STS session (assumed-role) ARN."""
    if ":sts::" in arn:
        raise ValueError(
            f"{arn} is an STS session, which EKS access entries reject; use the role ARN "
            "(arn:aws:iam::<account>:role/<name>, e.g. from `aws iam get-role`)"
        )


class Team(BaseModel):
    """A team that owns services: the group its people are in, and (aws) the IAM roles they assume."""

    # As rampart.config.models.StrictModel: unknown keys are errors, docstrings are descriptions.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: DnsLabel
    """The team's name, which each service's `team:` names."""
    group: StrictStr = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9:._@-]*$")
    """The Kubernetes group the cluster's authenticator puts the team's people in (an OIDC groups claim;
    on aws the access entries below): the team's RoleBinding in each of its namespaces names it."""
    aws_role_arns: list[IamArn] = []
    """aws (required there): the IAM roles the team's people assume, each given an EKS access entry in
    `group`, with read access scoped to the team's namespaces. Role ARNs
    (arn:aws:iam::<account>:role/<name>), not assumed-role sessions."""

    @field_validator("group")
    @classmethod
    def _not_reserved(cls, group: str) -> str:
        """Not a reserved group: system:masters is cluster-admin, and EKS refuses these prefixes."""
        if group.startswith(RESERVED_GROUP_PREFIXES):
            raise ValueError(
                f"{group!r} is reserved (groups starting with {', '.join(RESERVED_GROUP_PREFIXES)} belong "
                "to the cluster; system:masters is cluster-admin): name the team's own group"
            )
        return group

    @field_validator("aws_role_arns")
    @classmethod
    def _roles_only(cls, arns: list[str]) -> list[str]:
        """Each is an IAM role ARN: EKS rejects an STS session (assumed-role) ARN in an access entry."""
        for arn in arns:
            refuse_session(arn)
            if not _IAM_ROLE.fullmatch(arn):
                raise ValueError(f"{arn} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        if len(set(arns)) != len(arns):
            raise ValueError("aws_role_arns has duplicates")
        return arns
