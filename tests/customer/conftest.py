"""Fixtures for the customer side: a test PKI shaped like Apple's, the APNs and Google stand-ins, and an app whose
wallet settings point at them (``wallet_app_config``). Modules opt in by overriding ``app_config``:

    @pytest.fixture
    def app_config(wallet_app_config):
        return wallet_app_config
"""
from __future__ import annotations

import pytest
from support import field_value

from tests.wallet_support.apns_standin import ApnsStandin
from tests.wallet_support.ca import TestPki, make_test_pki
from tests.wallet_support.google_standin import GoogleStandin

ISSUER = "3388000000022999111"
PUSH_TOKENS = ["a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32]


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("wallet-pki"), key_password="pass-key-password")


@pytest.fixture
def apns(pki):
    with ApnsStandin(pki, hang_seconds=5) as standin:
        yield standin


@pytest.fixture
def gstandin():
    with GoogleStandin(issuer_id=ISSUER, hang_seconds=5) as standin:
        yield standin


@pytest.fixture
def service_account(gstandin, tmp_path):
    return gstandin.make_service_account(tmp_path / "google")


@pytest.fixture
def wallet_app_config(pki, apns, gstandin, service_account):
    return {
        "PUBLIC_BASE_URL": "https://loyalty.example.lu",
        "APPLE_PASS_TYPE_ID": pki.pass_type_id,
        "APPLE_TEAM_ID": pki.team_id,
        "APPLE_PASS_CERT": pki.pass_cert,
        "APPLE_PASS_KEY": pki.pass_key,
        "APPLE_PASS_KEY_PASSWORD": pki.key_password,
        "APPLE_WWDR_CERT": pki.wwdr_cert,
        "APNS_URL": apns.url,
        "APNS_CA_FILE": pki.root_ca,
        "GOOGLE_WALLET_ISSUER_ID": ISSUER,
        "GOOGLE_SERVICE_ACCOUNT_FILE": service_account,
        "GOOGLE_WALLET_API_URL": gstandin.url,
        # Retries come back quickly in tests (production: 10 s doubling up to an hour).
        "WALLET_RETRY_BASE_SECONDS": 0.05,
        "WALLET_RETRY_MAX_SECONDS": 0.2,
        "ENROLL_MIN_FORM_SECONDS": 0,
    }


def form_fields(html: str) -> dict:
    """The hidden fields of the enrolment form (csrf_token, issued)."""
    fields = {name: field_value(html, name) for name in ("csrf_token", "issued")}
    assert None not in fields.values(), f"a hidden field is missing from the page: {fields}"
    return fields


def enrol(client, slug, **data):
    """GET the poster page, then POST the form with its hidden fields (consent ticked unless given)."""
    page = client.get(f"/p/{slug}?lang=en")  # messages asserted in English (the session keeps the choice)
    assert page.status_code == 200, page.status_code
    body = {**form_fields(page.get_data(as_text=True)), "consent": "y", "locale": "en", "website": ""}
    body.update({k: v for k, v in data.items() if v is not None})
    if data.get("consent") is None and "consent" in data:
        body.pop("consent")
    return client.post(f"/p/{slug}", data=body)
