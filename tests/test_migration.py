"""Moving running instances to a new version of their diagram (engine/migration.py),
on SQLite and PostgreSQL, as real users of the demo world."""
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from audit.chain import verify_chain
from engine import execution
from engine.access import load_actor
from engine.errors import NotAllowed
from engine.migration import (
    FAILED,
    MIGRATED,
    NOT_APPLICABLE,
    SAFE,
    SKIPPED,
    UNSAFE,
    AllOn,
    plan,
)
from programme.definitions import migrate
from storage.models import AuditEvent, InboxTask, Jurisdiction, ProcessInstance, User
from testkit.cycle import Cycle, sheets
from tests.support.diagrams import DISTRICT_NAME, REGISTER_NAME, earlier_change, later_change

SEED = "Hồ tiêu Gio Linh"
QT_PRODUCTS = ["Hồ tiêu Gio Linh", "Gạo hữu cơ Gio Mỹ", "Tinh dầu tràm Cam Lộ", "Mật ong rừng Gio Sơn",
               "Cá khô Trung Giang", "Cà phê rang xay Cam Hiếu"]


def actor(world, username):
    with world.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def snapshot(world, instance_id):
    with world.db.transaction() as session:
        instance = session.get(ProcessInstance, instance_id)
        rows = session.scalars(select(InboxTask).where(InboxTask.instance_id == instance_id)
                               .order_by(InboxTask.id)).all()
        return ((instance.version, instance.definition_id, instance.state, instance.audit_seq,
                 instance.audit_head, instance.current_step),
                [(r.id, r.name, r.assignee_id, r.due_at) for r in rows])


def events(world, instance_id):
    with world.db.transaction() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                               .order_by(AuditEvent.seq)).all()


def chain_ok(world, *instance_ids):
    with world.db.transaction() as session:
        for instance_id in instance_ids:
            assert verify_chain(session, instance_id) == []


def start(world, name, year=None) -> Cycle:
    cycle = Cycle(world, name)
    cycle.last = world.start_product(cycle.product_id, cycle.owner, year)
    cycle.instance_id = cycle.last.instance_id
    return cycle


def test_a_later_change_migrates_running_instances_which_then_finish_on_it(world, clock):
    early = start(world, SEED)
    early.do("register_idea")
    early.do("receive_idea")                                 # waits at review_idea (step 2)
    at_score = start(world, "Tinh dầu tràm Cam Lộ").through_dossier()
    score_row = at_score.task("score_product")            # task_attendance_district, ready since now
    old_definition = early.instance().definition_id
    before = {c.instance_id: snapshot(world, c.instance_id)[0] for c in (early, at_score)}
    clock.advance(days=3)
    v2 = world.deploy(later_change().encode(), "ocop_cycle", "test", "score district: 45 days")

    report = plan(world, [early.instance_id, at_score.instance_id], v2.id)
    assert [p.verdict for p in report.instances] == [SAFE, SAFE]
    assert report.instances[0].reset == [] and report.instances[1].reset == ["task_attendance_district"]
    assert {c.instance_id: snapshot(world, c.instance_id)[0] for c in (early, at_score)} == before  # dry run

    result = migrate(world, actor(world, "admin"), [early.instance_id, at_score.instance_id], v2.id)
    assert [r.outcome for r in result.results] == [MIGRATED, MIGRATED]
    for cycle in (early, at_score):
        instance = cycle.instance()
        assert instance.definition_id == v2.id
        assert instance.version == before[cycle.instance_id][0] + 1
        last = events(world, cycle.instance_id)[-1]
        assert last.kind == "migrated"
        assert (last.data["from_definition"], last.data["to_definition"]) == (old_definition, v2.id)
        assert (last.data["from_version"], last.data["to_version"]) == (1, v2.version)
        assert last.data["changed_elements"] == {
            "changed": {"task_attendance_district": ["bpmn_name", "extensions"]}, "added": [], "removed": []}
    # The ready score task kept its id; its row took the new name and due date.
    row = at_score.task("score_product")
    assert row.id == score_row.id and row.name == DISTRICT_NAME + " - v2"
    assert row.created_at == score_row.created_at
    assert row.due_at == score_row.created_at + timedelta(days=45)

    # Both run to the end on the new version (no stale cached workflow).
    early.through_dossier()
    assert early.task("score_product").name == DISTRICT_NAME + " - v2"
    early.do("score_product", sheets(75))
    early.do("score_product", sheets(80))
    at_score.do("score_product", sheets(55))
    for cycle, stars in ((early, 4), (at_score, 3)):
        instance = cycle.instance()
        assert (instance.status, instance.stars, instance.definition_id) == ("completed", stars, v2.id)
    chain_ok(world, early.instance_id, at_score.instance_id)


