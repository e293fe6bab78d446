"""The shop's pages: owners (programs, staff, customers, dashboard, exports, poster) and the staff tablet."""
from flask import Blueprint

bp = Blueprint("vendor", __name__)


@bp.record_once
def _init_login(state):
    """Sessions for the pages. (create_app does not initialise Flask-Login itself; web.init_web configures it.)"""
    from ...extensions import login_manager

    if not hasattr(state.app, "login_manager"):
        login_manager.init_app(state.app)

from . import guard  # noqa: E402,F401  (before_request: login, role, suspended shops)
from . import views  # noqa: E402,F401
