"""A task's drafts live exactly as long as its inbox row (task_draft.task_id
references task.id ON DELETE CASCADE): whatever takes the task out of the
inbox takes its drafts, and nothing else does (SQLite and PostgreSQL)."""
from __future__ import annotations

from sqlalchemy import func, select

from engine.access import load_actor
from programme import tasks
from programme.definitions import migrate
from storage.models import TaskDraft, User
from testkit.cycle import Cycle, sheets
from tests.support.diagrams import later_change

SEED = "Hồ tiêu Gio Linh"


def actor(world, username: str):
    with world.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def drafts(world, task_id: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(TaskDraft).where(TaskDraft.task_id == task_id))


def test_completing_a_task_takes_everyones_drafts(world):
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    task = cycle.task("receive_idea")
    officer = actor(world, "cb.qt-gl-gm")
    tasks.save_draft(world.db, task.id, officer.user_id, {"notes": ["đang xem"]}, world.clock())
    tasks.save_draft(world.db, task.id, actor(world, "qlct.qt").user_id, {"notes": ["ghi chú"]}, world.clock())
    assert drafts(world, task.id) == 2
    cycle.do("receive_idea")
    assert drafts(world, task.id) == 0


def test_a_cancelled_cycle_takes_its_tasks_drafts(world):
    cycle = Cycle(world, SEED).start()
    task = cycle.task("register_idea")
    tasks.save_draft(world.db, task.id, cycle.owner.user_id, {"product_description": ["Hồ tiêu"]}, world.clock())
    world.cancel(cycle.instance_id, actor(world, "qlct.qt"), "Chủ thể rút đăng ký")
    assert drafts(world, task.id) == 0


def test_a_migrated_task_keeps_its_drafts(world):
    """A waiting task whose element changed is rewritten in place by a
    migration: the council secretary's half-typed score sheet survives."""
    cycle = Cycle(world, SEED).start().through_dossier()
    task = cycle.task("score_product")
    secretary = actor(world, "hd.qt-gl")
    tasks.save_draft(world.db, task.id, secretary.user_id, {"member": ["Thành viên 1"]}, world.clock())
    v2 = world.deploy(later_change().encode(), "ocop_cycle", "test")
    report = migrate(world, actor(world, "admin"), [cycle.instance_id], v2.id)
    assert [r.outcome for r in report.results] == ["migrated"]
    assert cycle.task("score_product").id == task.id and drafts(world, task.id) == 1
    cycle.do("score_product", sheets(60))
    assert drafts(world, task.id) == 0
