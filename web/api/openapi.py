"""The JSON API's OpenAPI 3 document (/api/v1/openapi.json), built from the
routes themselves: each view declares its request and response schemas
with `documented`, beside its code, so the published contract cannot drift
from what the views do."""
from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app, jsonify
from marshmallow import Schema

import web.api as api_package
from web.api import api
from web.api.errors import ERROR_CODES
from web.api.schemas import ErrorSchema

_DOCS: dict[str, dict] = {}  # view function name -> how to describe it
_PATH_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")


def documented(summary: str, tag: str, response: type[Schema] | None = None, status: int = 200,
               body=None, query: type[Schema] | None = None, errors: tuple[int, ...] = (401,),
               body_required: bool = True):
    """Record a view's request and response schemas; openapi() turns them into
    the document, so every route carries its contract next to its code.
    `body` may be a function building the schema (read when the document
    is first asked for); the view's docstring is the operation's description."""
    def wrap(view):
        _DOCS[view.__name__] = {
            "summary": summary, "tag": tag, "response": response, "status": status, "body": body,
            "body_required": body_required, "query": query, "errors": errors,
            "description": (view.__doc__ or "").strip()}
        return view
    return wrap


@api.get("/openapi.json")
@documented("This document (OpenAPI 3)", "meta", errors=())
def openapi():
    spec = current_app.extensions.get("ocop_openapi")
    if spec is None:  # built once per application: routes do not change at run time
        spec = current_app.extensions["ocop_openapi"] = _build_spec()
    return jsonify(spec)


def _build_spec() -> dict:
    spec = APISpec(
        title="ocop-flow API", version="1", openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
        info={"description": api_package.__doc__},
        security=[{"bearerAuth": []}, {"sessionCookie": []}])
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "A personal API token (POST /api/v1/tokens or the administration pages)."})
    spec.components.security_scheme("sessionCookie", {
        "type": "apiKey", "in": "cookie", "name": "session",
        "description": "The browser session; POST and DELETE also need the X-CSRFToken header."})
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.unknown_route":
            continue
        doc = _DOCS[rule.endpoint.split(".", 1)[1]]
        path = _PATH_ARGUMENT.sub(r"{\2}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, doc)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(rule, doc: dict) -> dict:
    operation = {"summary": doc["summary"], "tags": [doc["tag"]], "responses": {}}
    if doc["description"]:
        operation["description"] = doc["description"]
    parameters = [{"in": "path", "name": name, "required": True,
                   "schema": {"type": "integer" if converter == "int" else "string"}}
                  for converter, name in _PATH_ARGUMENT.findall(rule.rule)]
    if doc["query"] is not None:
        parameters.append({"in": "query", "schema": doc["query"]})
    if parameters:
        operation["parameters"] = parameters
    body = doc["body"]
    if body is not None:
        if callable(body) and not isinstance(body, type):  # built on demand (form schemas read criteria data)
            body = body()
        operation["requestBody"] = {"required": doc["body_required"], "content": {"application/json": {"schema": body}}}
    if doc["response"] is not None:
        operation["responses"][str(doc["status"])] = {
            "description": "OK", "content": {"application/json": {"schema": doc["response"]}}}
    else:
        operation["responses"][str(doc["status"])] = {"description": "OK"}
    for status in doc["errors"]:
        codes = ", ".join(code for code, code_status in ERROR_CODES.items() if code_status == status)
        operation["responses"][str(status)] = {
            "description": f"error codes: {codes}", "content": {"application/json": {"schema": ErrorSchema}}}
    if body is not None:  # a body past MAX_CONTENT_LENGTH is refused before the view runs
        operation["responses"]["413"] = {
            "description": "error code: invalid (the request body is too large)",
            "content": {"application/json": {"schema": ErrorSchema}}}
    if "401" not in operation["responses"] and doc["errors"] == ():
        operation["security"] = []  # public
    return operation
