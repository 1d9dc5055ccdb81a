"""When the database cannot be reached: 503 with Retry-After, never a bare 500.

A stopped or restarting server, a dropped or killed connection, a full
connection pool: the request could not be served now and may succeed in a
moment. Pages answer a standalone bilingual page (Vietnamese first, English
second) rendered without touching the database -- no user loader, no
notification count, none of the layout's context processors; the JSON API
answers its own error format with code `unavailable` (web/api.py uses
`database_unavailable` and the message below).

Other database errors (an integrity violation, a bad statement) are bugs or
races the code should have handled: they stay 500 and are logged with their
traceback as before.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

RETRY_AFTER_SECONDS = 30
UNAVAILABLE_MESSAGE = ("Cơ sở dữ liệu tạm thời không truy cập được; vui lòng thử lại sau ít phút / "
                       "the database cannot be reached right now; please try again in a moment")


def database_unavailable(err: BaseException) -> bool:
    """The database (or a connection to it) is out of reach, as opposed to
    a statement that failed on a working connection. OperationalError covers
    a refused or dropped connection and a terminated backend; InterfaceError
    a connection already closed; any other DBAPI error that SQLAlchemy
    recognised as a disconnect has `connection_invalidated`; PoolTimeout is
    every pooled connection busy for too long."""
    if isinstance(err, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return isinstance(err, DBAPIError) and err.connection_invalidated


def log_unavailable(err: BaseException) -> None:
    """One line for the operator, without a traceback: the cause is outside
    the code, and a flood of tracebacks would hide real bugs."""
    detail = str(getattr(err, "orig", None) or err).strip().splitlines()
    current_app.logger.warning("database unavailable (%s %s): %s %s", request.method, request.path,
                               type(err).__name__, detail[0] if detail else "")


def unavailable_page(err: BaseException):
    if not database_unavailable(err):
        raise err  # not ours: Flask logs it and answers 500 as for any other bug
    log_unavailable(err)
    # The template itself, not render_template: that would run every context
    # processor, and Flask-Login's loads the signed-in user from the database.
    html = current_app.jinja_env.get_template("errors/unavailable.html").render(
        retry_after=RETRY_AFTER_SECONDS, path=_retry_path())
    return html, 503, {"Retry-After": str(RETRY_AFTER_SECONDS), "Content-Type": "text/html; charset=utf-8",
                       "Cache-Control": "no-store"}


def _retry_path() -> str | None:
    """The page to try again: this one for a GET (a local path only, never
    '//host'); none after a form post, which the browser would not repeat."""
    if request.method != "GET":
        return None
    path = request.full_path.rstrip("?")
    return path if path.startswith("/") and not path.startswith("//") else "/"


def register(app: Flask) -> None:
    """App-wide handlers (blueprints with their own, like the API's, answer
    in their own format first)."""
    app.register_error_handler(DBAPIError, unavailable_page)
    app.register_error_handler(PoolTimeout, unavailable_page)
