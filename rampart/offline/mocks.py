"""Realistic mock outputs, so downstream wiring (names, ids, ARNs, endpoints) is exercised.

Everything is derived from a hash of the resource's type and name: the same program
gives the same plan, byte for byte, every time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
PLACEHOLDER_SECRET = "rampart-offline-placeholder"  # nosec B105 # noqa: S105 - a marker, never a credential


def digest(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


# Physical-id prefixes AWS uses, so ids in the plan look like the real thing.
EC2_ID_PREFIXES = {
    "vpc": "vpc",
    "subnet": "subnet",
    "securitygroup": "sg",
    "defaultsecuritygroup": "sg",
    "routetable": "rtb",
    "internetgateway": "igw",
    "natgateway": "nat",
    "eip": "eipalloc",
    "vpcendpoint": "vpce",
    "flowlog": "fl",
    "launchtemplate": "lt",
}
# ARN resource part per type, where it is not "<kind>/<id>".
GLOBAL_SERVICES = {"iam", "cloudfront", "route53"}


class PlanMocks(Mocks):
    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        # Provider id -> its inputs: AWS default tags flow into every resource's tagsAll.
        self.providers: dict[str, dict[str, Any]] = {}
        self._strings: dict[str, str] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = self._new_resource(args)
        # The SDK's mock monitor keeps every resource's state for the whole run, and protobuf gives
        # each string in it its own object: keep one object per distinct string instead.
        return resource_id, _shared_strings(state, self._strings)

    def _new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        package = args.typ.split(":")[0]
        if args.typ.startswith("pulumi:providers:"):
            provider_id = digest(args.typ, args.name, length=32)
            self.providers[provider_id] = dict(args.inputs)
            return provider_id, dict(args.inputs)
        if package == "kubernetes":
            return self._kubernetes(args)
        if package == "aws":
            return self._aws(args)
        if package == "random":
            return self._random(args)
        if package == "tls":
            return self._tls(args)
        return f"{args.name}-{digest(args.typ, args.name)}", dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        function = args.token
        if function == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/rampart",
                "userId": "AIDAOFFLINE",
                "id": ACCOUNT_ID,
            }, []
        if function == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if function == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if function == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{zone}" for zone in "abc"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 4)], "id": self.region}, []
        return {}, []

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
        kind = args.typ.rsplit(":", 1)[1]
        name = state.get("name") or f"{args.name}-{digest(args.typ, args.name, length=7)}"
        prefix = EC2_ID_PREFIXES.get(kind.lower())
        resource_id = f"{prefix}-{digest(args.typ, args.name, length=17)}" if prefix else name
        region = "" if service in GLOBAL_SERVICES else self.region
        state.setdefault("name", name)
        state.setdefault("arn", f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{kind.lower()}/{resource_id}")
        state["id"] = resource_id
        default_tags = self._default_tags(args.provider)
        state["tagsAll"] = default_tags | dict(state.get("tags") or {})
        shaped = self._aws_shapes(args.typ, name, state)
        return resource_id, state | shaped

    def _default_tags(self, provider: str | None) -> dict[str, Any]:
        provider_id = (provider or "").rsplit("::", 1)[-1]
        default_tags = self.providers.get(provider_id, {}).get("defaultTags") or {}
        if isinstance(default_tags, str):  # providers receive nested config as JSON text
            default_tags = json.loads(default_tags)
        tags = default_tags.get("tags")
        return dict(tags) if isinstance(tags, dict) else {}

    def _aws_shapes(self, typ: str, name: str, state: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 - one return per type
        """Outputs specific to a type that downstream resources read."""
        region, account = self.region, ACCOUNT_ID
        if typ == "aws:iam/role:Role":
            return {
                "arn": f"arn:aws:iam::{account}:role/{name}",
                "uniqueId": f"AROA{digest(name, length=16)}",
            }
        if typ == "aws:iam/policy:Policy":
            return {"arn": f"arn:aws:iam::{account}:policy/{name}"}
        if typ == "aws:kms/key:Key":
            key_id = _uuid(typ, name)
            return {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{account}:key/{key_id}"}
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            return {"arn": f"arn:aws:logs:{region}:{account}:log-group:{name}"}
        if typ == "aws:sqs/queue:Queue":
            return {
                "arn": f"arn:aws:sqs:{region}:{account}:{name}",
                "url": f"https://sqs.{region}.amazonaws.com/{account}/{name}",
            }
        if typ == "aws:ec2/vpc:Vpc":
            return {
                "defaultSecurityGroupId": f"sg-{digest(name, 'default', length=17)}",
                "mainRouteTableId": f"rtb-{digest(name, 'main', length=17)}",
            }
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            # An NLB's DNS name and the canonical hosted zone of the region's NLBs (us-east-1's).
            suffix = f"elb.{region}.amazonaws.com"
            return {"dnsName": f"{name}-{digest(typ, name, length=16)}.{suffix}", "zoneId": "Z26RNL4JYFTOTI"}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1, "defaultVersion": 1}
        if typ == "aws:mq/broker:Broker":
            host = f"{state['id']}.mq.{region}.amazonaws.com"
            return {
                "instances": [
                    {
                        "consoleUrl": f"https://{host}",
                        "endpoints": [f"amqps://{host}:5671"],
                        "ipAddress": "10.0.1.5",
                    }
                ]
            }
        if typ in ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster"):
            identifier = state.get("identifier") or state.get("clusterIdentifier") or name
            host = f"{identifier}.c{digest(identifier, length=12)}.{region}.rds.amazonaws.com"
            resource_id = (
                f"{'cluster' if 'cluster' in typ else 'db'}-{digest(typ, identifier, length=26).upper()}"
            )
            port = state.get("port") or 5432
            if typ == "aws:rds/cluster:Cluster":
                return {"endpoint": host, "readerEndpoint": f"ro-{host}", "clusterResourceId": resource_id}
            return {"address": host, "endpoint": f"{host}:{port}", "port": port, "resourceId": resource_id}
        if typ == "aws:eks/cluster:Cluster":
            host = digest(name, length=32).upper()
            vpc_config = dict(state.get("vpcConfig") or {})
            vpc_config["clusterSecurityGroupId"] = f"sg-{digest(name, 'cluster', length=17)}"
            return {
                "arn": f"arn:aws:eks:{region}:{account}:cluster/{name}",
                "endpoint": f"https://{host}.gr7.{region}.eks.amazonaws.com",
                "certificateAuthority": {
                    "data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCm9mZmxpbmUKLS0tLS1FTkQ="
                },
                "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{host}"}]}],
                "vpcConfig": vpc_config,
                "status": "ACTIVE",
            }
        return {}

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

    def _tls(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """PEM-shaped stand-ins for pulumi-tls outputs (keys are secret outputs of the provider)."""
        state = dict(args.inputs)
        value = digest(args.typ, args.name, length=32)

        def pem(label: str) -> str:
            return f"-----BEGIN {label}-----\nOFFLINE{value}\n-----END {label}-----\n"

        if args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = PLACEHOLDER_SECRET
            state["publicKeyPem"] = pem("PUBLIC KEY")
        elif args.typ == "tls:index/certRequest:CertRequest":
            state["certRequestPem"] = pem("CERTIFICATE REQUEST")
        elif args.typ in (
            "tls:index/selfSignedCert:SelfSignedCert",
            "tls:index/locallySignedCert:LocallySignedCert",
        ):
            state["certPem"] = pem("CERTIFICATE")
        return value, state


def _shared_strings(value: Any, strings: dict[str, str]) -> Any:
    """``value`` with each string replaced by the first equal one seen (plain dicts and lists
    rebuilt; anything else, e.g. a resource reference or a str subclass, kept as it is)."""
    if type(value) is str:
        return strings.setdefault(value, value)
    if type(value) is dict:
        return {_shared_strings(key, strings): _shared_strings(item, strings) for key, item in value.items()}
    if type(value) is list:
        return [_shared_strings(item, strings) for item in value]
    return value


def _uuid(*parts: str) -> str:
    h = digest(*parts, length=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _cluster_ip(name: str) -> str:
    h = int(digest(name, length=4), 16)
    return f"10.96.{h >> 8}.{(h & 0xFF) or 1}"
