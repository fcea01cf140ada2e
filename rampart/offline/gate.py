"""The offline policy gate: run every policy pack against a captured plan exactly as the Pulumi
engine does during `pulumi preview --policy-pack ... --policy-pack-config ...`.

Each pack is started as its own process the way the Python language host starts an analyzer
plugin (``python -u -m pulumi.policy <engine-address> <pack-dir>``); it prints its gRPC port,
and the gate speaks the Analyzer protocol to it: ConfigureStack, GetAnalyzerInfo, Configure
(with the stack's reconciled policy config), Analyze for every resource (its inputs), and
AnalyzeStack (every resource's outputs). Enforcement levels, policy config and not-applicable
results therefore behave as they do under the engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as analyzer
from pulumi.runtime.proto import analyzer_pb2_grpc as analyzer_grpc
from pulumi.runtime.proto import engine_pb2_grpc as engine_grpc

from rampart import progress
from rampart.offline import values
from rampart.offline.plan import STACK_TYPE, Plan

LEVELS = {
    "advisory": analyzer.ADVISORY,
    "mandatory": analyzer.MANDATORY,
    "remediate": analyzer.REMEDIATE,
    "disabled": analyzer.DISABLED,
}
LEVEL_NAMES = {number: name for name, number in LEVELS.items()}
SEVERITY_NAMES = {0: "", 1: "low", 2: "medium", 3: "high", 4: "critical"}
MAX_MESSAGE = 400 * 1024 * 1024
START_TIMEOUT = 60.0
BATCH = 64


class GateError(Exception):
    """A pack or its config cannot be used. ``str()`` is one line."""


@dataclass(frozen=True)
class Diagnostic:
    pack: str
    policy: str
    level: str
    severity: str
    message: str
    urn: str


@dataclass(frozen=True)
class PackReport:
    name: str
    version: str
    policies: dict[str, str]  # policy -> enforcement level after config
    reasons: dict[str, str]  # policy (or "all") -> why it is relaxed, from the config file
    diagnostics: list[Diagnostic]
    not_applicable: dict[str, str]  # policy -> reason


@dataclass
class GateResult:
    packs: list[PackReport] = field(default_factory=list)
    resources: int = 0
    seconds: float = 0.0

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for pack in self.packs for d in pack.diagnostics]

    @property
    def mandatory(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level in ("mandatory", "remediate")]

    @property
    def advisory(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level == "advisory"]


def discover_packs(root: Path) -> list[Path]:
    return sorted(path.parent for path in (root / "policies").glob("*/PulumiPolicy.yaml"))


def run_gate(
    plan: Plan,
    packs: list[Path],
    config_dir: Path | None = None,
    stack_config: dict[str, str] | None = None,
) -> GateResult:
    """Run every pack against ``plan``. ``config_dir/<stack>/<pack>.json`` holds each pack's
    policy config in the `--policy-pack-config` format."""
    if config_dir is not None and packs:
        _check_config_exists(config_dir, plan.stack, packs)
    start = time.perf_counter()
    reports: list[PackReport | BaseException] = [GateError("not run")] * len(packs)

    def run(index: int, pack: Path) -> None:
        config_file = config_dir / plan.stack / f"{pack.name}.json" if config_dir else None
        try:
            reports[index] = _run_pack(plan, pack, config_file, stack_config or {})
        except BaseException as exc:  # re-raised in the caller's thread
            reports[index] = exc

    threads = [threading.Thread(target=run, args=(i, pack)) for i, pack in enumerate(packs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = GateResult(resources=len(plan.resources))
    for report in reports:
        if isinstance(report, BaseException):
            raise report
        result.packs.append(report)
    result.seconds = time.perf_counter() - start
    return result


def _check_config_exists(config_dir: Path, stack: str, packs: list[Path]) -> None:
    """A stack without its enforcement config is an error: the engine would enforce every policy
    as its pack's default, silently, and `--policy-pack-config` would name a missing file."""
    folder = config_dir / stack
    howto = (
        f"create it from a strict stack's (`mkdir -p {folder} && cp {config_dir}/staging/*.json {folder}/`, "
        "every policy mandatory), then relax a policy only with a reason"
    )
    if not folder.is_dir():
        raise GateError(f"no policy-pack config for stack {stack!r}: {folder}/ does not exist; {howto}")
    for pack in packs:
        if not (folder / f"{pack.name}.json").is_file():
            raise GateError(f"no {pack.name}.json in {folder}/ (the {pack.name} pack's config); {howto}")


# --- one pack ----------------------------------------------------------------------------------


