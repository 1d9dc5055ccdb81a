"""Part 2 of the HTTP benchmark (bench/http_bench.py runs it): where one
task completion's time goes. The same completions as the latency part, in
the cycle's task mix, in-process through Flask's test client on SQLite:
unprofiled medians first, then under cProfile, with the cumulative time
per request of the functions in BREAKDOWN (the engine's steps, the web
layer's checks, SQLAlchemy and the database's own calls) and the top
functions, written to bench/http_profile.txt.
"""
from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from pathlib import Path

from bench.workload import Case, Pool, Prepared, form_pairs, inbox_ready, summary_ms

ROOT = Path(__file__).resolve().parents[1]
PROFILE_PATH = ROOT / "bench" / "http_profile.txt"
PROFILE_POOL = 64

# (label, file suffix, function) whose cumulative time is shown per request.
BREAKDOWN = [
    ("whole request (Flask wsgi_app)", "flask/app.py", "wsgi_app"),
    ("API: token -> actor (authenticate_token)", "programme/tokens.py", "authenticate_token"),
    ("API: readable_task (own transaction)", "programme/records.py", "readable_task"),
    ("form: session user loader (load_user)", "web/auth.py", "load_user"),
    ("form: CSRF check (validate_csrf)", "flask_wtf/csrf.py", "validate_csrf"),
    ("form: visible_task (own transaction)", "programme/inbox.py", "visible_task"),
    ("form: task_forms.parse", "web/task_forms.py", "parse"),
    ("engine.complete_task (its transaction)", "engine/bpmn_engine.py", "complete_task"),
    ("  load (cache or state_from_json)", "engine/execution.py", "load"),
    ("    state_from_json", "engine/serialization.py", "state_from_json"),
    ("  form validation", "engine/forms.py", "validate_form"),
    ("  run_user_task (task.run + engine steps)", "engine/execution.py", "run_user_task"),
    ("    SpiffWorkflow do_engine_steps", "SpiffWorkflow/bpmn/workflow.py", "do_engine_steps"),
    ("      service-task handlers", "engine/execution.py", "call_service"),
    ("  save", "engine/execution.py", "save"),
    ("    conclude (ready tasks, timers)", "engine/execution.py", "conclude"),
    ("    state_to_json", "engine/serialization.py", "state_to_json"),
    ("    write_instance (UPDATE + audit INSERT)", "engine/execution.py", "write_instance"),
    ("      audit chain hashing", "engine/events.py", "chain"),
    ("    write_timers", "engine/execution.py", "write_timers"),
    ("API: response (dump)", "web/api/bodies.py", "dump"),
    ("form: flash", "flask/helpers.py", "flash"),
    ("all: SQLAlchemy ORM statements (Session.execute)", "sqlalchemy/orm/session.py", "_execute_internal"),
    ("all: SQLAlchemy Core statements", "sqlalchemy/engine/base.py", "_execute_context"),
    ("all: the database's own execute (DB-API)", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("all: the database's own commit (DB-API)", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
]


def _breakdown(stats: pstats.Stats, requests: int) -> list[tuple[str, float, int]]:
    """(label, ms per request, calls per request) of the BREAKDOWN entries."""
    rows = []
    for label, suffix, name in BREAKDOWN:
        cumulative, calls = 0.0, 0
        for (filename, _line, function), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if function == name and filename.endswith(suffix):
                cumulative += ct
                calls += nc
        if calls:
            rows.append((label, cumulative * 1000 / requests, calls / requests))
    return rows


def profile_requests(quick: bool) -> int:
    """Completions per mode in the profile (and as many unprofiled)."""
    return 100 if quick else 200


def bench_profile(prepared: Prepared, cases: list[Case], quick: bool) -> dict:
    """In-process, through Flask's test client: unprofiled medians, then
    cProfile over the same kind of completions."""
    from web.app import create_app
    previous = os.environ.get("OCOP_RATELIMIT")
    os.environ["OCOP_RATELIMIT"] = "0"  # every sign-in comes from one address
    try:
        app = create_app(database_url=prepared.url)
    finally:
        if previous is None:
            os.environ.pop("OCOP_RATELIMIT", None)
        else:
            os.environ["OCOP_RATELIMIT"] = previous
    pool = Pool(prepared, cases)
    clients: dict[int, object] = {}

    def browser(user_id: int):
        if user_id not in clients:
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            reply = client.post("/login", data={"username": prepared.usernames[user_id], "password": "ocop-demo",
                                                "csrf_token": token})
            assert reply.status_code == 302, reply.status_code
            page = client.get("/login").get_data(as_text=True)
            clients[user_id] = (client, page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0])
        return clients[user_id]

    api_client = app.test_client()
    for user_id in prepared.usernames:  # every sign-in before anything is timed or profiled
        browser(user_id)

    def one(mode: str) -> float:
        case = pool.next_case()
        if case is None:
            raise RuntimeError("the profile's pool ran out of tasks")
        task = case.next_task()
        user = prepared.user_for(case, task)
        data = case.data_for(task)
        if mode == "api":
            headers = {"Authorization": f"Bearer {prepared.tokens[user]}"}
            started = time.perf_counter()
            reply = api_client.post(f"/api/v1/tasks/{task['id']}/complete", json=data, headers=headers)
            seconds = time.perf_counter() - started
            assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
            body = reply.get_json()
            case.advance(task, body["ready_tasks"], body["status"])
        else:
            client, csrf = browser(user)
            form = form_pairs(task["form_key"], data) + [("csrf_token", csrf)]
            from werkzeug.datastructures import MultiDict
            started = time.perf_counter()
            reply = client.post(f"/inbox/tasks/{task['id']}", data=MultiDict(form))
            seconds = time.perf_counter() - started
            assert reply.status_code == 302, reply.status_code
            case.advance(task, inbox_ready(prepared.engine, case.instance_id))  # the post answers a redirect
        return seconds

    for n in range(PROFILE_POOL):  # warm-up: one pass over the pool
        one(("api", "form")[n % 2])
    plain = {"api": [], "form": []}
    for n in range(profile_requests(quick)):
        mode = ("api", "form")[n % 2]
        plain[mode].append(one(mode))
    figures = {}
    for mode, seconds in plain.items():
        figures.update({k: v for k, v in summary_ms(f"http_inprocess_{mode}_ms", seconds).items()
                        if k.endswith(("_median", "_p90"))})

    requests = profile_requests(quick)
    report = io.StringIO()
    load = os.getloadavg()[0]
    report.write("Where one task completion's time goes, in-process (Flask test client, SQLite, warm\n"
                 "workflow cache, the cycle's task mix), under cProfile (which inflates the times; the\n"
                 "shares are what count). Written by bench/http_bench.py"
                 f"{' --quick' if quick else ''} at {time.strftime('%Y-%m-%d %H:%M')} "
                 f"(load average {load:.1f} on {os.cpu_count()} cores).\n"
                 f"Unprofiled in-process medians: API {figures['http_inprocess_api_ms_median']:.1f} ms, "
                 f"form {figures['http_inprocess_form_ms_median']:.1f} ms.\n\n")
    for mode in ("api", "form"):
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            one(mode)
        profiler.disable()
        stats = pstats.Stats(profiler)
        rows = _breakdown(stats, requests)
        whole = rows[0][1] if rows and rows[0][0].startswith("whole") else None
        title = {"api": "JSON API: POST /api/v1/tasks/<id>/complete (Bearer token)",
                 "form": "task page: POST /inbox/tasks/<id> (session cookie + CSRF)"}[mode]
        report.write(f"=== {title}: {requests} completions ===\n\n")
        report.write("Per request (cumulative ms under the profiler, share of the whole request, calls):\n")
        for label, ms, calls in rows:
            share = f"{ms / whole * 100:5.1f}%" if whole else "     "
            report.write(f"  {label:<50} {ms:8.2f} ms  {share}  {calls:6.1f}\n")
        if whole:
            engine_ms = next((ms for label, ms, _c in rows if label.startswith("engine.complete_task")), 0.0)
            figures[f"http_profile_{mode}_engine_share"] = round(engine_ms / whole, 3)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(15)
        report.write("\nTop 15 by cumulative time:\n")
        report.write(_trim_pstats(out.getvalue()))
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(15)
        report.write("\nTop 15 by own time (tottime):\n")
        report.write(_trim_pstats(out.getvalue()))
        report.write("\n")
    PROFILE_PATH.write_text(report.getvalue(), encoding="utf-8")
    figures["http_profile_file"] = str(PROFILE_PATH.relative_to(ROOT))
    prepared_engine_dispose = getattr(app.extensions["ocop_engine"].db, "dispose", None)
    if prepared_engine_dispose:
        prepared_engine_dispose()
    return figures


def _trim_pstats(text: str) -> str:
    """pstats' table without its preamble lines (the profile's file name, blank lines)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    head = [line for line in lines[:start] if "function calls" in line]
    return "\n".join(head + lines[start:]).rstrip() + "\n"
