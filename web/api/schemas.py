"""Marshmallow schemas of the JSON API: every request it reads and every
response it writes. The same classes validate requests, shape responses and
generate the OpenAPI document (web/api/openapi.py, /api/v1/openapi.json),
so the published contract cannot drift from what the code does.

Task completion bodies are not here: they are the form schemas of
engine/forms.py, chosen by the task's form key."""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from engine.forms import plain_text
from programme.inbox import COUNT_CAP, PAGE_SIZE, SORTS
from storage.db import as_utc
from web.context import MAX_ID, MAX_PAGE


class UtcDateTime(fields.DateTime):
    """ISO 8601 with its offset. SQLite hands back naive datetimes (stored
    as UTC): without this they would be dumped without a zone."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(as_utc(value) if value is not None else None, attr, obj, **kwargs)


# --- errors -------------------------------------------------------------------

class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={
        "description": "Stable machine-readable code: unauthenticated, forbidden, csrf_failed, not_found, "
                       "method_not_allowed, invalid, conflict, registration_closed, no_active_definition, "
                       "service_failed, internal, unavailable (the database is out of reach: retry after the "
                       "Retry-After header's seconds)."})
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.Raw(),
                          metadata={"description": "Per-field messages (code 'invalid')."})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


# --- requests -------------------------------------------------------------------

class TaskQuerySchema(Schema):
    """The inbox filters as query parameters (programme.inbox.InboxFilter)."""

    class Meta:
        # Query strings pick up unrelated parameters (?lang=, cache busters):
        # ignore them rather than refuse the request.
        unknown = EXCLUDE

    step = fields.Integer(validate=validate.Range(min=1, max=6))
    form_key = fields.String(validate=[validate.Length(max=64), plain_text])
    commune_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    group_code = fields.String(validate=[validate.Length(max=8), plain_text])
    scope = fields.String(load_default="area", validate=validate.OneOf(("area", "mine", "unassigned")))
    overdue = fields.Boolean(load_default=False)
    sort = fields.String(load_default="waiting", validate=validate.OneOf(tuple(SORTS)))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


class PageQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


class StartProductSchema(Schema):
    """Body of POST /products/<id>/start (may be empty)."""

    class Meta:
        unknown = RAISE

    year = fields.Integer(validate=validate.Range(min=2018, max=2100),
                          metadata={"description": "Cycle year; defaults to the current year."})


class TokenCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), plain_text],
                         metadata={"description": "What the token is for, e.g. 'báo cáo tỉnh'."})


# --- responses ------------------------------------------------------------------

class TaskSchema(Schema):
    id = fields.String(required=True)
    instance_id = fields.Integer()
    name = fields.String()
    element_id = fields.String()
    form_key = fields.String()
    step = fields.Integer(allow_none=True)
    role = fields.String()
    jurisdiction_id = fields.Integer(allow_none=True)
    assignee_id = fields.Integer(allow_none=True)
    created_at = UtcDateTime()
    due_at = UtcDateTime(allow_none=True)
    overdue = fields.Boolean()
    product_id = fields.Integer(allow_none=True)
    product_name = fields.String(allow_none=True)
    group_code = fields.String(allow_none=True)
    producer_name = fields.String(allow_none=True)
    commune_name = fields.String(allow_none=True)


class TaskCountsSchema(Schema):
    """The quick filters' counts, each capped: COUNT_CAP + 1 means more than COUNT_CAP."""

    area = fields.Integer()
    mine = fields.Integer()
    unassigned = fields.Integer()
    overdue = fields.Integer()
    due_soon = fields.Integer()


class TaskListSchema(Schema):
    tasks = fields.List(fields.Nested(TaskSchema))
    total = fields.Integer(metadata={"description": f"Tasks matching the filter, counted up to {COUNT_CAP + 1} "
                                                    f"({COUNT_CAP + 1} means more than {COUNT_CAP})."})
    page = fields.Integer()
    page_size = fields.Integer(dump_default=PAGE_SIZE)
    counts = fields.Nested(TaskCountsSchema)


class TaskEnvelopeSchema(Schema):
    task = fields.Nested(TaskSchema)


class ReadyTaskSchema(Schema):
    """A user task the engine call left ready (engine.execution.Outcome)."""

    id = fields.String()
    element_id = fields.String()
    name = fields.String(allow_none=True)
    lane = fields.String(allow_none=True)
    step = fields.Integer(allow_none=True)
    form_key = fields.String(allow_none=True)


class StepResultSchema(Schema):
    instance_id = fields.Integer()
    status = fields.String()
    ready_tasks = fields.List(fields.Nested(ReadyTaskSchema))
    end_event = fields.String(allow_none=True)
    stars = fields.Integer(allow_none=True)


class InstanceSummarySchema(Schema):
    id = fields.Integer()
    year = fields.Integer()
    status = fields.String()
    current_step = fields.Integer(allow_none=True)
    stars = fields.Integer(allow_none=True)


class ProductSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    group_code = fields.String()
    producer_id = fields.Integer()
    producer_name = fields.String()
    commune_id = fields.Integer()
    commune_name = fields.String()
    latest_instance = fields.Nested(InstanceSummarySchema, allow_none=True)


class ProductListSchema(Schema):
    products = fields.List(fields.Nested(ProductSchema))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()


class InstanceSchema(Schema):
    id = fields.Integer()
    process_id = fields.String()
    definition_name = fields.String()
    definition_version = fields.Integer()
    product_id = fields.Integer(allow_none=True)
    product_name = fields.String(allow_none=True)
    jurisdiction_id = fields.Integer()
    year = fields.Integer()
    status = fields.String(metadata={"description": "running, completed or cancelled"})
    current_step = fields.Integer(allow_none=True)
    end_event = fields.String(allow_none=True)
    stars = fields.Integer(allow_none=True)
    started_at = UtcDateTime()
    updated_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    ready_tasks = fields.List(fields.Nested(TaskSchema))


class AuditEventSchema(Schema):
    seq = fields.Integer()
    at = UtcDateTime()
    actor_id = fields.Integer(allow_none=True)
    kind = fields.String()
    element_id = fields.String(allow_none=True)
    data = fields.Dict()
    prev_hash = fields.String()
    hash = fields.String()


class HistorySchema(Schema):
    instance_id = fields.Integer()
    chain_intact = fields.Boolean(metadata={"description": "Whether every event matches its hash link."})
    events = fields.List(fields.Nested(AuditEventSchema))


class DefinitionSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    version = fields.Integer()
    sha256 = fields.String()
    author = fields.String()
    message = fields.String()
    deployed_at = UtcDateTime()
    province_id = fields.Integer(allow_none=True, metadata={"description": "None: the national diagram."})
    province_name = fields.String(allow_none=True)
    active = fields.Boolean(attribute="is_active")


class DefinitionListSchema(Schema):
    definitions = fields.List(fields.Nested(DefinitionSchema))


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    created_at = UtcDateTime()
    last_used_at = UtcDateTime(allow_none=True)
    revoked_at = UtcDateTime(allow_none=True)


class TokenCreatedSchema(TokenSchema):
    token = fields.String(metadata={"description": "The secret, shown only in this response."})


class TokenListSchema(Schema):
    tokens = fields.List(fields.Nested(TokenSchema))
