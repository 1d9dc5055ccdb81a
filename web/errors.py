"""When the database cannot be reached: 503 with Retry-After, never a bare 500.

A stopped or restarting server, a dropped or killed connection, a full
connection pool: the request could not be served now and may succeed in a
moment. Pages answer a standalone bilingual page (Vietnamese first, English
second) rendered without touching the database -- no user loader, no
notification count, none of the layout's context processors; the JSON API
answers its own error format with code `unavailable` (web/api/errors.py
uses `database_unavailable` and the message below).

Other database errors (an integrity violation, a bad statement) are bugs or
races the code should have handled: they stay 500 and are logged with their
traceback as before.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from engine.errors import ProcessRefused
from web.context import BadQueryValue

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


# Status -> (Vietnamese title, text; English title, text) for the error pages.
HTTP_ERRORS = {
    400: ("Yêu cầu không hợp lệ", "Máy chủ không hiểu yêu cầu này.",
          "Bad request", "The server could not understand this request."),
    403: ("Không có quyền", "Tài khoản của bạn không được làm việc này.",
          "Not allowed", "Your account may not do this."),
    404: ("Không tìm thấy", "Trang hoặc hồ sơ này không có, hoặc bạn không được xem.",
          "Not found", "This page or record does not exist, or you may not see it."),
    405: ("Không hỗ trợ", "Trang này không nhận yêu cầu kiểu này.",
          "Method not allowed", "This page does not accept this kind of request."),
    413: ("Tệp quá lớn", "Tệp hoặc biểu mẫu gửi lên vượt quá giới hạn cho phép.",
          "Too large", "The file or form sent is larger than allowed."),
    429: ("Quá nhiều lần thử", "Vui lòng đợi một lát rồi thử lại.",
          "Too many attempts", "Please wait a moment and try again."),
    500: ("Lỗi hệ thống", "Đã xảy ra lỗi ngoài ý muốn; sự cố đã được ghi lại.",
          "Server error", "Something went wrong on our side; it has been logged."),
}
CSRF_EXPIRED = ("Biểu mẫu đã hết hạn", "Biểu mẫu không còn hiệu lực hoặc không gửi từ trang này. "
                "Vui lòng tải lại trang rồi gửi lại.",
                "Form expired", "The form is no longer valid or was not sent from this site. "
                "Reload the page and send it again.")


def http_error_page(err: HTTPException):
    """Pages' 4xx/5xx answers in both languages, standalone like the 503
    page (a 500 may come from the database, and the text must not depend on
    the session's language choice). Under /api/ the API's own JSON errors
    answer instead (Flask looks for handlers by status code before the API
    blueprint's catch-all)."""
    if request.blueprint == "api" or request.path.startswith("/api/"):
        from web.api.errors import json_error  # web.api.errors imports this module
        return json_error(err)
    messages = CSRF_EXPIRED if isinstance(err, CSRFError) else HTTP_ERRORS[err.code]
    if isinstance(err, BadQueryValue):  # say which value and what it should be
        messages = (messages[0], err.vietnamese, messages[2], err.english)
    html = current_app.jinja_env.get_template("errors/http_error.html").render(
        status=err.code, kind="csrf" if isinstance(err, CSRFError) else err.code, messages=messages, back=_retry_path() if err.code >= 500 else None)
    response = err.get_response()
    response.set_data(html)
    response.content_type = "text/html; charset=utf-8"
    return response


# The diagram made the engine refuse (engine.errors.ProcessRefused): nothing
# was saved, and nobody but a program manager can change that. The error's
# own message (Vietnamese, then English) says where.
PROCESS_REFUSED_STATUS = 409
PROCESS_REFUSED = ("Quy trình không chạy tiếp được",
                   "Sơ đồ quy trình của sản phẩm này không cho làm bước này; chưa có gì được lưu. "
                   "Hãy báo quản lý chương trình của tỉnh.",
                   "The process cannot go on",
                   "The diagram this product runs on refused this step; nothing was saved. "
                   "Tell the province's program manager.")


def process_refused_page(err: ProcessRefused):
    """Any page whose engine call the diagram refused (a loop that never
    exits, a task in a lane that is no role, an expression that cannot be
    evaluated): a 409 page saying so, never a 500. Logged for the operator:
    the diagram needs fixing."""
    current_app.logger.warning("engine refused (%s %s) at %s: %s", request.method, request.path,
                               err.element, err)
    vi_title, vi_text, en_title, en_text = PROCESS_REFUSED
    html = current_app.jinja_env.get_template("errors/http_error.html").render(
        status=PROCESS_REFUSED_STATUS, kind="process_refused",
        messages=(vi_title, f"{vi_text} ({err})", en_title, en_text), back=None)
    return html, PROCESS_REFUSED_STATUS, {"Content-Type": "text/html; charset=utf-8"}


def register(app: Flask) -> None:
    """App-wide handlers (blueprints with their own, like the API's, answer
    in their own format first)."""
    app.register_error_handler(ProcessRefused, process_refused_page)
    app.register_error_handler(DBAPIError, unavailable_page)
    app.register_error_handler(PoolTimeout, unavailable_page)
    for status in HTTP_ERRORS:
        app.register_error_handler(status, http_error_page)
