"""A product's history so far, read from its instance's audit events.

The audit trail already holds every submitted form (`task_completed`
carries the validated data), every claim and every automatic step's
result, so the dossier page never needs to deserialize the workflow.
Only the events a person wants to read are kept; bookkeeping events
(`engine_steps`, `tasks_ready`) are left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import as_utc
from storage.models import AuditEvent, User

# Service handlers whose results tell the producer's story (training
# enrolments, council rankings, the promotion listing); notifications only
# repeat what the completed review already says.
SHOWN_HANDLERS = ("schedule_training", "rank_product", "publish_promotion_listing")
SHOWN_KINDS = ("started", "task_completed", "claimed", "unclaimed", "reassigned",
               "service_called", "finished", "cancelled")


@dataclass
class HistoryEntry:
    seq: int
    at: datetime
    kind: str
    element_id: str | None
    actor: str | None                 # full name of who did it; None for the engine itself
    step: int | None = None
    name: str | None = None           # task name (task_completed)
    form_key: str | None = None
    form: dict[str, Any] = field(default_factory=dict)
    handler: str | None = None        # service_called
    result: dict[str, Any] = field(default_factory=dict)
    assignee: str | None = None       # claimed / reassigned
    reason: str | None = None         # cancelled

    @property
    def decision(self) -> str | None:
        decision = self.form.get("decision")  # a recognition decision's is a dict: the act, not a verdict
        return decision if isinstance(decision, str) else None

    @property
    def returned(self) -> bool:
        """A review that sent the dossier back: its reasons matter most."""
        return self.decision == "return"


def instance_history(session: Session, instance_id: int) -> list[HistoryEntry]:
    """The readable events of one instance, oldest first."""
    events = session.scalars(select(AuditEvent)
                             .where(AuditEvent.instance_id == instance_id,
                                    AuditEvent.kind.in_(SHOWN_KINDS))
                             .order_by(AuditEvent.seq)).all()
    user_ids = {e.actor_id for e in events if e.actor_id}
    user_ids |= {e.data.get("assignee") for e in events
                 if e.kind in ("claimed", "reassigned") and isinstance(e.data.get("assignee"), int)}
    names = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    entries = []
    for event in events:
        data = event.data or {}
        if event.kind == "service_called" and data.get("handler") not in SHOWN_HANDLERS:
            continue
        entry = HistoryEntry(seq=event.seq, at=as_utc(event.at), kind=event.kind,
                             element_id=event.element_id, actor=names.get(event.actor_id),
                             step=data.get("step"))
        if event.kind == "task_completed":
            entry.name = data.get("name")
            entry.form_key = data.get("form_key")
            entry.form = data.get("form") or {}
        elif event.kind == "service_called":
            entry.handler = data.get("handler")
            entry.result = data.get("result") or {}
        elif event.kind in ("claimed", "reassigned"):
            entry.assignee = names.get(data.get("assignee"))
        elif event.kind == "finished":
            entry.result = {"stars": data.get("stars")}
        elif event.kind == "cancelled":
            entry.reason = data.get("reason")
        entries.append(entry)
    return entries
