"""What a process keeps between engine calls: the parsed specs of deployed
versions, and each instance's workflow as its last committed call left it.
Both are only ever a shortcut past the database (engine/execution.py's
`load` checks an entry against the row's version)."""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.serialization import specs_from_dict
from storage.db import connection_of
from storage.models import ProcessDefinition

if TYPE_CHECKING:
    from engine.execution import Execution

SPEC_CACHE_SIZE = 16
# The workflow cache's bounds: the memory of its workflows (OCOP_WORKFLOW_CACHE_MB,
# BpmnEngine.from_environment) and their number. A workflow is weighed from the
# length of its serialized state (save() has it anyway), not by walking it:
# a worker's RSS grows by about 16 bytes per character of the cached states
# (bench/memory.py --quick from a cold worker: +12 MB with no cache, +31 MB
# with an 8 MB budget at 7 bytes/char, +47 MB with 256 entries and no byte
# bound; tracemalloc of a bare deserialization says 6-8 bytes/char, the rest
# is what running a workflow adds and the allocator's slack). 16 MB holds
# about 115 mid-cycle workflows.
DEFAULT_WORKFLOW_CACHE_MB = 16
WORKFLOW_CACHE_SIZE = 256
MEMORY_PER_STATE_CHAR = 16



class SpecCache:
    """Parsed specs of deployed versions, restored once and kept (an LRU of
    SPEC_CACHE_SIZE versions); deployments never change."""

    def __init__(self) -> None:
        self._bundles: OrderedDict[int, dict] = OrderedDict()
        self._lock = threading.Lock()

    def spec_for(self, unit: Session | Connection, definition_id: int, process_id: str):
        """(spec, subprocess specs) of one process of a deployed version."""
        return self._bundle(unit, definition_id)[process_id]

    def has_process(self, unit: Session | Connection, definition_id: int, process_id: str) -> bool:
        return process_id in self._bundle(unit, definition_id)

    def _bundle(self, unit: Session | Connection, definition_id: int) -> dict:
        with self._lock:
            bundle = self._bundles.get(definition_id)
            if bundle is not None:
                self._bundles.move_to_end(definition_id)
                return bundle
        stored = connection_of(unit).execute(
            select(ProcessDefinition.specs).where(ProcessDefinition.id == definition_id)).scalar_one()
        bundle = {pid: specs_from_dict(dct) for pid, dct in stored.items()}
        with self._lock:
            self._bundles[definition_id] = bundle
            while len(self._bundles) > SPEC_CACHE_SIZE:
                self._bundles.popitem(last=False)
        return bundle


@dataclass(frozen=True)
class CachedWorkflow:
    """A committed call's workflow, kept for the instance's next call, with
    what the call found in it: the ready user tasks (the instance's inbox
    rows) and the waiting timers (its timer_due rows)."""

    version: int
    workflow: BpmnWorkflow
    ready_ids: frozenset[str]
    timers: dict[str, datetime]
    size: int = 0  # estimated bytes in memory (MEMORY_PER_STATE_CHAR)


class WorkflowCache:
    """Instance id -> its workflow as last committed by this process: an LRU
    bounded by the estimated bytes of its workflows (`max_bytes`) and by
    their number (`max_entries`). With the count alone a worker grew by
    ~35 MB more before its 256-entry cache was full. An entry is used only for
    exactly the stored version it was committed as; any other process's
    write bumps the version, so a stale entry is never used."""

    def __init__(self, max_bytes: int = DEFAULT_WORKFLOW_CACHE_MB * 1024 * 1024,
                 max_entries: int = WORKFLOW_CACHE_SIZE) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._entries: OrderedDict[int, CachedWorkflow] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> tuple[int, int]:
        """(entries, estimated bytes) held now."""
        with self._lock:
            return len(self._entries), self._bytes

    def take(self, instance_id: int) -> CachedWorkflow | None:
        """The entry, removed: only a committed call puts it back."""
        with self._lock:
            return self._pop(instance_id)

    def peek(self, instance_id: int) -> CachedWorkflow | None:
        with self._lock:
            return self._entries.get(instance_id)

    def keep(self, execution: Execution) -> None:
        """After commit: remember the call's workflow for the next call."""
        execution.workflow.script_engine = None  # drop the reference to the closed transaction
        entry = CachedWorkflow(execution.new_version, execution.workflow,
                               frozenset(task["id"] for task in execution.outcome.ready_tasks),
                               dict(execution.timers), execution.state_size * MEMORY_PER_STATE_CHAR)
        with self._lock:
            self._pop(execution.instance.id)
            self._entries[execution.instance.id] = entry
            self._bytes += entry.size
            while len(self._entries) > self.max_entries or (self._bytes > self.max_bytes and self._entries):
                self._pop(next(iter(self._entries)))  # the least recently kept

    def renumber(self, instance_id: int, old_version: int, new_version: int) -> None:
        """A write that changed the row but not the workflow (a claim): the
        entry stays valid under the new version."""
        with self._lock:
            cached = self._entries.get(instance_id)
            if cached is not None and cached.version == old_version:
                self._entries[instance_id] = dataclasses.replace(cached, version=new_version)

    def forget(self, instance_id: int) -> None:
        with self._lock:
            self._pop(instance_id)

    def _pop(self, instance_id: int) -> CachedWorkflow | None:
        # Under the lock: an entry out, its bytes with it.
        entry = self._entries.pop(instance_id, None)
        if entry is not None:
            self._bytes -= entry.size
        return entry
