"""The background jobs: what keeps the cycle moving when nobody clicks.

A job is a function `job(engine) -> int` (how many things it did) that
is safe to run twice and on several machines at once: whatever it changes
goes through the engine's transactional write (the optimistic version
check on an instance) or claims its rows with a conditional UPDATE, so a
second run finds nothing left to do. Jobs take the time from
`engine.clock()`, so tests drive them with a fake clock.

The same registry serves the embedded scheduler (`background/worker.py`,
inside the web process or `ocop worker`) and Celery (`background/celery_app.py`,
when OCOP_BROKER_URL is set): a job is named here once and run there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.bpmn_engine import BpmnEngine


@dataclass(frozen=True)
class Job:
    name: str
    function: Callable[[BpmnEngine], int]
    every_seconds: int  # how often the schedulers run it
    description: str
    counts: str = "done"  # what the number it returns counts, e.g. "notifications delivered"; "done" if unsaid


JOBS: dict[str, Job] = {}


def job(name: str, every_seconds: int, description: str, counts: str = "done"):
    """Register a job under the name the schedulers use; `counts` says what
    the number it returns counts (`ocop worker --once` prints it)."""

    def register(function: Callable[[BpmnEngine], int]) -> Callable[[BpmnEngine], int]:
        if name in JOBS:
            raise ValueError(f"job '{name}' registered twice")
        JOBS[name] = Job(name, function, every_seconds, description, counts)
        return function

    return register


def all_jobs() -> dict[str, Job]:
    _load_builtin_jobs()
    return dict(JOBS)


def run(engine: BpmnEngine, name: str) -> int:
    jobs = all_jobs()
    if name not in jobs:
        raise LookupError(f"no job '{name}' (known: {', '.join(sorted(jobs))})")
    return jobs[name].function(engine)


def _load_builtin_jobs() -> None:
    # Importing the modules runs their @job decorators.
    import importlib

    for module in BUILTIN_JOB_MODULES:
        importlib.import_module(module)


# Modules that define jobs. Listed here so that every scheduler sees the same set.
BUILTIN_JOB_MODULES = ("background.timers", "background.retries", "background.outbox", "background.digests",
                       "background.checkpoint_job")
