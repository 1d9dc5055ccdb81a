"""Verification of the record: every chain checked, every instance replayed
through the real engine and compared with what was stored; and each kind
of tampering found and named (SQLite and PostgreSQL)."""
import pytest
from sqlalchemy import select

from audit import verification
from engine import events
from engine.access import load_actor
from engine.samples import levels_for_total
from programme.definitions import NATIONAL_DIAGRAM, migrate
from storage.models import ProcessInstance, User
from testkit.cycle import RETURN, Cycle, sheets
from tests.support import tamper
from tests.support.diagrams import later_change

SEED = "Hồ tiêu Gio Linh"
TWO_TIER = "Rượu mận Sa Pa"


def actor(world, username):
    with world.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def verify(world, *instance_ids, replay_too=True):
    return verification.verify(world, list(instance_ids) or None, replay_too=replay_too)


def only_problem(report) -> events.Finding:
    """The one problem found (a replay stops at its first difference)."""
    assert len(report.problems) == 1, [str(p) for p in report.problems]
    return report.problems[0]


def three_stars(world, name=SEED) -> Cycle:
    cycle = Cycle(world, name).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea", RETURN)
    cycle.through_dossier()
    cycle.do("score_product", sheets(60))
    return cycle


def test_every_kind_of_history_replays_to_the_stored_state(world):
    returned_and_recognised = three_stars(world)
    four_stars = Cycle(world, "Gạo hữu cơ Gio Mỹ").start().through_dossier()
    four_stars.do("score_product", sheets(80))
    four_stars.do("score_product", sheets(82))
    two_tier = Cycle(world, TWO_TIER).start().through_dossier()
    two_tier.do("score_product", sheets(45))

    claimed = Cycle(world, "Tinh dầu tràm Cam Lộ").start()
    claimed.do("register_idea")
    task = claimed.task("receive_idea")
    officer = claimed.actor("receive_idea")
    world.claim(task.id, officer)
    world.unclaim(task.id, officer)
    world.claim(task.id, officer)
    claimed.do("receive_idea", actor=officer)

    cancelled = Cycle(world, "Mật ong rừng Gio Sơn").start()
    cancelled.do("register_idea")
    world.cancel(cancelled.instance_id, actor(world, "qlct.qt"), "Chủ thể rút hồ sơ")

    report = verify(world)
    assert report.ok, [str(p) for p in report.problems]
    with world.db.transaction() as session:
        assert report.instances == len(session.scalars(select(ProcessInstance.id)).all())
        states = {i.id: (i.status, i.stars) for i in session.scalars(select(ProcessInstance))}
    assert states[returned_and_recognised.instance_id] == ("completed", 3)
    assert states[four_stars.instance_id] == ("completed", 4)
    assert states[cancelled.instance_id] == ("cancelled", None)
    assert report.events > 100


def test_a_migrated_instance_replays_across_both_versions(world):
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    name, path = NATIONAL_DIAGRAM
    target = world.deploy(later_change(), name, "qlct", "v2: district scoring renamed")
    result = migrate(world, actor(world, "admin"), [cycle.instance_id], target.id)
    assert [r.outcome for r in result.results] == ["migrated"]
    cycle.do("receive_idea")
    cycle.do("review_idea")
    report = verify(world, cycle.instance_id)
    assert report.ok, [str(p) for p in report.problems]


def test_parallel_verification_gives_the_same_report(world):
    for name in (SEED, "Gạo hữu cơ Gio Mỹ"):
        Cycle(world, name).start().do("register_idea")
    serial = verify(world)
    verification.BATCH_SIZE, saved = 2, verification.BATCH_SIZE
    try:
        parallel = verification.verify(world, None, jobs=2)
    finally:
        verification.BATCH_SIZE = saved
    assert parallel.ok and (parallel.instances, parallel.events) == (serial.instances, serial.events)


# --- tampering ------------------------------------------------------------------

@pytest.fixture
def recognised(world):
    """A finished 3-star cycle, the guard against changing history dropped."""
    cycle = three_stars(world)
    with world.db.transaction() as session:
        tamper.drop_append_only_guard(session)
    return cycle


