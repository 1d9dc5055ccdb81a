"""What a user can get wrong, and what must never be lost: each mistake is a
distinct error with a clear message, and leaves the database unchanged."""
import threading

import pytest
from sqlalchemy import func, select

from audit.chain import verify_chain
from engine import execution
from engine.access import load_actor
from engine.bpmn_engine import BpmnEngine
from engine.errors import (
    ClaimedByOther,
    ConcurrencyConflict,
    FormInvalid,
    NotAllowed,
    RegistrationClosed,
    TaskNotReady,
    UnknownTask,
)
from engine.samples import levels_for_total
from storage.db import Database
from storage.models import AuditEvent, InboxTask, ProcessInstance, Product, User
from testkit.cycle import Cycle, sheets

SEED = "Hồ tiêu Gio Linh"  # criteria set S10
FULL_SHEET = levels_for_total("S10", 70)


def snapshot(engine, instance_id):
    """Everything a failed call must leave as it was."""
    with engine.db.transaction() as session:
        instance = session.get(ProcessInstance, instance_id)
        tasks = sorted((t.id, t.assignee_id) for t in session.scalars(
            select(InboxTask).where(InboxTask.instance_id == instance_id)))
        events = session.scalar(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.instance_id == instance_id))
        return instance.version, instance.state, tasks, events


def actor(engine, username):
    with engine.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def test_unknown_task(world):
    cycle = Cycle(world, SEED).start()
    with pytest.raises(UnknownTask, match="No ready task"):
        world.complete_task("00000000-0000-0000-0000-000000000000", {}, cycle.owner)


def test_completing_a_task_twice(world):
    cycle = Cycle(world, SEED).start()
    task = cycle.task("register_idea")
    cycle.do("register_idea")
    before = snapshot(world, cycle.instance_id)
    with pytest.raises(UnknownTask):
        world.complete_task(task.id, {}, cycle.owner)
    assert snapshot(world, cycle.instance_id) == before


@pytest.mark.parametrize("form_key,data,field", [
    ("register_idea", {"registration_form": "03", "product_description": "Hồ tiêu đỏ Gio Linh",
                       "raw_materials": "tiêu", "expected_market": "tỉnh"}, "registration_form"),
    ("register_idea", {"registration_form": "01"}, "product_description"),
    ("register_idea", {"registration_form": "01", "product_description": "Hồ tiêu đỏ Gio Linh",
                       "raw_materials": "tiêu", "expected_market": "tỉnh", "price": 1}, "price"),
    ("review_idea", {"decision": "return"}, "reasons"),
    ("review_idea", {"decision": "maybe"}, "decision"),
    ("council_sheet", {"levels": {"A.1.1": "B.4.1#2"}}, "levels"),       # another criterion's level
    ("council_sheet", {"levels": {}}, "levels"),                          # nothing chosen
    ("council_sheet", {"levels": {**FULL_SHEET, "A.1.1": "9"}}, "levels"),  # points typed, not a level
    ("council_sheet", {"recused": True, "conflict_reason": ""}, "conflict_reason"),
    ("council_sheet", {"levels": FULL_SHEET, "eliminations": ["set#9"]}, "eliminations"),
    ("council_sheet", {"levels": FULL_SHEET, "total": 100}, "total"),
])
def test_wrong_form_values_change_nothing(world, form_key, data, field):
    cycle = Cycle(world, SEED).start()
    if form_key == "review_idea":
        cycle.do("register_idea")
        cycle.do("receive_idea")
    elif form_key == "council_sheet":
        cycle.through_dossier()
        cycle.open_session()
    before = snapshot(world, cycle.instance_id)
    with pytest.raises(FormInvalid) as caught:
        cycle.do(form_key, data)
    assert field in caught.value.errors
    assert snapshot(world, cycle.instance_id) == before


def test_an_officer_outside_the_area_cannot_act(world):
    cycle = Cycle(world, SEED).start()  # a Gio Linh product
    cycle.do("register_idea")
    cycle.do("receive_idea")
    before = snapshot(world, cycle.instance_id)
    for username in ("cb.qt-cl",          # district officer of Cam Lộ, the other district
                     "cb.qt-gl-gm",       # commune officer inside Gio Linh: wrong role
                     "hd.qt-gl",          # district council of Gio Linh: wrong role
                     "kiemtoan",          # the auditor reads, never acts
                     "cb.lc-sp"):         # an officer of another province
        with pytest.raises(NotAllowed):
            cycle.do("review_idea", actor=actor(world, username))
    assert snapshot(world, cycle.instance_id) == before
    cycle.do("review_idea", actor=actor(world, "cb.qt-gl"))


def test_a_producer_cannot_act_on_another_producers_product(world):
    cycle = Cycle(world, SEED).start()
    other_producer = actor(world, "cty.tramcamlo")
    with pytest.raises(NotAllowed):
        cycle.do("register_idea", actor=other_producer)


def test_a_claimed_task_is_refused_to_others(world):
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    task = cycle.task("receive_idea")
    claimant = actor(world, "cb.qt-gl-gm")
    with world.db.transaction() as session:
        colleague = User(username="cb2.gio-my", full_name="Cán bộ thứ hai xã Gio Mỹ")
        session.add(colleague)
        session.flush()
        from storage.models import RoleAssignment
        session.add(RoleAssignment(user_id=colleague.id, role="commune_officer",
                                   jurisdiction_id=task.jurisdiction_id))
        session.get(InboxTask, task.id).assignee_id = claimant.user_id
    before = snapshot(world, cycle.instance_id)
    with pytest.raises(ClaimedByOther):
        cycle.do("receive_idea", actor=actor(world, "cb2.gio-my"))
    assert snapshot(world, cycle.instance_id) == before
    cycle.do("receive_idea", actor=claimant)


