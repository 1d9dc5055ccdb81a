"""The history every engine call appends: complete, ordered, hash-chained."""
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from audit.chain import verify_chain
from engine import events
from storage.models import AuditEvent
from testkit.cycle import Cycle, sheets
from tests.support.tamper import drop_append_only_guard


def test_history_records_who_did_what(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start().through_dossier()
    cycle.do("score_product", sheets(60))
    with world.db.transaction() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == cycle.instance_id)
                                 .order_by(AuditEvent.seq)).all()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        kinds = [e.kind for e in events]
        assert kinds[0] == "started" and kinds[-1] == "finished"
        completed = [e for e in events if e.kind == "task_completed"]
        assert [e.data["form_key"] for e in completed][:3] == ["register_idea", "receive_idea", "review_idea"]
        assert all(e.actor_id for e in completed)
        handlers = [e.data["handler"] for e in events if e.kind == "service_called"]
        assert {"council_panel", "rank_council", "publish_promotion_listing"} <= set(handlers)
        assert verify_chain(session, cycle.instance_id) == []


def test_the_database_refuses_to_change_history(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    for statement in ("UPDATE audit_event SET kind = 'x'", "DELETE FROM audit_event"):
        with pytest.raises(DBAPIError, match="append-only"):
            with world.db.transaction() as session:
                session.execute(text(statement))
    with world.db.transaction() as session:
        assert verify_chain(session, cycle.instance_id) == []


def test_tampering_breaks_the_chain(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    cycle.do("register_idea")
    with world.db.transaction() as session:
        drop_append_only_guard(session)
    with world.db.transaction() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.instance_id == cycle.instance_id,
                                                        AuditEvent.kind == "task_completed"))
        event.data = {**event.data, "form": {**event.data["form"], "raw_materials": "nhập khẩu"}}
    with world.db.transaction() as session:
        problems = verify_chain(session, cycle.instance_id)
    assert problems and problems[0].kind == events.DATA_ALTERED and "does not match its hash" in str(problems[0])