def test_an_altered_event_is_named(world, recognised):
    with world.db.transaction() as session:
        event = tamper.event_where(session, recognised.instance_id, "task_completed", form_key="review_idea")
        seq = event.seq
        tamper.alter(session, event, form={**event.data["form"], "reasons": "Đã đủ hồ sơ"})
    report = verify(world, recognised.instance_id, replay_too=False)
    problem = only_problem(report)
    assert (problem.instance_id, problem.seq, problem.kind) == (recognised.instance_id, seq, events.DATA_ALTERED)
    assert f"instance {recognised.instance_id}, event {seq}: data altered" in str(problem)


def test_a_deleted_event_is_named(world, recognised):
    with world.db.transaction() as session:
        seq = tamper.event_where(session, recognised.instance_id, "service_called", handler="rank_council").seq
        tamper.delete(session, recognised.instance_id, seq)
    missing = [p for p in verify(world, recognised.instance_id).problems if p.kind == events.EVENT_MISSING]
    assert [p.seq for p in missing] == [seq] and f"event {seq} missing" in missing[0].message


def test_a_deleted_last_event_is_found_from_the_head(world, recognised):
    with world.db.transaction() as session:
        last = tamper.events(session, recognised.instance_id)[-1]
        tamper.delete(session, recognised.instance_id, last.seq)
    missing = [p for p in verify(world, recognised.instance_id).problems if p.kind == events.EVENT_MISSING]
    assert [p.seq for p in missing] == [last.seq] and "the instance's head is event" in missing[0].message


def test_two_swapped_events_are_named(world, recognised):
    with world.db.transaction() as session:
        first = tamper.event_where(session, recognised.instance_id, "task_completed", form_key="submit_plan").seq
        tamper.swap(session, recognised.instance_id, first, first + 1)
    problems = verify(world, recognised.instance_id, replay_too=False).problems
    assert {p.kind for p in problems} == {events.OUT_OF_ORDER}
    # Both moved events, and the one after them, no longer link in order.
    assert {first, first + 1} <= {p.seq for p in problems} <= {first, first + 1, first + 2}


def test_an_edited_stored_state_is_state_drift(world):
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    with world.db.transaction() as session:
        tamper.edit_state(session, cycle.instance_id, "max_resubmissions", 99)
    problem = only_problem(verify(world, cycle.instance_id))
    assert problem.kind == events.STATE_DRIFT
    assert "max_resubmissions: stored 99, replayed 3" in problem.message


def test_a_rewritten_history_with_recomputed_hashes_fails_the_replay(world, recognised):
    """The chain checks pass after a careful rewrite; the replay still sees
    that the recorded story does not lead to the stored state."""
    with world.db.transaction() as session:
        event = tamper.event_where(session, recognised.instance_id, "task_completed", form_key="review_idea")
        seq = event.seq
        tamper.rewrite(session, recognised.instance_id, seq, {**event.data, "form": {
            **event.data["form"], "decision": "accept", "reasons": ""}})
    assert verify(world, recognised.instance_id, replay_too=False).ok
    problem = only_problem(verify(world, recognised.instance_id))
    assert problem.kind == events.STATE_DRIFT and problem.seq is not None and problem.seq >= seq


def test_an_altered_score_sheet_is_caught_by_running_the_ranking_again(world, recognised):
    """rank_council is pure: the replay runs it on the recorded sheets."""
    with world.db.transaction() as session:
        group = session.get(ProcessInstance, recognised.instance_id).product.group_code
        event = tamper.event_where(session, recognised.instance_id, "task_completed", form_key="council_sheet")
        raised = {**event.data["form"], "levels": levels_for_total(group, 95)}
        tamper.rewrite(session, recognised.instance_id, event.seq, {**event.data, "form": raised})
    problem = only_problem(verify(world, recognised.instance_id))
    assert problem.kind == events.STATE_DRIFT
    # The last sheet's completion ran the ranking: its recorded delta holds
    # the council's real result, which the forged sheet no longer gives.
    assert problem.seq >= event.seq and "district_rank" in problem.message
