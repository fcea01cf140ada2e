"""Config validation: good catalogs load; each kind of bad input is one line naming its key path."""

from __future__ import annotations

import copy
import hashlib
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rampart.config import ConfigError, PlatformConfig, load_platform_config
from rampart.config.types import cpu_millicores, image_tag, memory_bytes


def base_config() -> dict[str, Any]:
    return {
        "environment": "dev",
        "target": "kubernetes",
        "owner": "platform-team",
        "cost_center": "cc-1",
        "services": [
            {"name": "orders", "image": "ghcr.io/acme/orders:1.0.0", "calls": ["payments"]},
            {"name": "payments", "image": "ghcr.io/acme/payments@sha256:" + "a" * 64},
            {"name": "worker", "image": "acme/worker:2", "queue": {"consumes": ["jobs"]}},
            {"name": "api", "image": "acme/api:3", "queue": {"publishes": ["jobs"]}},
        ],
    }


def digest_of(name: str) -> str:
    """A stand-in sha256 digest for an image (64 hex), stable per name."""
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


SUPPLY_CHAIN: dict[str, Any] = {"allowed_registries": ["ghcr.io/acme"]}


def pinned_services() -> list[dict[str, Any]]:
    """base_config()'s services from ghcr.io/acme, pinned by digest (what staging and prod require)."""
    services = base_config()["services"]
    for service in services:
        repository = service["image"].split("@")[0].removeprefix("ghcr.io/acme/")
        service["image"] = f"ghcr.io/acme/{repository}@{digest_of(repository)}"
    return services


# What prod needs of the stateful layers, the mesh and the supply chain (tested on their own below), so
# other prod tests see one problem.
PROD_DATA: dict[str, Any] = {
    "databases": {"backup_retention_days": 14, "instances": 2},
    "messaging": {"replicas": 3},
    "mesh": {"istiod_replicas": 2},
    "supply_chain": SUPPLY_CHAIN,
    "services": pinned_services(),
}
PROD_DATA_AWS: dict[str, Any] = {
    "databases": {"backup_retention_days": 14, "multi_az": True},
    "messaging": {"deployment": "cluster"},
    "mesh": {"istiod_replicas": 2},
    "supply_chain": SUPPLY_CHAIN,
    "services": pinned_services(),
}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(raw)
    return caught.value.problems


def with_change(path: str, value: Any) -> dict[str, Any]:
    """base_config() with the value at a dotted path (list indices as numbers) replaced."""
    raw = base_config()
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value
    return raw


