"""Wallet protocol layer: Apple Wallet (.pkpass signing, APNs pass-update pushes)
and Google Wallet (REST objects, save links).

Everything in this package is pure protocol code: it knows nothing about the
database or Flask. Modules:

* :mod:`portal.services.wallet.apple_pass` -- ``PassSigner``, ``build_pkpass``,
  ``encode_pass_strings``, ``check_configuration``.
* :mod:`portal.services.wallet.apns` -- ``ApnsClient`` / ``PushResult``.
* :mod:`portal.services.wallet.google` -- ``GoogleWalletClient``,
  ``SaveLinkSigner``, ``check_configuration``.

The product side, built on that layer (these modules use Flask and the database):

* :mod:`~portal.services.wallet.settings` -- which wallets are configured; per-app cached PassSigner and
  SaveLinkSigner.
* :mod:`~portal.services.wallet.passes` -- pass.json, localised ``pass.strings`` and images of a card's pass.
* :mod:`~portal.services.wallet.images` -- default icon/logo PNGs (a tiny PNG writer); uploaded logos checked and
  re-encoded (Pillow).
* :mod:`~portal.services.wallet.google_objects` -- LoyaltyClass / LoyaltyObject bodies.
* :mod:`~portal.services.wallet.links` -- ``for_card(card)``: the "Add to … Wallet" links.
* :mod:`~portal.services.wallet.apple_service` -- device registrations and "which passes changed".
* :mod:`~portal.services.wallet.worker` -- delivers the wallet outbox (APNs pushes, Google updates).
* :mod:`~portal.services.wallet.cli` -- ``loyalty wallet-worker`` and ``loyalty wallet-check``.
"""
