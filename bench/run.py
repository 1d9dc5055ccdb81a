"""Benchmarks, one command: the raw in-memory SpiffWorkflow run of the
OCOP cycle against the same cycle through engine/ with persistence (SQLite,
PostgreSQL) and through HTTP (gunicorn; bench/http_bench.py), per completed
user task; HTTP throughput on PostgreSQL; a web worker's memory over 10,000
completions (bench/memory.py); the inbox with 100,000 products in flight
(bench/inbox.py); the bytes a finished instance stores.

    .venv/bin/python bench/run.py [--quick] [--rounds N] [--no-postgres]
                                  [--only engine,http,memory,inbox]

Writes bench/results.json (one named key per figure; the parts not run keep
their previous figures). Not a test: numbers depend on the machine and on
what else runs on it; the targets are checked and printed, not asserted.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment  # noqa: E402
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

from demo.seed import run_outreach, seed_areas_and_people  # noqa: E402
from engine import clock, diagram  # noqa: E402
from engine.bpmn_engine import BpmnEngine  # noqa: E402
from engine.clock import MovableClock  # noqa: E402
from engine.driver import Driver  # noqa: E402
from engine.expressions import FUNCTIONS  # noqa: E402
from engine.forms import validate_form  # noqa: E402
from engine.samples import SampleDecider  # noqa: E402
from handlers.ranking import council_average, recognised_stars, stars_for_score  # noqa: E402
from programme.definitions import NATIONAL_DIAGRAM, deploy_bundled  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import AuditEvent, ProcessInstance, Product  # noqa: E402
from testkit.cycle import VALID, returned, sheets  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"
START = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)  # the registration window's first day
ROUND_PASSED = datetime(2026, 11, 1, 8, tzinfo=timezone.utc)  # after the 30/10 provincial round


def decisions(returns: int = 0):
    """Form data per form key for a 5-star run, with `returns` idea returns first."""
    pending = {"review_idea": returns}
    council = iter([sheets(92), sheets(93), sheets(95)])

    def answer(form_key: str) -> dict:
        if pending.get(form_key):
            pending[form_key] -= 1
            return returned(form_key)
        if form_key == "score_product":
            return next(council)
        return VALID[form_key]
    return answer


# --- raw SpiffWorkflow ------------------------------------------------------

class RawScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's own eval-based engine with the diagrams' date
    functions; services answered in memory."""

    def __init__(self):
        super().__init__(environment=TaskDataEnvironment(dict(FUNCTIONS)))

    def call_service(self, task, operation_name=None, operation_params=None, **kwargs):
        params = {k: v["value"] for k, v in (operation_params or {}).items()}
        if operation_name == "rank_product":
            average = council_average(params["sheets"])
            stars = stars_for_score(average)
            return json.dumps({"average": average, "stars": stars,
                               "recognised_stars": recognised_stars(stars, params["max_stars"])})
        return json.dumps({"ok": True})


def raw_cycle(spec, subprocess_specs) -> tuple[float, int]:
    """(seconds spent in SpiffWorkflow, user tasks completed) for one cycle.
    The provincial round's timer is fired by moving the clock past it, not
    timed (as in the engine path)."""
    started = time.perf_counter()
    with clock.running_at(START):
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=RawScriptEngine())
        start_data = {"product_group": "S10", "max_resubmissions": 3, "year": 2026}
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(start_data)
        workflow.do_engine_steps()
    spent = time.perf_counter() - started
    answer, completed = decisions(), 0
    while not workflow.is_completed():
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if not ready:  # waiting for the round
            with clock.running_at(ROUND_PASSED):
                workflow.refresh_waiting_tasks()
                workflow.do_engine_steps()
            continue
        task = ready[0]
        props = diagram.user_task_properties(task.task_spec)
        # The form as the engine would store it (defaults filled in); not timed.
        form = validate_form(props["formKey"], answer(props["formKey"]))
        started = time.perf_counter()
        task.data[props["dataKey"]] = form
        with clock.running_at(START):
            task.run()
            workflow.do_engine_steps()
        spent += time.perf_counter() - started
        completed += 1
    return spent, completed


def product_spec():
    checked = diagram.check_or_raise(NATIONAL_DIAGRAM[1].read_bytes())
    return checked.specs[diagram.PRODUCT_PROCESS]


# --- through engine/ with persistence --------------------------------------

def prepared_engine(url: str) -> BpmnEngine:
    database = Database(url)
    upgrade(database.sql_engine)
    engine = BpmnEngine(database, clock=MovableClock(START))
    seed_areas_and_people(engine)
    deploy_bundled(engine)
    run_outreach(engine, Driver(engine, SampleDecider(random.Random(0), accept_rate=1.0)))
    return engine


def new_product(engine: BpmnEngine, like_product_id: int) -> int:
    """A new product of the same producer and group: a product enters the
    cycle once a year, so every measured cycle needs its own."""
    with engine.db.transaction() as session:
        like = session.get(Product, like_product_id)
        product = Product(producer_id=like.producer_id, group_code=like.group_code,
                          name=f"{like.name} (bench {session.query(Product).count() + 1})")
        session.add(product)
        session.flush()
        return product.id


def engine_cycle(engine: BpmnEngine, driver: Driver, like_product_id: int, owner, returns: int = 0):
    """One whole cycle of a new product like `like_product_id`, starting on the
    registration window's first day (the round wait moves the clock on).
    Returns (seconds spent in engine calls, tasks completed, instance id)."""
    engine.clock.now = START
    product_id = new_product(engine, like_product_id)
    answer = decisions(returns)
    started = time.perf_counter()
    instance_id = engine.start_product(product_id, owner).instance_id
    spent, completed = time.perf_counter() - started, 0
    while True:
        tasks = engine.ready_tasks(instance_id)
        if not tasks and driver.wait_for_timer(instance_id):  # the provincial round: not timed
            continue
        if not tasks:
            return spent, completed, instance_id
        task, actor = tasks[0], driver.actor_for(tasks[0])
        data = answer(task.form_key)
        started = time.perf_counter()
        engine.complete_task(task.id, data, actor)
        spent += time.perf_counter() - started
        completed += 1


