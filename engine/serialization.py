"""Workflow state <-> JSON, with the spec kept apart.

A deployment stores its parsed specs once (`specs_to_dict`); an instance
stores only its state (`state_to_json`: the serializer's dict without
`spec`/`subprocess_specs`). Loading puts the cached spec objects back in.
"""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG


class StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its specs (they live with the deployment).
    On restore, the caller supplies spec objects in place of their dicts and
    the base converter passes them through unchanged."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = StateOnlyWorkflowConverter
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
    return json.dumps(dct, separators=(",", ":"), ensure_ascii=False)


def state_from_json(text: str, spec, subprocess_specs: dict) -> BpmnWorkflow:
    dct = json.loads(text)
    dct.pop(SERIALIZER.VERSION_KEY, None)
    dct["spec"] = spec
    dct["subprocess_specs"] = dict(subprocess_specs)
    return SERIALIZER.from_dict(dct)
