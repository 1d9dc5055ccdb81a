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


# What a verification can find, named for the person reading the report.
CHAIN_BROKEN = "chain broken"
EVENT_MISSING = "event missing"
DATA_ALTERED = "data altered"
OUT_OF_ORDER = "events reordered"
STATE_DRIFT = "state drift"
CHECKPOINT_MISMATCH = "checkpoint mismatch"


@dataclass(frozen=True)
class Problem:
    instance_id: int | None
    seq: int | None  # the event it concerns, when there is one
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"instance {self.instance_id}" + (f", event {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.kind}: {self.message}"


def verify_chain(session: Session, instance_id: int, rows: list[AuditEvent] | None = None,
                 head: tuple[int, str] | None = None) -> list[Problem]:
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
            problems.append(Problem(instance_id, prev_seq + 1, EVENT_MISSING,
                                    f"{missing} missing before event {row.seq} ({row.kind})"))
        if row.prev_hash != prev_hash and row.prev_hash in by_hash and by_hash[row.prev_hash] != prev_seq:
            problems.append(Problem(instance_id, row.seq, OUT_OF_ORDER,
                                    f"event {row.seq} ({row.kind}) was chained after event "
                                    f"{by_hash[row.prev_hash]}, not after event {prev_seq}"))
        elif row.prev_hash != prev_hash and row.seq == prev_seq + 1:
            problems.append(Problem(instance_id, row.seq, CHAIN_BROKEN,
                                    f"event {row.seq} ({row.kind}) does not link to the event before it"))
        elif row.hash != event_hash(row.prev_hash, instance_id, row.seq, as_utc(row.at), row.actor_id, row.kind,
                                    row.element_id, row.data):
            problems.append(Problem(instance_id, row.seq, DATA_ALTERED,
                                    f"event {row.seq} ({row.kind} {row.element_id or ''}) does not match its "
                                    "hash: its content was changed"))
        prev_hash, prev_seq = row.hash, row.seq
    if head is not None and head != (prev_seq, prev_hash):
        seq, digest = head
        if seq > prev_seq:
            problems.append(Problem(instance_id, prev_seq + 1, EVENT_MISSING,
                                    f"events {prev_seq + 1}-{seq} missing: the instance's head is event {seq}, "
                                    f"the last stored event is {prev_seq}"))
        else:
            problems.append(Problem(instance_id, seq, CHAIN_BROKEN,
                                    f"the instance's head (event {seq}, {digest[:12]}…) is not the last stored "
                                    f"event ({prev_seq}, {prev_hash[:12]}…)"))
    return problems
