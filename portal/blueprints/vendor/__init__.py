from flask import Blueprint

bp = Blueprint("vendor", __name__)

from . import views  # noqa: E402,F401
