"""`rampart vault-phase2`: the route to Vault (CA pinned from the vault-tls Secret, the port-forward, a
verified health check), the commands it runs, and the config it needs. No kubectl, pulumi or cluster:
the machine is a fake; the TLS verification runs for real against a local server."""

from __future__ import annotations

import base64
import http.server
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from components.secrets.vault_config import check
from rampart import vault_route as vr
from rampart.cli import app
from rampart.config import ConfigError, load_platform_config
from tests.support.tls import TEST_CA_PEM, ServerTls, make_server_tls, openssl_available
from tests.test_vault_config import args as vault_config_args

ROOT = Path("/project")
HA = {"configure": True, "replicas": 3, "address": "https://127.0.0.1:8200", "ca_cert_file": "ca/prod.pem"}


def route(**changes: Any) -> vr.Route:
    return vr.plan_route("prod", HA | changes, ROOT)


# -- the route from the stack's settings ----------------------------------------------------------------


def test_ha_forwards_to_the_active_server_and_verifies_the_in_cluster_name() -> None:
    planned = route()
    assert (planned.host, planned.port, planned.service) == ("127.0.0.1", 8200, "vault-active")
    assert planned.server_name == "vault.vault.svc"
    assert planned.ca_file == ROOT / "ca" / "prod.pem"


def test_standalone_forwards_to_the_vault_service() -> None:
    assert route(replicas=1).service == "vault"


def test_an_in_cluster_address_is_reached_directly() -> None:
    direct = route(address="https://vault.vault.svc:8200", ca_cert_file="/etc/rampart/ca.pem")
    assert not direct.forwarded and direct.host == "vault.vault.svc"
    assert direct.ca_file == Path("/etc/rampart/ca.pem")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ca_cert_file": None}, "vault.ca_cert_file: set it"),
        ({"configure": False}, "vault.configure is false"),
        ({"address": "https://127.0.0.1"}, "give the local port"),
        ({"address": "http://127.0.0.1:8200"}, "rampart:vault is invalid"),
    ],
)
def test_the_route_is_refused_with_the_key_to_fix(changes: dict[str, Any], message: str) -> None:
    settings = {key: value for key, value in (HA | changes).items() if value is not None}
    with pytest.raises(vr.RouteError, match=message):
        vr.plan_route("prod", settings, ROOT)


# -- the commands ----------------------------------------------------------------------------------------


def test_the_ca_is_read_from_the_vault_tls_secret_and_nothing_else_of_it() -> None:
    assert vr.read_ca_command(None) == [
        "kubectl",
        "--namespace",
        "vault",
        "get",
        "secret",
        "vault-tls",
        "--output",
        "jsonpath={.data.ca\\.crt}",
    ]


def test_the_port_forward_listens_on_loopback_only_and_targets_the_api_port() -> None:
    assert vr.port_forward_command(route(), "rampart-prod") == [
        "kubectl",
        "--context",
        "rampart-prod",
        "--namespace",
        "vault",
        "port-forward",
        "--address",
        "127.0.0.1",
        "--pod-running-timeout",
        "30s",
        "service/vault-active",
        "8200:8200",
    ]


def test_pulumi_up_on_the_stack_unless_a_command_is_given() -> None:
    assert vr.pulumi_command("prod", []) == ["pulumi", "up", "--stack", "prod"]
    assert vr.pulumi_command("prod", ["pulumi", "preview", "-s", "prod"]) == [
        "pulumi",
        "preview",
        "-s",
        "prod",
    ]


# -- the CA ----------------------------------------------------------------------------------------------


