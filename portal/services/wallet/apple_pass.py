"""Apple Wallet pass packages (.pkpass): signing, packaging and configuration checks.

A ``.pkpass`` is a zip archive holding:

* ``pass.json`` -- the pass description;
* any number of resource files (``icon.png``, ``icon@2x.png``, ``logo.png``,
  ``strip.png``, ``en.lproj/pass.strings``, ...);
* ``manifest.json`` -- a JSON object mapping *every* other file name in the
  archive (including ``pass.json``, excluding ``manifest.json`` and
  ``signature``) to the lowercase hex SHA-1 digest of its bytes;
* ``signature`` -- a detached PKCS #7 (CMS) signature, DER encoded, over the
  exact bytes of ``manifest.json``.  It is made with the *Pass Type ID*
  certificate Apple issued to the developer and must also carry Apple's
  WWDR intermediate certificate so the device can build the chain to Apple's
  root.  Wallet also wants the signing-time signed attribute, which
  ``cryptography``'s PKCS #7 builder includes by default.

Performance notes: the private key and certificates are parsed once per
:class:`PassSigner`; SHA-1 digests of resource files are cached by content
(see :class:`StaticFiles` and the module-level digest memo), so per pass the
work is: serialise ``pass.json``, hash it, one RSA/ECDSA signature and writing
an in-memory zip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "PassConfigurationError",
    "PassSigner",
    "StaticFiles",
    "build_pkpass",
    "check_configuration",
    "encode_pass_strings",
]

#: ``check_configuration`` warns when a certificate expires within this many days.
EXPIRY_WARNING_DAYS = 30

# Names the builder writes itself; callers may not supply them as resources.
_RESERVED_NAMES = frozenset({"pass.json", "manifest.json", "signature"})

# Resource types that are already compressed: deflating them again costs CPU
# for (almost) no size gain, so with ``compress=True`` they are stored as-is.
_PRECOMPRESSED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".heic")

_SIGN_OPTIONS = (pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary)


class PassConfigurationError(ValueError):
    """The pass certificate, key or WWDR certificate cannot be used."""


# --------------------------------------------------------------------------- #
# Loading certificates and keys
# --------------------------------------------------------------------------- #
def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN" in data


def _load_certificate(data: bytes, what: str) -> x509.Certificate:
    """Load a certificate in PEM (first block of a bundle) or DER form.

    Apple hands out ``.cer`` files in DER (e.g. ``AppleWWDRCAG4.cer``), while
    most guides convert them to PEM; both are accepted.
    """
    try:
        if _is_pem(data):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise PassConfigurationError(f"{what} is not a PEM or DER X.509 certificate") from exc


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _load_private_key(data: bytes, password: str | None, what: str) -> PrivateKey:
    """Load a PEM or DER (PKCS #8 / traditional) private key.

    A password given for an unencrypted key is ignored rather than treated as
    an error: operators often leave a stale password in the configuration.
    """
    pem = _is_pem(data)
    pw = password.encode("utf-8") if password else None

    def load(secret: bytes | None) -> Any:
        if pem:
            return serialization.load_pem_private_key(data, password=secret)
        return serialization.load_der_private_key(data, password=secret)

    try:
        key = load(pw)
    except TypeError as exc:
        if pw is None:
            raise PassConfigurationError(
                f"{what} is encrypted: a key password is required"
            ) from exc
        # "Password was given but private key is not encrypted."
        try:
            key = load(None)
        except (TypeError, ValueError) as exc2:  # pragma: no cover - defensive
            raise PassConfigurationError(f"{what} is not a usable private key") from exc2
    except ValueError as exc:
        if pw is not None and pem and b"ENCRYPTED" in data:
            raise PassConfigurationError(
                f"{what} could not be decrypted: the key password is wrong"
            ) from exc
        raise PassConfigurationError(
            f"{what} is not a PEM or DER private key (or the password is wrong)"
        ) from exc
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise PassConfigurationError(f"{what} must be an RSA or EC key, not {type(key).__name__}")
    return key


def _public_der(key_or_cert: Any) -> bytes:
    public = key_or_cert.public_key()
    der: bytes = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _read_file(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise PassConfigurationError(f"{what} file not found: {path}") from exc
    except OSError as exc:
        raise PassConfigurationError(f"{what} file cannot be read: {path} ({exc.strerror})") from exc


# --------------------------------------------------------------------------- #
# Signer
# --------------------------------------------------------------------------- #
class PassSigner:
    """Signs pass manifests with a Pass Type ID certificate.

    Build it once (at app start or on first use) and reuse it: the
    certificates and the private key are parsed here, not per pass.
    Instances are immutable and safe to share between threads.
    """

    def __init__(
        self,
        cert_path: str | os.PathLike[str],
        key_path: str | os.PathLike[str],
        key_password: str | None,
        wwdr_path: str | os.PathLike[str],
    ) -> None:
        self._init_from_bytes(
            _read_file(cert_path, "Pass certificate"),
            _read_file(key_path, "Pass private key"),
            key_password,
            _read_file(wwdr_path, "WWDR certificate"),
        )

    @classmethod
    def from_bytes(
        cls, cert: bytes, key: bytes, key_password: str | None, wwdr: bytes
    ) -> PassSigner:
        """Build a signer from in-memory PEM/DER data (e.g. uploaded by an admin)."""
        self = cls.__new__(cls)
        self._init_from_bytes(cert, key, key_password, wwdr)
        return self

    def _init_from_bytes(
        self, cert: bytes, key: bytes, key_password: str | None, wwdr: bytes
    ) -> None:
        self._cert = _load_certificate(cert, "Pass certificate")
        self._key = _load_private_key(key, key_password, "Pass private key")
        self._wwdr = _load_certificate(wwdr, "WWDR certificate")
        if _public_der(self._cert) != _public_der(self._key):
            raise PassConfigurationError("The private key does not match the pass certificate")
        self._pass_type_id = _name_attr(self._cert.subject, NameOID.USER_ID)
        self._team_id = _name_attr(self._cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)

    @property
    def pass_type_id(self) -> str | None:
        """The pass type identifier (certificate subject UID), e.g. ``pass.com.example.loyalty``."""
        return self._pass_type_id

    @property
    def team_id(self) -> str | None:
        """The Apple team identifier (certificate subject OU)."""
        return self._team_id

    @property
    def not_valid_after(self) -> dt.datetime:
        """Expiry of the pass certificate (timezone-aware UTC)."""
        return self._cert.not_valid_after_utc

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    @property
    def wwdr_certificate(self) -> x509.Certificate:
        return self._wwdr

    def sign(self, manifest: bytes) -> bytes:
        """Return a detached PKCS #7 signature (DER) over ``manifest``.

        SHA-256 digest, signed attributes (content type, signing time, message
        digest) included, signer certificate and WWDR certificate embedded.
        ``Binary`` stops any MIME canonicalisation of the JSON bytes.
        """
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest)
            .add_signer(self._cert, self._key, hashes.SHA256())
            .add_certificate(self._wwdr)
            .sign(serialization.Encoding.DER, _SIGN_OPTIONS)
        )


# --------------------------------------------------------------------------- #
# Resource files and their digests
# --------------------------------------------------------------------------- #
def _check_name(name: str) -> None:
    """Reject names that are reserved or would escape the bundle directory."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid pass file name: {name!r}")
    if name in _RESERVED_NAMES:
        raise ValueError(f"{name!r} is generated by build_pkpass and cannot be supplied")
    if name.startswith("/") or "\\" in name or "\x00" in name:
        raise ValueError(f"invalid pass file name: {name!r}")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"invalid pass file name: {name!r}")


