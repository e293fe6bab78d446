"""Google Wallet: REST client for loyalty classes/objects and "Save to Google Wallet" links.

REST (Google Wallet API v1, ``https://walletobjects.googleapis.com``):

* ``GET    /walletobjects/v1/loyaltyClass/{resourceId}``   -> class or 404
* ``POST   /walletobjects/v1/loyaltyClass``                -> insert (409 if the id exists)
* ``PATCH  /walletobjects/v1/loyaltyClass/{resourceId}``   -> partial update (404 if missing)
* the same three for ``loyaltyObject``.

Resource ids have the form ``<issuerId>.<suffix>``.  Calls are authorised with
an OAuth 2.0 access token obtained from the service account's ``token_uri``
with the JWT-bearer grant and the ``wallet_object.issuer`` scope; google-auth
refreshes it when it expires (or on a 401).

Save links: ``https://pay.google.com/gp/v/save/<JWT>`` where the JWT is RS256-
signed with the service account key and carries ``iss`` (service account
email), ``aud: "google"``, ``typ: "savetowallet"``, ``iat``, ``origins`` and
``payload: {"loyaltyObjects": [...], "loyaltyClasses": [...]}``.  Keep the JWT
short (Google advises about 1800 characters for links in e-mails): insert the
class through REST once and put only the object (or even just its ``id`` and
``classId`` once it was inserted) in the link.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from google.auth import crypt
from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

__all__ = [
    "GOOGLE_WALLET_API_URL",
    "SAVE_URL_PREFIX",
    "WALLET_SCOPE",
    "GoogleWalletClient",
    "GoogleWalletError",
    "SaveLinkSigner",
    "check_configuration",
]

GOOGLE_WALLET_API_URL = "https://walletobjects.googleapis.com"
WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"

_REQUIRED_ACCOUNT_FIELDS = ("type", "client_email", "private_key", "token_uri")


class GoogleWalletError(Exception):
    """A Google Wallet API call failed.

    ``status`` is the HTTP status (0 when no response arrived); ``retryable``
    is true for 429, 5xx, timeouts and connection failures.
    """

    def __init__(self, status: int, message: str, retryable: bool) -> None:
        super().__init__(f"Google Wallet API error {status}: {message}")
        self.status = status
        self.message = message
        self.retryable = retryable

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return str(body.get("error_description") or error)
    return json.dumps(body)[:300]


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GoogleWalletClient:
    """Google Wallet REST client (loyalty classes and objects).

    The service account file is read once; the ``AuthorizedSession`` keeps
    the access token and the HTTP connection pool across calls.  Methods
    return the resource as a dict or raise :class:`GoogleWalletError`.
    """

    def __init__(
        self,
        service_account_file: str | os.PathLike[str],
        api_url: str = GOOGLE_WALLET_API_URL,
        *,
        session: AuthorizedSession | None = None,
        timeout: float = 15.0,
    ) -> None:
        """``session``: an already configured ``AuthorizedSession`` to use instead
        of building one (its credentials then take precedence)."""
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.credentials = service_account.Credentials.from_service_account_file(
            str(service_account_file), scopes=[WALLET_SCOPE]
        )
        token_uri = getattr(self.credentials, "_token_uri", "") or ""
        if _is_loopback_url(token_uri):
            # google-auth >= 2.4x looks up a "regional access boundary" at
            # iamcredentials.googleapis.com after every token refresh.  When
            # the account's token service is a local stand-in, that lookup
            # can only fail (and would leave the machine), so switch it off.
            _disable_regional_access_boundary_lookup(self.credentials)
        self.session = session or AuthorizedSession(self.credentials, refresh_timeout=timeout)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GoogleWalletClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------
    def _url(self, resource: str, resource_id: str | None = None) -> str:
        url = f"{self.api_url}/walletobjects/v1/{resource}"
        if resource_id is not None:
            if not resource_id:
                raise ValueError("empty resource id")
            url += "/" + quote(resource_id, safe="")
        return url

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.session.request(method, url, json=body, timeout=self.timeout)
        except requests.exceptions.Timeout as exc:
            raise GoogleWalletError(0, f"timeout: {exc}", retryable=True) from exc
        except requests.exceptions.RequestException as exc:
            raise GoogleWalletError(0, f"connection error: {exc}", retryable=True) from exc
        except auth_exceptions.RefreshError as exc:
            # The token endpoint answered but refused (bad key, disabled or
            # unknown account: status 401, permanent), or kept failing after
            # google-auth's own retries (5xx/429: status 0, retryable).
            retryable = bool(getattr(exc, "retryable", False))
            raise GoogleWalletError(
                0 if retryable else 401, f"could not obtain an access token: {exc}", retryable
            ) from exc
        except auth_exceptions.TransportError as exc:
            raise GoogleWalletError(0, f"token endpoint unreachable: {exc}", retryable=True) from exc

        if response.status_code >= 400:
            raise GoogleWalletError(
                response.status_code,
                _error_message(response),
                retryable=_is_retryable_status(response.status_code),
            )
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            raise GoogleWalletError(
                response.status_code, "response is not JSON", retryable=False
            ) from exc
        if not isinstance(data, dict):
            raise GoogleWalletError(response.status_code, "response is not a JSON object", retryable=False)
        return data

    @staticmethod
    def _require_id(body: dict[str, Any]) -> str:
        resource_id = body.get("id")
        if not isinstance(resource_id, str) or not resource_id:
            raise ValueError("the resource body needs an 'id' (\"<issuerId>.<suffix>\")")
        return resource_id

    # -- classes -------------------------------------------------------------------
    def get_class(self, class_id: str) -> dict[str, Any]:
        return self._request("GET", self._url("loyaltyClass", class_id))

    def insert_class(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require_id(body)
        return self._request("POST", self._url("loyaltyClass"), body)

    def patch_class(self, class_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("PATCH", self._url("loyaltyClass", class_id), body)

    def ensure_class(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return the class with ``body['id']``, inserting ``body`` if it does not exist.

        An existing class is returned unchanged (use :meth:`patch_class` to
        update it).  A concurrent insert (409) is resolved by reading it back.
        """
        class_id = self._require_id(body)
        try:
            return self.get_class(class_id)
        except GoogleWalletError as exc:
            if not exc.not_found:
                raise
        try:
            return self.insert_class(body)
        except GoogleWalletError as exc:
            if not exc.conflict:
                raise
            return self.get_class(class_id)

    # -- objects -------------------------------------------------------------------
    def get_object(self, object_id: str) -> dict[str, Any]:
        return self._request("GET", self._url("loyaltyObject", object_id))

    def insert_object(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require_id(body)
        return self._request("POST", self._url("loyaltyObject"), body)

    def patch_object(self, object_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("PATCH", self._url("loyaltyObject", object_id), body)

    def add_message(self, object_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """``POST loyaltyObject/{id}/addMessage`` with ``{"message": …}``: the message is added to the pass's
        details; with ``messageType`` ``TEXT_AND_NOTIFY`` the holder is notified too (at most 3 a day per pass)."""
        return self._request("POST", self._url("loyaltyObject", object_id) + "/addMessage", {"message": message})

    def upsert_object(self, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH the object; if it does not exist yet (404), insert it.

        A concurrent insert (409) is resolved by patching again.
        """
        object_id = self._require_id(body)
        try:
            return self.patch_object(object_id, body)
        except GoogleWalletError as exc:
            if not exc.not_found:
                raise
        try:
            return self.insert_object(body)
        except GoogleWalletError as exc:
            if not exc.conflict:
                raise
            return self.patch_object(object_id, body)


def _disable_regional_access_boundary_lookup(credentials: Any) -> None:
    """Best effort: turn off google-auth's regional access boundary lookup.

    Only used when the token endpoint is on loopback (tests, local stand-ins).
    Older google-auth versions have no such lookup; then this does nothing.
    """
    if hasattr(credentials, "_is_regional_access_boundary_lookup_required"):
        credentials._is_regional_access_boundary_lookup_required = lambda: False


# --------------------------------------------------------------------------- #
# Save links
# --------------------------------------------------------------------------- #
class SaveLinkSigner:
    """Makes "Save to Google Wallet" links; the RSA signer is built once."""

    def __init__(
        self,
        service_account_file: str | os.PathLike[str],
        origins: list[str],
        *,
        expires_in: int | None = None,
    ) -> None:
        """``origins``: the sites that show the save button (scheme + host).

        ``expires_in``: optional lifetime in seconds, added as the standard
        ``exp`` claim.  Google's JWT reference lists no ``exp``; leave it
        ``None`` for links that must keep working (e.g. in e-mails).
        """
        with open(service_account_file, encoding="utf-8") as fh:
            info = json.load(fh)
        self.issuer = info["client_email"]
        self.origins = list(origins)
        self.expires_in = expires_in
        self._signer = crypt.RSASigner.from_service_account_info(info)

    def token(
        self, loyalty_object: dict[str, Any], loyalty_class: dict[str, Any] | None = None
    ) -> str:
        """The signed save JWT (without the URL prefix)."""
        payload: dict[str, Any] = {"loyaltyObjects": [loyalty_object]}
        if loyalty_class is not None:
            payload["loyaltyClasses"] = [loyalty_class]
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": "google",
            "typ": "savetowallet",
            "iat": now,
            "origins": self.origins,
            "payload": payload,
        }
        if self.expires_in is not None:
            claims["exp"] = now + self.expires_in
        encoded: bytes = jwt.encode(self._signer, claims)
        return encoded.decode("ascii")

    def save_url(
        self, loyalty_object: dict[str, Any], loyalty_class: dict[str, Any] | None = None
    ) -> str:
        """``https://pay.google.com/gp/v/save/<jwt>`` for the given object (and class)."""
        return SAVE_URL_PREFIX + self.token(loyalty_object, loyalty_class)


# --------------------------------------------------------------------------- #
# Configuration check
# --------------------------------------------------------------------------- #
def check_configuration(
    service_account_file: str | os.PathLike[str] | None, issuer_id: str | int | None
) -> list[str]:
    """Return plain-English problems with a Google Wallet setup (empty when fine)."""
    problems: list[str] = []

    issuer = "" if issuer_id is None else str(issuer_id).strip()
    if not issuer:
        problems.append("The Google Wallet issuer id is not set.")
    elif not issuer.isdigit():
        problems.append(
            f"The Google Wallet issuer id '{issuer}' is not numeric; copy the issuer id "
            "from the Google Pay & Wallet Console."
        )

    if not service_account_file:
        problems.append("No Google service account key file is configured.")
        return problems
    path = str(service_account_file)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        problems.append(f"The service account key file was not found: {path}.")
        return problems
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"The service account key file cannot be read: {path} ({exc}).")
        return problems
    try:
        info = json.loads(text)
    except ValueError:
        problems.append(f"The service account key file is not JSON: {path}.")
        return problems
    if not isinstance(info, dict):
        problems.append(f"The service account key file does not contain a JSON object: {path}.")
        return problems

    missing = [name for name in _REQUIRED_ACCOUNT_FIELDS if not info.get(name)]
    if missing:
        problems.append(
            "The service account key file is missing: " + ", ".join(missing) + "."
        )
    if info.get("type") and info.get("type") != "service_account":
        problems.append(
            f"The key file is of type '{info.get('type')}', not 'service_account'; "
            "create a JSON key for a service account."
        )
    if info.get("private_key"):
        try:
            crypt.RSASigner.from_string(info["private_key"], info.get("private_key_id"))
        except Exception as exc:  # noqa: BLE001 - any parse failure is a config problem
            problems.append(f"The service account private key cannot be parsed ({exc}).")
    return problems
