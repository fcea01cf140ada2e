"""TLS material for tests: a public CA certificate (its key was never kept) and throwaway CAs and server
certificates made with the openssl binary at test time (nothing private is committed)."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 - the openssl binary, with fixed arguments
from dataclasses import dataclass
from pathlib import Path

# A self-signed CA certificate (CN rampart-offline-test-ca, valid for a century); its private key was
# discarded when it was made, so it signs nothing: it only has to parse as a certificate.
TEST_CA_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBqzCCAVGgAwIBAgIUJBLt21rtwfOd+ne45Ya5PNqGZlswCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXcmFtcGFydC1vZmZsaW5lLXRlc3QtY2EwIBcNMjYxMjA2MjMx
MDAyWhgPMjEyNjExMTIyMzEwMDJaMCIxIDAeBgNVBAMMF3JhbXBhcnQtb2ZmbGlu
ZS10ZXN0LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIx53sF0fPdCl+q9/
A8e2+zM+gAeB8aLotcFcTZKw1Ljan31bkXK5nlic6e/sFWHx6gPB9qqJj0faekcB
/ee1gKNjMGEwHQYDVR0OBBYEFJPMHQxgqU//6HmSHfcINuwQlA3uMB8GA1UdIwQY
MBaAFJPMHQxgqU//6HmSHfcINuwQlA3uMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0P
AQH/BAQDAgEGMAoGCCqGSM49BAMCA0gAMEUCICr5Y+zrpIFMl6aLbQ70+qmzRqWE
KOP0O4G+mOKVMWXRAiEA/H+czvHnl62UICxJkZTrsF18hC9R9SXBQtV0zpP7g6U=
-----END CERTIFICATE-----
"""


@dataclass(frozen=True)
class ServerTls:
    ca_file: Path
    cert_file: Path
    key_file: Path


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)  # nosec B603 B607


def make_server_tls(directory: Path, dns_names: list[str], ca_name: str = "test-ca") -> ServerTls:
    """A fresh CA and a server certificate it signed for ``dns_names`` (P-256, one day)."""
    ca_key, ca_cert = directory / f"{ca_name}.key", directory / f"{ca_name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(ca_key), "-out", str(ca_cert), "-subj", f"/CN={ca_name}", "-days", "1",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    key, request, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={dns_names[0]}",
    )  # fmt: skip
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(f'DNS:{name}' for name in dns_names)}\n"
    )
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(extensions),
    )  # fmt: skip
    return ServerTls(ca_cert, cert, key)
