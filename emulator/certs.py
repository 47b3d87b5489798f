"""A private CA and a server certificate, made once and reused, so clients can trust the emulator.

The SDK turns every `base_url` into `wss://`, so the emulator must speak TLS. A fresh CA per start
would force every client to re-trust it; keeping both in `--cert-dir` lets a developer trust the CA
once (or point `SSL_CERT_FILE` / `NODE_EXTRA_CA_CERTS` at it) and restart the emulator freely.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")
_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class CertPaths:
    """Where the PEM files live: clients trust `ca`, the server loads `cert` and `key`."""

    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gemini-live-agent emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alt_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _covers(cert_path: Path, ca_path: Path, hosts: tuple[str, ...]) -> bool:
    """Whether an existing certificate is still valid and names every host asked for."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        x509.load_pem_x509_certificate(ca_path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(name in san for name in _alt_names(hosts))


def ensure_certs(cert_dir: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> CertPaths:
    """Return the CA and server certificate in `cert_dir`, creating them only when missing or stale.

    Args:
        cert_dir: Folder for `ca.pem`, `server.pem` and `server-key.pem` (created 0700).
        hosts: Names and addresses the server certificate must be valid for.
    """
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = CertPaths(cert_dir / "ca.pem", cert_dir / "server.pem", cert_dir / "server-key.pem")
    if paths.key.exists() and _covers(paths.cert, paths.ca, hosts):
        return paths

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("gemini-live-agent emulator CA"))
        .issuer_name(_name("gemini-live-agent emulator CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        paths.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return paths


def server_ssl_context(paths: CertPaths) -> ssl.SSLContext:
    """Return the TLS context the emulator serves with."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(paths.cert, paths.key)
    return ctx
