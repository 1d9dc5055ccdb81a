"""The Flask application factory: configuration, extensions, one blueprint
per area (public pages, sign-in, officers' inbox, producers' portal,
administration, JSON API)."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, request, session
from flask_babel import lazy_gettext

from engine.bpmn_engine import BpmnEngine
from storage.db import Database
from web import errors, formatting
from web.extensions import babel, csrf, limiter, login_manager

LANGUAGES = ("vi", "en")
DEV_SECRET = "dev-only-not-secret"


def create_app(database_url: str | None = None, testing: bool = False,
               overrides: dict | None = None) -> Flask:
    app = Flask(__name__)
    production = os.environ.get("OCOP_ENV") == "production"
    secret = os.environ.get("OCOP_SECRET_KEY", "")
    if production and len(secret) < 32:
        raise RuntimeError("OCOP_SECRET_KEY (at least 32 characters) is required in production")
    app.config.update(
        SECRET_KEY=secret or DEV_SECRET,
        TESTING=testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=production,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        UPLOAD_DIR=os.environ.get("OCOP_UPLOAD_DIR", str(Path("instance") / "uploads")),
        AUDIT_KEY_FILE=None,  # None: OCOP_AUDIT_KEY_FILE, else instance/audit_signing_key.pem
        BABEL_DEFAULT_LOCALE="vi",
        BABEL_DEFAULT_TIMEZONE="Asia/Ho_Chi_Minh",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        WTF_CSRF_TIME_LIMIT=None,
    )
    # Explicit, because the limiter is shared and otherwise keeps the last
    # app's setting (tests build apps with and without it). OCOP_RATELIMIT=0
    # is for load tests and benchmarks, where every client signs in from
    # one loopback address.
    app.config["RATELIMIT_ENABLED"] = os.environ.get("OCOP_RATELIMIT", "1") != "0"
    app.config.update(overrides or {})
    app.extensions["ocop_engine"] = (BpmnEngine(Database(database_url)) if database_url
                                     else BpmnEngine.from_environment())

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Vui lòng đăng nhập để tiếp tục.")
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_locale)
    formatting.register(app)
    errors.register(app)  # database out of reach: 503 pages, not 500

    from web.admin import admin
    from web.api import api
    from web.audit import audit
    from web.auth import auth
    from web.certificates import certificates
    from web.checkpoints import checkpoint_pages
    from web.councils import councils
    from web.dashboard import dashboard
    from web.definitions import definitions
    from web.inbox import inbox
    from web.incidents import incidents
    from web.lifecycle import lifecycle
    from web.modeler import modeler
    from web.notifications import notifications
    from web.portal import portal
    from web.public import public
    from web.reports import reports
    from web.rounds import rounds_pages
    for blueprint in (public, auth, inbox, portal, admin, definitions, api, modeler, audit, checkpoint_pages,
                      dashboard, notifications, incidents, councils, reports, certificates, lifecycle, rounds_pages):
        app.register_blueprint(blueprint)
    from web.revocations import revocations_pages  # issue 16: revocation, inspection after recognition
    app.register_blueprint(revocations_pages)
    csrf.exempt(api)  # the API authenticates each request; it sets no cookies

    @app.context_processor
    def template_helpers():
        from flask_babel import format_decimal, get_locale
        return {"get_locale": get_locale, "format_decimal": format_decimal}

    @app.before_request
    def remember_language():
        if request.args.get("lang") in LANGUAGES:
            session["lang"] = request.args["lang"]

    @app.after_request
    def security_headers(response):
        # Nothing is loaded from another host, and no inline script runs.
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; script-src 'self'; style-src 'self'; "
                                    "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                    "frame-ancestors 'none'; form-action 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if app.config["SESSION_COOKIE_SECURE"]:  # production is HTTPS only, from the first visit on
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # A signed-in user's pages and data stay out of browser and proxy
        # caches (the back button after signing out shows nothing); static
        # files and responses that set their own caching keep it.
        if request.endpoint != "static" and "Cache-Control" not in response.headers and "_user_id" in session:
            response.headers["Cache-Control"] = "no-store"
        return response

    return app


def _locale() -> str:
    return session.get("lang") or request.accept_languages.best_match(LANGUAGES) or "vi"
