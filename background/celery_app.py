"""The background jobs on Celery with a Redis broker, for deployments with
several worker processes or machines.

    OCOP_BROKER_URL=redis://host:6379/0 celery -A background.celery_app worker
    OCOP_BROKER_URL=redis://host:6379/0 celery -A background.celery_app beat

One task, `ocop.run_job(name)`, runs a job of the registry in background/jobs.py
(the same jobs the embedded scheduler runs); beat sends it for every job at
the job's own interval. The jobs are safe to run twice and side by side, so
the settings below choose "at least once": a job whose worker dies before
finishing is delivered again rather than lost.

Environment:
  OCOP_BROKER_URL                  the Redis broker (default redis://127.0.0.1:6379/0)
  OCOP_DATABASE_URL                the database the jobs work on (see storage/db.py)
  OCOP_BROKER_VISIBILITY_TIMEOUT   seconds before a job taken by a worker that
                                   vanished is delivered again (default 600)
  OCOP_EXTRA_JOB_MODULES           comma-separated modules imported at start so
                                   that their @job functions are registered too
                                   (deployment-specific jobs; the tests' probe jobs)
"""
from __future__ import annotations

import importlib
import os

from celery import Celery

from background import jobs
from engine.bpmn_engine import BpmnEngine

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
# Longer than any job takes (they work in short batches), so a slow job is
# never handed to a second worker while the first is still on it; a lost job
# waits at most this long, and the next beat tick usually does its work sooner.
DEFAULT_VISIBILITY_TIMEOUT = 600


def _visibility_timeout() -> int:
    value = os.environ.get("OCOP_BROKER_VISIBILITY_TIMEOUT", str(DEFAULT_VISIBILITY_TIMEOUT))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"OCOP_BROKER_VISIBILITY_TIMEOUT must be a positive whole number, not '{value}'")
    return int(value)


def _import_extra_job_modules() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get("OCOP_EXTRA_JOB_MODULES", "").split(","))):
        importlib.import_module(module)


def beat_schedule() -> dict:
    """One entry per registered job, at the job's own interval."""
    return {
        f"ocop:{job.name}": {
            "task": "ocop.run_job",
            "schedule": float(job.every_seconds),
            "args": (job.name,),
            # A tick nobody picked up before the next one is redundant: drop
            # it instead of letting a backlog pile up while workers are down.
            "options": {"expires": float(job.every_seconds)},
        }
        for job in jobs.all_jobs().values()
    }


def make_app() -> Celery:
    visibility_timeout = _visibility_timeout()
    application = Celery("ocop", broker=os.environ.get("OCOP_BROKER_URL", DEFAULT_BROKER_URL))
    application.conf.update(
        # Jobs report what they did in the database and the log, nobody waits on a result.
        task_ignore_result=True,
        result_backend=None,
        # Acknowledge only after the job finished, and put the message back
        # when the worker process running it dies: a job is never lost,
        # at worst run twice, which jobs are written to tolerate.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A worker holds only the job it runs, so a dying worker strands one
        # message and idle workers take the rest.
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # Look for stranded messages often enough that one comes back
            # within about a tenth of the timeout after it expires.
            "unacked_restore_interval": max(1, min(10, visibility_timeout // 10)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
    )
    _import_extra_job_modules()
    application.conf.beat_schedule = beat_schedule()
    return application


app = make_app()

_engine: BpmnEngine | None = None
_engine_pid: int | None = None


def worker_engine() -> BpmnEngine:
    """The engine of this worker process, built on first use. Built per
    process (not in the parent before the pool forks) so that no database
    connection is shared between processes."""
    global _engine, _engine_pid
    if _engine is None or _engine_pid != os.getpid():
        _engine = BpmnEngine.from_environment()
        _engine_pid = os.getpid()
    return _engine


@app.task(name="ocop.run_job")
def run_job(name: str) -> int:
    return jobs.run(worker_engine(), name)
