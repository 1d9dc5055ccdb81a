"""Reading the inbox, for officers and producers: ready tasks from the
indexed task table, never from workflows, and what the task page shows
beside a task. Every query is limited to what the actor may act on (or,
for supervisors, supervises)."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, case, func, literal, or_, select, true, tuple_, union, union_all
from sqlalchemy.orm import Session

from engine.access import Actor, Supervision, acting_on_tasks, load_actor, may_act, may_read_product
from engine.roles import LANE_ROLES, ROLES
from storage.models import AuditEvent, InboxTask, Jurisdiction, ProcessInstance, Producer, Product, RoleAssignment, User

PAGE_SIZE = 25
DUE_SOON = timedelta(days=3)
# Counts stop one past this (the page shows "1000+"): counting a whole
# country's tasks costs as much as reading them, and nobody works from the
# exact figure past a thousand. Under it, counts are exact.
COUNT_CAP = 1000
# The commune filter lists the communes of the actor's areas up to this
# many; a national scope (7,000 communes) gets no list, only the other filters.
COMMUNE_CHOICES_CAP = 500
# Each sort's key, then the task id (unique: a total order, which keyset
# pages need). A key that may be NULL (no deadline, an outreach task has no
# product) sorts after every value, on both databases (SQLite puts NULL
# first by default, PostgreSQL last).
SORTS = {"waiting": InboxTask.created_at, "due": InboxTask.due_at, "product": Product.name}
_NOT_NULL_SORTS = frozenset({"waiting"})


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after the task with this sort key and id
    (keyset pagination). A page then costs the same wherever it is, and a
    task completed between two page loads moves no other task across the
    page boundary (an offset would skip one)."""

    key: datetime | str | None
    task_id: str

    def encode(self) -> str:
        """The cursor as a URL-safe token."""
        key = self.key.isoformat() if isinstance(self.key, datetime) else self.key
        return base64.urlsafe_b64encode(json.dumps([key, self.task_id]).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str) -> Cursor:
        """The cursor of a token made by encode() for this sort; ValueError
        for anything else (a token is user input)."""
        try:
            key, task_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError):
            raise ValueError("not an inbox cursor") from None
        if not isinstance(task_id, str) or len(task_id) > 36 or not (key is None or isinstance(key, str)) \
                or (key is None and sort in _NOT_NULL_SORTS) or (key is not None and len(key) > 255):
            raise ValueError("not an inbox cursor")
        return cls(datetime.fromisoformat(key) if key is not None and sort != "product" else key, task_id)

    @classmethod
    def after(cls, row, sort: str) -> Cursor:
        """The cursor after a listed row (task, product, producer, commune)."""
        task, product = row[0], row[1]
        key = {"waiting": task.created_at, "due": task.due_at, "product": product.name if product else None}[sort]
        return cls(key, task.id)


@dataclass
class InboxFilter:
    step: int | None = None
    form_key: str | None = None
    commune_id: int | None = None
    group_code: str | None = None
    scope: str = "area"          # area | mine | unassigned
    overdue: bool = False
    sort: str = "waiting"
    # The inbox page starts after a cursor; the JSON API keeps the page
    # numbers of its published contract (bounded, web/api/schemas.py).
    after: Cursor | None = None
    page: int = 1


# Officers' roles that own lanes of the cycle: tasks wait on them.
_LANE_OFFICER_ROLES = frozenset(role.key for role in LANE_ROLES) - {"producer"}


def has_inbox(actor: Actor, supervision: Supervision | None) -> bool:
    """Whether the actor has tasks to list at all: it holds a lane's role,
    owns a producer, or supervises an area. An auditor acts on no task and
    supervises none: no inbox."""
    acts = any(role in _LANE_OFFICER_ROLES for role, _area in actor.roles) or bool(actor.producer_ids)
    return acts or bool(supervision)


def _acting(actor: Actor):
    """The tasks the actor acts on, less those the diagram gave to a
    colleague alone (a council member's own sheet): five members would
    otherwise each see five sheets per product. Supervisors still see them
    (_scope)."""
    return and_(acting_on_tasks(actor),
                or_(InboxTask.personal.is_(False), InboxTask.assignee_id == actor.user_id))


