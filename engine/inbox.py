"""Reading the inbox: ready tasks from the indexed task table, never from
workflows. Every query is limited to what the actor may act on."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, false, func, or_, select, tuple_
from sqlalchemy.orm import Session

from engine.access import Actor
from storage.models import InboxTask, Jurisdiction, Producer, Product

PAGE_SIZE = 25
DUE_SOON = timedelta(days=3)
SORTS = {
    "waiting": (InboxTask.created_at, InboxTask.id),
    "due": (InboxTask.due_at.is_(None), InboxTask.due_at, InboxTask.id),
    "product": (Product.name, InboxTask.id),
}


@dataclass
class InboxFilter:
    step: int | None = None
    form_key: str | None = None
    commune_id: int | None = None
    group_code: str | None = None
    scope: str = "area"          # area | mine | unassigned
    overdue: bool = False
    sort: str = "waiting"
    page: int = 1


def visible_to(actor: Actor):
    """The condition "this actor may act on this task row"."""
    officer_roles = [(role, area) for role, area in actor.roles if area is not None]
    conditions = []
    if officer_roles:
        conditions.append(tuple_(InboxTask.role, InboxTask.jurisdiction_id).in_(officer_roles))
    if actor.producer_ids:
        conditions.append(and_(InboxTask.role == "producer", InboxTask.producer_id.in_(actor.producer_ids)))
    return or_(*conditions) if conditions else false()


def _filtered(actor: Actor, f: InboxFilter, now: datetime) -> Select:
    query = (select(InboxTask, Product, Producer, Jurisdiction)
             .join(Product, Product.id == InboxTask.product_id, isouter=True)
             .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
             .join(Jurisdiction, Jurisdiction.id == Producer.commune_id, isouter=True)
             .where(visible_to(actor)))
    if f.step:
        query = query.where(InboxTask.step == f.step)
    if f.form_key:
        query = query.where(InboxTask.form_key == f.form_key)
    if f.commune_id:
        query = query.where(Producer.commune_id == f.commune_id)
    if f.group_code:
        query = query.where(Product.group_code == f.group_code)
    if f.scope == "mine":
        query = query.where(InboxTask.assignee_id == actor.user_id)
    elif f.scope == "unassigned":
        query = query.where(InboxTask.assignee_id.is_(None))
    if f.overdue:
        query = query.where(InboxTask.due_at < now)
    return query


def list_tasks(session: Session, actor: Actor, f: InboxFilter, now: datetime) -> tuple[list, int]:
    """One page of rows (task, product, producer, commune) and the total."""
    query = _filtered(actor, f, now)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(*SORTS.get(f.sort, SORTS["waiting"]))
                           .limit(PAGE_SIZE).offset((max(f.page, 1) - 1) * PAGE_SIZE)).all()
    return rows, total


def counts(session: Session, actor: Actor, now: datetime) -> dict[str, int]:
    """How many tasks each quick filter would show."""
    base = select(func.count()).select_from(InboxTask).where(visible_to(actor))
    return {
        "area": session.scalar(base),
        "mine": session.scalar(base.where(InboxTask.assignee_id == actor.user_id)),
        "unassigned": session.scalar(base.where(InboxTask.assignee_id.is_(None))),
        "overdue": session.scalar(base.where(InboxTask.due_at < now)),
        "due_soon": session.scalar(base.where(InboxTask.due_at >= now, InboxTask.due_at < now + DUE_SOON)),
    }


def visible_task(session: Session, actor: Actor, task_id: str) -> InboxTask | None:
    """The task if the actor may act on it; None otherwise (callers answer 404)."""
    return session.scalar(select(InboxTask).where(InboxTask.id == task_id, visible_to(actor)))
