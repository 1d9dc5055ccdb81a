"""Audit histories exported for an outside party, who can re-check every
hash with nothing but the file (format "ocop-audit-export/1").

JSON:
    {"format": "ocop-audit-export/1", "exported_at": ISO time, "hash_rule": HASH_RULE,
     "instances": [{"instance_id", "product_id", "product_name", "definition", "version",
                    "status", "audit_seq", "audit_head",
                    "events": [{"seq", "at", "actor", "actor_name", "kind", "element",
                                "data", "prev_hash", "hash"}]}]}
A JSON export may also carry "public_key" (PEM) and, per instance, a
"checkpoint": {checkpoint, statement, signature, leaf, leaf_index, proof}
(see audit/checkpoints.py); scripts/verify_export.py checks both.
CSV: a note row (CSV_NOTE, its first cell starting with "#"), then the
header, then one row per event, columns CSV_COLUMNS; `data` is the
canonical JSON of the event's data; an empty actor or element stands for
null. The note is a row of as many cells as the header, so the file stays
a plain CSV that a spreadsheet opens as is, and whoever opens it reads
first what it can prove: its chains only (no head, no checkpoint proof).
A program skips the leading "#" rows before the header.

`at` is exactly the text that was hashed and `actor` the user id that was
hashed; `actor_name` is extra (not hashed, so unproven). The instance's
product_id, product_name, definition, version and status are not hashed
either, but the hashed events determine them (the `started`, `migrated`,
`cancelled` and `finished` events): the checker compares them. Each instance's events are read
up to the head recorded on its row (`audit_seq`), so an event appended
while the export runs cannot make the head and the events disagree.

Both formats are produced as generators of text chunks: a filtered export
of many instances is read and written a batch of instances at a time.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Iterable, Iterator

from sqlalchemy import select

from audit.checkpoints import Proofs
from engine.events import GENESIS
from storage.db import Database, as_utc
from storage.models import AuditEvent, ProcessDefinition, ProcessInstance, Product, User

FORMAT = "ocop-audit-export/1"
HASH_RULE = (
    "For each instance, events in seq order (1..n): hash = hex(sha256(utf8(prev_hash + body))), where body "
    "is the JSON object {\"instance\": instance_id, \"seq\": seq, \"at\": at, \"actor\": actor, \"kind\": kind, "
    "\"element\": element, \"data\": data} serialised with keys sorted, separators ',' and ':' (no spaces) and "
    "non-ASCII characters unescaped (Python: json.dumps(body, sort_keys=True, ensure_ascii=False, "
    "separators=(',', ':'))). prev_hash of event 1 is 64 zeros (" + GENESIS[:4] + "...), then the previous "
    "event's hash; the last event's hash is the instance's audit_head and its seq the audit_seq. "
    "actor_name is not hashed. In CSV an empty actor or element is null and data is that JSON text.")
CSV_COLUMNS = ("instance_id", "seq", "at", "actor", "actor_name", "kind", "element", "data", "prev_hash", "hash")
# No comma or quote in it: the csv writer leaves the cell unquoted, so its line starts with "#".
CSV_NOTE = (
    "# ocop-audit-export/1 CSV. Kiểm chứng: python3 verify_export.py TỆP.csv (scripts/verify_export.py của "
    "ocop-flow) tính lại chuỗi băm của từng hồ sơ; tệp CSV không có đầu chuỗi và bằng chứng điểm kiểm tra nên "
    "không phát hiện được các sự kiện cuối bị cắt bỏ - hãy dùng bản xuất JSON với --public-key; cột actor_name "
    "không được băm. / Verify: python3 verify_export.py FILE.csv (scripts/verify_export.py of ocop-flow) "
    "recomputes each instance's hash chain; a CSV has no head and no checkpoint proof so events cut from the end "
    "of a history go unseen - use the JSON export with --public-key; actor_name is not hashed. Hash rule: see "
    "hash_rule in the JSON export.")
BATCH = 100


def hashed_at(at: datetime) -> str:
    """The event time exactly as the hash covers it (UTC, microseconds)."""
    return as_utc(at).astimezone(timezone.utc).isoformat(timespec="microseconds")


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _instances(db: Database, instance_ids: Iterable[int], batch: int) -> Iterator[dict]:
    """Each instance as the export's dict, read a batch at a time, each
    batch in its own short transaction."""
    ids = list(instance_ids)
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        with db.transaction() as session:
            heads = session.execute(
                select(ProcessInstance.id, ProcessInstance.product_id, Product.name, ProcessDefinition.name,
                       ProcessDefinition.version, ProcessInstance.status, ProcessInstance.audit_seq,
                       ProcessInstance.audit_head)
                .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
                .outerjoin(Product, Product.id == ProcessInstance.product_id)
                .where(ProcessInstance.id.in_(chunk))).all()
            by_id = {row[0]: row for row in heads}
            events: dict[int, list] = {instance_id: [] for instance_id in by_id}
            for row in session.execute(
                    select(AuditEvent.instance_id, AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id,
                           AuditEvent.kind, AuditEvent.element_id, AuditEvent.data, AuditEvent.prev_hash,
                           AuditEvent.hash)
                    .where(AuditEvent.instance_id.in_(list(by_id)))
                    .order_by(AuditEvent.instance_id, AuditEvent.seq)):
                if row.seq <= by_id[row.instance_id].audit_seq:
                    events[row.instance_id].append(row)
            actor_ids = {row.actor_id for rows in events.values() for row in rows if row.actor_id is not None}
            names = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(actor_ids))).all()) \
                if actor_ids else {}
        for instance_id in chunk:  # in the order asked for
            head = by_id.get(instance_id)
            if head is None:
                continue
            yield {
                "instance_id": head[0], "product_id": head[1], "product_name": head[2], "definition": head[3],
                "version": head[4], "status": head[5], "audit_seq": head[6], "audit_head": head[7],
                "events": [{"seq": e.seq, "at": hashed_at(e.at), "actor": e.actor_id,
                            "actor_name": names.get(e.actor_id), "kind": e.kind, "element": e.element_id,
                            "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash}
                           for e in events[instance_id]],
            }


def json_chunks(db: Database, instance_ids: Iterable[int], exported_at: datetime,
                batch: int = BATCH, proofs: Proofs | None = None, public_key_pem: str | None = None
                ) -> Iterator[str]:
    """The JSON export, one instance per chunk (after the header). With
    `proofs` (the latest signed checkpoint), each instance it covers gets
    its inclusion proof under "checkpoint", and the header the public key
    (which the reader should compare with the fingerprint they hold)."""
    header = {"format": FORMAT, "exported_at": hashed_at(exported_at), "hash_rule": HASH_RULE}
    if public_key_pem:
        header["public_key"] = public_key_pem
    yield json.dumps(header, ensure_ascii=False)[:-1] + ', "instances": ['
    for number, instance in enumerate(_instances(db, instance_ids, batch)):
        proof = proofs.for_instance(instance["instance_id"]) if proofs else None
        if proof:
            instance["checkpoint"] = proof
        yield (", " if number else "") + json.dumps(instance, ensure_ascii=False, default=str)
    yield "]}\n"


def csv_chunks(db: Database, instance_ids: Iterable[int], batch: int = BATCH) -> Iterator[str]:
    """The CSV export: the note and header lines, then one chunk of rows per instance."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([CSV_NOTE] + [""] * (len(CSV_COLUMNS) - 1))
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for instance in _instances(db, instance_ids, batch):
        buffer.seek(0)
        buffer.truncate()
        for e in instance["events"]:
            writer.writerow([instance["instance_id"], e["seq"], e["at"], _blank(e["actor"]),
                             spreadsheet_safe(e["actor_name"] or ""), e["kind"], _blank(e["element"]),
                             canonical(e["data"]), e["prev_hash"], e["hash"]])
        yield buffer.getvalue()


def spreadsheet_safe(text: str) -> str:
    """A free-text cell that a spreadsheet will show, never run: names are
    chosen by the people who sign up, and Excel or LibreOffice read a cell
    starting with = + - @ (or a tab / carriage return before them) as a
    formula. Such text gets a leading apostrophe, as OWASP advises."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _blank(value) -> str:
    return "" if value is None else str(value)
