"""Protocol-level tests for the wallet layer (no database, no Flask).

Apple: .pkpass contents, manifest digests, the PKCS #7 signature checked by the
real ``openssl`` binary, configuration checks.  APNs: the client against an
HTTP/2 mutual-TLS stand-in.  Google: the REST client against an OAuth + Wallet
stand-in, and save-link JWTs verified with google-auth.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import ssl
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.auth import crypt, jwt

from portal.services.wallet import apple_pass, google
from portal.services.wallet.apns import APNS_PRODUCTION_URL, ApnsClient, PushResult
from portal.services.wallet.apple_pass import (
    PassConfigurationError,
    PassSigner,
    StaticFiles,
    build_pkpass,
    encode_pass_strings,
)
from portal.services.wallet.google import (
    GoogleWalletClient,
    GoogleWalletError,
    SaveLinkSigner,
)
from tests.wallet_support.apns_standin import ApnsStandin
from tests.wallet_support.ca import TestPki, make_test_pki, write_private_key
from tests.wallet_support.google_standin import (
    GoogleStandin,
    make_service_account_file,
    public_key_pem,
)

pytestmark = pytest.mark.timeout(60)

TOKEN_A = "a1" * 32
TOKEN_B = "b2" * 32
ISSUER = "3388000000022141777"

# Incompressible stand-ins for PNG data plus real text resources.
RESOURCES: dict[str, bytes] = {
    "icon.png": os.urandom(1500),
    "icon@2x.png": os.urandom(3000),
    "icon@3x.png": os.urandom(4500),
    "logo.png": os.urandom(2000),
    "strip@2x.png": os.urandom(8000),
    "en.lproj/pass.strings": encode_pass_strings({"stamps": "Stamps", "reward": "Free coffee"}),
    "fr.lproj/pass.strings": encode_pass_strings({"stamps": "Tampons", "reward": "Café offert"}),
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    # Password-protected key: the realistic case, and it exercises decryption.
    return make_test_pki(tmp_path_factory.mktemp("pki"), key_password="correct horse")


@pytest.fixture(scope="module")
def signer(pki: TestPki) -> PassSigner:
    return PassSigner(pki.pass_cert, pki.pass_key, pki.key_password, pki.wwdr_cert)


def _pass_json(pki: TestPki, serial: str = "card-0001") -> dict[str, Any]:
    return {
        "formatVersion": 1,
        "passTypeIdentifier": pki.pass_type_id,
        "teamIdentifier": pki.team_id,
        "serialNumber": serial,
        "organizationName": "Café du Coin",
        "description": "Carte de fidélité",
        "storeCard": {"primaryFields": [{"key": "stamps", "label": "stamps", "value": 7}]},
        "barcodes": [{"format": "PKBarcodeFormatQR", "message": serial, "messageEncoding": "iso-8859-1"}],
    }


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


# =========================================================================== #
# Apple: package and signature
# =========================================================================== #
def test_signer_reads_identity_from_certificate(signer: PassSigner, pki: TestPki) -> None:
    assert signer.pass_type_id == "pass.lu.example.loyalty" == pki.pass_type_id
    assert signer.team_id == "TEAM123456"
    assert signer.not_valid_after > _utcnow() + dt.timedelta(days=300)


def test_pkpass_contains_every_file_and_a_correct_manifest(signer: PassSigner, pki: TestPki) -> None:
    pass_json = _pass_json(pki)
    entries = _unzip(build_pkpass(pass_json, RESOURCES, signer))

    assert set(entries) == {"pass.json", "manifest.json", "signature", *RESOURCES}
    # pass.json is compact UTF-8 JSON of exactly what we gave.
    assert json.loads(entries["pass.json"].decode("utf-8")) == pass_json
    assert b": " not in entries["pass.json"] and "Café".encode() in entries["pass.json"]
    for name, blob in RESOURCES.items():
        assert entries[name] == blob

    manifest = json.loads(entries["manifest.json"])
    assert set(manifest) == set(entries) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert digest == hashlib.sha1(entries[name]).hexdigest(), name


def test_text_entries_are_deflated_and_images_stored(signer: PassSigner, pki: TestPki) -> None:
    with zipfile.ZipFile(io.BytesIO(build_pkpass(_pass_json(pki), RESOURCES, signer))) as archive:
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
    assert kinds["pass.json"] == zipfile.ZIP_DEFLATED
    assert kinds["en.lproj/pass.strings"] == zipfile.ZIP_DEFLATED
    assert kinds["icon.png"] == zipfile.ZIP_STORED
    with zipfile.ZipFile(io.BytesIO(build_pkpass(_pass_json(pki), RESOURCES, signer, compress=False))) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:  # pragma: no cover - openssl is on every dev/CI machine
        pytest.skip("openssl binary not available")
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30, check=False)


def _verify_with_openssl(tmp_path: Path, manifest: bytes, signature: bytes, root_ca: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "manifest.json").write_bytes(manifest)
    (tmp_path / "signature").write_bytes(signature)
    # No -certfile: the WWDR intermediate must come from the signature itself.
    return _openssl(
        "smime", "-verify", "-binary", "-inform", "DER",
        "-in", str(tmp_path / "signature"),
        "-content", str(tmp_path / "manifest.json"),
        "-CAfile", root_ca, "-purpose", "any", "-out", os.devnull,
    )


def test_signature_verifies_with_openssl(signer: PassSigner, pki: TestPki, tmp_path: Path) -> None:
    entries = _unzip(build_pkpass(_pass_json(pki), RESOURCES, signer))
    result = _verify_with_openssl(tmp_path, entries["manifest.json"], entries["signature"], pki.root_ca)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr

    # Signer certificate and WWDR intermediate are embedded; signing time and SHA-256 are used.
    certs = _openssl("pkcs7", "-inform", "DER", "-in", str(tmp_path / "signature"), "-print_certs", "-noout")
    assert certs.returncode == 0, certs.stderr
    assert "Pass Type ID: pass.lu.example.loyalty" in certs.stdout
    assert "Worldwide Developer Relations" in certs.stdout
    dump = _openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "signature"))
    assert dump.returncode == 0, dump.stderr
    assert "signingTime" in dump.stdout and "sha256" in dump.stdout
    # Detached: the manifest itself is not inside the signature.
    assert entries["manifest.json"] not in entries["signature"]


def test_tampered_manifest_fails_openssl_verification(signer: PassSigner, pki: TestPki, tmp_path: Path) -> None:
    entries = _unzip(build_pkpass(_pass_json(pki), RESOURCES, signer))
    manifest = json.loads(entries["manifest.json"])
    manifest["icon.png"] = hashlib.sha1(b"another icon").hexdigest()
    tampered = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    assert tampered != entries["manifest.json"]

    result = _verify_with_openssl(tmp_path, tampered, entries["signature"], pki.root_ca)
    assert result.returncode != 0
    assert "Verification successful" not in result.stderr


def test_signature_does_not_verify_against_another_root(signer: PassSigner, pki: TestPki, tmp_path: Path) -> None:
    other = make_test_pki(tmp_path / "other")
    entries = _unzip(build_pkpass(_pass_json(pki), RESOURCES, signer))
    result = _verify_with_openssl(tmp_path, entries["manifest.json"], entries["signature"], other.root_ca)
    assert result.returncode != 0


def test_static_files_give_the_same_manifest(signer: PassSigner, pki: TestPki) -> None:
    static = StaticFiles({k: v for k, v in RESOURCES.items() if k.endswith(".png")})
    strings = {k: v for k, v in RESOURCES.items() if k.endswith(".strings")}
    for name in static:
        assert static.digest(name) == hashlib.sha1(RESOURCES[name]).hexdigest()

    from_dict = json.loads(_unzip(build_pkpass(_pass_json(pki), RESOURCES, signer))["manifest.json"])
    from_static = json.loads(
        _unzip(build_pkpass(_pass_json(pki), static, signer, extra_files=strings))["manifest.json"]
    )
    merged = json.loads(_unzip(build_pkpass(_pass_json(pki), static.with_files(strings), signer))["manifest.json"])
    assert from_dict == from_static == merged


def test_digest_cache_keys_on_content_not_identity(signer: PassSigner, pki: TestPki) -> None:
    first = _unzip(build_pkpass(_pass_json(pki), {"icon.png": b"A" * 100}, signer))
    # Same name, different content: the manifest must follow the content.
    second = _unzip(build_pkpass(_pass_json(pki), {"icon.png": b"B" * 100}, signer))
    assert json.loads(first["manifest.json"])["icon.png"] == hashlib.sha1(b"A" * 100).hexdigest()
    assert json.loads(second["manifest.json"])["icon.png"] == hashlib.sha1(b"B" * 100).hexdigest()


@pytest.mark.parametrize(
    "name", ["pass.json", "manifest.json", "signature", "../evil.png", "/abs.png", "a//b.png", "dir\\x.png", ""]
)
def test_reserved_or_unsafe_names_are_rejected(signer: PassSigner, pki: TestPki, name: str) -> None:
    with pytest.raises(ValueError):
        build_pkpass(_pass_json(pki), {name: b"x"}, signer)


def test_duplicate_names_between_static_and_extra_files(signer: PassSigner, pki: TestPki) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        build_pkpass(_pass_json(pki), StaticFiles({"icon.png": b"1"}), signer, extra_files={"icon.png": b"2"})


def test_pass_json_must_match_the_certificate(signer: PassSigner, pki: TestPki) -> None:
    with pytest.raises(ValueError, match="passTypeIdentifier"):
        build_pkpass({**_pass_json(pki), "passTypeIdentifier": "pass.other.id"}, RESOURCES, signer)
    with pytest.raises(ValueError, match="teamIdentifier"):
        build_pkpass({**_pass_json(pki), "teamIdentifier": "OTHERTEAM1"}, RESOURCES, signer)


def test_building_is_fast_enough_for_bulk_updates(signer: PassSigner, pki: TestPki) -> None:
    # Sanity bound only (the real benchmark lives elsewhere): ~1-2 ms per pass
    # here, so 100 passes in 5 s leaves a wide margin on a loaded CI machine.
    static = StaticFiles(RESOURCES)
    started = time.perf_counter()
    for i in range(100):
        build_pkpass(_pass_json(pki, f"card-{i}"), static, signer)
    assert time.perf_counter() - started < 5


def test_signer_from_bytes_and_unencrypted_key(tmp_path: Path) -> None:
    plain = make_test_pki(tmp_path / "plain")  # key without password
    signer = PassSigner.from_bytes(
        Path(plain.pass_cert).read_bytes(), Path(plain.pass_key).read_bytes(), None, Path(plain.wwdr_cert).read_bytes()
    )
    # A stale password for an unencrypted key is ignored, not fatal.
    PassSigner(plain.pass_cert, plain.pass_key, "stale-password", plain.wwdr_cert)
    entries = _unzip(build_pkpass(_pass_json(plain), {}, signer))
    result = _verify_with_openssl(tmp_path, entries["manifest.json"], entries["signature"], plain.root_ca)
    assert result.returncode == 0, result.stderr


def test_signer_rejects_a_key_that_does_not_match(pki: TestPki, tmp_path: Path) -> None:
    wrong_key = write_private_key(tmp_path / "wrong.pem")
    with pytest.raises(PassConfigurationError, match="does not match"):
        PassSigner(pki.pass_cert, wrong_key, None, pki.wwdr_cert)
    with pytest.raises(PassConfigurationError, match="not found"):
        PassSigner(pki.pass_cert, pki.pass_key, pki.key_password, tmp_path / "missing.pem")


# =========================================================================== #
# Apple: .strings
# =========================================================================== #
def test_encode_pass_strings_escapes_specials() -> None:
    encoded = encode_pass_strings(
        {
            "plain": "Stamps",
            'say "hi"': 'He said "hi"',
            "path": "C:\\shop\\card",
            "multi": "line one\nline two",
            "unicode": "Café ☕ 10 €",
        }
    )
    assert encoded == (
        '"plain" = "Stamps";\n'
        '"say \\"hi\\"" = "He said \\"hi\\"";\n'
        '"path" = "C:\\\\shop\\\\card";\n'
        '"multi" = "line one\\nline two";\n'
        '"unicode" = "Café ☕ 10 €";\n'
    ).encode("utf-8")
    assert encode_pass_strings({}) == b""


# =========================================================================== #
# Apple: configuration check
# =========================================================================== #
def _check(pki: TestPki, **overrides: Any) -> list[str]:
    args: dict[str, Any] = {
        "cert_path": pki.pass_cert,
        "key_path": pki.pass_key,
        "key_password": pki.key_password,
        "wwdr_path": pki.wwdr_cert,
        "pass_type_id": pki.pass_type_id,
        "team_id": pki.team_id,
    }
    args.update(overrides)
    return apple_pass.check_configuration(**args)


def test_check_configuration_good_setup(pki: TestPki) -> None:
    assert _check(pki) == []


def test_check_configuration_wrong_key(pki: TestPki, tmp_path: Path) -> None:
    problems = _check(pki, key_path=write_private_key(tmp_path / "other.pem"), key_password=None)
    assert problems == ["The private key does not match the pass certificate."]


def test_check_configuration_key_passwords(pki: TestPki) -> None:
    (wrong,) = _check(pki, key_password="not the password")
    assert "password is wrong" in wrong
    (missing,) = _check(pki, key_password=None)
    assert "password is required" in missing


def test_check_configuration_expired_certificate(tmp_path: Path) -> None:
    now = _utcnow()
    expired = make_test_pki(
        tmp_path, pass_not_before=now - dt.timedelta(days=400), pass_not_after=now - dt.timedelta(days=2)
    )
    problems = _check(expired)
    assert len(problems) == 1 and "pass certificate expired on" in problems[0]


def test_check_configuration_certificate_expiring_soon(tmp_path: Path) -> None:
    soon = make_test_pki(tmp_path, pass_not_after=_utcnow() + dt.timedelta(days=10))
    problems = _check(soon)
    assert len(problems) == 1 and "expires on" in problems[0] and "renew" in problems[0]


def test_check_configuration_can_be_evaluated_at_another_time(pki: TestPki, signer: PassSigner) -> None:
    later = signer.not_valid_after - dt.timedelta(days=5)
    (problem,) = _check(pki, now=later)
    assert "expires on" in problem and "(in 5 days)" in problem


def test_check_configuration_wrong_pass_type_id_and_team(pki: TestPki) -> None:
    (problem,) = _check(pki, pass_type_id="pass.com.example.other")
    assert "'pass.lu.example.loyalty'" in problem and "'pass.com.example.other'" in problem
    (problem,) = _check(pki, team_id="OTHERTEAM1")
    assert "team 'TEAM123456'" in problem
    assert "No pass type identifier is configured." in _check(pki, pass_type_id="")


def test_check_configuration_missing_wwdr(pki: TestPki, tmp_path: Path) -> None:
    missing = tmp_path / "AppleWWDRCAG4.pem"
    (problem,) = _check(pki, wwdr_path=str(missing))
    assert "WWDR certificate file not found" in problem and str(missing) in problem
    assert _check(pki, wwdr_path=None) == ["No WWDR certificate file is configured."]


def test_check_configuration_wwdr_is_not_the_issuer(pki: TestPki, tmp_path: Path) -> None:
    other = make_test_pki(tmp_path)  # same WWDR name, different key
    (problem,) = _check(pki, wwdr_path=other.wwdr_cert)
    assert "WWDR" in problem and "issuer" in problem
    # A root CA in place of the WWDR: names differ.
    (problem,) = _check(pki, wwdr_path=pki.root_ca)
    assert "not the issuer of the pass certificate" in problem


def test_check_configuration_expired_wwdr(tmp_path: Path) -> None:
    expired_wwdr = make_test_pki(tmp_path, wwdr_not_after=_utcnow() - dt.timedelta(days=1))
    problems = _check(expired_wwdr)
    assert any("WWDR certificate expired" in p for p in problems)


def test_check_configuration_unreadable_files(pki: TestPki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"this is not a certificate")
    problems = _check(pki, cert_path=str(garbage), key_path=str(tmp_path / "nokey.pem"))
    assert any("not a PEM or DER X.509 certificate" in p for p in problems)
    assert any("Pass private key file not found" in p for p in problems)


# =========================================================================== #
# APNs
# =========================================================================== #
@pytest.fixture
def apns(pki: TestPki) -> Any:
    with ApnsStandin(pki, hang_seconds=10) as standin:
        yield standin


@pytest.fixture
def apns_client(pki: TestPki, apns: ApnsStandin) -> Any:
    client = ApnsClient(apns.url, pki.pass_cert, pki.pass_key, pki.key_password, timeout=2, verify=pki.root_ca)
    yield client
    client.close()


def test_apns_production_url() -> None:
    assert APNS_PRODUCTION_URL == "https://api.push.apple.com"


def test_push_is_an_http2_pass_update_authenticated_by_certificate(
    apns: ApnsStandin, apns_client: ApnsClient, pki: TestPki
) -> None:
    result = apns_client.push(TOKEN_A, pki.pass_type_id)
    assert result.ok and not result.gone and not result.retryable
    assert result.apns_id

    (push,) = apns.wait_for(1)
    assert push.method == "POST" and push.path == f"/3/device/{TOKEN_A}" and push.token == TOKEN_A
    assert push.http_version == "HTTP/2"
    assert push.topic == pki.pass_type_id
    assert push.headers["apns-push-type"] == "alert"
    assert push.headers["apns-priority"] == "10"
    assert int(push.headers["apns-expiration"]) > time.time()
    assert push.body == b"{}" and push.json() == {}
    # The stand-in only accepts clients with a certificate chaining to the test
    # root; it saw the pass certificate's identity.
    assert push.client_subject["userId"] == pki.pass_type_id
    assert push.client_subject["organizationalUnitName"] == pki.team_id
    assert apns.handshake_failures == []


def test_push_reuses_one_connection(apns: ApnsStandin, apns_client: ApnsClient, pki: TestPki) -> None:
    for token in (TOKEN_A, TOKEN_B, TOKEN_A):
        assert apns_client.push(token, pki.pass_type_id).ok
    assert [p.token for p in apns.wait_for(3)] == [TOKEN_A, TOKEN_B, TOKEN_A]
    assert apns.connections_accepted == 1


def test_unregistered_token_is_gone(apns: ApnsStandin, apns_client: ApnsClient, pki: TestPki) -> None:
    apns.unregister(TOKEN_B)
    gone = apns_client.push(TOKEN_B, pki.pass_type_id)
    assert gone == PushResult(status=410, reason="Unregistered", apns_id=gone.apns_id)
    assert gone.gone and not gone.ok and not gone.retryable
    assert apns_client.push(TOKEN_A, pki.pass_type_id).ok  # other tokens unaffected

    apns.unregister(TOKEN_A, status=400, reason="BadDeviceToken")
    assert apns_client.push(TOKEN_A, pki.pass_type_id).gone
    # Any 410 means the token is dead, whatever reason APNs gives.
    apns.unregister(TOKEN_A, status=410, reason="ExpiredToken")
    assert apns_client.push(TOKEN_A, pki.pass_type_id).gone


def test_push_result_classification() -> None:
    assert PushResult(200).ok and not PushResult(200).gone and not PushResult(200).retryable
    assert PushResult(410).gone and not PushResult(410).retryable
    assert PushResult(400, "BadDeviceToken").gone and PushResult(400, "Unregistered").gone
    assert not PushResult(400, "DeviceTokenNotForTopic").gone
    assert PushResult(0, "timeout").retryable and PushResult(429).retryable and PushResult(503).retryable
    assert not PushResult(403, "BadCertificate").retryable


def test_malformed_token_never_reaches_apns(apns: ApnsStandin, apns_client: ApnsClient, pki: TestPki) -> None:
    for bad in ("../../3/device/x", "zz" * 32, "", "ab cd"):
        result = apns_client.push(bad, pki.pass_type_id)
        assert result.status == 400 and result.gone
    assert apns.pushes == []


def test_wrong_topic_is_refused_but_token_kept(apns: ApnsStandin, apns_client: ApnsClient) -> None:
    result = apns_client.push(TOKEN_A, "pass.com.example.someone-else")
    assert result.status == 400 and result.reason == "TopicDisallowed"
    assert not result.gone and not result.retryable


def test_server_errors_are_retryable_and_recover(apns: ApnsStandin, apns_client: ApnsClient, pki: TestPki) -> None:
    apns.set_mode("error")
    failed = apns_client.push(TOKEN_A, pki.pass_type_id)
    assert failed.status == 500 and failed.reason == "InternalServerError"
    assert failed.retryable and not failed.gone
    apns.set_mode("error", status=429, reason="TooManyRequests")
    assert apns_client.push(TOKEN_A, pki.pass_type_id).retryable
    apns.set_mode("ok")
    assert apns_client.push(TOKEN_A, pki.pass_type_id).ok


def test_hanging_apns_times_out_as_retryable(apns: ApnsStandin, pki: TestPki) -> None:
    apns.set_mode("hang", hang_seconds=10)
    with ApnsClient(apns.url, pki.pass_cert, pki.pass_key, pki.key_password, timeout=0.5, verify=pki.root_ca) as client:
        started = time.monotonic()
        result = client.push(TOKEN_A, pki.pass_type_id)
        elapsed = time.monotonic() - started
        assert result.status == 0 and result.retryable and not result.gone
        assert 0.4 < elapsed < 3
        apns.wait_for(1)  # the request did arrive; it was just never answered in time
        apns.set_mode("ok")
        assert client.push(TOKEN_A, pki.pass_type_id).ok


def test_apns_down_or_stopped_then_back(apns: ApnsStandin, apns_client: ApnsClient, pki: TestPki) -> None:
    assert apns_client.push(TOKEN_A, pki.pass_type_id).ok
    port = apns.port

    apns.set_mode("down")  # existing connection dropped, new ones closed at once
    down = apns_client.push(TOKEN_A, pki.pass_type_id)
    assert down.status == 0 and down.retryable
    apns.set_mode("ok")
    assert apns_client.push(TOKEN_A, pki.pass_type_id).ok

    apns.stop()  # connection refused
    refused = apns_client.push(TOKEN_A, pki.pass_type_id)
    assert refused.status == 0 and refused.retryable
    apns.start()
    assert apns.port == port
    assert apns_client.push(TOKEN_A, pki.pass_type_id).ok


def test_standin_rejects_clients_without_a_valid_certificate(apns: ApnsStandin, pki: TestPki, tmp_path: Path) -> None:
    # No client certificate at all.
    context = ssl.create_default_context(cafile=pki.root_ca)
    with httpx.Client(http1=False, http2=True, verify=context, timeout=2) as anonymous:
        with pytest.raises(httpx.TransportError):
            anonymous.post(f"{apns.url}/3/device/{TOKEN_A}", content=b"{}", headers={"apns-topic": pki.pass_type_id})
    # A pass certificate from another PKI (not trusted by the stand-in).
    stranger = make_test_pki(tmp_path)
    with ApnsClient(apns.url, stranger.pass_cert, stranger.pass_key, verify=pki.root_ca, timeout=2) as client:
        result = client.push(TOKEN_A, stranger.pass_type_id)
    assert result.status == 0 and result.retryable
    assert apns.pushes == []
    assert len(apns.handshake_failures) >= 2


def test_client_checks_the_server_certificate(apns: ApnsStandin, pki: TestPki, tmp_path: Path) -> None:
    other = make_test_pki(tmp_path)
    with ApnsClient(apns.url, pki.pass_cert, pki.pass_key, pki.key_password, verify=other.root_ca, timeout=2) as client:
        result = client.push(TOKEN_A, pki.pass_type_id)
    assert result.status == 0 and "CERTIFICATE_VERIFY_FAILED" in (result.reason or "")
    assert apns.pushes == []


# =========================================================================== #
# Google Wallet REST
# =========================================================================== #
@pytest.fixture
def gstandin() -> Any:
    with GoogleStandin(issuer_id=ISSUER) as standin:
        yield standin


@pytest.fixture
def service_account(gstandin: GoogleStandin, tmp_path: Path) -> str:
    return gstandin.make_service_account(tmp_path)


@pytest.fixture
def gclient(gstandin: GoogleStandin, service_account: str) -> Any:
    client = GoogleWalletClient(service_account, gstandin.url, timeout=2)
    yield client
    client.close()


def _loyalty_class(suffix: str = "cafe-du-coin") -> dict[str, Any]:
    return {
        "id": f"{ISSUER}.{suffix}",
        "issuerName": "Café du Coin",
        "programName": "Stamp card",
        "reviewStatus": "UNDER_REVIEW",
    }


def _loyalty_object(stamps: int, suffix: str = "card-0001") -> dict[str, Any]:
    return {
        "id": f"{ISSUER}.{suffix}",
        "classId": f"{ISSUER}.cafe-du-coin",
        "state": "ACTIVE",
        "loyaltyPoints": {"label": "Stamps", "balance": {"int": stamps}},
        "barcode": {"type": "QR_CODE", "value": suffix},
    }


def test_ensure_class_twice_inserts_once_with_a_token_from_the_token_endpoint(
    gstandin: GoogleStandin, gclient: GoogleWalletClient, service_account: str
) -> None:
    first = gclient.ensure_class(_loyalty_class())
    second = gclient.ensure_class(_loyalty_class())
    assert first["id"] == second["id"] == f"{ISSUER}.cafe-du-coin"
    assert len(gstandin.calls("POST", "loyaltyClass")) == 1
    assert [r.status for r in gstandin.calls("GET", "loyaltyClass")] == [404, 200]
    assert gstandin.classes[first["id"]]["programName"] == "Stamp card"

    # One OAuth token, obtained with a JWT-bearer assertion signed by the service account.
    (token_request,) = gstandin.token_requests
    assert token_request.status == 200
    assert token_request.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(token_request.body["assertion"], certs=public_key_pem(service_account), verify=True,
                        audience="https://oauth2.googleapis.com/token")
    assert claims["iss"] == json.loads(Path(service_account).read_text())["client_email"]
    assert google.WALLET_SCOPE in claims["scope"].split()
    rest_calls = [r for r in gstandin.requests if r.path != "/token"]
    assert rest_calls and all(r.authorization and r.authorization.startswith("Bearer ya29.standin-") for r in rest_calls)


def test_upsert_object_inserts_then_patches(gstandin: GoogleStandin, gclient: GoogleWalletClient) -> None:
    gclient.ensure_class(_loyalty_class())
    created = gclient.upsert_object(_loyalty_object(3))
    assert created["loyaltyPoints"]["balance"] == {"int": 3}
    assert [r.status for r in gstandin.calls("PATCH", "loyaltyObject")] == [404]
    assert len(gstandin.calls("POST", "loyaltyObject", status=200)) == 1

    updated = gclient.upsert_object(_loyalty_object(4))
    assert updated["loyaltyPoints"]["balance"] == {"int": 4}
    assert [r.status for r in gstandin.calls("PATCH", "loyaltyObject")] == [404, 200]
    assert len(gstandin.calls("POST", "loyaltyObject")) == 1
    assert gclient.get_object(f"{ISSUER}.card-0001")["loyaltyPoints"]["balance"] == {"int": 4}


def test_insert_conflict_and_not_found_are_not_retryable(gclient: GoogleWalletClient) -> None:
    gclient.insert_class(_loyalty_class())
    with pytest.raises(GoogleWalletError) as conflict:
        gclient.insert_class(_loyalty_class())
    assert conflict.value.status == 409 and not conflict.value.retryable
    with pytest.raises(GoogleWalletError) as missing:
        gclient.get_object(f"{ISSUER}.nobody")
    assert missing.value.status == 404 and not missing.value.retryable
    with pytest.raises(GoogleWalletError) as missing_patch:
        gclient.patch_class(f"{ISSUER}.nothing", {"programName": "x"})
    assert missing_patch.value.not_found


def test_google_outages_are_retryable_and_recover(
    gstandin: GoogleStandin, gclient: GoogleWalletClient, service_account: str
) -> None:
    gclient.ensure_class(_loyalty_class())  # also fetches the token

    gstandin.set_mode("error", status=503, include_token_endpoint=False)
    with pytest.raises(GoogleWalletError) as unavailable:
        gclient.get_class(f"{ISSUER}.cafe-du-coin")
    assert unavailable.value.status == 503 and unavailable.value.retryable

    gstandin.set_mode("down")
    with pytest.raises(GoogleWalletError) as dropped:
        gclient.get_class(f"{ISSUER}.cafe-du-coin")
    assert dropped.value.status == 0 and dropped.value.retryable

    gstandin.set_mode("hang", hang_seconds=10)
    impatient = GoogleWalletClient(service_account, gstandin.url, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(GoogleWalletError) as hung:
        impatient.get_class(f"{ISSUER}.cafe-du-coin")  # hangs on /token already
    impatient.close()
    assert hung.value.status == 0 and hung.value.retryable
    assert 0.4 < time.monotonic() - started < 3

    gstandin.set_mode("ok")
    gstandin.stop()
    with pytest.raises(GoogleWalletError) as refused:
        gclient.get_class(f"{ISSUER}.cafe-du-coin")
    assert refused.value.status == 0 and refused.value.retryable
    gstandin.start()
    assert gclient.get_class(f"{ISSUER}.cafe-du-coin")["id"] == f"{ISSUER}.cafe-du-coin"


def test_revoked_token_is_refreshed(gstandin: GoogleStandin, gclient: GoogleWalletClient) -> None:
    gclient.ensure_class(_loyalty_class())
    gstandin.revoke_tokens()
    assert gclient.get_class(f"{ISSUER}.cafe-du-coin")["id"]
    assert [r.status for r in gstandin.token_requests] == [200, 200]


def test_untrusted_service_account_cannot_get_a_token(gstandin: GoogleStandin, tmp_path: Path) -> None:
    stranger = make_service_account_file(tmp_path, gstandin.token_uri)  # not trusted by the stand-in
    with GoogleWalletClient(stranger, gstandin.url, timeout=2) as client:
        with pytest.raises(GoogleWalletError) as refused:
            client.get_class(f"{ISSUER}.cafe-du-coin")
    assert refused.value.status == 401 and not refused.value.retryable
    assert [r.status for r in gstandin.token_requests] == [400]
    assert not gstandin.calls("GET", "loyaltyClass")


def test_object_for_unknown_class_and_foreign_issuer_are_refused(gclient: GoogleWalletClient) -> None:
    with pytest.raises(GoogleWalletError) as no_class:
        gclient.upsert_object(_loyalty_object(1))
    assert no_class.value.status == 400
    with pytest.raises(GoogleWalletError) as foreign:
        gclient.insert_class({**_loyalty_class(), "id": "1234.not-ours"})
    assert foreign.value.status == 403


# =========================================================================== #
# Google save links
# =========================================================================== #
def test_save_url_is_a_signed_savetowallet_jwt(service_account: str) -> None:
    origins = ["https://cafe.example.lu"]
    signer = SaveLinkSigner(service_account, origins, expires_in=3600)
    obj, cls = _loyalty_object(5), _loyalty_class()
    url = signer.save_url(obj, cls)
    assert url.startswith("https://pay.google.com/gp/v/save/")
    token = url.removeprefix("https://pay.google.com/gp/v/save/")

    claims = jwt.decode(token, certs=public_key_pem(service_account), audience="google")
    account = json.loads(Path(service_account).read_text())
    assert claims["iss"] == account["client_email"]
    assert claims["aud"] == "google" and claims["typ"] == "savetowallet"
    assert claims["origins"] == origins
    assert abs(claims["iat"] - time.time()) < 60 and claims["exp"] == claims["iat"] + 3600
    assert claims["payload"] == {"loyaltyObjects": [obj], "loyaltyClasses": [cls]}
    assert jwt.decode_header(token)["alg"] == "RS256"
    assert jwt.decode_header(token)["kid"] == account["private_key_id"]

    # A different key must not verify it.
    other = make_service_account_file(Path(service_account).parent / "other", "http://127.0.0.1:1/token")
    with pytest.raises(ValueError):
        jwt.decode(token, certs=public_key_pem(other), audience="google")


def test_save_url_without_expiry_has_only_documented_claims(service_account: str) -> None:
    token = SaveLinkSigner(service_account, ["https://cafe.example.lu"]).token(_loyalty_object(1))
    claims = jwt.decode(token, verify=False)
    assert set(claims) == {"iss", "aud", "typ", "iat", "origins", "payload"}
    assert claims["payload"] == {"loyaltyObjects": [_loyalty_object(1)]}
    signed, _, signature = token.rpartition(".")
    verifier = crypt.RSAVerifier.from_string(public_key_pem(service_account))
    raw_signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert verifier.verify(signed.encode(), raw_signature)
    assert not verifier.verify((signed + "x").encode(), raw_signature)


def test_save_links_are_cheap(service_account: str) -> None:
    signer = SaveLinkSigner(service_account, ["https://cafe.example.lu"])
    obj = _loyalty_object(2)
    started = time.perf_counter()
    for _ in range(200):
        signer.save_url(obj)
    assert time.perf_counter() - started < 4  # ~0.7 ms each; wide margin for CI


# =========================================================================== #
# Google configuration check
# =========================================================================== #
def test_google_check_configuration_good(service_account: str) -> None:
    assert google.check_configuration(service_account, ISSUER) == []
    assert google.check_configuration(service_account, int(ISSUER)) == []


def test_google_check_configuration_problems(tmp_path: Path, service_account: str) -> None:
    (missing,) = google.check_configuration(tmp_path / "nope.json", ISSUER)
    assert "not found" in missing

    not_json = tmp_path / "key.json"
    not_json.write_text("{not json")
    assert google.check_configuration(not_json, ISSUER) == [f"The service account key file is not JSON: {not_json}."]

    info = json.loads(Path(service_account).read_text())
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({k: v for k, v in info.items() if k not in ("client_email", "private_key")}))
    (problem,) = google.check_configuration(partial, ISSUER)
    assert "client_email" in problem and "private_key" in problem

    bad_key = tmp_path / "bad_key.json"
    bad_key.write_text(json.dumps({**info, "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}))
    (problem,) = google.check_configuration(bad_key, ISSUER)
    assert "private key cannot be parsed" in problem

    user_creds = tmp_path / "user.json"
    user_creds.write_text(json.dumps({**info, "type": "authorized_user"}))
    (problem,) = google.check_configuration(user_creds, ISSUER)
    assert "not 'service_account'" in problem

    assert google.check_configuration(service_account, "") == ["The Google Wallet issuer id is not set."]
    assert google.check_configuration(service_account, None) == ["The Google Wallet issuer id is not set."]
    (problem,) = google.check_configuration(service_account, "my-shop")
    assert "not numeric" in problem
    assert len(google.check_configuration(None, None)) == 2

