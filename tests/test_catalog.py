"""The service catalog: each service declared once in stacks/services/<name>.yaml, each stack naming
the services it runs and overriding only what differs; every problem names its file and key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra import stack_config
from rampart.config import ConfigError, StackFiles, load_stack
from rampart.offline.project import load_project
from tests.support.catalog import PLATFORM, SHOP
from tests.support.project import CATALOG, refused_problems, shop_stack, stack_document, temp_project
from tests.support.reference import PROJECT_ROOT

STACK_FILE = "stacks/Pulumi.test.yaml"

DECLARATIONS: dict[str, dict[str, Any]] = {
    "orders": {
        "team": "shop",
        "image": "ghcr.io/acme/orders:1.0.0",
        "replicas": {"min": 3, "max": 20},
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "calls": ["payments"],
        "database": {"storage_gb": 100},
        "routes": [
            {"host": "api.example.com", "path": "/orders", "rate_limit": {"requests_per_minute": 600}},
            {"host": "api.example.com", "path": "/orders/admin", "ip_allowlist": ["203.0.113.0/24"]},
        ],
        "egress": ["api.stripe.com"],
    },
    "payments": {
        "team": "shop",
        "image": "ghcr.io/acme/payments:2.0.0",
        "routes": [{"host": "pay.example.com"}],
    },
    "search": {"team": "shop", "image": "ghcr.io/acme/search:0.1.0"},
}


def raw_stack(**changes: Any) -> dict[str, Any]:
    """A stack's ``rampart:`` keys, namespace stripped, as the program receives them."""
    base = {
        "environment": "dev",
        **PLATFORM,
        "jwt": {"issuer": "https://auth.example.com/", "jwks_uri": "https://auth.example.com/jwks"},
        "teams": [{"name": "shop", "group": "team-shop"}],
        "services": ["orders", "payments"],
    }
    return base | changes


@pytest.fixture
def files(tmp_path: Path) -> StackFiles:
    """A project at ``tmp_path`` whose catalog holds DECLARATIONS, one file per service."""
    catalog = tmp_path / "stacks" / "services"
    catalog.mkdir(parents=True)
    for name, declaration in DECLARATIONS.items():
        (catalog / f"{name}.yaml").write_text(yaml.safe_dump(declaration))
    return StackFiles(root=tmp_path, config_dir=tmp_path / "stacks", stack="test")


def problems(raw: dict[str, Any], files: StackFiles) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_stack(raw, files)
    assert all("\n" not in line for line in caught.value.problems)
    return caught.value.problems


# --- merging --------------------------------------------------------------------------------


def test_a_stack_without_overrides_runs_the_declarations_as_written(files: StackFiles) -> None:
    config = load_stack(raw_stack(), files)
    assert [s.name for s in config.services] == ["orders", "payments"]
    orders = config.service("orders")
    assert (orders.replicas.min, orders.replicas.max) == (3, 20)
    assert orders.database is not None and orders.database.storage_gb == 100


def test_the_stack_chooses_which_services_run_and_in_what_order(files: StackFiles) -> None:
    config = load_stack(raw_stack(services=["payments", "search", "orders"]), files)
    assert [s.name for s in config.services] == ["payments", "search", "orders"]
    assert load_stack(raw_stack(services=["payments"]), files).services[0].name == "payments"


def test_an_override_changes_a_nested_key_and_keeps_its_siblings(files: StackFiles) -> None:
    overrides = {"orders": {"replicas": {"max": 4}, "resources": {"limits": {"cpu": "500m"}}}}
    orders = load_stack(raw_stack(service_overrides=overrides), files).service("orders")
    assert (orders.replicas.min, orders.replicas.max) == (3, 4)
    assert orders.resources.limits.cpu == "500m"
    assert orders.resources.limits.memory == "512Mi"
    assert orders.resources.requests.cpu == "250m"


def test_a_list_in_an_override_replaces_the_catalog_list(files: StackFiles) -> None:
    overrides = {"orders": {"egress": ["api.sandbox.stripe.com"], "calls": []}}
    orders = load_stack(raw_stack(service_overrides=overrides), files).service("orders")
    assert [destination.host for destination in orders.egress] == ["api.sandbox.stripe.com"]
    assert orders.calls == []
    routes = [{"host": "api.dev.example.com", "path": "/v2/orders"}]
    replaced = load_stack(raw_stack(service_overrides={"orders": {"routes": routes}}), files)
    assert [(r.host, r.path) for r in replaced.service("orders").routes] == [
        ("api.dev.example.com", "/v2/orders")
    ]