def test_a_change_to_a_completed_element_is_unsafe_and_skipped(world):
    done = start(world, SEED)
    done.do("register_idea")                                 # task_register_idea is COMPLETED
    fresh = start(world, "Gạo hữu cơ Gio Mỹ")               # task_register_idea is READY
    before = snapshot(world, done.instance_id)
    v2 = world.deploy(earlier_change().encode(), "ocop_cycle", "test", "rename the idea form")

    report = plan(world, [done.instance_id, fresh.instance_id], v2.id)
    unsafe, safe = report.instances
    assert (unsafe.verdict, safe.verdict) == (UNSAFE, SAFE)
    assert any("task_register_idea" in reason and "COMPLETED" in reason for reason in unsafe.reasons)

    result = migrate(world, actor(world, "admin"), [done.instance_id, fresh.instance_id], v2.id)
    skipped, migrated = result.results
    assert (skipped.outcome, migrated.outcome) == (SKIPPED, MIGRATED)
    assert skipped.reasons == unsafe.reasons
    assert snapshot(world, done.instance_id) == before      # version, state, definition, inbox unchanged
    assert fresh.task("register_idea").name == f"{REGISTER_NAME} (mẫu 01)"
    # Each continues on its own version.
    done.do("receive_idea")
    fresh.do("register_idea")
    assert done.instance().definition_id != v2.id and fresh.instance().definition_id == v2.id
    chain_ok(world, done.instance_id, fresh.instance_id)


def test_bulk_plan_and_migrate_twenty_instances_at_mixed_steps(world):
    cycles: dict[str, list[Cycle]] = {"fresh": [], "idea": [], "score": [], "province": [], "done": []}
    kinds = ["fresh"] * 5 + ["idea"] * 5 + ["score"] * 4 + ["province"] * 3 + ["done"] * 3
    for n, kind in enumerate(kinds):
        cycle = start(world, QT_PRODUCTS[n % len(QT_PRODUCTS)], 2026 + n // len(QT_PRODUCTS))
        if kind == "idea":
            cycle.do("register_idea")
        elif kind in ("score", "province", "done"):
            cycle.through_dossier()
            if kind == "province":
                cycle.do("score_product", sheets(75))        # district scored: on to the province
            elif kind == "done":
                cycle.do("score_product", sheets(55))        # 3 stars, finished
        cycles[kind].append(cycle)
    two_tier = start(world, "Rượu mận Sa Pa")                # Lào Cai's own diagram
    ids = [c.instance_id for group in cycles.values() for c in group]
    assert len(ids) == 20
    v1 = cycles["fresh"][0].instance().definition_id
    v2 = world.deploy(later_change().encode(), "ocop_cycle", "test", "score district: 45 days")

    report = plan(world, ids + [two_tier.instance_id], v2.id)
    verdict = {p.instance_id: p for p in report.instances}
    expect = {**{c.instance_id: SAFE for k in ("fresh", "idea", "score") for c in cycles[k]},
              **{c.instance_id: UNSAFE for c in cycles["province"]},
              **{c.instance_id: NOT_APPLICABLE for c in cycles["done"]},
              two_tier.instance_id: NOT_APPLICABLE}
    assert {i: p.verdict for i, p in verdict.items()} == expect
    for cycle in cycles["province"]:
        assert verdict[cycle.instance_id].reasons == [
            "task_attendance_district (COMPLETED) was changed (bpmn_name, extensions)"]
    assert verdict[two_tier.instance_id].reasons[0].startswith("a different diagram")
    assert [p.instance_id for p in plan(world, AllOn(v1), v2.id).instances] == sorted(
        c.instance_id for k in ("fresh", "idea", "score", "province") for c in cycles[k])

    left = {c.instance_id: snapshot(world, c.instance_id) for c in cycles["province"] + cycles["done"]}
    result = migrate(world, actor(world, "admin"), ids, v2.id)
    assert len(result.migrated) == 14 and len(result.skipped) == 6 and result.failed == []
    with world.db.transaction() as session:  # the action is in the append-only admin log
        from storage.models import AdminLogEntry
        entry = session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id.desc())).first()
        assert (entry.action, entry.definition_id) == ("migrate", v2.id)
        assert entry.message.startswith("14 migrated, 6 skipped, 0 failed")
    assert {c.instance_id: snapshot(world, c.instance_id) for c in cycles["province"] + cycles["done"]} == left
    assert plan(world, AllOn(v1), v2.id).safe == []

    # Left on the old version, they still finish; migrated ones finish on the new one.
    for cycle in cycles["province"]:
        cycle.do("score_product", sheets(80))
        assert (cycle.instance().status, cycle.instance().definition_id) == ("completed", v1)
    for cycle in (cycles["fresh"][0], cycles["idea"][0], cycles["score"][0]):
        if "council_attendance" not in cycle.ready_forms():
            cycle.through_dossier()
        cycle.do("score_product", sheets(60))
        assert (cycle.instance().status, cycle.instance().definition_id) == ("completed", v2.id)
    chain_ok(world, *ids)