def test_base_config_loads_with_secure_defaults() -> None:
    config = load_platform_config(base_config())
    orders = config.service("orders")
    assert orders.routes == []
    assert orders.kubernetes_api_access is False
    assert orders.run_as_user >= 10000
    assert config.callers_of("payments") == ["orders"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("services.0.imagee", "x:1", "services[0] (orders).imagee: unknown key (did you mean 'image'?)"),
        ("servicez", [], "servicez: unknown key (did you mean 'services'?)"),
        ("services.0.port", "8080", "services[0] (orders).port: Input should be a valid integer, got '8080'"),
        (
            "services.0.port",
            70000,
            "services[0] (orders).port: Input should be less than or equal to 65535, got 70000",
        ),
        (
            "services.0.image",
            "ghcr.io/acme/orders",
            "services[0] (orders).image: 'ghcr.io/acme/orders' is not pinned",
        ),
        (
            "services.0.image",
            "acme/orders:latest",
            "services[0] (orders).image: 'acme/orders:latest' is not pinned",
        ),
        (
            "services.0.image",
            "Acme/Orders:1",
            "services[0] (orders).image: 'Acme/Orders:1' is not a valid image reference",
        ),
        ("services.0.name", "Orders_v2", "services[0] (Orders_v2).name: 'Orders_v2' is not a DNS label"),
        (
            "services.0.replicas",
            {"min": 5, "max": 2},
            "services[0] (orders).replicas: min (5) is greater than max (2)",
        ),
        (
            "services.0.calls",
            ["paymnts"],
            "services[0] (orders).calls[0]: unknown service 'paymnts' (did you mean 'payments'?)",
        ),
        ("services.0.calls", ["orders"], "services[0] (orders).calls[0]: a service does not call itself"),
        (
            "services.1.name",
            "orders",
            "services[1] (orders).name: duplicate service 'orders' (first declared at services[0])",
        ),
        ("services.1.name", "kube-system", "services[1] (kube-system).name: 'kube-system' is reserved"),
        (
            "services.0.routes",
            [{"host": "api.example.com", "ip_allowlist": ["10.0.0.300/8"]}],
            "services[0] (orders).routes[0].ip_allowlist[0]: '10.0.0.300/8' is not a CIDR block",
        ),
        (
            "services.0.routes",
            [{"host": "api.example.com", "ip_allowlist": ["10.1.2.3/8"]}],
            "services[0] (orders).routes[0].ip_allowlist[0]: '10.1.2.3/8' is not a CIDR block "
            "(10.1.2.3/8 has host",
        ),
        (
            "services.0.routes",
            [{"host": "not a host"}],
            "services[0] (orders).routes[0].host: 'not a host' is not a fully",
        ),
        (
            "services.0.health",
            {"liveness": "healthz"},
            "services[0] (orders).health.liveness: 'healthz' is not an absolute",
        ),
        (
            "services.0.resources",
            {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "services[0] (orders).resources: requests.cpu 2 exceeds limits.cpu 1",
        ),
        (
            "services.0.resources",
            {"requests": {"cpu": "2 cores", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "services[0] (orders).resources.requests.cpu: '2 cores' is not a CPU quantity",
        ),
        (
            "services.0.run_as_user",
            0,
            "services[0] (orders).run_as_user: Input should be greater than or equal to 10000",
        ),
        (
            "services.2.queue",
            {"consumes": ["jobz"]},
            "services[2] (worker).queue.consumes[0]: no service publishes 'jobz'",
        ),
        (
            "services.0.load_balancing",
            "random",
            "services[0] (orders).load_balancing: Input should be 'round_robin'",
        ),
        ("environment", "qa", "environment: Input should be 'local', 'dev', 'staging' or 'prod', got 'qa'"),
        ("services", [], "services: List should have at least 1 item"),
        ("target", "aws", "aws: required when target is 'aws'"),
        (
            "aws",
            {
                "region": "eu-west-1",
                "availability_zones": ["eu-west-1a", "eu-west-1b"],
                "admin_principal_arns": ["arn:aws:iam::123456789012:role/admin"],
            },
            "aws: only used when target is 'aws'",
        ),
    ],
)
def test_bad_input_names_its_key_path(path: str, value: Any, expected: str) -> None:
    found = problems(with_change(path, value))
    assert any(line.startswith(expected) for line in found), found
    assert all("\n" not in line for line in found)


AWS = {
    "region": "eu-west-1",
    "availability_zones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    "admin_principal_arns": ["arn:aws:iam::123456789012:role/admin"],
    "node_ami_release": "1.33.0-20250627",
}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"availability_zones": ["eu-west-1a", "us-east-1b"]},
            "aws: availability_zones must all be in eu-west-1",
        ),
        (
            {"endpoint_public_access": True},
            "aws: endpoint_public_access needs an explicit public_access_cidrs",
        ),
        (
            {"endpoint_public_access": True, "public_access_cidrs": ["0.0.0.0/0"]},
            "aws: public_access_cidrs may not contain 0.0.0.0/0",
        ),
        (
            {"flow_log_retention_days": 10},
            "aws: flow_log_retention_days 10 is not a CloudWatch retention period",
        ),
        ({"admin_principal_arns": ["admin"]}, "aws.admin_principal_arns[0]: String should match pattern"),
        ({"admin_principal_arns": []}, "aws.admin_principal_arns: List should have at least 1 item"),
        (
            {"system_nodes": {"min_size": 3, "desired_size": 2, "max_size": 4}},
            "aws.system_nodes: sizes must satisfy min_size <= desired_size <= max_size",
        ),
        ({"region": "Europe"}, "aws.region: String should match pattern"),
        ({"vpc_cidr": "10.0.0.0/24"}, "aws: vpc_cidr 10.0.0.0/24 must be an IPv4 block from /16 to /22"),
    ],
)
def test_bad_aws_settings(changes: dict[str, Any], expected: str) -> None:
    raw = base_config() | {"target": "aws", "aws": AWS | changes}
    found = problems(raw)
    assert any(line.startswith(expected) for line in found), found


