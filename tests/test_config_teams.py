"""Teams in the config (rampart:teams, each catalog service's `team:`): every problem one line with the
file and key path to edit, found before the program registers anything."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from rampart.config import ConfigError, load_platform_config
from tests.support.catalog import SHOP, shop_config
from tests.support.project import refused_problems, shop_stack, stack_document, temp_project

ROLE = "arn:aws:iam::123456789012:role/team-commerce"


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw)
    assert all("\n" not in line for line in caught.value.problems)
    return caught.value.problems


def local_raw(**changes: Any) -> dict[str, Any]:
    """The tests' local shop config as raw keys (teams and services included)."""
    raw = shop_config().model_dump(mode="json", exclude={"vault_token"})
    return raw | changes


def aws_raw(**changes: Any) -> dict[str, Any]:
    """The dev stack's config (aws) as raw keys."""
    from tests.conftest import stack_config

    return stack_config("dev").model_dump(mode="json", exclude={"vault_token"}) | changes


def test_the_shop_config_names_a_declared_team_for_every_service() -> None:
    config = shop_config()
    assert {s.team for s in config.services} <= {t.name for t in config.teams}
    assert config.services_of("commerce") == ["orders", "catalog", "cart"]


def test_a_session_arn_is_refused_with_its_key_path() -> None:
    teams = copy.deepcopy(aws_raw()["teams"])
    teams[0]["aws_role_arns"] = ["arn:aws:sts::123456789012:assumed-role/team-commerce/alice"]
    [problem] = problems_of(aws_raw(teams=teams))
    assert problem.startswith(
        "teams[0].aws_role_arns: arn:aws:sts::123456789012:assumed-role/team-commerce/alice"
    )
    assert "STS session" in problem and "role ARN" in problem


def test_a_user_arn_is_not_a_role() -> None:
    teams = copy.deepcopy(aws_raw()["teams"])
    teams[1]["aws_role_arns"] = ["arn:aws:iam::123456789012:user/bob"]
    assert problems_of(aws_raw(teams=teams)) == [
        "teams[1].aws_role_arns: arn:aws:iam::123456789012:user/bob is not an IAM role ARN "
        "(arn:aws:iam::<account>:role/<name>)"
    ]


@pytest.mark.parametrize("group", ["system:masters", "eks:admins", "aws:x"])
def test_a_reserved_group_is_refused(group: str) -> None:
    teams = copy.deepcopy(local_raw()["teams"])
    teams[2]["group"] = group
    [problem] = problems_of(local_raw(teams=teams))
    assert problem.startswith(f"teams[2].group: {group!r} is reserved")


def test_teams_do_not_share_a_group_or_a_role_and_admins_are_not_team_roles() -> None:
    raw = aws_raw()
    teams = copy.deepcopy(raw["teams"])
    teams[1]["group"] = teams[0]["group"]
    teams[2]["aws_role_arns"] = list(teams[0]["aws_role_arns"])
    teams[3]["aws_role_arns"] = [raw["aws"]["admin_principal_arns"][0]]
    assert problems_of(aws_raw(teams=teams)) == [
        "teams[1].group: 'team-commerce' is already teams[0]'s group; each team needs its own",
        f"teams[2].aws_role_arns[0]: {teams[0]['aws_role_arns'][0]} already acts for teams[0]; "
        "a role acts for one team",
        f"teams[3].aws_role_arns[0]: {raw['aws']['admin_principal_arns'][0]} is a platform admin "
        "(aws.admin_principal_arns); a team role is not an admin role",
    ]


def test_roles_are_required_on_aws_and_unused_elsewhere() -> None:
    teams = copy.deepcopy(aws_raw()["teams"])
    teams[0]["aws_role_arns"] = []
    assert problems_of(aws_raw(teams=teams)) == [
        "teams[0].aws_role_arns: required on target aws: the IAM roles the team's people assume "
        "(each gets an access entry)"
    ]
    local_teams = copy.deepcopy(local_raw()["teams"])
    local_teams[0]["aws_role_arns"] = [ROLE]
    assert problems_of(local_raw(teams=local_teams)) == [
        "teams[0].aws_role_arns: only used on target aws; "
        "on kubernetes the authenticator puts people in `group`"
    ]


def test_every_service_names_a_declared_team() -> None:
    raw = local_raw()
    raw["services"][0]["team"] = "comerce"
    del raw["services"][3]["team"]
    assert problems_of(raw) == [
        "services[0] (orders).team: unknown team 'comerce' (one of: commerce, payments, fulfilment, support)",
        "services[3] (catalog).team: required: the team that owns the service "
        "(one of: commerce, payments, fulfilment, support)",
    ]


# --- in stack files and the catalog ------------------------------------------------------------------


def stack_problems(
    tmp_path: Path, document: dict[str, Any], catalog: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """The problems running the real program on the stack, and the types it registered meanwhile."""
    return refused_problems(temp_project(tmp_path, {"local": document}, catalog=catalog), "local")


def test_a_catalog_service_without_a_team_stops_the_program_before_any_resource(tmp_path: Path) -> None:
    catalog = copy.deepcopy(SHOP)
    del catalog["payments"]["team"]
    catalog["cart"]["team"] = "checkout"
    problems, registered = stack_problems(tmp_path, shop_stack("local"), catalog)
    assert problems == [
        "stacks/services/payments.yaml: team: required: the team that owns the service "
        "(one of: commerce, payments, fulfilment, support)",
        "stacks/services/cart.yaml: team: unknown team 'checkout' "
        "(one of: commerce, payments, fulfilment, support)",
    ]
    assert registered == ["pulumi:pulumi:Stack"]


def test_a_stack_without_teams_is_refused(tmp_path: Path) -> None:
    document = shop_stack("local")
    del document["config"]["rampart:teams"]
    problems, registered = stack_problems(tmp_path, document, SHOP)
    assert problems == [
        "stacks/Pulumi.local.yaml: rampart:teams: required: the teams that own the services "
        "(name, group, and aws_role_arns on aws)"
    ]
    assert registered == ["pulumi:pulumi:Stack"]


def test_every_sample_stack_declares_the_teams_its_catalog_names() -> None:
    from tests.conftest import STACKS, stack_config

    for name in STACKS:
        assert "rampart:teams" in stack_document(name)["config"]
        config = stack_config(name)
        assert {s.team for s in config.services} == {t.name for t in config.teams}, name
