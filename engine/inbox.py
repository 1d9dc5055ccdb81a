"""Reading the inbox: ready tasks from the indexed task table, never from
workflows. Every query is limited to what the actor may act on."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, false, func, or_, select, true, tuple_
from sqlalchemy.orm import Session

from engine.access import Actor
from storage.models import InboxTask, Jurisdiction, ProcessInstance, Producer, Product, RoleAssignment, User

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


@dataclass(frozen=True)
class Supervision:
    """The areas whose tasks a supervisor (program manager of a province,
    administrator) oversees: they may see, release and reassign those tasks
    without holding the tasks' roles. Mirrors engine.engine._supervises."""

    everything: bool = False
    area_ids: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return self.everything or bool(self.area_ids)

    def condition(self):
        if self.everything:
            return true()
        if not self.area_ids:
            return false()
        # A product's task belongs to the province its producer's commune is
        # in, whatever level acts on it (central council tasks included);
        # an outreach task (no product) to the area it runs in.
        return or_(InboxTask.producer_id.in_(select(Producer.id).where(Producer.commune_id.in_(self.area_ids))),
                   and_(InboxTask.product_id.is_(None), InboxTask.jurisdiction_id.in_(self.area_ids)))

    def covers(self, task: InboxTask, commune_id: int | None) -> bool:
        if self.everything:
            return True
        if task.product_id is None:
            return task.jurisdiction_id in self.area_ids
        return commune_id in self.area_ids


def supervision_of(session: Session, actor: Actor) -> Supervision:
    """What the actor supervises: administrators everything, a program
    manager every area of its province (the province and all below it)."""
    if any(role == "admin" for role, _area in actor.roles):
        return Supervision(everything=True)
    frontier = {area for role, area in actor.roles if role == "program_manager" and area is not None}
    areas = set(frontier)
    while frontier:  # province -> districts -> communes: at most three rounds
        frontier = set(session.scalars(select(Jurisdiction.id).where(Jurisdiction.parent_id.in_(frontier)))) - areas
        areas |= frontier
    return Supervision(area_ids=frozenset(areas))


def _scope(actor: Actor, supervision: Supervision | None):
    """Tasks the actor may act on, plus those it supervises."""
    if supervision:
        return or_(visible_to(actor), supervision.condition())
    return visible_to(actor)


def _filtered(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision | None = None) -> Select:
    query = (select(InboxTask, Product, Producer, Jurisdiction)
             .join(Product, Product.id == InboxTask.product_id, isouter=True)
             .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
             .join(Jurisdiction, Jurisdiction.id == Producer.commune_id, isouter=True)
             .where(_scope(actor, supervision)))
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


def list_tasks(session: Session, actor: Actor, f: InboxFilter, now: datetime,
               supervision: Supervision | None = None) -> tuple[list, int]:
    """One page of rows (task, product, producer, commune) and the total.
    With `supervision`, the supervised areas' tasks are listed too."""
    query = _filtered(actor, f, now, supervision)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(*SORTS.get(f.sort, SORTS["waiting"]))
                           .limit(PAGE_SIZE).offset((max(f.page, 1) - 1) * PAGE_SIZE)).all()
    return rows, total


def counts(session: Session, actor: Actor, now: datetime,
           supervision: Supervision | None = None) -> dict[str, int]:
    """How many tasks each quick filter would show."""
    base = select(func.count()).select_from(InboxTask).where(_scope(actor, supervision))
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


def filter_choices(session: Session, actor: Actor,
                   supervision: Supervision | None = None) -> dict[str, list]:
    """Values the inbox filters can take, from the tasks the actor sees:
    communes [(id, name)] and criteria set codes."""
    seen = (select(InboxTask.product_id, Producer.commune_id)
            .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
            .where(_scope(actor, supervision))).subquery()
    communes = session.execute(select(Jurisdiction.id, Jurisdiction.name)
                               .where(Jurisdiction.id.in_(select(seen.c.commune_id)))
                               .order_by(Jurisdiction.name)).all()
    groups = session.scalars(select(Product.group_code).distinct()
                             .where(Product.id.in_(select(seen.c.product_id)))
                             .order_by(Product.group_code)).all()
    return {"communes": [tuple(row) for row in communes], "groups": list(groups)}


def user_names(session: Session, user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())


def colleagues(session: Session, role: str, jurisdiction_id: int | None) -> list[tuple[str, str]]:
    """(username, full name) of the active users holding `role` for the area:
    whom a supervisor may hand such a task to."""
    return [tuple(row) for row in session.execute(
        select(User.username, User.full_name)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == role, RoleAssignment.jurisdiction_id == jurisdiction_id,
               User.is_active.is_(True))
        .order_by(User.full_name)).all()]


@dataclass
class Dossier:
    """What the task page shows beside the form."""

    instance: ProcessInstance
    product: Product | None
    producer: Producer | None
    commune: Jurisdiction | None


def task_dossier(session: Session, task: InboxTask) -> Dossier:
    instance = session.get(ProcessInstance, task.instance_id)
    product = session.get(Product, task.product_id) if task.product_id else None
    producer = session.get(Producer, task.producer_id) if task.producer_id else None
    commune = session.get(Jurisdiction, producer.commune_id) if producer else None
    return Dossier(instance, product, producer, commune)