def test_public_endpoint_is_never_allowed_in_prod() -> None:
    settings = AWS | {"endpoint_public_access": True, "public_access_cidrs": ["203.0.113.0/24"]}
    raw = base_config() | {
        "target": "aws",
        "aws": settings,
        "environment": "prod",
        "sizing": {"min_replicas": 2},
        "vault": {"replicas": 3},
        **PROD_DATA_AWS,
    }
    assert problems(raw) == ["aws.endpoint_public_access: never in prod; reach the API through the VPC"]
    raw["environment"] = "dev"
    assert load_platform_config(raw).aws is not None


def test_secret_values_are_never_echoed_in_errors() -> None:
    found = problems(base_config() | {"vault_token": 1234567})
    assert found == ["vault_token: Input should be a valid string"]


def test_configuring_vault_needs_a_token_and_prod_needs_ha() -> None:
    assert problems(base_config() | {"vault": {"configure": True}}) == [
        "vault.configure: needs vault_token "
        "(from stdin: `pulumi config set --secret rampart:vault_token < token-file`)",
        "vault.ca_cert_file: needed with vault.configure: true, so the provider verifies Vault "
        "(`rampart vault-phase2 --stack <stack>` pins it from the vault-tls Secret)",
    ]
    assert problems(base_config() | {"vault": {"replicas": 2}}) == [
        "vault: replicas: raft needs 1 (standalone) or at least 3 (a quorum survives a loss)"
    ]
    prod = base_config() | {"environment": "prod", "sizing": {"min_replicas": 2}} | PROD_DATA
    assert problems(prod) == ["vault.replicas: prod runs Vault HA (at least 3 raft peers)"]


def test_missing_required_key() -> None:
    raw = base_config()
    del raw["owner"]
    assert problems(raw) == ["owner: required key is missing"]


def test_prod_needs_two_replicas_floor() -> None:
    raw = base_config() | {"environment": "prod", "sizing": {"min_replicas": 1}, "vault": {"replicas": 3}}
    raw |= PROD_DATA
    assert problems(raw) == ["sizing.min_replicas: prod needs at least 2 replicas of every service"]


def test_all_problems_are_reported_at_once() -> None:
    raw = base_config()
    raw["services"][0]["calls"] = ["nope"]
    raw["services"][1]["port"] = 0
    raw["services"][2]["imagee"] = "x"
    raw["colour"] = "blue"
    found = problems(raw)
    # Each service by its position and its name: the name is what a reader looks for.
    assert {line.split(":")[0] for line in found} == {
        "services[0] (orders).calls[0]",
        "services[1] (payments).port",
        "services[2] (worker).imagee",
        "colour",
    }


def test_cross_service_checks_run_even_when_an_entry_is_malformed() -> None:
    raw = base_config()
    raw["services"][1]["port"] = "not-a-port"
    raw["services"][0]["calls"] = ["payments", "ghost"]
    found = problems(raw)
    assert "services[0] (orders).calls[1]: unknown service 'ghost'" in found
    assert any(line.startswith("services[1] (payments).port:") for line in found)


@pytest.mark.parametrize(
    ("quantity", "millicores"), [("250m", 250), ("1", 1000), ("1.5", 1500), ("0.1", 100)]
)
def test_cpu_quantities(quantity: str, millicores: int) -> None:
    assert cpu_millicores(quantity) == millicores


@pytest.mark.parametrize(
    ("quantity", "size"), [("256Mi", 256 * 2**20), ("1Gi", 2**30), ("500M", 500 * 10**6)]
)
def test_memory_quantities(quantity: str, size: int) -> None:
    assert memory_bytes(quantity) == size


def test_image_version_label() -> None:
    assert image_tag("ghcr.io/acme/orders:1.4.2") == "1.4.2"
    assert image_tag("registry:5000/acme/x@sha256:" + "b" * 64) == "b" * 12


