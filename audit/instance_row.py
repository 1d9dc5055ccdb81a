"""The instance row against its hashed history.

A chain shows that the events are consistent with themselves, a checkpoint
that they are the ones signed; neither says anything about the
process_instance row beside them, which is what the portal, the inbox and
the API's visibility read: its product, its areas, its diagram, its
outcome. With write access to the database one could swap the products of
a 3-star and a 4-star instance, or move an instance to another province,
and every chain would still verify. So every column the history determines
is compared here with the hashed events that determine it:

- from the `started` event: process_id (its element), the definition (its
  name and version, or those of the last `migrated` event), product_id,
  year, jurisdiction_id and areas (the event's data), started_at (its time);
  and the product row's name, group and producer, which the event copied
  (a product is never edited once created);
- from the outcome events: status (`cancelled`, `finished`, else running),
  and with `finished`, stars, end_event and finished_at.

current_step and the stored workflow state need the engine: the replay
(engine/replay.py) compares those. updated_at and version are bookkeeping
that no event fixes. The portal's stars of a product are the stars of its
instances (no product column holds them), so they are proven with the row.

Histories written before the `started` event carried `areas` name only the
commune, district and province of a product (or an outreach campaign's
jurisdiction): the other levels of such a row's areas are reported as
unproven, not as altered.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.events import ROW_ALTERED, UNPROVEN, Finding
from storage.db import as_utc
from storage.models import ProcessDefinition, ProcessInstance, Product

_instances, _products, _definitions = ProcessInstance.__table__, Product.__table__, ProcessDefinition.__table__

# The instance's own columns, its definition's identity and its product's copied columns: one row each.
ROW_COLUMNS = (
    *(_instances.c[name] for name in ("id", "process_id", "product_id", "jurisdiction_id", "areas", "year",
                                      "status", "stars", "end_event", "started_at", "finished_at")),
    _definitions.c.name.label("definition_name"), _definitions.c.version.label("definition_version"),
    _products.c.name.label("product_name"), _products.c.group_code.label("product_group"),
    _products.c.producer_id.label("product_producer_id"),
)

# The product row's columns, as ROW_COLUMNS labels them.
_PRODUCT_ROW_KEYS = {"name": "product_name", "group_code": "product_group", "producer_id": "product_producer_id"}
# The levels a product's `started` data has named from the start, and under which key.
_PRODUCT_LEVELS = {"commune": "commune_id", "district": "district_id", "province": "province_id"}


def read_rows(session: Session, instance_ids: Iterable[int]) -> dict[int, Mapping]:
    """The instance rows to check, with their definition and product, by id."""
    query = (select(*ROW_COLUMNS)
             .select_from(_instances.join(_definitions, _definitions.c.id == _instances.c.definition_id)
                          .outerjoin(_products, _products.c.id == _instances.c.product_id))
             .where(_instances.c.id.in_(list(instance_ids))))
    return {row.id: row._mapping for row in session.execute(query)}


def check_row(row: Mapping, events: list) -> tuple[list[Finding], list[Finding]]:
    """(problems, unproven) for one instance row against its events, oldest
    first (rows or ORM objects with seq, at, kind, element_id and data).
    Events before the first `started` are the chain's and the replay's
    concern; without one there is nothing to compare with."""
    started = next((e for e in events if e.kind == "started"), None)
    if started is None:
        return [], []
    instance_id = row["id"]
    data = started.data.get("data") or {}
    problems: list[Finding] = []

    def differs(column: str, stored: Any, hashed: Any, source) -> None:
        if stored != hashed:
            problems.append(Finding(
                instance_id, source.seq, ROW_ALTERED,
                f"cột {column} của hồ sơ là {stored!r}, lịch sử đã băm (sự kiện {source.seq}, {source.kind}) "
                f"ghi {hashed!r} / the instance's {column} is {stored!r}, the hashed history "
                f"(event {source.seq}, {source.kind}) says {hashed!r}"))

    differs("process_id", row["process_id"], started.element_id, started)
    definition_event = next((e for e in reversed(events) if e.kind == "migrated"), started)
    version_key = "to_version" if definition_event.kind == "migrated" else "version"
    differs("definition", f"{row['definition_name']} v{row['definition_version']}",
            f"{definition_event.data.get('definition')} v{definition_event.data.get(version_key)}", definition_event)
    differs("product_id", row["product_id"], data.get("product_id"), started)
    differs("year", row["year"], data.get("year"), started)
    differs("started_at", _utc(row["started_at"]), _utc(started.at), started)
    if row["product_id"] is not None:
        for column, key in (("name", "product_name"), ("group_code", "product_group"),
                            ("producer_id", "producer_id")):
            differs(f"product.{column}", row[_PRODUCT_ROW_KEYS[column]], data.get(key), started)
    jurisdiction = data.get("commune_id") if "commune_id" in data else data.get("jurisdiction_id")
    differs("jurisdiction_id", row["jurisdiction_id"], jurisdiction, started)
    unproven = _check_areas(row, started, data, differs)
    _check_outcome(row, events, differs)
    return problems, unproven


def _check_areas(row: Mapping, started, data: dict, differs) -> list[Finding]:
    areas = row["areas"] or {}
    if "areas" in started.data:  # hashed whole since it was added to the started event
        differs("areas", areas, started.data["areas"], started)
        return []
    # An older history: the levels its data names are proven, the others are not.
    named = {level: data.get(key) for level, key in _PRODUCT_LEVELS.items()} if "commune_id" in data else {}
    for level, value in named.items():
        differs(f"areas.{level}", areas.get(level), value, started)
    rest = sorted(level for level in areas if level not in named and areas[level] != data.get("jurisdiction_id"))
    if not rest:
        return []
    return [Finding(row["id"], started.seq, UNPROVEN,
                    f"cấp địa bàn {', '.join(rest)} của hồ sơ không có trong lịch sử đã băm (hồ sơ bắt đầu "
                    f"trước khi sự kiện started ghi cả chuỗi địa bàn): chưa được chứng minh / the instance's "
                    f"area level(s) {', '.join(rest)} are not in its hashed history (it started before the "
                    f"started event recorded the whole area chain): unproven")]


def _check_outcome(row: Mapping, events: list, differs) -> None:
    cancelled = next((e for e in events if e.kind == "cancelled"), None)
    finished = next((e for e in events if e.kind == "finished"), None)
    outcome = cancelled or finished or events[-1]
    status = "cancelled" if cancelled else "completed" if finished else "running"
    differs("status", row["status"], status, outcome)
    if finished is not None and cancelled is None:
        differs("stars", row["stars"], finished.data.get("stars") or None, finished)
        differs("end_event", row["end_event"], finished.element_id, finished)
        differs("finished_at", _utc(row["finished_at"]), _utc(finished.at), finished)
    else:  # only a completion sets these (engine/execution.py, conclude)
        differs("stars", row["stars"], None, outcome)
        differs("end_event", row["end_event"], None, outcome)
        differs("finished_at", row["finished_at"], None, outcome)


def _utc(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat(timespec="microseconds")
