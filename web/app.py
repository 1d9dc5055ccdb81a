"""The Flask application factory. One blueprint per area; for now the
public pages (programme overview and the trade-promotion catalogue)."""
from __future__ import annotations

import os

from flask import Flask

from engine.engine import OcopEngine
from storage.db import Database


def create_app(database_url: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("OCOP_SECRET_KEY", "dev-only-change-me")
    app.extensions["ocop_engine"] = (OcopEngine(Database(database_url)) if database_url
                                     else OcopEngine.from_environment())

    from web.public import public
    app.register_blueprint(public)

    @app.after_request
    def security_headers(response):
        # Nothing is loaded from another host, and no inline script runs.
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; script-src 'self'; frame-ancestors 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return app
