"""The engine's shortcuts give exactly what SpiffWorkflow gives: the cached
serialization of finished tasks (engine/serialization.py) and the task-table
scan in place of the tree walk (engine.stepping.find_tasks), checked after
every step of cycles that loop back, wait on timers and finish."""
import functools
import json

import pytest
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.util.task import TaskState

from engine import serialization
from engine.execution import timer_tasks, waiting_timers
from engine.stepping import EngineWorkflow, find_tasks
from testkit.cycle import Cycle, returned, sheets

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def uncached_dict(workflow) -> dict:
    """The workflow as SpiffWorkflow's own converters write it (no cache)."""
    config = dict(serialization.SPIFF_CONFIG)
    config[serialization.BpmnWorkflow] = serialization.StateOnlyWorkflowConverter
    config[EngineWorkflow] = functools.partial(serialization.StateOnlyWorkflowConverter, typename="BpmnWorkflow")
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
    dct = serializer.to_dict(workflow)
    dct[serializer.VERSION_KEY] = serializer.VERSION
    return json.loads(json.dumps(dct))


def check(engine, cycle: Cycle) -> None:
    cached = engine.workflows.peek(cycle.instance_id)
    version, workflow = cached.version, cached.workflow
    assert version == cycle.instance().version
    # What the step found, kept for the next one: as the workflow says.
    assert cached.ready_ids == {str(t.id) for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
    assert cached.timers == waiting_timers(workflow)
    assert json.loads(serialization.state_to_json(workflow)) == uncached_dict(workflow)
    assert json.loads(cycle.instance().state) == uncached_dict(workflow)  # what the step stored
    for state in (TaskState.READY, TaskState.WAITING | TaskState.READY, TaskState.COMPLETED, TaskState.FUTURE):
        for manual in (True, False):
            assert find_tasks(workflow, state, manual) == workflow.get_tasks(state=state, manual=manual)


def run(engine, cycle: Cycle, steps) -> None:
    cycle.start()
    check(engine, cycle)
    for form_key, data in steps:
        cycle.do(form_key, data)
        check(engine, cycle)


def test_a_cycle_with_returns_serializes_as_spiffworkflow_does(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh")
    run(world, cycle, [
        ("register_idea", None), ("receive_idea", None), ("review_idea", returned("review_idea")),
        ("register_idea", None), ("receive_idea", None), ("review_idea", None),
        ("submit_plan", None), ("review_plan", returned("review_plan")), ("submit_plan", None),
        ("review_plan", None), ("support_record", None), ("submit_dossier", None),
        ("check_dossier", returned("check_dossier")), ("submit_dossier", None), ("check_dossier", None),
        ("score_product", sheets(92)), ("score_product", sheets(93)), ("score_product", sheets(95)),
    ])
    assert cycle.instance().status == "completed", cycle.ready_forms()
    assert timer_tasks(world.workflows.peek(cycle.instance_id).workflow) == []


def test_loaded_workflows_serialize_the_same_after_a_step(world):
    """A workflow read back from the database (no cache on its tasks) and
    then stepped gives the same state as SpiffWorkflow's converters."""
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    cycle.do("register_idea")
    world.forget_cached(cycle.instance_id)
    cycle.do("receive_idea")
    check(world, cycle)
    # Restored as the engine's own class, stored under SpiffWorkflow's type name.
    assert type(world.workflows.peek(cycle.instance_id).workflow) is EngineWorkflow
    assert json.loads(cycle.instance().state)["typename"] == "BpmnWorkflow"


def test_a_workflow_read_back_writes_what_it_read(world):
    """Tasks restored from the database keep the dict they were read from as
    their cache (engine/serialization.py): written again, the state is what
    SpiffWorkflow's converters give."""
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    for form_key, data in (("register_idea", None), ("receive_idea", None),
                           ("review_idea", returned("review_idea")), ("register_idea", None)):
        cycle.do(form_key, data)
    with world.db.transaction() as session:
        workflow = world.load_workflow(session, cycle.instance())
    assert sum(1 for task in workflow.tasks.values() if "_ocop_serialized" in vars(task)) > 10
    assert json.loads(serialization.state_to_json(workflow)) == uncached_dict(workflow)
    assert json.loads(serialization.state_to_json(workflow)) == json.loads(cycle.instance().state)
