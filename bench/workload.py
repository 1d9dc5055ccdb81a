"""Shared preparation for the HTTP and memory benchmarks: a database with
many product instances ready for their next task, API tokens and web
sessions for everyone who acts on them, and a small keep-alive HTTP client.

Instances are started in-process with the engine (its clock at 2026-03-02,
when the demo outreach has the registration window open); every
completion the benchmarks measure then goes through gunicorn's real
endpoints. Each instance runs the national cycle to 3 stars (9 user tasks:
the district council recognises it and the cycle ends; 4+ stars would wait
for the provincial round's timer, which gunicorn's real clock never
reaches). `returns_of(n)` sends instance n's idea back that many times
first (3 more tasks per return: register, receive, review again).

    prepared = prepare("sqlite:///...", count=300, stages=uniform_stages)
    case = prepared.cases[0]
    task = case.next_task()
    token = prepared.tokens[case.user_for(task)]

Not a test and not part of the product: measurement scaffolding.
"""
from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from bench.run import prepared_engine  # noqa: E402
from demo.seed import DEMO_PASSWORD  # noqa: E402
from engine import roles  # noqa: E402
from engine.access import Actor, load_actor  # noqa: E402
from engine.bpmn_engine import BpmnEngine  # noqa: E402
from engine.sandbox import add_sample_products  # noqa: E402
from programme.tokens import issue_token  # noqa: E402  # noqa: E402
from storage.models import Jurisdiction, ProcessInstance, RoleAssignment, User  # noqa: E402
from testkit.cycle import VALID, returned, sheets  # noqa: E402

SCORE = 66.0          # council average: 3 stars, recognised by the district, the cycle ends
TASKS_PER_CYCLE = 9   # user tasks of that cycle without returns
TASKS_PER_RETURN = 3  # an idea return: register_idea, receive_idea, review_idea again
# Bench users sign in with the demo password, hashed cheaply: logging in is
# preparation here, not what is measured (the product's own hash is scrypt).
CHEAP_HASH_METHOD = "pbkdf2:sha256:1000"
QUANG_TRI = "QT-"     # the national (district-tier) diagram's province in the demo data


# --- one instance as the benchmark client sees it --------------------------------

@dataclass
class Case:
    instance_id: int
    owner_id: int                 # the producer's user
    areas: dict[str, int]         # level -> jurisdiction id (the instance's chain)
    returns_left: int             # idea returns still to make
    ready: list[dict] = field(default_factory=list)  # ready tasks: id, form_key, lane
    completed: int = 0
    status: str = "running"

    @property
    def length(self) -> int:
        """User tasks left in this instance's cycle, counting from its start."""
        return TASKS_PER_CYCLE + TASKS_PER_RETURN * self.returns_left

    def next_task(self) -> dict | None:
        return self.ready[0] if self.ready else None

    def role_of(self, task: dict) -> roles.Role:
        return roles.role_for_lane(task["lane"])

    def actor_key(self, task: dict) -> tuple:
        """(role, jurisdiction id) of who acts on the task, as the engine's
        inbox row has it; producer tasks are the owner's."""
        role = self.role_of(task)
        if role.key == "producer":
            return ("producer", self.owner_id)
        return (role.key, self.areas[role.level])

    def data_for(self, task: dict) -> dict:
        form_key = task["form_key"]
        if form_key == "review_idea" and self.returns_left > 0:
            return returned(form_key)
        if form_key == "score_product":
            return sheets(SCORE)
        return VALID[form_key]

    def advance(self, task: dict, ready: list[dict], status: str = "running") -> None:
        """After the task was completed: what is ready now."""
        if task["form_key"] == "review_idea" and self.returns_left > 0:
            self.returns_left -= 1
        self.completed += 1
        self.ready = [{"id": t["id"], "form_key": t["form_key"], "lane": t["lane"]} for t in ready]
        self.status = status


def inbox_ready(engine: BpmnEngine, instance_id: int) -> list[dict]:
    """The instance's ready tasks from the inbox table (oldest first)."""
    return [{"id": t.id, "form_key": t.form_key, "lane": t.lane} for t in engine.ready_tasks(instance_id)]


# --- preparation ------------------------------------------------------------------