def test_a_route_is_patched_by_its_path_and_keeps_everything_else(files: StackFiles) -> None:
    overrides = {
        "orders": {"routes": {"/orders/admin": {"host": "admin.dev.example.com"}}},
        # A route that leaves out its path is found by the model's default, "/".
        "payments": {"routes": {"/": {"host": "pay.dev.example.com"}}},
    }
    config = load_stack(raw_stack(service_overrides=overrides), files)
    first, second = config.service("orders").routes
    assert (first.host, first.path) == ("api.example.com", "/orders")
    assert (second.host, second.path) == ("admin.dev.example.com", "/orders/admin")
    assert second.ip_allowlist == ["203.0.113.0/24"] and second.auth is True
    assert config.service("payments").routes[0].host == "pay.dev.example.com"


def test_null_replaces_too_so_a_stack_can_drop_a_database(files: StackFiles) -> None:
    config = load_stack(raw_stack(service_overrides={"orders": {"database": None}}), files)
    assert config.service("orders").database is None


# --- problems, each with its file and key path -----------------------------------------------


def test_an_override_naming_an_unknown_service_suggests_the_closest(files: StackFiles) -> None:
    found = problems(raw_stack(service_overrides={"ordrs": {"replicas": {"max": 4}}}), files)
    assert found == [
        f"{STACK_FILE}: rampart:service_overrides.ordrs: unknown service 'ordrs' (did you mean 'orders'?)"
    ]


def test_an_override_of_a_catalog_service_the_stack_does_not_run(files: StackFiles) -> None:
    found = problems(raw_stack(service_overrides={"search": {"port": 9090}}), files)
    assert found == [
        f"{STACK_FILE}: rampart:service_overrides.search: 'search' is not one of this stack's services "
        "(list it in rampart:services)"
    ]


def test_a_problem_in_a_catalog_file_names_the_file_and_key(files: StackFiles) -> None:
    declaration = DECLARATIONS["orders"] | {"replicaz": 3, "calls": ["paymnts"]}
    files.catalog_file("orders").write_text(yaml.safe_dump(declaration))
    found = problems(raw_stack(), files)
    assert "stacks/services/orders.yaml: replicaz: unknown key (did you mean 'replicas'?)" in found
    assert (
        "stacks/services/orders.yaml: calls[0]: unknown service 'paymnts' (did you mean 'payments'?)" in found
    )
    assert len(found) == 2


def test_a_problem_in_an_override_names_the_stack_file_and_key(files: StackFiles) -> None:
    overrides = {
        "orders": {
            "replicaz": {"max": 4},
            "database": {"storage_gb": 0},
            "routes": {"/orders": {"host": "not a host"}},
        },
        "payments": {"calls": ["orders", "ordrs"]},
    }
    found = problems(raw_stack(service_overrides=overrides), files)
    prefix = f"{STACK_FILE}: rampart:service_overrides"
    assert sorted(found) == sorted(
        [
            f"{prefix}.orders.replicaz: unknown key (did you mean 'replicas'?)",
            f"{prefix}.orders.database.storage_gb: Input should be greater than or equal to 1, got 0",
            f"{prefix}.orders.routes[\"/orders\"].host: 'not a host' is not a fully qualified host name",
            f"{prefix}.payments.calls[1]: unknown service 'ordrs' (did you mean 'orders'?)",
        ]
    )


def test_a_value_both_files_made_names_the_override_and_the_catalog(files: StackFiles) -> None:
    found = problems(raw_stack(service_overrides={"orders": {"replicas": {"max": 2}}}), files)
    assert found == [
        f"{STACK_FILE}: rampart:service_overrides.orders.replicas (merged over stacks/services/orders.yaml): "
        "min (3) is greater than max (2)"
    ]


def test_a_route_override_must_name_an_existing_path(files: StackFiles) -> None:
    found = problems(
        raw_stack(service_overrides={"orders": {"routes": {"/order": {"host": "a.example.com"}}}}), files
    )
    assert found == [
        f"{STACK_FILE}: rampart:service_overrides.orders.routes[\"/order\"]: no route with path '/order' in "
        "stacks/services/orders.yaml (did you mean '/orders'?)"
    ]


def test_the_stack_names_only_catalog_services_and_each_once(files: StackFiles) -> None:
    raw = raw_stack(
        services=["orders", "payment", "orders", "../secrets", {"name": "cart", "image": "a/b:1"}]
    )
    assert problems(raw, files) == [
        f"{STACK_FILE}: rampart:services[1]: unknown service 'payment': no stacks/services/payment.yaml "
        "(did you mean 'payments'?)",
        f"{STACK_FILE}: rampart:services[2]: 'orders' is listed twice (first at rampart:services[0])",
        f"{STACK_FILE}: rampart:services[3]: '../secrets' is not a service name (a DNS label: "
        "stacks/services/<name>.yaml)",
        f"{STACK_FILE}: rampart:services[4]: a stack only names its services; declare this one in "
        "stacks/services/cart.yaml",
        # A consequence of the missing name, at the caller's own file.
        "stacks/services/orders.yaml: calls[0]: unknown service 'payments'",
    ]


