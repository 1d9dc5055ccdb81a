"""Faults: what a user sees, and what the record keeps, when a web worker
dies or the database goes away -- the real product under gunicorn on a real
PostgreSQL, plus the 503 answers checked in-process.

The middle of a completion is reached deterministically: another connection
holds `LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE`, so the step's
transaction stops at its history INSERT, after it has updated the instance
row (engine.write_instance: the versioned UPDATE first, then the events).
pg_stat_activity shows the waiting backend and, by its application_name
(storage/db.py), the worker process that opened it. Every wait has a
timeout; locks are released and servers stopped in `finally`.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from audit import verification
from programme.tokens import issue_token
from storage.models import AuditEvent, InboxTask, ProcessInstance, User
from testkit import pgserver
from testkit.cycle import Cycle
from testkit.gunicorn_server import GunicornServer
from tests.support.http_client import HttpClient, Reply
from tests.support.services import require

WAIT = 30  # seconds any single wait may take before the test gives up
PRODUCT = "Gạo hữu cơ Gio Mỹ"
OFFICER = "cb.qt-gl"  # the district officer who reviews the idea
ACCEPT = {"decision": "accept"}
PAGE_VI = "Hệ thống tạm thời gián đoạn"
PAGE_EN = "Temporarily unavailable"

postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def wait_until(condition, what: str, timeout: float = WAIT):
    """Poll until `condition()` is truthy (and return it); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


# --- the 503 answers, in-process ------------------------------------------------

@pytest.fixture
def unreachable_app(tmp_path):
    """The application on a PostgreSQL URL whose socket directory holds no
    server: every connection attempt fails at once."""
    from web.app import create_app
    (tmp_path / "nothing-here").mkdir()
    url = f"postgresql+psycopg://ocop@/ocop?host={tmp_path / 'nothing-here'}&port=5432"
    app = create_app(url, testing=True, overrides={"UPLOAD_DIR": str(tmp_path / "uploads")})
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 answers like in production, instead of raising here

    @app.get("/test-only/integrity-error")
    def integrity_error():  # a database error that is not an outage
        raise IntegrityError("INSERT INTO user_account ...", {}, Exception("duplicate key"))

    return app


def signed_in(app, user_id: int = 1):
    """A test client whose session names a user (at session epoch 0), as
    after a login: the next request runs Flask-Login's user loader, which
    reads the database."""
    client = app.test_client()
    with app.test_request_context(environ_base=client.environ_base):  # the client's address and agent
        identifier = app.login_manager._session_identifier_generator()
    with client.session_transaction() as session:
        session.update({"_user_id": f"{user_id}.0", "_fresh": True, "_id": identifier})
    return client


def assert_unavailable_page(reply_status: int, headers, text: str) -> None:
    assert reply_status == 503, text[:500]
    assert int(headers["Retry-After"]) > 0
    assert headers["Content-Type"].startswith("text/html")
    assert PAGE_VI in text and PAGE_EN in text
    body = text[text.index("<main"):]
    assert body.index(PAGE_VI) < body.index(PAGE_EN), "Vietnamese first"
    assert 'lang="vi"' in text and 'lang="en"' in text
    assert "Traceback" not in text and "OperationalError" not in text and "psycopg" not in text


def assert_unavailable_json(reply_status: int, headers, body: dict) -> None:
    assert reply_status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert body["error"]["code"] == "unavailable"
    assert "try again" in body["error"]["message"]


def test_pages_answer_503_with_a_bilingual_page_when_the_database_is_unreachable(unreachable_app, caplog):
    anonymous = unreachable_app.test_client()
    for path in ("/overview", "/catalogue"):
        reply = anonymous.get(path)
        assert_unavailable_page(reply.status_code, reply.headers, reply.get_data(as_text=True))
    # A signed-in user: the failure is in the user loader, before any view.
    reply = signed_in(unreachable_app).get("/inbox/")
    assert_unavailable_page(reply.status_code, reply.headers, reply.get_data(as_text=True))
    assert 'href="/inbox/"' in reply.get_data(as_text=True), "a link to try the same page again"
    assert unreachable_app.test_client().get("/healthz").status_code == 503
    # One line for the operator, no traceback.
    warnings = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert warnings and all(r.exc_info is None for r in warnings)


