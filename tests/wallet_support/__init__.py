"""Test infrastructure for the wallet protocol layer.

* :mod:`tests.wallet_support.ca` -- a throw-away PKI shaped like Apple's
  (root -> "WWDR" intermediate -> Pass Type ID certificate) plus a TLS server
  certificate for loopback stand-ins.
* :mod:`tests.wallet_support.apns_standin` -- an HTTP/2 + mutual-TLS APNs
  stand-in on 127.0.0.1.
* :mod:`tests.wallet_support.google_standin` -- an OAuth token endpoint and
  Google Wallet REST stand-in on 127.0.0.1, plus service-account files.
"""
