"""Working a task: saving what was typed as a draft, and completing it.

A completion is one transaction whichever way it comes (the task page's
form post or the JSON API): the engine runs the task (BpmnEngine.complete_task)
and, in the same transaction, the task's drafts -- anyone's -- are removed,
since the task is gone from every inbox.

A draft keeps a form as typed ({field name: [values]}), per task and user;
it never changes the workflow.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.execution import Outcome
from storage.db import Database
from storage.models import InboxTask, Producer, TaskDraft

# Built once: every completion runs it.
_DELETE_DRAFTS = delete(TaskDraft.__table__).where(TaskDraft.__table__.c.task_id == bindparam("task_id"))


def complete(engine: BpmnEngine, task_id: str, data: dict, actor: Actor) -> Outcome:
    """Complete the task with its form data and remove its drafts, in one
    transaction. Raises what the engine raises (FormInvalid, NotAllowed,
    ClaimedByOther, ConcurrencyConflict, ...), having changed nothing."""
    def work(connection: Connection) -> Outcome:
        outcome = engine.complete_task(task_id, data, actor, unit=connection)
        connection.execute(_DELETE_DRAFTS, {"task_id": task_id})
        return outcome
    return engine.run(work, plain=True)


def draft_of(session: Session, task_id: str, user_id: int) -> TaskDraft | None:
    """The user's draft of the task, if any."""
    return session.scalar(select(TaskDraft).where(TaskDraft.task_id == task_id, TaskDraft.user_id == user_id))


def save_draft(db: Database, task_id: str, user_id: int, data: dict, now: datetime) -> None:
    """Keep what the user typed (replacing their earlier draft of the task)."""
    with db.transaction() as session:
        draft = draft_of(session, task_id, user_id)
        if draft is None:
            session.add(TaskDraft(task_id=task_id, user_id=user_id, data=data, saved_at=now))
        else:
            draft.data, draft.saved_at = data, now


def prefill_registration(session: Session, instance_id: int, registration_form: str, now: datetime) -> None:
    """The choice new / existing product (form 01 / 02) made when the
    product was registered, as its owner's draft of the idea registration
    task, so that form opens with it filled in (in the caller's transaction)."""
    row = session.execute(
        select(InboxTask.id, Producer.owner_user_id).join(Producer, Producer.id == InboxTask.producer_id)
        .where(InboxTask.instance_id == instance_id, InboxTask.form_key == "register_idea")).first()
    if row is None or row.owner_user_id is None or draft_of(session, row.id, row.owner_user_id) is not None:
        return
    session.add(TaskDraft(task_id=row.id, user_id=row.owner_user_id,
                          data={"registration_form": [registration_form]}, saved_at=now))
    session.flush()
