"""The statements every engine step runs, built once.

Building a SQLAlchemy statement (and its cache key) costs more than running
it on SQLite: a few hundred microseconds against tens. The steps' own
statements are therefore module constants with bound parameters, and the
instance UPDATE one statement per set of columns it writes (a handful).
"""
from __future__ import annotations

import functools

from sqlalchemy import bindparam, delete, insert, select, update

from storage.models import AuditEvent, InboxTask, ProcessInstance, Product

_instances = ProcessInstance.__table__

# A completion's task, its instance and product (ORM rows: handlers use them).
TASK_WITH_INSTANCE = (
    select(InboxTask, ProcessInstance, Product)
    .join(ProcessInstance, ProcessInstance.id == InboxTask.instance_id)
    .outerjoin(Product, Product.id == ProcessInstance.product_id)
    .where(InboxTask.id == bindparam("task_id")))

INSERT_EVENTS = insert(AuditEvent.__table__)
INSERT_INBOX_ROWS = insert(InboxTask.__table__)
DELETE_INBOX_ROWS = delete(InboxTask.__table__).where(InboxTask.id.in_(bindparam("ids", expanding=True)))


@functools.lru_cache(maxsize=64)
def update_instance(columns: tuple[str, ...]):
    """UPDATE process_instance SET <columns> WHERE id = :instance_id AND
    version = :old_version. Parameters are named `new_<column>`: SQLAlchemy
    keeps the column names for itself."""
    return (update(_instances)
            .where(_instances.c.id == bindparam("instance_id"), _instances.c.version == bindparam("old_version"))
            .values({column: bindparam(f"new_{column}") for column in columns}))
