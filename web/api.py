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
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from datetime import datetime, timedelta

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from marshmallow import Schema, ValidationError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, aliased, joinedload
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from wtforms.validators import ValidationError as CsrfValidationError

from audit.chain import verify_chain
from engine.access import Actor, load_actor, may_read_product, readable_products
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
from engine.forms import FORMS, form_schema
from programme.inbox import PAGE_SIZE, InboxFilter, counts, list_tasks
from storage.db import as_utc
from storage.models import (
    ApiToken,
    AuditEvent,
    InboxTask,
    Jurisdiction,
    ProcessDefinition,
    ProcessInstance,
    Producer,
    Product,
    User,
)
from web.api_schemas import (
    DefinitionListSchema,
    ErrorSchema,
    HistorySchema,
    InstanceSchema,
    PageQuerySchema,
    ProductListSchema,
    StartProductSchema,
    StepResultSchema,
    TaskEnvelopeSchema,
    TaskListSchema,
    TaskQuerySchema,
    TokenCreatedSchema,
    TokenCreateSchema,
    TokenListSchema,
    TokenSchema,
)
from web.context import bpmn_engine, db
from web.errors import RETRY_AFTER_SECONDS, UNAVAILABLE_MESSAGE, database_unavailable, log_unavailable

api = Blueprint("api", __name__, url_prefix="/api/v1")

TOKEN_PREFIX = "ocop_"  # makes a leaked token recognisable (secret scanners, logs)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PRODUCT_PAGE_SIZE = 50
# last_used_at is written at most this often per token: a busy integration
# would otherwise turn every read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)

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


class ApiError(Exception):
    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields


# --- errors: always JSON --------------------------------------------------------

def _error_response(code: str, message: str, fields: dict | None = None, status: int | None = None,
                    headers: dict | None = None):
    error = {"code": code, "message": message}
    if fields:
        error["fields_"] = fields
    response = jsonify(ErrorSchema().dump({"error": error}))
    response.status_code = status or ERROR_CODES[code]
    if code == "unauthenticated":
        response.headers["WWW-Authenticate"] = 'Bearer realm="ocop-flow"'
    response.headers.update(headers or {})
    return response


HTTP_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