def test_stack_level_problems_name_the_stack_file(files: StackFiles) -> None:
    assert problems(raw_stack(sizing={"min_replicaz": 2}), files) == [
        f"{STACK_FILE}: rampart:sizing.min_replicaz: unknown key (did you mean 'min_replicas'?)"
    ]
    assert problems({k: v for k, v in raw_stack().items() if k != "services"}, files) == [
        f"{STACK_FILE}: rampart:services: required key is missing"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("image: [unclosed\n", "stacks/services/orders.yaml: not valid YAML at line 2"),
        ("- image: a/b:1\n", "stacks/services/orders.yaml: expected a mapping of the service's keys"),
        (
            "name: orders\nimage: a/b:1\n",
            "stacks/services/orders.yaml: name: the file name is the service's name; remove this key",
        ),
    ],
)
def test_a_broken_catalog_file_is_one_line(files: StackFiles, text: str, expected: str) -> None:
    files.catalog_file("orders").write_text(text)
    found = problems(raw_stack(services=["orders"]), files)
    assert found[0].startswith(expected), found


# --- the sample catalog ----------------------------------------------------------------------


def _stack_files() -> dict[str, dict[str, Any]]:
    project = load_project(PROJECT_ROOT)
    return {name: stack_document(name)["config"] for name in project.stacks()}


def _leaves(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*at, key))]
    return [(at, value)]


def _catalog_value(declaration: dict[str, Any], at: tuple[Any, ...]) -> Any:
    """The declaration's value at an override's key path (a route found by its path)."""
    node: Any = declaration
    for key in at:
        if isinstance(node, list):
            node = next(item for item in node if item.get("path", "/") == key)
        else:
            node = node.get(key) if isinstance(node, dict) else None
    return node


def test_each_sample_service_is_declared_once_and_stacks_only_name_it() -> None:
    named = set()
    for config in _stack_files().values():
        services = config["rampart:services"]
        assert all(isinstance(name, str) for name in services), "a stack file declares a full service"
        named |= set(services)
    assert named == {path.stem for path in CATALOG.glob("*.yaml")}, "every catalog file runs somewhere"
    for path in CATALOG.glob("*.yaml"):
        assert "name" not in yaml.safe_load(path.read_text()), path


def test_stack_overrides_only_say_what_differs_from_the_catalog() -> None:
    for stack_name, config in _stack_files().items():
        for name, override in config.get("rampart:service_overrides", {}).items():
            declaration = yaml.safe_load((CATALOG / f"{name}.yaml").read_text())
            for at, value in _leaves(override):
                assert _catalog_value(declaration, at) != value, (stack_name, name, at)


def test_prod_runs_the_catalog_as_declared() -> None:
    assert "rampart:service_overrides" not in _stack_files()["prod"]


# --- where the program finds the catalog -----------------------------------------------------


def test_the_program_finds_the_project_from_its_own_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Older CLIs send no root directory (the SDK's placeholder, or None); the language host runs
    # the program inside infra/ (`main: infra/`), or anywhere else.
    monkeypatch.chdir(tmp_path)
    for reported in (None, "root_directory"):
        monkeypatch.setattr(pulumi, "get_root_directory", lambda value=reported: value)
        assert stack_config.project_root() == PROJECT_ROOT
    monkeypatch.setattr(pulumi, "get_root_directory", lambda: str(tmp_path))
    (tmp_path / "Pulumi.yaml").write_text("name: rampart\nruntime: python\n")
    assert stack_config.project_root() == tmp_path, "the engine's root directory comes first"


def test_a_catalog_problem_stops_the_program_before_any_resource(tmp_path: Path) -> None:
    document = shop_stack("local")
    document["config"]["rampart:service_overrides"] = {"orders": {"replicaz": 3}}
    root = temp_project(tmp_path, {"local": document}, catalog=SHOP)
    (root / "stacks" / "services" / "cart.yaml").write_text("image: [unclosed\n")
    problems, registered = refused_problems(root, "local")
    assert problems[:2] == [
        "stacks/services/cart.yaml: not valid YAML at line 2",
        "stacks/Pulumi.local.yaml: rampart:service_overrides.orders.replicaz: unknown key "
        "(did you mean 'replicas'?)",
    ]
    assert registered == ["pulumi:pulumi:Stack"]
