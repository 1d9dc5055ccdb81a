"""JSON API, /api/v1: the inbox, products, instances and diagrams for
programs, with the same authorization as the pages.

Authentication, per request:
- `Authorization: Bearer <token>`: a personal API token (only its sha256
  is stored, in ApiToken). A request carrying the header is judged by the
  token alone, never by a cookie that happens to come with it.
- otherwise the browser session (Flask-Login). The blueprint is exempt from
  Flask-WTF's form CSRF check (web/app.py), so it checks here: a session
  request that changes anything must send the CSRF token in X-CSRFToken.
  A cross-site form post carries the cookie but cannot know the token.
  Token requests need no CSRF token: a browser never adds the header by itself.

Errors are always JSON, {"error": {"code", "message", "fields"?}}, with a
stable code (see ERROR_CODES below; also in the OpenAPI document). Things
outside the caller's area answer not_found, exactly like things that do not
exist, so the API never confirms what it will not show.
"""
# The docstring above is also the OpenAPI document's description
# (web/api/openapi.py), word for word: ERROR_CODES is in web/api/errors.py.
from __future__ import annotations

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")

# Each module adds its routes, or its request and error handlers, to `api`.
# Imported after `api` exists: they import it from here.
from web.api import (  # noqa: E402, F401
    authentication,
    definitions,
    errors,
    openapi,
    products,
    tasks,
    tokens,
)
