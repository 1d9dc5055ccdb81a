"""The statements every engine call runs, built once, and the plain
snapshots of the rows they read.

Building a SQLAlchemy statement (and its cache key) costs more than running
it on SQLite: a few hundred microseconds against tens. The calls' own
statements are therefore module constants with bound parameters, and the
instance UPDATE one statement per set of columns it writes (a handful).
They are Core statements: a call reads its instance once and writes it
with one versioned UPDATE, so ORM objects (loading them costs about as much
again as the query) would be work without use.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy import bindparam, delete, insert, select, update

from handlers.context import ProductView
from storage.models import (
    AuditEvent,
    InboxTask,
    ProcessDefinition,
    ProcessInstance,
    Producer,
    Product,
    RegistrationWindow,
    TimerDue,
)

_instances, _products, _tasks = ProcessInstance.__table__, Product.__table__, InboxTask.__table__
_definitions, _producers, _windows = ProcessDefinition.__table__, Producer.__table__, RegistrationWindow.__table__


@dataclass(frozen=True)
class InstanceRow:
    """An instance row as an engine call reads it, without its state (the
    workflow usually comes from the engine's cache; `execution.load_workflow`
    reads the state when not)."""

    id: int
    definition_id: int
    process_id: str
    product_id: int | None
    jurisdiction_id: int
    areas: dict[str, Any]
    year: int
    status: str
    current_step: int | None
    version: int
    audit_seq: int
    audit_head: str
    product: ProductView | None


# The instance's columns but its state, and its product's, prefixed (instance__id) so one
# joined row can hold them beside a task's.
_INSTANCE_COLUMNS = [column.label(f"instance__{column.name}") for column in _instances.c if column.name != "state"]
_PRODUCT_COLUMNS = [_products.c[name].label(f"product__{name}") for name in ("id", "name", "producer_id", "group_code")]


def instance_row(row: Mapping) -> InstanceRow:
    """The snapshot from a row of INSTANCE or TASK_WITH_INSTANCE."""
    product = (ProductView(row["product__id"], row["product__name"], row["product__producer_id"],
                          row["product__group_code"]) if row["product__id"] is not None else None)
    return InstanceRow(*(row[f"instance__{name}"] for name in (
        "id", "definition_id", "process_id", "product_id", "jurisdiction_id", "areas", "year", "status",
        "current_step", "version", "audit_seq", "audit_head")), product=product)


def snapshot(instance: ProcessInstance) -> InstanceRow:
    """The plain snapshot of an ORM instance (a replay's instance)."""
    product = instance.product
    return InstanceRow(
        instance.id, instance.definition_id, instance.process_id, instance.product_id, instance.jurisdiction_id,
        instance.areas, instance.year, instance.status, instance.current_step, instance.version,
        instance.audit_seq, instance.audit_head,
        ProductView(product.id, product.name, product.producer_id, product.group_code) if product else None)


# One instance with its product.
INSTANCE = (select(*_INSTANCE_COLUMNS, *_PRODUCT_COLUMNS)
            .select_from(_instances.outerjoin(_products, _products.c.id == _instances.c.product_id))
            .where(_instances.c.id == bindparam("instance_id")))

# A completion's task (its columns under their own names), its instance and product.
TASK_WITH_INSTANCE = (
    select(_tasks, *_INSTANCE_COLUMNS, *_PRODUCT_COLUMNS)
    .select_from(_tasks.join(_instances, _instances.c.id == _tasks.c.instance_id)
                 .outerjoin(_products, _products.c.id == _instances.c.product_id))
    .where(_tasks.c.id == bindparam("task_id")))

# A new instance: these columns from its InstanceRow, and state, started_at, updated_at.
INSTANCE_INSERTED = ("definition_id", "process_id", "product_id", "jurisdiction_id", "areas", "year", "status",
                     "version", "audit_seq", "audit_head")
INSERT_INSTANCE = insert(_instances)

STATE = select(_instances.c.state).where(_instances.c.id == bindparam("instance_id"))

# --- a product's start -----------------------------------------------------------

PRODUCT_WITH_COMMUNE = (
    select(_products.c.id, _products.c.name, _products.c.producer_id, _products.c.group_code,
           _producers.c.commune_id)
    .join(_producers, _producers.c.id == _products.c.producer_id).where(_products.c.id == bindparam("product_id")))
OPEN_WINDOW = select(_windows.c.id).where(
    _windows.c.jurisdiction_id.in_(bindparam("areas", expanding=True)),
    _windows.c.opens_on <= bindparam("today"), _windows.c.closes_on >= bindparam("today")).limit(1)
IN_CYCLE = select(_instances.c.id).where(
    _instances.c.product_id == bindparam("product_id"), _instances.c.year == bindparam("year"),
    _instances.c.status != "cancelled").limit(1)
# The active definitions of a province and the national one (at most one each).
ACTIVE_DEFINITIONS = select(_definitions.c.id, _definitions.c.name, _definitions.c.version,
                            _definitions.c.province_id).where(
    _definitions.c.is_active.is_(True),
    (_definitions.c.province_id == bindparam("province_id")) | _definitions.c.province_id.is_(None))

# --- an engine call's writes ------------------------------------------------------------------

INSERT_EVENTS = insert(AuditEvent.__table__)
INSERT_INBOX_ROWS = insert(_tasks)
DELETE_TIMERS = delete(TimerDue.__table__).where(TimerDue.__table__.c.instance_id == bindparam("instance_id"))
INSERT_TIMERS = insert(TimerDue.__table__)
DELETE_INBOX_ROWS = delete(_tasks).where(_tasks.c.id.in_(bindparam("ids", expanding=True)))


# Lock the instance row if it is still at the version a call read
# (execution.Execution.lock_instance_row). Under READ COMMITTED a row locked
# by another transaction is waited for and checked again once that one
# commits: a newer version then matches nothing.
LOCK_INSTANCE = (select(_instances.c.id)
                 .where(_instances.c.id == bindparam("instance_id"), _instances.c.version == bindparam("old_version"))
                 .with_for_update())


@functools.lru_cache(maxsize=64)
def update_instance(columns: tuple[str, ...]):
    """UPDATE process_instance SET <columns> WHERE id = :instance_id AND
    version = :old_version. Parameters are named `new_<column>`: SQLAlchemy
    keeps the column names for itself."""
    return (update(_instances)
            .where(_instances.c.id == bindparam("instance_id"), _instances.c.version == bindparam("old_version"))
            .values({column: bindparam(f"new_{column}") for column in columns}))