@api.errorhandler(Exception)
def _any_error(err: Exception):
    """One handler for everything raised under /api/v1 (before_request
    included): known errors get their code, the rest a bare 500."""
    if isinstance(err, ApiError):
        return _error_response(err.code, err.message, err.fields)
    if isinstance(err, FormInvalid):
        return _error_response("invalid", "Dữ liệu biểu mẫu không hợp lệ / the form data is invalid", err.errors)
    if isinstance(err, ValidationError):
        return _error_response("invalid", "Dữ liệu không hợp lệ / invalid request data", err.messages)
    for types, code in ENGINE_ERRORS:
        if isinstance(err, types):
            return _error_response(code, str(err))
    if isinstance(err, OcopError):
        return _error_response("conflict", str(err))
    # The engine's "no such product/instance" (a bare LookupError; a KeyError
    # from a bug must stay a 500, not pass for a missing thing).
    if type(err) is LookupError:
        return _error_response("not_found", "not found")
    if database_unavailable(err):
        log_unavailable(err)
        return _error_response("unavailable", UNAVAILABLE_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(err, HTTPException):
        headers = {"Allow": ", ".join(err.valid_methods or ())} if isinstance(err, MethodNotAllowed) else None
        # 400, 413, ...: something wrong with the request itself keeps its status, code 'invalid'.
        return _error_response(HTTP_CODES.get(err.code, "invalid"), err.description or err.name,
                               status=err.code or 400, headers=headers)
    current_app.logger.exception("API request failed")
    return _error_response("internal", "internal error")


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


# --- authentication -------------------------------------------------------------

def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, user_id: int, name: str, now: datetime) -> tuple[ApiToken, str]:
    """A new token for the user: the row (holding only the digest) and the
    secret, which the caller shows once. 32 random bytes: guessing is hopeless,
    so a plain indexed lookup by digest is safe."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, name=name.strip(), token_sha256=_token_digest(secret), created_at=now)
    session.add(row)
    session.flush()
    return row, secret


# Built once, plain Core: every API request runs it.
_tokens, _users = ApiToken.__table__, User.__table__
_TOKEN_WITH_USER = (
    select(_tokens.c.id, _tokens.c.revoked_at, _tokens.c.last_used_at, _tokens.c.user_id,
           _users.c.is_active, _users.c.full_name)
    .join(_users, _users.c.id == _tokens.c.user_id).where(_tokens.c.token_sha256 == bindparam("digest")))
_TOKEN_USED = update(_tokens).where(_tokens.c.id == bindparam("token_id")).values(last_used_at=bindparam("at"))


def _actor_for_token(token: str) -> tuple[Actor, int]:
    now = bpmn_engine().clock()
    with db().statements() as connection:
        row = connection.execute(_TOKEN_WITH_USER, {"digest": _token_digest(token)}).first()
        if row is None or row.revoked_at is not None:
            raise ApiError("unauthenticated", "unknown or revoked API token")
        if not row.is_active:
            raise ApiError("unauthenticated", "the token's account is deactivated")
        actor = load_actor(connection, row.user_id, row.full_name)
        if row.last_used_at is None or as_utc(row.last_used_at) < now - LAST_USED_PRECISION:
            connection.execute(_TOKEN_USED, {"token_id": row.id, "at": now})
        return actor, row.id


PUBLIC_ENDPOINTS = ("api.openapi", "api.unknown_route")


@api.before_request
def _authenticate():
    g.api_via = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("unauthenticated", "expected 'Authorization: Bearer <token>'")
        g.api_actor, g.api_token_id = _actor_for_token(token.strip())
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


def _actor() -> Actor:
    return g.api_actor


# --- helpers ----------------------------------------------------------------------

def _json_body(optional: bool = False) -> dict:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # JSON nested past the parser's recursion limit: no form either
        data = None
    if data is None and optional and not request.get_data():
        return {}
    if not isinstance(data, dict):
        raise ApiError("invalid", "expected a JSON object body (Content-Type: application/json)",
                       {"_schema": ["JSON object expected"]})
    return data


@functools.lru_cache(maxsize=None)
def _schema(schema_class: type[Schema]) -> Schema:
    """One instance per response schema: marshmallow copies every declared
    field when a schema is made, which costs more than dumping a step's
    result; dumping keeps no state in the instance."""
    return schema_class()


def _dump(schema_class: type[Schema], value, status: int = 200):
    response = jsonify(_schema(schema_class).dump(value))
    response.status_code = status
    return response


def _may_see_instance(actor: Actor, instance: ProcessInstance | None) -> bool:
    return instance is not None and may_read_product(
        actor, instance.product.producer_id if instance.product else None, instance.areas.values())


def _visible_products(actor: Actor):
    """Products the actor may read (engine.access.readable_products). The
    commune's ancestors are joined (at most three levels above it) instead
    of expanding areas into long lists of commune ids."""
    commune = aliased(Jurisdiction)
    up1, up2 = aliased(Jurisdiction), aliased(Jurisdiction)
    query = (select(Product, Producer, commune)
             .join(Producer, Producer.id == Product.producer_id)
             .join(commune, commune.id == Producer.commune_id)
             .join(up1, up1.id == commune.parent_id, isouter=True)
             .join(up2, up2.id == up1.parent_id, isouter=True))
    return query.where(readable_products(actor, Product.producer_id, commune, up1, up2))


def _task_query():
    return (select(InboxTask, Product, Producer, Jurisdiction)
            .join(Product, Product.id == InboxTask.product_id, isouter=True)
            .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
            .join(Jurisdiction, Jurisdiction.id == Producer.commune_id, isouter=True))


def _task_dict(task: InboxTask, product, producer, commune, now: datetime) -> dict:
    return {
        "id": task.id, "instance_id": task.instance_id, "name": task.name, "element_id": task.element_id,
        "form_key": task.form_key, "step": task.step, "role": task.role,
        "jurisdiction_id": task.jurisdiction_id, "assignee_id": task.assignee_id,
        "created_at": task.created_at, "due_at": task.due_at,
        "overdue": task.due_at is not None and as_utc(task.due_at) < now,
        "product_id": task.product_id, "product_name": product.name if product else None,
        "group_code": product.group_code if product else None,
        "producer_name": producer.name if producer else None,
        "commune_name": commune.name if commune else None,
    }


def _reachable_task(session: Session, task_id: str) -> InboxTask:
    """The task if the caller may see its instance; not_found otherwise (the
    engine then decides whether the caller may act: forbidden, conflict)."""
    row = session.get(InboxTask, task_id)
    instance = session.get(ProcessInstance, row.instance_id) if row is not None else None
    if not _may_see_instance(_actor(), instance):
        raise ApiError("not_found", f"no task {task_id}")
    return row


def _on_task(task_id: str, call):
    """An engine call on a task. The engine answers an unknown task (404)
    and one the caller may not act on (403); the latter becomes 404 when the
    caller may not even see its instance, so another area's task ids look
    like missing ones. Checked only then: one who may act may also see, so
    the usual call reads the task once, inside the engine's transaction."""
    try:
        return call()
    except UnknownTask:
        raise ApiError("not_found", f"no task {task_id}") from None  # worded as for another area's task
    except NotAllowed:
        with db().transaction() as session:
            _reachable_task(session, task_id)
        raise


