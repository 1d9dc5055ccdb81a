"""Reading the inbox, for officers and producers: ready tasks from the
indexed task table, never from workflows, and what the task page shows
beside a task. Every query is limited to what the actor may act on (or,
for supervisors, supervises)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, case, func, or_, select, true, union_all
from sqlalchemy.orm import Session

from engine.access import Actor, Supervision, acting_on_tasks, load_actor, may_act, may_read_product
from engine.roles import LANE_ROLES
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


# Officers' roles that own lanes of the cycle: tasks wait on them.
_LANE_OFFICER_ROLES = frozenset(role.key for role in LANE_ROLES) - {"producer"}


def has_inbox(actor: Actor, supervision: Supervision | None) -> bool:
    """Whether the actor has tasks to list at all: it holds a lane's role,
    owns a producer, or supervises an area. An auditor acts on no task and
    supervises none: no inbox."""
    acts = any(role in _LANE_OFFICER_ROLES for role, _area in actor.roles) or bool(actor.producer_ids)
    return acts or bool(supervision)


def _scope(actor: Actor, supervision: Supervision | None):
    """Tasks the actor may act on, plus those it supervises. With
    supervision, one `task.id IN (... UNION ALL ...)` of index-served
    selects: an OR of the two conditions would make both databases read
    the whole task table."""
    if not supervision:
        return acting_on_tasks(actor)
    if supervision.everything:
        return true()
    mine = select(InboxTask.id).where(acting_on_tasks(actor)).correlate(None)
    return InboxTask.id.in_(union_all(mine, *supervision.task_ids()))


def _conditions(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision | None) -> list:
    """The WHERE terms of a filtered inbox; the commune filter reads
    Producer, the group filter Product (the caller joins them)."""
    where = [_scope(actor, supervision)]
    if f.step:
        where.append(InboxTask.step == f.step)
    if f.form_key:
        where.append(InboxTask.form_key == f.form_key)
    if f.commune_id:
        where.append(Producer.commune_id == f.commune_id)
    if f.group_code:
        where.append(Product.group_code == f.group_code)
    if f.scope == "mine":
        where.append(InboxTask.assignee_id == actor.user_id)
    elif f.scope == "unassigned":
        where.append(InboxTask.assignee_id.is_(None))
    if f.overdue:
        where.append(InboxTask.due_at < now)
    return where


def _filtered(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision | None = None) -> Select:
    return (select(InboxTask, Product, Producer, Jurisdiction)
            .join(Product, Product.id == InboxTask.product_id, isouter=True)
            .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
            .join(Jurisdiction, Jurisdiction.id == Producer.commune_id, isouter=True)
            .where(*_conditions(actor, f, now, supervision)))


def _total(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision | None = None) -> Select:
    """COUNT of the filtered inbox, joining only what a filter reads (an
    equality on the joined row makes the inner join the same as the outer)."""
    query = select(func.count()).select_from(InboxTask)
    if f.group_code:
        query = query.join(Product, Product.id == InboxTask.product_id)
    if f.commune_id:
        query = query.join(Producer, Producer.id == InboxTask.producer_id)
    return query.where(*_conditions(actor, f, now, supervision))


def _page(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision | None = None) -> Select:
    """One page of the filtered inbox. When neither the filters nor the
    order read the product or the producer, the page's task ids are chosen
    first from the task table alone and only those 25 rows are joined (not
    every task in scope before sorting)."""
    order = SORTS.get(f.sort, SORTS["waiting"])
    offset = (max(f.page, 1) - 1) * PAGE_SIZE
    if f.commune_id or f.group_code or f.sort == "product":
        return _filtered(actor, f, now, supervision).order_by(*order).limit(PAGE_SIZE).offset(offset)
    ids = (select(InboxTask.id).where(*_conditions(actor, f, now, supervision))
           .order_by(*order).limit(PAGE_SIZE).offset(offset))
    return (select(InboxTask, Product, Producer, Jurisdiction)
            .join(Product, Product.id == InboxTask.product_id, isouter=True)
            .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
            .join(Jurisdiction, Jurisdiction.id == Producer.commune_id, isouter=True)
            .where(InboxTask.id.in_(ids)).order_by(*order))


def _known_total(f: InboxFilter, tallies: dict[str, int] | None) -> int | None:
    """The filter's total when it is one of the quick-filter counts."""
    if tallies is None or f.step or f.form_key or f.commune_id or f.group_code:
        return None
    if f.overdue:
        return tallies.get("overdue") if f.scope == "area" else None
    return tallies.get(f.scope)


