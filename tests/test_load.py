"""Load: the real product (gunicorn, 2 workers x 4 threads) on PostgreSQL,
hit by 24 client threads at once over loopback HTTP.

Every round, all threads start together (a barrier): eight race to complete
two tasks (four each), ten race to claim two other tasks (five officers
each), six read (the API inbox, an instance being raced, the HTML inbox of
a signed-in officer). Afterwards the answers and the record must agree:
one winner per task, clear 4xx for the losers, never a 5xx or a traceback,
each task completed or claimed once in the history, every instance's
version equal to its number of engine calls, every chain and replay intact.

Timeouts only stop a broken run; nothing here measures speed (bench/ does).
"""
from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from audit import verification
from demo.seed import _demo_hash
from engine.replay import groups
from programme.tokens import issue_token
from storage.models import AuditEvent, InboxTask, Jurisdiction, ProcessInstance, Producer, Product, RoleAssignment, User
from testkit.cycle import Cycle
from testkit.gunicorn_server import GunicornServer
from tests.support.http_client import HttpClient, Reply

OFFICERS = 5  # district officers of Gio Linh: the demo's cb.qt-gl and four colleagues
ROUNDS = 6
COMPLETIONS_PER_ROUND, COMPLETION_ATTEMPTS = 2, 4
CLAIMS_PER_ROUND = 2  # each claimed by every officer at once
READERS = 6
THREADS = COMPLETIONS_PER_ROUND * COMPLETION_ATTEMPTS + CLAIMS_PER_ROUND * OFFICERS + READERS  # 24
SAFETY_TIMEOUT = 180  # seconds for the whole run to finish; never reached when things work

# The losers' answers: the API's conflict (the instance moved on, the task
# is no longer ready, a colleague claimed it, or -- for a loser that arrives
# after the winner committed -- someone completed it just now).
LOSING_COMPLETION = {409: re.compile(r"changed by someone else|is not ready|was completed just now")}
LOSING_CLAIM = {409: re.compile(r"already claimed|changed by someone else")}

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def add_officers(world, count: int) -> list[int]:
    """`count` district officers of Gio Linh (the demo's and new colleagues): their user ids."""
    with world.db.transaction() as session:
        district = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL"))
        for n in range(2, count + 1):
            user = User(username=f"cb{n}.qt-gl", full_name=f"Cán bộ OCOP Gio Linh {n}", password_hash=_demo_hash())
            user.roles.append(RoleAssignment(role="district_officer", jurisdiction_id=district))
            session.add(user)
        session.flush()
        return list(session.scalars(select(RoleAssignment.user_id).where(
            RoleAssignment.role == "district_officer", RoleAssignment.jurisdiction_id == district)
            .order_by(RoleAssignment.user_id)))


def tokens_for(world, user_ids: list[int]) -> dict[int, str]:
    with world.db.transaction() as session:
        return {user_id: issue_token(session, user_id, "load test", world.clock())[1] for user_id in user_ids}


def products_at_review_idea(world, count: int) -> dict[int, str]:
    """`count` new products of the Gio Mỹ cooperative, each brought to the
    district's review of its idea: instance id -> the ready task's id."""
    with world.db.transaction() as session:
        producer = session.scalar(select(Producer).join(User, User.id == Producer.owner_user_id)
                                  .where(User.username == "htx.giomy"))
        names = [f"Sản phẩm thử tải {n:02d}" for n in range(count)]
        session.add_all(Product(producer_id=producer.id, name=name, group_code="S10") for name in names)
    ready = {}
    for name in names:
        cycle = Cycle(world, name).start()
        cycle.do("register_idea")
        cycle.do("receive_idea")
        ready[cycle.instance_id] = cycle.task("review_idea").id
    return ready


@dataclass
class Job:
    kind: str  # complete | claim | read
    task_id: str | None
    user_id: int | None
    client: HttpClient
    method: str
    path: str
    body: dict | None = None
    reply: Reply | None = None
    error: str | None = None

    def run(self) -> None:
        try:
            self.reply = self.client.request(self.method, self.path, self.body)
        except Exception as err:  # noqa: BLE001 - a lost connection is a finding, not a crash of the test
            self.error = f"{type(err).__name__}: {err}"


@dataclass
class Plan:
    rounds: list[list[Job]] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        return [job for jobs in self.rounds for job in jobs]


