"""Verifying the record: every instance's hash chain, its row against the
history (audit/instance_row.py) and its replay.

`verify` checks instances in batches (one query for a batch's instances,
one for their events) and, with `jobs` > 1, in worker processes that each
open their own database connection: the replay is CPU work, so threads
would not help. `ocop audit verify` and the auditor's verify button use it.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.chain import read_events, verify_chain
from audit.instance_row import check_row, read_rows
from engine import replay
from engine.bpmn_engine import BpmnEngine
from engine.events import EVENT_MISSING, Finding
from storage.db import Database
from storage.models import ProcessInstance

BATCH_SIZE = 50  # small enough that the last batches leave no worker idle for long


@dataclass
class Report:
    instances: int = 0
    events: int = 0
    problems: list[Finding] = field(default_factory=list)
    # What the history cannot prove (older histories): said, but not a failure.
    unproven: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def failed_instances(self) -> list[int]:
        return sorted({p.instance_id for p in self.problems if p.instance_id is not None})

    def add(self, other: "Report") -> None:
        self.instances += other.instances
        self.events += other.events
        self.problems.extend(other.problems)
        self.unproven.extend(other.unproven)


def verify_batch(engine: BpmnEngine, session: Session, instance_ids: list[int], replay_too: bool = True) -> Report:
    """Chain and replay of some instances, read in two queries."""
    report = Report()
    instances = {i.id: i for i in session.scalars(select(ProcessInstance).where(ProcessInstance.id.in_(instance_ids)))}
    rows_to_check = read_rows(session, instance_ids)
    events = read_events(session, instance_ids)
    for instance_id in instance_ids:
        instance = instances.get(instance_id)
        if instance is None:
            report.problems.append(Finding(instance_id, None, EVENT_MISSING, "no such instance"))
            continue
        rows = events.get(instance_id, [])
        report.instances += 1
        report.events += len(rows)
        chain_problems = verify_chain(session, instance_id, rows, head=(instance.audit_seq, instance.audit_head))
        report.problems.extend(chain_problems)
        if not chain_problems:  # a row compared with a broken history would only echo the break
            problems, unproven = check_row(rows_to_check[instance_id], rows)
            report.problems.extend(problems)
            report.unproven.extend(unproven)
        if replay_too:
            report.problems.extend(replay.replay_instance(engine, session, instance, rows))
    return report


def verify_instance(engine: BpmnEngine, instance_id: int) -> Report:
    started = time.perf_counter()
    with engine.db.transaction() as session:
        report = verify_batch(engine, session, [instance_id])
    report.seconds = time.perf_counter() - started
    return report


def all_instance_ids(engine: BpmnEngine) -> list[int]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(ProcessInstance.id).order_by(ProcessInstance.id)))


def verify(engine: BpmnEngine, instance_ids: list[int] | None = None, replay_too: bool = True, jobs: int = 1,
           progress=None) -> Report:
    """Verify the given instances (all when None); `progress(n)` is called
    as batches finish."""
    started = time.perf_counter()
    ids = all_instance_ids(engine) if instance_ids is None else list(instance_ids)
    batches = [ids[i:i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]
    report = Report()
    url = engine.db.sql_engine.url
    if jobs > 1 and len(batches) > 1 and url.database not in (None, "", ":memory:"):
        # Spawned, not forked: a forked child would share the parent's open
        # database connections.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker,
                                 initargs=(url.render_as_string(hide_password=False),)) as pool:
            futures = {pool.submit(_verify_in_worker, batch, replay_too): len(batch) for batch in batches}
            for future in as_completed(futures):
                report.add(future.result())
                if progress:
                    progress(futures[future])
    else:
        for batch in batches:
            with engine.db.transaction() as session:
                report.add(verify_batch(engine, session, batch, replay_too))
            if progress:
                progress(len(batch))
    report.problems.sort(key=lambda p: (p.instance_id or 0, p.seq or 0))
    report.seconds = time.perf_counter() - started
    return report


_worker_engine: BpmnEngine | None = None


def _start_worker(database_url: str) -> None:
    global _worker_engine
    _worker_engine = BpmnEngine(Database(database_url))


def _verify_in_worker(batch: list[int], replay_too: bool) -> Report:
    with _worker_engine.db.transaction() as session:
        return verify_batch(_worker_engine, session, batch, replay_too)
