"""Instructions per completed task, counted by valgrind (callgrind): unlike
seconds, the count does not drift with the virtual machine's speed, so two
checkouts measured an hour apart compare to within a fraction of a percent.

    .venv/bin/python bench/instructions.py [--parts engine,api,form]

Each part runs in a child process under callgrind twice, doing SMALL and
then LARGE units of work after the same setup; the difference divided by
LARGE - SMALL is the cost of one unit:
- engine: one whole product cycle through BpmnEngine (bench/run.py's
  engine_cycle, 11 user tasks), on SQLite;
- api: one task completed through POST /api/v1/tasks/<id>/complete (the
  Flask test client, bearer token), on SQLite;
- form: one task completed through the task page's form post (session
  cookie and CSRF token), on SQLite.
Writes bench/instructions.json. To compare with another revision, run this
file in a checkout of it (it uses only bench/run.py and bench/workload.py,
which older revisions have too). Needs valgrind (Debian's package); not a
test: the figures are read, not asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "instructions.json"
# Units of work per run: the first run's count is subtracted from the second's.
SIZES = {"engine": (1, 11), "api": (10, 60), "form": (10, 60)}
TASKS_PER_CYCLE = 11


def measure(part: str, units: int) -> int:
    """Instructions of one child process doing `units` units of `part`."""
    with tempfile.TemporaryDirectory(prefix="ocop-instructions-") as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out",
             sys.executable, __file__, "--child", part, str(units)],
            cwd=ROOT, capture_output=True, text=True, timeout=3600)
        found = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode != 0 or found is None:
            raise RuntimeError(f"{part} x{units} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return int(found.group(1))


def child(part: str, units: int) -> None:
    """The measured work (run under callgrind by measure())."""
    sys.path.insert(0, str(ROOT))
    os.environ["OCOP_RATELIMIT"] = "0"
    url = f"sqlite:///{tempfile.mkdtemp(prefix='ocop-instructions-db-')}/bench.db"
    if part == "engine":
        _engine_cycles(url, units)
    else:
        _completions(url, part, units)


def _engine_cycles(url: str, cycles: int) -> None:
    from sqlalchemy import select

    from bench.run import engine_cycle, prepared_engine
    from engine.access import load_actor
    from engine.driver import Driver
    from engine.samples import SampleDecider
    from storage.models import Product
    engine = prepared_engine(url)
    driver = Driver(engine, SampleDecider(random.Random(0), accept_rate=1.0))
    with engine.db.transaction() as session:
        like = session.scalar(select(Product).where(Product.name == "Hồ tiêu Gio Linh"))
        like_id, owner = like.id, load_actor(session, like.producer.owner_user_id)
    for _ in range(cycles):
        engine_cycle(engine, driver, like_id, owner)


def _completions(url: str, mode: str, count: int) -> None:
    from werkzeug.datastructures import MultiDict

    from bench.workload import form_pairs, inbox_ready, prepare, staged_first
    from web.app import create_app
    prepared = prepare(url, 60, stages=staged_first(60))
    app = create_app(database_url=url)
    api = app.test_client()
    cases = prepared.take(40)
    browsers: dict[int, tuple] = {}
    for user in prepared.usernames:  # every sign-in before the measured work
        client = app.test_client()
        token = _csrf(client)
        reply = client.post("/login", data={"username": prepared.usernames[user], "password": "ocop-demo",
                                            "csrf_token": token})
        assert reply.status_code == 302, reply.status_code
        browsers[user] = (client, _csrf(client))
    done = position = 0
    while done < count:
        case = cases[position % len(cases)]
        position += 1
        task = case.next_task()
        if task is None:
            continue
        user, data = prepared.user_for(case, task), case.data_for(task)
        if mode == "api":
            reply = api.post(f"/api/v1/tasks/{task['id']}/complete", json=data,
                             headers={"Authorization": f"Bearer {prepared.tokens[user]}"})
            assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
            body = reply.get_json()
            case.advance(task, body["ready_tasks"], body["status"])
        else:
            client, token = browsers[user]
            reply = client.post(f"/inbox/tasks/{task['id']}",
                                data=MultiDict(form_pairs(task["form_key"], data) + [("csrf_token", token)]))
            assert reply.status_code == 302, reply.status_code
            case.advance(task, inbox_ready(prepared.engine, case.instance_id))
        done += 1


def _csrf(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(SIZES), help=f"comma-separated parts of {', '.join(SIZES)}")
    parser.add_argument("--child", nargs=2, metavar=("PART", "UNITS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is missing: apt-get install valgrind", file=sys.stderr)
        return 2
    parts = [part for part in args.parts.split(",") if part]
    runs = [(part, units) for part in parts for units in SIZES[part]]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # callgrind counts, whatever the load
        counts = dict(zip(runs, pool.map(lambda run: measure(*run), runs)))
    results = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "revision": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                          capture_output=True, text=True).stdout.strip()}
    for part in parts:
        small, large = SIZES[part]
        per_unit = (counts[(part, large)] - counts[(part, small)]) / (large - small)
        per_task = per_unit / TASKS_PER_CYCLE if part == "engine" else per_unit
        results[f"{part}_instructions_per_task"] = round(per_task)
        results[f"{part}_setup_instructions"] = counts[(part, small)]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
