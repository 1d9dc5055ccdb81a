"""Benchmark: one task completion over HTTP, as users and integrations do it.

    .venv/bin/python bench/http_bench.py [--quick] [--no-postgres] [--no-profile]

(Not bench/http.py: a module named `http` in bench/ would shadow the
standard library's `http` package for every script run from bench/ --
Python puts the script's directory first on sys.path -- and break
bench/run.py and the others at their first `import werkzeug`.)

1. Latency, one client, SQLite, gunicorn with one worker (4 threads, so
   keep-alive works; the sync worker closes every connection). Client-side
   time of one task submit on a persistent connection, alternating
   (a) the JSON API, POST /api/v1/tasks/<id>/complete with a Bearer token,
   and (b) the task page's form post, POST /inbox/tasks/<id> with the
   session cookie and CSRF token (answer: a 302 redirect, not followed).
   The instances are staged in-process at points spread evenly over
   their cycle (bench/workload.py: 3-star cycles of 9 tasks, every other
   one with its idea returned once), completed round-robin, a finished
   one replaced by a fresh one: every task of the cycle is in the mix, in
   its proportion. Twice: "warm", a pool of 64 instances whose workflows
   the worker keeps in its cache (as bench/run.py's engine figure: one
   instance driven by one engine; an instance's first completion by the
   worker is a cache miss and is left out), and "cold", a pool of 300,
   more than the worker's 256-workflow cache, so every completion loads
   the state from the database. The server's own time per request comes
   from gunicorn's access log (%(D)s); GET /healthz (one SELECT 1) is the
   floor of a request. Target: under 5 ms at the median.
2. Profile (bench/http_profile.py): the same completions in-process
   through Flask's test client under cProfile; top functions by cumulative
   time and a breakdown of one request, written to bench/http_profile.txt.
3. Throughput, PostgreSQL: gunicorn with 2 and then 4 workers (4 threads
   each), 16 client threads each completing its own instances' tasks
   through the API as fast as it can, for a fixed number of completions.
   Completions per second, latency percentiles, statuses; then every task
   must have exactly one task_completed event, nothing may answer 5xx, and
   the touched instances' hash chains and replays must verify. Target:
   at least 100 completions per second on 2 cores.
   Before it, one client on PostgreSQL (the per-task figure to compare
   with bench/run.py's engine on PostgreSQL).

`run(quick)` returns a flat dict of figures (bench/run.py merges it); the
per-task figures http_ms_per_task_<database>_median (and _mean) are the
API, warm, client-side: comparable with raw_ms_per_task and
<database>_engine_ms_per_task (those are means per task over a cycle). Not a test: numbers depend on the machine
and on what else runs on it; targets are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.http_profile import PROFILE_POOL, bench_profile, profile_requests  # noqa: E402
from bench.workload import (  # noqa: E402
    ACCESS_LOG_ENV,
    Case,
    CpuMeter,
    Http,
    Pool,
    Prepared,
    alternate_returns,
    complete_api,
    complete_form,
    inbox_ready,
    machine,
    own_cpu_seconds,
    postmaster_pid,
    prepare,
    server_times,
    sign_in,
    staged_first,
    summary_ms,
)
from storage.models import AuditEvent  # noqa: E402
from testkit.gunicorn_server import GunicornServer  # noqa: E402

TARGET_MEDIAN_MS = 5.0
TARGET_THROUGHPUT = 100.0
WARM_POOL = 64        # fits the worker's workflow cache (256 entries, OCOP_WORKFLOW_CACHE_MB = 16: ~115 workflows)
COLD_POOL = 300       # does not: round-robin over it always misses the cache
CLIENT_THREADS = 16
RUN_DEADLINE_S = 900  # a throughput run stops issuing requests after this


def _say(message: str) -> None:
    print(f"[http {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- one client: latency -----------------------------------------------------------

class Client:
    """One user agent: a keep-alive connection, API tokens, web sessions."""

    def __init__(self, prepared: Prepared, base_url: str):
        self.prepared = prepared
        self.http = Http(base_url)
        self.sessions = {}

    def web(self, user_id: int):
        if user_id not in self.sessions:
            self.sessions[user_id] = sign_in(self.http, self.prepared.usernames[user_id])
        return self.sessions[user_id]

    def complete(self, case: Case, mode: str):
        """Complete the case's next task; returns (reply, path, task)."""
        task = case.next_task()
        user = self.prepared.user_for(case, task)
        data = case.data_for(task)
        if mode == "api":
            reply = complete_api(self.http, self.prepared.tokens[user], task["id"], data)
            if reply.status == 200:
                body = reply.json()
                case.advance(task, body["ready_tasks"], body["status"])
            return reply, f"/api/v1/tasks/{task['id']}/complete", task
        web = self.web(user)  # signs in first (untimed) when needed
        reply = complete_form(self.http, web, task["id"], task["form_key"], data)
        if reply.status == 302:
            case.advance(task, inbox_ready_after(self.prepared, case))
        return reply, f"/inbox/tasks/{task['id']}", task