def _run_pack(
    plan: Plan, pack_dir: Path, config_file: Path | None, stack_config: dict[str, str]
) -> PackReport:
    file_config, reasons = _read_config(config_file) if config_file and config_file.is_file() else ({}, {})
    with _engine() as engine_address, _pack_process(pack_dir, plan, engine_address, stack_config) as stub:
        stub.ConfigureStack(
            analyzer.AnalyzerStackConfigureRequest(
                stack=plan.stack,
                project=plan.project,
                organization="organization",
                dry_run=True,
                config=stack_config,
            )
        )
        info = stub.GetAnalyzerInfo(empty_pb2.Empty())
        known = {policy.name for policy in info.policies}
        unknown = sorted(set(file_config) - known - {"all"})
        if unknown:
            raise GateError(
                f"{config_file}: no policy named {', '.join(map(repr, unknown))} in pack {info.name}"
            )
        reconciled = _reconcile(info, file_config)
        if info.supportsConfig:
            request = analyzer.ConfigureAnalyzerRequest()
            for name, (level, properties) in reconciled.items():
                request.policyConfig[name].CopyFrom(
                    analyzer.PolicyConfig(enforcementLevel=LEVELS[level], properties=_struct(properties))
                )
            stub.Configure(request)
        default_severity = {p.name: SEVERITY_NAMES[p.severity] for p in info.policies}
        diagnostics: list[Diagnostic] = []
        not_applicable: dict[str, str] = {}

        def collect(response: Any, fallback_urn: str) -> None:
            for d in response.diagnostics:
                diagnostics.append(
                    Diagnostic(
                        pack=d.policyPackName or info.name,
                        policy=d.policyName,
                        level=LEVEL_NAMES.get(d.enforcementLevel, "advisory"),
                        severity=SEVERITY_NAMES.get(d.severity) or default_severity.get(d.policyName, ""),
                        message=d.message,
                        urn=d.urn or fallback_urn,
                    )
                )
            for entry in response.not_applicable:
                not_applicable.setdefault(entry.policy_name, entry.reason)

        by_urn = plan.by_urn()
        requests = [(r["urn"], _analyze_request(r, by_urn)) for r in plan.resources]
        for offset in range(0, len(requests), BATCH):
            batch = [
                (urn, stub.Analyze.future(request)) for urn, request in requests[offset : offset + BATCH]
            ]
            for urn, pending in batch:
                collect(pending.result(), urn)
                progress.advance("resources analysed")
        stack_urn = next((r["urn"] for r in plan.resources if r["type"] == STACK_TYPE), "")
        collect(
            stub.AnalyzeStack(
                analyzer.AnalyzeStackRequest(resources=[_stack_resource(r, by_urn) for r in plan.resources])
            ),
            stack_urn,
        )
        return PackReport(
            name=info.name,
            # The engine reports the version PulumiPolicy.yaml declares over the SDK's default.
            version=str(_pack_document(pack_dir).get("version") or info.version),
            policies={name: level for name, (level, _) in reconciled.items() if name in known},
            reasons=reasons,
            diagnostics=diagnostics,
            not_applicable=not_applicable,
        )


@contextmanager
def _pack_process(
    pack_dir: Path, plan: Plan, engine_address: str, stack_config: dict[str, str]
) -> Iterator[analyzer_grpc.AnalyzerStub]:
    env = os.environ | {
        "PULUMI_ORGANIZATION": "organization",
        "PULUMI_PROJECT": plan.project,
        "PULUMI_STACK": plan.stack,
        "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": json.dumps(stack_config),
    }
    command = [_pack_python(pack_dir), "-u", "-m", "pulumi.policy", engine_address, str(pack_dir.resolve())]
    process = subprocess.Popen(  # nosec B603 # noqa: S603 - the project's own pack, started like the engine does
        command,
        cwd=pack_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    errors: list[str] = []
    threading.Thread(target=_drain, args=(process.stderr, errors), daemon=True).start()
    # The handshake: the pack's first stdout line is the port its Analyzer server listens on.
    first = process.stdout.readline().decode().strip()
    if not first.isdigit():
        process.wait(timeout=10)
        last = next((line for line in reversed(errors) if line.strip()), first or "no output")
        raise GateError(f"policy pack {pack_dir.name} did not start: {last}")
    threading.Thread(target=_drain, args=(process.stdout, []), daemon=True).start()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{first}",
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    try:
        grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT)
        yield analyzer_grpc.AnalyzerStub(channel)
    finally:
        channel.close()
        # As the engine closes a plugin: SIGINT, then kill after five seconds.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pack_python(pack_dir: Path) -> str:
    """The interpreter the engine would use: the pack's configured virtualenv, else ours."""
    runtime = _pack_document(pack_dir).get("runtime")
    virtualenv = runtime.get("options", {}).get("virtualenv") if isinstance(runtime, dict) else None
    if virtualenv:
        # Not resolve(): the venv's python is a symlink, and following it would leave the venv.
        python = os.path.normpath(pack_dir.absolute() / str(virtualenv) / "bin" / "python")
        if Path(python).is_file():
            return python
    return sys.executable


def _pack_document(pack_dir: Path) -> dict[str, Any]:
    document = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text())
    return document if isinstance(document, dict) else {}


def _drain(stream: Any, sink: list[str]) -> None:
    for line in iter(stream.readline, b""):
        sink.append(line.decode(errors="replace").rstrip())


