"""Products and their cycles through the JSON API: the products the caller
may read, registering one for this year's cycle, an instance with its
ready tasks, and an instance's audit history.

Products and instances outside what the caller may read
(engine.access.may_read_product) answer not_found, like missing ones.
"""
from __future__ import annotations

from flask import request

from audit.chain import verify_chain
from programme import records
from web.api import api
from web.api.authentication import caller
from web.api.bodies import dump, json_body
from web.api.errors import ApiError
from web.api.openapi import documented
from web.api.schemas import (
    HistorySchema,
    InstanceSchema,
    PageQuerySchema,
    ProductListSchema,
    StartProductSchema,
    StepResultSchema,
)
from web.api.tasks import task_body
from web.context import bpmn_engine, reading

PRODUCT_PAGE_SIZE = 50
INSTANCE_COLUMNS = ("id", "process_id", "product_id", "jurisdiction_id", "year", "status", "current_step",
                    "end_event", "stars", "started_at", "updated_at", "finished_at")


@api.get("/products")
@documented("Products the caller may see: its own (producers) or its areas' (officers)", "products",
            ProductListSchema, query=PageQuerySchema, errors=(401, 422))
def list_products():
    page = PageQuerySchema().load(request.args.to_dict())["page"]
    with reading() as session:
        found, total = records.readable_products_page(session, caller(), page, PRODUCT_PAGE_SIZE)
        products = [{"id": r.product.id, "name": r.product.name, "group_code": r.product.group_code,
                     "producer_id": r.producer.id, "producer_name": r.producer.name,
                     "commune_id": r.commune.id, "commune_name": r.commune.name,
                     "latest_instance": r.latest_instance} for r in found]
    return dump(ProductListSchema, {"products": products, "total": total, "page": page,
                                    "page_size": PRODUCT_PAGE_SIZE})


@api.post("/products/<int:product_id>/start")
@documented("Register the product for this year's cycle (starts its instance)", "products",
            StepResultSchema, status=201, body=StartProductSchema, body_required=False,
            errors=(401, 403, 404, 409, 422, 502))
def start_product(product_id: int):
    """Needs an open registration window in the product's area
    (registration_closed otherwise). The body may be empty."""
    with reading() as session:
        if not records.may_read_product_id(session, caller(), product_id):
            raise ApiError("not_found", f"no product {product_id}")
    year = StartProductSchema().load(json_body(optional=True)).get("year")
    result = bpmn_engine().start_product(product_id, caller(), year=year)
    return dump(StepResultSchema, result, status=201)


@api.get("/instances/<int:instance_id>")
@documented("An instance: status, current step and ready tasks", "instances", InstanceSchema,
            errors=(401, 404))
def get_instance(instance_id: int):
    now = bpmn_engine().clock()
    with reading() as session:
        instance = records.readable_instance(session, caller(), instance_id)
        if instance is None:
            raise ApiError("not_found", f"no instance {instance_id}")
        rows = records.instance_task_rows(session, instance_id)
        body = {column: getattr(instance, column) for column in INSTANCE_COLUMNS} | {
            "definition_name": instance.definition.name, "definition_version": instance.definition.version,
            "product_name": instance.product.name if instance.product else None,
            "ready_tasks": [task_body(*row, now) for row in rows]}
    return dump(InstanceSchema, body)


@api.get("/instances/<int:instance_id>/history")
@documented("The instance's audit events, oldest first, and whether the hash chain is intact",
            "instances", HistorySchema, errors=(401, 404))
def instance_history(instance_id: int):
    with reading() as session:
        if records.readable_instance(session, caller(), instance_id) is None:
            raise ApiError("not_found", f"no instance {instance_id}")
        events = records.instance_events(session, instance_id)
        intact = not verify_chain(session, instance_id, events)
    return dump(HistorySchema, {"instance_id": instance_id, "chain_intact": intact, "events": events})
