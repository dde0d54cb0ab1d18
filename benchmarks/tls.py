"""A self-signed certificate for the stub, made at run time, and a trust store holding it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """Write ``cert.pem``, ``key.pem`` and ``trust.pem`` into ``folder``.

    ``trust.pem`` is the public CA bundle (certifi's) with the stub's certificate
    added: every client is pointed at it through ``SSL_CERT_FILE``, so loading a
    trust store costs what it costs against the real host, and the stub verifies.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path, trust_path = folder / "cert.pem", folder / "key.pem", folder / "trust.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    trust_path.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + cert_pem)
    return cert_path, key_path, trust_path