def test_the_api_answers_503_json_when_the_database_is_unreachable(unreachable_app):
    with_token = unreachable_app.test_client()
    reply = with_token.get("/api/v1/tasks", headers={"Authorization": "Bearer ocop_whatever"})
    assert_unavailable_json(reply.status_code, reply.headers, reply.get_json())
    reply = with_token.post("/api/v1/tasks/some-task/complete", json=ACCEPT,
                            headers={"Authorization": "Bearer ocop_whatever"})
    assert_unavailable_json(reply.status_code, reply.headers, reply.get_json())
    reply = signed_in(unreachable_app).get("/api/v1/tasks")  # the session's user loader fails
    assert_unavailable_json(reply.status_code, reply.headers, reply.get_json())


def test_other_database_errors_stay_500(unreachable_app):
    reply = unreachable_app.test_client().get("/test-only/integrity-error")
    assert reply.status_code == 500
    assert PAGE_VI not in reply.get_data(as_text=True)


# --- the product under gunicorn -------------------------------------------------

def prepare(world) -> tuple[Cycle, str, str]:
    """A product waiting for the district's review of its idea, and an API
    token of the officer who does it: (cycle, task id, token)."""
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    task_id = cycle.task("review_idea").id
    with world.db.transaction() as session:
        user_id = session.scalar(select(User.id).where(User.username == OFFICER))
        _row, token = issue_token(session, user_id, "fault test", world.clock())
    return cycle, task_id, token


def snapshot(world, instance_id: int) -> dict:
    """Everything a step changes: the instance row, its inbox rows, its history."""
    with world.db.transaction() as session:
        instance = session.get(ProcessInstance, instance_id)
        return {
            "row": {c: getattr(instance, c) for c in ("version", "status", "current_step", "state",
                                                       "audit_seq", "audit_head", "updated_at")},
            "inbox": sorted((t.id, t.form_key, t.assignee_id) for t in session.scalars(
                select(InboxTask).where(InboxTask.instance_id == instance_id))),
            "events": session.scalar(select(func.count()).select_from(AuditEvent)
                                     .where(AuditEvent.instance_id == instance_id)),
        }


def completions_of(world, task_id: str) -> int:
    with world.db.transaction() as session:
        return sum(1 for data in session.scalars(select(AuditEvent.data).where(AuditEvent.kind == "task_completed"))
                   if data.get("task_id") == task_id)


def assert_verifies(world, instance_id: int) -> None:
    report = verification.verify_instance(world, instance_id)
    assert report.ok and report.instances == 1, report.problems


@dataclass
class Blocked:
    """A completion stopped inside its transaction."""
    backend_pid: int
    worker_pid: int
    thread: threading.Thread
    outcome: dict  # "reply" (a Reply) or "error" (what the client raised), once the thread ends