def _scope(actor: Actor, supervision: Supervision | None):
    """Tasks the actor may act on, plus those it supervises. With
    supervision, one `task.id IN (... UNION ALL ...)` of index-served
    selects: an OR of the two conditions would make both databases read
    the whole task table."""
    if not supervision:
        return _acting(actor)
    if supervision.everything:
        return true()
    mine = select(InboxTask.id).where(_acting(actor)).correlate(None)
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


def _capped_count(query: Select) -> Select:
    """COUNT of the query's rows, reading at most COUNT_CAP + 1 of them."""
    return select(func.count()).select_from(query.limit(COUNT_CAP + 1).subquery())


def _total(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision | None = None) -> Select:
    """COUNT of the filtered inbox (capped), joining only what a filter
    reads (an equality on the joined row makes the inner join the same as
    the outer)."""
    query = select(InboxTask.id)
    if f.group_code:
        query = query.join(Product, Product.id == InboxTask.product_id)
    if f.commune_id:
        query = query.join(Producer, Producer.id == InboxTask.producer_id)
    return _capped_count(query.where(*_conditions(actor, f, now, supervision)))


def _key_and_id(sort: str, columns=None) -> tuple:
    """The sort's key and the task id, as InboxTask's columns or (for the
    task's own columns) those of `columns`, rows of the actor's tasks."""
    key = SORTS[sort]
    if columns is None:
        return key, InboxTask.id
    return columns[key.key], columns.id


def _order(sort: str, columns=None) -> tuple:
    key, task_id = _key_and_id(sort, columns)
    return (key, task_id) if sort in _NOT_NULL_SORTS else (key.is_(None), key, task_id)


def _after(sort: str, cursor: Cursor, keyed: bool = False, columns=None):
    """The rows after the cursor in _order(sort); with `keyed`, only those
    with a key. A row-value comparison, which both databases read as a
    range of an index on (key, id)."""
    key, task_id = _key_and_id(sort, columns)
    if cursor.key is None:  # among the rows without a key, which come last
        return and_(key.is_(None), task_id > cursor.task_id)
    later = tuple_(key, task_id) > tuple_(literal(cursor.key, SORTS[sort].type), literal(cursor.task_id))
    return later if sort in _NOT_NULL_SORTS or keyed else or_(later, key.is_(None))


def _supervised_page_ids(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision,
                         sort: str, count: int) -> Select:
    """The first `count` task ids of a supervisor's page in the waiting or
    due order with at most the quick filters, from its scope's rows as
    ix_task_producer holds them (_scope_rows): its province's tasks are read
    from the index alone, not each one's row again by its id."""
    rows = _scope_rows(actor, supervision, InboxTask.created_at, InboxTask.due_at, InboxTask.assignee_id).subquery()
    quick = _quick_conditions(actor, now, rows.c)
    where = {"mine": quick[1], "unassigned": quick[2]}.get(f.scope, []) + (quick[3] if f.overdue else [])
    if f.after:
        where.append(_after(sort, f.after, columns=rows.c))
    return select(rows.c.id).where(*where).order_by(*_order(sort, rows.c)).limit(count)



def _due_ids(conditions: list, after: Cursor | None, count: int) -> Select:
    """The first `count` task ids in the "due" order: the tasks with a
    deadline by (due_at, id), then those without by id -- two parts, each
    read in the order of ix_task_due and stopped at `count`, instead of one
    sort of every task in the country, for an administrator. Only then: for
    a narrower scope, walking the whole index in order and filtering by the
    scope costs more than sorting the scope's tasks."""
    due = InboxTask.due_at
    in_undated = after is not None and after.key is None
    undated = (select(InboxTask.id, due)
               .where(*conditions, due.is_(None), *([InboxTask.id > after.task_id] if in_undated else []))
               .order_by(InboxTask.id).limit(count))
    parts = [undated]
    if not in_undated:
        parts.insert(0, select(InboxTask.id, due)
                     .where(*conditions, due.is_not(None), *([_after("due", after, keyed=True)] if after else []))
                     .order_by(due, InboxTask.id).limit(count))
    both = union_all(*[part.subquery().select() for part in parts]).subquery()
    return select(both.c.id).order_by(both.c.due_at.is_(None), both.c.due_at, both.c.id).limit(count)


