"""Checking an instance's hash chain: every stored event hashes to its
stored hash and links to the event before it, and the instance row's head
is the last event (engine/events.py writes the chain)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.events import CHAIN_BROKEN, DATA_ALTERED, EVENT_MISSING, GENESIS, OUT_OF_ORDER, Finding, event_hash
from storage.db import as_utc
from storage.models import AuditEvent


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
        elif row.hash != event_hash(row.prev_hash, instance_id, row.seq, as_utc(row.at), row.actor_id, row.kind,
                                    row.element_id, row.data):
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
