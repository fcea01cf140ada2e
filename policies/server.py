"""The analyzer server a Rampart pack runs: pulumi_policy's own, except that each request is read once.

pulumi_policy 1.21's servicer deserialises a resource's properties (protobuf Struct -> dict -> proxy)
once per policy: every `Analyze` call repeats it for each resource policy, every `AnalyzeStack` call
rebuilds every resource of the stack for each stack policy. With 60-odd policies that conversion,
not the rules, was most of the gate's time. This servicer reads each request once and hands the
same view to every policy, and skips resource policies whose rule does not look at the resource's
type (the rule would return at once). Everything else is the SDK's: policy config, enforcement
levels, how violations, "not applicable" and unknown values during preview are reported
(https://github.com/pulumi/pulumi-policy/blob/v1.21.0/sdk/python/lib/pulumi_policy/policy.py,
`_PolicyAnalyzerServicer.Analyze` / `AnalyzeStack`), so the engine sees the same responses.
`tests/policies/test_shared_view.py` proves the findings equal the SDK servicer's on mutated plans.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import json_format
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import (
    _GRPC_CHANNEL_OPTIONS,
    PolicyResource,
    _NotApplicableError,
    _PolicyAnalyzerServicer,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

# The SDK keeps these private (name-mangled); the pinned version is checked by the equality test.
_PRIVATE = "_PolicyAnalyzerServicer__"


def _view(properties: Any) -> Any:
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(properties)))


class SharedViewAnalyzer(_PolicyAnalyzerServicer):
    """The SDK's analyzer servicer, reading each request once. ``types`` maps a resource policy's
    name to the resource types it checks (absent: every type)."""

    def __init__(
        self,
        name: str,
        policies: list[Policy],
        enforcement_level: EnforcementLevel,
        description: str,
        types: Mapping[str, Collection[str]],
    ) -> None:
        # The SDK reports version 0.0.1 and lets PulumiPolicy.yaml's version win, as PolicyPack does.
        super().__init__(name, "0.0.1", policies, enforcement_level, None, description, *[None] * 5)
        self._types = types

    def _private(self, field: str) -> Any:
        return getattr(self, _PRIVATE + field)

    def _active(self, kind: type[Policy]) -> list[tuple[Policy, EnforcementLevel]]:
        active: list[tuple[Policy, EnforcementLevel]] = []
        for policy in self._private("policies"):
            level = self._get_enforcement_level(policy)
            if level == EnforcementLevel.DISABLED or not isinstance(policy, kind):
                continue
            # As the SDK: a resource policy never remediates here, a stack policy cannot.
            active.append(
                (policy, EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level)
            )
        return active

    def Analyze(self, request: Any, _context: Any) -> Any:  # noqa: N802 - the gRPC method name
        self._configure_runtime_settings()  # type: ignore[no-untyped-call]
        response = proto.AnalyzeResponse()
        shared: ResourceValidationArgs | None = None
        for policy, level in self._active(ResourceValidationPolicy):
            wanted = self._types.get(policy.name)
            if wanted is not None and request.type not in wanted:
                continue
            if shared is None:
                shared = ResourceValidationArgs(
                    request.type,
                    _view(request.properties),
                    request.urn,
                    request.name,
                    self._get_resource_options(request),
                    self._get_provider_resource(request),
                    None,
                    self._private("stack_tags"),
                )
            args = ResourceValidationArgs(
                shared.resource_type,
                shared.props,
                shared.urn,
                shared.name,
                shared.opts,
                shared.provider,
                self._get_policy_config(policy.name),
                self._private("stack_tags"),
            )
            assert isinstance(policy, ResourceValidationPolicy)
            self._run(response, policy, level, args)
        return response

    def AnalyzeStack(self, request: Any, _context: Any) -> Any:  # noqa: N802 - the gRPC method name
        self._configure_runtime_settings()  # type: ignore[no-untyped-call]
        response = proto.AnalyzeResponse()
        active = self._active(StackValidationPolicy)
        resources = _stack_resources(request, self) if active else []
        for policy, level in active:
            args = StackValidationArgs(
                resources, self._get_policy_config(policy.name), self._private("stack_tags")
            )
            assert isinstance(policy, StackValidationPolicy)
            self._run(response, policy, level, args)
        return response

    def _run(
        self,
        response: Any,
        policy: ResourceValidationPolicy | StackValidationPolicy,
        level: EnforcementLevel,
        args: Any,
    ) -> None:
        report = self._create_report_violation(
            response, policy.name, policy.description, level, policy.severity
        )
        try:
            policy.validate(args, report)
        except UnknownValueError as exc:
            pack, version = self._private("policy_pack_name"), self._private("policy_pack_version")
            response.diagnostics.append(
                proto.AnalyzeDiagnostic(
                    policyName=policy.name,
                    policyPackName=pack,
                    policyPackVersion=version,
                    message=(
                        f"can't run policy '{policy.name}' from policy pack '{pack}@v{version}' "
                        f"during preview: {exc.message}"
                    ),
                    urn="",
                    description=policy.description,
                    enforcementLevel=self._map_enforcement_level(EnforcementLevel.ADVISORY),
                )
            )
        except _NotApplicableError as exc:
            response.not_applicable.append(
                proto.PolicyNotApplicable(policy_name=policy.name, reason=exc.reason or "")
            )


def _stack_resources(request: Any, servicer: SharedViewAnalyzer) -> list[PolicyResource]:
    """Every resource of the stack, parents and dependencies linked, as the SDK builds them."""
    built: dict[str, PolicyResource] = {}
    links: list[tuple[PolicyResource, Any]] = []
    for r in request.resources:
        resource = PolicyResource(
            r.type,
            _view(r.properties),
            r.urn,
            r.name,
            servicer._get_resource_options(r),
            servicer._get_provider_resource(r),
            None,
            [],
            {},
        )
        built[r.urn] = resource  # as the SDK: the last of a duplicated URN wins
        links.append((resource, r))
    for resource, r in links:
        if r.parent in built:
            resource.parent = built[r.parent]
        resource.dependencies.extend(built[d] for d in r.dependencies if d in built)
        for key, urns in r.propertyDependencies.items():
            resource.property_dependencies[key] = [built[d] for d in urns.urns if d in built]
    return [resource for resource, _ in links]


def serve(
    name: str,
    policies: Sequence[Policy],
    description: str,
    types: Mapping[str, Collection[str]],
) -> None:
    """Serve the pack to the engine as `PolicyPack` does: print the port, then block until SIGINT."""
    servicer = SharedViewAnalyzer(name, list(policies), EnforcementLevel.MANDATORY, description, types)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
    analyzer_pb2_grpc.add_AnalyzerServicer_to_server(servicer, server)
    port = server.add_insecure_port(address="127.0.0.1:0")
    server.start()
    sys.stdout.buffer.write(f"{port}\n".encode())
    sys.stdout.flush()
    try:
        while True:
            time.sleep(24 * 60 * 60)
    except KeyboardInterrupt:
        server.stop(0)
