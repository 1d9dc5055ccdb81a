"""Deadlines in working days, and the provincial evaluation rounds.

Working days skip Saturdays, Sundays and the public holidays listed in
processes/calendar/holidays.json (or the file OCOP_HOLIDAYS_FILE names):
a deadline "within 15 working days" (OCOP.md: the commune's dossier check)
ends at the same time of day 15 working days later. Dates are counted in
Vietnam's time zone, where the offices are.
"""
from __future__ import annotations

import json
import os
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_HOLIDAYS = Path(__file__).resolve().parents[1] / "processes" / "calendar" / "holidays.json"
# Provincial rounds (OCOP.md): dossiers forwarded by 30/4 are decided by
# 30/6, those forwarded by 30/10 by 30/12.
ROUND_CLOSES = ((4, 30), (10, 30))


@lru_cache(maxsize=4)
def _holidays(path: str) -> frozenset[date]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return frozenset(date.fromisoformat(day) for day in document["holidays"])


def holidays() -> frozenset[date]:
    return _holidays(os.environ.get("OCOP_HOLIDAYS_FILE") or str(DEFAULT_HOLIDAYS))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays()


def add_working_days(start: datetime, days: int) -> datetime:
    """`days` working days after `start` (timezone-aware), same local time."""
    local = start.astimezone(LOCAL_ZONE)
    day, left = local.date(), days
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return datetime.combine(day, local.timetz()).astimezone(timezone.utc)


def round_closing(moment: datetime) -> datetime:
    """The end (23:59:59 local) of the provincial round a dossier forwarded
    at `moment` belongs to: the next 30/4 or 30/10."""
    local = moment.astimezone(LOCAL_ZONE)
    for year in (local.year, local.year + 1):
        for month, day in ROUND_CLOSES:
            closes = datetime.combine(date(year, month, day), time(23, 59, 59), LOCAL_ZONE)
            if closes >= local:
                return closes.astimezone(timezone.utc)
    raise AssertionError("unreachable: a round closes every six months")
