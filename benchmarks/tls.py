"""A self-signed certificate for the stub, made at run time, and a trust store holding it."""

from __future__ import annotations

import sys
from pathlib import Path

import certifi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests._certificates import self_signed_for_loopback


def make_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """Write ``cert.pem``, ``key.pem`` and ``trust.pem`` into ``folder``.

    ``trust.pem`` is the public CA bundle (certifi's) with the stub's certificate
    added: every client is pointed at it through ``SSL_CERT_FILE``, so loading a
    trust store costs what it costs against the real host, and the stub verifies.
    """
    cert_path, key_path = self_signed_for_loopback(folder)
    trust_path = folder / "trust.pem"
    trust_path.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + cert_path.read_bytes())
    return cert_path, key_path, trust_path