@dataclass
class Prepared:
    engine: BpmnEngine
    url: str
    cases: list[Case]
    tokens: dict[int, str]             # user id -> API token
    usernames: dict[int, str]          # user id -> username (to sign in)
    officers: dict[tuple, int]         # (role, jurisdiction id) -> user id
    seconds: float
    stage_seconds: float = 0.0

    def user_for(self, case: Case, task: dict) -> int:
        key = case.actor_key(task)
        return key[1] if key[0] == "producer" else self.officers[key]

    def take(self, count: int) -> list[Case]:
        """The next `count` unused cases (each benchmark phase uses its own)."""
        taken, self.cases = self.cases[:count], self.cases[count:]
        if len(taken) < count:
            raise RuntimeError(f"only {len(taken)} prepared instances left, {count} wanted")
        return taken


class Pool:
    """Cases completed round-robin; one that finishes is replaced by a fresh
    case from the prepared reserve (`prepared.take(1)`), so with a staged
    pool the mix of tasks and instance sizes stays the same throughout.
    `first_touch(case)` tells whether this pool has not completed anything
    of the case yet (its workflow cannot be in a server's cache)."""

    def __init__(self, prepared: "Prepared", cases: list[Case], refill: bool = True):
        self.prepared = prepared
        self.cases = list(cases)
        self.refill = refill
        self.position = 0
        self.finished: set[int] = set()
        self.touched: set[int] = set()

    def next_case(self) -> Case | None:
        for _ in range(len(self.cases)):
            slot = self.position % len(self.cases)
            self.position += 1
            case = self.cases[slot]
            if case.next_task() is None:
                self.finished.add(case.instance_id)
                if not (self.refill and self.prepared.cases):
                    continue
                case = self.cases[slot] = self.prepared.take(1)[0]
            return case
        return None

    def first_touch(self, case: Case) -> bool:
        return case.instance_id not in self.touched

    def touch(self, case: Case) -> None:
        self.touched.add(case.instance_id)


def no_returns(_n: int) -> int:
    return 0


def alternate_returns(n: int) -> int:
    """Every other instance has its idea returned once (9 or 12 tasks)."""
    return n % 2


