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
