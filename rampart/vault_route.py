"""Phase 2 of Vault as one verified step: `rampart vault-phase2 --stack <stack>`.

Vault's certificate names only in-cluster hosts (``vault.vault.svc``, ``*.vault-internal``), from the
platform's private CA; Pulumi runs outside the cluster. So the command

1. reads the CA from Vault's TLS Secret (``vault-tls``, key ``ca.crt``) through the Kubernetes API,
   and pins it in ``vault.ca_cert_file`` (written the first time; afterwards a different CA stops the
   run until ``--update-ca``: a changed trust anchor is a reviewed change, not a silent one);
2. opens ``kubectl port-forward`` from ``vault.address`` (``https://127.0.0.1:<port>``) to the active
   server (``service/vault-active`` in HA, ``service/vault`` standalone);
3. checks ``/v1/sys/health`` over that route with the pinned CA and the server name
   ``vault.vault.svc``: the same verification the Vault provider does (the program gives it
   ``ca_cert_file`` and ``tls_server_name``; Go's TLS checks ``ServerName``, not the dialled host), and
   stops on an uninitialised or sealed Vault;
4. runs ``pulumi up --stack <stack>`` (or the command after ``--``) and closes the port-forward.

The token is never handled here: it is the stack's secret config (``pulumi config set --secret
rampart:vault_token``, from a prompt or stdin), read by the program alone.

Why a server name rather than 127.0.0.1 / localhost SANs on Vault's certificate: a loopback name
identifies no one (every host is localhost, and any other certificate from the same CA carrying it would
pass), whereas ``vault.vault.svc`` is Vault's own name; and the certificate, phase 1 and the plan stay as
they are.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import os
import socket
import ssl
import subprocess  # nosec B404
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

import typer

from components.secrets import NAMESPACE
from components.secrets.vault_chart import ADDRESS, API_PORT, RELEASE_NAME, SERVER_CERTIFICATE, is_ha
from rampart.config import ConfigError, namespace_values
from rampart.config.models import Vault
from rampart.offline.project import StackFileError, load_project, load_stack_config
from rampart.offline.runner import project_root, stack_platform_config
from rampart.verdict import Verdict, console

# The name on Vault's certificate the client verifies, whatever the route.
SERVER_NAME = urlsplit(ADDRESS).hostname or f"{RELEASE_NAME}.{NAMESPACE}.svc"
# The chart's Service of the raft leader (HA: pods label themselves through service_registration).
ACTIVE_SERVICE = f"{RELEASE_NAME}-active"
CA_KEY = "ca.crt"
HEALTH_PATH = "/v1/sys/health"
# https://developer.hashicorp.com/vault/api-docs/system/health: 200 active, 429 unsealed standby,
# 472 DR secondary, 473 performance standby; 501 not initialised, 503 sealed.
SERVING = {200, 429, 473}
NOT_SERVING = {
    501: "Vault is not initialised: `vault operator init` first (README, Secrets: Vault)",
    503: "Vault is sealed: unseal it first (README, Secrets: Vault)",
    472: "this Vault is a DR secondary: configure the primary",
}


class RouteError(Exception):
    """Phase 2 cannot run: one line saying why, and what to do."""


@dataclass(frozen=True)
class Route:
    """How Pulumi reaches Vault for one stack, and what it verifies."""

    stack: str
    # Where the provider dials (vault.address).
    host: str
    port: int
    # The Service a port-forward targets, or None when the address is reached directly.
    service: str | None
    server_name: str
    ca_file: Path

    @property
    def forwarded(self) -> bool:
        return self.service is not None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def plan_route(stack: str, raw_vault: Mapping[str, Any], root: Path) -> Route:
    """The route from the stack's ``rampart:vault`` settings (as written, before the CA file exists)."""
    try:
        settings = Vault.model_validate({**raw_vault, "ca_cert_file": None})
    except ValueError as exc:
        raise RouteError(f"rampart:vault is invalid: {exc}") from None
    if not settings.configure:
        raise RouteError("vault.configure is false: set it to true for phase 2 (README, Secrets: Vault)")
    raw_ca = raw_vault.get("ca_cert_file")
    if not isinstance(raw_ca, str) or not raw_ca:
        raise RouteError(
            "vault.ca_cert_file: set it (e.g. `pulumi config set --path rampart:vault.ca_cert_file "
            f"stacks/vault-ca/{stack}.pem`); this command pins Vault's CA there"
        )
    address = urlsplit(settings.address)
    host = address.hostname or ""
    loopback = is_loopback(host)
    if loopback and address.port is None:
        raise RouteError(f"vault.address {settings.address}: give the local port (https://127.0.0.1:8200)")
    ca_file = Path(raw_ca).expanduser()
    return Route(
        stack=stack,
        host=host,
        port=address.port or 443,
        service=(ACTIVE_SERVICE if is_ha(settings.replicas) else RELEASE_NAME) if loopback else None,
        server_name=SERVER_NAME,
        ca_file=ca_file if ca_file.is_absolute() else root / ca_file,
    )


# -- the commands, as argument lists -----------------------------------------------------------------


