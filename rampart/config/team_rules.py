"""Rules across keys for teams (rampart.config.teams): registered on import, by rampart.config.load."""

from __future__ import annotations

from collections.abc import Iterator

from rampart.config.models import PlatformConfig
from rampart.config.rules import Problem, rule


def suggest_team(name: str, config: PlatformConfig) -> str:
    known = [team.name for team in config.teams]
    return f" (one of: {', '.join(known)})" if known else ""


@rule(
    "teams[].name",
    "teams[].group",
    "teams[].aws_role_arns",
    "aws.admin_principal_arns",
    when="always",
    text="team names and groups are unique; an IAM role acts for one team at most and is not a platform "
    "admin (EKS keeps one access entry per principal)",
)
def _teams_distinct(config: PlatformConfig) -> Iterator[Problem]:
    names: dict[str, int] = {}
    groups: dict[str, int] = {}
    roles: dict[str, int] = {}
    admins = set(config.aws.admin_principal_arns) if config.aws is not None else set()
    for i, team in enumerate(config.teams):
        if team.name in names:
            yield Problem(
                ("teams", i, "name"), f"duplicate team {team.name!r} (first at teams[{names[team.name]}])"
            )
        names.setdefault(team.name, i)
        if team.group in groups:
            # Two teams in one group would each get the other's Roles.
            yield Problem(
                ("teams", i, "group"),
                f"{team.group!r} is already teams[{groups[team.group]}]'s group; each team needs its own",
            )
        groups.setdefault(team.group, i)
        for j, arn in enumerate(team.aws_role_arns):
            if arn in admins:
                yield Problem(
                    ("teams", i, "aws_role_arns", j),
                    f"{arn} is a platform admin (aws.admin_principal_arns); a team role is not an admin role",
                )
            elif arn in roles:
                yield Problem(
                    ("teams", i, "aws_role_arns", j),
                    f"{arn} already acts for teams[{roles[arn]}]; a role acts for one team",
                )
            roles.setdefault(arn, i)


@rule(
    "services[].team",
    "teams",
    when="teams declared (every stack file)",
    text="every service names its team, one of teams",
)
def _service_teams(config: PlatformConfig) -> Iterator[Problem]:
    if not config.teams:
        return
    known = {team.name for team in config.teams}
    for i, service in enumerate(config.services):
        if service.team is None:
            yield Problem(
                ("services", i, "team"),
                f"required: the team that owns the service{suggest_team('', config)}",
            )
        elif service.team not in known:
            yield Problem(
                ("services", i, "team"), f"unknown team {service.team!r}{suggest_team(service.team, config)}"
            )


@rule(
    "teams[].aws_role_arns",
    when="target aws",
    text="at least one role per team on aws (only access entries reach an EKS cluster); unused elsewhere",
)
def _team_roles_on_aws(config: PlatformConfig) -> Iterator[Problem]:
    for i, team in enumerate(config.teams):
        if config.target == "aws" and not team.aws_role_arns:
            yield Problem(
                ("teams", i, "aws_role_arns"),
                "required on target aws: the IAM roles the team's people assume (each gets an access entry)",
            )
        if config.target != "aws" and team.aws_role_arns:
            yield Problem(
                ("teams", i, "aws_role_arns"),
                f"only used on target aws; on {config.target} the authenticator puts people in `group`",
            )