def inbox_ready_after(prepared: Prepared, case: Case) -> list[dict]:
    """The form post answers a redirect: what is ready now comes from the inbox table."""
    return inbox_ready(prepared.engine, case.instance_id)


def round_robin(cases: list[Case]):
    """The pool's cases in turn, skipping finished ones, forever (None when all are done)."""
    while True:
        live = [c for c in cases if c.next_task() is not None]
        if not live:
            yield None
            return
        for case in live:
            if case.next_task() is not None:
                yield case


def alternating(n: int, pool_size: int, modes: tuple) -> str:
    """The mode of the n-th completion: alternating, and shifted by one each
    pass over the pool, so every instance goes through every mode (with an
    even pool, plain alternation would tie each instance to one mode)."""
    return modes[(n + n // pool_size) % len(modes)]


def single_client(prepared: Prepared, base_url: str, cases: list[Case], per_mode: int, warmup: int,
                  modes=("api", "form"), skip_first_touch: bool = False, meter: CpuMeter | None = None) -> dict:
    """Complete tasks of a pool (round-robin, refilled; see workload.Pool),
    alternating the modes; the first `warmup` completions are not counted,
    nor (`skip_first_touch`) a completion of an instance this client has
    not completed anything of yet -- its workflow cannot be in the worker's
    cache. Returns {mode: [(seconds, path)]}, statuses and counts, and
    with a `meter` the server's CPU seconds over all completions made."""
    client = Client(prepared, base_url)
    if "form" in modes:  # every sign-in before anything is timed or metered
        for user_id in prepared.usernames:
            client.web(user_id)
    if meter is not None:
        meter.start()
    pool = Pool(prepared, cases)
    samples = {mode: [] for mode in modes}
    statuses: Counter = Counter()
    expected = {"api": 200, "form": 302}
    first_touches = n = 0
    try:
        while min(len(v) for v in samples.values()) < per_mode:
            case = pool.next_case()
            if case is None:
                raise RuntimeError(f"the pool ran out of tasks after {n} completions")
            mode = alternating(n, len(pool.cases), modes)
            if len(samples[mode]) >= per_mode:
                mode = next(m for m in modes if len(samples[m]) < per_mode)
            first = pool.first_touch(case)
            pool.touch(case)
            reply, path, task = client.complete(case, mode)
            statuses[f"{mode}_{reply.status}"] += 1
            n += 1
            if reply.status != expected[mode]:
                _say(f"unexpected {reply.status} for {mode} {task['form_key']}: {reply.body[:300]!r}")
                case.ready = inbox_ready_after(prepared, case)
                continue
            if n <= warmup:
                continue
            if first and skip_first_touch:
                first_touches += 1
                continue
            samples[mode].append((reply.seconds, path))
    finally:
        client.http.close()
    cpu = meter.stop() if meter is not None else None
    return {"samples": samples, "statuses": statuses, "connects": client.http.connects,
            "skipped_first_touches": first_touches, "completions": n, "server_cpu_s": cpu,
            "signed_in": len(client.sessions)}


def healthz(base_url: str, count: int) -> list[float]:
    http = Http(base_url)
    try:
        times = []
        for _ in range(count):
            reply = http.request("GET", "/healthz")
            if reply.status == 200:
                times.append(reply.seconds)
        return times
    finally:
        http.close()


def latency_figures(prefix: str, run: dict, server: dict[str, list[float]]) -> dict:
    figures = {}
    for mode, samples in run["samples"].items():
        client = [seconds for seconds, _path in samples]
        figures.update(summary_ms(f"{prefix}_{mode}_ms", client))
        served = [server[path][0] for _s, path in samples if path in server]
        figures.update({k: v for k, v in summary_ms(f"{prefix}_{mode}_server_ms", served).items()
                        if not k.endswith("_p99")})
        figures[f"{prefix}_{mode}_count"] = len(client)
    if run.get("server_cpu_s") is not None and run["completions"]:
        # All completions of the phase (warm-up, first touches and sign-ins included).
        figures[f"{prefix}_server_cpu_ms_per_completion"] = round(run["server_cpu_s"] * 1000 / run["completions"], 3)
    for status, count in sorted(run["statuses"].items()):
        figures[f"{prefix}_status_{status}"] = count
    return figures


def bench_latency_sqlite(tmp: Path, quick: bool) -> tuple[dict, Prepared, list[Case]]:
    """Figures, and the prepared database with the profile's pool (staged like the others)."""
    per_mode = 100 if quick else 400
    url = f"sqlite:///{tmp}/http.db"
    started = time.perf_counter()
    pools = WARM_POOL + COLD_POOL + PROFILE_POOL
    # Fresh instances to replace finished ones: each completion uses up about
    # 1/9 of an instance (cycles of 9 or 12 tasks); the phases' completions,
    # first touches and warm-ups included, and a margin.
    completions = (2 * per_mode + 150) + (2 * per_mode + 20) + (PROFILE_POOL + 3 * profile_requests(quick))
    reserve = -(-completions // 9) + 40
    prepared = prepare(url, pools + reserve, returns_of=alternate_returns, stages=staged_first(pools),
                       progress=_say)
    figures = {"http_sqlite_prepare_s": round(time.perf_counter() - started, 1),
               "http_sqlite_prepare_stage_s": round(prepared.stage_seconds, 1)}
    _say(f"prepared {len(prepared.cases)} instances in {figures['http_sqlite_prepare_s']} s")
    # All pools are taken before any runs: refills come from the reserve after them.
    warm_cases, cold_cases = prepared.take(WARM_POOL), prepared.take(COLD_POOL)
    profile_cases = prepared.take(PROFILE_POOL)
    with GunicornServer(url, tmp, workers=1, threads=4, env=ACCESS_LOG_ENV) as server:
        figures.update(summary_ms("http_sqlite_healthz_ms", healthz(server.url, 200)))
        _say("warm pool")
        meter = CpuMeter(server.process.pid)
        warm = single_client(prepared, server.url, warm_cases, per_mode, warmup=20, skip_first_touch=True,
                             meter=meter)
        _say("cold pool")
        cold = single_client(prepared, server.url, cold_cases, per_mode, warmup=20, meter=meter)
        served = server_times(server.log())
    figures["http_sqlite_warm_skipped_first_touches"] = warm["skipped_first_touches"]
    figures.update(latency_figures("http_sqlite_warm", warm, served))
    figures.update(latency_figures("http_sqlite_cold", cold, served))
    healthz_server = served.get("/healthz", [])
    if healthz_server:
        figures["http_sqlite_healthz_server_ms_median"] = round(statistics.median(healthz_server) * 1000, 3)
    figures["http_sqlite_reconnects"] = warm["connects"] + cold["connects"]
    # The per-task figures for ratios with bench/run.py's raw and engine figures.
    figures["http_ms_per_task_sqlite_median"] = figures["http_sqlite_warm_api_ms_median"]
    figures["http_ms_per_task_sqlite_mean"] = figures["http_sqlite_warm_api_ms_mean"]
    figures["http_ms_per_task_sqlite_cold_median"] = figures["http_sqlite_cold_api_ms_median"]
    figures["http_form_ms_per_task_sqlite_median"] = figures["http_sqlite_warm_form_ms_median"]
    figures["http_target_median_ms"] = TARGET_MEDIAN_MS
    for mode in ("api", "form"):
        for pool in ("warm", "cold"):
            figures[f"http_target_met_sqlite_{pool}_{mode}"] = (
                figures[f"http_sqlite_{pool}_{mode}_ms_median"] < TARGET_MEDIAN_MS)
    return figures, prepared, profile_cases


# --- throughput on PostgreSQL -------------------------------------------------------

def throughput_run(prepared: Prepared, base_url: str, cases: list[Case], completions: int,
                   threads: int, warmup: int = 3, meters: dict[str, CpuMeter] | None = None) -> dict:
    """`threads` clients, each owning its share of the cases (so no two
    requests ever race for one instance), complete tasks through the API.
    Each first makes `warmup` completions (the workers import, load the
    diagram's specs, fill caches: a server that has run a while); then the
    clock starts and they go on until `completions` requests were made."""
    owned = [cases[i::threads] for i in range(threads)]
    lock = threading.Lock()
    issued = [0]
    records: list[tuple[float, int, str, int, bool]] = []  # seconds, status, task id, instance id, timed
    failures: list[str] = []
    warmed = threading.Barrier(threads + 1)
    deadline = [time.monotonic() + RUN_DEADLINE_S]

    def ticket() -> bool:
        with lock:
            if issued[0] >= completions or time.monotonic() > deadline[0]:
                return False
            issued[0] += 1
            return True

    def worker(mine: list[Case]) -> None:
        http = Http(base_url, timeout=120)
        errors: Counter = Counter()
        mine_records = []
        turn = round_robin(mine)

        def one(case: Case, timed: bool) -> None:
            task = case.next_task()
            user = prepared.user_for(case, task)
            try:
                reply = complete_api(http, prepared.tokens[user], task["id"], case.data_for(task))
            except OSError as err:
                failures.append(f"{type(err).__name__}: {err}")
                http.close()
                mine_records.append((float("nan"), 0, task["id"], case.instance_id, timed))
                errors[case.instance_id] += 1
                return
            mine_records.append((reply.seconds, reply.status, task["id"], case.instance_id, timed))
            if reply.status == 200:
                body = reply.json()
                case.advance(task, body["ready_tasks"], body["status"])
                return
            errors[case.instance_id] += 1
            if len(failures) < 20:
                failures.append(f"{reply.status}: {reply.body[:200]!r}")
            # Find out what is ready now; give up on an instance after 3 failures.
            case.ready = [] if errors[case.instance_id] >= 3 else inbox_ready(prepared.engine, case.instance_id)

        try:
            try:
                for _ in range(warmup):
                    case = next(turn)
                    if case is None:
                        break
                    one(case, False)
            finally:
                warmed.wait(timeout=RUN_DEADLINE_S)
            while True:
                case = next(turn)
                if case is None or not ticket():
                    break
                one(case, True)
        except Exception as err:  # noqa: BLE001 - reported with the figures, never a hang
            failures.append(f"client thread failed: {type(err).__name__}: {err}")
        finally:
            http.close()
            with lock:
                records.extend(mine_records)

    pool = [threading.Thread(target=worker, args=(mine,), daemon=True) for mine in owned]
    for thread in pool:
        thread.start()
    warmed.wait(timeout=RUN_DEADLINE_S)
    for meter in (meters or {}).values():
        meter.start()
    client_cpu = own_cpu_seconds()
    began = time.perf_counter()
    deadline[0] = time.monotonic() + RUN_DEADLINE_S
    for thread in pool:
        thread.join(RUN_DEADLINE_S + 180)
    wall = time.perf_counter() - began
    return {"records": records, "wall": wall, "failures": failures,
            "cpu_s": {name: meter.stop() for name, meter in (meters or {}).items()}
            | {"client": own_cpu_seconds() - client_cpu},
            "stopped_by_deadline": time.monotonic() > deadline[0],
            "hung_threads": sum(thread.is_alive() for thread in pool)}


def check_completions(prepared: Prepared, records: list, verify_limit: int) -> dict:
    """Every task answered 200 has exactly one task_completed event; no
    task has more than one; the touched instances' chains and replays verify."""
    from audit.verification import verify
    ok_tasks = Counter(record[2] for record in records if record[1] == 200)
    instances = sorted({record[3] for record in records})
    events: Counter = Counter()
    with prepared.engine.db.transaction() as session:
        for start in range(0, len(instances), 500):
            chunk = instances[start:start + 500]
            for data in session.scalars(select(AuditEvent.data).where(
                    AuditEvent.instance_id.in_(chunk), AuditEvent.kind == "task_completed")):
                events[data["task_id"]] += 1
    missing = [t for t in ok_tasks if events[t] == 0]
    doubled = [t for t, n in events.items() if n > 1]
    answered_twice = [t for t, n in ok_tasks.items() if n > 1]
    unanswered = [t for t in events if t not in ok_tasks]  # completed though the client saw no 200
    sample = sorted(random.Random(1).sample(instances, min(verify_limit, len(instances))))
    report = verify(prepared.engine, sample, replay_too=True)
    return {"tasks_ok": len(ok_tasks), "events": sum(events.values()), "missing": len(missing),
            "doubled": len(doubled) + len(answered_twice), "completed_without_200": len(unanswered),
            "verified_instances": report.instances, "verify_problems": len(report.problems),
            "verify_first_problem": str(report.problems[0]) if report.problems else "",
            "exactly_once": not missing and not doubled and not answered_twice and not unanswered}


def bench_postgres(quick: bool) -> dict:
    from testkit.pgserver import PostgresServer, available
    reason = available()
    if reason:
        return {"http_postgresql_skipped": reason}
    completions = 200 if quick else 2000
    worker_counts = (2, 4)
    per_instance = 9  # 3-star cycle (12 with an idea return)
    warmup = 3  # per client thread, before the clock starts
    run_instances = -(-(completions + warmup * CLIENT_THREADS) // per_instance) + 2 * CLIENT_THREADS
    single_pool, single_per_mode = 16, (50 if quick else 200)
    figures: dict = {}
    with PostgresServer() as pg, tempfile.TemporaryDirectory(prefix="ocop-bench-http-pg-") as tmp:
        url = pg.create_database("bench_http")
        started = time.perf_counter()
        count = single_pool + run_instances * len(worker_counts) + 30
        # The single client's pool is staged over the cycle; the throughput cases start at its beginning.
        prepared = prepare(url, count, returns_of=alternate_returns, stages=staged_first(single_pool), progress=_say)
        figures["http_postgresql_prepare_s"] = round(time.perf_counter() - started, 1)
        _say(f"prepared {count} instances on PostgreSQL in {figures['http_postgresql_prepare_s']} s")
        tmp = Path(tmp)
        single_cases = prepared.take(single_pool)
        run_cases = {workers: prepared.take(run_instances) for workers in worker_counts}
        for workers in worker_counts:
            with GunicornServer(url, tmp, workers=workers, threads=4) as server:
                if workers == worker_counts[0]:
                    _say("one client on PostgreSQL")
                    single = single_client(prepared, server.url, single_cases, single_per_mode,
                                           warmup=5, modes=("api",), skip_first_touch=True)
                    client = [s for s, _p in single["samples"]["api"]]
                    figures.update(summary_ms("http_postgresql_single_api_ms", client))
                    figures["http_ms_per_task_postgresql_median"] = figures["http_postgresql_single_api_ms_median"]
                    figures["http_ms_per_task_postgresql_mean"] = figures["http_postgresql_single_api_ms_mean"]
                _say(f"throughput: {workers} workers x 4 threads, {CLIENT_THREADS} clients, {completions} completions")
                meters = {"gunicorn": CpuMeter(server.process.pid), "postgres": CpuMeter(postmaster_pid(pg.data_dir))}
                run = throughput_run(prepared, server.url, run_cases[workers], completions, CLIENT_THREADS,
                                     warmup, meters)
                log_tail = server.log()[-2000:]
            prefix = f"http_postgresql_w{workers}"
            records = [r for r in run["records"] if r[4]]  # timed
            ok = [r for r in records if r[1] == 200]
            figures[f"{prefix}_completions"] = len(ok)
            figures[f"{prefix}_requests"] = len(records)
            figures[f"{prefix}_wall_s"] = round(run["wall"], 2)
            figures[f"{prefix}_completions_per_s"] = round(len(ok) / run["wall"], 1)
            figures.update({k: v for k, v in summary_ms(f"{prefix}_ms", [r[0] for r in records if r[1]]).items()})
            for status, n in sorted(Counter(r[1] for r in records).items()):
                figures[f"{prefix}_status_{status}"] = n
            figures[f"{prefix}_5xx"] = sum(1 for r in records if r[1] >= 500)
            figures[f"{prefix}_stopped_by_deadline"] = run["stopped_by_deadline"]
            if run["failures"]:
                _say(f"{len(run['failures'])} failures, first: {run['failures'][:3]}\nserver log tail:\n{log_tail}")
            _say(f"{prefix}: {figures[f'{prefix}_completions_per_s']}/s; checking completions and audit chains")
            figures[f"{prefix}_warmup_completions"] = sum(1 for r in run["records"] if not r[4])
            figures[f"{prefix}_hung_client_threads"] = run["hung_threads"]
            check = check_completions(prepared, run["records"], verify_limit=60 if quick else 300)
            for key, value in check.items():
                figures[f"{prefix}_check_{key}"] = value
            figures[f"{prefix}_target_met"] = figures[f"{prefix}_completions_per_s"] >= TARGET_THROUGHPUT
            # CPU per completion (timed part): what the rate would be with the
            # machine's cores to the server and database alone.
            if ok:
                cpu = {name: seconds * 1000 / len(ok) for name, seconds in run["cpu_s"].items()}
                for name, ms in cpu.items():
                    figures[f"{prefix}_cpu_ms_per_completion_{name}"] = round(ms, 2)
                server_ms = cpu.get("gunicorn", 0) + cpu.get("postgres", 0)
                if server_ms:
                    figures[f"{prefix}_cpu_bound_completions_per_s_estimate"] = round(
                        (os.cpu_count() or 1) * 1000 / server_ms, 1)
        prepared.engine.db.dispose()
    figures["http_throughput_target_per_s"] = TARGET_THROUGHPUT
    figures["http_throughput_client_threads"] = CLIENT_THREADS
    return figures


# --- the command ------------------------------------------------------------------------

def run(quick: bool = False, postgres: bool = True, profile: bool = True) -> dict:
    """All figures, flat: {name: value}."""
    results = {f"http_{k}": v for k, v in machine().items()}
    results["http_quick"] = quick
    with tempfile.TemporaryDirectory(prefix="ocop-bench-http-") as tmp:
        figures, prepared, profile_cases = bench_latency_sqlite(Path(tmp), quick)
        results.update(figures)
        if profile:
            _say("in-process profile")
            results.update(_part("http_profile", bench_profile, prepared, profile_cases, quick))
        prepared.engine.db.dispose()
    if postgres:
        results.update(_part("http_postgresql", bench_postgres, quick))
    return results


def _part(name: str, function, *args) -> dict:
    """One part's figures; if it fails, the error instead (the other parts' figures stay)."""
    try:
        return function(*args)
    except Exception as err:  # noqa: BLE001 - reported in the figures and on stderr
        import traceback
        traceback.print_exc()
        return {f"{name}_error": f"{type(err).__name__}: {err}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer completions (for development)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    results = run(args.quick, postgres=not args.no_postgres, profile=not args.no_profile)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
