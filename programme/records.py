"""What an officer or a producer may read about products, their cycles
(process instances) and their tasks, and the diagram versions they run on:
the reads of the JSON API (/api/v1).

Who may read what is engine.access.may_read_product (readable_products in
SQL): a product's producer, anyone holding a role for one of its areas,
and auditors. Functions named readable_* return nothing for what the actor
may not read, exactly as for what does not exist.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session, aliased, joinedload

from engine.access import Actor, may_read_product, readable_products
from storage.models import (
    AuditEvent,
    InboxTask,
    Jurisdiction,
    ProcessDefinition,
    ProcessInstance,
    Producer,
    Product,
)

# --- tasks ---------------------------------------------------------------------------------


def _tasks_with_products() -> Select:
    """Tasks with their product, producer and the producer's commune (each
    None for an outreach task), as programme.inbox.list_tasks rows."""
    return (select(InboxTask, Product, Producer, Jurisdiction)
            .join(Product, Product.id == InboxTask.product_id, isouter=True)
            .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
            .join(Jurisdiction, Jurisdiction.id == Producer.commune_id, isouter=True))


def task_row(session: Session, task_id: str) -> Row | None:
    """(task, product, producer, commune) of a ready task, or None. The
    caller has checked who asks (an engine call on the task did)."""
    return session.execute(_tasks_with_products().where(InboxTask.id == task_id)).first()


def instance_task_rows(session: Session, instance_id: int) -> list[Row]:
    """(task, product, producer, commune) of an instance's ready tasks, oldest first."""
    return list(session.execute(_tasks_with_products().where(InboxTask.instance_id == instance_id)
                                .order_by(InboxTask.created_at, InboxTask.id)).all())


def readable_task(session: Session, actor: Actor, task_id: str) -> InboxTask | None:
    """The ready task if the actor may read its instance (whether it may
    act on it is the engine's to say), else None."""
    task = session.get(InboxTask, task_id)
    instance = session.get(ProcessInstance, task.instance_id) if task is not None else None
    return task if _may_read_instance(actor, instance) else None


# --- instances -------------------------------------------------------------------------------

def _may_read_instance(actor: Actor, instance: ProcessInstance | None) -> bool:
    return instance is not None and may_read_product(
        actor, instance.product.producer_id if instance.product else None, instance.areas.values())


def readable_instance(session: Session, actor: Actor, instance_id: int) -> ProcessInstance | None:
    """The instance, its product and definition loaded, if the actor may read it."""
    instance = session.get(ProcessInstance, instance_id, options=[
        joinedload(ProcessInstance.product), joinedload(ProcessInstance.definition)])
    return instance if _may_read_instance(actor, instance) else None


def instance_events(session: Session, instance_id: int) -> list[AuditEvent]:
    """Every audit event of the instance, oldest first (the caller checked
    the actor may read the instance)."""
    return list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                .order_by(AuditEvent.seq)))


# --- products --------------------------------------------------------------------------------

@dataclass
class ProductRecord:
    """A product with its producer, the producer's commune and its newest cycle."""

    product: Product
    producer: Producer
    commune: Jurisdiction
    latest_instance: ProcessInstance | None


def _readable_products(actor: Actor) -> Select:
    """(product, producer, commune) of the products the actor may read
    (engine.access.readable_products). The commune's ancestors are joined
    (at most three levels above it) instead of expanding areas into long
    lists of commune ids."""
    commune = aliased(Jurisdiction)
    up1, up2 = aliased(Jurisdiction), aliased(Jurisdiction)
    query = (select(Product, Producer, commune)
             .join(Producer, Producer.id == Product.producer_id)
             .join(commune, commune.id == Producer.commune_id)
             .join(up1, up1.id == commune.parent_id, isouter=True)
             .join(up2, up2.id == up1.parent_id, isouter=True))
    return query.where(readable_products(actor, Product.producer_id, commune, up1, up2))


def readable_products_page(session: Session, actor: Actor, page: int,
                           page_size: int) -> tuple[list[ProductRecord], int]:
    """One page (from 1) of the products the actor may read, by name, each
    with its newest cycle; and how many there are in all."""
    query = _readable_products(actor)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(Product.name, Product.id).limit(page_size)
                           .offset((page - 1) * page_size)).all()
    latest: dict[int, ProcessInstance] = {}
    ids = [product.id for product, _producer, _commune in rows]
    if ids:  # newest cycle of each product, newest first so the first seen wins
        for instance in session.scalars(select(ProcessInstance).where(ProcessInstance.product_id.in_(ids))
                                        .order_by(ProcessInstance.year.desc(), ProcessInstance.id.desc())):
            latest.setdefault(instance.product_id, instance)
    return [ProductRecord(product, producer, commune, latest.get(product.id))
            for product, producer, commune in rows], total


def may_read_product_id(session: Session, actor: Actor, product_id: int) -> bool:
    """Whether the product exists and the actor may read it."""
    return session.execute(_readable_products(actor).where(Product.id == product_id)).first() is not None


# --- diagrams ----------------------------------------------------------------------------------

def diagram_versions(session: Session) -> list[tuple[ProcessDefinition, str | None]]:
    """Every deployed diagram version with its province's name (None for
    the national diagram), by name then newest first."""
    return [tuple(row) for row in session.execute(
        select(ProcessDefinition, Jurisdiction.name)
        .join(Jurisdiction, Jurisdiction.id == ProcessDefinition.province_id, isouter=True)
        .order_by(ProcessDefinition.name, ProcessDefinition.version.desc())).all()]
