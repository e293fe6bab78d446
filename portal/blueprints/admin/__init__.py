"""Operators' pages (role admin): vendors, all programs with their figures, platform statistics, ledger check."""
from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def _admins_only():
    if not current_user.is_authenticated:
        return redirect(url_for("vendor.login", next=request.full_path))
    if current_user.role != "admin" or not current_user.is_active:
        abort(403)
    return None


from . import views  # noqa: E402,F401