def test_only_the_target_scope_manager_may_migrate(world):
    cycle = start(world, SEED)
    before = snapshot(world, cycle.instance_id)
    national = world.deploy(later_change().encode(), "ocop_cycle", "test")
    for username in ("qlct.qt", "qlct.lc", "cb.qt-gl", "kiemtoan"):
        with pytest.raises(NotAllowed):
            migrate(world, actor(world, username), [cycle.instance_id], national.id)
    with pytest.raises(NotAllowed):
        migrate(world, cycle.owner, [cycle.instance_id], national.id)
    assert snapshot(world, cycle.instance_id) == before

    # A variant of Quảng Trị: its program manager may, Lào Cai's may not,
    # and it does not apply to another province's instances.
    with world.db.transaction() as session:
        qt = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT"))
    variant = world.deploy(earlier_change().encode(), "ocop_cycle", "test", province_id=qt)
    with pytest.raises(NotAllowed):
        migrate(world, actor(world, "qlct.lc"), [cycle.instance_id], variant.id)
    result = migrate(world, actor(world, "qlct.qt"), [cycle.instance_id], variant.id)
    assert [r.outcome for r in result.results] == [MIGRATED]
    assert cycle.instance().definition_id == variant.id
    assert events(world, cycle.instance_id)[-1].actor_id == actor(world, "qlct.qt").user_id


def test_a_failure_rolls_back_that_instance_only(world, monkeypatch):
    ok = start(world, SEED)
    broken = start(world, "Tinh dầu tràm Cam Lộ").through_dossier()
    before = snapshot(world, broken.instance_id)
    v2 = world.deploy(later_change().encode(), "ocop_cycle", "test")
    real = execution.inbox_row

    def failing(instance, task, now):
        if instance.id == broken.instance_id:
            raise RuntimeError("disk on fire")
        return real(instance, task, now)

    monkeypatch.setattr(execution, "inbox_row", failing)
    result = migrate(world, actor(world, "admin"), [broken.instance_id, ok.instance_id], v2.id)
    assert [r.outcome for r in result.results] == [FAILED, MIGRATED]
    assert "disk on fire" in result.results[0].reasons[0]
    assert snapshot(world, broken.instance_id) == before
    monkeypatch.undo()
    broken.do("score_product", sheets(55))                  # still runs, on the old version
    assert broken.instance().status == "completed"
    chain_ok(world, ok.instance_id, broken.instance_id)


def test_cli_prints_the_plan_then_applies_it(world, db_url):
    from web.cli import main
    cycle = start(world, SEED)
    v1 = cycle.instance().definition_id
    v2 = world.deploy(later_change().encode(), "ocop_cycle", "test")
    runner = CliRunner()
    env = {"OCOP_DATABASE_URL": db_url}
    dry = runner.invoke(main, ["migrate", "--to", str(v2.id), "--all-on", str(v1)], env=env,
                        catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert f"instance {cycle.instance_id}: safe" in dry.output and "nothing written" in dry.output
    assert cycle.instance().definition_id == v1
    applied = runner.invoke(main, ["migrate", "--to", str(v2.id), "--instance", str(cycle.instance_id),
                                   "--apply"], env=env, catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert f"instance {cycle.instance_id}: migrated" in applied.output
    assert cycle.instance().definition_id == v2.id
    assert events(world, cycle.instance_id)[-1].actor_id is None    # the system actor
    bad = runner.invoke(main, ["migrate", "--to", str(v2.id)], env=env)
    assert bad.exit_code == 2


