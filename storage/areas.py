"""Questions about the jurisdiction tree that several layers ask."""
from __future__ import annotations

from sqlalchemy.orm import Session

from storage.models import Jurisdiction


def area_chain(session: Session, jurisdiction_id: int) -> dict[str, int]:
    """{level: id} for the unit and every parent, e.g. for a commune before
    July 2025: commune, district, province and central."""
    chain: dict[str, int] = {}
    unit = session.get(Jurisdiction, jurisdiction_id)
    while unit is not None:
        chain[unit.level] = unit.id
        unit = session.get(Jurisdiction, unit.parent_id) if unit.parent_id else None
    return chain