class _Engine(engine_grpc.EngineServicer):
    """The engine service a plugin is handed the address of (pulumi_policy logs to stderr instead)."""


@contextmanager
def _engine() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    engine_grpc.add_EngineServicer_to_server(_Engine(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)


# --- policy config, as the engine reconciles it --------------------------------------------------


def _read_config(path: Path) -> tuple[dict[str, tuple[str | None, dict[str, Any]]], dict[str, str]]:
    """A `--policy-pack-config` file: ``{"all": "mandatory", "<policy>": {"enforcementLevel": ..., ...}}``."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GateError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(document, dict):
        raise GateError(f"{path}: expected a JSON object")
    parsed: dict[str, tuple[str | None, dict[str, Any]]] = {}
    reasons: dict[str, str] = {}
    for name, entry in document.items():
        if isinstance(entry, str):
            level, properties = entry, {}
        elif isinstance(entry, dict):
            properties = dict(entry)
            level = properties.pop("enforcementLevel", None)
            if "reason" in properties:
                reasons[name] = str(properties["reason"])
        else:
            raise GateError(f"{path}: {name}: expected a level or an object")
        if level is not None and level not in LEVELS:
            raise GateError(f"{path}: {name}: unknown enforcement level {level!r}")
        parsed[name] = (level, properties)
    return parsed, reasons


def _reconcile(
    info: Any, file_config: dict[str, tuple[str | None, dict[str, Any]]]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Schema defaults, then the pack's initial config, then the file; "all" first of each."""
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    for policy in info.policies:
        schema = json_format.MessageToDict(policy.configSchema.properties)
        defaults = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
        result[policy.name] = (LEVEL_NAMES[policy.enforcementLevel], defaults)
    initial = {
        name: (LEVEL_NAMES[config.enforcementLevel], json_format.MessageToDict(config.properties))
        for name, config in info.initialConfig.items()
    }
    for layer in (initial, file_config):
        if "all" in layer and layer["all"][0]:
            result = {name: (str(layer["all"][0]), properties) for name, (_, properties) in result.items()}
        for name, (level, properties) in layer.items():
            if name == "all":
                continue
            current_level, current_properties = result.get(name, ("advisory", {}))
            result[name] = (level or current_level, current_properties | properties)
    return result


# --- resources, as the engine marshals them ------------------------------------------------------


def _struct(properties: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    # The engine sends secrets as {sig: secret, value: plaintext}; the plan has no plaintext.
    struct.update(
        values.replace_secrets(properties, lambda: {values.SIG: values.SECRET_SIG, "value": "[secret]"})
    )
    return struct


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _options(resource: dict[str, Any]) -> analyzer.AnalyzerResourceOptions:
    return analyzer.AnalyzerResourceOptions(
        protect=bool(resource.get("protect")),
        ignoreChanges=resource.get("ignoreChanges") or [],
        deleteBeforeReplace=bool(resource.get("deleteBeforeReplace")),
        deleteBeforeReplaceDefined=True,
        additionalSecretOutputs=resource.get("additionalSecretOutputs") or [],
        aliases=resource.get("aliases") or [],
        customTimeouts=analyzer.AnalyzerResourceOptions.CustomTimeouts(),
        parent=resource.get("parent") or "",
    )


def _provider(
    resource: dict[str, Any], by_urn: dict[str, dict[str, Any]]
) -> analyzer.AnalyzerProviderResource | None:
    reference = resource.get("provider")
    if not reference:
        return None
    urn = reference.rsplit("::", 1)[0]
    provider = by_urn.get(urn, {})
    return analyzer.AnalyzerProviderResource(
        type=provider.get("type", ""),
        urn=urn,
        name=_name(urn),
        properties=_struct(provider.get("inputs") or {}),
    )


def _described(
    resource: dict[str, Any], by_urn: dict[str, dict[str, Any]], properties: str
) -> dict[str, Any]:
    """The fields an analyzer request and a stack resource share; ``properties`` is 'inputs' or 'outputs'."""
    return {
        "type": resource["type"],
        "urn": resource["urn"],
        "name": _name(resource["urn"]),
        "properties": _struct(resource.get(properties) or {}),
        "options": _options(resource),
        "provider": _provider(resource, by_urn),
    }


def _analyze_request(resource: dict[str, Any], by_urn: dict[str, dict[str, Any]]) -> analyzer.AnalyzeRequest:
    return analyzer.AnalyzeRequest(**_described(resource, by_urn, "inputs"))


def _stack_resource(resource: dict[str, Any], by_urn: dict[str, dict[str, Any]]) -> analyzer.AnalyzerResource:
    return analyzer.AnalyzerResource(
        **_described(resource, by_urn, "outputs"),
        parent=resource.get("parent") or "",
        dependencies=resource.get("dependencies") or [],
        propertyDependencies={
            key: analyzer.AnalyzerPropertyDependencies(urns=urns)
            for key, urns in (resource.get("propertyDependencies") or {}).items()
        },
    )
