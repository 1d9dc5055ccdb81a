"""Each access rule's Python predicate and its SQL condition agree
(engine/access.py): for random actors -- any roles at any areas, any
producers owned -- and random rows, on SQLite and PostgreSQL, the rows the
SQL selects are exactly those the predicate allows."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.orm import aliased

from engine import access
from engine.access import Actor, Oversight, Supervision
from engine.roles import ROLES
from engine.sandbox import seed_world
from storage.areas import area_chain
from storage.db import Database
from storage.migrate import upgrade
from storage.models import InboxTask, Jurisdiction, ProcessDefinition, ProcessInstance, Producer, Product

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class World:
    """The sandbox areas and producers, one product instance per product and
    one outreach instance per area, read once."""

    def __init__(self, db: Database):
        self.db = db
        seed_world(db)
        with db.transaction() as session:
            definition = ProcessDefinition(name="policy", version=1, bpmn_xml="", sha256="0" * 64, specs={},
                                           author="test", is_active=False)
            session.add(definition)
            session.flush()
            self.areas = {unit.id: unit for unit in session.scalars(select(Jurisdiction))}
            self.chains = {area_id: area_chain(session, area_id) for area_id in self.areas}
            self.producers = {p.id: p.commune_id for p in session.scalars(select(Producer))}
            products = list(session.scalars(select(Product)))
            self.instances = {}  # id -> (product id or None, producer id or None, area chain)
            for product in products:
                commune = self.producers[product.producer_id]
                self.instances[self._instance(session, definition.id, product.id, commune)] = (
                    product.id, product.producer_id, self.chains[commune])
            for area_id in self.areas:
                self.instances[self._instance(session, definition.id, None, area_id)] = (
                    None, None, self.chains[area_id])

    def _instance(self, session, definition_id: int, product_id: int | None, area_id: int) -> int:
        row = session.execute(insert(ProcessInstance).values(
            definition_id=definition_id, process_id="p", product_id=product_id, jurisdiction_id=area_id,
            areas=self.chains[area_id], year=2026, state="", version=1)).inserted_primary_key[0]
        return row


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def policy_world(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('policy') / 'policy.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database(f"policy_{uuid.uuid4().hex[:10]}")
    db = Database(url)
    upgrade(db.sql_engine)
    yield World(db)
    db.dispose()


def actors(world: World):
    """Any roles at any areas (or at none), any producers owned."""
    held = st.tuples(st.sampled_from(sorted(ROLES)), st.sampled_from([None, *sorted(world.areas)]))
    return st.builds(lambda roles, producers: Actor(1, "x", frozenset(roles), frozenset(producers)),
                     st.frozensets(held, max_size=4),
                     st.frozensets(st.sampled_from(sorted(world.producers)), max_size=2))


def task_rows(world: World, actor: Actor):
    """Inbox rows on random instances: of random roles at random areas, and
    of the roles the actor holds at the areas it holds them for (so the rows
    a rule is about turn up often, not by luck)."""
    instances = st.sampled_from(sorted(world.instances))
    anywhere = st.tuples(instances, st.sampled_from(sorted(ROLES)), st.sampled_from([None, *sorted(world.areas)]))
    rows = [anywhere]
    if actor.roles:
        rows.append(st.tuples(instances, st.sampled_from(sorted(actor.roles, key=str))).map(
            lambda pair: (pair[0], *pair[1])))
    return st.lists(st.one_of(*rows), min_size=1, max_size=12)


def _insert_tasks(connection, world: World, rows) -> dict[str, dict]:
    tasks = {}
    for instance_id, role, area in rows:
        product_id, producer_id, _chain = world.instances[instance_id]
        task = dict(id=str(uuid.uuid4()), instance_id=instance_id, product_id=product_id, producer_id=producer_id,
                    element_id="t", name="t", lane=role, role=role, jurisdiction_id=area, form_key="f",
                    data_key="f", step=None, created_at=NOW, due_at=None)
        tasks[task["id"]] = task
    connection.execute(insert(InboxTask.__table__), list(tasks.values()))
    return tasks


class Row(dict):
    __getattr__ = dict.__getitem__


def _selected(connection, condition, ids) -> set[str]:
    return set(connection.scalars(select(InboxTask.id).where(condition, InboxTask.id.in_(list(ids)))))


def test_acting_on_a_task(policy_world):
    @SETTINGS
    @given(actor=actors(policy_world), data=st.data())
    def check(actor, data):
        rows = data.draw(task_rows(policy_world, actor))
        with policy_world.db.sql_engine.connect() as connection, connection.begin() as transaction:
            tasks = _insert_tasks(connection, policy_world, rows)
            allowed = {task_id for task_id, task in tasks.items() if access.may_act(actor, Row(task))}
            assert _selected(connection, access.acting_on_tasks(actor), tasks) == allowed
            transaction.rollback()
    check()


def test_supervising_an_instance(policy_world):
    """Supervision's SQL on task rows, its row check, and `supervises` on the
    instance's areas (what the engine checks before a release or a cancel)."""
    @SETTINGS
    @given(actor=actors(policy_world), data=st.data())
    def check(actor, data):
        rows = data.draw(task_rows(policy_world, actor))
        with policy_world.db.sessions() as session:
            supervision = access.supervision_of(session, actor)
        with policy_world.db.sql_engine.connect() as connection, connection.begin() as transaction:
            tasks = _insert_tasks(connection, policy_world, rows)
            by_row, by_rule = set(), set()
            for task_id, task in tasks.items():
                _product, producer_id, chain = policy_world.instances[task["instance_id"]]
                if supervision.covers(Row(task), policy_world.producers.get(producer_id)):
                    by_row.add(task_id)
                # A product's task belongs to its instance's province; an
                # outreach task to the area it runs in.
                areas = chain if task["product_id"] is not None else policy_world.chains.get(task["jurisdiction_id"])
                if areas is not None and access.supervises(actor, areas):
                    by_rule.add(task_id)
            assert _selected(connection, supervision.condition(), tasks) == by_row
            # (An outreach task for no area belongs to nobody's province.)
            placed = {t for t, task in tasks.items() if task["product_id"] is not None or task["jurisdiction_id"]}
            assert by_row & placed == by_rule
            transaction.rollback()
    check()


