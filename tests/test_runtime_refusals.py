"""Diagrams that pass the checks and then break at run time: the call is
rolled back or the trouble becomes an incident, never a hang or a 500.

- a loop that never exits stops at the step budget (StepBudgetExhausted,
  naming where it looped), whatever its shape;
- a timer whose value is not ISO 8601 at run time is an incident on the
  timer; the task goes on without that deadline;
- any other refusal of the engine (a task in a lane that is no role) is a
  ProcessRefused with a Vietnamese message, on the portal too."""
import pytest
from sqlalchemy import select

from audit import verification
from background.retries import retry_failed_service_tasks
from engine import diagram, incidents
from engine.access import load_actor
from engine.errors import ProcessRefused, StepBudgetExhausted
from storage.models import Incident, ProcessInstance, Producer, TimerDue, User
from testkit.cycle import RETURN, Cycle
from testkit.web_login import login
from tests.support.runtime_diagrams import BAD_TIMER, GATEWAY_LOOP, NO_LANE, SCRIPT_LOOP, TIMER_LOOP
from tests.test_api import _as, _error

SEED = "Hồ tiêu Gio Linh"

TO_CHECK = ["register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan", "support_record",
            "submit_dossier"]


def deploy(world, xml: str, message: str):
    """Through the kernel (BpmnEngine.deploy: checked, not dry-run), as a
    diagram stored before the dry run at deploy would be."""
    return world.deploy(xml.encode(), "ocop_cycle", "tester", message)


def versions(world, instance_id):
    with world.db.transaction() as session:
        return session.get(ProcessInstance, instance_id).version


@pytest.mark.parametrize("xml", [SCRIPT_LOOP, GATEWAY_LOOP], ids=["script-loop", "gateway-loop"])
def test_a_loop_that_never_exits_stops_at_the_budget_and_changes_nothing(world, xml):
    assert diagram.check(xml.encode()).ok  # the checks cannot see it
    deploy(world, xml, "a loop that never exits")
    world.step_budget = 200
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    before = versions(world, cycle.instance_id)
    with pytest.raises(StepBudgetExhausted) as raised:
        cycle.do("review_idea", RETURN)
    assert raised.value.element in ("script_idea_return", "gw_idea_limit", "notify_idea_returned", "gw_spin")
    assert "lặp mãi" in str(raised.value) and raised.value.element in str(raised.value)
    assert versions(world, cycle.instance_id) == before  # rolled back
    assert cycle.ready_forms() == ["review_idea"]


def test_a_bad_timer_value_is_an_incident_on_the_timer_and_the_task_goes_on(world, clock):
    deploy(world, BAD_TIMER, "the dossier deadline from a variable")
    cycle = Cycle(world, SEED).start()
    for form in TO_CHECK:
        cycle.do(form)
    assert cycle.ready_forms() == ["check_dossier"]  # the submission was kept
    with world.db.transaction() as session:
        incident = session.scalar(select(Incident).where(Incident.instance_id == cycle.instance_id))
        timers = session.scalars(select(TimerDue.element_id).where(TimerDue.instance_id == cycle.instance_id)).all()
    assert incident.element_id == "timer_check_dossier_late"
    assert "P3X" in incident.error and "giá trị hẹn giờ" in incident.error
    assert "timer_check_dossier_late" not in timers  # set aside: it never fires by itself
    # The worker's retries meet the same value, then a manager skips it.
    for _ in range(incidents.MAX_ATTEMPTS):
        clock.advance(hours=24)
        retry_failed_service_tasks(world)
    with world.db.transaction() as session:
        incident = session.get(Incident, incident.id)
        manager = load_actor(session, session.scalar(select(User.id).where(User.username == "qlct.qt")))
    assert (incident.status, incident.attempts) == ("open", incidents.MAX_ATTEMPTS)
    world.skip_incident(incident.id, manager)
    cycle.do("check_dossier")  # the product is not stuck
    assert "check_dossier" not in cycle.ready_forms()
    # The set-aside timer, its failures and the skip replay as recorded.
    report = verification.verify(world, [cycle.instance_id])
    assert report.ok, [str(p) for p in report.problems]