@contextmanager
def completion_blocked_mid_transaction(pg, db_url: str, client: HttpClient, task_id: str, instance_id: int):
    """POST the completion from a thread while another connection holds the
    history table locked; yield once the request's backend waits for that
    lock with the instance row already updated. The lock is released on exit."""
    dbname = make_url(db_url).database
    lock = pg.connect(dbname)  # a transaction: the lock is held until rollback
    observer = pg.connect(dbname, autocommit=True)
    outcome: dict = {}

    def complete():
        try:
            outcome["reply"] = client.post(f"/api/v1/tasks/{task_id}/complete", ACCEPT)
        except Exception as err:  # noqa: BLE001 - the connection dropping is what some tests expect
            outcome["error"] = err

    thread = threading.Thread(target=complete, daemon=True, name="blocked-completion")
    try:
        lock.execute("SET lock_timeout = '30s'")  # a safety stop, should anything else hold the table
        lock.execute("LOCK TABLE audit_event IN ACCESS EXCLUSIVE MODE")
        thread.start()

        def waiting_backend():
            return observer.execute(
                "SELECT pid, application_name FROM pg_stat_activity WHERE datname = %s AND pid <> %s"
                " AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO audit_event%%'",
                (dbname, lock.info.backend_pid)).fetchone()

        backend_pid, application = wait_until(waiting_backend, "the completion to wait for the history lock")
        # The request's open transaction has already updated the instance row
        # (it holds the row lock) while the committed row is still the old one.
        with pytest.raises(psycopg.errors.LockNotAvailable):
            observer.execute("SELECT 1 FROM process_instance WHERE id = %s FOR UPDATE NOWAIT", (instance_id,))
        assert application.startswith("ocop-flow pid "), application
        yield Blocked(backend_pid, int(application.rsplit(" ", 1)[1]), thread, outcome)
    finally:
        lock.rollback()
        lock.close()
        thread.join(WAIT * 2)
        observer.close()
    assert not thread.is_alive(), "the completion request did not end"


def backend_gone(pg, db_url: str, backend_pid: int) -> None:
    """Wait until the backend has ended (and so rolled its transaction back)."""
    with pg.connect(make_url(db_url).database, autocommit=True) as observer:
        wait_until(lambda: observer.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                            (backend_pid,)).fetchone()[0] == 0,
                   f"backend {backend_pid} to end")


def complete_again(client: HttpClient, task_id: str) -> Reply:
    reply = client.post(f"/api/v1/tasks/{task_id}/complete", ACCEPT)
    assert reply.status == 200, reply.text
    assert [t["form_key"] for t in reply.json()["ready_tasks"]] == ["submit_plan"]
    return reply


def assert_one_step_later(world, instance_id: int, task_id: str, before: dict) -> None:
    after = snapshot(world, instance_id)
    assert after["row"]["version"] == before["row"]["version"] + 1
    assert [form for _id, form, _who in after["inbox"]] == ["submit_plan"]
    assert completions_of(world, task_id) == 1
    assert_verifies(world, instance_id)


@postgresql
def test_a_worker_killed_in_the_middle_of_a_completion_changes_nothing(world, db_url, pg_server, tmp_path,
                                                                       audit_signing_key):
    cycle, task_id, token = prepare(world)
    before = snapshot(world, cycle.instance_id)
    with GunicornServer(db_url, tmp_path, workers=2, threads=4, audit_key_file=str(audit_signing_key)) as server:
        client = HttpClient(server.url, token=token)
        with completion_blocked_mid_transaction(pg_server, db_url, client, task_id, cycle.instance_id) as blocked:
            assert blocked.worker_pid in server.worker_pids()
            os.kill(blocked.worker_pid, signal.SIGKILL)
            blocked.thread.join(WAIT)
            # The client saw its connection drop: no answer, certainly no success.
            assert "reply" not in blocked.outcome and isinstance(blocked.outcome.get("error"), OSError), \
                blocked.outcome
        # The lock is released: the orphaned backend runs on, finds its client
        # gone and ends without committing.
        backend_gone(pg_server, db_url, blocked.backend_pid)
        assert snapshot(world, cycle.instance_id) == before
        assert completions_of(world, task_id) == 0
        assert_verifies(world, cycle.instance_id)

        # The arbiter replaces the worker; the task can be completed (by the
        # survivor or the newcomer, whichever takes the request).
        wait_until(lambda: len(server.worker_pids()) == 2 and blocked.worker_pid not in server.worker_pids(),
                   "gunicorn to start a new worker")
        complete_again(client, task_id)
        log = server.log()
    assert_one_step_later(world, cycle.instance_id, task_id, before)
    assert "Traceback" not in log, log[-5000:]