def bench_paired(url: str, rounds: int) -> dict:
    """Per-task times of the raw run and the engine path, one cycle of each in
    turn: both see the same machine at the same moment (a virtual machine's
    speed drifts by half from one minute to the next), and each round gives
    one ratio. Medians of the rounds; the ratio is the median of the rounds'
    ratios."""
    from bench.workload import percentile  # imports this module: not at the top
    from engine.access import load_actor
    spec, subprocess_specs = product_spec()
    engine = prepared_engine(url)
    driver = Driver(engine)
    with engine.db.transaction() as session:
        product = session.query(Product).filter_by(name="Hồ tiêu Gio Linh").one()
        product_id, owner = product.id, load_actor(session, product.producer.owner_user_id)
    raw_cycle(spec, subprocess_specs)  # warm up caches
    engine_cycle(engine, driver, product_id, owner)
    raw, ours, ratios = [], [], []
    for _ in range(rounds):
        spent, tasks = raw_cycle(spec, subprocess_specs)
        raw.append(spent / tasks)
        spent, tasks, _instance_id = engine_cycle(engine, driver, product_id, owner)
        ours.append(spent / tasks)
        ratios.append(ours[-1] / raw[-1])
    sizes = {}
    for returns in (0, 1, 2, 3):
        _, _, instance_id = engine_cycle(engine, driver, product_id, owner, returns)
        sizes[returns] = stored_bytes(engine, instance_id)
    engine.db.dispose()
    return {"raw_ms_per_task": statistics.median(raw) * 1000, "ms_per_task": statistics.median(ours) * 1000,
            "ratio": statistics.median(ratios), "ratio_p90": percentile(ratios, 90),
            "tasks_per_cycle": tasks, "stored_bytes": sizes}


def stored_bytes(engine: BpmnEngine, instance_id: int) -> dict:
    with engine.db.transaction() as session:
        instance = session.get(ProcessInstance, instance_id)
        events = session.query(AuditEvent).filter_by(instance_id=instance_id).all()
        history = sum(len(json.dumps(e.data, ensure_ascii=False).encode()) + 200 for e in events)
        return {"state": len(instance.state.encode()), "history_estimate": history}


PARTS = ("engine", "http", "memory", "inbox")


def engine_figures(rounds: int, postgres: bool) -> dict:
    results: dict = {"rounds": rounds}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = bench_paired(f"sqlite:///{tmp}/bench.db", rounds)
    results["raw_ms_per_task"] = round(sqlite["raw_ms_per_task"], 3)
    results["tasks_per_cycle"] = sqlite["tasks_per_cycle"]
    results["sqlite_engine_ms_per_task"] = round(sqlite["ms_per_task"], 3)
    results["sqlite_ratio_to_raw"] = round(sqlite["ratio"], 2)
    results["sqlite_ratio_to_raw_p90"] = round(sqlite["ratio_p90"], 2)
    for returns, size in sqlite["stored_bytes"].items():
        results[f"state_bytes_finished_{returns}_returns"] = size["state"]
        results[f"history_bytes_finished_{returns}_returns"] = size["history_estimate"]
    if postgres:
        from testkit.pgserver import PostgresServer, available
        reason = available()
        if reason:
            results["postgresql_skipped"] = reason
        else:
            with PostgresServer() as server:
                pg = bench_paired(server.create_database("bench"), rounds)
            results["postgresql_raw_ms_per_task"] = round(pg["raw_ms_per_task"], 3)
            results["postgresql_engine_ms_per_task"] = round(pg["ms_per_task"], 3)
            results["postgresql_ratio_to_raw"] = round(pg["ratio"], 2)
    results["target_sqlite_ratio_max"] = 3.0
    results["target_state_bytes_max"] = 64 * 1024
    results["sqlite_ratio_target_met"] = results["sqlite_ratio_to_raw"] <= 3.0
    results["state_size_target_met"] = results["state_bytes_finished_0_returns"] <= 64 * 1024
    return results


def ratios(results: dict) -> dict:
    """The three paths per completed task, against the raw engine, from the
    figures at hand (measured in this run when all parts ran)."""
    raw = results.get("raw_ms_per_task")
    out = {}
    for name, key in (("http_api_sqlite", "http_ms_per_task_sqlite_mean"),
                      ("http_api_postgresql", "http_ms_per_task_postgresql_mean")):
        if raw and results.get(key):
            out[f"{name}_ratio_to_raw"] = round(results[key] / raw, 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="raw and engine-path cycles per database")
    parser.add_argument("--quick", action="store_true", help="smaller HTTP, memory and inbox runs")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    args = parser.parse_args()
    parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")

    results: dict = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results.update({"machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}",
                    "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "parts_measured": parts, "quick": args.quick})
    postgres = not args.no_postgres
    if "engine" in parts:
        results.update(engine_figures(args.rounds, postgres))
    if "http" in parts:
        from bench import http_bench
        results.update(http_bench.run(quick=args.quick, postgres=postgres))
    if "memory" in parts:
        from bench import memory
        results.update(memory.run(quick=args.quick))
    if "inbox" in parts:
        from bench import inbox
        results.update(inbox.run(quick=args.quick, postgres=postgres))
    results.update(ratios(results))
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
