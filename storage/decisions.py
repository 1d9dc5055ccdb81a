"""Writing a recognition decision: the numbered act and one item per
product, in the caller's transaction. Shared by the decision use case
(programme/recognition.py) and the driver that runs diagrams without
anyone at the decision page (engine/driver.py: dry run, simulation, tests).
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import connection_of
from storage.recognition_models import Decision, DecisionItem

_decisions, _items = Decision.__table__, DecisionItem.__table__


def number_taken(unit: Session | Connection, area_id: int, number: str) -> bool:
    return connection_of(unit).execute(select(_decisions.c.id).where(
        _decisions.c.area_id == area_id, _decisions.c.number == number)).first() is not None


def record_decision(unit: Session | Connection, *, authority: str, area_id: int, number: str, signed_on: date,
                    signer: str, items: list[dict], round_id: int | None, recorded_by: int | None,
                    recorded_at: datetime, kind: str = "recognition", summary: str = "") -> dict:
    """Insert the decision and its items (each: instance_id, product_id,
    stars, outcome) and return what the decision task's completion carries
    as `decision`: id, number, signed_on (ISO), signer, authority."""
    connection = connection_of(unit)
    decision_id = connection.execute(insert(_decisions).values(
        kind=kind, authority=authority, area_id=area_id, round_id=round_id, number=number, signed_on=signed_on,
        signer=signer, summary=summary, recorded_by=recorded_by, recorded_at=recorded_at)).inserted_primary_key[0]
    if items:
        connection.execute(insert(_items), [dict(decision_id=decision_id, instance_id=item["instance_id"],
                                                 product_id=item["product_id"], stars=item.get("stars"),
                                                 outcome=item["outcome"], certificate_id=None) for item in items])
    return {"id": decision_id, "number": number, "signed_on": signed_on.isoformat(), "signer": signer,
            "authority": authority}