def uniform_stages(n: int, case: Case) -> int:
    """Stage instance n at a point spread evenly over its cycle (0 .. length-1);
    n // 2 so that alternate_returns' two kinds each get every stage."""
    return (n // 2 * 7) % case.length


def staged_first(count: int):
    """A `stages` callback: the first `count` instances spread over their
    cycle (uniform_stages), the rest just started (a reserve of fresh ones)."""
    return lambda n, case: uniform_stages(n, case) if n < count else 0


def prepare(url: str, count: int, *, products_per_owner: int = 10, returns_of: Callable[[int], int] = no_returns,
            stages: Callable[[int, Case], int] | None = None, progress: Callable[[str], None] | None = None
            ) -> Prepared:
    """A fresh database at `url` (the demo areas, people and diagrams as
    bench/run.py's prepared_engine makes them) with `count` products
    started in the 2026 cycle, owned `products_per_owner` to a user, each
    staged `stages(n, case)` tasks into its cycle in-process."""
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    engine = prepared_engine(url)
    cheap = generate_password_hash(DEMO_PASSWORD, method=CHEAP_HASH_METHOD)
    with engine.db.transaction() as session:
        communes = list(session.scalars(select(Jurisdiction.id).where(
            Jurisdiction.level == "commune", Jurisdiction.code.like(QUANG_TRI + "%")).order_by(Jurisdiction.id)))
        # The demo officers sign in with the cheap hash too.
        for user in session.scalars(select(User)):
            user.password_hash = cheap
        products: list[tuple[int, int]] = []  # (product id, owner user id)
        rng = random.Random(7)
        for group in range(-(-count // products_per_owner)):
            owner = User(username=f"bench.owner{group + 1}", full_name=f"Chủ thể benchmark {group + 1}",
                         password_hash=cheap)
            session.add(owner)
            session.flush()
            size = min(products_per_owner, count - group * products_per_owner)
            # Each owner's producers in one commune, the owners spread over the communes.
            ids = add_sample_products(session, owner.id, [communes[group % len(communes)]], size, rng,
                                      f"B{group + 1}")
            products += [(pid, owner.id) for pid in ids]
        officers = {(row.role, row.jurisdiction_id): row.user_id for row in session.execute(
            select(RoleAssignment.role, RoleAssignment.jurisdiction_id, RoleAssignment.user_id)
            .order_by(RoleAssignment.user_id.desc()))}
        acting = sorted({uid for _pid, uid in products} | set(officers.values()))
        now = engine.clock()
        tokens = {uid: issue_token(session, uid, "benchmark", now)[1] for uid in acting}
        usernames = dict(session.execute(select(User.id, User.username).where(User.id.in_(acting))).all())
    say(f"database ready, starting {count} instances")

    actors: dict[int, Actor] = {}

    def actor(user_id: int) -> Actor:
        if user_id not in actors:
            with engine.db.transaction() as session:
                actors[user_id] = load_actor(session, user_id)
        return actors[user_id]

    cases = []
    for n, (product_id, owner_id) in enumerate(products):
        result = engine.start_product(product_id, actor(owner_id))
        with engine.db.transaction() as session:
            areas = dict(session.get(ProcessInstance, result.instance_id).areas)
        case = Case(result.instance_id, owner_id, areas, returns_of(n))
        case.advance({"form_key": "start"}, result.ready_tasks)
        case.completed = 0
        cases.append(case)
        if (n + 1) % 500 == 0:
            say(f"  {n + 1} started")
    prepared = Prepared(engine, url, cases, tokens, usernames, officers, 0.0)
    if stages is not None:
        stage_started = time.perf_counter()
        for n, case in enumerate(cases):
            for _ in range(stages(n, case)):
                task = case.next_task()
                result = engine.complete_task(task["id"], case.data_for(task), actor(prepared.user_for(case, task)))
                case.advance(task, result.ready_tasks, result.status)
            case.completed = 0
        prepared.stage_seconds = time.perf_counter() - stage_started
    prepared.seconds = time.perf_counter() - started
    return prepared


# --- HTTP ---------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    set_cookies: list[str] = field(default_factory=list)

    def json(self):
        return json.loads(self.body)


class Http:
    """One persistent (keep-alive) connection, as a browser or an
    integration would hold it. A connection idle longer than `idle_limit`
    (gunicorn drops keep-alive connections after 2 s) is reopened before the
    next request, outside the timed part; so is one the server closed."""

    def __init__(self, base_url: str, timeout: float = 60.0, idle_limit: float = 1.0):
        parts = urlsplit(base_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the benchmarks talk to loopback servers only")
        self.conn = HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.idle_limit = idle_limit
        self.last_used = 0.0
        self.connects = 0

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
        if self.conn.sock is not None and time.monotonic() - self.last_used > self.idle_limit:
            self.conn.close()
        if self.conn.sock is None:
            self.conn.connect()
            self.connects += 1
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        self.last_used = time.monotonic()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data, seconds,
                      response.headers.get_all("Set-Cookie") or [])
        if response.will_close:
            self.conn.close()
        return reply

    def close(self) -> None:
        self.conn.close()


def complete_api(http: Http, token: str, task_id: str, data: dict) -> Reply:
    return http.request("POST", f"/api/v1/tasks/{task_id}/complete", json.dumps(data).encode("utf-8"),
                        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class WebSession:
    """A signed-in browser: its session cookie and the CSRF token its forms carry."""
    cookie: str
    csrf: str


def _session_cookie(reply: Reply, current: str) -> str:
    for header in reply.set_cookies:
        pair = header.split(";", 1)[0]
        if pair.startswith("session="):
            return pair
    return current


def sign_in(http: Http, username: str, password: str = DEMO_PASSWORD) -> WebSession:
    """Through the real login form, as testkit/web_login.py does."""
    page = http.request("GET", "/login")
    cookie = _session_cookie(page, "")
    token = _CSRF.search(page.body.decode()).group(1)
    body = urlencode({"username": username, "password": password, "csrf_token": token}).encode()
    reply = http.request("POST", "/login", body, {"Cookie": cookie,
                                                  "Content-Type": "application/x-www-form-urlencoded"})
    if reply.status != 302:
        raise RuntimeError(f"sign-in as {username} failed: {reply.status}")
    cookie = _session_cookie(reply, cookie)
    page = http.request("GET", "/login", headers={"Cookie": cookie})
    cookie = _session_cookie(page, cookie)
    return WebSession(cookie, _CSRF.search(page.body.decode()).group(1))


def form_pairs(form_key: str, data: dict) -> list[tuple[str, str]]:
    """The task page's inputs for this form data (what a browser posts):
    checkbox lists repeat their name, lines are joined, score sheets are
    rows sheets-<i>-<part>, booleans are 'true'/'false'."""
    from web.task_forms import form_fields
    pairs: list[tuple[str, str]] = []
    for spec in form_fields(form_key):
        value = data.get(spec.name)
        if value is None:
            continue
        if spec.kind == "score_sheet":
            for i, sheet in enumerate(value):
                pairs += [(f"sheets-{i}-{key}", str(sheet[key])) for key in ("member", "part_a", "part_b", "part_c")]
        elif spec.kind == "checkboxes":
            pairs += [(spec.name, str(v)) for v in value]
        elif spec.kind == "lines":
            pairs.append((spec.name, "\n".join(map(str, value))))
        elif isinstance(value, bool):
            if value or spec.kind == "yesno":
                pairs.append((spec.name, "true" if value else "false"))
        else:
            pairs.append((spec.name, str(value)))
    return pairs


def complete_form(http: Http, web: WebSession, task_id: str, form_key: str, data: dict) -> Reply:
    """The task page's form post. The session cookie of the sign-in is sent
    every time (the post answers a redirect with a flash message in a new
    cookie; a browser would show it on the next page, this client does not
    follow, so it keeps the cookie it had)."""
    body = urlencode(form_pairs(form_key, data) + [("csrf_token", web.csrf)]).encode("utf-8")
    return http.request("POST", f"/inbox/tasks/{task_id}", body,
                        {"Cookie": web.cookie, "Content-Type": "application/x-www-form-urlencoded"})


# --- figures ------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds (user + system) that some processes and their
    descendants used between start() and stop(): a server's cost per
    request that does not depend on what else runs on the machine (wall
    times on a shared machine do). Processes that end in between are not
    counted (gunicorn workers and database backends live through a run)."""

    def __init__(self, *root_pids: int):
        import psutil
        self.roots = [psutil.Process(pid) for pid in root_pids]
        self.before: dict[int, float] = {}

    def _snapshot(self) -> dict[int, float]:
        import psutil
        used = {}
        for root in self.roots:
            for process in [root, *root.children(recursive=True)]:
                try:
                    times = process.cpu_times()
                    used[process.pid] = times.user + times.system
                except psutil.Error:
                    pass
        return used

    def start(self) -> "CpuMeter":
        self.before = self._snapshot()
        return self

    def stop(self) -> float:
        after = self._snapshot()
        return sum(max(0.0, used - self.before.get(pid, 0.0)) for pid, used in after.items())


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def postmaster_pid(data_dir: str) -> int:
    """The PostgreSQL server's main process (first line of postmaster.pid)."""
    with open(Path(data_dir) / "postmaster.pid") as pid_file:
        return int(pid_file.readline())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(prefix: str, seconds: list[float]) -> dict:
    """{prefix_median, prefix_p90, prefix_p99, prefix_mean} in milliseconds, 3 decimals."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {}
    return {f"{prefix}_median": round(statistics.median(ms), 3), f"{prefix}_p90": round(percentile(ms, 90), 3),
            f"{prefix}_p99": round(percentile(ms, 99), 3), f"{prefix}_mean": round(statistics.fmean(ms), 3)}


def server_times(log_text: str) -> dict[str, list[float]]:
    """Request times gunicorn logged (access log format ACCESS_LOG_FORMAT),
    seconds per request path."""
    times: dict[str, list[float]] = {}
    for line in log_text.splitlines():
        if not line.startswith("ACCESS "):
            continue
        parts = line.split()
        if len(parts) == 5 and parts[4].isdigit():
            times.setdefault(parts[2], []).append(int(parts[4]) / 1e6)
    return times


# gunicorn's access log on its stdout (the server's log file): method, path,
# status and the request's time in microseconds, as the worker measured it.
ACCESS_LOG_FORMAT = "ACCESS %(m)s %(U)s %(s)s %(D)s"
ACCESS_LOG_ENV = {"GUNICORN_CMD_ARGS": f"--access-logfile - --access-logformat '{ACCESS_LOG_FORMAT}'"}


def machine() -> dict:
    load = os.getloadavg()
    return {"machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
            "cpus": os.cpu_count(), "load_average_1m_at_start": round(load[0], 2)}
