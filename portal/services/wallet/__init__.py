"""Wallet protocol layer: Apple Wallet (.pkpass signing, APNs pass-update pushes)
and Google Wallet (REST objects, save links).

Everything in this package is pure protocol code: it knows nothing about the
database or Flask. Modules:

* :mod:`portal.services.wallet.apple_pass` -- ``PassSigner``, ``build_pkpass``,
  ``encode_pass_strings``, ``check_configuration``.
* :mod:`portal.services.wallet.apns` -- ``ApnsClient`` / ``PushResult``.
* :mod:`portal.services.wallet.google` -- ``GoogleWalletClient``,
  ``SaveLinkSigner``, ``check_configuration``.
"""