def kubectl(context: str | None) -> list[str]:
    return ["kubectl", *(["--context", context] if context else []), "--namespace", NAMESPACE]


def read_ca_command(context: str | None) -> list[str]:
    """Only the CA field of the Secret is printed (base64), never its key."""
    return [*kubectl(context), "get", "secret", SERVER_CERTIFICATE, "--output", "jsonpath={.data.ca\\.crt}"]


def port_forward_command(route: Route, context: str | None) -> list[str]:
    assert route.service is not None
    return [
        *kubectl(context),
        "port-forward",
        # Loopback only: nothing else on this machine's networks reaches the tunnel.
        "--address",
        "127.0.0.1",
        "--pod-running-timeout",
        "30s",
        f"service/{route.service}",
        f"{route.port}:{API_PORT}",
    ]


def pulumi_command(stack: str, command: Sequence[str]) -> list[str]:
    return list(command) if command else ["pulumi", "up", "--stack", stack]


# -- the CA -----------------------------------------------------------------------------------------


def decode_ca(data: str) -> str:
    """The Secret's base64 ``ca.crt`` as PEM text, refused unless it parses as a certificate."""
    try:
        pem = base64.b64decode(data.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RouteError(f"{SERVER_CERTIFICATE}: {CA_KEY} is not base64 PEM") from None
    if not pem:
        raise RouteError(f"{SERVER_CERTIFICATE} has no {CA_KEY}: is its issuer the platform's private CA?")
    tls_context(pem)
    return pem


def tls_context(ca_pem: str) -> ssl.SSLContext:
    """Verification as the Vault provider (Go) does it: the CA is a trust anchor even if not self-signed."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        tls.load_verify_locations(cadata=ca_pem)
    except (ssl.SSLError, ValueError):
        raise RouteError(f"{SERVER_CERTIFICATE}: {CA_KEY} is not a PEM certificate") from None
    return tls


def pin_ca(path: Path, pem: str, *, update: bool) -> str:
    """Write the CA the first time; afterwards refuse a different one unless ``update``."""
    if path.is_file():
        pinned = path.read_text()
        if pinned.strip() == pem.strip():
            return f"Vault's CA matches {path}"
        if not update:
            raise RouteError(
                f"the cluster's Vault CA differs from the pinned {path}: if the CA was rotated, review and "
                "rerun with --update-ca (then commit the file)"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(pem)
    staging.replace(path)
    return f"pinned Vault's CA in {path} (commit it: CI plans and deploys verify against it)"


# -- the health check --------------------------------------------------------------------------------


def health_problem(status: int) -> str | None:
    if status in SERVING:
        return None
    return NOT_SERVING.get(status, f"{HEALTH_PATH} answered {status}")


def check_health(route: Route, ca_pem: str, timeout: float = 10.0) -> int:
    """GET /v1/sys/health over TLS to ``route``, verified against ``ca_pem`` and ``route.server_name``
    (SNI and certificate name). Unauthenticated: no token is sent."""
    tls = tls_context(ca_pem)
    try:
        with (
            socket.create_connection((route.host, route.port), timeout=timeout) as raw,
            tls.wrap_socket(raw, server_hostname=route.server_name) as secure,
        ):
            connection = http.client.HTTPConnection(route.server_name, route.port, timeout=timeout)
            connection.sock = secure
            connection.request("GET", HEALTH_PATH, headers={"Host": f"{route.server_name}:{route.port}"})
            return connection.getresponse().status
    except ssl.SSLCertVerificationError as exc:
        raise RouteError(
            f"Vault at {route.host}:{route.port} failed verification as {route.server_name}: "
            f"{exc.verify_message}"
        ) from None
    except OSError as exc:
        raise RouteError(f"Vault at {route.host}:{route.port} cannot be reached: {exc}") from None


# -- running it ---------------------------------------------------------------------------------------


class Process(Protocol):
    """A started background command (the port-forward)."""

    def poll(self) -> int | None: ...
    def stop(self) -> None: ...
    def errors(self) -> str: ...


class Background:
    """A real background process; its stderr goes to a file (a pipe nobody reads could fill and block it)."""

    def __init__(self, command: Sequence[str]) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(  # nosec B603 # noqa: S603 - an argument list, never a shell
            list(command), stdout=subprocess.DEVNULL, stderr=self._stderr, text=True
        )

    def poll(self) -> int | None:
        return self._process.poll()

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stderr.close()

    def errors(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().strip()


class Shell(Protocol):
    """What the command needs from the machine: kubectl and pulumi, a port to listen on."""

    def capture(self, command: Sequence[str]) -> str: ...
    def start(self, command: Sequence[str]) -> Process: ...
    def run(self, command: Sequence[str]) -> int: ...
    def port_free(self, port: int) -> bool: ...
    def listening(self, port: int) -> bool: ...


class Subprocesses:
    """The real machine."""

    def capture(self, command: Sequence[str]) -> str:
        done = subprocess.run(list(command), capture_output=True, text=True, check=False)  # nosec B603 # noqa: S603
        if done.returncode != 0:
            raise RouteError(f"{' '.join(command[:1])} failed: {done.stderr.strip() or done.returncode}")
        return done.stdout

    def start(self, command: Sequence[str]) -> Process:
        return Background(command)

    def run(self, command: Sequence[str]) -> int:
        return subprocess.run(list(command), check=False).returncode  # nosec B603 # noqa: S603

    def port_free(self, port: int) -> bool:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    def listening(self, port: int) -> bool:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False


@contextmanager
def forwarded(
    route: Route, machine: Shell, kube_context: str | None, wait_seconds: float = 45.0
) -> Iterator[None]:
    """The port-forward, open for the duration of the block (no-op when the address is direct)."""
    if not route.forwarded:
        yield
        return
    if not machine.port_free(route.port):
        raise RouteError(f"127.0.0.1:{route.port} is in use: free it, or change the port in vault.address")
    process = machine.start(port_forward_command(route, kube_context))
    try:
        deadline = time.monotonic() + wait_seconds
        while not machine.listening(route.port):
            if process.poll() is not None:
                raise RouteError(
                    f"kubectl port-forward to service/{route.service} ended: {process.errors()} "
                    "(is Vault initialised and unsealed? service/vault-active selects the raft leader)"
                )
            if time.monotonic() > deadline:
                raise RouteError(f"kubectl port-forward did not listen on 127.0.0.1:{route.port} in time")
            time.sleep(0.2)
        yield
    finally:
        process.stop()


def run_phase2(
    route: Route,
    command: Sequence[str],
    *,
    machine: Shell,
    kube_context: str | None = None,
    update_ca: bool = False,
    verify: Callable[[Route, str], int] = check_health,
    validate: Callable[[], None] = lambda: None,
    say: Callable[[str], None] = print,
) -> int:
    """CA from the cluster, pinned; the stack's whole config validated (``validate``, now that the CA
    file exists); the route; a verified health check; then ``command``. Its exit code."""
    pem = decode_ca(machine.capture(read_ca_command(kube_context)))
    say(pin_ca(route.ca_file, pem, update=update_ca))
    validate()
    with forwarded(route, machine, kube_context):
        problem = health_problem(verify(route, pem))
        if problem:
            raise RouteError(problem)
        say(f"Vault answers at {route.host}:{route.port}, verified as {route.server_name}")
        return machine.run(pulumi_command(route.stack, command))


# -- the command ---------------------------------------------------------------------------------------

CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def command(
    ctx: typer.Context,
    *,
    stack: Annotated[
        str | None,
        typer.Option("--stack", "-s", envvar="PULUMI_STACK", help="Stack name [default: $PULUMI_STACK]"),
    ] = None,
    kube_context: Annotated[
        str | None,
        typer.Option("--context", help="kubeconfig context of the stack's cluster [default: current]"),
    ] = None,
    update_ca: Annotated[
        bool, typer.Option("--update-ca", help="Accept a CA that differs from the pinned vault.ca_cert_file")
    ] = False,
    if_configured: Annotated[
        bool,
        typer.Option(
            "--if-configured", help="With vault.configure false, run the command without a route (CI)"
        ),
    ] = False,
    project: Annotated[
        Path | None, typer.Option("--project", help="Directory holding Pulumi.yaml [default: found upwards]")
    ] = None,
) -> None:
    """Vault phase 2, verified: pin Vault's CA from the vault-tls Secret, port-forward to Vault as
    vault.address says, check it answers as vault.vault.svc, then run `pulumi up --stack <stack>` (or the
    command after `--`) through that route. The token stays in the stack's secret config."""
    out, err = console(), console(stderr=True)
    verdict = Verdict("vault-phase2")
    if not stack:
        verdict.stop(out, err, "no stack: give --stack <name> or set PULUMI_STACK", code=2)
    root = project or project_root()
    try:
        raw = namespace_values(load_stack_config(load_project(root), stack).values)
    except StackFileError as exc:
        verdict.stop(out, err, str(exc), code=2)
    raw_vault = raw.get("vault") or {}
    if not isinstance(raw_vault, Mapping):
        verdict.stop(out, err, "rampart:vault must be a mapping", code=2)
    if if_configured and not raw_vault.get("configure"):
        code = Subprocesses().run(pulumi_command(stack, ctx.args))
        verdict.add("vault.configure is false: ran without a Vault route")
        if code:
            verdict.fail(f"the command exited {code}", code=code)
        verdict.finish(out, err)
        return

    def validate() -> None:
        stack_platform_config(stack, root)

    try:
        route = plan_route(stack, raw_vault, root)
        code = run_phase2(
            route,
            ctx.args,
            machine=Subprocesses(),
            kube_context=kube_context,
            update_ca=update_ca,
            validate=validate,
            say=lambda line: out.print(line, highlight=False, markup=False),
        )
    except RouteError as exc:
        verdict.stop(out, err, str(exc))
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
        verdict.stop(out, err, "invalid configuration")
    if code:
        verdict.fail(f"the command exited {code}", code=code)
    else:
        verdict.add(f"ran through the verified route to Vault ({route.server_name})")
    verdict.finish(out, err)
