"""Benchmark: a web worker's resident memory over many task completions.

    .venv/bin/python bench/memory.py [--quick] [--threads N] [--api-only] [--cache-mb MB]

One gunicorn worker (workers=1, 4 threads by default) on SQLite; one client
completes 10,000 tasks through HTTP (--quick: 1,000), alternating the JSON
API and the task page's form post, and samples the worker's RSS (psutil)
every 500 completions (--quick: every 100).

The workload is kept stationary, so that a growing RSS means something: a
pool of 300 instances (more than the worker's 256-workflow cache, so the
cache is full from the first pass) is staged in-process at points spread
evenly over the cycle (3-star cycles of 9 tasks, every other one with its
idea returned once: 12 tasks), and completed round-robin; an instance that
finishes is replaced by a freshly started one. The mix of instance sizes in
the worker's cache is then the same from start to end.

The first sample is the cold worker: booted, before its first request, its
workflow cache empty. The growth from there to the sample after warm-up is
the worker filling its caches (the workflow cache is bounded by
OCOP_WORKFLOW_CACHE_MB, --cache-mb; a 256-entry cache without that bound
took ~50 MB, which a benchmark that started after warm-up never saw); the
growth from cold to the end is what a worker costs in all.

Flat means: from the sample after warm-up (1,000 completions; --quick: 400,
past the pool's first pass, when the cache is full) to the end, RSS grew by
less than 20 MB and less than 10 %. The least-squares slope over the same
samples (KB per 1,000 completions) is reported too.

`run(quick)` returns a flat dict of figures (bench/run.py merges it). Not a
test: the numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.workload import (  # noqa: E402
    TASKS_PER_CYCLE,
    TASKS_PER_RETURN,
    Case,
    Http,
    Pool,
    Prepared,
    alternate_returns,
    complete_api,
    complete_form,
    inbox_ready,
    machine,
    prepare,
    sign_in,
    staged_first,
)
from engine.caches import DEFAULT_WORKFLOW_CACHE_MB  # noqa: E402
from testkit.gunicorn_server import GunicornServer  # noqa: E402

POOL = 300                  # instances completed round-robin (> the 256-workflow cache)
FLAT_MAX_GROWTH_MB = 20.0
FLAT_MAX_GROWTH_PCT = 10.0
RUN_DEADLINE_S = 3600       # stop issuing requests after this, whatever is left


def _say(message: str) -> None:
    print(f"[memory {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def instances_needed(completions: int) -> int:
    """The staged pool, plus fresh instances for what the pool does not
    cover (average cycle: 9 or 12 tasks; staged ones have half left), plus
    a margin."""
    average = TASKS_PER_CYCLE + TASKS_PER_RETURN / 2
    from_pool = POOL * average / 2
    fresh = max(0.0, completions - from_pool) / average
    return POOL + int(fresh * 1.15) + 20


class Driver:
    """One client: the pool round-robin, refilled from the fresh instances."""

    def __init__(self, prepared: Prepared, base_url: str, api_only: bool):
        self.prepared = prepared
        self.http = Http(base_url)
        self.api_only = api_only
        self.sessions = {}
        self.pool = Pool(prepared, prepared.take(POOL))
        self.statuses: Counter = Counter()

    def next_case(self) -> Case | None:
        return self.pool.next_case()

    def web(self, user_id: int):
        if user_id not in self.sessions:
            self.sessions[user_id] = sign_in(self.http, self.prepared.usernames[user_id])
        return self.sessions[user_id]

    def complete(self, n: int) -> float | None:
        """Complete one task (API and form post in turn, shifted each pass over
        the pool so that each instance sees both, unless api_only);
        its client-side seconds, None when it failed. StopIteration when
        no task is left."""
        case = self.next_case()
        if case is None:
            raise StopIteration
        task = case.next_task()
        user = self.prepared.user_for(case, task)
        data = case.data_for(task)
        if self.api_only or (n + n // POOL) % 2 == 0:
            reply = complete_api(self.http, self.prepared.tokens[user], task["id"], data)
            self.statuses[f"api_{reply.status}"] += 1
            if reply.status == 200:
                body = reply.json()
                case.advance(task, body["ready_tasks"], body["status"])
                return reply.seconds
        else:
            web = self.web(user)
            reply = complete_form(self.http, web, task["id"], task["form_key"], data)
            self.statuses[f"form_{reply.status}"] += 1
            if reply.status == 302:
                case.advance(task, inbox_ready(self.prepared.engine, case.instance_id))
                return reply.seconds
        _say(f"unexpected {reply.status} for {task['form_key']}: {reply.body[:300]!r}")
        case.ready = inbox_ready(self.prepared.engine, case.instance_id)
        return None


def slope_kb_per_1000(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of RSS (MB) over completions, as KB per 1,000 completions."""
    if len(points) < 2:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var * 1024 * 1000


