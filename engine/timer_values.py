"""Whether a timer's value, as evaluated at run time, is one SpiffWorkflow
can wait on: a date (timeDate), a duration (timeDuration) or a repeating
interval (timeCycle) in ISO 8601.

SpiffWorkflow parses the value when the timer begins to wait, inside
whatever call made it wait, and a bad one ('P1X2', a number, a negative
duration) raises a bare Exception there -- every later call on the
instance would raise it again. The engine checks the value first
(Execution.check_timer): a bad one becomes an incident on the timer and
the timer waits on `NEVER` instead, so the call and the instance go on.
"""
from __future__ import annotations

from datetime import datetime, timezone

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)

# SpiffWorkflow adds a duration's months one by one (one loop turn each):
# a duration of a billion years would never return. Two centuries is far
# beyond any deadline of the programme.
MAX_MONTHS = 12 * 200

# What a set-aside timer waits on, per kind: a moment that never comes in
# the life of an instance (parsed like any other value, so SpiffWorkflow's
# own code never meets the bad one).
NEVER = {
    DurationTimerEventDefinition: "P36500D",
    CycleTimerEventDefinition: "R1/2999-01-01T00:00:00+00:00/P1D",
    TimerEventDefinition: "2999-01-01T00:00:00+00:00",
}
# The internal data key that marks a set-aside timer (its error), kept with the workflow's state.
SET_ASIDE = "ocop_timer_set_aside"


def problem(definition: TimerEventDefinition, value) -> str | None:
    """Why `value` cannot be the value of this timer, or None when it can."""
    if not isinstance(value, str):
        return f"not text but {type(value).__name__}"
    try:
        if isinstance(definition, DurationTimerEventDefinition):
            return _duration_problem(TimerEventDefinition.parse_iso_duration(value))
        if isinstance(definition, CycleTimerEventDefinition):
            cycles, _start, duration = TimerEventDefinition.parse_iso_recurring_interval(value)
            return None if duration.total_seconds() > 0 else "the interval is not positive"
        moment = TimerEventDefinition.parse_time_or_duration(value)
        return None if isinstance(moment, datetime) else "a duration where a date is expected"
    except Exception as err:  # noqa: BLE001 - SpiffWorkflow's parsers raise bare Exception, ValueError, AttributeError
        return str(err) or type(err).__name__


def never(definition: TimerEventDefinition) -> str:
    return next(value for kind, value in NEVER.items() if isinstance(definition, kind))


def is_set_aside(task) -> bool:
    return task._get_internal_data(SET_ASIDE) is not None


def _duration_problem(parsed: dict) -> str | None:
    if parsed.get("years", 0) * 12 + parsed.get("months", 0) > MAX_MONTHS:
        return f"longer than {MAX_MONTHS // 12} years"
    # As SpiffWorkflow will compute it (it takes the dict apart: a copy).
    datetime.now(timezone.utc) + TimerEventDefinition.get_timedelta_from_start(dict(parsed))
    return None
