"""Benchmark: the officers' inbox at national scale.

100,000 products in flight (one running cycle each, one or two ready tasks
per cycle) across 63 provinces, ~700 districts and ~7,000 communes, worked
by 1,000 officers at commune, district, province and central level. The
data is written with bulk Core inserts (not through the engine: the inbox
reads only rows, and 100,000 cycles through SpiffWorkflow would take
hours); every instance row shares one small JSON state. The world is
built by testkit/inbox_dataset.py (tests/test_query_plans.py uses it too).

Measured server-side, per request, inside the Flask application (from the
start of request dispatch to the finished response: the signed-in user's
roles, the inbox's queries, the template; not the test client or the
network): the inbox page (`/inbox/` with its usual filters), the JSON API
(`GET /api/v1/tasks`) and `programme.inbox.counts` alone, for a sample of
officers of each level. Target: under 50 ms at the median.

    .venv/bin/python bench/inbox.py [--quick] [--no-postgres] [--products N]

Prints the figures as JSON. `run(quick)` returns the same flat dict (for
bench/run.py). Not a test: the numbers depend on the machine and on what
else runs on it.
"""
from __future__ import annotations

import argparse
import html
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from demo.seed import (  # noqa: E402
    DEMO_PASSWORD,  # noqa: E402
    )
from engine.access import (  # noqa: E402
    load_actor,  # noqa: E402
    supervision_of,
)
from engine.clock import MovableClock  # noqa: E402
from programme import inbox as inbox_queries  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import RoleAssignment, User  # noqa: E402
from testkit.inbox_dataset import FULL_PRODUCTS, NOW, build  # noqa: E402
from testkit.web_login import login  # noqa: E402

QUICK_PRODUCTS = 10_000
TARGET_MS = 50.0


# --- measuring ------------------------------------------------------------------

LEVELS = {  # level -> the role that marks its officers
    "commune": "commune_officer", "district": "district_officer", "province_council": "province_council",
    "program_manager": "program_manager", "central_council": "central_council",
}
# Extra, not in the target: the administrator supervises every task in the country.
EXTRA_LEVELS = {"admin": "admin"}
# NEXT_PAGE: the first page's "next" link (a keyset cursor), as an officer follows it.
NEXT_PAGE = "next"
PAGE_VARIANTS = ("", "?sort=due", "?scope=unassigned", "?overdue=1", NEXT_PAGE, "?sort=product")
API_VARIANTS = ("", "?sort=due", "?scope=mine", "?overdue=true")


def _sample_users(db: Database, per_level: int, seed: int) -> dict[str, list[tuple[int, str]]]:
    rng = random.Random(seed)
    chosen = {}
    with db.transaction() as session:
        for level, role in {**LEVELS, **EXTRA_LEVELS}.items():
            users = session.execute(select(User.id, User.username).join(RoleAssignment)
                                    .where(RoleAssignment.role == role).distinct().order_by(User.id)).all()
            chosen[level] = rng.sample([tuple(u) for u in users], min(per_level, len(users)))
    return chosen


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _summary(prefix: str, samples: dict[str, list[float]], out: dict) -> None:
    overall = []
    for level, values in samples.items():
        if not values:
            continue
        out[f"{prefix}_{level}_median_ms"] = round(statistics.median(values), 2)
        out[f"{prefix}_{level}_p90_ms"] = round(_percentile(values, 0.9), 2)
        if level in LEVELS:
            overall += values
    if overall:
        out[f"{prefix}_overall_median_ms"] = round(statistics.median(overall), 2)
        out[f"{prefix}_overall_p90_ms"] = round(_percentile(overall, 0.9), 2)
        out[f"{prefix}_requests"] = len(overall)


