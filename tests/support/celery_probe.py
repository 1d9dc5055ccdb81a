"""The probe jobs of tests/test_celery.py and the tables they work on.
Registered as jobs only in the Celery workers (tests/support/celery_jobs.py), so
that the test process's own job registry stays as the application has it.

`probe` works through the pending rows of `probe_item` the way a real job
works through due timers or outbox rows: each row is claimed by a
conditional UPDATE inside its own transaction, and the row's effect is
written in that same transaction, so a second run, a run beside it on
another worker, or a run killed before its commit never doubles an effect.
Every run is logged in `probe_run` (committed before the work starts), so
the tests see how often a job was delivered.

Test hooks (environment of the worker):
  OCOP_PROBE_DIR         while DIR/hold exists, the job writes DIR/inside-<pid>
                         inside a claimed item's transaction and waits there
                         (so that a test can kill the worker mid-transaction)
  OCOP_PROBE_ITEM_DELAY  seconds to sleep inside each item's transaction and
                         again after its commit (so that two workers
                         interleave over the same rows)
"""
from __future__ import annotations

import os
import time

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update

from engine.bpmn_engine import BpmnEngine

metadata = MetaData()
probe_item = Table("probe_item", metadata,
                   Column("id", Integer, primary_key=True),
                   Column("claimed_by", String(64), nullable=True))
probe_effect = Table("probe_effect", metadata,
                     Column("id", Integer, primary_key=True, autoincrement=True),
                     Column("item_id", Integer, nullable=False),
                     Column("worker_pid", Integer, nullable=False))
probe_run = Table("probe_run", metadata,
                  Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("job", String(32), nullable=False),
                  Column("worker_pid", Integer, nullable=False))

HOLD_WAIT_LIMIT = 60  # seconds; a test that forgets its hold file still ends


def create_tables(sqlalchemy_engine, items: int = 0) -> None:
    metadata.create_all(sqlalchemy_engine)
    if items:
        with sqlalchemy_engine.begin() as connection:
            connection.execute(insert(probe_item), [{"id": i} for i in range(1, items + 1)])


def counts(sqlalchemy_engine) -> dict:
    """What the probe jobs did: runs, effects, and effects per item."""
    with sqlalchemy_engine.connect() as connection:
        per_item = dict(connection.execute(
            select(probe_effect.c.item_id, func.count()).group_by(probe_effect.c.item_id)).all())
        return {
            "runs": connection.execute(select(func.count()).select_from(probe_run)).scalar_one(),
            "runs_by_job": dict(connection.execute(
                select(probe_run.c.job, func.count()).group_by(probe_run.c.job)).all()),
            "run_pids": set(connection.execute(select(probe_run.c.worker_pid)).scalars()),
            "effects": sum(per_item.values()),
            "effects_per_item": per_item,
            "effect_pids": set(connection.execute(select(probe_effect.c.worker_pid)).scalars()),
            "unclaimed": connection.execute(select(func.count()).select_from(probe_item)
                                            .where(probe_item.c.claimed_by.is_(None))).scalar_one(),
        }


def _log_run(engine: BpmnEngine, name: str) -> None:
    with engine.db.transaction() as session:
        session.execute(insert(probe_run).values(job=name, worker_pid=os.getpid()))


def _hold_inside_transaction() -> None:
    directory = os.environ.get("OCOP_PROBE_DIR")
    if not directory or not os.path.exists(os.path.join(directory, "hold")):
        return
    with open(os.path.join(directory, f"inside-{os.getpid()}"), "w") as marker:
        marker.write(str(os.getpid()))
    deadline = time.monotonic() + HOLD_WAIT_LIMIT
    while os.path.exists(os.path.join(directory, "hold")) and time.monotonic() < deadline:
        time.sleep(0.05)


def probe(engine: BpmnEngine) -> int:
    _log_run(engine, "probe")
    with engine.db.transaction() as session:
        pending = list(session.execute(select(probe_item.c.id).where(probe_item.c.claimed_by.is_(None))
                                       .order_by(probe_item.c.id)).scalars())
    delay = float(os.environ.get("OCOP_PROBE_ITEM_DELAY", "0"))
    done = 0
    for item_id in pending:
        with engine.db.transaction() as session:
            # The claim is the first statement of the transaction: on SQLite
            # it then waits for the write lock instead of failing on a stale
            # read snapshot, and on PostgreSQL the loser of a race re-checks
            # the WHERE clause after the winner commits and updates nothing.
            claimed = session.execute(update(probe_item)
                                      .where(probe_item.c.id == item_id, probe_item.c.claimed_by.is_(None))
                                      .values(claimed_by=str(os.getpid()))).rowcount
            if not claimed:
                continue  # another run has it
            session.execute(insert(probe_effect).values(item_id=item_id, worker_pid=os.getpid()))
            done += 1
            _hold_inside_transaction()
            time.sleep(delay)
        # As after a real claim, some work follows the commit (the delivery of
        # an outbox row, say); meanwhile the other run gets the next row.
        time.sleep(delay)
    return done


def probe_tick(engine: BpmnEngine) -> int:
    _log_run(engine, "probe_tick")
    return 1
