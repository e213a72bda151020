"""A throwaway certificate authority for the TLS tests, made with `cryptography` in the test's temp dir.

`make_tls(directory, hosts)` writes a CA, another CA that signed nothing here (the "wrong CA"), and a
server certificate and key for `hosts`, and returns their paths with the redis-server arguments that
serve TLS with them (`--tls-auth-clients no`: the demo presents no client certificate).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one throwaway CA and a server certificate it signed."""

    ca_file: str
    wrong_ca_file: str
    certificate_file: str
    key_file: str

    def server_arguments(self) -> tuple[str, ...]:
        """redis-server's arguments to serve TLS with this certificate (clients need no certificate)."""
        return (
            "--tls-cert-file",
            self.certificate_file,
            "--tls-key-file",
            self.key_file,
            "--tls-ca-cert-file",
            self.ca_file,
            "--tls-auth-clients",
            "no",
        )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, pem: bytes) -> str:
    path.write_bytes(pem)
    return str(path)


def _certificate(
    subject: str,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    ca: bool,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if hosts:
        names = [
            x509.IPAddress(ipaddress.ip_address(host)) if host[0].isdigit() else x509.DNSName(host) for host in hosts
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_tls(directory: Path, hosts: tuple[str, ...]) -> TlsFiles:
    """A CA, a wrong CA, and a server certificate for `hosts` (names or IP addresses), written to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_key, server_key = _key(), _key(), _key()
    ca = _certificate("test CA", None, ca_key, ca_key, ca=True)
    other_ca = _certificate("another CA", None, other_key, other_key, ca=True)
    certificate = _certificate(hosts[0], ca.subject, ca_key, server_key, ca=False, hosts=hosts)
    pem = serialization.Encoding.PEM
    return TlsFiles(
        ca_file=_write(directory / "ca.pem", ca.public_bytes(pem)),
        wrong_ca_file=_write(directory / "other-ca.pem", other_ca.public_bytes(pem)),
        certificate_file=_write(directory / "server.pem", certificate.public_bytes(pem)),
        key_file=_write(
            directory / "server.key",
            server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ),
    )