def measure(url: str, per_level: int = 20, rounds: int = 2, seed: int = 7) -> dict:
    """Time the inbox page, the API's task list and `counts` for sampled
    officers of every level (milliseconds, server-side)."""
    import os

    os.environ.setdefault("OCOP_RATELIMIT", "0")
    from web.app import create_app

    app = create_app(url, overrides={"RATELIMIT_ENABLED": False})
    ocop = app.extensions["ocop_engine"]
    ocop.clock = MovableClock(NOW)
    timings: list[tuple[float, float]] = []  # (wall, this process's CPU) per request, ms
    dispatch = app.full_dispatch_request

    def timed_dispatch():
        mark, cpu = time.perf_counter(), time.process_time()
        try:
            return dispatch()
        finally:
            timings.append(((time.perf_counter() - mark) * 1000, (time.process_time() - cpu) * 1000))

    app.full_dispatch_request = timed_dispatch
    users = _sample_users(ocop.db, per_level, seed)
    page, api, tally, sizes = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
    page_cpu = defaultdict(list)

    def get(client, path: str) -> float:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
        return timings[-1][0]

    warmed = False
    for level, members in users.items():
        for user_id, username in members:
            client = app.test_client()
            login(client, username, DEMO_PASSWORD)
            if not warmed:  # the first request compiles templates: not counted
                get(client, "/inbox/")
                get(client, "/api/v1/tasks")
                warmed = True
            first = client.get("/inbox/").get_data(as_text=True)
            following = re.search(r'<a href="/inbox/([^"]*)" rel="next">', first)
            for _round in range(rounds):
                for variant in PAGE_VARIANTS:
                    if variant == NEXT_PAGE:
                        if following is None:  # one page only
                            continue
                        variant = html.unescape(following[1])
                    page[level].append(get(client, "/inbox/" + variant))
                    page_cpu[level].append(timings[-1][1])
                for variant in API_VARIANTS:
                    api[level].append(get(client, "/api/v1/tasks" + variant))
            with ocop.db.transaction() as session:
                actor = load_actor(session, user_id)
                supervision = supervision_of(session, actor)
                for _round in range(rounds * 2):
                    mark = time.perf_counter()
                    counted = inbox_queries.counts(session, actor, NOW, supervision)
                    tally[level].append((time.perf_counter() - mark) * 1000)
            sizes[level].append(counted["area"])
    out: dict = {}
    _summary("page", page, out)
    # CPU time of the serving process (Python, templates, and SQLite, which
    # runs in-process; not PostgreSQL's server): less sensitive to a busy machine.
    _summary("page_cpu", page_cpu, out)
    _summary("api", api, out)
    _summary("counts", tally, out)
    for level, values in sizes.items():
        out[f"visible_tasks_{level}_median"] = statistics.median(values)
    out["officers_sampled"] = sum(len(m) for m in users.values())
    ocop.db.dispose()
    return out


def bench_backend(url: str, products: int, per_level: int, rounds: int) -> dict:
    shape = build(url, products)
    figures = measure(url, per_level=per_level, rounds=rounds)
    return {**shape, **figures}


def run(quick: bool = False, postgres: bool = True, products: int | None = None) -> dict:
    """Build and measure on SQLite and (when a server can be started)
    PostgreSQL. Flat figures, prefixed inbox_sqlite_* / inbox_postgresql_*."""
    products = products or (QUICK_PRODUCTS if quick else FULL_PRODUCTS)
    per_level, rounds = (8, 1) if quick else (20, 2)
    results: dict = {"inbox_products_target": products, "inbox_target_median_ms": TARGET_MS,
                     "inbox_quick": quick}
    with tempfile.TemporaryDirectory(prefix="ocop-bench-inbox-") as tmp:
        figures = bench_backend(f"sqlite:///{tmp}/inbox.db", products, per_level, rounds)
        results.update({f"inbox_sqlite_{key}": value for key, value in figures.items()})
    if postgres:
        from testkit import pgserver
        reason = pgserver.available()
        if reason:
            results["inbox_postgresql_skipped"] = reason
        else:
            with pgserver.PostgresServer() as server:
                url = server.create_database("ocop_bench_inbox")
                figures = bench_backend(url, products, per_level, rounds)
                results.update({f"inbox_postgresql_{key}": value for key, value in figures.items()})
    # The target holds per role: the slowest role's median decides.
    for backend in ("sqlite", "postgresql"):
        for what in ("page", "api", "counts"):
            prefix = f"inbox_{backend}_{what}_"
            medians = {key[len(prefix):-len("_median_ms")]: value for key, value in results.items()
                       if key.startswith(prefix) and key.endswith("_median_ms") and "_overall_" not in key
                       and not key[len(prefix):].startswith("cpu_")}  # page_cpu: a figure of its own
            if medians:
                slowest = max(medians, key=medians.get)
                results[f"{prefix}slowest_role"] = slowest
                results[f"{prefix}meets_target"] = medians[slowest] < TARGET_MS
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PRODUCTS:,} products instead of "
                                                             f"{FULL_PRODUCTS:,}, fewer officers sampled")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--products", type=int, help="products in flight (overrides --quick's count)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.quick, postgres=not args.no_postgres, products=args.products), indent=2,
                     ensure_ascii=False))


if __name__ == "__main__":
    main()