def _task_response(task_id: str):
    now = bpmn_engine().clock()
    with db().transaction() as session:
        row = session.execute(_task_query().where(InboxTask.id == task_id)).first()
        if row is None:
            raise ApiError("not_found", f"no task {task_id}")
        return _dump(TaskEnvelopeSchema, {"task": _task_dict(*row, now)})


# --- operation descriptions for the OpenAPI document ----------------------------

_DOCS: dict[str, dict] = {}  # view function name -> how to describe it


def documented(summary: str, tag: str, response: type[Schema] | None = None, status: int = 200,
               body=None, query: type[Schema] | None = None, errors: tuple[int, ...] = (401,),
               body_required: bool = True):
    """Record a view's request and response schemas; openapi() turns them into
    the document, so every route carries its contract next to its code."""
    def wrap(view):
        _DOCS[view.__name__] = {
            "summary": summary, "tag": tag, "response": response, "status": status, "body": body,
            "body_required": body_required, "query": query, "errors": errors,
            "description": (view.__doc__ or "").strip()}
        return view
    return wrap


# --- tasks -------------------------------------------------------------------------

@api.get("/tasks")
@documented("The caller's inbox, filtered and paged, with quick-filter counts", "tasks",
            TaskListSchema, query=TaskQuerySchema, errors=(401, 422))
def list_inbox():
    """Only tasks the caller may act on: its roles' tasks in its areas, and
    its own products' tasks for producers."""
    fltr = InboxFilter(**TaskQuerySchema().load(request.args.to_dict()))
    now = bpmn_engine().clock()
    with db().transaction() as session:
        rows, total = list_tasks(session, _actor(), fltr, now)
        tallies = counts(session, _actor(), now)
        tasks = [_task_dict(*row, now) for row in rows]
    return _dump(TaskListSchema, {"tasks": tasks, "total": total, "page": fltr.page,
                                    "page_size": PAGE_SIZE, "counts": tallies})


@api.post("/tasks/<task_id>/claim")
@documented("Claim a task: colleagues of the area then cannot complete it", "tasks",
            TaskEnvelopeSchema, errors=(401, 403, 404, 409))
def claim_task(task_id: str):
    _on_task(task_id, lambda: bpmn_engine().claim(task_id, _actor()))
    return _task_response(task_id)


@api.post("/tasks/<task_id>/unclaim")
@documented("Give a claimed task back to the area (its assignee or a supervisor)", "tasks",
            TaskEnvelopeSchema, errors=(401, 403, 404, 409))
def unclaim_task(task_id: str):
    _on_task(task_id, lambda: bpmn_engine().unclaim(task_id, _actor()))
    return _task_response(task_id)


@api.post("/tasks/<task_id>/complete")
@documented("Complete a task with its form data", "tasks", StepResultSchema,
            body=lambda: {"oneOf": [form_schema(key) for key in FORMS]}, errors=(401, 403, 404, 409, 422, 502))
def complete_task(task_id: str):
    """The body is the task's form (its form_key names which); invalid data
    answers 422 with per-field messages and changes nothing."""
    data = _json_body()
    result = _on_task(task_id, lambda: bpmn_engine().complete_task(task_id, data, _actor()))
    return _dump(StepResultSchema, result)


# --- products and instances ------------------------------------------------------

@api.get("/products")
@documented("Products the caller may see: its own (producers) or its areas' (officers)", "products",
            ProductListSchema, query=PageQuerySchema, errors=(401, 422))
def list_products():
    page = PageQuerySchema().load(request.args.to_dict())["page"]
    query = _visible_products(_actor())
    with db().transaction() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.execute(query.order_by(Product.name, Product.id).limit(PRODUCT_PAGE_SIZE)
                               .offset((page - 1) * PRODUCT_PAGE_SIZE)).all()
        latest: dict[int, ProcessInstance] = {}
        ids = [product.id for product, _producer, _commune in rows]
        if ids:  # newest cycle of each product, newest first so the first seen wins
            for instance in session.scalars(select(ProcessInstance).where(ProcessInstance.product_id.in_(ids))
                                            .order_by(ProcessInstance.year.desc(), ProcessInstance.id.desc())):
                latest.setdefault(instance.product_id, instance)
        products = [{"id": product.id, "name": product.name, "group_code": product.group_code,
                     "producer_id": producer.id, "producer_name": producer.name,
                     "commune_id": commune.id, "commune_name": commune.name,
                     "latest_instance": latest.get(product.id)} for product, producer, commune in rows]
    return _dump(ProductListSchema, {"products": products, "total": total, "page": page,
                                       "page_size": PRODUCT_PAGE_SIZE})


@api.post("/products/<int:product_id>/start")
@documented("Register the product for this year's cycle (starts its instance)", "products",
            StepResultSchema, status=201, body=StartProductSchema, body_required=False,
            errors=(401, 403, 404, 409, 422, 502))