def _page(actor: Actor, f: InboxFilter, now: datetime, supervision: Supervision | None = None) -> Select:
    """One page of the filtered inbox and the first row of the next (so the
    page knows whether there is one). When neither the filters nor the
    order read the product or the producer, the page's task ids are chosen
    first from the task table alone and only those rows are joined (not
    every task in scope before sorting)."""
    sort = f.sort if f.sort in SORTS else "waiting"
    order = _order(sort)
    after = [_after(sort, f.after)] if f.after else []
    offset = (max(f.page, 1) - 1) * PAGE_SIZE
    if f.commune_id or f.group_code or sort == "product":
        return (_filtered(actor, f, now, supervision).where(*after).order_by(*order)
                .limit(PAGE_SIZE + 1).offset(offset))
    if sort == "due" and supervision is not None and supervision.everything:
        ids = _due_ids(_conditions(actor, f, now, supervision), f.after, offset + PAGE_SIZE + 1).offset(offset)
    elif supervision and not supervision.everything and not (f.step or f.form_key):
        ids = _supervised_page_ids(actor, f, now, supervision, sort, offset + PAGE_SIZE + 1).offset(offset)
    else:
        ids = (select(InboxTask.id).where(*_conditions(actor, f, now, supervision), *after)
               .order_by(*order).limit(PAGE_SIZE + 1).offset(offset))
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


@dataclass
class TaskPage:
    """One page of the inbox: rows (task, product, producer, commune), the
    filter's total (capped: COUNT_CAP + 1 means "more than COUNT_CAP"), and
    the cursor of the next page (None on the last)."""

    rows: list
    total: int
    next: Cursor | None


def list_tasks(session: Session, actor: Actor, f: InboxFilter, now: datetime,
               supervision: Supervision | None = None, tallies: dict[str, int] | None = None) -> TaskPage:
    """One page of the filtered inbox. With `supervision`, the supervised
    areas' tasks are listed too. With `tallies` (this actor's counts() at
    the same `now`), a filter that is one of the quick filters takes its
    total from them instead of counting again."""
    total = _known_total(f, tallies)
    if total is None:
        total = session.scalar(_total(actor, f, now, supervision))
    rows = session.execute(_page(actor, f, now, supervision)).all()
    sort = f.sort if f.sort in SORTS else "waiting"
    following = Cursor.after(rows[PAGE_SIZE - 1], sort) if len(rows) > PAGE_SIZE else None
    return TaskPage(rows[:PAGE_SIZE], total, following)


COUNTS = ("area", "mine", "unassigned", "overdue", "due_soon")


# Up to this many tasks in scope, the quick-filter counts come from one
# pass over them (an officer's, a province's, the central council's); past
# it (an administrator's country), each count reads its own index instead.
ONE_PASS = 5000


def _quick_conditions(actor: Actor, now: datetime, columns=InboxTask.__table__.c) -> list[list]:
    """The quick filters' conditions on these columns, in the order of COUNTS."""
    assignee, due = columns.assignee_id, columns.due_at
    return [[], [assignee == actor.user_id], [assignee.is_(None)], [due < now], [due >= now, due < now + DUE_SOON]]


def _scope_rows(actor: Actor, supervision: Supervision | None, *columns):
    """The actor's tasks as rows of their id and these columns: with
    supervision, a UNION (a task both acted on and supervised once) of row
    selects, each served by its index, so no task is looked up again by its
    key after its id was found (`_scope`'s IN), which doubled the cost of
    reading a province's tasks."""
    columns = (InboxTask.id, *columns)
    if not supervision or supervision.everything:
        return select(*columns).where(_scope(actor, supervision))
    return union(select(*columns).where(_acting(actor)).correlate(None), *supervision.task_ids(*columns))


def _counts_in_one_pass(actor: Actor, now: datetime, supervision: Supervision | None = None) -> Select:
    """Every quick-filter count from one read of at most ONE_PASS + 1 of
    the actor's tasks: exact when the first count is at most ONE_PASS."""
    tasks = _scope_rows(actor, supervision, InboxTask.assignee_id, InboxTask.due_at).limit(ONE_PASS + 1).subquery()
    return select(*[func.count(case((and_(*condition), 1))) if condition else func.count()
                    for condition in _quick_conditions(actor, now, tasks.c)])


def _counts(actor: Actor, now: datetime, supervision: Supervision | None = None) -> Select:
    """Every quick-filter count in one statement, each capped: none reads
    more than COUNT_CAP + 1 of the actor's tasks, whatever the scope."""
    scope = _scope(actor, supervision)
    return select(*[_capped_count(select(InboxTask.id).where(scope, *condition)).scalar_subquery()
                    for condition in _quick_conditions(actor, now)])