def list_tasks(session: Session, actor: Actor, f: InboxFilter, now: datetime,
               supervision: Supervision | None = None, tallies: dict[str, int] | None = None) -> tuple[list, int]:
    """One page of rows (task, product, producer, commune) and the total.
    With `supervision`, the supervised areas' tasks are listed too. With
    `tallies` (this actor's counts() at the same `now`), a filter that is
    one of the quick filters takes its total from them instead of counting
    again."""
    total = _known_total(f, tallies)
    if total is None:
        total = session.scalar(_total(actor, f, now, supervision))
    rows = session.execute(_page(actor, f, now, supervision)).all()
    return rows, total


COUNTS = ("area", "mine", "unassigned", "overdue", "due_soon")


def _tallies(actor: Actor, now: datetime) -> list:
    """The quick filters' counts as aggregates, in the order of COUNTS."""
    def tally(*condition):
        return func.count(case((and_(*condition), 1)))
    return [func.count(), tally(InboxTask.assignee_id == actor.user_id), tally(InboxTask.assignee_id.is_(None)),
            tally(InboxTask.due_at < now), tally(InboxTask.due_at >= now, InboxTask.due_at < now + DUE_SOON)]


def _counts(actor: Actor, now: datetime, supervision: Supervision | None = None) -> Select:
    """All quick-filter counts in one pass over the actor's tasks."""
    return select(*_tallies(actor, now)).select_from(InboxTask).where(_scope(actor, supervision))


def counts(session: Session, actor: Actor, now: datetime,
           supervision: Supervision | None = None) -> dict[str, int]:
    """How many tasks each quick filter would show."""
    return dict(zip(COUNTS, session.execute(_counts(actor, now, supervision)).one()))


def _overview(actor: Actor, now: datetime, supervision: Supervision | None = None) -> Select:
    """The counts per (commune, criteria set) of the actor's tasks: summed,
    they are counts(); their communes and sets are filter_choices()."""
    # Grouped first, then the communes' names: one lookup per group, not per task.
    groups = (select(Producer.commune_id.label("commune_id"), Product.group_code.label("group_code"),
                     *[tally.label(key) for key, tally in zip(COUNTS, _tallies(actor, now))])
              .select_from(InboxTask)
              .join(Product, Product.id == InboxTask.product_id, isouter=True)
              .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
              .where(_scope(actor, supervision))
              .group_by(Producer.commune_id, Product.group_code)).subquery()
    return (select(Jurisdiction.id, Jurisdiction.name, groups.c.group_code, *[groups.c[key] for key in COUNTS])
            .select_from(groups)
            .join(Jurisdiction, Jurisdiction.id == groups.c.commune_id, isouter=True)
            .order_by(Jurisdiction.name, Jurisdiction.id, groups.c.group_code))


def overview(session: Session, actor: Actor, now: datetime,
             supervision: Supervision | None = None) -> tuple[dict[str, int], dict[str, list]]:
    """counts() and filter_choices() from one pass over the actor's tasks
    (the inbox page needs both: a supervisor's scope is then read once)."""
    tallies = dict.fromkeys(COUNTS, 0)
    communes: dict[int, str] = {}  # in the database's order of names
    groups: set[str] = set()
    for commune_id, commune_name, group_code, *row in session.execute(_overview(actor, now, supervision)):
        for key, value in zip(COUNTS, row):
            tallies[key] += value
        if commune_id is not None:
            communes.setdefault(commune_id, commune_name)
        if group_code is not None:
            groups.add(group_code)
    return tallies, {"communes": list(communes.items()), "groups": sorted(groups)}


