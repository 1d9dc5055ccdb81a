"""Reading and checking instances' hash chains: every stored event hashes
to its stored hash and links to the event before it, and the instance
row's head is the last event (engine/events.py writes the chain)."""
from __future__ import annotations

import json
from typing import Any, Iterable, NamedTuple

import orjson
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from engine.events import CHAIN_BROKEN, DATA_ALTERED, EVENT_MISSING, GENESIS, OUT_OF_ORDER, Finding, recomputed_hash
from storage.db import as_utc
from storage.models import AuditEvent


class StoredEvent(NamedTuple):
    """An event row as verification reads it (nothing here is written)."""
    instance_id: int
    seq: int
    at: Any
    actor_id: int | None
    kind: str
    element_id: str | None
    data: dict
    prev_hash: str
    hash: str


_EVENTS = select(AuditEvent.instance_id, AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.kind,
                 AuditEvent.element_id, cast(AuditEvent.data, Text), AuditEvent.prev_hash, AuditEvent.hash)


def read_events(session: Session, instance_ids: Iterable[int]) -> dict[int, list[StoredEvent]]:
    """The instances' events, oldest first, by instance: one query. `data`
    is read as its text and parsed by orjson (a tenth of the time of the
    JSON type's json.loads over a whole record; what orjson refuses, NaN
    or an integer beyond 64 bits, goes to json)."""
    events: dict[int, list[StoredEvent]] = {}
    query = _EVENTS.where(AuditEvent.instance_id.in_(list(instance_ids))).order_by(AuditEvent.instance_id,
                                                                                    AuditEvent.seq)
    for row in session.execute(query):
        events.setdefault(row[0], []).append(StoredEvent(*row[:6], _parsed(row[6]), row[7], row[8]))
    return events


def _parsed(text: str | None):
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def verify_chain(session: Session, instance_id: int, rows: list[AuditEvent] | None = None,
                 head: tuple[int, str] | None = None) -> list[Finding]:
    """Problems found in one instance's chain (empty when it is intact):
    each stored event must hash to its stored hash and link to the event
    before it; `head` (the instance row's audit_seq and audit_head) must be
    the last event, so a history cut short is found too. One problem per
    event: after a mismatch the check goes on from the stored hash."""
    if rows is None:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                               .order_by(AuditEvent.seq)).all()
    by_hash = {row.hash: row.seq for row in rows}
    problems = []
    prev_hash, prev_seq = GENESIS, 0
    for row in rows:
        if row.seq != prev_seq + 1:
            missing = f"event {prev_seq + 1}" if row.seq == prev_seq + 2 else f"events {prev_seq + 1}-{row.seq - 1}"
            problems.append(Finding(instance_id, prev_seq + 1, EVENT_MISSING,
                                    f"{missing} missing before event {row.seq} ({row.kind})"))
        if row.prev_hash != prev_hash and row.prev_hash in by_hash and by_hash[row.prev_hash] != prev_seq:
            problems.append(Finding(instance_id, row.seq, OUT_OF_ORDER,
                                    f"event {row.seq} ({row.kind}) was chained after event "
                                    f"{by_hash[row.prev_hash]}, not after event {prev_seq}"))
        elif row.prev_hash != prev_hash and row.seq == prev_seq + 1:
            problems.append(Finding(instance_id, row.seq, CHAIN_BROKEN,
                                    f"event {row.seq} ({row.kind}) does not link to the event before it"))
        elif row.hash != recomputed_hash(row.hash, row.prev_hash, instance_id, row.seq, as_utc(row.at),
                                         row.actor_id, row.kind, row.element_id, row.data):
            problems.append(Finding(instance_id, row.seq, DATA_ALTERED,
                                    f"event {row.seq} ({row.kind} {row.element_id or ''}) does not match its "
                                    "hash: its content was changed"))
        prev_hash, prev_seq = row.hash, row.seq
    if head is not None and head != (prev_seq, prev_hash):
        seq, digest = head
        if seq > prev_seq:
            problems.append(Finding(instance_id, prev_seq + 1, EVENT_MISSING,
                                    f"events {prev_seq + 1}-{seq} missing: the instance's head is event {seq}, "
                                    f"the last stored event is {prev_seq}"))
        else:
            problems.append(Finding(instance_id, seq, CHAIN_BROKEN,
                                    f"the instance's head (event {seq}, {digest[:12]}…) is not the last stored "
                                    f"event ({prev_seq}, {prev_hash[:12]}…)"))
    return problems
