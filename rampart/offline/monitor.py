"""A mock resource monitor that records every registration the way the engine would store it."""

from __future__ import annotations

import threading
from typing import Any

from pulumi.runtime.mocks import MockMonitor, Mocks
from pulumi.runtime.settings import get_project, get_stack

from rampart import progress
from rampart.offline import values

STACK_TYPE = "pulumi:pulumi:Stack"


class CapturingMonitor(MockMonitor):
    """Records type, name, parent, inputs, outputs, dependencies, provider and resource
    options for every RegisterResource, in registration order (a valid topological order)."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[dict[str, Any]] = []
        self._by_urn: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        # One object per distinct string across the plan's values (see values.from_struct).
        self._strings: dict[str, str] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the engine does: the type is qualified by the parent's whole type chain, and the
        # root Stack is left out (the SDK's mock keeps only the parent's last type).
        if parent:
            qualified = parent.split("::")[2]
            if qualified != STACK_TYPE:
                type_ = f"{qualified}${type_}"
        return "::".join([f"urn:pulumi:{get_stack()}", get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        progress.advance("resources registered")
        custom = bool(request.custom)
        inputs = values.from_struct(request.object, self._strings)
        outputs = values.from_struct(response.object, self._strings) if custom else {}
        secret_outputs = list(request.additionalSecretOutputs)
        record: dict[str, Any] = {
            "urn": response.urn,
            "custom": custom,
            "type": request.type,
            "name": request.name,
            "parent": request.parent or None,
            "inputs": inputs,
            "outputs": _with_secret_inputs(values.mark_secret(outputs, secret_outputs), inputs),
            "dependencies": list(dict.fromkeys(request.dependencies)),
            "propertyDependencies": {
                key: list(deps.urns) for key, deps in sorted(request.propertyDependencies.items())
            },
            "provider": request.provider or None,
            "providerVersion": request.version or None,
            "protect": bool(request.protect) if request.HasField("protect") else False,
            "retainOnDelete": bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
            "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            "ignoreChanges": list(request.ignoreChanges),
            "additionalSecretOutputs": secret_outputs,
            "aliases": self._aliases(request),
        }
        if custom:
            record["id"] = response.id
        with self._lock:
            self.registrations.append(record)
            self._by_urn[response.urn] = record
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        outputs = values.from_struct(request.outputs, self._strings)
        with self._lock:
            record = self._by_urn.get(request.urn)
            if record is not None:
                record["outputs"] = outputs
        return super().RegisterResourceOutputs(request)

    def _aliases(self, request: Any) -> list[str]:
        aliases = list(request.aliasURNs)
        for alias in request.aliases:
            if alias.WhichOneof("alias") == "urn":
                aliases.append(alias.urn)
                continue
            spec = alias.spec
            parent = "" if spec.noParent else (spec.parentUrn or request.parent)
            aliases.append(self.make_urn(parent, spec.type or request.type, spec.name or request.name))
        return aliases


def _with_secret_inputs(outputs: Any, inputs: Any) -> Any:
    """The engine keeps an output secret where the input it echoes was secret, at any depth."""
    if values.is_secret(inputs):
        return values.secret()
    if isinstance(outputs, dict) and isinstance(inputs, dict):
        return {key: _with_secret_inputs(value, inputs.get(key)) for key, value in outputs.items()}
    if isinstance(outputs, list) and isinstance(inputs, list) and len(outputs) == len(inputs):
        return [_with_secret_inputs(o, i) for o, i in zip(outputs, inputs, strict=True)]
    return outputs
