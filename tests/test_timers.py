"""Deadlines in the diagram: BPMN timers on the engine's clock, working days,
escalation, expiry, the worker that fires them, and their replay
(SQLite and PostgreSQL)."""
import threading
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner
from sqlalchemy import select

from audit import verification
from background.timers import fire_due_timers
from background.worker import run_once
from engine import calendar
from engine.errors import ConcurrencyConflict
from storage.models import AuditEvent, InboxTask, Notification, TimerDue
from testkit.cycle import RETURN, Cycle
from web.cli import main

SEED = "Hồ tiêu Gio Linh"
UTC = timezone.utc


def at_dossier_check(world) -> Cycle:
    cycle = Cycle(world, SEED).start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan",
                     "support_record", "submit_dossier"):
        cycle.do(form_key)
    assert cycle.ready_forms() == ["check_dossier"]
    return cycle


def events(world, instance_id, kind):
    with world.db.transaction() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id,
                                                        AuditEvent.kind == kind)).all()


def test_working_days_skip_weekends_and_holidays():
    friday = datetime(2026, 3, 6, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội
    assert calendar.add_working_days(friday, 1) == datetime(2026, 3, 9, 2, 0, tzinfo=UTC)  # Monday
    assert calendar.add_working_days(friday, 15) == datetime(2026, 3, 27, 2, 0, tzinfo=UTC)
    before_tet = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)  # Friday before Tết 2026 (16-20 Feb)
    assert calendar.add_working_days(before_tet, 1) == datetime(2026, 2, 23, 2, 0, tzinfo=UTC)
    # The round a dossier belongs to: forwarded by 30/4, or by 30/10.
    assert calendar.round_closing(datetime(2026, 3, 2, tzinfo=UTC)).date().isoformat() == "2026-04-30"
    assert calendar.round_closing(datetime(2026, 5, 2, tzinfo=UTC)).date().isoformat() == "2026-10-30"
    assert calendar.round_closing(datetime(2026, 11, 2, tzinfo=UTC)).date().isoformat() == "2027-04-30"


def test_an_overdue_check_is_escalated_and_the_task_stays(world, clock):
    cycle = at_dossier_check(world)
    task = cycle.task("check_dossier")
    due = calendar.add_working_days(clock.now, 15)
    assert task.due_at.replace(tzinfo=UTC) == due  # the inbox and the timer share one calendar
    with world.db.transaction() as session:
        timers = session.scalars(select(TimerDue).where(TimerDue.instance_id == cycle.instance_id)).all()
        assert [(t.element_id, t.due_at.replace(tzinfo=UTC)) for t in timers] == [("timer_check_dossier_late", due)]

    clock.now = due - timedelta(minutes=1)
    assert fire_due_timers(world) == 0 and events(world, cycle.instance_id, "timer_fired") == []
    clock.now = due + timedelta(minutes=1)
    assert fire_due_timers(world) == 1
    assert fire_due_timers(world) == 0  # fired once only

    fired = events(world, cycle.instance_id, "timer_fired")
    assert [e.data["elements"] for e in fired] == [["timer_check_dossier_late"]]
    with world.db.transaction() as session:
        row = session.scalar(select(InboxTask).where(InboxTask.instance_id == cycle.instance_id))
        assert row.element_id == "task_check_dossier" and row.escalated_at is not None
        sent = session.scalars(select(Notification).where(Notification.kind == "task_overdue")).all()
        assert [(n.recipient_role, n.instance_id) for n in sent] == [("program_manager", cycle.instance_id)]
        assert "Kiểm tra hồ sơ sản phẩm" in sent[0].message
        assert session.scalars(select(TimerDue).where(TimerDue.instance_id == cycle.instance_id)).all() == []
    cycle.do("check_dossier")  # the officer still decides; the escalation ran beside the task
    assert cycle.ready_forms() == ["council_attendance"]
    assert verification.verify(world, [cycle.instance_id]).ok


def test_a_producer_who_does_not_resubmit_in_time_drops_out(world, clock):
    cycle = at_dossier_check(world)
    cycle.do("check_dossier", RETURN)
    assert cycle.ready_forms() == ["submit_dossier"]
    clock.advance(days=30, minutes=1)
    assert fire_due_timers(world) == 1
    instance = cycle.instance()
    assert (instance.status, instance.end_event) == ("completed", "end_dossier_expired")
    assert cycle.ready() == []
    with world.db.transaction() as session:
        note = session.scalar(select(Notification).where(Notification.kind == "dossier_expired"))
        assert note.producer_id is not None and "quá hạn" in note.message
    report = verification.verify(world, [cycle.instance_id])
    assert report.ok, [str(p) for p in report.problems]


