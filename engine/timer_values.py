"""Whether a timer's value is one SpiffWorkflow can schedule.

A timer event's expression evaluates to a text that SpiffWorkflow's
TimerEventDefinition parses when the timer starts waiting (timeDate: a date
and time, timeDuration: an ISO 8601 duration, timeCycle: a repeating
interval). A text it cannot parse raised inside the engine call that
reached the timer: a 500 and a product stuck for good. `problem` reads a
value the way the library will, with its own parse_iso_* helpers, and says
in plain words what is wrong. The diagram check calls it for literal
timers; the engine calls it for every value computed at run time
(Execution.check_timer): a bad one becomes an incident on the timer, which
is set aside to wait on `NEVER` instead, so the call and the instance go on.

Stricter than the library where the library's leniency is a trap: it strips
every 'P' from both ends ('PP1DP' is one day) and loops once per month of a
duration ('P99999999Y' would hang the call), so a duration must match the
ISO 8601 grammar and stay under MAX_YEARS; a duration of zero (and a cycle
repeating every zero seconds) fires at once, again and again.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimerEventDefinition,
)

KINDS = ("timeDate", "timeDuration", "timeCycle")
MAX_YEARS = 100
_NUMBER = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(rf"P(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
                       rf"(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?", re.IGNORECASE)
# Fixed start for measuring a duration's length (months differ in length).
_SOME_START = datetime(2000, 1, 1, tzinfo=timezone.utc)

EXAMPLES = {"timeDate": "'2026-10-30T17:00:00+07:00'", "timeDuration": "'P15D'",
            "timeCycle": "'R3/P1D'"}


# What a set-aside timer waits on, per kind: a moment that never comes in
# the life of an instance (a valid value, so SpiffWorkflow's own code never
# meets the bad one).
NEVER = {"timeDuration": "P36500D", "timeCycle": "R1/2999-01-01T00:00:00+00:00/P1D",
         "timeDate": "2999-01-01T00:00:00+00:00"}
# The internal data key that marks a set-aside timer (its error), kept with the workflow's state.
SET_ASIDE = "ocop_timer_set_aside"


class BadTimer(ValueError):
    def __init__(self, vi: str, en: str):
        super().__init__(en)
        self.vi, self.en = vi, en


def problem(kind: str, value) -> tuple[str, str] | None:
    """(Vietnamese, English) saying what is wrong with `value` as the value
    of a `kind` timer, or None when SpiffWorkflow can schedule it."""
    try:
        check(kind, value)
    except BadTimer as err:
        return err.vi, err.en
    return None


def check(kind: str, value) -> None:
    if not isinstance(value, str):
        raise BadTimer(f"hẹn giờ phải cho ra một chuỗi ISO 8601 (ví dụ {EXAMPLES[kind]}), "
                       f"không phải {type(value).__name__} {str(value)[:40]}",
                       f"a timer must give an ISO 8601 text (e.g. {EXAMPLES[kind]}), "
                       f"not the {type(value).__name__} {str(value)[:40]}")
    text = value.strip()
    if kind == "timeDuration":
        _duration(text)
    elif kind == "timeDate":
        _date(text)
    else:
        _cycle(text)


def _duration(text: str) -> timedelta:
    if not _DURATION.fullmatch(text) or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        raise BadTimer(f"'{text[:60]}' không phải một khoảng thời gian ISO 8601 "
                       "(ví dụ 'P15D' là 15 ngày, 'PT4H' là 4 giờ)",
                       f"'{text[:60]}' is not an ISO 8601 duration (e.g. 'P15D' is 15 days, 'PT4H' 4 hours)")
    try:
        parsed = TimerEventDefinition.parse_iso_duration(text)
        months = parsed.get("years", 0) * 12 + parsed.get("months", 0)
        if months > MAX_YEARS * 12 or parsed.get("weeks", 0) > MAX_YEARS * 53 \
                or parsed.get("days", 0) > MAX_YEARS * 366:
            raise BadTimer(f"khoảng thời gian '{text[:60]}' dài hơn {MAX_YEARS} năm",
                           f"the duration '{text[:60]}' is longer than {MAX_YEARS} years")
        length = TimerEventDefinition.get_timedelta_from_start(dict(parsed), _SOME_START)
    except BadTimer:
        raise
    except Exception:  # noqa: BLE001 - the library raises a bare Exception; OverflowError too
        raise BadTimer(f"SpiffWorkflow không đọc được khoảng thời gian '{text[:60]}'",
                       f"SpiffWorkflow cannot read the duration '{text[:60]}'") from None
    if length <= timedelta(0):
        raise BadTimer(f"khoảng thời gian '{text[:60]}' bằng không: hẹn giờ sẽ kích hoạt ngay lập tức",
                       f"the duration '{text[:60]}' is zero: the timer would fire at once")
    if length > timedelta(days=MAX_YEARS * 366):
        raise BadTimer(f"khoảng thời gian '{text[:60]}' dài hơn {MAX_YEARS} năm",
                       f"the duration '{text[:60]}' is longer than {MAX_YEARS} years")
    return length


def _date(text: str) -> datetime:
    if text.upper().startswith("P"):
        # The library reads a duration here too, then compares it with a
        # date and fails: a timeDate must be a moment.
        raise BadTimer(f"'{text[:60]}' là một khoảng thời gian; timeDate cần một thời điểm "
                       "(ví dụ '2026-10-30T17:00:00+07:00'), hoặc hãy dùng timeDuration",
                       f"'{text[:60]}' is a duration; a timeDate needs a moment "
                       "(e.g. '2026-10-30T17:00:00+07:00'), or use timeDuration")
    try:
        return TimerEventDefinition.parse_time_or_duration(text)
    except Exception:  # noqa: BLE001 - ValueError, AttributeError (week dates): any is a bad date
        raise BadTimer(f"'{text[:60]}' không phải một thời điểm ISO 8601 (ví dụ '2026-10-30T17:00:00+07:00')",
                       f"'{text[:60]}' is not an ISO 8601 date and time "
                       "(e.g. '2026-10-30T17:00:00+07:00')") from None


def _cycle(text: str) -> None:
    bad = BadTimer(f"'{text[:60]}' không phải một chu kỳ lặp ISO 8601 (ví dụ 'R3/P1D': 3 lần, mỗi ngày một lần)",
                   f"'{text[:60]}' is not an ISO 8601 repeating interval (e.g. 'R3/P1D': 3 times, once a day)")
    parts = text.upper().replace("--", "/").split("/")
    if not re.fullmatch(r"R\d*", parts[0]) or len(parts) not in (2, 3):
        raise bad
    for part in parts[1:]:
        # Each part is a moment or a duration; a duration is bounded first,
        # as the library loops over its months.
        _duration(part) if part.startswith("P") else _date(part)
    try:
        _cycles, _start, length = TimerEventDefinition.parse_iso_recurring_interval(text)
    except Exception:  # noqa: BLE001 - the library raises a bare Exception
        raise bad from None
    if length <= timedelta(0):
        raise BadTimer(f"chu kỳ '{text[:60]}' lặp lại sau khoảng thời gian bằng không",
                       f"the cycle '{text[:60]}' repeats after no time at all")


def kind_of(definition: TimerEventDefinition) -> str:
    """The BPMN element a parsed timer definition came from."""
    if isinstance(definition, DurationTimerEventDefinition):
        return "timeDuration"
    if isinstance(definition, CycleTimerEventDefinition):
        return "timeCycle"
    return "timeDate"


def never(definition: TimerEventDefinition) -> str:
    return NEVER[kind_of(definition)]


def is_set_aside(task) -> bool:
    return task._get_internal_data(SET_ASIDE) is not None