def test_registration_must_be_open(engine):
    from demo.seed import seed_areas_and_people
    from programme.definitions import deploy_bundled
    seed_areas_and_people(engine)
    deploy_bundled(engine)
    with engine.db.transaction() as session:
        product = session.scalar(select(Product).where(Product.name == SEED))
        owner = load_actor(session, product.producer.owner_user_id)
    with pytest.raises(RegistrationClosed):
        engine.start_product(product.id, owner)


def test_a_restarted_process_continues_from_the_database(world, db_url, clock):
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    world.db.dispose()
    # A new process: new connection pool, new engine, empty spec cache.
    fresh = BpmnEngine(Database(db_url), clock=clock)
    resumed = Cycle(fresh, SEED)
    resumed.instance_id = cycle.instance_id
    for form_key in ("receive_idea", "review_idea", "submit_plan", "review_plan"):
        resumed.do(form_key)
    resumed.through_dossier()
    resumed.do("score_product", sheets(60))
    assert resumed.instance().stars == 3
    fresh.db.dispose()


def test_two_people_completing_the_same_task_at_once(world, db_url, clock, monkeypatch):
    """Both load version N and run the task; one commits, the other's write
    conflicts, writes nothing, and on its second try finds the task done."""
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    task = cycle.task("receive_idea")
    officer = actor(world, "cb.qt-gl-gm")
    before_version = cycle.instance().version
    barrier = threading.Barrier(2, timeout=20)
    original_save = execution.save

    first_saves = []

    def save_after_both_ran(call, status=None):
        if len(first_saves) < 2:  # the loser's second try runs alone
            first_saves.append(call)
            barrier.wait()  # both transactions have read the same version
        return original_save(call, status)

    monkeypatch.setattr(execution, "save", save_after_both_ran)
    outcomes = []

    def complete():
        engine = BpmnEngine(Database(db_url), clock=clock)
        try:
            engine.complete_task(task.id, {"form_complete": True, "notes": "x"}, officer)
            outcomes.append("ok")
        except (ConcurrencyConflict, UnknownTask, TaskNotReady) as err:
            outcomes.append(err)
        finally:
            engine.db.dispose()

    threads = [threading.Thread(target=complete) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 2 and outcomes.count("ok") == 1, outcomes
    # The loser lost the version race, tried again on the winner's version
    # (BpmnEngine.complete_task) and found the task done: the page says so (409).
    loser = next(o for o in outcomes if o != "ok")
    assert isinstance(loser, (UnknownTask, TaskNotReady)), loser
    monkeypatch.undo()
    instance = cycle.instance()
    assert instance.version == before_version + 1
    with world.db.transaction() as session:
        completions = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == cycle.instance_id, AuditEvent.kind == "task_completed",
            AuditEvent.element_id == task.element_id))
    assert completions == 1
    assert cycle.ready_forms() == ["review_idea"]


def test_cancel_needs_a_program_manager_and_clears_the_inbox(world):
    cycle = Cycle(world, SEED).start()
    with pytest.raises(NotAllowed):
        world.cancel(cycle.instance_id, actor(world, "cb.qt-gl"), "thử")
    world.cancel(cycle.instance_id, actor(world, "qlct.qt"), "Chủ thể rút đăng ký")
    assert cycle.instance().status == "cancelled"
    assert cycle.ready() == []


def test_claim_unclaim_and_reassign(world):
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    task = cycle.task("review_idea")
    officer, manager = actor(world, "cb.qt-gl"), actor(world, "qlct.qt")
    with world.db.transaction() as session:
        from programme.accounts import create_user
        colleague = create_user(session, "cb2.qt-gl", "Cán bộ thứ hai huyện Gio Linh", None,
                                [("district_officer", task.jurisdiction_id)])
        colleague_id = colleague.id
    colleague = actor(world, "cb2.qt-gl")
    outsider = actor(world, "cb.qt-cl")

    with pytest.raises(NotAllowed):
        world.claim(task.id, outsider)
    world.claim(task.id, officer)
    with pytest.raises(ClaimedByOther):
        world.claim(task.id, colleague)
    with pytest.raises(ClaimedByOther):
        cycle.do("review_idea", actor=colleague)
    with pytest.raises(NotAllowed):
        world.unclaim(task.id, colleague)          # not the assignee, not a supervisor
    with pytest.raises(NotAllowed):
        world.reassign(task.id, officer, colleague)  # officers do not reassign
    with pytest.raises(NotAllowed):
        world.reassign(task.id, manager, outsider)   # the target must hold the role here
    world.reassign(task.id, manager, colleague)
    assert cycle.task("review_idea").assignee_id == colleague_id
    world.unclaim(task.id, colleague)
    assert cycle.task("review_idea").assignee_id is None
    cycle.do("review_idea", actor=officer)
    with world.db.transaction() as session:
        kinds = session.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == cycle.instance_id)
                                .order_by(AuditEvent.seq)).all()
        assert verify_chain(session, cycle.instance_id) == []
    assert [k for k in kinds if k in ("claimed", "reassigned", "unclaimed")] == ["claimed", "reassigned", "unclaimed"]


def test_a_product_takes_part_once_a_year(world):
    from engine.errors import AlreadyInCycle
    cycle = Cycle(world, SEED).start()
    with pytest.raises(AlreadyInCycle):
        Cycle(world, SEED).start()
    world.cancel(cycle.instance_id, actor(world, "qlct.qt"), "đăng ký nhầm")
    assert Cycle(world, SEED).start().instance_id != cycle.instance_id
