"""The drills CA: a small certificate authority in the state directory that signs the drill server's TLS
certificate (``drill serve --tls-drills-ca``), so a team can serve beyond loopback without buying a
certificate. Clients trust it with ``DRILLS_SERVER_CA=<state>/server/tls/ca.crt`` (the remote CLI reads it).

Keys are ECDSA P-256, written mode 0600; the CA lives ten years, a server certificate 90 days and is made
again when it is close to expiring or does not name the listen address.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drills.adapters.store import paths
from drills.errors import EnvironmentProblem
from drills.timing import SYSTEM_CLOCK, Clock

CA_DAYS = 3650
SERVER_DAYS = 90


def tls_dir() -> Path:
    return paths.state_dir() / "server" / "tls"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_ca(directory: Path | None = None, clock: Clock = SYSTEM_CLOCK) -> tuple[Path, Path]:
    """The drills CA's certificate and key (made on first use)."""
    d = directory or tls_dir()
    cert_path, key_path = d / "ca.crt", d / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    now = clock.now()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "drills CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    try:
        _write(key_path, _key_pem(key))
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    except OSError as e:
        raise EnvironmentProblem(f"cannot write the drills CA in {d}: {e.strerror}") from e
    return cert_path, key_path


def _san(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
    except ValueError:
        names.append(x509.DNSName(host))
    return names


def server_certificate(
    host: str, directory: Path | None = None, clock: Clock = SYSTEM_CLOCK
) -> tuple[Path, Path]:
    """A server certificate for ``host`` signed by the drills CA: (cert, key) paths."""
    d = directory or tls_dir()
    ca_cert_path, ca_key_path = ensure_ca(d, clock)
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        raise EnvironmentProblem(
            f"cannot read the drills CA in {d}: {e}",
            hint=f"remove {d} to make a new CA (clients must trust it)",
        ) from e
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise EnvironmentProblem(f"the drills CA key {ca_key_path} is not an EC key", hint=f"remove {d}")
    now = clock.now()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_san(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in host)
    cert_path, key_path = d / f"server-{safe}.crt", d / f"server-{safe}.key"
    try:
        _write(key_path, _key_pem(key))
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    except OSError as e:
        raise EnvironmentProblem(f"cannot write the server certificate in {d}: {e.strerror}") from e
    return cert_path, key_path


__all__ = ["ensure_ca", "server_certificate", "tls_dir"]
