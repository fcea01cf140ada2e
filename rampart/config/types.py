"""Constrained value types shared by the config models.

Each type rejects bad input with a message that reads well after a key path,
e.g. ``services[0].image: 'nginx:latest' is not pinned ...``.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StrictStr, WithJsonSchema

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$")
_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
# Docker reference grammar, simplified: [registry[:port]/]repo[/repo...][:tag][@sha256:digest]
_REPOSITORY = r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
_IMAGE = re.compile(rf"^(?P<repo>{_REPOSITORY})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
# What editors can check of a pinned image: a tag, a digest or both ('latest' is excluded separately).
_PINNED = rf"^{_REPOSITORY}(?::{_TAG}(?:@{_DIGEST})?|@{_DIGEST})$"
_CPU = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]+)?)(?P<unit>m?)$")
_MEMORY = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|K|M|G|T)?$")
_MEMORY_FACTORS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def is_dns_label(value: str) -> bool:
    # fullmatch: `$` alone would let a trailing newline through.
    return len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


def _dns_label(value: str) -> str:
    if not is_dns_label(value):
        raise ValueError(
            f"{value!r} is not a DNS label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _hostname(value: str) -> str:
    if len(value) > 253 or not _HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a fully qualified host name")
    return value


def _http_path(value: str) -> str:
    if not _HTTP_PATH.match(value):
        raise ValueError(f"{value!r} is not an absolute HTTP path (it must start with '/')")
    return value


def _pinned_image(value: str) -> str:
    match = _IMAGE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a valid image reference")
    tag, digest = match.group("tag"), match.group("digest")
    if digest is None and tag is None:
        raise ValueError(f"{value!r} is not pinned: give a tag (not 'latest') or an @sha256 digest")
    if digest is None and tag == "latest":
        raise ValueError(f"{value!r} is not pinned: 'latest' moves; give a version tag or an @sha256 digest")
    return value


def cpu_millicores(value: str) -> int:
    """'250m' -> 250, '1.5' -> 1500."""
    match = _CPU.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a CPU quantity (e.g. '250m' or '1')")
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{value!r} is not a CPU quantity") from exc
    millicores = number if match.group("unit") == "m" else number * 1000
    if millicores <= 0 or millicores != millicores.to_integral_value():
        raise ValueError(f"{value!r} must be a positive whole number of millicores")
    return int(millicores)


def memory_bytes(value: str) -> int:
    """'256Mi' -> 268435456."""
    match = _MEMORY.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a memory quantity (e.g. '256Mi' or '1Gi')")
    amount = Decimal(match.group("num")) * _MEMORY_FACTORS[match.group("unit") or ""]
    if amount <= 0 or amount != amount.to_integral_value():
        raise ValueError(f"{value!r} must be a positive whole number of bytes")
    return int(amount)


def _cpu(value: str) -> str:
    cpu_millicores(value)
    return value


def _memory(value: str) -> str:
    memory_bytes(value)
    return value


def _schema(title: str, pattern: str, **extra: object) -> WithJsonSchema:
    """What editors check of a value the validators above check fully (JSON Schema, for the reference).
    Named groups are Python's syntax, not ECMA 262's (JSON Schema's regex dialect): they are dropped."""
    return WithJsonSchema(
        {"type": "string", "title": title, "pattern": re.sub(r"\?P<\w+>", "", pattern), **extra}
    )


DnsLabel = Annotated[
    StrictStr, AfterValidator(_dns_label), _schema("DNS label", _DNS_LABEL.pattern, maxLength=63)
]
Hostname = Annotated[
    StrictStr, AfterValidator(_hostname), _schema("host name", _HOSTNAME.pattern, maxLength=253)
]
HttpPath = Annotated[StrictStr, AfterValidator(_http_path), _schema("HTTP path", _HTTP_PATH.pattern)]
PinnedImage = Annotated[
    StrictStr,
    AfterValidator(_pinned_image),
    _schema("pinned image", _PINNED, **{"not": {"pattern": "^[^@]*:latest$"}}),
]
CpuQuantity = Annotated[StrictStr, AfterValidator(_cpu), _schema("CPU quantity", _CPU.pattern)]
MemoryQuantity = Annotated[StrictStr, AfterValidator(_memory), _schema("memory quantity", _MEMORY.pattern)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
# An AWS tag value ("letters, numbers, spaces ... and _ . : / = + - @", at most 256 characters, AWS Tagging
# Best Practices, "Tag naming limits and requirements"); also what the EBS CSI driver can take as a
# tagSpecification without misreading it (components/targets/aws/ownership.py).
_TAG_VALUE = re.compile(r"^[\w .:/=+@-]{1,256}$")


def _tag_value(value: str) -> str:
    if _TAG_VALUE.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not an AWS tag value (1 to 256 letters, digits, spaces and _ . : / = + - @)"
        )
    return value


TagValue = Annotated[StrictStr, AfterValidator(_tag_value), _schema("AWS tag value", _TAG_VALUE.pattern)]


def image_tag(image: str) -> str:
    """The version label of an image: its tag, else the first 12 hex of its digest."""
    match = _IMAGE.match(image)
    if match is None:  # pragma: no cover - images are validated on load
        raise ValueError(image)
    if match.group("tag"):
        return str(match.group("tag"))
    return str(match.group("digest"))[len("sha256:") :][:12]


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block ({exc})") from None
    if "/" not in value:
        raise ValueError(f"{value!r} is not a CIDR block (add the prefix length, e.g. /32)")
    return value


Cidr = Annotated[StrictStr, AfterValidator(_cidr), _schema("CIDR block", r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$")]
