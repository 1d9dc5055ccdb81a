"""Long diagrams run (issue 14, item 5): SpiffWorkflow's task tree is as deep
as the diagram is long, and its recursive prediction and its tree walk's
1,000-level limit are replaced (engine/deep_tree.py). A product on a chain
of 2,000 steps runs to its end through the real engine, its state reloaded
from the database at every call, and its history replays; the dry run
drives such a chain to the end."""
from __future__ import annotations

import inspect
import time

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.util.task import TaskState

from audit import verification
from engine import deep_tree, diagram
from engine.dryrun import dry_run, task_cap
from engine.expressions import SafeScriptEngine
from engine.stepping import EngineWorkflow
from storage.models import ProcessInstance
from testkit.cycle import Cycle
from tests.test_diagrams_from_outside import SEED, chain
from tests.test_stepping import PRODUCT_DATA, Twins, answers, drive

LONG = 2000
PEPPER = "Hồ tiêu Gio Linh"  # Quảng Trị: the national diagram applies


def with_seed_outreach(xml: bytes) -> bytes:
    """The diagram with the bundled outreach process (which opens idea
    registration, as a dry run needs) in place of its own."""
    root, seed_root = etree.fromstring(xml), etree.fromstring(SEED)
    path = f"//bpmn:process[@id='{diagram.OUTREACH_PROCESS}']"
    mine, bundled = (r.xpath(path, namespaces=diagram.NS)[0] for r in (root, seed_root))
    root.replace(mine, bundled)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- the loop in place of SpiffWorkflow's recursion ------------------------------------

def spec_classes(cls=TaskSpec):
    for sub in cls.__subclasses__():
        yield sub
        yield from spec_classes(sub)


def test_no_spec_class_overrides_the_prediction():
    """deep_tree replaces TaskSpec._predict; a spec class with its own
    _predict would still recurse (and be missed silently)."""
    import SpiffWorkflow.bpmn.specs.defaults  # noqa: F401 - every BPMN spec class loaded
    import SpiffWorkflow.spiff.specs.defaults  # noqa: F401
    diagram.check(SEED)
    classes = list(spec_classes())
    assert len(classes) > 30
    assert [c for c in classes if "_predict" in vars(c)] == []
    assert TaskSpec._predict is deep_tree.predict
    from SpiffWorkflow.task import Task
    from SpiffWorkflow.workflow import Workflow
    for base, names in ((Task, ("cancel", "find_ancestor", "is_descendant_of")), (Workflow, ("_remove_task",))):
        for name in names:
            assert getattr(base, name) is getattr(deep_tree, name.lstrip("_"))
            assert [c for c in spec_classes(base) if name in vars(c)] == [], name


def test_tree_walks_have_no_depth_limit():
    from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
    from SpiffWorkflow.util.task import TaskIterator
    for iterator in (TaskIterator, BpmnTaskIterator):
        assert inspect.signature(iterator.__init__).parameters["max_depth"].default == deep_tree.UNLIMITED_DEPTH


@pytest.fixture
def recursive_twin(monkeypatch):
    """SpiffWorkflow's own recursive prediction for its own BpmnWorkflow,
    the loop for the engine's EngineWorkflow."""
    def predict(self, my_task, *args, **kwargs):
        if type(my_task.workflow) is BpmnWorkflow:
            return deep_tree.SPIFFWORKFLOW_PREDICT(self, my_task, *args, **kwargs)
        return deep_tree.predict(self, my_task, *args, **kwargs)
    monkeypatch.setattr(TaskSpec, "_predict", predict)


@pytest.mark.parametrize("returns, scores, pick", [
    ({}, (92, 93, 95), lambda ready: 0),
    ({"review_idea": 2, "review_plan": 1, "check_dossier": 1}, (60, 62, 61), lambda ready: len(ready) - 1),
    ({"review_idea": 4}, (92, 93, 95), lambda ready: 0),
], ids=["five_stars", "returns", "too_many_returns"])
def test_the_loop_predicts_as_spiffworkflow_does(recursive_twin, tmp_path, returns, scores, pick):
    """Twins of the bundled cycle (gateways, loops, parallel branches, timers):
    the same tree after every step, one predicted by recursion, one by the loop."""
    path = tmp_path / "seed.bpmn"
    path.write_bytes(SEED)
    twins = Twins(path, diagram.PRODUCT_PROCESS, PRODUCT_DATA)
    done = drive(twins, pick, answers(returns, scores))
    assert twins.spiff.is_completed() and twins.ours.is_completed(), done


