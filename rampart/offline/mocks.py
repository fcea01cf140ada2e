"""Realistic mock outputs, so downstream wiring (names, ids, ARNs, endpoints) is exercised.

Everything is derived from a hash of the resource's type and name: the same program
gives the same plan, byte for byte, every time.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
PLACEHOLDER_SECRET = "rampart-offline-placeholder"  # nosec B105 # noqa: S105 - a marker, never a credential


def digest(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


class PlanMocks(Mocks):
    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        package = args.typ.split(":")[0]
        if args.typ.startswith("pulumi:providers:"):
            return digest(args.typ, args.name, length=32), dict(args.inputs)
        if package == "kubernetes":
            return self._kubernetes(args)
        if package == "aws":
            return self._aws(args)
        if package == "random":
            return self._random(args)
        return f"{args.name}-{digest(args.typ, args.name)}", dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        function = args.token
        if function == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/rampart",
                "userId": "AIDAOFFLINE",
                "id": ACCOUNT_ID,
            }, None
        if function == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, None
        if function == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, None
        if function == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{zone}" for zone in "abc"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 4)], "id": self.region}, None
        return {}, None

    def _kubernetes(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "kubernetes:helm.sh/v3:Release":
            name = state.get("name") or f"{args.name}-{digest(args.typ, args.name)}"
            namespace = state.get("namespace") or "default"
            state["status"] = {
                "name": name,
                "namespace": namespace,
                "chart": state.get("chart"),
                "version": state.get("version"),
                "status": "deployed",
                "revision": 1,
            }
            return f"{namespace}/{name}", state
        metadata = dict(state.get("metadata") or {})
        # The Kubernetes provider auto-names objects without an explicit name.
        metadata.setdefault("name", f"{args.name}-{digest(args.typ, args.name)}")
        metadata["uid"] = _uuid(args.typ, args.name)
        state["metadata"] = metadata
        if args.typ == "kubernetes:core/v1:Service":
            spec = dict(state.get("spec") or {})
            spec.setdefault("clusterIP", _cluster_ip(args.name))
            state["spec"] = spec
            if spec.get("type") == "LoadBalancer":
                host = f"{metadata['name']}-{digest(args.name, length=16)}.elb.{self.region}.amazonaws.com"
                state["status"] = {"loadBalancer": {"ingress": [{"hostname": host}]}}
        namespace = metadata.get("namespace")
        return (f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])), state

    def _aws(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        service = args.typ.split(":")[1].split("/")[0]
        kind = args.typ.rsplit(":", 1)[1].lower()
        resource_id = f"{kind}-{digest(args.typ, args.name, length=17)}"
        state.setdefault("arn", f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{kind}/{resource_id}")
        state.setdefault("id", resource_id)
        state.setdefault("tagsAll", state.get("tags") or {})
        return resource_id, state

    def _random(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ in (
            "random:index/randomPassword:RandomPassword",
            "random:index/randomString:RandomString",
        ):
            # Providers mark `result` secret (additionalSecretOutputs); the export redacts it.
            state["result"] = PLACEHOLDER_SECRET
            return "none", state
        value = digest(args.typ, args.name, length=16)
        state.update(
            {"hex": value, "b64Std": value, "b64Url": value, "dec": str(int(value, 16)), "result": value}
        )
        return value, state


def _uuid(*parts: str) -> str:
    h = digest(*parts, length=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _cluster_ip(name: str) -> str:
    h = int(digest(name, length=4), 16)
    return f"10.96.{h >> 8}.{(h & 0xFF) or 1}"
