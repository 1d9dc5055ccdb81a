"""SpiffWorkflow's task tree is as deep as the diagram is long: every task is
a child of the one before it, so a sequence of 2,000 tasks is a tree 2,000
levels deep. SpiffWorkflow walks it recursively in a few places, one Python
frame per level, and Python stops at 1,000 frames (RecursionError) -- a
diagram of about 480 steps or more could not start (issue 14, item 5).

This module replaces those walks by loops that visit the same tasks in the
same order, instead of raising the recursion limit (which is one limit for
every thread of the process, request threads included):

- `TaskSpec._predict`, which fills in the tasks ahead of a task (FUTURE
  after a definite task, MAYBE/LIKELY a few steps past a choice) and recurses
  once per task it predicts: on a chain, once per task to the end.
  Installed by `install()` (engine/stepping.py calls it on import): no spec
  class of SpiffWorkflow or of ours overrides `_predict` (subclasses
  override `_predict_hook`), which tests/test_long_chains.py checks.
- `Workflow._remove_task` (a task and everything below it leave the tree:
  cancelling a task drops the predicted chain ahead of it, 2,000 tasks deep),
  `Task.cancel` on a finished task (it cancels down through its finished
  descendants), and `Task.find_ancestor` / `Task.is_descendant_of` (up the
  chain, for joins): one frame per level each; loops here.
- The depth at which SpiffWorkflow's tree walk (`TaskIterator`: `get_tasks`,
  `cancel`, joins, the waiting tasks' update) stops looking: 1,000 levels by
  default, so past the 1,000th step of a chain a walk silently missed the
  tasks below -- `cancel()` left the ready task ready, the end event reached
  was not found, the replay compared only the first 1,000 tasks. The walk
  itself is a loop; `install()` makes its default depth unlimited.

These are SpiffWorkflow's methods replaced on its classes, for the whole
process: the engine never builds a workflow that should behave otherwise,
and a subclass is the wrong tool (the tasks and specs are SpiffWorkflow's
classes, made by its parser and serializer). What still recurses is not
per level of the tree: parsing (engine/bpmn_parse.py gives it room),
`_drop_children` on finished descendants (only non-BPMN joins call it), and
DeepMerge over nested values of the data. What a long chain still costs is
SpiffWorkflow's data model: every finished task keeps its own copy of all
the process variables, so reading a state back from the database grows
with steps x variables (tests/test_long_chains.py prints the figures).
"""
from __future__ import annotations

import inspect
import sys

from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator, TaskState
from SpiffWorkflow.workflow import Workflow

UNLIMITED_DEPTH = sys.maxsize
SPIFFWORKFLOW_PREDICT = TaskSpec._predict  # the recursive original, for tests/test_long_chains.py's twins


def predict(self: TaskSpec, my_task, seen=None, looked_ahead: int = 0, mask: int = TaskState.PREDICTED_MASK) -> None:
    """TaskSpec._predict as a loop over an explicit stack: the same tasks
    predicted in the same (depth-first, children in order) sequence, each
    child tested just before it is entered, as the recursive version does
    after its earlier siblings' branches are done."""
    stack = [_enter(self, my_task, [] if seen is None else seen, looked_ahead, mask)]
    while stack:
        task, seen_here, ahead, look_ahead, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
        elif child.has_state(mask) and child not in seen_here and look_ahead:
            stack.append(_enter(child.task_spec, child, seen_here[:], ahead + 1, mask))


def _enter(spec: TaskSpec, task, seen: list, looked_ahead: int, mask: int) -> tuple:
    """What the recursive _predict does before it loops over the children."""
    if task.has_state(mask):
        spec._predict_hook(task)
    if task.has_state(TaskState.PREDICTED_MASK):
        seen.append(spec)
    look_ahead = task.has_state(TaskState.DEFINITE_MASK) or looked_ahead + 1 < spec.lookahead
    return task, seen, looked_ahead, look_ahead, iter(task.children)


def remove_task(self: Workflow, task_id) -> None:
    """Workflow._remove_task as a loop: the task's descendants leave the
    tree before it, each child's branch in turn (the recursion's post-order)."""
    order, stack = [], [(self.tasks[task_id], False)]
    while stack:
        task, children_done = stack.pop()
        if children_done:
            order.append(task)
        else:
            stack.append((task, True))
            stack.extend((child, False) for child in reversed(task.children))
    for task in order:
        task.parent._children.remove(task.id)
        self.tasks.pop(task.id)
        self._task_removed_notify(task)


def cancel(self: Task) -> None:
    """Task.cancel as a loop: a finished task passes the cancel to its
    children in order; an unfinished one is cancelled, its predicted tasks dropped."""
    stack = [self]
    while stack:
        task = stack.pop()
        if task.has_state(TaskState.FINISHED_MASK):
            stack.extend(reversed(task.children))
        else:
            task._set_state(TaskState.CANCELLED)
            task._drop_children()
            task.task_spec._on_cancel(task)


def find_ancestor(self: Task, spec_name: str):
    """Task.find_ancestor as a loop up the parents."""
    ancestor = self.parent
    while ancestor is not None and ancestor.task_spec.name != spec_name:
        ancestor = ancestor.parent
    return ancestor


def is_descendant_of(self: Task, task) -> bool:
    """Task.is_descendant_of as a loop up the parents."""
    ancestor = self.parent
    while ancestor is not None and ancestor != task:
        ancestor = ancestor.parent
    return ancestor is not None


def _without_depth_limit(iterator_class: type) -> None:
    """Make the iterator's `max_depth` default unlimited (an explicit
    max_depth, which no caller in SpiffWorkflow or here gives, still holds)."""
    init = iterator_class.__init__
    with_defaults = [p.name for p in inspect.signature(init).parameters.values()
                     if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    defaults = list(init.__defaults__)
    defaults[with_defaults.index("max_depth")] = UNLIMITED_DEPTH
    init.__defaults__ = tuple(defaults)


def install() -> None:
    """Put the loops in place of SpiffWorkflow's recursion and depth limit
    (once per process; doing it again changes nothing)."""
    TaskSpec._predict = predict
    Workflow._remove_task = remove_task
    Task.cancel, Task.find_ancestor, Task.is_descendant_of = cancel, find_ancestor, is_descendant_of
    for iterator_class in (TaskIterator, BpmnTaskIterator):
        _without_depth_limit(iterator_class)
