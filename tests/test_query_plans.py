"""The inbox's queries reach the big tables through indexes (PostgreSQL).

A realistic amount of rows (the inbox benchmark's world from
testkit/inbox_dataset.py at half size: the whole country's areas and 1,000
officers, 50,000 products in flight, ~57,000 task rows), VACUUM ANALYZEd as autovacuum keeps a live database,
then EXPLAIN (FORMAT JSON) of the statements
programme/inbox.py builds (compiled from the code, so the test follows it) for
a commune officer, a district officer, the province council, a program
manager (supervision) and the central council: the list's total and page,
the counts, the page's overview and the filter choices. No plan may read
task, process_instance, product or producer sequentially (nor a whole
index of one of them), and task must be reached through an index. The
jurisdiction table (one row per area, ~8,000) may be read whole: hashing
it can be cheaper than a thousand lookups. Timing is the benchmark's
business (bench/inbox.py), not this test's.

Why 50,000: a program manager's inbox is every task of the province's
producers (up to ~3% of all tasks, scattered over the table). With ~20,000
products the tables are small enough (a few hundred pages) that reading
them whole is the cheaper plan and PostgreSQL rightly takes it; from about
50,000 on, the index paths win, as they do at the benchmark's 100,000.
"""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import and_, create_engine, func, select, true

from engine.access import Supervision, acting_on_tasks, load_actor, supervision_of
from programme import inbox
from programme.inbox import Cursor, InboxFilter
from storage.models import InboxTask, Producer, RoleAssignment
from testkit.inbox_dataset import NOW, build

BIG_TABLES = {"task", "process_instance", "product", "producer"}
PRODUCTS = 50_000


@pytest.fixture(scope="module")
def world_url(pg_server):
    name = f"t_plans_{uuid.uuid4().hex[:8]}"
    url = pg_server.create_database(name)
    build(url, products=PRODUCTS, analyze=True)
    settle(url)
    yield url
    pg_server.drop_database(name)


def settle(url: str) -> None:
    """The state autovacuum keeps a live database in: every page of the big
    tables all-visible (so the planner can count on index-only scans).
    VACUUM cannot mark a page whose rows' commit is not yet flushed to the
    WAL, and the test cluster commits asynchronously: a CHECKPOINT first
    flushes it, whatever else the busy cluster was doing. Then the
    precondition is checked, so a plan failure below is about the plan."""
    sql_engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with sql_engine.connect() as conn:
        for _attempt in range(5):  # a snapshot held elsewhere at that moment may hold VACUUM back
            conn.exec_driver_sql("CHECKPOINT")
            conn.exec_driver_sql("VACUUM (ANALYZE) task, process_instance, product, producer")
            pages = conn.exec_driver_sql(
                "SELECT relname, relpages, relallvisible FROM pg_class WHERE relname IN "
                "('task', 'process_instance', 'product', 'producer')").all()
            unsettled = [row for row in pages if row.relallvisible < 0.9 * row.relpages]
            if not unsettled:
                break
            time.sleep(1)
    sql_engine.dispose()
    assert not unsettled, f"VACUUM left pages not all-visible: {unsettled}"


@pytest.fixture(scope="module")
def connection(world_url):
    sql_engine = create_engine(world_url)
    with sql_engine.connect() as conn:
        yield conn
    sql_engine.dispose()


def officer(conn, role: str, areas: int = 1) -> int:
    """An officer holding `role` for at least `areas` areas (if any does),
    the one with the most tasks of that role (a program manager: in the
    province itself, which grows with the province): plans matter where
    rows are."""
    held: dict[int, list[int]] = {}
    for user, area in conn.execute(select(RoleAssignment.user_id, RoleAssignment.jurisdiction_id)
                                   .where(RoleAssignment.role == role)):
        held.setdefault(user, []).append(area)
    candidates = [user for user, found in held.items() if len(found) >= areas] or list(held)
    tasks = dict(conn.execute(
        select(RoleAssignment.user_id, func.count(InboxTask.id))
        .join(InboxTask, and_(InboxTask.jurisdiction_id == RoleAssignment.jurisdiction_id,
                              InboxTask.role == RoleAssignment.role if role != "program_manager" else true()))
        .where(RoleAssignment.user_id.in_(candidates)).group_by(RoleAssignment.user_id)).all())
    return max(candidates, key=lambda user: (tasks.get(user, 0), -user))


def actor_and_supervision(conn, user_id: int):
    from sqlalchemy.orm import Session
    with Session(bind=conn) as session:
        actor = load_actor(session, user_id)
        supervision = supervision_of(session, actor)
    return actor, (supervision or None)


def statements(conn, actor, supervision: Supervision | None) -> dict[str, object]:
    """Every statement the inbox page and the API's task list run for this
    actor, for the default view and the filters people use."""
    commune = conn.execute(select(Producer.commune_id).join(InboxTask, InboxTask.producer_id == Producer.id)
                           .where(acting_on_tasks(actor) if supervision is None else supervision.condition())
                           .limit(1)).scalar()
    filters = {
        "default": InboxFilter(),
        "due": InboxFilter(sort="due", overdue=True),
        "commune": InboxFilter(commune_id=commune, scope="unassigned"),
        "group_product_page2": InboxFilter(group_code="S10", sort="product", after=Cursor("Mật ong", "8")),
        "due_page2": InboxFilter(sort="due", after=Cursor(NOW, "8")),
        "waiting_page2": InboxFilter(after=Cursor(NOW - timedelta(days=30), "8")),
        "step_mine": InboxFilter(step=5, form_key="score_product", scope="mine"),
    }
    found = {}
    for name, f in filters.items():
        found[f"total[{name}]"] = inbox._total(actor, f, NOW, supervision)
        found[f"page[{name}]"] = inbox._page(actor, f, NOW, supervision)
    found["counts"] = inbox._counts_in_one_pass(actor, NOW, supervision)
    found["counts.capped"] = inbox._counts(actor, NOW, supervision)
    found["choices.communes"] = inbox._communes_of(sorted({area for _role, area in actor.roles}),
                                                   sorted(supervision.area_ids) if supervision else [])
    return found


def plan_of(conn, statement) -> dict:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    return conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()[0]["Plan"]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


LEVELS = {
    "commune officer": ("commune_officer", 2),
    "district officer": ("district_officer", 1),
    "province council": ("province_council", 1),
    "program manager": ("program_manager", 1),
    "central council": ("central_council", 1),
}


@pytest.mark.parametrize("level", LEVELS)
def test_inbox_queries_read_the_big_tables_through_indexes(connection, level):
    role, areas = LEVELS[level]
    actor, supervision = actor_and_supervision(connection, officer(connection, role, areas))
    if level == "program manager":
        assert supervision is not None and supervision.area_ids
    problems, reached = [], set()
    for name, statement in statements(connection, actor, supervision).items():
        plan = plan_of(connection, statement)
        for node in nodes(plan):
            relation = node.get("Relation Name")
            if node["Node Type"] == "Seq Scan" and relation in BIG_TABLES:
                problems.append(f"{name}: Seq Scan on {relation}")
            if node["Node Type"] in ("Index Scan", "Index Only Scan") and relation in BIG_TABLES \
                    and "Index Cond" not in node:  # the whole index read, e.g. for its order
                problems.append(f"{name}: full scan of {node['Index Name']} on {relation}")
            if relation and node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"):
                reached.add(relation)
    assert problems == []
    assert "task" in reached
