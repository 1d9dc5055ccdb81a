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

from typing import Callable

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import deep_tree

deep_tree.install()  # chains of thousands of tasks run without RecursionError


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


def run_engine_steps(workflow: BpmnWorkflow, did_complete_task: Callable) -> None:
    """workflow.do_engine_steps(did_complete_task=...): the same rounds (run
    every automatic task ready when the round began, in the tree's order;
    again until a round finds none; then refresh the timers), each round's
    ready tasks found in the task table."""
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
