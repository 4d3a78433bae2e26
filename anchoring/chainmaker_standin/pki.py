"""A throwaway CA and the certificates the ChainMaker SDK and the stand-in node need (tests)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ORG_ID = "wx-org1.chainmaker.org"
TLS_HOST_NAME = "chainmaker.org"


@dataclass(frozen=True)
class TestPki:
    __test__ = False  # a data holder, not a pytest test class

    ca_dir: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_tls_cert: Path
    client_tls_key: Path
    client_sign_cert: Path
    client_sign_key: Path


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG_ID),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
           issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool,
           sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_test_pki(directory: Path) -> TestPki:
    """Write a CA, a node TLS cert and a client's TLS and signing certs (all ECDSA P-256)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_dir = directory / "ca"
    ca_dir.mkdir(exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"ca.{ORG_ID}", "root-cert")
    ca_cert = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    paths: dict[str, Path] = {}
    for label, unit, sans in (
        ("server", "consensus", [x509.DNSName(TLS_HOST_NAME), x509.DNSName("localhost"),
                                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        ("client_tls", "client", None),
        ("client_sign", "client", None),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(_name(f"{label}.{ORG_ID}", unit), key, ca_name, ca_key, ca=False,
                      sans=sans)
        paths[f"{label}_cert"] = directory / f"{label}.crt"
        paths[f"{label}_key"] = directory / f"{label}.key"
        paths[f"{label}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(paths[f"{label}_key"], key)
    (ca_dir / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return TestPki(ca_dir=ca_dir, ca_cert=ca_dir / "ca.crt", **paths)


def sdk_config(pki: TestPki, node_addr: str, chain_id: str) -> dict[str, object]:
    """The SDK's ``chain_client`` config (same keys as its sdk_config.yml) for this PKI."""
    return {"chain_client": {
        "chain_id": chain_id,
        "org_id": ORG_ID,
        "user_key_file_path": str(pki.client_tls_key),
        "user_crt_file_path": str(pki.client_tls_cert),
        "user_sign_key_file_path": str(pki.client_sign_key),
        "user_sign_crt_file_path": str(pki.client_sign_cert),
        "crypto": {"hash": "SHA256"},
        "auth_type": "permissionedwithcert",
        "retry_limit": 5,
        "retry_interval": 100,
        "nodes": [{"node_addr": node_addr, "conn_cnt": 1, "enable_tls": True,
                   "trust_root_paths": [str(pki.ca_dir)], "tls_host_name": TLS_HOST_NAME}],
    }}
