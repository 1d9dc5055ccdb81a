"""The `timers` job: fire the BPMN timers that are due.

`timer_due` lists, for every running instance, when each timer it waits on
fires (the engine rewrites the rows with every write of the instance).
Each due instance is stepped through `BpmnEngine.fire_due_timers`: one
transaction with the optimistic version check, like a task completion, so
two workers (or a worker and a user) never both move it.
"""
from __future__ import annotations

import logging

from sqlalchemy import func, select

from background.jobs import job
from engine.bpmn_engine import BpmnEngine
from engine.errors import ConcurrencyConflict, ServiceTaskFailed
from storage.models import TimerDue

log = logging.getLogger(__name__)


@job("timers", every_seconds=60, description="Fire due BPMN timers (deadlines, escalations, rounds)",
     counts="instances whose due timers fired")
def fire_due_timers(engine: BpmnEngine) -> int:
    """Instances whose due timers fired in this run."""
    fired = 0
    for instance_id in due_instances(engine):
        try:
            if engine.fire_due_timers(instance_id) is not None:
                fired += 1
        except ConcurrencyConflict:
            # Another worker or a user moved the instance meanwhile; its write
            # refreshed timer_due, and a timer still due is fired next run.
            log.info("instance %s changed while its timers fired; trying again next run", instance_id)
        except ServiceTaskFailed as err:
            log.warning("instance %s: a service task after its timer failed: %s", instance_id, err)
    return fired


def due_instances(engine: BpmnEngine, limit: int = 500) -> list[int]:
    """Running instances with a timer due by the engine's clock, the longest overdue first."""
    with engine.db.reading() as session:
        return list(session.scalars(
            select(TimerDue.instance_id).where(TimerDue.due_at <= engine.clock())
            .group_by(TimerDue.instance_id).order_by(func.min(TimerDue.due_at)).limit(limit)))
