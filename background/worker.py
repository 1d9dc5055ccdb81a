"""The embedded scheduler: runs the registered jobs (background/jobs.py) on
their intervals, in a thread of the web process or as `ocop worker`.

Without a broker this is all the background work there is; with
OCOP_BROKER_URL set, Celery beat and workers run the same jobs instead
(background/celery_app.py). Every job is safe to run twice, so two web
processes each running this scheduler do no harm, only extra queries.
"""
from __future__ import annotations

import logging
import threading
import time

from background import jobs
from engine.bpmn_engine import BpmnEngine

log = logging.getLogger(__name__)


def run_once(engine: BpmnEngine, names: list[str] | None = None) -> dict[str, int]:
    """Run the jobs now (all, or those named), each on its own; a job that
    fails is logged and the others still run. Returns what each did."""
    done = {}
    for name, job in sorted(jobs.all_jobs().items()):
        if names and name not in names:
            continue
        try:
            done[name] = job.function(engine)
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("job %s failed", name)
            done[name] = -1
    return done


class Scheduler:
    """Runs each job when its interval has passed (monotonic time)."""

    def __init__(self, engine: BpmnEngine, names: list[str] | None = None):
        self.engine = engine
        self.jobs = {name: job for name, job in jobs.all_jobs().items() if not names or name in names}
        self.next_run = dict.fromkeys(self.jobs, 0.0)

    def tick(self) -> dict[str, int]:
        now, due = time.monotonic(), []
        for name, job in self.jobs.items():
            if self.next_run[name] <= now:
                due.append(name)
                self.next_run[name] = now + job.every_seconds
        return run_once(self.engine, due) if due else {}

    def run(self, stop: threading.Event, tick_seconds: float = 5.0) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(tick_seconds)


def start_in_thread(engine: BpmnEngine) -> threading.Event:
    """The scheduler in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=Scheduler(engine).run, args=(stop,), name="ocop-worker", daemon=True)
    thread.start()
    return stop
