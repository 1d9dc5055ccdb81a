"""Questions about the jurisdiction tree that several layers ask."""
from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import connection_of
from storage.models import Jurisdiction

# The unit and up to three ancestors in one statement (commune, district,
# province, central is the deepest tree), built once: a product's start
# reads its chain, and four lookups cost more than the rest of the start.
_LEVELS = 4
_units = [Jurisdiction.__table__.alias(f"up{n}") for n in range(_LEVELS)]
_from = _units[0]
for _child, _parent in zip(_units, _units[1:]):
    _from = _from.outerjoin(_parent, _parent.c.id == _child.c.parent_id)
_CHAIN = (select(*(column for unit in _units for column in (unit.c.level, unit.c.id, unit.c.parent_id)))
          .select_from(_from).where(_units[0].c.id == bindparam("unit_id")))


def area_chain(session: Session | Connection, jurisdiction_id: int) -> dict[str, int]:
    """{level: id} for the unit and every parent, e.g. for a commune before
    July 2025: commune, district, province and central."""
    connection = connection_of(session)
    chain: dict[str, int] = {}
    unit_id = jurisdiction_id
    while unit_id is not None:
        row = connection.execute(_CHAIN, {"unit_id": unit_id}).first()
        if row is None:
            break
        unit_id = None
        for n in range(_LEVELS):
            level, found, parent = row[3 * n: 3 * n + 3]
            if found is None:
                break
            chain[level] = found
            unit_id = parent  # past the deepest level read: go on from there
    return chain
