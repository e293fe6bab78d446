"""Thin edges: parse input, call one service, render."""


def register_blueprints(app):
    from .admin import bp as admin_bp
    from .api import api_bp
    from .public import bp as public_bp
    from .vendor import bp as vendor_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(vendor_bp)
    app.register_blueprint(admin_bp)
