"""The `retries` job: run failed service tasks again when their backoff is over."""
from __future__ import annotations

import logging

from background.jobs import job
from engine import incidents
from engine.bpmn_engine import BpmnEngine
from engine.errors import ConcurrencyConflict, OcopError
from storage.models import INCIDENT_RESOLVED, Incident

log = logging.getLogger(__name__)


@job("retries", every_seconds=60, description="Retry failed service tasks (exponential backoff), then open incidents",
     counts="incidents resolved by a retry")
def retry_failed_service_tasks(engine: BpmnEngine) -> int:
    """Incidents resolved in this run."""
    with engine.db.transaction() as session:
        due = incidents.due(session, engine.clock())
    resolved = 0
    for incident_id in due:
        try:
            engine.retry_incident(incident_id)
            with engine.db.transaction() as session:
                resolved += session.get(Incident, incident_id).status == INCIDENT_RESOLVED
        except ConcurrencyConflict:
            log.info("incident %s: the instance changed meanwhile; next run", incident_id)
        except OcopError as err:
            log.warning("incident %s: %s", incident_id, err)
    return resolved
