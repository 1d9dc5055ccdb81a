"""The instance's append-only history, as a per-instance hash chain.

Each event's hash is sha256 over the previous event's hash and the event's
own canonical JSON (instance, seq, time, actor, kind, element, data), so a
changed, removed or reordered event breaks every later link.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import AuditEvent

GENESIS = "0" * 64


@dataclass
class PendingEvent:
    kind: str
    element_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    actor_id: int | None = None


def event_hash(prev_hash: str, instance_id: int, seq: int, at: datetime, actor_id: int | None,
               kind: str, element_id: str | None, data: dict) -> str:
    body = json.dumps(
        {"instance": instance_id, "seq": seq, "at": at.isoformat(timespec="microseconds"),
         "actor": actor_id, "kind": kind, "element": element_id, "data": data},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def chain(instance_id: int, seq: int, prev_hash: str, events: list[PendingEvent],
          at: datetime) -> tuple[list[dict], int, str]:
    """Rows (as dicts for one bulk insert) for the events, linked after the
    chain head (`seq`, `prev_hash`), and the new head."""
    rows = []
    for event in events:
        seq += 1
        data = json.loads(json.dumps(event.data, default=str))  # stored exactly as hashed
        digest = event_hash(prev_hash, instance_id, seq, at, event.actor_id, event.kind,
                            event.element_id, data)
        rows.append({"instance_id": instance_id, "seq": seq, "at": at, "actor_id": event.actor_id,
                     "kind": event.kind, "element_id": event.element_id, "data": data,
                     "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    return rows, seq, prev_hash


def plain(data: dict) -> dict:
    """A JSON-plain copy of process data: what the history stores."""
    return json.loads(json.dumps(data, default=str))


def data_delta(before: dict, after: dict, skip: str | None = None) -> dict:
    """The process variables a step set (new or changed values) and removed."""
    changed = {key: value for key, value in after.items() if key != skip and before.get(key, _ABSENT) != value}
    removed = sorted(key for key in before if key not in after and key != skip)
    return {"set": changed, "removed": removed}


_ABSENT = object()


def verify_chain(session: Session, instance_id: int) -> list[str]:
    """Problems found in one instance's chain (empty when it is intact)."""
    problems = []
    prev_hash, expected_seq = GENESIS, 1
    rows = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                           .order_by(AuditEvent.seq)).all()
    for row in rows:
        if row.seq != expected_seq:
            problems.append(f"event {expected_seq} missing (next is {row.seq})")
        digest = event_hash(prev_hash, instance_id, row.seq, as_utc(row.at), row.actor_id, row.kind,
                            row.element_id, row.data)
        if row.prev_hash != prev_hash or row.hash != digest:
            problems.append(f"event {row.seq} ({row.kind}) does not match its hash")
        prev_hash, expected_seq = row.hash, row.seq + 1
    return problems
