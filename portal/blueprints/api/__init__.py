"""The JSON API under /api/v1: vendor, admin and public groups, plus the OpenAPI document."""
import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify

from ...extensions import csrf
from .admin import bp as admin_bp
from .public import bp as public_bp
from .vendor import bp as vendor_bp

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")
api_bp.register_blueprint(vendor_bp)
api_bp.register_blueprint(admin_bp)
api_bp.register_blueprint(public_bp)
from .apple import bp as apple_bp; api_bp.register_blueprint(apple_bp)  # noqa: E402,E702 (wallet web service)
from .google import bp as google_bp; api_bp.register_blueprint(google_bp)  # noqa: E402,E702 (Google callbacks)
# Bearer tokens, not cookies: no CSRF surface. Nested blueprints are exempted one by one.
for _bp in (api_bp, vendor_bp, admin_bp, public_bp, apple_bp, google_bp):
    csrf.exempt(_bp)

SPEC_PATH = Path(__file__).resolve().parents[2] / "api_spec" / "openapi.json"


@api_bp.get("/openapi.json")
def openapi():
    spec = json.loads(SPEC_PATH.read_text())
    spec["servers"] = [{"url": current_app.config["PUBLIC_BASE_URL"] + "/api/v1"}]
    return jsonify(spec)
