"""Drafts: a task's form saved as typed ({field name: [values]}), per task
and user, without completing it; it never changes the workflow.

A task is completed by BpmnEngine.complete_task, from the task page and the
API alike. Its drafts -- anyone's -- go with its inbox row, whatever takes
the task out of the inbox (a completion, a timer, a cancellation): the
schema says so (task_draft.task_id references task.id ON DELETE CASCADE).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import InboxTask, Producer, TaskDraft


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