def run(quick: bool = False, threads: int = 4, api_only: bool = False, cache_mb: int | None = None) -> dict:
    completions = 1000 if quick else 10_000
    every = 100 if quick else 500
    warmup = 400 if quick else 1000  # past the pool's first pass: the workflow cache is full by then
    figures: dict = {f"memory_{k}": v for k, v in machine().items()}
    figures.update({"memory_quick": quick, "memory_worker_threads": threads, "memory_api_only": api_only,
                    "memory_completions_target": completions, "memory_sample_every": every,
                    "memory_warmup_completions": warmup, "memory_pool": POOL,
                    "memory_workflow_cache_mb": cache_mb if cache_mb is not None else DEFAULT_WORKFLOW_CACHE_MB})
    with tempfile.TemporaryDirectory(prefix="ocop-bench-memory-") as tmp:
        url = f"sqlite:///{tmp}/memory.db"
        count = instances_needed(completions)
        started = time.perf_counter()
        prepared = prepare(url, count, returns_of=alternate_returns, progress=_say, stages=staged_first(POOL))
        figures["memory_prepare_s"] = round(time.perf_counter() - started, 1)
        figures["memory_prepare_stage_s"] = round(prepared.stage_seconds, 1)
        figures["memory_instances_prepared"] = count
        _say(f"prepared {count} instances in {figures['memory_prepare_s']} s "
             f"(staging the pool: {figures['memory_prepare_stage_s']} s)")
        try:
            env = {"OCOP_WORKFLOW_CACHE_MB": str(cache_mb)} if cache_mb is not None else None
            with GunicornServer(url, Path(tmp), workers=1, threads=threads, env=env) as server:
                figures.update(drive(prepared, server, completions, every, warmup, api_only))
        finally:
            prepared.engine.db.dispose()
    return figures


def drive(prepared: Prepared, server: GunicornServer, completions: int, every: int, warmup: int,
          api_only: bool) -> dict:
    pid = server.worker_pids()[0]
    worker = psutil.Process(pid)
    driver = Driver(prepared, server.url, api_only)
    mb = 1024 * 1024
    series: list[tuple[int, float]] = [(0, worker.memory_info().rss / mb)]  # cold: no request served yet
    latencies: list[float] = []
    done = failed = 0
    deadline = time.monotonic() + RUN_DEADLINE_S
    began = time.perf_counter()
    try:
        n = 0
        while done < completions and time.monotonic() < deadline:
            try:
                seconds = driver.complete(n)
            except StopIteration:
                _say(f"out of tasks after {done} completions")
                break
            n += 1
            if seconds is None:
                failed += 1
                if failed > 50:
                    raise RuntimeError("more than 50 failed completions; see the messages above")
                continue
            done += 1
            latencies.append(seconds)
            if done % every == 0:
                series.append((done, worker.memory_info().rss / mb))
                if done % (every * 4) == 0:
                    _say(f"{done} completions, RSS {series[-1][1]:.1f} MB")
        wall = time.perf_counter() - began
        full = worker.memory_full_info()
    finally:
        driver.http.close()
    restarted = server.worker_pids() != [pid]
    after_warmup = next((rss for count, rss in series if count >= warmup), series[-1][1])
    end = series[-1][1]
    growth = end - after_warmup
    growth_pct = growth / after_warmup * 100 if after_warmup else 0.0
    tail = [(count, rss) for count, rss in series if count >= warmup]
    figures = {
        "memory_completions": done,
        "memory_failed_requests": failed,
        "memory_run_s": round(wall, 1),
        "memory_completions_per_s": round(done / wall, 1) if wall else None,
        "memory_rss_mb_series": [round(rss, 1) for _count, rss in series],
        "memory_rss_series_completions": [count for count, _rss in series],
        "memory_rss_mb_start": round(series[0][1], 1),
        "memory_rss_mb_cold": round(series[0][1], 1),
        "memory_growth_cold_to_warm_mb": round(after_warmup - series[0][1], 1),
        "memory_growth_from_cold_mb": round(end - series[0][1], 1),
        "memory_rss_mb_after_warmup": round(after_warmup, 1),
        "memory_rss_mb_end": round(end, 1),
        "memory_rss_mb_max": round(max(rss for _c, rss in series), 1),
        "memory_uss_mb_end": round(full.uss / mb, 1),
        "memory_growth_after_warmup_mb": round(growth, 1),
        "memory_growth_after_warmup_pct": round(growth_pct, 1),
        "memory_slope_kb_per_1000_completions": (round(slope, 1) if (slope := slope_kb_per_1000(tail)) is not None
                                                 else None),
        "memory_flat": growth < FLAT_MAX_GROWTH_MB and growth_pct < FLAT_MAX_GROWTH_PCT,
        "memory_flat_rule": (f"RSS growth from the sample after {warmup} completions to the end "
                             f"< {FLAT_MAX_GROWTH_MB:g} MB and < {FLAT_MAX_GROWTH_PCT:g} %"),
        "memory_worker_restarted": restarted,
        "memory_instances_finished": len(driver.pool.finished),
        "memory_reconnects": driver.http.connects,
    }
    if latencies:
        window = min(1000, len(latencies) // 2) or 1
        figures["memory_latency_ms_median"] = round(statistics.median(latencies) * 1000, 3)
        figures["memory_latency_ms_median_first"] = round(statistics.median(latencies[:window]) * 1000, 3)
        figures["memory_latency_ms_median_last"] = round(statistics.median(latencies[-window:]) * 1000, 3)
        figures["memory_latency_window"] = window
    for status, count in sorted(driver.statuses.items()):
        figures[f"memory_status_{status}"] = count
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 completions (for development)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads of the one worker (1: sync worker)")
    parser.add_argument("--api-only", action="store_true", help="only the JSON API, no form posts")
    parser.add_argument("--cache-mb", type=int, default=None,
                        help=f"the worker's OCOP_WORKFLOW_CACHE_MB (default {DEFAULT_WORKFLOW_CACHE_MB})")
    args = parser.parse_args()
    print(json.dumps(run(args.quick, args.threads, args.api_only, args.cache_mb), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
