"""What someone with write access to the database could do to the record,
for the tests that show each change is found."""
from __future__ import annotations

import json

from sqlalchemy import select, text

from engine.events import GENESIS, event_hash
from storage.db import as_utc
from storage.models import AuditEvent, ProcessInstance


def drop_append_only_guard(session) -> None:
    """The first step: the database refuses to change history otherwise."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
    else:
        session.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
        session.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))


def events(session, instance_id: int) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                .order_by(AuditEvent.seq)))


def event_where(session, instance_id: int, kind: str, **data) -> AuditEvent:
    """The first event of a kind whose data has the given values."""
    return next(e for e in events(session, instance_id)
                if e.kind == kind and all(e.data.get(k) == v for k, v in data.items()))


def alter(session, event: AuditEvent, **changes) -> None:
    """Change an event's data in place (its hash no longer fits)."""
    session.execute(AuditEvent.__table__.update().where(AuditEvent.id == event.id)
                    .values(data={**event.data, **changes}))


def delete(session, instance_id: int, seq: int) -> None:
    session.execute(text("DELETE FROM audit_event WHERE instance_id = :i AND seq = :s"), {"i": instance_id, "s": seq})


def swap(session, instance_id: int, first: int, second: int) -> None:
    """Exchange the positions of two events (three steps: seq is unique)."""
    statement = text("UPDATE audit_event SET seq = :new WHERE instance_id = :i AND seq = :old")
    session.execute(statement, {"i": instance_id, "old": first, "new": -1})
    session.execute(statement, {"i": instance_id, "old": second, "new": first})
    session.execute(statement, {"i": instance_id, "old": -1, "new": second})


def rewrite(session, instance_id: int, seq: int, data: dict) -> None:
    """The careful attack: replace one event's data and recompute its hash,
    every later hash and the instance's head, so every chain check passes."""
    rows = events(session, instance_id)
    prev = GENESIS
    for row in rows:
        new_data = data if row.seq == seq else row.data
        digest = event_hash(prev, instance_id, row.seq, as_utc(row.at), row.actor_id, row.kind,
                                  row.element_id, new_data)
        session.execute(AuditEvent.__table__.update().where(AuditEvent.id == row.id)
                        .values(data=new_data, prev_hash=prev, hash=digest))
        prev = digest
    session.execute(ProcessInstance.__table__.update().where(ProcessInstance.id == instance_id)
                    .values(audit_head=prev))


def edit_state(session, instance_id: int, variable: str, value) -> None:
    """Change a process variable in the stored workflow state of every task
    that carries it, and in the workflow data: what the next step reads."""
    instance = session.get(ProcessInstance, instance_id)
    state = json.loads(instance.state)
    for task in state["tasks"].values():
        if variable in task["data"]:
            task["data"][variable] = value
    session.execute(ProcessInstance.__table__.update().where(ProcessInstance.id == instance_id)
                    .values(state=json.dumps(state, ensure_ascii=False)))


def update_instance(session, instance_id: int, **columns) -> None:
    """Change columns of the instance row (no trigger guards it: the engine writes it on every call)."""
    session.execute(ProcessInstance.__table__.update().where(ProcessInstance.id == instance_id).values(**columns))


def swap_products(session, first: int, second: int) -> None:
    """Give each instance the other's product (via NULL: a product has one cycle a year)."""
    products = dict(session.execute(select(ProcessInstance.id, ProcessInstance.product_id)
                                    .where(ProcessInstance.id.in_((first, second)))).all())
    update_instance(session, first, product_id=None)
    update_instance(session, second, product_id=products[first])
    update_instance(session, first, product_id=products[second])


def copy_history(session, instance_id: int) -> int:
    """A new instance of the same product for the next year carrying a copy
    of an instance's history, every event rehashed under the new instance
    id and dated as the original: a chain and a row that agree, claiming
    to be as old as the copied one."""
    source = session.get(ProcessInstance, instance_id)
    row = {c: getattr(source, c) for c in ProcessInstance.__table__.columns.keys() if c != "id"}
    new_id = session.execute(ProcessInstance.__table__.insert().values(
        **row | {"year": source.year + 1})).inserted_primary_key[0]
    prev = GENESIS
    for event in events(session, instance_id):
        data = event.data
        if event.kind == "started":
            data = {**data, "data": {**data["data"], "year": source.year + 1}}
        digest = event_hash(prev, new_id, event.seq, as_utc(event.at), event.actor_id, event.kind,
                            event.element_id, data)
        session.execute(AuditEvent.__table__.insert().values(
            instance_id=new_id, seq=event.seq, at=event.at, actor_id=event.actor_id, kind=event.kind,
            element_id=event.element_id, data=data, prev_hash=prev, hash=digest))
        prev = digest
    update_instance(session, new_id, audit_head=prev)
    return new_id


def append(session, instance_id: int, kind: str, data: dict, at) -> None:
    """An event added at the end of a chain, hashed and linked as the engine would, dated `at`."""
    instance = session.get(ProcessInstance, instance_id)
    seq = instance.audit_seq + 1
    digest = event_hash(instance.audit_head, instance_id, seq, as_utc(at), None, kind, None, data)
    session.execute(AuditEvent.__table__.insert().values(
        instance_id=instance_id, seq=seq, at=at, actor_id=None, kind=kind, element_id=None, data=data,
        prev_hash=instance.audit_head, hash=digest))
    update_instance(session, instance_id, audit_seq=seq, audit_head=digest)