def test_a_timer_and_a_completion_at_once_never_both_move_the_instance(world, clock):
    cycle = at_dossier_check(world)
    clock.now = calendar.add_working_days(clock.now, 15) + timedelta(hours=1)
    task = cycle.task("check_dossier")
    actor = cycle.actor("check_dossier")
    outcomes, start = [], threading.Barrier(2)

    def fire():
        start.wait()
        try:
            outcomes.append(("timer", world.fire_due_timers(cycle.instance_id) is not None))
        except ConcurrencyConflict:
            outcomes.append(("timer", "conflict"))

    def complete():
        start.wait()
        try:
            world.complete_task(task.id, {"decision": "forward"}, actor)
            outcomes.append(("complete", True))
        except ConcurrencyConflict:
            outcomes.append(("complete", "conflict"))

    threads = [threading.Thread(target=fire), threading.Thread(target=complete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 2
    # Whatever the order, the history is one consistent story that replays.
    fire_due_timers(world)
    assert len(events(world, cycle.instance_id, "timer_fired")) <= 1
    report = verification.verify(world, [cycle.instance_id])
    assert report.ok, [str(p) for p in report.problems]


def test_worker_once_runs_every_job(world, clock, db_url):
    cycle = at_dossier_check(world)
    clock.now = calendar.add_working_days(clock.now, 16)
    done = run_once(world, ["timers"])
    assert done == {"timers": 1}
    result = CliRunner().invoke(main, ["worker", "--once", "--job", "timers"], env={"OCOP_DATABASE_URL": db_url})
    assert result.exit_code == 0 and "timers: 0" in result.output  # already fired; the CLI's clock is real time
    assert CliRunner().invoke(main, ["worker", "--once", "--job", "nope"]).exit_code == 2
    assert len(events(world, cycle.instance_id, "timer_fired")) == 1


def test_the_inbox_marks_an_escalated_task(world, clock, app, client):
    from testkit.web_login import login
    cycle = at_dossier_check(world)
    login(client, "cb.qt-gl-gm")
    assert "data-escalated" not in client.get("/inbox/").get_data(as_text=True)
    clock.now = calendar.add_working_days(clock.now, 15) + timedelta(minutes=5)
    fire_due_timers(world)
    page = client.get("/inbox/?overdue=1").get_data(as_text=True)
    assert "Kiểm tra hồ sơ sản phẩm" in page and "data-escalated" in page
    assert cycle.task("check_dossier").escalated_at is not None


def test_a_product_forwarded_to_the_province_waits_for_its_round(world, clock):
    """Issue 16: the round is a data object the product joins (no timer):
    the province council's attendance is ready at once, and the product
    says which round it waits in and when that round is decided."""
    from programme.rounds import where_it_stands
    from testkit.cycle import sheets
    cycle = at_dossier_check(world)
    cycle.do("check_dossier")
    cycle.do("score_product", sheets(80))  # the district proposes it for 4 stars
    closes = calendar.round_closing(clock.now)
    assert closes.astimezone(calendar.LOCAL_ZONE).strftime("%d/%m %H:%M") == "30/04 23:59"
    assert fire_due_timers(world) == 0
    task = cycle.task("score_product")
    assert task.role == "province_council"
    with world.db.transaction() as session:
        standing = where_it_stands(session, cycle.instance_id)
    assert standing.vi == "Chờ Hội đồng cấp tỉnh xét — Đợt 1 năm 2026, xét trước 30/06/2026"  # decided by 30/6
    assert verification.verify(world, [cycle.instance_id]).ok


def test_the_two_tier_cycle_escalates_the_communes_assessment_too(world, clock):
    cycle = Cycle(world, "Rượu mận Sa Pa").start()
    while "commune_assessment" not in cycle.ready_forms():
        cycle.do(cycle.ready_forms()[0])
    clock.now = calendar.add_working_days(clock.now, 15) + timedelta(minutes=1)
    assert fire_due_timers(world) == 1
    assert cycle.task("commune_assessment").escalated_at is not None
    cycle.do("commune_assessment")
    assert verification.verify(world, [cycle.instance_id]).ok
