"""A failing service task never loses the step that reached it: the step is
kept with the task in ERROR, the worker retries it with backoff, and a
program manager retries or skips it; each attempt is in the replayable
history (SQLite and PostgreSQL)."""
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit import verification
from background.retries import retry_failed_service_tasks
from engine import incidents
from engine.access import load_actor
from engine.errors import NotAllowed
from handlers import registry
from storage.models import AuditEvent, Enrolment, Incident, Notification, User
from testkit.cycle import Cycle

SEED = "Hồ tiêu Gio Linh"
XML = (Path(__file__).resolve().parents[1] / "processes" / "ocop_cycle.bpmn").read_text(encoding="utf-8")


def actor(world, username):
    with world.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def at_idea_review(world) -> Cycle:
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    return cycle


def incident_of(world, instance_id) -> Incident:
    with world.db.transaction() as session:
        return session.scalar(select(Incident).where(Incident.instance_id == instance_id))


def count(world, model, **where) -> int:
    with world.db.transaction() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


@pytest.fixture
def flaky_training(monkeypatch):
    """schedule_training fails its first `fail` calls, then works."""
    handler = registry.get("schedule_training")
    real, state = handler.function, {"fail": 1, "calls": 0}

    def flaky(context, **params):
        state["calls"] += 1
        if state["fail"] > 0:
            state["fail"] -= 1
            raise ConnectionError("lịch tập huấn tạm thời không truy cập được")
        return real(context, **params)
    monkeypatch.setattr(handler, "function", flaky)
    return state


def test_the_review_is_kept_and_the_worker_retries_the_training(world, clock, flaky_training):
    cycle = at_idea_review(world)
    flaky_training["fail"] = 2  # the review's attempt, then the worker's first retry
    cycle.do("review_idea")  # the reviewer's decision is not lost
    assert cycle.ready() == [] and cycle.instance().status == "running"
    incident = incident_of(world, cycle.instance_id)
    assert (incident.element_id, incident.handler, incident.status, incident.attempts) == (
        "service_training_business_plan", "schedule_training", "retrying", 1)
    assert "ConnectionError" in incident.error
    assert count(world, Enrolment) == 0  # the failed attempt wrote nothing

    assert retry_failed_service_tasks(world) == 0  # backoff: not yet
    clock.advance(seconds=incidents.BACKOFF_SECONDS + 1)
    assert retry_failed_service_tasks(world) == 0  # the second failure
    assert incident_of(world, cycle.instance_id).attempts == 2
    clock.advance(seconds=2 * incidents.BACKOFF_SECONDS + 1)
    assert retry_failed_service_tasks(world) == 1
    assert incident_of(world, cycle.instance_id).status == "resolved"
    assert cycle.ready_forms() == ["submit_plan"]
    assert count(world, Enrolment) == 1  # enrolled once, by the attempt that worked
    with world.db.transaction() as session:
        kinds = [k for k in session.scalars(select(AuditEvent.kind).where(
            AuditEvent.instance_id == cycle.instance_id).order_by(AuditEvent.seq)) if k.startswith("service_")]
    assert kinds[-4:] == ["service_failed", "service_retried", "service_failed", "service_retried"] or \
        kinds.count("service_failed") == 2
    report = verification.verify(world, [cycle.instance_id])
    assert report.ok, [str(p) for p in report.problems]


def test_after_the_last_attempt_a_manager_skips_it(world, clock):
    broken = XML.replace("value=\"'business_plan'\"", "value=\"idea_review['training_topic']\"", 1)
    world.deploy(broken.encode(), "ocop_cycle", "tester", "training topic from the review form")
    cycle = at_idea_review(world)
    cycle.do("review_idea")
    for _ in range(incidents.MAX_ATTEMPTS):
        clock.advance(hours=24)
        retry_failed_service_tasks(world)
    incident = incident_of(world, cycle.instance_id)
    assert (incident.status, incident.attempts, incident.next_attempt_at) == ("open", incidents.MAX_ATTEMPTS, None)
    assert "training_topic" in incident.error
    clock.advance(hours=24)
    assert retry_failed_service_tasks(world) == 0  # an open incident waits for a person

    with pytest.raises(NotAllowed):
        world.skip_incident(incident.id, actor(world, "qlct.lc"))  # another province's manager
    world.skip_incident(incident.id, actor(world, "qlct.qt"))
    incident = incident_of(world, cycle.instance_id)
    assert incident.status == "skipped" and incident.closed_by is not None
    assert cycle.ready_forms() == ["submit_plan"]  # the process went on without the training
    assert count(world, Notification, instance_id=cycle.instance_id, kind="idea_accepted") == 1
    assert world.skip_incident(incident.id, actor(world, "qlct.qt")) is None  # already closed
    report = verification.verify(world, [cycle.instance_id])
    assert report.ok, [str(p) for p in report.problems]


def test_a_manager_retries_an_open_incident_once_it_is_fixed(world, clock, flaky_training):
    cycle = at_idea_review(world)
    flaky_training["fail"] = incidents.MAX_ATTEMPTS  # the review and every automatic retry fail
    cycle.do("review_idea")
    for _ in range(incidents.MAX_ATTEMPTS):
        clock.advance(hours=24)
        retry_failed_service_tasks(world)
    incident = incident_of(world, cycle.instance_id)
    assert incident.status == "open"
    clock.advance(minutes=5)
    world.retry_incident(incident.id, actor(world, "qlct.qt"))
    assert incident_of(world, cycle.instance_id).status == "resolved"
    assert cycle.ready_forms() == ["submit_plan"]
    assert verification.verify(world, [cycle.instance_id]).ok


def test_backoff_doubles():
    from datetime import datetime, timezone
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    waits = [incidents.next_attempt(n, now) for n in range(1, incidents.MAX_ATTEMPTS + 1)]
    assert [w[1] - now for w in waits[:-1]] == [timedelta(seconds=incidents.BACKOFF_SECONDS * 2 ** k)
                                                for k in range(incidents.MAX_ATTEMPTS - 1)]
    assert waits[-1] == ("open", None)


def test_the_incidents_page_lists_and_acts_within_the_province(world, clock, client, flaky_training):
    from testkit.web_login import login
    cycle = at_idea_review(world)
    flaky_training["fail"] = 1
    cycle.do("review_idea")
    incident = incident_of(world, cycle.instance_id)

    token = login(client, "qlct.lc")  # Lào Cai: not this product's province
    assert f'data-incident="{incident.id}"' not in client.get("/incidents/").get_data(as_text=True)
    assert client.post(f"/incidents/{incident.id}/retry", data={"csrf_token": token}).status_code == 404
    client.get("/logout")
    assert login(client, "cb.qt-gl") and client.get("/incidents/").status_code == 403
    client.get("/logout")

    token = login(client, "qlct.qt")
    page = client.get("/incidents/").get_data(as_text=True)
    assert f'data-incident="{incident.id}"' in page and "ConnectionError" in page
    assert client.post(f"/incidents/{incident.id}/retry", data={}).status_code == 400  # CSRF
    done = client.post(f"/incidents/{incident.id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200 and "Sự cố đã được xử lý." in done.get_data(as_text=True)
    assert incident_of(world, cycle.instance_id).status == "resolved"
    assert cycle.ready_forms() == ["submit_plan"]
