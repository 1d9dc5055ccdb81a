"""Moving running instances to another deployed version of their diagram.

A deployed version never changes, and an instance runs on the version it
started on. When a program manager fixes a later part of the diagram (a
task's name, its dueDays, a new element ahead), the instances already
running can be moved to the new version -- when that is safe.

`plan` is the dry run (nothing is written); `migrate_instances` re-plans
each instance inside its own transaction and moves the safe ones, through the
engine's one write of an instance row (optimistic version check,
hash-chained audit). Who may migrate, and the admin log of it, are the
programme's (programme/definitions.py `migrate`).

What "safe" means here (SpiffWorkflow's bpmn/util/diff.py does the diff):
- the target is a version of the same diagram (same name) holding the
  instance's process id, in a scope that covers the instance (national, or
  the instance's own province); otherwise the instance is *not applicable*,
  as is one that is not running or is already on the target;
- no task of the instance (its tree, subprocesses included) that is
  COMPLETED, STARTED, ERROR or CANCELLED has an element that was changed or
  removed in the target: the history stays true to the diagram it runs on;
- a READY or WAITING task may have a changed element (it is reset and
  re-predicted on the new element: same task id, its inbox row rewritten),
  but not a removed one (there would be nothing to wait on);
- predicted tasks (FUTURE, LIKELY, MAYBE) may change or go: they are
  re-predicted from the new diagram;
- the migration itself, tried on a copy, leaves every task on an element of
  the target and no automatic task waiting to run.
Anything else is *unsafe*, with one reason per element and state.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.util.diff import SpecDiff, diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from engine import execution
from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.errors import ConcurrencyConflict
from engine.events import PendingEvent
from engine.serialization import SERIALIZER, state_to_json
from storage.models import InboxTask, ProcessDefinition, ProcessInstance

SAFE, UNSAFE, NOT_APPLICABLE = "safe", "unsafe", "not_applicable"
MIGRATED, SKIPPED, FAILED = "migrated", "skipped", "failed"

# Tasks that happened (or are happening): their element must stay as it was.
HAPPENED = TaskState.COMPLETED | TaskState.STARTED | TaskState.ERROR | TaskState.CANCELLED
# Tasks waiting now: reset onto a changed element, never onto a removed one.
WAITING_NOW = TaskState.READY | TaskState.WAITING

@dataclass(frozen=True)
class AllOn:
    """Selects every running instance on one definition."""

    definition_id: int


@dataclass
class InstancePlan:
    instance_id: int
    verdict: str  # safe, unsafe, not_applicable
    reasons: list[str] = field(default_factory=list)
    from_definition: int | None = None
    from_version: int | None = None
    changed: list[str] = field(default_factory=list)  # elements of this instance's tasks that change
    reset: list[str] = field(default_factory=list)    # waiting tasks reset onto a changed element


@dataclass
class PlanReport:
    target_definition: int
    target_name: str
    target_version: int
    instances: list[InstancePlan]

    def by_verdict(self, verdict: str) -> list[InstancePlan]:
        return [p for p in self.instances if p.verdict == verdict]

    @property
    def safe(self) -> list[InstancePlan]:
        return self.by_verdict(SAFE)

    @property
    def unsafe(self) -> list[InstancePlan]:
        return self.by_verdict(UNSAFE)

    @property
    def not_applicable(self) -> list[InstancePlan]:
        return self.by_verdict(NOT_APPLICABLE)


@dataclass
class InstanceResult:
    instance_id: int
    outcome: str  # migrated, skipped (unsafe or not applicable), failed (rolled back)
    reasons: list[str] = field(default_factory=list)
    plan: InstancePlan | None = None
    new_version: int | None = None  # the instance row's version after the migration


@dataclass
class MigrationReport:
    target_definition: int
    target_name: str
    target_version: int
    results: list[InstanceResult]

    def by_outcome(self, outcome: str) -> list[InstanceResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def migrated(self) -> list[InstanceResult]:
        return self.by_outcome(MIGRATED)

    @property
    def skipped(self) -> list[InstanceResult]:
        return self.by_outcome(SKIPPED)

    @property
    def failed(self) -> list[InstanceResult]:
        return self.by_outcome(FAILED)


# --- the dry run --------------------------------------------------------------

def plan(engine: BpmnEngine, instances: Iterable[int] | AllOn, target_definition_id: int) -> PlanReport:
    """Classify each selected instance against the target version. Writes nothing."""
    with engine.db.transaction() as session:
        target = _target(session, target_definition_id)
        plans = [_plan_one(engine, session, session.get(ProcessInstance, instance_id), instance_id, target)[0]
                 for instance_id in _select(session, instances)]
    return PlanReport(target.id, target.name, target.version, plans)


def _select(session: Session, instances: Iterable[int] | AllOn) -> list[int]:
    if isinstance(instances, AllOn):
        return list(session.scalars(select(ProcessInstance.id).where(
            ProcessInstance.definition_id == instances.definition_id,
            ProcessInstance.status == "running").order_by(ProcessInstance.id)))
    return list(dict.fromkeys(int(i) for i in instances))


def _target(session: Session, definition_id: int) -> ProcessDefinition:
    target = session.get(ProcessDefinition, definition_id)
    if target is None:
        raise LookupError(f"no process definition {definition_id}")
    return target


def _plan_one(engine: BpmnEngine, session: Session, instance: ProcessInstance | None, instance_id: int,
              target: ProcessDefinition):
    """The instance's plan and, when safe, the workflow migrated in memory
    (a fresh copy, never the engine's cached one) with its diffs."""
    if instance is None:
        return InstancePlan(instance_id, NOT_APPLICABLE, ["no such instance"]), None
    current = session.get(ProcessDefinition, instance.definition_id)
    result = InstancePlan(instance.id, NOT_APPLICABLE, from_definition=current.id, from_version=current.version)
    if instance.status != "running":
        result.reasons.append(f"the instance is {instance.status}")
    elif instance.definition_id == target.id:
        result.reasons.append("already on the target version")
    elif current.name != target.name:
        result.reasons.append(f"a different diagram: the instance runs {current.name}, "
                              f"the target is {target.name}")
    elif target.province_id is not None and target.province_id != (instance.areas or {}).get("province"):
        result.reasons.append(f"the target is the variant of province {target.province_id}, "
                              "not of the instance's province")
    if result.reasons:
        return result, None
    try:
        spec, subprocess_specs = engine.specs.spec_for(session, target.id, instance.process_id)
    except KeyError:
        result.reasons.append(f"the target has no process {instance.process_id}")
        return result, None

    workflow = engine.load_workflow(session, instance)
    try:
        diffs, missing = _diffs(workflow, spec, subprocess_specs)
    except Exception as err:  # noqa: BLE001 - a diff SpiffWorkflow cannot align is unsafe
        result.verdict = UNSAFE
        result.reasons.append(f"the versions cannot be aligned: {type(err).__name__}: {err}")
        return result, None
    result.reasons.extend(missing)

    for _wf, diff, _spec in diffs:
        for task in diff.changed:
            element, state = task.task_spec.name, TaskState.get_name(task.state)
            if element not in result.changed:
                result.changed.append(element)
            if task.state & HAPPENED:
                attrs = ", ".join(_changed_attributes(diff, task))
                _note(result.reasons, f"{element} ({state}) was changed ({attrs})")
            elif task.state & WAITING_NOW and element not in result.reset:
                result.reset.append(element)
        for task in diff.removed:
            element, state = task.task_spec.name, TaskState.get_name(task.state)
            if element not in result.changed:
                result.changed.append(element)
            if task.state & (HAPPENED | WAITING_NOW):
                _note(result.reasons, f"{element} ({state}) was removed")
    if result.reasons:
        result.verdict = UNSAFE
        return result, None

    # The dry run proper: migrate the copy and check what it left.
    try:
        _apply(diffs, workflow, subprocess_specs)
    except Exception as err:  # noqa: BLE001 - any failure makes the instance unsafe
        result.verdict = UNSAFE
        result.reasons.append(f"the migration fails: {err}")
        return result, None
    result.reasons.extend(_leftovers(workflow, spec, subprocess_specs))
    if result.reasons:
        result.verdict = UNSAFE
        return result, None
    result.verdict = SAFE
    return result, workflow


def _diffs(workflow, spec, subprocess_specs) -> tuple[list, list[str]]:
    """(workflow or subprocess, its diff, its new spec) for the workflow and
    each subprocess, and the subprocesses the target lacks."""
    top_diff, sub_diffs = diff_workflow(SERIALIZER.registry, workflow, spec, subprocess_specs)
    diffs, missing = [(workflow, top_diff, spec)], []
    for sp_id, sub in workflow.subprocesses.items():
        sub_diff = sub_diffs.get(sp_id)
        if sub_diff is None:
            missing.append(f"subprocess {sub.spec.name} is not in the target")
            continue
        diffs.append((sub, sub_diff, subprocess_specs[sub.spec.name]))
    return diffs, missing


def _apply(diffs, workflow, subprocess_specs) -> None:
    for wf, diff, new_spec in diffs:
        migrate_workflow(diff, wf, new_spec)
    workflow.subprocess_specs = dict(subprocess_specs)


def move_workflow(workflow, spec, subprocess_specs) -> None:
    """Move a workflow onto another version's specs in memory, as a
    migration does (a replay repeats recorded migrations with this)."""
    diffs, missing = _diffs(workflow, spec, subprocess_specs)
    if missing:
        raise ValueError("; ".join(missing))
    _apply(diffs, workflow, subprocess_specs)


def _note(reasons: list[str], reason: str) -> None:
    if reason not in reasons:  # a loop completes an element more than once
        reasons.append(reason)


def _changed_attributes(diff, task) -> list[str]:
    # WorkflowDiff keeps only the alignment; the attribute names come from a spec comparison.
    new = diff.alignment.get(task)
    if new is None:
        return []
    s1, s2 = SERIALIZER.registry.convert(task.task_spec), SERIALIZER.registry.convert(new)
    return sorted(k for k in set(s1) | set(s2) if s1.get(k) != s2.get(k)) or ["typename"]


def _leftovers(workflow, spec, subprocess_specs) -> list[str]:
    problems = []
    for wf, wf_spec in [(workflow, spec)] + [(sub, subprocess_specs.get(sub.spec.name))
                                             for sub in workflow.subprocesses.values()]:
        for task in wf.tasks.values():
            if wf_spec is None or wf_spec.task_specs.get(task.task_spec.name) is not task.task_spec:
                problems.append(f"{task.task_spec.name} ({TaskState.get_name(task.state)}) "
                                "has no element in the target")
    for task in workflow.get_tasks(state=TaskState.READY, manual=False):
        problems.append(f"{task.task_spec.name} would be left ready to run automatically")
    return sorted(set(problems))


def _spec_changes(engine: BpmnEngine, session: Session, from_id: int, to_id: int, process_id: str) -> dict:
    """The element-level difference of two versions of one process:
    {changed: {element: [attributes]}, added: [...], removed: [...]}."""
    old, _ = engine.specs.spec_for(session, from_id, process_id)
    new, _ = engine.specs.spec_for(session, to_id, process_id)
    diff = SpecDiff(SERIALIZER.registry, old, new)
    return {"changed": {ts.name: sorted(attrs) for ts, attrs in diff.changed.items()},
            "added": sorted(ts.name for ts in diff.added),
            "removed": sorted(ts.name for ts in diff.removed)}


# --- the migration -------------------------------------------------------------

def target_of(session: Session, definition_id: int) -> ProcessDefinition:
    """The version instances would move to (LookupError when there is none)."""
    return _target(session, definition_id)


def migrate_instances(engine: BpmnEngine, actor: Actor, instances: Iterable[int] | AllOn,
                      target_definition_id: int) -> MigrationReport:
    """Move the safe instances to the target version, one transaction each.
    Unsafe and not applicable ones are skipped with their reasons; an
    instance whose migration fails (e.g. it moved on concurrently) is rolled
    back and changes nothing. The caller has checked that the actor may."""
    with engine.db.transaction() as session:
        target = _target(session, target_definition_id)
        target_info = (target.id, target.name, target.version, target.province_id)
        selected = _select(session, instances)
    results = [_migrate_one(engine, actor, instance_id, target_info) for instance_id in selected]
    return MigrationReport(target_info[0], target_info[1], target_info[2], results)


def _migrate_one(engine: BpmnEngine, actor: Actor, instance_id: int, target_info) -> InstanceResult:
    try:
        with engine.db.transaction() as session:
            target = session.get(ProcessDefinition, target_info[0])
            instance = session.get(ProcessInstance, instance_id)
            result, workflow = _plan_one(engine, session, instance, instance_id, target)
            if result.verdict != SAFE:  # nothing was written in this transaction
                return InstanceResult(instance_id, SKIPPED, list(result.reasons), result)
            new_version = _write_migration(engine, session, instance, workflow, target, result, actor)
    except ConcurrencyConflict:
        return InstanceResult(instance_id, FAILED, ["the instance changed meanwhile; nothing was changed"])
    except Exception as err:  # noqa: BLE001 - one instance's failure must not stop the others
        return InstanceResult(instance_id, FAILED, [f"{type(err).__name__}: {err}; nothing was changed"])
    engine.forget_cached(instance_id)  # the version bump already makes it miss; free it anyway
    return InstanceResult(instance_id, MIGRATED, [], result, new_version)


def _write_migration(engine: BpmnEngine, session: Session, instance: ProcessInstance, workflow,
                     target: ProcessDefinition, result: InstancePlan, actor: Actor) -> int:
    now = engine.clock()
    run = execution.Execution(session, instance, now, engine.step_budget)
    run.workflow = workflow
    # Inbox rows are exactly the ready user tasks before the migration; the
    # reset keeps the ids of tasks still ready, so compare ids.
    run.ready_before = {row for row in session.scalars(
        select(InboxTask.id).where(InboxTask.instance_id == instance.id))}
    current = session.get(ProcessDefinition, instance.definition_id)
    changes = _spec_changes(engine, session, current.id, target.id, instance.process_id)
    run.events.append(PendingEvent("migrated", None, {
        "from_definition": current.id, "to_definition": target.id,
        "from_version": current.version, "to_version": target.version,
        "definition": target.name, "changed_elements": changes,
        "instance_elements_changed": result.changed, "tasks_reset": result.reset}, actor.user_id))

    ready, values = execution.conclude(run)
    stale_ids, new_rows = execution.inbox_changes(run, ready)
    # Rows of tasks still ready whose element changed: rewritten from the new
    # element, keeping when they appeared (so dueDays counts from then) and a
    # claim that still fits the role and area.
    rewritten = []
    for row in session.scalars(select(InboxTask).where(InboxTask.instance_id == instance.id)):
        task = ready.get(row.id)
        if task is None or task.task_spec.name not in result.reset:
            continue
        fresh = execution.inbox_row(instance, task, row.created_at)
        same_hands = (fresh["role"], fresh["jurisdiction_id"]) == (row.role, row.jurisdiction_id)
        if not fresh["personal"]:  # a task the new element gives to one person stays theirs
            fresh["assignee_id"] = row.assignee_id if same_hands else None
        rewritten.append(fresh)
    values.update(state=state_to_json(workflow), definition_id=target.id)
    new_version = execution.write_instance(session, instance, values, run.events, now)
    execution.write_timers(session, instance.id, run.timers)
    connection = session.connection()
    if stale_ids:
        connection.execute(delete(InboxTask.__table__).where(InboxTask.id.in_(stale_ids)))
    if new_rows:
        connection.execute(insert(InboxTask.__table__), new_rows)
    # Rewritten in place: deleting the row would take its drafts with it.
    tasks = InboxTask.__table__
    for row in rewritten:
        connection.execute(update(tasks).where(tasks.c.id == row["id"])
                           .values({key: value for key, value in row.items() if key != "id"}))
    return new_version