def test_managing_a_producer(policy_world):
    @SETTINGS
    @given(actor=actors(policy_world))
    def check(actor):
        with policy_world.db.sessions() as session:
            selected = set(session.scalars(select(Producer.id).where(access.managed_producers(actor))))
        allowed = {pid for pid, commune in policy_world.producers.items()
                   if access.may_manage_producer(actor, pid, commune)}
        assert selected == allowed
    check()


def test_reading_a_product(policy_world):
    @SETTINGS
    @given(actor=actors(policy_world))
    def check(actor):
        commune, up1, up2 = aliased(Jurisdiction), aliased(Jurisdiction), aliased(Jurisdiction)
        query = (select(Product.id).join(Producer, Producer.id == Product.producer_id)
                 .join(commune, commune.id == Producer.commune_id)
                 .join(up1, up1.id == commune.parent_id, isouter=True)
                 .join(up2, up2.id == up1.parent_id, isouter=True)
                 .where(access.readable_products(actor, Product.producer_id, commune, up1, up2)))
        with policy_world.db.sessions() as session:
            selected = set(session.scalars(query))
        allowed = {product_id for product_id, producer_id, chain in policy_world.instances.values()
                   if product_id is not None and access.may_read_product(actor, producer_id, chain.values())}
        assert selected == allowed
    check()


def test_overseeing_the_records(policy_world):
    @SETTINGS
    @given(actor=actors(policy_world))
    def check(actor):
        oversight = access.oversight_of(actor)
        with policy_world.db.sessions() as session:
            selected = set(session.scalars(select(ProcessInstance.id).where(oversight.instances())))
        allowed = {instance_id for instance_id, (_p, _producer, chain) in policy_world.instances.items()
                   if oversight.covers(chain)}
        assert selected == allowed
        assert bool(oversight) == (any(role in ("auditor", "admin") for role, _area in actor.roles)
                                   or bool(actor.areas_of("program_manager")))
    check()


def test_an_empty_scope_selects_nothing(policy_world):
    nobody = Actor(1, "x")
    with policy_world.db.sessions() as session:
        assert not session.scalars(select(InboxTask.id).where(access.acting_on_tasks(nobody))).all()
        assert not session.scalars(select(Producer.id).where(access.managed_producers(nobody))).all()
        assert not session.scalars(select(ProcessInstance.id).where(Oversight().instances())).all()
        assert not session.scalars(select(InboxTask.id).where(Supervision().condition())).all()


def test_a_role_held_for_no_area_grants_nothing(policy_world):
    """Only a forged row holds a role for no area (administrators hold theirs
    for the central level): it must not reach records whose area chain
    lacks that level either."""
    for role in sorted(set(ROLES) - {"admin", "auditor"}):
        actor = Actor(1, "x", frozenset({(role, None)}))
        for _product, producer_id, chain in policy_world.instances.values():
            assert not access.supervises(actor, chain) and not access.supervises(actor, {})
            assert not access.may_manage_producer(actor, producer_id, None)
            assert not access.may_start_outreach(actor, chain.get("commune") or chain.get("central"), chain)
            assert not access.may_act(actor, Row(role=role, jurisdiction_id=None, producer_id=producer_id))
        with policy_world.db.sessions() as session:
            assert not access.supervision_of(session, actor)
        assert not access.oversight_of(actor)


def test_keeping_and_seeing_a_council(policy_world):
    """A council for every district, province and the central level, the
    actor seated on a few: kept_councils and seen_councils select exactly
    the councils may_keep_council and may_see_council allow."""
    from storage.council_models import Council, CouncilMember
    council_areas = sorted(a for a, unit in policy_world.areas.items() if unit.level in ("district", "province",
                                                                                         "central"))

    @SETTINGS
    @given(actor=actors(policy_world), seats=st.frozensets(st.sampled_from(council_areas), max_size=3))
    def check(actor, seats):
        with policy_world.db.sql_engine.connect() as connection, connection.begin() as transaction:
            councils = {}
            for area in council_areas:
                council_id = connection.execute(insert(Council.__table__).values(
                    level=policy_world.areas[area].level, area_id=area, name="c", quorum_fraction=0.75,
                    chair_required=True, spread_limit=10.0, active=True, created_at=NOW)).inserted_primary_key[0]
                councils[council_id] = area
                if area in seats:
                    connection.execute(insert(CouncilMember.__table__).values(
                        council_id=council_id, user_id=actor.user_id, department="", council_role="member",
                        added_at=NOW))
            supervision = access.supervision_of(connection, actor)
            ids = list(councils)
            kept = set(connection.scalars(select(Council.id).where(Council.id.in_(ids),
                                                                   access.kept_councils(supervision))))
            seen = set(connection.scalars(select(Council.id).where(Council.id.in_(ids),
                                                                   access.seen_councils(actor, supervision))))
            assert kept == {c for c, area in councils.items()
                            if access.may_keep_council(actor, policy_world.chains[area])}
            assert seen == {c for c, area in councils.items() if access.may_see_council(
                actor, policy_world.chains[area], [actor.user_id] if area in seats else [])}
            transaction.rollback()
    check()