# --- property-based ------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)


@st.composite
def catalogs(draw: st.DrawFn) -> dict[str, Any]:
    service_names = draw(
        st.lists(names, min_size=1, max_size=8, unique=True).filter(
            lambda ns: not {"default", "vault", "kong"} & set(ns)
        )
    )
    services = []
    for name in service_names:
        low = draw(st.integers(1, 5))
        services.append(
            {
                "name": name,
                "image": f"ghcr.io/acme/{name}:{draw(st.integers(0, 99))}.{draw(st.integers(0, 99))}"
                f"@{digest_of(name)}",
                "port": draw(st.integers(1, 65535)),
                "replicas": {"min": low, "max": low + draw(st.integers(0, 10))},
                "calls": draw(st.lists(st.sampled_from(service_names), unique=True)).copy(),
                "load_balancing": draw(st.sampled_from(["round_robin", "least_request", "source_ip_hash"])),
            }
        )
    for service in services:
        service["calls"] = [c for c in service["calls"] if c != service["name"]]
    return {
        "environment": draw(st.sampled_from(["local", "dev", "staging"])),
        "target": "kubernetes",
        "owner": "team",
        "cost_center": "cc",
        "vault": {"replicas": 3},
        "supply_chain": SUPPLY_CHAIN,
        "services": services,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs())
def test_generated_valid_catalogs_load(raw: dict[str, Any]) -> None:
    config = load_platform_config(raw)
    assert isinstance(config, PlatformConfig)
    assert [s.name for s in config.services] == [s["name"] for s in raw["services"]]


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(string.printable, max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(string.ascii_letters, max_size=5), st.integers(), max_size=2),
)
SERVICE_KEYS = [
    "name",
    "image",
    "port",
    "replicas",
    "calls",
    "routes",
    "resources",
    "health",
    "database",
    "queue",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs(), st.data())
def test_generated_bad_values_give_one_line_per_problem_with_a_key_path(
    raw: dict[str, Any], data: st.DataObject
) -> None:
    broken = copy.deepcopy(raw)
    index = data.draw(st.integers(0, len(broken["services"]) - 1))
    key = data.draw(st.sampled_from(SERVICE_KEYS))
    value = data.draw(junk)
    broken["services"][index][key] = value
    try:
        load_platform_config(broken)
    except ConfigError as exc:
        assert exc.problems
        for line in exc.problems:
            path, sep, message = line.partition(": ")
            assert sep and message, line
            assert "\n" not in line
            assert path.startswith(("services", "environment")), line
        # Renaming a service breaks its callers' `calls:` instead, reported at their own paths.
        if key != "name":
            name = broken["services"][index]["name"]
            assert any(line.startswith(f"services[{index}] ({name}).") for line in exc.problems), exc.problems
    else:
        # Only values that really are valid may pass (e.g. a junk dict that is a valid `database`).
        assert load_platform_config(broken).services[index].name == broken["services"][index]["name"]


@settings(max_examples=60, deadline=None)
@given(catalogs(), st.text(string.ascii_lowercase + "_", min_size=1, max_size=12))
def test_generated_unknown_keys_are_named(raw: dict[str, Any], key: str) -> None:
    known = set(PlatformConfig.model_fields["services"].annotation.__args__[0].model_fields)  # type: ignore[union-attr]
    assume(key not in known)
    raw["services"][0][key] = 1
    name = raw["services"][0]["name"]
    assert any(line.startswith(f"services[0] ({name}).{key}: unknown key") for line in problems(raw))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("databases.backup_retention_days", 0, "databases.backup_retention_days: Input should be greater"),
        ("databases.performance_insights_retention_days", 30, "must be 7, a multiple of 31"),
        ("databases.flavour", "mysql", "databases.flavour: Input should be 'rds' or 'aurora'"),
        (
            "databases",
            {"allow_major_version_upgrade": True},
            "databases.apply_immediately: must be true with allow_major_version_upgrade",
        ),
        ("messaging.replicas", 2, "messaging: replicas 2: quorum queues need 1 or an odd number of nodes"),
        (
            "services.1.queue",
            {"publishes": ["jobs"]},
            "services[3] (api).queue.publishes[0]: 'jobs' is already published by services[1] (payments)",
        ),
    ],
)
def test_bad_data_settings_name_their_key(path: str, value: Any, expected: str) -> None:
    found = problems(with_change(path, value))
    assert any(expected in problem for problem in found), found


