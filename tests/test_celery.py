"""The jobs on Celery for real: a private redis-server (testkit/redisserver.py),
`celery worker` and `celery beat` as subprocesses on the test database, and
the test-only probe jobs of tests/support/celery_probe.py (loaded by the workers
through OCOP_EXTRA_JOB_MODULES).

Shown here: a job sent through the broker runs against the database; two
workers on the same jobs do each effect once; a worker killed inside a job's
transaction loses nothing and doubles nothing (the job is delivered again:
a dead pool process's job at once, a dead worker's job after the visibility
timeout, to a new worker); beat sends the registered jobs on their schedule.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from audit import verification
from background import celery_app, jobs
from storage.db import make_sql_engine
from storage.models import AuditEvent, TimerDue
from testkit.cycle import Cycle
from tests.support import celery_probe

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60  # seconds for a worker to start (imports SpiffWorkflow, connects to Redis)
JOB_TIMEOUT = 30

_redis_databases = itertools.cycle(range(1, 16))


def wait_until(predicate, timeout: float, what: str, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n"
                         + "\n".join(process.log_tail() for process in logs))


class CeleryProcess:
    """`celery -A background.celery_app ...` in its own process group, logging to a file."""

    def __init__(self, argv: list[str], env: dict, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "background.celery_app", *argv],
                                        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.log_path.name} ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self) -> "CeleryProcess":
        wait_until(lambda: " ready." in self.log() or self.process.poll() is not None,
                   START_TIMEOUT, f"{self.log_path.name} to start", [self])
        assert self.process.poll() is None, f"celery exited early\n{self.log_tail()}"
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no acknowledgement."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self._log.close()


@pytest.fixture
def broker_url(redis_url):
    """A Redis database of its own per test, so no message outlives its test."""
    return redis_url.rsplit("/", 1)[0] + f"/{next(_redis_databases)}"


@pytest.fixture
def probe_db(db_url):
    database = make_sql_engine(db_url)
    celery_probe.create_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def celery(broker_url, db_url, tmp_path, monkeypatch):
    """Start workers and beat on the test's database and broker; send jobs.
    Every process started is stopped at teardown."""
    started: list[CeleryProcess] = []
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    monkeypatch.setenv("OCOP_BROKER_URL", broker_url)
    monkeypatch.delenv("OCOP_EXTRA_JOB_MODULES", raising=False)
    sender = celery_app.make_app()

    class Control:
        processes = started
        hold_file = probe_dir / "hold"

        @staticmethod
        def env(**extra) -> dict:
            return {**os.environ, "PYTHONPATH": str(REPO), "OCOP_BROKER_URL": broker_url,
                    "OCOP_DATABASE_URL": db_url, "OCOP_EXTRA_JOB_MODULES": "tests.support.celery_jobs",
                    "OCOP_PROBE_DIR": str(probe_dir), **extra}

        @staticmethod
        def worker(name: str, pool: str = "solo", concurrency: int = 1, **extra_env) -> CeleryProcess:
            process = CeleryProcess(["worker", f"--pool={pool}", f"--concurrency={concurrency}",
                                     "-n", f"{name}@localhost", "--loglevel=INFO",
                                     "--without-heartbeat", "--without-gossip", "--without-mingle"],
                                    Control.env(**extra_env), tmp_path / f"{name}.log")
            started.append(process)
            return process.wait_ready()

        @staticmethod
        def beat() -> CeleryProcess:
            process = CeleryProcess(["beat", "--loglevel=INFO", "-s", str(tmp_path / "beat-schedule")],
                                    Control.env(), tmp_path / "beat.log")
            started.append(process)
            return process

        @staticmethod
        def send(job_name: str, times: int = 1) -> None:
            for _ in range(times):
                sender.send_task("ocop.run_job", args=[job_name])

        @staticmethod
        def inside_pids() -> list[int]:
            return [int(p.read_text()) for p in probe_dir.glob("inside-*") if p.read_text()]

    try:
        yield Control
    finally:
        for process in started:
            process.stop()
        sender.close()


def test_app_settings_and_beat_schedule_come_from_the_registry():
    conf = celery_app.app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == celery_app.DEFAULT_VISIBILITY_TIMEOUT
    schedule = celery_app.beat_schedule()
    registered = jobs.all_jobs()
    assert set(schedule) == {f"ocop:{name}" for name in registered}
    for name, job in registered.items():
        entry = schedule[f"ocop:{name}"]
        assert entry["task"] == "ocop.run_job" and entry["args"] == (name,)
        assert entry["schedule"] == job.every_seconds


def test_a_job_sent_through_celery_runs_against_the_database(celery, probe_db):
    celery_probe.create_tables(probe_db, items=3)
    worker = celery.worker("w1")
    celery.send("probe")
    wait_until(lambda: celery_probe.counts(probe_db)["unclaimed"] == 0, JOB_TIMEOUT, "the probe job", [worker])
    counts = celery_probe.counts(probe_db)
    assert counts["effects_per_item"] == {1: 1, 2: 1, 3: 1}
    assert counts["run_pids"] == {worker.pid}  # run by the worker, not by this process


def test_competing_workers_do_each_effect_once(celery, probe_db):
    items = 40
    celery_probe.create_tables(probe_db, items=items)
    # Each item's transaction lasts a moment, so the two workers' runs
    # overlap and race for the same rows.
    workers = [celery.worker(name, OCOP_PROBE_ITEM_DELAY="0.03") for name in ("w1", "w2")]
    celery.send("probe", times=4)

    def finished():
        counts = celery_probe.counts(probe_db)
        return counts["runs"] == 4 and counts["unclaimed"] == 0 and counts

    wait_until(finished, JOB_TIMEOUT, "four probe runs over all items", workers)
    time.sleep(0.5)  # a run still going may only find claimed rows; give it the chance to misbehave
    counts = celery_probe.counts(probe_db)
    assert counts["effects_per_item"] == {i: 1 for i in range(1, items + 1)}
    assert counts["run_pids"] == {w.pid for w in workers}
    assert counts["effect_pids"] == {w.pid for w in workers}, "both workers should have won some rows"


def test_a_worker_killed_inside_a_job_leaves_it_to_a_new_worker_which_does_it_once(celery, probe_db):
    celery_probe.create_tables(probe_db, items=2)
    celery.hold_file.touch()
    # A short visibility timeout: the broker hands a vanished worker's job
    # to another worker after 3 s instead of 10 minutes.
    first = celery.worker("first", OCOP_BROKER_VISIBILITY_TIMEOUT="3")
    celery.send("probe")
    wait_until(celery.inside_pids, JOB_TIMEOUT, "the job to hold inside its transaction", [first])

    first.kill()
    celery.hold_file.unlink()
    counts = celery_probe.counts(probe_db)
    assert counts["runs"] == 1 and counts["effects"] == 0 and counts["unclaimed"] == 2  # rolled back

    second = celery.worker("second", OCOP_BROKER_VISIBILITY_TIMEOUT="3")
    wait_until(lambda: celery_probe.counts(probe_db)["unclaimed"] == 0, JOB_TIMEOUT,
               "the job to be delivered again", [first, second])
    counts = celery_probe.counts(probe_db)
    assert counts["runs"] == 2 and counts["run_pids"] == {first.pid, second.pid}
    assert counts["effects_per_item"] == {1: 1, 2: 1} and counts["effect_pids"] == {second.pid}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_pool_process_killed_inside_a_job_has_its_job_requeued_at_once(celery, probe_db):
    celery_probe.create_tables(probe_db, items=2)
    celery.hold_file.touch()
    # The default 10-minute visibility timeout: only task_reject_on_worker_lost
    # can bring the job back within the test's time.
    worker = celery.worker("pool", pool="prefork", concurrency=1)
    celery.send("probe")
    (child,) = wait_until(celery.inside_pids, JOB_TIMEOUT, "the job to hold inside its transaction", [worker])
    assert child != worker.pid

    os.kill(child, signal.SIGKILL)
    celery.hold_file.unlink()
    wait_until(lambda: celery_probe.counts(probe_db)["unclaimed"] == 0, JOB_TIMEOUT,
               "the requeued job to run in a new pool process", [worker])
    counts = celery_probe.counts(probe_db)
    assert counts["runs"] == 2 and child in counts["run_pids"]
    assert counts["effects_per_item"] == {1: 1, 2: 1} and child not in counts["effect_pids"]
    assert "WorkerLostError" in worker.log()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_beat_sends_each_registered_job_on_its_interval(celery, probe_db):
    worker = celery.worker("w1")
    beat = celery.beat()

    def ticks():
        return celery_probe.counts(probe_db)["runs_by_job"].get("probe_tick", 0)

    wait_until(lambda: ticks() >= 2, JOB_TIMEOUT, "two beat ticks of the 1-second probe job", [worker, beat])
    assert "Sending due task ocop:probe_tick (ocop.run_job)" in beat.log()


def test_the_timers_job_through_celery_fires_a_due_timer_once(celery, world):
    if "timers" not in jobs.all_jobs():
        pytest.skip("no 'timers' job registered (background/timers.py)")
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan",
                     "support_record", "submit_dossier"):
        cycle.do(form_key)
    # The world runs on the tests' clock in March 2026; the workers run on
    # the real clock, by which the dossier check's 15 working days are over.
    with world.db.transaction() as session:
        due = session.scalars(select(TimerDue.due_at).where(TimerDue.instance_id == cycle.instance_id)).all()
    assert due and max(d.replace(tzinfo=timezone.utc) for d in due) < datetime.now(timezone.utc)

    # Two workers, three deliveries: whoever fires the timer, it fires once.
    workers = [celery.worker(name) for name in ("w1", "w2")]
    celery.send("timers", times=3)
    wait_until(lambda: sum(w.log().count("succeeded in") for w in workers) == 3, JOB_TIMEOUT,
               "three runs of the timers job", workers)
    with world.db.transaction() as session:
        fired = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == cycle.instance_id,
                                                         AuditEvent.kind == "timer_fired")).all()
        assert [event.data["elements"] for event in fired] == [["timer_check_dossier_late"]]
        assert session.scalars(select(TimerDue).where(TimerDue.instance_id == cycle.instance_id)).all() == []
    assert cycle.ready_forms() == ["check_dossier"]  # the escalation runs beside the task
    assert verification.verify(world, [cycle.instance_id]).ok
