"""Workflow state <-> JSON, with the spec kept apart.

A deployment stores its parsed specs once (`specs_to_dict`); an instance
stores only its state (`state_to_json`: the serializer's dict without
`spec`/`subprocess_specs`). Loading puts the cached spec objects back in.
"""
from __future__ import annotations

import functools
import json
from datetime import date
from decimal import Decimal

import orjson
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.stepping import EngineWorkflow


class StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its specs (they live with the deployment).
    On restore, the caller supplies spec objects in place of their dicts and
    the base converter passes them through unchanged."""

    def to_dict(self, workflow):
        # WorkflowConverter.to_dict's keys, its `tasks` built here: a finished
        # task's dict comes straight from its cache, without the registry's
        # dispatch (the dict already carries its typename).
        tasks = {}
        for task in workflow.tasks.values():
            dct = FinishedTaskConverter.cached(task)
            if dct is None:
                dct = self.registry.convert(task)
            tasks[dct["id"]] = dct
        return {
            "data": self.registry.convert(self.registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": tasks,
            "root": str(workflow.task_tree.id),
            "subprocesses": self.mapping_to_dict(workflow.subprocesses),
            "bpmn_events": self.registry.convert(workflow.bpmn_events),
        }


class FinishedTaskConverter(TaskConverter):
    """Serializes a task once and reuses the dict at later engine calls while it
    cannot have changed.

    Every engine call writes the whole state, and most of a workflow's tasks do not
    change any more: finished ones (their data, parent and spec are fixed)
    and the predicted ones ahead (FUTURE, LIKELY, MAYBE: no data of their
    own yet). Converting them again, data delta against the parent
    included, was most of the cost of a call's serialization. The dict is
    kept on the task with what could still change it -- state, state change
    time, children, `triggered` -- and converted again if any of these
    differ or the task stops qualifying. (A finished task's data is never
    changed in place: the engine and SpiffWorkflow give each task its own
    copy.) The replay's state comparison and tests/test_serialization.py
    check the result against SpiffWorkflow's own converter."""

    def from_dict(self, dct, workflow):
        # A task that cannot have changed since it was written serializes
        # to the dict it was read from: kept as its cache, so the first call
        # after a reload does not convert every finished task again (each
        # one's data delta against its parent: steps x variables on a long
        # chain). The caller's dict lost its typename to the registry.
        task = super().from_dict(dct, workflow)
        if self.unchanging(task):
            task._ocop_serialized = (self.key(task), {**dct, "typename": self.typename})
        return task

    def to_dict(self, task):
        if not self.unchanging(task):
            return super().to_dict(task)
        dct = self.cached(task)
        if dct is None:
            dct = super().to_dict(task)
            task._ocop_serialized = (self.key(task), dct)
        return dct

    @staticmethod
    def unchanging(task) -> bool:
        """Finished with a finished parent; or predicted, with no data of its
        own and a parent without data (so its data delta is empty)."""
        parent = task.parent
        if task.has_state(TaskState.FINISHED_MASK):
            return parent is None or parent.has_state(TaskState.FINISHED_MASK)
        return (task.has_state(TaskState.PREDICTED_MASK) and not task.data and not task.internal_data
                and (parent is None or not parent.data))

    @staticmethod
    def key(task) -> tuple:
        return task.state, task.last_state_change, tuple(task._children), task.triggered

    @classmethod
    def cached(cls, task) -> dict | None:
        """The task's dict from an earlier engine call, if it still holds."""
        cached = task.__dict__.get("_ocop_serialized")
        if cached is not None and cached[0] == cls.key(task) and cls.unchanging(task):
            return cached[1]
        return None


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = StateOnlyWorkflowConverter
    # Restored as the engine's subclass, written under SpiffWorkflow's name
    # (registered last, it is the one a stored "BpmnWorkflow" restores to).
    config[EngineWorkflow] = functools.partial(StateOnlyWorkflowConverter, typename="BpmnWorkflow")
    config[Task] = FinishedTaskConverter
    registry = BpmnWorkflowSerializer.configure(config)
    # Types that may appear in process variables, registered explicitly.
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    return BpmnWorkflowSerializer(registry)


SERIALIZER = _make_serializer()


def specs_to_dict(spec, subprocess_specs: dict) -> dict:
    registry = SERIALIZER.registry
    return {"spec": registry.convert(spec),
            "subprocess_specs": {name: registry.convert(sub) for name, sub in subprocess_specs.items()}}


def specs_from_dict(dct: dict):
    registry = SERIALIZER.registry
    spec = registry.restore(dct["spec"])
    subprocess_specs = {name: registry.restore(sub) for name, sub in dct["subprocess_specs"].items()}
    return spec, subprocess_specs


def state_to_json(workflow: BpmnWorkflow) -> str:
    dct = SERIALIZER.to_dict(workflow)
    dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
    return dumps(dct)


def dumps(value) -> str:
    """Compact JSON text. orjson writes a call's state several times faster
    than the standard library; what it refuses (an integer beyond 64 bits)
    falls back to `json`, which reads the same way."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def state_from_json(text: str, spec, subprocess_specs: dict) -> BpmnWorkflow:
    try:
        dct = orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. NaN, which `json` wrote and orjson refuses
        dct = json.loads(text)
    dct.pop(SERIALIZER.VERSION_KEY, None)
    dct["spec"] = spec
    dct["subprocess_specs"] = dict(subprocess_specs)
    return SERIALIZER.from_dict(dct)