@postgresql
def test_a_database_connection_lost_in_the_middle_of_a_completion_answers_503(world, db_url, pg_server, tmp_path,
                                                                              audit_signing_key):
    cycle, task_id, token = prepare(world)
    before = snapshot(world, cycle.instance_id)
    with GunicornServer(db_url, tmp_path, workers=2, threads=4, audit_key_file=str(audit_signing_key)) as server:
        client = HttpClient(server.url, token=token)
        with completion_blocked_mid_transaction(pg_server, db_url, client, task_id, cycle.instance_id) as blocked:
            with pg_server.connect(make_url(db_url).database, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (blocked.backend_pid,)).fetchone()[0]
            blocked.thread.join(WAIT)
            reply = blocked.outcome.get("reply")
            assert reply is not None, blocked.outcome
            assert_unavailable_json(reply.status, reply.headers, reply.json())
        backend_gone(pg_server, db_url, blocked.backend_pid)
        assert snapshot(world, cycle.instance_id) == before
        assert_verifies(world, cycle.instance_id)
        # The same worker processes, with a fresh connection from the pool.
        complete_again(client, task_id)
        log = server.log()
    assert_one_step_later(world, cycle.instance_id, task_id, before)
    assert "database unavailable (POST /api/v1/tasks/" in log
    assert "Traceback" not in log, log[-5000:]


class TestDatabaseDown:
    """The whole server stops and comes back: a private cluster, so that no
    other test's database goes away with it."""

    @pytest.fixture
    def own_pg(self):
        require("PostgreSQL", pgserver.available())
        with pgserver.PostgresServer() as server:
            yield server

    @pytest.fixture
    def db_url(self, own_pg):
        return own_pg.create_database("ocop_outage")

    def test_the_same_processes_answer_503_while_it_is_down_and_recover_when_it_is_back(
            self, world, db_url, own_pg, tmp_path, audit_signing_key):
        cycle, task_id, token = prepare(world)
        before = snapshot(world, cycle.instance_id)
        with GunicornServer(db_url, tmp_path, workers=2, threads=4, audit_key_file=str(audit_signing_key)) as server:
            processes = (server.process.pid, sorted(server.worker_pids()))
            api = HttpClient(server.url, token=token)
            officer = HttpClient(server.url).login(OFFICER)
            anonymous = HttpClient(server.url)
            assert api.get("/api/v1/tasks").status == 200 and officer.get("/inbox/").status == 200

            own_pg.halt()
            try:
                for _attempt in range(4):  # several requests: both workers, whichever answers
                    page = anonymous.get("/overview")
                    assert_unavailable_page(page.status, page.headers, page.text)
                    inbox = officer.get("/inbox/")
                    assert_unavailable_page(inbox.status, inbox.headers, inbox.text)
                    tasks = api.get("/api/v1/tasks")
                    assert_unavailable_json(tasks.status, tasks.headers, tasks.json())
                    step = api.post(f"/api/v1/tasks/{task_id}/complete", ACCEPT)
                    assert_unavailable_json(step.status, step.headers, step.json())
                    health = anonymous.get("/healthz")
                    assert health.status == 503 and health.json()["status"] == "unavailable"
            finally:
                own_pg.resume()

            # Back, without restarting anything.
            assert anonymous.get("/healthz").status == 200
            assert anonymous.get("/overview").status == 200
            inbox = officer.get("/inbox/")
            assert inbox.status == 200 and 'data-nav="inbox"' in inbox.text
            assert api.get("/api/v1/tasks").status == 200
            assert snapshot(world, cycle.instance_id) == before

            # A restart between two requests: the pooled connections are
            # stale, and the next requests are still served (each pooled
            # connection is tested before use).
            own_pg.halt()
            own_pg.resume()
            for _attempt in range(4):
                assert api.get("/api/v1/tasks").status == 200
                assert officer.get("/inbox/").status == 200
            complete_again(api, task_id)
            assert (server.process.pid, sorted(server.worker_pids())) == processes
            log = server.log()
        assert_one_step_later(world, cycle.instance_id, task_id, before)
        assert "database unavailable (GET /inbox/)" in log
        assert "Traceback" not in log, log[-5000:]
