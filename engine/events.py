"""The instance's append-only history as the engine writes it: events
chained by hash, one chain per instance.

Each event's hash is sha256 over the previous event's hash and the event's
own canonical JSON (instance, seq, time, actor, kind, element, data), so a
changed, removed or reordered event breaks every later link. Checking a
chain is the auditor's side (audit/chain.py); what a check can find
(`Finding`) is named here because replay reports findings too.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

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


def recomputed_hash(stored_hash: str, prev_hash: str, instance_id: int, seq: int, at: datetime,
                      actor_id: int | None, kind: str, element_id: str | None, data: dict) -> str:
    """The hash of a stored event (`event_hash`), recomputed to check it:
    orjson's sorted compact text is tried first, as bytes, and taken when
    it gives the stored hash -- then it is the very text that was hashed,
    since the text a hash came from is the only one known to give it.
    Otherwise (a changed event; or a value the two write differently:
    floats in exponent form, non-finite numbers, integers beyond 64 bits)
    `event_hash` decides. Several times faster over a whole record, with
    the rule unchanged."""
    body = {"instance": instance_id, "seq": seq, "at": at.isoformat(timespec="microseconds"),
            "actor": actor_id, "kind": kind, "element": element_id, "data": data}
    try:
        fast = hashlib.sha256(prev_hash.encode("ascii") + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
                              ).hexdigest()
    except (TypeError, UnicodeEncodeError, orjson.JSONEncodeError):
        fast = None
    if fast == stored_hash:
        return fast
    return event_hash(prev_hash, instance_id, seq, at, actor_id, kind, element_id, data)


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
    """The process variables an engine call set (new or changed values) and removed."""
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
ROW_ALTERED = "instance row altered"  # a column of the instance row differs from its hashed history
NOT_COVERED = "not covered by checkpoint"  # claims to predate a checkpoint that does not include it
UNPROVEN = "unproven"  # not a problem found, a column the history cannot prove (a note, not a failure)


@dataclass(frozen=True)
class Finding:
    instance_id: int | None
    seq: int | None  # the event it concerns, when there is one
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"instance {self.instance_id}" + (f", event {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.kind}: {self.message}"