def test_prod_keeps_two_weeks_of_backups_a_standby_and_a_broker_cluster() -> None:
    raw = with_change("environment", "prod") | {"sizing": {"min_replicas": 2}, "vault": {"replicas": 3}}
    raw["databases"] = {"backup_retention_days": 7, "instances": 1}
    raw["messaging"] = {"replicas": 1}
    found = problems(raw)
    assert "databases.backup_retention_days: prod keeps at least 14 days of backups (got 7)" in found
    assert "databases.instances: prod databases run a primary and at least one replica" in found
    assert "messaging.replicas: prod runs at least 3 RabbitMQ nodes" in found
    raw |= PROD_DATA
    assert load_platform_config(raw).databases.backup_retention_days == 14


def test_queues_know_their_publisher() -> None:
    config = load_platform_config(base_config())
    assert config.publisher_of("jobs") == "api" and config.uses_queues


@pytest.mark.parametrize("service_type", ["NodePort", "ClusterIP", "LoadBalancer", None])
def test_the_gateway_service_type_is_validated_and_aws_keeps_its_nlb(service_type: str | None) -> None:
    """The `kubernetes` target may expose Kong by NodePort (the default: kind/k3d have no load-balancer
    implementation), ClusterIP (port-forward) or LoadBalancer; aws is always the NLB."""
    gateway = {} if service_type is None else {"service_type": service_type}
    local = load_platform_config(base_config() | {"gateway": gateway})
    assert local.gateway.service_type == service_type
    on_aws = base_config() | {"target": "aws", "aws": AWS, "gateway": gateway}
    if service_type in (None, "LoadBalancer"):
        assert load_platform_config(on_aws).gateway.service_type == service_type
    else:
        assert problems(on_aws) == [
            f"gateway.service_type: {service_type} is not possible on target aws: the gateway is the "
            "internet-facing NLB (LoadBalancer); leave it unset"
        ]
    assert any(
        line.startswith("gateway.service_type: Input should be")
        for line in problems(base_config() | {"gateway": {"service_type": "ExternalName"}})
    )


# --- issue 14: egress entries, per-replica rate limits -------------------------------------------


def test_egress_entries_name_their_key_path_and_stay_out_of_the_vpc() -> None:
    raw = with_change("services.0.egress", ["api.stripe.com", {"host": "smtp.example.com", "port": 70000}])
    assert any(line.startswith("services[0] (orders).egress[1].port: ") for line in problems(raw)), problems(
        raw
    )
    smtp = {"host": "smtp.internal.example.com", "port": 587, "protocol": "TCP", "cidr": "10.0.5.0/24"}
    raw = base_config() | {"target": "aws", "aws": AWS | {"vpc_cidr": "10.0.0.0/16"}}
    raw["services"][0]["egress"] = [smtp]
    found = problems(raw)
    assert any(
        line.startswith("services[0] (orders).egress[0].cidr: 10.0.5.0/24 overlaps the VPC") for line in found
    ), found
    raw["services"][0]["egress"] = [smtp | {"cidr": "10.100.25.0/24"}]
    config = load_platform_config(raw)
    assert config.services[0].egress[0].port == 587


def test_a_rate_limit_below_the_gateway_replicas_is_refused() -> None:
    route = {"host": "api.example.com", "auth": False, "rate_limit": {"requests_per_minute": 2}}
    raw = with_change("services.0.routes", [route]) | {"gateway": {"replicas": 3}}
    found = problems(raw)
    assert any(
        line.startswith(
            "services[0] (orders).routes[0].rate_limit.requests_per_minute: 2 is below gateway.replicas (3)"
        )
        for line in found
    ), found
    raw["gateway"] = {"replicas": 2}
    assert load_platform_config(raw).services[0].routes[0].rate_limit is not None
