"""One clock for everything the engine runs, SpiffWorkflow's timers included.

SpiffWorkflow's timer events (engine side of BPMN `timerEventDefinition`)
read `datetime.now(timezone.utc)` inside their module. The engine has its
own clock (`BpmnEngine.clock`: real time in production, a fake clock in
tests, the recorded time of each event in a replay). While the engine runs
an engine call it sets that time here, and the timer module reads it instead of
the system clock, so a timer fires when the engine's time says so and a
replay fires it at the same recorded moment.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer

_engine_time: ContextVar[datetime | None] = ContextVar("ocop_engine_time", default=None)


def now() -> datetime:
    """The time of the engine call being run, else the system clock (UTC)."""
    return _engine_time.get() or datetime.now(timezone.utc)


@contextmanager
def running_at(moment: datetime):
    """Run SpiffWorkflow code as of `moment` (timezone-aware)."""
    token = _engine_time.set(moment)
    try:
        yield
    finally:
        _engine_time.reset(token)


class _EngineDatetime(datetime):
    """`datetime` for SpiffWorkflow's timer module: `now()` is the engine's time."""

    @classmethod
    def now(cls, tz=None):
        moment = now()
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


# The timer module imported the name `datetime`; point that name at ours.
spiff_timer.datetime = _EngineDatetime


class MovableClock:
    """A clock that stands still until moved (`clock.now = ...`): the dry
    run and simulations let deadlines and rounds pass with it."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now