def chain_workflow_at(length: int, steps: int) -> EngineWorkflow:
    """A workflow of a `length`-task chain (no database) with its first
    `steps` tasks done."""
    spec, subprocess_specs = diagram.check_or_raise(chain(length)).specs[diagram.PRODUCT_PROCESS]
    workflow = EngineWorkflow(spec, subprocess_specs, script_engine=SafeScriptEngine(lambda *a: "{}"))
    workflow.do_engine_steps()
    for _ in range(steps):
        [task] = [t for t in workflow.tasks.values() if t.state == TaskState.READY]
        task.run()
        workflow.do_engine_steps()
    return workflow


def test_a_chain_deeper_than_the_walks_went_is_found_and_cancelled():
    """Past the 1,000th level SpiffWorkflow's walk used to stop: the ready
    task was not found, and cancel() left it ready."""
    workflow = chain_workflow_at(1100, 1050)
    [ready] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert ready.task_spec.name == "t1050"
    assert len(workflow.get_tasks()) == len(workflow.tasks)
    workflow.cancel()
    assert [t for t in workflow.tasks.values() if t.state & TaskState.NOT_FINISHED_MASK] == []


def test_a_long_chain_is_cancelled_early():
    """Cancelling the task at step 10 drops the 1,990 predicted tasks after it."""
    workflow = chain_workflow_at(LONG, 10)
    ready = workflow.get_next_task(state=TaskState.READY, manual=True)
    assert ready.find_ancestor("t0").task_spec.name == "t0" and ready.is_descendant_of(workflow.task_tree)
    assert ready.find_ancestor("nowhere") is None
    workflow.cancel()
    assert [t.task_spec.name for t in workflow.tasks.values() if t.state == TaskState.CANCELLED] == ["t10"]
    assert not any(t.state & TaskState.NOT_FINISHED_MASK for t in workflow.tasks.values())


# --- a product through 2,000 steps ----------------------------------------------------------

def reloaded(step: int) -> bool:
    """The calls that read the state back from the database: the first
    ones, every 100th and the last ones. (At every call the run takes tens
    of minutes: each reload restores SpiffWorkflow's copy of all the process
    variables on every finished task, ~2,000,000 copies near the end of this
    chain, whose steps each set a variable of their own.)"""
    return step <= 10 or step % 100 == 0 or step >= LONG - 10

@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_product_runs_two_thousand_steps_and_replays(world):
    world.deploy(chain(LONG), "chain", "test")  # the active national diagram
    cycle = Cycle(world, PEPPER).start()
    timings = {}
    for step in range(LONG):
        if reloaded(step):  # the state read back from the database, not the engine's cache
            world.forget_cached(cycle.instance_id)
        [task] = cycle.ready()
        assert task.element_id == f"t{step}"
        began = time.perf_counter()
        cycle.do("check_dossier", {"decision": "forward"})
        if reloaded(step):
            timings[step] = (time.perf_counter() - began) * 1000
    instance = cycle.instance()
    assert (instance.status, instance.end_event) == ("completed", "end")
    print(f"\ncompletion with the state reloaded: step 10 {timings[10]:.0f} ms, "
          f"step 1000 {timings[1000]:.0f} ms, step 1990 {timings[1990]:.0f} ms")
    began = time.perf_counter()
    report = verification.verify(world, [cycle.instance_id], replay_too=True)
    print(f"verify and replay: {time.perf_counter() - began:.1f} s")
    assert report.problems == [], [str(p) for p in report.problems[:3]]
    with world.db.transaction() as session:
        assert session.get(ProcessInstance, cycle.instance_id).state


# --- the dry run ----------------------------------------------------------------------------

def test_the_task_cap_grows_with_the_diagram():
    assert task_cap(diagram.check(SEED), 3) == 200
    assert task_cap(diagram.check(chain(LONG)), 3) == LONG * 4


def test_a_two_thousand_step_chain_dry_runs():
    began = time.perf_counter()
    report = dry_run(with_seed_outreach(chain(LONG)), products=1)
    print(f"\ndry run of chain({LONG}), one product: {time.perf_counter() - began:.1f} s")
    assert report.errors == [] and report.stuck == [], (report.errors, report.stuck)
    assert report.paths["end"] == 1  # (the outreach instances end at end_outreach)
    assert report.ok, report.unreached