def counts(session: Session, actor: Actor, now: datetime,
           supervision: Supervision | None = None) -> dict[str, int]:
    """How many tasks each quick filter would show, capped: COUNT_CAP + 1
    means more than COUNT_CAP."""
    found = session.execute(_counts_in_one_pass(actor, now, supervision)).one()
    if found[0] > ONE_PASS:
        found = session.execute(_counts(actor, now, supervision)).one()
    return {key: min(count, COUNT_CAP + 1) for key, count in zip(COUNTS, found)}


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
    return task is not None and _instance_is_readable(session, actor, task.instance_id)


def _instance_is_readable(session: Session, actor: Actor, instance_id: int) -> bool:
    instance = session.get(ProcessInstance, instance_id)
    return instance is not None and may_read_product(
        actor, instance.product.producer_id if instance.product else None, instance.areas.values())


# A completion that lost the race to another arrives moments after the
# winner's commit: the newest this many events cover minutes at the busiest
# hour, and they are read by a primary-key range, so the look-up costs the
# same whatever the size of the history.
RECENT_EVENTS = 10_000


def completed_lately(session: Session, actor: Actor, task_id: str) -> bool:
    """Whether a task that is no longer in the inbox was completed among the
    newest RECENT_EVENTS events, on a product the actor may read: a
    completion of it now lost a race (409, "someone else just changed
    this"), not a request for a task that never was (404). Outside the
    actor's reach it answers False, so another area's task ids stay
    indistinguishable from missing ones."""
    newest = session.scalar(select(func.max(AuditEvent.id)))
    if newest is None:
        return False
    instance_id = session.scalar(
        select(AuditEvent.instance_id)
        .where(AuditEvent.id > newest - RECENT_EVENTS, AuditEvent.kind == "task_completed",
               AuditEvent.data["task_id"].as_string() == task_id)
        .limit(1))
    return instance_id is not None and _instance_is_readable(session, actor, instance_id)


def _communes_of(areas: list[int], supervised: list[int]) -> Select:
    """The communes in the `areas` an officer acts for (a commune, or one of
    its district, its province or the country) and among the `supervised`
    areas (a supervisor's areas are every area of its provinces, communes
    included), by name, at most COMMUNE_CHOICES_CAP + 1. The officer's few
    areas are expanded three levels down through the jurisdiction's parent
    index; never the actor's tasks."""
    communes = select(Jurisdiction.id, Jurisdiction.name).where(Jurisdiction.level == "commune")
    ordered = (Jurisdiction.name, Jurisdiction.id)
    if not areas:
        # A supervisor alone: its areas hold its communes already, read by
        # primary key (a union with the tree walk made PostgreSQL scan the table).
        return communes.where(Jurisdiction.id.in_(supervised)).order_by(*ordered).limit(COMMUNE_CHOICES_CAP + 1)
    level = select(Jurisdiction.id).where(Jurisdiction.id.in_(areas))
    within = [level, select(Jurisdiction.id).where(Jurisdiction.id.in_(supervised))]
    for _depth in range(3):  # district or province -> ... -> commune; the country has three levels below
        level = select(Jurisdiction.id).where(Jurisdiction.parent_id.in_(level))
        within.append(level)
    return (communes.where(Jurisdiction.id.in_(union_all(*within)))
            .order_by(*ordered).limit(COMMUNE_CHOICES_CAP + 1))


def filter_choices(session: Session, actor: Actor, supervision: Supervision | None = None) -> list[tuple[int, str]]:
    """The commune filter's choices [(id, name)]: the communes of the areas
    the actor acts in or supervises. Not the communes of its tasks: finding
    those reads every task in scope, which at national scale costs more than
    the rest of the page. Empty past COMMUNE_CHOICES_CAP (a national scope):
    no list is offered. A producer's inbox, its own products' tasks, needs none."""
    officer_roles = [(role, area) for role, area in actor.roles if role in _LANE_OFFICER_ROLES and area is not None]
    if (supervision is not None and supervision.everything) or any(
            ROLES[role].level == "central" for role, _area in officer_roles):
        return []  # the whole country
    areas = sorted({area for _role, area in officer_roles})
    supervised = sorted(supervision.area_ids) if supervision else []
    if not areas and not supervised:
        return []
    communes = [tuple(row) for row in session.execute(_communes_of(areas, supervised)).all()]
    return communes if len(communes) <= COMMUNE_CHOICES_CAP else []


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
