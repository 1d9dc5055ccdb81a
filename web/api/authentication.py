"""Who calls the JSON API, decided before every view under /api/v1: a
personal API token (`Authorization: Bearer <token>`, judged by the token
alone) or else the browser session, whose changes need the CSRF token in
X-CSRFToken (the blueprint is exempt from Flask-WTF's form check).

Views read the caller's actor with caller(); `g.api_via` says how it came
("token" or "session"), since a token may not mint further tokens.
"""
from __future__ import annotations

from flask import g, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError as CsrfValidationError

from engine.access import Actor
from programme.tokens import TokenRefused, authenticate_token
from web.api import api
from web.api.errors import ApiError
from web.context import bpmn_engine, db

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PUBLIC_ENDPOINTS = ("api.openapi", "api.unknown_route")


@api.before_request
def authenticate():
    g.api_via = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("unauthenticated", "expected 'Authorization: Bearer <token>'")
        try:
            holder = authenticate_token(db(), token.strip(), bpmn_engine().clock())
        except TokenRefused as refused:
            raise ApiError("unauthenticated", str(refused)) from None
        g.api_actor, g.api_token_id = holder.actor, holder.token_id
        g.api_via = "token"
        return
    if not current_user.is_authenticated:  # the loader already refuses deactivated users
        raise ApiError("unauthenticated", "sign in or send an API token")
    if request.method not in SAFE_METHODS:
        try:
            validate_csrf(request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token"))
        except CsrfValidationError as err:
            raise ApiError("csrf_failed", f"session requests that change data need the X-CSRFToken "
                                          f"header ({err})") from None
    g.api_actor = current_user.actor
    g.api_via = "session"


def caller() -> Actor:
    """The actor of the request being served (set by authenticate)."""
    return g.api_actor
