"""Who may see which vendor page, checked once for the whole blueprint.

* Anonymous visitors are sent to the login page (except for the login page itself).
* A suspended shop's users get the 403 page on every request, even with a session opened before the suspension.
* Staff accounts may only use the tablet (and log out / change their password); admins use /admin/.
* The vendor's language applies to every page (``g.default_locale``), the user's own preference first.
"""
from __future__ import annotations

from flask import abort, g, redirect, request, url_for
from flask_login import current_user

from ...services.errors import VendorSuspended
from . import bp

PUBLIC_ENDPOINTS = {"vendor.login", "vendor.logout", "vendor.logout_confirm"}
ANY_ROLE_ENDPOINTS = {"vendor.password", "vendor.home"}
STAFF_ENDPOINTS = {"vendor.tablet", "vendor.tablet_search", "vendor.tablet_card", "vendor.tablet_action",
                   "vendor.tablet_undo"}


@bp.before_request
def guard():
    endpoint = request.endpoint or ""
    if current_user.is_authenticated:
        g.user_locale = current_user.locale
        vendor = current_user.vendor
        if vendor is not None:
            g.vendor = vendor
            g.default_locale = vendor.locale
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("vendor.login", next=request.full_path if request.method == "GET" else None))
    if not current_user.is_active:
        abort(403)
    if endpoint in ANY_ROLE_ENDPOINTS:
        if current_user.vendor is not None and not current_user.vendor.active:
            raise VendorSuspended()
        return None
    if current_user.role == "admin" or current_user.vendor is None:
        abort(403)
    if not current_user.vendor.active:
        raise VendorSuspended()
    if current_user.role == "staff" and endpoint not in STAFF_ENDPOINTS:
        abort(403)
    return None
