"""Failed service tasks (engine/incidents.py) as the people who fix them read
them: the incidents list, and what the incidents page needs to know about
one incident (whose scope it is in, how it stands after a retry or skip).

Retrying and skipping are the engine's (`BpmnEngine.retry_incident`,
`skip_incident`: each one transaction, which checks that the actor
supervises the instance); who reads which incidents is
engine.access.Oversight.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access import Oversight
from storage.models import Incident, ProcessInstance, Product


def overseen_incidents(session: Session, oversight: Oversight, limit: int = 300) -> list[tuple[Incident, str | None]]:
    """The incidents of the instances the reader oversees, each with its
    product's name (None for an outreach campaign), by status, then the
    most recently opened first."""
    return [tuple(row) for row in session.execute(
        select(Incident, Product.name)
        .join(ProcessInstance, ProcessInstance.id == Incident.instance_id)
        .outerjoin(Product, Product.id == ProcessInstance.product_id)
        .where(oversight.instances())
        .order_by(Incident.status.desc(), Incident.opened_at.desc()).limit(limit))]


def incident_areas(session: Session, incident_id: int) -> dict | None:
    """The area chain of the incident's instance, which says whose scope
    the incident is in; None when there is no such incident."""
    return session.scalar(select(ProcessInstance.areas).join(Incident, Incident.instance_id == ProcessInstance.id)
                          .where(Incident.id == incident_id))


def incident_status(session: Session, incident_id: int) -> str | None:
    """retrying, open, resolved or skipped; None when there is no such incident."""
    return session.scalar(select(Incident.status).where(Incident.id == incident_id))
