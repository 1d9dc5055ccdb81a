"""Concurrent requests on one task, through the web application's form posts
and JSON API from several threads at once, on both databases: a holder
claiming again changes nothing (one `claimed` event, one new version, however
many claims race), and of two completions one wins and the other answers 409
with the conflict message -- whether it read the task before the winner's
commit or after it (then saying the task was just completed) -- never 404,
and nothing is lost."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from storage.models import AuditEvent, ProcessInstance
from testkit.web_login import login
from tests.support.app import make_app
from tests.support.inbox_world import PEPPER, add_officer, at_review_idea

CLAIMS = 20
CONFLICT = "Người khác vừa thay đổi hồ sơ này; không có gì được lưu."  # read the task before the winner's commit
DONE = "Việc này vừa được hoàn thành"  # read it after
REVIEW = {"decision": "accept", "reasons": "", "criteria_checked": ["local_material", "market"]}


@pytest.fixture
def app(world, db_url, tmp_path):
    """Sign-in's rate limit off: twenty clients of one officer sign in."""
    return make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)


def _events(world, instance_id: int, kind: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.instance_id == instance_id, AuditEvent.kind == kind))


def _version(world, instance_id: int) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(ProcessInstance.version).where(ProcessInstance.id == instance_id))


def _at_once(calls) -> list:
    """Run the calls in threads released together; their answers in order."""
    barrier, answers = threading.Barrier(len(calls)), [None] * len(calls)

    def run(index, call):
        barrier.wait()
        answers[index] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def test_a_holder_claiming_again_records_nothing(world, app):
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    version = _version(world, cycle.instance_id)
    clients = [app.test_client() for _ in range(CLAIMS)]
    tokens = [login(client, "cb.qt-gl") for client in clients]
    answers = _at_once([lambda c=c, t=t: c.post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": t})
                        for c, t in zip(clients, tokens)])
    assert [a.status_code for a in answers] == [302] * CLAIMS, [a.get_data(as_text=True)[:300] for a in answers]
    assert _events(world, cycle.instance_id, "claimed") == 1
    assert _version(world, cycle.instance_id) == version + 1
    # Once more, alone: still nothing new, through the API too.
    assert clients[0].post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": tokens[0]}).status_code == 302
    assert clients[0].post(f"/api/v1/tasks/{task_id}/claim", headers={"X-CSRFToken": tokens[0]}).status_code == 200
    assert _events(world, cycle.instance_id, "claimed") == 1 and _version(world, cycle.instance_id) == version + 1


def test_two_completions_at_once_one_wins_the_other_gets_409(world, app):
    add_officer(world, "cb2.qt-gl", "district_officer", "QT-GL")
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    first, second = app.test_client(), app.test_client()
    tokens = [login(first, "cb.qt-gl"), login(second, "cb2.qt-gl")]
    answers = _at_once([lambda c=c, t=t: c.post(f"/inbox/tasks/{task_id}", data={"csrf_token": t, **REVIEW})
                        for c, t in zip((first, second), tokens)])
    assert sorted(a.status_code for a in answers) == [302, 409], [a.get_data(as_text=True)[:300] for a in answers]
    loser = next(a for a in answers if a.status_code == 409).get_data(as_text=True)
    assert CONFLICT in loser or DONE in loser
    assert _events(world, cycle.instance_id, "task_completed") == 3  # register, receive, and this review once
    assert cycle.ready_forms() == ["submit_plan"]


def test_a_completion_after_the_winner_committed_is_a_conflict_on_the_page_and_the_api(world, app):
    add_officer(world, "cb2.qt-gl", "district_officer", "QT-GL")
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    winner, loser = app.test_client(), app.test_client()
    token = login(winner, "cb.qt-gl")
    loser_token = login(loser, "cb2.qt-gl")
    assert winner.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, **REVIEW}).status_code == 302
    page = loser.post(f"/inbox/tasks/{task_id}", data={"csrf_token": loser_token, **REVIEW})
    assert page.status_code == 409 and DONE in page.get_data(as_text=True)
    api = loser.post(f"/api/v1/tasks/{task_id}/complete", json=REVIEW, headers={"X-CSRFToken": loser_token})
    assert api.status_code == 409 and api.get_json()["error"]["code"] == "conflict"
    # A task id that never was stays a 404, and so does one of another area.
    unknown = "00000000-0000-4000-8000-000000000000"
    assert loser.post(f"/inbox/tasks/{unknown}", data={"csrf_token": loser_token, **REVIEW}).status_code == 404
    assert loser.post(f"/api/v1/tasks/{unknown}/complete", json=REVIEW,
                      headers={"X-CSRFToken": loser_token}).status_code == 404
    stranger = app.test_client()
    stranger_token = login(stranger, "cb.qt-cl")
    assert stranger.post(f"/inbox/tasks/{task_id}", data={"csrf_token": stranger_token, **REVIEW}).status_code == 404
    assert _events(world, cycle.instance_id, "task_completed") == 3