def test_a_boundary_timer_of_zero_looping_back_is_refused_and_set_aside(world, clock):
    """A timer of 'PT0S' that leads back to its own task would make the
    task again on every pass of the worker: the check refuses the literal,
    and at run time (a diagram stored without the check) the timer is set
    aside with an incident, so it never fires and the producer goes on."""
    assert any("PT0S" in problem.message for problem in diagram.check(TIMER_LOOP.encode()).problems)
    store_unchecked(world, TIMER_LOOP, "a timer that fires at once and loops back")
    cycle = Cycle(world, SEED).start()
    with world.db.transaction() as session:
        incident = session.scalar(select(Incident).where(Incident.instance_id == cycle.instance_id))
    assert incident.element_id == "timer_register_again"
    for _ in range(3):
        clock.advance(minutes=1)
        world.fire_due_timers(cycle.instance_id)
        assert cycle.ready_forms() == ["register_idea"]
    cycle.do("register_idea")
    assert cycle.ready_forms() == ["receive_idea"]


def store_unchecked(world, xml: str, message: str) -> None:
    """Store a diagram as the active national version without the lint --
    as one stored before a lint existed, or from a tool that wrote the
    database: what the run time must survive anyway."""
    checked = diagram.check(xml.encode())
    assert checked.specs, checked.problems  # it parses; only the lint would refuse it
    with world.db.transaction() as session:
        world.store_definition(session, xml.encode(), checked, "ocop_cycle", "tester", message, None, True)


def test_a_task_in_no_lane_is_refused_with_its_element_and_nothing_is_written(world):
    store_unchecked(world, NO_LANE, "a task outside the lanes")
    cycle = Cycle(world, SEED)
    with pytest.raises(ProcessRefused) as raised:
        cycle.start()
    assert raised.value.element == "task_register_idea"
    assert "không phải một vai trò" in str(raised.value)
    with world.db.transaction() as session:
        assert session.scalar(select(ProcessInstance.id).where(ProcessInstance.product_id == cycle.product_id)) is None


def test_the_portal_shows_the_refusal_instead_of_a_500(world, client):
    store_unchecked(world, NO_LANE, "a task outside the lanes")
    token = login(client, "htx.giomy")
    with world.db.transaction() as session:
        producer_id = session.scalar(select(Producer.id).where(Producer.name == "HTX Nông nghiệp Gio Mỹ"))
    response = client.post("/portal/products/new", data={
        "csrf_token": token, "producer_id": producer_id, "name": "Nước mắm Gio Mỹ",
        "group_code": "S08", "registration_form": "01"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Quy trình không chạy tiếp được" in page and "task_register_idea" in page


def at_review_of_a_looping_return(world) -> Cycle:
    """A product whose idea review, if it returns the idea, runs into a
    script loop that never exits (the budget lowered to keep it short)."""
    deploy(world, SCRIPT_LOOP, "a loop that never exits")
    world.step_budget = 200
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    return cycle


def test_the_task_page_answers_a_loop_with_its_message(world, client):
    cycle = at_review_of_a_looping_return(world)
    token = login(client, "cb.qt-gl")
    response = client.post(f"/inbox/tasks/{cycle.task('review_idea').id}",
                           data={"csrf_token": token, **{k: v for k, v in RETURN.items()}})
    assert response.status_code == 409
    assert "lặp mãi" in response.get_data(as_text=True)
    assert cycle.ready_forms() == ["review_idea"]


def test_the_task_page_keeps_a_submission_that_meets_a_bad_timer(world, client):
    deploy(world, BAD_TIMER, "the dossier deadline from a variable")
    cycle = Cycle(world, SEED).start()
    for form in TO_CHECK[:-1]:
        cycle.do(form)
    with world.db.transaction() as session:
        username = session.get(User, cycle.owner.user_id).username
    token = login(client, username)
    response = client.post(f"/inbox/tasks/{cycle.task('submit_dossier').id}", data={
        "csrf_token": token, "evidence": ["business_registration", "food_safety_licence", "lab_test"]})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert cycle.ready_forms() == ["check_dossier"]


def test_the_api_answers_a_refusal_as_a_conflict_with_its_message(world, app):
    cycle = at_review_of_a_looping_return(world)
    officer = _as(app, "cb.qt-gl")
    body = _error(officer.post(f"/tasks/{cycle.task('review_idea').id}/complete", json=RETURN), 409, "conflict")
    assert "lặp mãi" in body["message"] and "script_idea_return" in body["message"]
