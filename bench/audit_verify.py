"""Benchmark: verifying the record at scale.

Builds a database of N finished product cycles (default 10,000) on SQLite
and on PostgreSQL, then measures `ocop audit verify --all` (every hash
chain checked and every instance replayed through the engine), chains
alone, and a signed checkpoint with its verification.

    .venv/bin/python bench/audit_verify.py [--instances N] [--distinct D] [--jobs J] [--no-postgres]

The instances: D products are run through the real engine with seeded
random decisions (returns, not recognised, 3 to 5 stars), then their
finished histories are copied onto new products until N instances exist;
each copy gets its own instance id, so its chain is hashed anew and its
replay is real work. Writes bench/audit_results.json. Not a test: the
target (10,000 instances verified within a minute on 2 cores) is checked
and printed, not asserted. Wall time depends on what else the machine
runs; the CPU seconds of the verification and its worker processes, and
instances per CPU second, do not (as much), so both are written, with the
load average at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from audit import checkpoints, verification  # noqa: E402
from bench.run import prepared_engine  # noqa: E402
from demo.simulate import simulate  # noqa: E402
from engine.bpmn_engine import BpmnEngine  # noqa: E402
from engine.events import GENESIS, event_hash  # noqa: E402
from storage.db import as_utc  # noqa: E402
from storage.models import AuditEvent, ProcessInstance, Product  # noqa: E402

RESULTS = ROOT / "bench" / "audit_results.json"
TARGET_SECONDS = 60  # issue 14: 10,000 instances in under a minute on 2 cores


def build(url: str, instances: int, distinct: int) -> BpmnEngine:
    engine = prepared_engine(url)
    simulate(engine, distinct, seed=1)
    with engine.db.transaction() as session:
        finished = list(session.scalars(select(ProcessInstance).where(
            ProcessInstance.process_id == "ocop_product_cycle", ProcessInstance.status == "completed")
            .order_by(ProcessInstance.id)))
        sources = [(instance, list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id)
                                                   .order_by(AuditEvent.seq))), session.get(Product, instance.product_id))
                   for instance in finished]
        have = session.scalar(select(func.count()).select_from(ProcessInstance)
                              .where(ProcessInstance.process_id == "ocop_product_cycle"))
        next_instance = session.scalar(select(func.max(ProcessInstance.id))) + 1
        next_product = session.scalar(select(func.max(Product.id))) + 1
    copies, batch = instances - have, []
    for n in range(max(copies, 0)):
        instance, events, product = sources[n % len(sources)]
        batch.append(_copy(instance, events, product, next_instance + n, next_product + n))
        if len(batch) == 250 or n == copies - 1:
            _insert(engine, batch)
            batch = []
    if engine.db.sql_engine.dialect.name == "postgresql":
        with engine.db.transaction() as session:
            for table in ("process_instance", "product", "audit_event"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))
    return engine


def _copy(instance, events, product, instance_id: int, product_id: int):
    product_row = {"id": product_id, "producer_id": product.producer_id, "name": f"{product.name} #{product_id}",
                   "group_code": product.group_code, "created_at": product.created_at}
    columns = ProcessInstance.__table__.columns.keys()
    # The copy is of another product: its history and stored state name it, as the engine would have
    # (verification compares the row and the product with the history, and the state with the replay).
    renamed = {"product_id": product_id, "product_name": product_row["name"]}
    instance_row = {c: getattr(instance, c) for c in columns} | {
        "id": instance_id, "product_id": product_id, "state": json.dumps(_renamed(json.loads(instance.state), renamed))}
    prev, rows = GENESIS, []
    for event in events:
        data = _renamed(event.data, renamed)
        digest = event_hash(prev, instance_id, event.seq, as_utc(event.at), event.actor_id, event.kind,
                            event.element_id, data)
        rows.append({"instance_id": instance_id, "seq": event.seq, "at": event.at, "actor_id": event.actor_id,
                     "kind": event.kind, "element_id": event.element_id, "data": data, "prev_hash": prev,
                     "hash": digest})
        prev = digest
    instance_row["audit_head"] = prev
    return product_row, instance_row, rows


def _renamed(value, names: dict):
    """`value` with every dict's keys of `names` (wherever the key is set) given the new values."""
    if isinstance(value, dict):
        return {k: names[k] if k in names and v is not None else _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value


def _insert(engine: BpmnEngine, batch) -> None:
    with engine.db.transaction() as session:
        connection = session.connection()
        connection.execute(insert(Product.__table__), [b[0] for b in batch])
        connection.execute(insert(ProcessInstance.__table__), [b[1] for b in batch])
        connection.execute(insert(AuditEvent.__table__), [row for b in batch for row in b[2]])


def measure(url: str, instances: int, distinct: int, jobs: int) -> dict:
    started = time.perf_counter()
    engine = build(url, instances, distinct)
    figures = {"build_seconds": round(time.perf_counter() - started, 1)}
    chains = verification.verify(engine, replay_too=False, jobs=1)
    figures.update(instances=chains.instances, events=chains.events,
                   chains_seconds=round(chains.seconds, 2),
                   chains_per_second=round(chains.instances / chains.seconds))
    for workers in sorted({1, jobs}):
        cpu_before = _cpu_seconds()
        report = verification.verify(engine, jobs=workers)
        if not report.ok:
            raise SystemExit(f"verification failed: {report.problems[:3]}")
        figures[f"verify_all_seconds_{workers}_jobs"] = round(report.seconds, 2)
        figures[f"verify_all_per_second_{workers}_jobs"] = round(report.instances / report.seconds)
        figures[f"verify_all_events_per_second_{workers}_jobs"] = round(report.events / report.seconds)
        # CPU time of this process and its workers: what the work costs, whatever else the machine runs.
        cpu = _cpu_seconds() - cpu_before
        figures[f"verify_all_cpu_seconds_{workers}_jobs"] = round(cpu, 2)
        figures[f"verify_all_per_cpu_second_{workers}_jobs"] = round(report.instances / cpu)
    if jobs > 1:
        figures[f"speedup_{jobs}_jobs"] = round(figures["verify_all_seconds_1_jobs"]
                                                / figures[f"verify_all_seconds_{jobs}_jobs"], 2)
    figures["load_average_after"] = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "key.pem"
        checkpoints.create_key(key_file)
        key = checkpoints.load_private_key(key_file)
        started = time.perf_counter()
        with engine.db.transaction() as session:
            document = checkpoints.as_file(checkpoints.issue(session, key, engine.clock()))
        figures["checkpoint_issue_seconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        with engine.db.transaction() as session:
            assert checkpoints.verify_document(session, document, key.public_key()).ok
        figures["checkpoint_verify_seconds"] = round(time.perf_counter() - started, 2)
    engine.db.dispose()
    return figures


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished worker processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def history_page(url: str, rounds: int = 30) -> dict:
    """Server time of the auditor's history page (and its frames) for one
    instance of about 100 events: three returns at each review step."""
    from testkit.cycle import Cycle, returned, sheets
    from testkit.web_login import login
    from web.app import create_app
    engine = prepared_engine(url)
    cycle = Cycle(engine, "Hồ tiêu Gio Linh").start()
    for review, before in (("review_idea", ("register_idea", "receive_idea")), ("review_plan", ("submit_plan",)),
                           ("check_dossier", ("support_record", "submit_dossier"))):
        for decision in (returned(review),) * 3 + (None,):
            for form_key in before:
                if form_key in cycle.ready_forms():
                    cycle.do(form_key)
            cycle.do(review, decision)
    cycle.do("score_product", sheets(60))
    instance = cycle.instance()
    app = create_app(url, testing=True, overrides={"RATELIMIT_ENABLED": False})
    client = app.test_client()
    login(client, "kiemtoan")
    figures = {"history_events": instance.audit_seq}
    for name, path in (("history_page", f"/audit/instances/{instance.id}"),
                       ("history_frames", f"/audit/instances/{instance.id}/frames.json")):
        assert client.get(path).status_code == 200, path
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - started)
        figures[f"{name}_ms_median"] = round(statistics.median(times) * 1000, 1)
    engine.db.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-history-page", action="store_true", help="Skip the auditor's history page figures.")
    args = parser.parse_args()
    results: dict = {"machine": f"{platform.node()} {platform.machine()} python {platform.python_version()}, "
                                f"{os.cpu_count()} CPUs",
                     "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "target_verify_all_seconds_max": TARGET_SECONDS}
    if not args.no_history_page:
        with tempfile.TemporaryDirectory() as tmp:
            results["history_page_sqlite"] = history_page(f"sqlite:///{tmp}/history.db")
            print(json.dumps(results["history_page_sqlite"], indent=2), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{tmp}/audit.db", args.instances, args.distinct, args.jobs)
        print(json.dumps(results["sqlite"], indent=2), flush=True)
    if not args.no_postgres:
        from testkit.pgserver import PostgresServer, available
        reason = available()
        if reason:
            results["postgresql_skipped"] = reason
        else:
            with PostgresServer() as server:
                results["postgresql"] = measure(server.create_database("audit"), args.instances, args.distinct,
                                                args.jobs)
    for backend in ("sqlite", "postgresql"):
        if backend in results:
            seconds = results[backend][f"verify_all_seconds_{args.jobs}_jobs"]
            results[f"{backend}_target_met"] = seconds <= TARGET_SECONDS * results[backend]["instances"] / 10_000
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