def make_plan(server_url: str, tasks: dict[int, str], tokens: dict[int, str], html: HttpClient) -> Plan:
    officers = sorted(tokens)
    api = {user_id: HttpClient(server_url, token=token) for user_id, token in tokens.items()}
    instance_ids = sorted(tasks)
    completing = instance_ids[:ROUNDS * COMPLETIONS_PER_ROUND]
    claiming = instance_ids[ROUNDS * COMPLETIONS_PER_ROUND:]
    assert len(claiming) == ROUNDS * CLAIMS_PER_ROUND
    plan = Plan()
    for r in range(ROUNDS):
        jobs = []
        for n, instance_id in enumerate(completing[r * COMPLETIONS_PER_ROUND:(r + 1) * COMPLETIONS_PER_ROUND]):
            for attempt in range(COMPLETION_ATTEMPTS):
                user_id = officers[(n + attempt) % len(officers)]
                jobs.append(Job("complete", tasks[instance_id], user_id, api[user_id], "POST",
                                f"/api/v1/tasks/{tasks[instance_id]}/complete", {"decision": "accept"}))
        for instance_id in claiming[r * CLAIMS_PER_ROUND:(r + 1) * CLAIMS_PER_ROUND]:
            for user_id in officers:  # distinct officers: a holder's repeated claim would succeed again
                jobs.append(Job("claim", tasks[instance_id], user_id, api[user_id], "POST",
                                f"/api/v1/tasks/{tasks[instance_id]}/claim"))
        raced = completing[r * COMPLETIONS_PER_ROUND]
        reader = api[officers[r % len(officers)]]
        for n in range(READERS // 3):
            jobs.append(Job("read", None, None, reader, "GET", "/api/v1/tasks"))
            jobs.append(Job("read", None, None, reader, "GET", f"/api/v1/instances/{raced}"))
            jobs.append(Job("read", None, None, html, "GET", "/inbox/"))
        assert len(jobs) == THREADS
        plan.rounds.append(jobs)
    return plan


def run_plan(plan: Plan) -> list[str]:
    """Thread i runs job i of every round; a round starts when every thread
    is ready for it. Returns what went wrong in the threads themselves."""
    barrier = threading.Barrier(THREADS, timeout=SAFETY_TIMEOUT)
    problems: list[str] = []

    def client(index: int) -> None:
        for jobs in plan.rounds:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                problems.append(f"thread {index}: the barrier broke (another thread stuck or failed)")
                return
            jobs[index].run()

    threads = [threading.Thread(target=client, args=(i,), daemon=True, name=f"load-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SAFETY_TIMEOUT)
        if thread.is_alive():
            barrier.abort()
            problems.append(f"{thread.name} did not finish within {SAFETY_TIMEOUT} s")
    return problems


def describe(job: Job) -> str:
    answer = job.error or f"{job.reply.status} {job.reply.text[:300]}"
    return f"{job.kind} {job.path} by user {job.user_id}: {answer}"


def test_many_clients_at_once_on_gunicorn(world, db_url, tmp_path, audit_signing_key):
    officers = add_officers(world, OFFICERS)
    assert len(officers) == OFFICERS
    tokens = tokens_for(world, officers)
    tasks = products_at_review_idea(world, ROUNDS * (COMPLETIONS_PER_ROUND + CLAIMS_PER_ROUND))

    with GunicornServer(db_url, tmp_path, workers=2, threads=4, audit_key_file=str(audit_signing_key)) as server:
        html = HttpClient(server.url).login("cb.qt-gl")
        plan = make_plan(server.url, tasks, tokens, html)
        problems = run_plan(plan)
        log = server.log()

    assert problems == []
    jobs = plan.jobs
    assert [describe(j) for j in jobs if j.error] == [], "requests that got no answer"
    assert [describe(j) for j in jobs if j.reply.status >= 500] == [], "server errors"
    assert "Traceback" not in log, log[-5000:]

    by_task: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        if job.kind != "read":
            by_task[job.task_id].append(job)
    claim_winner: dict[str, int] = {}
    for task_id, attempts in by_task.items():
        kind = attempts[0].kind
        winners = [j for j in attempts if j.reply.status == 200]
        # Two claims both answered 200 when one read the task row (unclaimed)
        # before the other committed and the instance row after it: the
        # version check then passes on the newer version (engine.claim).
        assert len(winners) == 1, (f"{len(winners)} winners of one {kind} race", [describe(j) for j in attempts])
        losing = LOSING_COMPLETION if kind == "complete" else LOSING_CLAIM
        for job in attempts:
            if job is winners[0]:
                continue
            body = job.reply.json()["error"]
            assert job.reply.status in losing and losing[job.reply.status].search(body["message"]), describe(job)
            assert body["code"] == ("conflict" if job.reply.status == 409 else "not_found"), describe(job)
        if kind == "complete":
            assert [t["form_key"] for t in winners[0].reply.json()["ready_tasks"]] == ["submit_plan"]
        else:
            assert winners[0].reply.json()["task"]["assignee_id"] == winners[0].user_id
            claim_winner[task_id] = winners[0].user_id

    reads = [j for j in jobs if j.kind == "read"]
    assert [describe(j) for j in reads if j.reply.status != 200] == []
    for job in reads:
        if job.path == "/inbox/":
            assert 'data-nav="inbox"' in job.reply.text and 'name="password"' not in job.reply.text
        elif job.path == "/api/v1/tasks":
            assert job.reply.json()["tasks"], "the officer's inbox is not empty"
        else:
            assert job.reply.json()["status"] == "running"

    # The record: each task completed (or claimed) exactly once, versions
    # equal to the engine calls recorded, chains and replays intact.
    completed = {j.task_id for j in jobs if j.kind == "complete"}
    claimed = {j.task_id for j in jobs if j.kind == "claim"}
    with world.db.transaction() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.instance_id.in_(tasks))
                                 .order_by(AuditEvent.instance_id, AuditEvent.seq)).all()
        versions = dict(session.execute(select(ProcessInstance.id, ProcessInstance.version)
                                        .where(ProcessInstance.id.in_(tasks))).all())
        inbox = {row.id: row for row in session.scalars(select(InboxTask).where(InboxTask.id.in_(tasks.values())))}
        per_instance: dict[int, list[AuditEvent]] = defaultdict(list)
        for event in events:
            per_instance[event.instance_id].append(event)
        completions = Counter(e.data["task_id"] for e in events if e.kind == "task_completed")
        claims = Counter(e.data["task_id"] for e in events if e.kind == "claimed")
        assert {task_id: completions[task_id] for task_id in completed} == {task_id: 1 for task_id in completed}
        assert {task_id: claims[task_id] for task_id in claimed} == {task_id: 1 for task_id in claimed}
        assert not completed & set(inbox), "completed tasks left the inbox"
        assert {task_id: inbox[task_id].assignee_id for task_id in claimed} == claim_winner
        assert {i: len(groups(per_instance[i])) for i in tasks} == versions
        # Started, the idea registered and received, then one winning call (review or claim) each.
        assert set(versions.values()) == {4}
    report = verification.verify(world, sorted(tasks))
    assert report.ok, report.problems
    assert report.instances == len(tasks)
