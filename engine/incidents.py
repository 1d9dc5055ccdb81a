"""Incidents: service tasks whose handler failed.

The engine keeps the work of the call that reached a failing service task (the task
waits in ERROR) and records the failure here. The `retries` job
(background/retries.py) runs it again with exponential backoff: after
BACKOFF_SECONDS * 2**(attempts - 1), up to MAX_ATTEMPTS; then the incident
is `open` for a program manager of the province to retry or skip (web:
/incidents/). Every attempt, retry and skip is also in the audit history.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import (
    INCIDENT_OPEN,
    INCIDENT_RESOLVED,
    INCIDENT_RETRYING,
    INCIDENT_SKIPPED,
    Incident,
)

BACKOFF_SECONDS = 60
MAX_ATTEMPTS = 5
ACTIVE = (INCIDENT_RETRYING, INCIDENT_OPEN)


def next_attempt(attempts: int, now: datetime) -> tuple[str, datetime | None]:
    """Status and next attempt after `attempts` failed attempts."""
    if attempts >= MAX_ATTEMPTS:
        return INCIDENT_OPEN, None
    return INCIDENT_RETRYING, now + timedelta(seconds=BACKOFF_SECONDS * 2 ** (attempts - 1))


def active(session: Session, instance_id: int, element_id: str) -> Incident | None:
    return session.scalar(select(Incident).where(
        Incident.instance_id == instance_id, Incident.element_id == element_id, Incident.status.in_(ACTIVE)))


def open_incidents(session: Session, instance_id: int, failures, now: datetime) -> None:
    """Record failed service tasks of one step: a new incident, or one more
    attempt of the incident already open on that task."""
    for failure in failures:
        incident = active(session, instance_id, failure.element)
        if incident is None:
            incident = Incident(instance_id=instance_id, element_id=failure.element,
                                handler=failure.handler or "", error="", attempts=0, opened_at=now)
            session.add(incident)
        incident.attempts += 1
        incident.error = str(failure)
        incident.status, incident.next_attempt_at = next_attempt(incident.attempts, now)
    session.flush()


def close(session: Session, instance_id: int, element_id: str, skipped: bool, now: datetime,
          user_id: int | None) -> None:
    incident = active(session, instance_id, element_id)
    if incident is not None:
        incident.status = INCIDENT_SKIPPED if skipped else INCIDENT_RESOLVED
        incident.closed_at, incident.closed_by, incident.next_attempt_at = now, user_id, None


def due(session: Session, now: datetime, limit: int = 200) -> list[int]:
    """Incidents the worker should retry now."""
    return list(session.scalars(select(Incident.id).where(
        Incident.status == INCIDENT_RETRYING, Incident.next_attempt_at <= now)
        .order_by(Incident.next_attempt_at).limit(limit)))