def secret_data(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def test_the_secret_field_decodes_to_the_pem_certificate() -> None:
    assert vr.decode_ca(secret_data(TEST_CA_PEM) + "\n") == TEST_CA_PEM


@pytest.mark.parametrize(
    "data", ["", "not base64!", secret_data("-----BEGIN CERTIFICATE-----\nAAAA\n-----END")]
)
def test_anything_but_a_certificate_is_refused(data: str) -> None:
    with pytest.raises(vr.RouteError, match="vault-tls"):
        vr.decode_ca(data)


def test_the_ca_is_pinned_once_and_a_different_one_needs_update(tmp_path: Path) -> None:
    path = tmp_path / "stacks" / "vault-ca" / "prod.pem"
    assert "pinned" in vr.pin_ca(path, TEST_CA_PEM, update=False)
    assert path.read_text() == TEST_CA_PEM
    assert "matches" in vr.pin_ca(path, TEST_CA_PEM + "\n", update=False)
    other = TEST_CA_PEM.replace("MIIB", "MIIC", 1)
    with pytest.raises(vr.RouteError, match="differs from the pinned"):
        vr.pin_ca(path, other, update=False)
    assert path.read_text() == TEST_CA_PEM
    vr.pin_ca(path, other, update=True)
    assert path.read_text() == other


@pytest.mark.parametrize(
    ("status", "problem"), [(200, None), (429, None), (473, None), (501, "init"), (503, "sealed")]
)
def test_health_statuses(status: int, problem: str | None) -> None:
    found = vr.health_problem(status)
    assert found is None if problem is None else problem in str(found)


# -- the run, on a fake machine ----------------------------------------------------------------------------


@dataclass
class FakeProcess:
    log: list[str]
    exit_code: int | None = None
    stderr: str = ""

    def poll(self) -> int | None:
        return self.exit_code

    def stop(self) -> None:
        self.log.append("stop port-forward")

    def errors(self) -> str:
        return self.stderr


@dataclass
class FakeMachine:
    ca: str = TEST_CA_PEM
    port_in_use: bool = False
    forward_fails: str | None = None
    log: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)

    def capture(self, command: Sequence[str]) -> str:
        self.commands.append(list(command))
        self.log.append("read CA")
        return secret_data(self.ca)

    def start(self, command: Sequence[str]) -> FakeProcess:
        self.commands.append(list(command))
        self.log.append("start port-forward")
        if self.forward_fails is not None:
            return FakeProcess(self.log, exit_code=1, stderr=self.forward_fails)
        return FakeProcess(self.log)

    def run(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        self.log.append("run " + " ".join(command[:2]))
        return 0

    def port_free(self, port: int) -> bool:
        return not self.port_in_use

    def listening(self, port: int) -> bool:
        return self.forward_fails is None


def phase2(machine: FakeMachine, tmp_path: Path, status: int = 200) -> int:
    def verify(planned: vr.Route, pem: str) -> int:
        assert pem == machine.ca and planned.server_name == "vault.vault.svc"
        machine.log.append("verify")
        return status

    planned = vr.plan_route("prod", HA, tmp_path)
    return vr.run_phase2(planned, [], machine=machine, verify=verify, say=lambda line: None)


def test_ca_then_route_then_verified_health_then_pulumi_up_then_close(tmp_path: Path) -> None:
    machine = FakeMachine()
    assert phase2(machine, tmp_path) == 0
    assert machine.log == ["read CA", "start port-forward", "verify", "run pulumi up", "stop port-forward"]
    assert machine.commands[-1] == ["pulumi", "up", "--stack", "prod"]
    assert (tmp_path / "ca" / "prod.pem").read_text() == TEST_CA_PEM


def test_a_sealed_vault_stops_before_pulumi_and_closes_the_route(tmp_path: Path) -> None:
    machine = FakeMachine()
    with pytest.raises(vr.RouteError, match="sealed"):
        phase2(machine, tmp_path, status=503)
    assert machine.log == ["read CA", "start port-forward", "verify", "stop port-forward"]


def test_a_failed_port_forward_says_why(tmp_path: Path) -> None:
    machine = FakeMachine(forward_fails='error: services "vault-active" not found')
    with pytest.raises(vr.RouteError, match='services "vault-active" not found'):
        phase2(machine, tmp_path)
    assert "run pulumi up" not in machine.log and machine.log[-1] == "stop port-forward"


def test_a_busy_local_port_starts_nothing(tmp_path: Path) -> None:
    machine = FakeMachine(port_in_use=True)
    with pytest.raises(vr.RouteError, match="in use"):
        phase2(machine, tmp_path)
    assert machine.log == ["read CA"]


def test_a_rotated_ca_stops_before_the_route(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "prod.pem").write_text(TEST_CA_PEM.replace("MIIB", "MIIC", 1))
    machine = FakeMachine()
    with pytest.raises(vr.RouteError, match="--update-ca"):
        phase2(machine, tmp_path)
    assert machine.log == ["read CA"]


# -- the verification itself, against a real TLS server ----------------------------------------------------


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == vr.HEALTH_PATH else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerTls, int, list[str]]]:
    """A server presenting a certificate for Vault's in-cluster names only (as vault-tls does), on
    127.0.0.1: what the port-forward puts in front of the provider. Records the SNI it is sent."""
    if not openssl_available():
        pytest.skip("the openssl binary makes the throwaway CA and certificate")
    material = make_server_tls(tmp_path_factory.mktemp("tls"), ["vault.vault.svc", "vault.vault"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(material.cert_file, material.key_file)

    def record_sni(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(str(name))

    context.sni_callback = record_sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield material, server.server_address[1], names
    server.shutdown()


def local(port: int, server_name: str = vr.SERVER_NAME) -> vr.Route:
    return vr.Route("prod", "127.0.0.1", port, "vault-active", server_name, Path("unused"))


def test_through_loopback_vault_is_verified_by_its_in_cluster_name(
    tls_server: tuple[ServerTls, int, list[str]],
) -> None:
    material, port, names = tls_server
    assert vr.check_health(local(port), material.ca_file.read_text()) == 200
    assert names[-1] == "vault.vault.svc"  # the SNI: the name verified, not the dialled 127.0.0.1


def test_the_dialled_loopback_name_does_not_verify(tls_server: tuple[ServerTls, int, list[str]]) -> None:
    """Why a server name: the certificate does not name 127.0.0.1, so verifying the dialled host fails."""
    material, port, _ = tls_server
    for name in ("127.0.0.1", "localhost"):
        with pytest.raises(vr.RouteError, match="failed verification"):
            vr.check_health(local(port, name), material.ca_file.read_text())


def test_another_ca_does_not_verify(tls_server: tuple[ServerTls, int, list[str]], tmp_path: Path) -> None:
    _, port, _ = tls_server
    stranger = make_server_tls(tmp_path, ["vault.vault.svc"], ca_name="another-ca")
    with pytest.raises(vr.RouteError, match="failed verification"):
        vr.check_health(local(port), stranger.ca_file.read_text())


# -- the config it needs -------------------------------------------------------------------------------------


def phase2_config(**vault: Any) -> dict[str, Any]:
    return {
        "environment": "dev",
        "target": "kubernetes",
        "owner": "platform-team",
        "cost_center": "cc-1",
        "services": [{"name": "orders", "image": "ghcr.io/acme/orders:1.0.0"}],
        "vault": {"configure": True, **vault},
        "vault_token": "phase2-token-value",
    }


def test_a_missing_ca_file_is_named_by_its_key_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(phase2_config(ca_cert_file="stacks/vault-ca/dev.pem"), root=tmp_path)
    (problem,) = caught.value.problems
    assert problem.startswith("vault.ca_cert_file: cannot read stacks/vault-ca/dev.pem")
    assert "rampart vault-phase2" in problem


def test_phase2_without_a_ca_file_is_named_by_its_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        load_platform_config(phase2_config())
    assert [p.split(":")[0] for p in caught.value.problems] == ["vault.ca_cert_file"]


def test_a_file_that_is_no_certificate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        load_platform_config(phase2_config(ca_cert_file="ca.pem"), root=tmp_path)
    assert caught.value.problems == ["vault.ca_cert_file: ca.pem holds no PEM certificate"]


def test_a_relative_ca_file_is_found_from_the_project_directory(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "ca.pem").write_text(TEST_CA_PEM)
    config = load_platform_config(phase2_config(ca_cert_file="stacks/ca.pem"), root=tmp_path)
    assert config.vault.ca_cert_file == str((tmp_path / "stacks" / "ca.pem").resolve())


# -- the command --------------------------------------------------------------------------------------


def project(tmp_path: Path, vault: dict[str, Any]) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "rampart", "runtime": "python"}))
    stack = {"config": {"rampart:environment": "dev", "rampart:vault": vault}}
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack))
    return tmp_path