def start_product(product_id: int):
    """Needs an open registration window in the product's area
    (registration_closed otherwise). The body may be empty."""
    with db().transaction() as session:
        if session.execute(_visible_products(_actor()).where(Product.id == product_id)).first() is None:
            raise ApiError("not_found", f"no product {product_id}")
    year = StartProductSchema().load(_json_body(optional=True)).get("year")
    result = bpmn_engine().start_product(product_id, _actor(), year=year)
    return _dump(StepResultSchema, result, status=201)


def _visible_instance(session: Session, instance_id: int) -> ProcessInstance:
    instance = session.get(ProcessInstance, instance_id, options=[
        joinedload(ProcessInstance.product), joinedload(ProcessInstance.definition)])
    if not _may_see_instance(_actor(), instance):
        raise ApiError("not_found", f"no instance {instance_id}")
    return instance


@api.get("/instances/<int:instance_id>")
@documented("An instance: status, current step and ready tasks", "instances", InstanceSchema,
            errors=(401, 404))
def get_instance(instance_id: int):
    now = bpmn_engine().clock()
    with db().transaction() as session:
        instance = _visible_instance(session, instance_id)
        rows = session.execute(_task_query().where(InboxTask.instance_id == instance_id)
                               .order_by(InboxTask.created_at, InboxTask.id)).all()
        body = {column: getattr(instance, column) for column in (
            "id", "process_id", "product_id", "jurisdiction_id", "year", "status", "current_step",
            "end_event", "stars", "started_at", "updated_at", "finished_at")}
        body.update(definition_name=instance.definition.name, definition_version=instance.definition.version,
                    product_name=instance.product.name if instance.product else None,
                    ready_tasks=[_task_dict(*row, now) for row in rows])
    return _dump(InstanceSchema, body)


@api.get("/instances/<int:instance_id>/history")
@documented("The instance's audit events, oldest first, and whether the hash chain is intact",
            "instances", HistorySchema, errors=(401, 404))
def instance_history(instance_id: int):
    with db().transaction() as session:
        _visible_instance(session, instance_id)
        events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                 .order_by(AuditEvent.seq)).all()
        intact = not verify_chain(session, instance_id)
    return _dump(HistorySchema, {"instance_id": instance_id, "chain_intact": intact, "events": events})


# --- definitions ---------------------------------------------------------------------

@api.get("/definitions")
@documented("Deployed diagram versions", "definitions", DefinitionListSchema)
def list_definitions():
    with db().transaction() as session:
        rows = session.execute(
            select(ProcessDefinition, Jurisdiction.name)
            .join(Jurisdiction, Jurisdiction.id == ProcessDefinition.province_id, isouter=True)
            .order_by(ProcessDefinition.name, ProcessDefinition.version.desc())).all()
        definitions = [{"id": d.id, "name": d.name, "version": d.version, "sha256": d.sha256,
                        "author": d.author, "message": d.message, "deployed_at": d.deployed_at,
                        "province_id": d.province_id, "province_name": province, "is_active": d.is_active}
                       for d, province in rows]
    return _dump(DefinitionListSchema, {"definitions": definitions})


# --- the caller's own API tokens ---------------------------------------------------

@api.get("/tokens")
@documented("The caller's API tokens (never their secrets)", "tokens", TokenListSchema)
def list_tokens():
    with db().transaction() as session:
        tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == _actor().user_id)
                                 .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()
    return _dump(TokenListSchema, {"tokens": tokens})


@api.post("/tokens")
@documented("Create an API token for the signed-in user; the secret is shown only here", "tokens",
            TokenCreatedSchema, status=201, body=TokenCreateSchema, errors=(401, 403, 422))
def create_token():
    """Only from a browser session (with X-CSRFToken): a token cannot mint
    further tokens, so a leaked one can be revoked once and for all."""
    if g.api_via != "session":
        raise ApiError("forbidden", "create tokens from a signed-in session, not with a token")
    name = TokenCreateSchema().load(_json_body())["name"]
    with db().transaction() as session:
        row, secret = issue_token(session, _actor().user_id, name, bpmn_engine().clock())
        body = {field: getattr(row, field) for field in TokenSchema().fields} | {"token": secret}
    return _dump(TokenCreatedSchema, body, status=201)


@api.delete("/tokens/<int:token_id>")
@documented("Revoke one of the caller's tokens (it stays listed, marked revoked)", "tokens",
            TokenSchema, errors=(401, 403, 404))
def revoke_token(token_id: int):
    with db().transaction() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != _actor().user_id:
            raise ApiError("not_found", f"no token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = bpmn_engine().clock()
    return _dump(TokenSchema, row)


# --- the OpenAPI document ----------------------------------------------------------------

_PATH_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")


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
        info={"description": __doc__},
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
