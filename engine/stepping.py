"""How the engine drives SpiffWorkflow: the same results, without walking
the whole task tree where SpiffWorkflow does it again and again.

SpiffWorkflow finds tasks by walking the task tree from its root: for
every round of engine steps, after every task that completes (to update
the waiting ones), and for every query the engine makes. An engine call makes
dozens of such walks, and they were most of SpiffWorkflow's time in it.
The workflow's task table (`workflow.tasks`) holds the same tasks; it is
in creation order, not the tree's, so wherever order could matter --
several tasks match -- the tree's walk still decides. Workflows with
subprocesses (whose tasks live in their own tables) are left to
SpiffWorkflow. tests/test_stepping.py and tests/test_serialization.py
check every shortcut against SpiffWorkflow's own functions.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import deep_tree
from engine.errors import StepBudgetExhausted

deep_tree.install()  # chains of thousands of tasks run without RecursionError

# Automatic steps one engine call may run. A real call of the shipped cycles
# runs at most 10 (gateways, scripts, service tasks, events: measured over
# the dry runs of processes/ocop_cycle.bpmn and its two-tier variant), a
# whole cycle about 100; 1,000 is far above both, and stops a loop that
# never exits in about half a second (0.4-0.5 s for the script and the
# gateway loops of tests/test_runtime_refusals.py; SpiffWorkflow's task
# tree grows with every turn, so a much larger budget costs more than in
# proportion). OCOP_STEP_BUDGET overrides it (BpmnEngine.from_environment).
DEFAULT_STEP_BUDGET = 1000


class EngineWorkflow(BpmnWorkflow):
    """The engine's workflows (new and restored; stored under SpiffWorkflow's
    own type name, so states stay as they were)."""

    def is_completed(self) -> bool:
        # Whether any task is unfinished: any, so the table's order is as good as the tree's.
        if not self.completed and not any(task.state & TaskState.NOT_FINISHED_MASK for task in self.tasks.values()):
            self.completed = True
        return self.completed

    def update_waiting_tasks(self) -> None:
        # Called after every task that completes: SpiffWorkflow walks the
        # tree for the WAITING tasks (most calls have none or one).
        waiting = [task for task in self.tasks.values() if task.state == TaskState.WAITING]
        if len(waiting) > 1:
            super().update_waiting_tasks()
            return
        for task in waiting:
            task.task_spec._update(task)


def find_tasks(workflow: BpmnWorkflow, state: int, manual: bool, where=None) -> list:
    """[t for t in workflow.get_tasks(state=state, manual=manual) if where(t)],
    from the task table; the tree's walk when several tasks match."""
    found = [task for task in workflow.tasks.values()
             if task.state & state and task.task_spec.manual == manual and (where is None or where(task))]
    if len(found) > 1 or workflow.subprocesses:
        return [task for task in workflow.get_tasks(state=state, manual=manual) if where is None or where(task)]
    return found


def run_engine_steps(workflow: BpmnWorkflow, did_complete_task: Callable,
                     budget: int = DEFAULT_STEP_BUDGET) -> None:
    """workflow.do_engine_steps(did_complete_task=...): the same rounds (run
    every automatic task ready when the round began, in the tree's order;
    again until a round finds none; then refresh the timers), each round's
    ready tasks found in the task table. More than `budget` steps raise
    StepBudgetExhausted, naming the elements run most (the loop)."""
    did_complete_task = _within(budget, did_complete_task)
    while not workflow.subprocesses:
        ready = [task for task in workflow.tasks.values() if task.state == TaskState.READY]
        if len(ready) > 1:
            ready = workflow.get_tasks(state=TaskState.READY)
        automatic = [task for task in ready if not task.task_spec.manual]
        if not automatic:
            workflow.refresh_timers()
            return
        for task in automatic:
            task.run()
            did_complete_task(task)
    workflow.do_engine_steps(did_complete_task=did_complete_task)


def _within(budget: int, did_complete_task: Callable) -> Callable:
    """`did_complete_task`, counting the steps: SpiffWorkflow calls it after
    every automatic task, in its own stepping too, so one count covers both."""
    runs: Counter = Counter()
    steps = 0

    def counted(task) -> None:
        nonlocal steps
        steps += 1
        runs[getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name] += 1
        if steps > budget:
            raise StepBudgetExhausted(budget, [element for element, _n in runs.most_common(3)])
        did_complete_task(task)
    return counted
