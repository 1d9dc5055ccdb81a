"""The evaluation rounds' calendar: the default rounds of a year
(processes/calendar/rounds.json: the province's 30/4 -> 30/6 and 30/10 ->
30/12, the ministry's 30/01 -> 30/3 and 30/7 -> 30/9), filled in when a
product reaches a level whose year nobody planned, and the round a product
joins: the next open one whose proposals are still taken.

Plain Core statements on a connection (or a session's connection), so the
`join_round` handler and the rounds use cases share them.
"""
from __future__ import annotations

import functools
import json
from datetime import date
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import connection_of
from storage.recognition_models import ROUND_LEVELS, ROUND_OPEN, EvaluationRound

CALENDAR_FILE = Path(__file__).resolve().parent.parent / "processes" / "calendar" / "rounds.json"
_rounds = EvaluationRound.__table__


@functools.lru_cache(maxsize=1)
def default_calendar() -> dict[str, list[tuple[tuple[int, int], tuple[int, int]]]]:
    """level -> [((day, month) proposals by, (day, month) decided by)], in year order."""
    raw = json.loads(CALENDAR_FILE.read_text(encoding="utf-8"))

    def day_month(value: str) -> tuple[int, int]:
        day, month = value.split("/")
        return int(day), int(month)

    return {level: [(day_month(r["proposals_by"]), day_month(r["decide_by"])) for r in raw[level]]
            for level in ROUND_LEVELS}


def default_dates(level: str, year: int) -> list[tuple[date, date]]:
    """The default rounds of `level` in `year`: [(proposals_by, decide_by)]."""
    return [(date(year, pm, pd), date(year, dm, dd)) for (pd, pm), (dd, dm) in default_calendar()[level]]


def _area_clause(province_id: int | None):
    return _rounds.c.province_id.is_(None) if province_id is None else _rounds.c.province_id == province_id


def _lock_calendar(connection: Connection, level: str, province_id: int | None) -> None:
    """Serialise the creation of one area's rounds on PostgreSQL: the unique
    key (level, province_id, year, number) does not hold for the ministry's
    rounds, whose province_id is NULL."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"),
                           {"a": 16_0001 + ROUND_LEVELS.index(level), "b": province_id or 0})


def ensure_year(unit: Session | Connection, level: str, province_id: int | None, year: int,
                created_by: int | None = None) -> int:
    """Create the year's default rounds for the area when it has none;
    returns how many were created."""
    if level not in ROUND_LEVELS:
        raise ValueError(f"unknown round level {level!r}")
    connection = connection_of(unit)
    _lock_calendar(connection, level, province_id)
    planned = connection.execute(select(func.count()).select_from(_rounds).where(
        _rounds.c.level == level, _area_clause(province_id), _rounds.c.year == year)).scalar_one()
    if planned:
        return 0
    rows = [dict(level=level, province_id=province_id, year=year, number=number, proposals_by=proposals_by,
                 decide_by=decide_by, extra=False, status=ROUND_OPEN, note="", created_by=created_by)
            for number, (proposals_by, decide_by) in enumerate(default_dates(level, year), start=1)]
    connection.execute(insert(_rounds), rows)
    return len(rows)


def next_open_round(unit: Session | Connection, level: str, province_id: int | None, today: date):
    """The round a product reaching `level` today joins: the open round of
    its area with the earliest proposals_by on or after today (this year's,
    else next year's, planned by default when nobody did). A row with id,
    year, number, proposals_by, decide_by, extra."""
    connection = connection_of(unit)
    query = (select(_rounds.c.id, _rounds.c.year, _rounds.c.number, _rounds.c.proposals_by,
                    _rounds.c.decide_by, _rounds.c.extra)
             .where(_rounds.c.level == level, _area_clause(province_id), _rounds.c.status == ROUND_OPEN,
                    _rounds.c.proposals_by >= today)
             .order_by(_rounds.c.proposals_by, _rounds.c.id).limit(1))
    # This year's and next year's rounds exist first (planned by default
    # when nobody did): a round comes at least once a year, and a product
    # reaching the council in an earlier year must not find a later year's.
    for year in (today.year, today.year + 1):
        ensure_year(connection, level, province_id, year)
    found = connection.execute(query).first()
    if found is None:  # every round of this year and the next is closed or past: plan the year after
        ensure_year(connection, level, province_id, today.year + 2)
        found = connection.execute(query).first()
    return found


def round_label(number: int, year: int, extra: bool = False) -> str:
    """'Đợt 2 năm 2027' (the documents' words), '(bổ sung)' for an extra round."""
    return f"Đợt {number} năm {year}" + (" (bổ sung)" if extra else "")
