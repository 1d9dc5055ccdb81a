"""Exported histories (audit/export.py) can be verified by an outside
party with nothing but the file: the check (tests/support/export_checks.py)
uses only hashlib, json and csv -- no project code -- and a tampered export
fails it."""
import csv
import io
import json
import types
from datetime import datetime, timezone

from sqlalchemy import select

from audit import export
from storage.db import as_utc
from storage.models import AuditEvent, ProcessInstance
from testkit.cycle import Cycle, returned, sheets
from tests.support.export_checks import csv_rows, verify_csv_export, verify_json_export

# --- the exports -------------------------------------------------------------------------------

NOW = datetime(2026, 4, 1, 9, 30, tzinfo=timezone.utc)


def finished_with_a_return(world) -> Cycle:
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    review = cycle.task("review_idea")
    world.claim(review.id, cycle.actor("review_idea"))
    cycle.do("review_idea", returned("review_idea"))
    cycle.through_dossier()
    cycle.do("score_product", sheets(60))  # 3 stars at the district: finished
    return cycle


def write(tmp_path, name, chunks) -> str:
    path = tmp_path / name
    path.write_text("".join(chunks), encoding="utf-8")
    return str(path)


def test_json_export_verifies_independently_and_tampering_fails(world, tmp_path):
    cycle = finished_with_a_return(world)
    other = Cycle(world, "Tinh dầu tràm Cam Lộ").start()
    other.do("register_idea")
    ids = [cycle.instance_id, other.instance_id]
    path = write(tmp_path, "export.json", export.json_chunks(world.db, ids, NOW))
    assert verify_json_export(path) == []

    document = json.loads(open(path, encoding="utf-8").read())
    assert document["format"] == "ocop-audit-export/1" and document["hash_rule"] == export.HASH_RULE
    assert document["exported_at"] == "2026-04-01T09:30:00.000000+00:00"
    first = document["instances"][0]
    with world.db.transaction() as session:
        instance = session.get(ProcessInstance, cycle.instance_id)
        rows = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == cycle.instance_id)
                               .order_by(AuditEvent.seq)).all()
        assert (first["instance_id"], first["product_id"], first["product_name"]) == \
            (cycle.instance_id, cycle.product_id, "Hồ tiêu Gio Linh")
        assert (first["definition"], first["version"], first["status"]) == ("ocop_cycle", 1, "completed")
        assert (first["audit_seq"], first["audit_head"]) == (instance.audit_seq, instance.audit_head)
        assert [e["hash"] for e in first["events"]] == [r.hash for r in rows]
        assert first["events"][0]["at"] == as_utc(rows[0].at).isoformat(timespec="microseconds")
    started = first["events"][0]
    assert (started["kind"], started["actor"], started["actor_name"]) == ("started", cycle.owner.user_id,
                                                                           "Lê Văn Tâm")
    assert set(started) == {"seq", "at", "actor", "actor_name", "kind", "element", "data", "prev_hash", "hash"}

    def tampered(change) -> list[str]:
        copy = json.loads(json.dumps(document))
        change(copy["instances"][0]["events"])
        altered = tmp_path / "tampered.json"
        altered.write_text(json.dumps(copy, ensure_ascii=False), encoding="utf-8")
        return verify_json_export(altered)

    def set_decision(events):
        next(e for e in events if e["kind"] == "task_completed" and e["data"]["form"].get("decision")
             == "return")["data"]["form"]["decision"] = "accept"

    assert tampered(set_decision)
    assert tampered(lambda events: events.pop(5))
    assert tampered(lambda events: events.insert(3, events.pop(4)))
    assert tampered(lambda events: events[2].update(at="2026-03-01T08:00:00.000000+00:00"))
    assert tampered(lambda events: events[3].update(actor=events[3]["actor"] + 1))
    assert tampered(lambda events: events.pop())                  # the head no longer matches
    # The name beside the actor is not part of the record.
    assert not tampered(lambda events: events[0].update(actor_name="someone else"))


def test_csv_export_verifies_independently_and_tampering_fails(world, tmp_path):
    cycle = finished_with_a_return(world)
    path = write(tmp_path, "export.csv", export.csv_chunks(world.db, [cycle.instance_id]))
    assert verify_csv_export(path) == []
    with open(path, encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle))[0].startswith("# ocop-audit-export/1 CSV. Kiểm chứng: python3 verify_export.py")
        handle.seek(0)
        rows = csv_rows(handle)
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    assert rows[1]["actor"] == "" and rows[1]["element"] == ""  # engine_steps: no actor, no element
    assert rows[0]["actor_name"] == "Lê Văn Tâm"
    assert any("Thiếu thông tin nguồn nguyên liệu" in row["data"] for row in rows)  # Vietnamese kept as is

    text = open(path, encoding="utf-8").read()
    altered = tmp_path / "tampered.csv"
    altered.write_text(text.replace("Thiếu thông tin nguồn nguyên liệu", "Đủ thông tin", 1), encoding="utf-8")
    assert verify_csv_export(altered)
    lines = text.splitlines(keepends=True)
    altered.write_text("".join(lines[:5] + lines[6:]), encoding="utf-8")  # one event left out
    assert verify_csv_export(altered)


def test_exports_stream_in_batches(world, tmp_path):
    cycles = [Cycle(world, name).start() for name in ("Hồ tiêu Gio Linh", "Gạo hữu cơ Gio Mỹ", "Rượu mận Sa Pa")]
    ids = [c.instance_id for c in cycles]
    chunks = export.json_chunks(world.db, ids, NOW, batch=1)
    assert isinstance(chunks, types.GeneratorType)
    pieces = list(chunks)
    assert len(pieces) == len(ids) + 2                             # header, one per instance, closing
    document = json.loads("".join(pieces))
    assert [i["instance_id"] for i in document["instances"]] == ids
    csv_pieces = list(export.csv_chunks(world.db, ids + [10_000], batch=2))  # an unknown id is skipped
    assert len(csv_pieces) == 1 + len(ids)
    rows = csv_rows(io.StringIO("".join(csv_pieces)))
    assert {int(r["instance_id"]) for r in rows} == set(ids)


def test_free_text_cells_are_never_spreadsheet_formulas():
    """A producer chooses its own name: in a CSV opened in a spreadsheet,
    a name that starts like a formula must stay text."""
    for hostile in ("=HYPERLINK(\"http://evil.example\")", "+1+1", "-2", "@SUM(A1)", "\t=1", "\r=1"):
        assert export.spreadsheet_safe(hostile) == "'" + hostile
    for plain in ("Nguyễn Văn A", "", "1-2", "a=b"):
        assert export.spreadsheet_safe(plain) == plain