def _sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


class _DigestMemo:
    """Content-keyed cache of SHA-1 digests for resource files.

    Keys are the ``bytes`` objects themselves: CPython caches a bytes object's
    hash, so looking up the *same* object again (the usual case: images loaded
    once at start-up) costs O(1), and an equal copy costs one cheap siphash
    plus a memcmp -- both much cheaper than SHA-1.  Bounded by total size; on
    overflow it simply starts over.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._digests: dict[bytes, str] = {}
        self._size = 0
        self._lock = threading.Lock()

    def digest(self, data: bytes) -> str:
        found = self._digests.get(data)
        if found is not None:
            return found
        digest = _sha1_hex(data)
        if len(data) <= self._max_bytes:
            with self._lock:
                if self._size + len(data) > self._max_bytes:
                    self._digests.clear()
                    self._size = 0
                if data not in self._digests:
                    self._digests[data] = digest
                    self._size += len(data)
        return digest

    def clear(self) -> None:
        with self._lock:
            self._digests.clear()
            self._size = 0


_digest_memo = _DigestMemo()


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"pass file contents must be bytes, not {type(data).__name__}")


class StaticFiles(Mapping[str, bytes]):
    """An immutable set of pass resource files with precomputed SHA-1 digests.

    Build one per pass design (icons, logo, strip image, localisations) and
    pass it to :func:`build_pkpass` for every pass of that design.
    """

    __slots__ = ("_files", "_digests")

    def __init__(self, files: Mapping[str, bytes | bytearray | memoryview]) -> None:
        self._files: dict[str, bytes] = {}
        self._digests: dict[str, str] = {}
        for name, data in files.items():
            _check_name(name)
            blob = _as_bytes(data)
            self._files[name] = blob
            self._digests[name] = _sha1_hex(blob)

    def __getitem__(self, name: str) -> bytes:
        return self._files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"StaticFiles({sorted(self._files)!r})"

    def digest(self, name: str) -> str:
        """Lowercase hex SHA-1 of the named file."""
        return self._digests[name]

    def with_files(self, extra: Mapping[str, bytes | bytearray | memoryview]) -> StaticFiles:
        """A new set with ``extra`` added (or replacing same-named files)."""
        new = StaticFiles.__new__(StaticFiles)
        new._files = dict(self._files)
        new._digests = dict(self._digests)
        for name, data in extra.items():
            _check_name(name)
            blob = _as_bytes(data)
            new._files[name] = blob
            new._digests[name] = _sha1_hex(blob)
        return new


def _entries_with_digests(
    files: Mapping[str, bytes | bytearray | memoryview] | None,
) -> Iterator[tuple[str, bytes, str]]:
    if not files:
        return
    if isinstance(files, StaticFiles):
        for name in files:
            yield name, files[name], files.digest(name)
        return
    for name, data in files.items():
        _check_name(name)
        blob = _as_bytes(data)
        yield name, blob, _digest_memo.digest(blob)


# --------------------------------------------------------------------------- #
# Building the package
# --------------------------------------------------------------------------- #
def _json_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys
    ).encode("utf-8")


def build_pkpass(
    pass_json: Mapping[str, Any],
    files: Mapping[str, bytes | bytearray | memoryview] | StaticFiles,
    signer: PassSigner,
    *,
    compress: bool = True,
    extra_files: Mapping[str, bytes | bytearray | memoryview] | None = None,
) -> bytes:
    """Build a signed ``.pkpass`` archive and return its bytes.

    ``files`` maps archive names (``icon.png``, ``en.lproj/pass.strings``, ...)
    to contents; use a :class:`StaticFiles` for files shared by many passes.
    ``extra_files`` are per-pass additions (must not repeat a name of
    ``files``).  With ``compress`` the text entries are deflated; already
    compressed images are always stored.

    Raises ``ValueError`` for reserved/unsafe file names, duplicate names, or a
    ``passTypeIdentifier``/``teamIdentifier`` in ``pass_json`` that does not
    match the signing certificate (Wallet would reject such a pass silently).
    """
    _check_pass_identity(pass_json, signer)
    pass_bytes = _json_bytes(pass_json if isinstance(pass_json, dict) else dict(pass_json))

    entries: list[tuple[str, bytes]] = [("pass.json", pass_bytes)]
    manifest: dict[str, str] = {"pass.json": _sha1_hex(pass_bytes)}
    for source in (files, extra_files):
        for name, blob, digest in _entries_with_digests(source):
            if name in manifest:
                raise ValueError(f"duplicate pass file name: {name!r}")
            manifest[name] = digest
            entries.append((name, blob))

    manifest_bytes = _json_bytes(manifest, sort_keys=True)
    signature = signer.sign(manifest_bytes)
    entries.append(("manifest.json", manifest_bytes))
    entries.append(("signature", signature))

    date_time = time.localtime()[:6]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, blob in entries:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.external_attr = 0o644 << 16
            deflate = compress and not name.lower().endswith(_PRECOMPRESSED_SUFFIXES)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            archive.writestr(info, blob)
    return buf.getvalue()


def _check_pass_identity(pass_json: Mapping[str, Any], signer: PassSigner) -> None:
    expected = (
        ("passTypeIdentifier", signer.pass_type_id),
        ("teamIdentifier", signer.team_id),
    )
    for key, from_cert in expected:
        given = pass_json.get(key)
        if given is not None and from_cert is not None and given != from_cert:
            raise ValueError(
                f"pass.json {key} {given!r} does not match the signing certificate ({from_cert!r})"
            )


# --------------------------------------------------------------------------- #
# .strings files
# --------------------------------------------------------------------------- #
_STRINGS_ESCAPES = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
)


def encode_pass_strings(mapping: Mapping[str, str]) -> bytes:
    """Encode a localisation table in Apple's ``.strings`` format (UTF-8).

    One ``"key" = "value";`` line per entry, in the mapping's order, with
    backslash, double quote, newline, carriage return and tab escaped.
    """
    lines = [
        f'"{str(key).translate(_STRINGS_ESCAPES)}" = "{str(value).translate(_STRINGS_ESCAPES)}";\n'
        for key, value in mapping.items()
    ]
    return "".join(lines).encode("utf-8")


# --------------------------------------------------------------------------- #
# Configuration check
# --------------------------------------------------------------------------- #
def _fmt_date(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _check_validity(
    cert: x509.Certificate, label: str, now: dt.datetime, problems: list[str]
) -> None:
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    if now < not_before:
        problems.append(f"The {label} is not valid until {_fmt_date(not_before)}.")
    if now >= not_after:
        problems.append(f"The {label} expired on {_fmt_date(not_after)}; renew it.")
    elif now + dt.timedelta(days=EXPIRY_WARNING_DAYS) >= not_after:
        days = (not_after - now).days
        problems.append(
            f"The {label} expires on {_fmt_date(not_after)} (in {days} days); renew it soon."
        )


def _read_for_check(
    path: str | os.PathLike[str] | None, label: str, problems: list[str]
) -> bytes | None:
    if not path:
        problems.append(f"No {label} file is configured.")
        return None
    try:
        return _read_file(path, label)
    except PassConfigurationError as exc:
        problems.append(f"{exc}.")
        return None


def check_configuration(
    cert_path: str | os.PathLike[str] | None,
    key_path: str | os.PathLike[str] | None,
    key_password: str | None,
    wwdr_path: str | os.PathLike[str] | None,
    pass_type_id: str | None,
    team_id: str | None,
    *,
    now: dt.datetime | None = None,
) -> list[str]:
    """Return plain-English problems with an Apple Wallet setup (empty when fine).

    Checks: files present and readable; certificate and key parse; the key
    belongs to the certificate; the certificate is for ``pass_type_id`` and
    ``team_id``; it is valid now and for at least ``EXPIRY_WARNING_DAYS``
    more days; the WWDR certificate is present, valid and is the issuer of
    the pass certificate.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)  # naive means UTC
    problems: list[str] = []

    cert_data = _read_for_check(cert_path, "Pass certificate", problems)
    key_data = _read_for_check(key_path, "Pass private key", problems)
    wwdr_data = _read_for_check(wwdr_path, "WWDR certificate", problems)

    cert: x509.Certificate | None = None
    if cert_data is not None:
        try:
            cert = _load_certificate(cert_data, f"The pass certificate ({cert_path})")
        except PassConfigurationError as exc:
            problems.append(f"{exc}.")

    key: PrivateKey | None = None
    if key_data is not None:
        try:
            key = _load_private_key(key_data, key_password, f"The private key ({key_path})")
        except PassConfigurationError as exc:
            problems.append(f"{exc}.")

    wwdr: x509.Certificate | None = None
    if wwdr_data is not None:
        try:
            wwdr = _load_certificate(wwdr_data, f"The WWDR certificate ({wwdr_path})")
        except PassConfigurationError as exc:
            problems.append(f"{exc}.")

    if cert is not None and key is not None and _public_der(cert) != _public_der(key):
        problems.append("The private key does not match the pass certificate.")

    if cert is not None:
        cert_type_id = _name_attr(cert.subject, NameOID.USER_ID)
        cert_team_id = _name_attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
        if not pass_type_id:
            problems.append("No pass type identifier is configured.")
        elif cert_type_id is None:
            problems.append(
                "The certificate has no pass type identifier (subject UID); "
                "is it an Apple Pass Type ID certificate?"
            )
        elif cert_type_id != pass_type_id:
            problems.append(
                f"The certificate is for pass type identifier '{cert_type_id}', "
                f"but '{pass_type_id}' is configured."
            )
        if not team_id:
            problems.append("No team identifier is configured.")
        elif cert_team_id is None:
            problems.append("The certificate has no team identifier (subject OU).")
        elif cert_team_id != team_id:
            problems.append(
                f"The certificate belongs to team '{cert_team_id}', but team '{team_id}' is configured."
            )
        _check_validity(cert, "pass certificate", now, problems)

    if wwdr is not None:
        _check_validity(wwdr, "WWDR certificate", now, problems)
        if cert is not None:
            if cert.issuer != wwdr.subject:
                problems.append(
                    "The WWDR certificate is not the issuer of the pass certificate "
                    f"(pass certificate issuer: {cert.issuer.rfc4514_string()}; "
                    f"WWDR subject: {wwdr.subject.rfc4514_string()}). "
                    "Download the matching Apple WWDR intermediate certificate."
                )
            else:
                try:
                    cert.verify_directly_issued_by(wwdr)
                except (ValueError, TypeError, InvalidSignature):
                    problems.append(
                        "The pass certificate's signature does not verify with the WWDR "
                        "certificate's key; the WWDR certificate is not its issuer."
                    )
    return problems
