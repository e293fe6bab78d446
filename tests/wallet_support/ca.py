"""A throw-away PKI shaped like Apple's, for tests.

``make_test_pki`` creates, with ``cryptography``:

* a self-signed test root CA (stands in for "Apple Root CA");
* a "WWDR" intermediate CA signed by the root (stands in for Apple's
  Worldwide Developer Relations G4 intermediate);
* a Pass Type ID certificate signed by the WWDR, with the subject Apple uses:
  ``UID=<pass type id>, CN=Pass Type ID: <pass type id>, OU=<team id>, O=..., C=...``
  and its RSA-2048 private key (optionally password protected);
* a TLS server certificate for ``127.0.0.1`` / ``::1`` / ``localhost`` signed by
  the root, used by the loopback stand-ins.

All are written as PEM files in the given directory.  Root, WWDR and server
keys are P-256 (fast to generate); the pass key is RSA-2048 like Apple's.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestPki", "make_test_pki", "write_private_key", "APPLE_PASS_EKU_OID"]

#: Extended key usage Apple puts on Pass Type ID certificates.
APPLE_PASS_EKU_OID = x509.ObjectIdentifier("1.2.840.113635.100.4.14")

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class TestPki:
    """Paths (as ``str``) of the PEM files written by :func:`make_test_pki`."""

    __test__ = False  # not a pytest test class, despite the name

    directory: str
    root_ca: str
    wwdr_cert: str
    pass_cert: str
    pass_key: str
    key_password: str | None
    server_cert: str
    server_key: str
    pass_type_id: str
    team_id: str


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption
    if password:
        encryption = serialization.BestAvailableEncryption(password.encode("utf-8"))
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private_key(
    path: str | Path, *, password: str | None = None, kind: str = "rsa"
) -> str:
    """Write a fresh private key (``kind`` "rsa" or "ec") as PEM; return the path."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    return _write(Path(path), _key_pem(key, password))


def _ski(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _aki(issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def make_test_pki(
    tmpdir: str | Path,
    pass_type_id: str = "pass.lu.example.loyalty",
    team_id: str = "TEAM123456",
    *,
    key_password: str | None = None,
    pass_not_before: dt.datetime | None = None,
    pass_not_after: dt.datetime | None = None,
    wwdr_not_after: dt.datetime | None = None,
) -> TestPki:
    """Create the test PKI in ``tmpdir`` and return the file paths.

    ``pass_not_after`` / ``wwdr_not_after`` let a test make an expired or
    soon-expiring certificate; ``key_password`` encrypts the pass key.
    """
    directory = Path(tmpdir)
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    year = dt.timedelta(days=365)

    # --- root ---------------------------------------------------------------
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Apple Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Test Apple Certification Authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Test Apple Root CA"),
        ]
    )
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + 10 * year)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(root_key), critical=False)
        .add_extension(_aki(root_key), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    # --- WWDR intermediate ----------------------------------------------------
    wwdr_key = ec.generate_private_key(ec.SECP256R1())
    wwdr_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test Apple Worldwide Developer Relations Certification Authority"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Apple Inc."),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    wwdr_cert = (
        x509.CertificateBuilder()
        .subject_name(wwdr_name)
        .issuer_name(root_name)
        .public_key(wwdr_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 2 * _ONE_DAY)
        .not_valid_after(wwdr_not_after or now + 5 * year)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(_ski(wwdr_key), critical=False)
        .add_extension(_aki(root_key), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    # --- Pass Type ID certificate ----------------------------------------------
    pass_key = rsa.generate_private_key(65537, 2048)
    pass_name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, pass_type_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Shop S.a r.l."),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "LU"),
        ]
    )
    pass_cert = (
        x509.CertificateBuilder()
        .subject_name(pass_name)
        .issuer_name(wwdr_name)
        .public_key(pass_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pass_not_before or now - _ONE_DAY)
        .not_valid_after(pass_not_after or now + year)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, APPLE_PASS_EKU_OID]),
            critical=False,
        )
        .add_extension(_ski(pass_key), critical=False)
        .add_extension(_aki(wwdr_key), critical=False)
        .sign(wwdr_key, hashes.SHA256())
    )

    # --- TLS server certificate for the loopback stand-ins ---------------------
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(server_name)
        .issuer_name(root_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + year)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_ski(server_key), critical=False)
        .add_extension(_aki(root_key), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    return TestPki(
        directory=str(directory),
        root_ca=_write(directory / "root.pem", _cert_pem(root_cert)),
        wwdr_cert=_write(directory / "wwdr.pem", _cert_pem(wwdr_cert)),
        pass_cert=_write(directory / "pass_cert.pem", _cert_pem(pass_cert)),
        pass_key=_write(directory / "pass_key.pem", _key_pem(pass_key, key_password)),
        key_password=key_password,
        server_cert=_write(directory / "server_cert.pem", _cert_pem(server_cert)),
        server_key=_write(directory / "server_key.pem", _key_pem(server_key, None)),
        pass_type_id=pass_type_id,
        team_id=team_id,
    )
