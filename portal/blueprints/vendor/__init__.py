"""The shop's pages: owners (programs, staff, customers, dashboard, exports, poster) and the staff tablet."""
from flask import Blueprint

bp = Blueprint("vendor", __name__)


from . import guard  # noqa: E402,F401  (before_request: login, role, suspended shops)
from . import views  # noqa: E402,F401