def test_ci_runs_the_command_as_is_before_phase2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []

    def record(self: vr.Subprocesses, command: Sequence[str]) -> int:
        ran.append(list(command))
        return 0

    monkeypatch.setattr(vr.Subprocesses, "run", record)
    root = project(tmp_path, {"configure": False})
    arguments = ["vault-phase2", "--stack", "dev", "--project", str(root), "--if-configured", "--"]
    result = CliRunner().invoke(app, [*arguments, "pulumi", "up", "--yes", "--stack", "dev"])
    assert result.exit_code == 0, result.output
    assert ran == [["pulumi", "up", "--yes", "--stack", "dev"]]
    assert "without a Vault route" in result.output


def test_phase2_on_an_unconfigured_stack_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vr.Subprocesses, "run", lambda self, command: pytest.fail("nothing may run"))
    root = project(tmp_path, {"configure": False})
    result = CliRunner().invoke(app, ["vault-phase2", "--stack", "dev", "--project", str(root)])
    assert result.exit_code == 1
    assert "vault.configure is false" in result.output


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({}, True),  # dialling 127.0.0.1 and verifying 127.0.0.1: a name the certificate never carries
        ({"tls_server_name": "vault.vault.svc"}, True),  # and no CA: the system store knows no private CA
        ({"tls_server_name": "vault.vault.svc", "ca_cert_pem": TEST_CA_PEM}, False),
    ],
)
def test_the_component_refuses_a_port_forward_it_could_not_verify(
    changes: dict[str, Any], refused: bool
) -> None:
    arguments = vault_config_args(address="https://127.0.0.1:8200", **changes)
    if refused:
        with pytest.raises(ValueError, match="port-forward give tls_server_name"):
            check(arguments)
    else:
        check(arguments)