def visible_task(session: Session, actor: Actor, task_id: str) -> InboxTask | None:
    """The task if the actor may act on it (engine.access.may_act: the rule
    acting_on_tasks states in SQL); None otherwise (callers answer 404). Read
    by its key and checked here: building the SQL condition for one row cost
    more than the rest of a task page's queries."""
    task = session.get(InboxTask, task_id)
    return task if task is not None and may_act(actor, task) else None


def task_is_readable(session: Session, actor: Actor, task_id: str) -> bool:
    """The task exists and the actor may read its product's record
    (engine.access.may_read_product): claim, release and reassign answer a
    task outside that exactly like one that does not exist."""
    task = session.get(InboxTask, task_id)
    instance = session.get(ProcessInstance, task.instance_id) if task is not None else None
    return instance is not None and may_read_product(
        actor, instance.product.producer_id if instance.product else None, instance.areas.values())


def _choices(actor: Actor, supervision: Supervision | None = None) -> tuple[Select, Select]:
    scope = _scope(actor, supervision)
    communes = (select(Jurisdiction.id, Jurisdiction.name)
                .where(Jurisdiction.id.in_(select(Producer.commune_id)
                                           .join(InboxTask, InboxTask.producer_id == Producer.id).where(scope)))
                .order_by(Jurisdiction.name))
    groups = (select(Product.group_code).distinct()
              .where(Product.id.in_(select(InboxTask.product_id).where(scope)))
              .order_by(Product.group_code))
    return communes, groups


def filter_choices(session: Session, actor: Actor,
                   supervision: Supervision | None = None) -> dict[str, list]:
    """Values the inbox filters can take, from the tasks the actor sees:
    communes [(id, name)] and criteria set codes."""
    communes, groups = _choices(actor, supervision)
    return {"communes": [tuple(row) for row in session.execute(communes).all()],
            "groups": list(session.scalars(groups).all())}


def user_names(session: Session, user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())


def active_user_named(session: Session, username: str) -> Actor | None:
    """The active user with this username, as an actor (whom a supervisor
    hands a task to), or None."""
    user = session.scalar(select(User).where(User.username == username)) if username else None
    return load_actor(session, user.id) if user is not None and user.is_active else None


def colleagues(session: Session, role: str, jurisdiction_id: int | None) -> list[tuple[str, str]]:
    """(username, full name) of the active users holding `role` for the area:
    whom a supervisor may hand such a task to."""
    return [tuple(row) for row in session.execute(
        select(User.username, User.full_name)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == role, RoleAssignment.jurisdiction_id == jurisdiction_id,
               User.is_active.is_(True))
        .order_by(User.full_name)).all()]


def colleagues_for(session: Session, areas) -> dict[tuple[str, int | None], list[tuple[str, str]]]:
    """colleagues() of several (role, area) pairs in one query: the inbox
    page needs them for every supervised task it lists."""
    by_role: dict[str, set] = {}
    for role, area in areas:
        by_role.setdefault(role, set()).add(area)
    found: dict[tuple[str, int | None], list[tuple[str, str]]] = {pair: [] for pair in areas}
    if not by_role:
        return found
    rows = session.execute(
        select(RoleAssignment.role, RoleAssignment.jurisdiction_id, User.username, User.full_name)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(or_(*[and_(RoleAssignment.role == role, RoleAssignment.jurisdiction_id.in_(sorted(found_areas)))
                     for role, found_areas in sorted(by_role.items())]),
               User.is_active.is_(True))
        .order_by(User.full_name)).all()
    for role, area, username, full_name in rows:
        found[(role, area)].append((username, full_name))
    return found


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
