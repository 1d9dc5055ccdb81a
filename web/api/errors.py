"""The JSON API's errors: the stable error codes and their HTTP statuses,
ApiError for a view to raise, and the one handler that turns anything
raised under /api/v1 -- engine errors, invalid data, HTTP and routing
errors, a database out of reach, a bug -- into the JSON error body
{"error": {"code", "message", "fields"?}}.

The app-wide error pages (web/errors.py) hand requests under /api/ to
json_error, so an error Flask answers by status code is JSON here too.
"""
from __future__ import annotations

from flask import current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from engine.errors import (
    AlreadyInCycle,
    ClaimedByOther,
    ConcurrencyConflict,
    FormInvalid,
    InstanceNotRunning,
    NoActiveDefinition,
    NotAllowed,
    OcopError,
    RegistrationClosed,
    ServiceTaskFailed,
    TaskNotReady,
    UnknownTask,
)
from web.api import api
from web.api.schemas import ErrorSchema
from web.errors import RETRY_AFTER_SECONDS, UNAVAILABLE_MESSAGE, database_unavailable, log_unavailable

# code -> HTTP status. service_failed is 502: a service-task handler (an
# upstream of this request) refused or failed and the whole step was rolled
# back; it is not the caller's data that is wrong (422) nor a state clash the
# caller could resolve by reloading (409).
ERROR_CODES = {
    "unauthenticated": 401,
    "forbidden": 403,
    "csrf_failed": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "registration_closed": 409,
    "no_active_definition": 409,
    "invalid": 422,
    "service_failed": 502,
    "internal": 500,
    "unavailable": 503,  # the database is out of reach (web/errors.py); Retry-After says when to retry
}
# Engine errors in the API's terms (first match wins; FormInvalid is handled apart).
ENGINE_ERRORS = (
    (UnknownTask, "not_found"),
    (NotAllowed, "forbidden"),
    (RegistrationClosed, "registration_closed"),
    (NoActiveDefinition, "no_active_definition"),
    ((AlreadyInCycle, ClaimedByOther, ConcurrencyConflict, TaskNotReady, InstanceNotRunning), "conflict"),
    (ServiceTaskFailed, "service_failed"),
)
HTTP_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


class ApiError(Exception):
    """An answer with one of ERROR_CODES, a message for the caller and,
    for invalid data, messages per field."""

    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields


def error_response(code: str, message: str, fields: dict | None = None, status: int | None = None,
                   headers: dict | None = None):
    error = {"code": code, "message": message}
    if fields:
        error["fields_"] = fields
    response = jsonify(ErrorSchema().dump({"error": error}))
    response.status_code = status or ERROR_CODES[code]
    if code == "unauthenticated":
        response.headers["WWW-Authenticate"] = 'Bearer realm="ocop-flow"'
    response.headers |= headers or {}
    return response


@api.errorhandler(Exception)
def json_error(err: Exception):
    """One handler for everything raised under /api/v1 (before_request
    included): known errors get their code, the rest a bare 500."""
    if isinstance(err, ApiError):
        return error_response(err.code, err.message, err.fields)
    if isinstance(err, FormInvalid):
        return error_response("invalid", "Dữ liệu biểu mẫu không hợp lệ / the form data is invalid", err.errors)
    if isinstance(err, ValidationError):
        return error_response("invalid", "Dữ liệu không hợp lệ / invalid request data", err.messages)
    for types, code in ENGINE_ERRORS:
        if isinstance(err, types):
            return error_response(code, str(err))
    if isinstance(err, OcopError):
        return error_response("conflict", str(err))
    # The engine's "no such product/instance" (a bare LookupError; a KeyError
    # from a bug must stay a 500, not pass for a missing thing).
    if type(err) is LookupError:
        return error_response("not_found", "not found")
    if database_unavailable(err):
        log_unavailable(err)
        return error_response("unavailable", UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(err, HTTPException):
        headers = {"Allow": ", ".join(err.valid_methods or ())} if isinstance(err, MethodNotAllowed) else None
        # 400, 413, ...: something wrong with the request itself keeps its status, code 'invalid'.
        return error_response(HTTP_CODES.get(err.code, "invalid"), err.description or err.name,
                              status=err.code or 400, headers=headers)
    current_app.logger.exception("API request failed")
    return error_response("internal", "internal error")


@api.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown_route(unknown: str):
    """Unmatched paths under /api/v1 (and known paths with a method they do
    not take) answer JSON here: a blueprint's error handlers never see a
    routing failure, and an app-wide 404 handler would belong to every page."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST", "DELETE"):
        try:
            endpoint, _args = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != "api.unknown_route":
            allowed.append(method)
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed, description=f"use {', '.join(allowed)}")
    raise NotFound("no such API endpoint")
