"""One engine call from the inside: the work every call shares, which the
facade (engine/bpmn_engine.py), migration and replay all run.

An `Execution` is one engine call in progress: its transaction, the instance
row as the call read it, the workflow, and the history events to append.
The call loads the workflow (`load`: from the process's `WorkflowCache`
when it holds the instance's stored version), runs SpiffWorkflow
(`run_user_task`, `advance`), and writes everything in one go (`save`):

1. `conclude`: the ready user tasks, the instance row's new values and the
   closing events, without writing;
2. `write_instance`: UPDATE ... WHERE id = :id AND version = :old (a lost
   race matches no row: `ConcurrencyConflict`, nothing written) and the
   events chained after the history's head;
3. the inbox rows (`inbox_changes`, `inbox_row`) and the timer rows
   (`write_timers`), so both always mirror the workflow;
4. incidents for service tasks that failed.

Words: a *cycle step* is one of the OCOP cycle's six steps (a task's `step`
property, the instance's `current_step`); an *engine call* is one of these
transactions. SpiffWorkflow's own "engine steps" are the automatic tasks it
runs until only people are awaited (`run_engine_steps`).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine import clock, diagram, expressions, incidents, roles, statements, timer_values
from engine.caches import SpecCache, WorkflowCache
from engine.calendar import add_working_days
from engine.errors import ConcurrencyConflict, ProcessRefused, ServiceTaskFailed, TimerValueInvalid
from engine.events import PendingEvent, chain, data_delta
from engine.expressions import SafeScriptEngine
from engine.serialization import state_from_json, state_to_json
from engine.stepping import DEFAULT_STEP_BUDGET, find_tasks, run_engine_steps
from handlers import registry
from handlers.context import HandlerContext, InstanceView
from handlers.registry import HandlerParameterError
from storage.db import connection_of
from storage.models import ProcessInstance

# Set by BpmnEngine.run for the attempt in progress: service tasks that failed
# in an earlier, rolled-back attempt of the same work (element -> error).
FAILING: ContextVar[dict[str, str] | None] = ContextVar("ocop_failing_service_tasks", default=None)
MAX_DEFERRED_FAILURES = 10


# --- what a call changed, and the call in progress -------------------------------

@dataclass
class Outcome:
    """What one engine call changed, for the caller to show."""

    instance_id: int
    status: str
    ready_tasks: list[dict]
    end_event: str | None = None
    stars: int | None = None


class Execution:
    """One engine call in progress: the transaction, the instance, its
    workflow and the events to append. Service-task handlers are dispatched
    through it so their writes join the same transaction. The instance is
    the row as the call read it (a migration passes its ORM object, which
    has the same attributes); its new values go to the database only."""

    def __init__(self, unit: Session | Connection, instance: statements.InstanceRow | ProcessInstance,
                 now: datetime, step_budget: int = DEFAULT_STEP_BUDGET):
        # The transaction: an ORM session, or (a completion) a plain connection.
        self.unit = unit
        self.connection = connection_of(unit)
        self.instance = instance
        self.now = now
        self.events: list[PendingEvent] = []
        self.last_step: int | None = None  # cycle step of the last task run that declares one
        self.workflow: BpmnWorkflow | None = None
        # Ready user tasks when the call began: exactly the instance's inbox
        # rows, since every write keeps the two in step.
        self.ready_before: set[str] = set()
        self.outcome: Outcome | None = None
        self.new_version: int | None = None
        self.state_size = 0  # characters of the serialized state save() wrote (weighs the cached workflow)
        self.last_data: dict = {}  # data of the last task this call ran (for the completion's delta)
        self.timers: dict[str, datetime] = {}  # waiting timers (element -> due), found by conclude()
        self.timers_before: dict[str, datetime] = {}  # and when the call began (= its timer_due rows)
        # Service tasks that failed in an earlier, rolled-back attempt of this
        # call (element -> error): this attempt fails them at once, without
        # running their handler, and keeps the call's work (see BpmnEngine.run).
        self.failing: dict[str, str] = dict(FAILING.get() or {})
        self.failed: list[ServiceTaskFailed] = []
        self.step_budget = step_budget  # automatic steps this call may run (engine/stepping.py)
        self._view: InstanceView | None = None
        self._row_locked = False  # see lock_instance_row

    def script_engine(self) -> SafeScriptEngine:
        """The workflow's script engine for this call (it is not part of the
        state: set after every load)."""
        return SafeScriptEngine(self.call_service, self.check_timer)

    def check_timer(self, task, expression: str, value):
        """Every value the script engine evaluates passes here: a timer's
        value that is not ISO 8601 (engine/timer_values.py) fails like a
        service task -- this attempt raises TimerValueInvalid and is rolled
        back; the attempt again (BpmnEngine.run) sets the timer aside to wait
        on a moment that never comes, keeps the call's work and opens an
        incident on the timer. Other values pass unchanged."""
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, TimerEventDefinition) or expression != definition.expression:
            return value
        reason = timer_values.problem(timer_values.kind_of(definition), value)
        if reason is None:
            return value
        failure = TimerValueInvalid(task.task_spec.bpmn_id, value, *reason)
        if failure.element not in self.failing:
            raise failure
        task._set_internal_data(**{timer_values.SET_ASIDE: str(failure)})
        self.record_failure(failure)
        return timer_values.never(definition)

    def record_failure(self, failure: ServiceTaskFailed) -> None:
        """A task that failed in the attempt before fails again: it waits
        (in ERROR, or a timer set aside), the call's work is kept, and save()
        opens or counts its incident."""
        self.failed.append(failure)
        self.events.append(PendingEvent("service_failed", failure.element, {
            "handler": failure.handler, "error": str(failure)}))

    def call_service(self, task, name: str, params: dict) -> str:
        element = task.task_spec.bpmn_id
        if element in self.failing:
            raise ServiceTaskFailed(self.failing[element], element, name)
        handler = registry.get(name)
        if handler is None:
            raise ServiceTaskFailed(f"no handler '{name}' (element {element})", element, name)
        values = {key: param["value"] for key, param in params.items()}
        if not handler.pure:
            self.lock_instance_row()
        if self._view is None:
            self._view = InstanceView.of(self.instance)
        context = HandlerContext(self.unit, self._view, element, task.data, self.now.date(), self.now)
        try:
            result = handler.call(context, values)
        except HandlerParameterError as err:
            raise ServiceTaskFailed(f"{element}: {err}", element, name) from None
        except Exception as err:  # noqa: BLE001 - any handler failure: this attempt is rolled back
            raise ServiceTaskFailed(f"{element}: {type(err).__name__}: {err}", element, name) from None
        self.events.append(PendingEvent("service_called", task.task_spec.bpmn_id, {
            "handler": name, "step": cycle_step_of(task.task_spec), "params": values, "result": result}))
        return json.dumps(result, default=str)

    def lock_instance_row(self) -> None:
        """Before a handler writes, lock the instance row (still at the version
        the call read), so that every engine call locks it before anything
        else. A handler may update rows a concurrent call also changes (the
        escalation flags the instance's inbox rows, which a completion
        replaces after its own instance UPDATE): taken in the other order,
        the two calls would deadlock instead of one of them getting a
        ConcurrencyConflict. Raises ConcurrencyConflict when another call
        committed a newer version first. SQLite needs none of this: it has
        one write lock for the whole database, so writers never wait on
        each other in two places."""
        if self._row_locked:
            return
        self._row_locked = True
        if self.connection.dialect.name == "sqlite":
            return
        instance = self.instance
        locked = self.connection.execute(statements.LOCK_INSTANCE, {
            "instance_id": instance.id, "old_version": instance.version}).first()
        if locked is None:
            raise ConcurrencyConflict(instance.id)


def load_workflow(specs: SpecCache, unit: Session | Connection,
                  instance: ProcessInstance | statements.InstanceRow) -> BpmnWorkflow:
    """The instance's workflow as stored (its state read from the database)."""
    spec, subprocess_specs = specs.spec_for(unit, instance.definition_id, instance.process_id)
    state = (instance.state if isinstance(instance, ProcessInstance) else
             connection_of(unit).execute(statements.STATE, {"instance_id": instance.id}).scalar_one())
    return state_from_json(state, spec, subprocess_specs)


def load(execution: Execution, specs: SpecCache, workflows: WorkflowCache) -> None:
    """The workflow as of the instance's stored version: from the cache when
    it holds exactly that version, else deserialized."""
    instance = execution.instance
    cached = workflows.take(instance.id)
    if cached is not None and cached.version == instance.version:
        execution.workflow = cached.workflow
        execution.ready_before, execution.timers_before = set(cached.ready_ids), dict(cached.timers)
    else:
        execution.workflow = load_workflow(specs, execution.connection, instance)
        execution.ready_before = _ready_user_task_ids(execution.workflow)
        execution.timers_before = waiting_timers(execution.workflow)
    execution.workflow.script_engine = execution.script_engine()


# --- running SpiffWorkflow --------------------------------------------------------

def run_user_task(execution: Execution, task, completion: PendingEvent, before: dict) -> None:
    """Run a user task whose form is in its data, and everything automatic
    after it; the completion event gets the data delta this caused (the
    form's own variable is already in the event)."""
    with refusals():
        with clock.running_at(execution.now):
            task.run()
    execution.last_data = task.data
    advance(execution)
    completion.data["delta"] = data_delta(before, execution.last_data, skip=completion.data["data_key"])


def advance(execution: Execution) -> None:
    """Run the automatic tasks that are ready (gateways, scripts, service
    tasks, events) until only user tasks wait; record what ran and which
    way each gateway went."""
    completed: list[str] = []

    def record(task):
        if not task.task_spec.manual and getattr(task.task_spec, "bpmn_id", None):
            completed.append(task.task_spec.bpmn_id)
            execution.last_step = cycle_step_of(task.task_spec) or execution.last_step
            execution.last_data = task.data
            decision = gateway_decision(task)
            if decision is not None:
                execution.events.append(decision)

    try:
        with refusals(), clock.running_at(execution.now):
            run_engine_steps(execution.workflow, did_complete_task=record, budget=execution.step_budget)
    except ServiceTaskFailed as failure:
        if failure.element is None or failure.element not in execution.failing:
            raise
        # Failed in the attempt before: the task stays in ERROR, the call's work is kept.
        execution.record_failure(failure)
    if completed:
        execution.events.append(PendingEvent("engine_steps", None, {"elements": completed}))


@contextmanager
def refusals():
    """SpiffWorkflow's errors as the engine's: a service task's failure
    (ServiceTaskFailed: an incident), anything else a ProcessRefused that
    names the element (the call is rolled back, the portal says why)."""
    try:
        yield
    except SpiffWorkflowException as err:
        raise engine_failure(err) from None


def engine_failure(err: SpiffWorkflowException) -> ServiceTaskFailed | ProcessRefused:
    """The handler failure inside a SpiffWorkflow error; the error itself as
    a service failure when a service task raised it (e.g. a parameter
    expression that cannot be evaluated); else a refusal of the diagram at
    the element SpiffWorkflow names."""
    cause = getattr(err, "error", None) or err.__cause__ or err.__context__
    if isinstance(cause, ConcurrencyConflict):  # not the service's failure: the call lost a race
        raise cause from None
    if isinstance(cause, (ServiceTaskFailed, ProcessRefused)):
        return cause
    spec = getattr(getattr(err, "task", None), "task_spec", None) or getattr(err, "task_spec", None)
    element = getattr(spec, "bpmn_id", None)
    operator = getattr(spec, "operation_name", None)
    if operator:
        return ServiceTaskFailed(f"{err}", element, operator)
    name = getattr(spec, "bpmn_name", None) or element
    where = f" tại '{name}' ({element})" if element else ""
    return ProcessRefused(f"Sơ đồ quy trình không chạy tiếp được{where}; chưa có gì được lưu, hãy báo quản lý "
                          f"chương trình / the process diagram cannot go on{where.replace(' tại', ' at')}, "
                          f"nothing was saved: {err}", element)


def failed_task(workflow: BpmnWorkflow, element_id: str):
    """The task an incident is about: a service task in ERROR, or a timer
    set aside; None when there is none."""
    return next((t for t in workflow.get_tasks(state=TaskState.ERROR | TaskState.WAITING)
                 if t.task_spec.bpmn_id == element_id
                 and (t.state == TaskState.ERROR or timer_values.is_set_aside(t))), None)


def resume_failed_task(task, skip: bool) -> None:
    """A service task in ERROR: made ready to run again, or marked done
    without running (its result variable stays unset). A timer set aside:
    evaluated again by the next refresh of the timers, or (skipped) left
    aside -- its task waits without that deadline."""
    if timer_values.is_set_aside(task):
        if not skip:
            task.internal_data.pop(timer_values.SET_ASIDE, None)
            task.internal_data.pop("event_value", None)
    elif skip:
        task.complete()
    else:
        task._ready()


# --- writing the call ---------------------------------------------------------------

def conclude(execution: Execution, status: str | None = None) -> tuple[dict, dict]:
    """How the call ends, without writing: the ready user tasks (id ->
    task), the instance row's new values, and the closing events (tasks
    that became ready, the end reached)."""
    instance, workflow, now = execution.instance, execution.workflow, execution.now
    ready = {str(t.id): t for t in find_tasks(workflow, TaskState.READY, manual=True)}
    newly_ready = [(task_id, t) for task_id, t in ready.items() if task_id not in execution.ready_before]
    if newly_ready:  # task ids let a replay match later claims and completions
        execution.events.append(PendingEvent("tasks_ready", None, {
            "elements": [t.task_spec.bpmn_id for _id, t in newly_ready],
            "task_ids": [task_id for task_id, _t in newly_ready]}))
    values = {"state": None, "updated_at": now, "status": status or instance.status}
    if workflow.is_completed() and values["status"] == "running":
        end_task = next((t for t in workflow.get_tasks(state=TaskState.COMPLETED)
                         if isinstance(t.task_spec, EndEvent)), None)
        stars = (end_task.data if end_task else workflow.data).get("stars")
        values.update(status="completed", finished_at=now, stars=stars or None,
                      end_event=end_task.task_spec.bpmn_id if end_task else None)
        execution.events.append(PendingEvent("finished", values["end_event"], {"stars": stars}))
    ready_steps = [step for step in map(cycle_step_of, (t.task_spec for t in ready.values())) if step]
    values["current_step"] = max(ready_steps) if ready_steps else (execution.last_step or instance.current_step)
    execution.timers = waiting_timers(workflow)
    return ready, values


def save(execution: Execution, status: str | None = None) -> None:
    """Write the call. The instance row goes first and alone:
    UPDATE ... WHERE id = :id AND version = :old. A transaction that lost
    a race matches no row and stops there, before any task or history
    row is written; the winner holds the row until it commits."""
    connection, instance = execution.connection, execution.instance
    ready, values = conclude(execution, status)
    stale_ids, new_rows = inbox_changes(execution, ready)
    values["state"] = state_to_json(execution.workflow)
    execution.state_size = len(values["state"])
    execution.new_version = write_instance(connection, instance, values, execution.events, execution.now)
    if stale_ids:
        connection.execute(statements.DELETE_INBOX_ROWS, {"ids": stale_ids})
    if new_rows:
        connection.execute(statements.INSERT_INBOX_ROWS, new_rows)
    if execution.timers != execution.timers_before:  # most calls start and end without a timer
        write_timers(connection, instance.id, execution.timers)
    if execution.failed:
        with Session(bind=connection) as session:  # in the call's transaction
            incidents.open_incidents(session, instance.id, execution.failed, execution.now)
    execution.outcome = Outcome(instance.id, values["status"], [
        {"id": task_id, "element_id": t.task_spec.bpmn_id, "name": t.task_spec.bpmn_name,
         "lane": t.task_spec.lane, "step": cycle_step_of(t.task_spec),
         "form_key": diagram.task_form(t.task_spec)[0]}
        for task_id, t in ready.items()], values.get("end_event"), values.get("stars"))


def write_instance(unit: Session | Connection, instance: ProcessInstance, values: dict,
                   events: list[PendingEvent], now: datetime) -> int:
    """The one write of an instance row: the optimistic version check, the
    new values, the history events chained after the head. Plain Core
    statements: nothing of this is needed as ORM objects afterwards.
    Returns the new version."""
    history, seq, head = chain(instance.id, instance.audit_seq, instance.audit_head, events, now)
    new_version = instance.version + 1
    connection = connection_of(unit)
    values = {**values, "version": new_version, "audit_seq": seq, "audit_head": head}
    updated = connection.execute(
        statements.update_instance(tuple(sorted(values))),
        {"instance_id": instance.id, "old_version": instance.version,
         **{f"new_{column}": value for column, value in values.items()}}).rowcount
    if updated != 1:
        raise ConcurrencyConflict(instance.id)
    if history:
        connection.execute(statements.INSERT_EVENTS, history)
    return new_version


def inbox_changes(execution: Execution, ready: dict) -> tuple[list[str], list[dict]]:
    """Task ids to delete and rows to add so the inbox holds exactly the
    instance's ready user tasks (rows of tasks still ready, and their
    claims, stay as they are)."""
    stale = sorted(execution.ready_before - set(ready))
    new = [inbox_row(execution.instance, task, execution.now)
           for task_id, task in ready.items() if task_id not in execution.ready_before]
    return stale, new


def write_timers(unit: Session | Connection, instance_id: int, timers: dict[str, datetime]) -> None:
    """The instance's rows in timer_due: exactly its waiting timers."""
    connection = connection_of(unit)
    connection.execute(statements.DELETE_TIMERS, {"instance_id": instance_id})
    if timers:
        connection.execute(statements.INSERT_TIMERS, [
            {"instance_id": instance_id, "element_id": element, "due_at": due} for element, due in timers.items()])


def inbox_row(instance: ProcessInstance, task, now: datetime) -> dict:
    """The inbox row of a ready user task: its lane's role at the area of
    the role's level, its form, its due date."""
    spec = task.task_spec
    props = diagram.user_task_properties(spec)
    form_key, data_key = diagram.task_form(spec)
    role = roles.role_for_lane(spec.lane)
    if role is None:  # the deploy-time lint refuses it; a diagram stored before the lint may have it
        raise ProcessRefused(f"Việc '{spec.bpmn_name or spec.bpmn_id}' ({spec.bpmn_id}) nằm ở làn '{spec.lane}', "
                             f"không phải một vai trò nên không ai nhận được; chưa có gì được lưu, hãy báo quản lý "
                             f"chương trình / task {spec.bpmn_id} is in lane '{spec.lane}', which is no role; "
                             f"nothing was saved", spec.bpmn_id)
    assignee = assigned_person(task, props.get("assignee"))
    due_days, working_days = _int(props.get("dueDays")), _int(props.get("dueWorkingDays"))
    if working_days:  # the same calendar as a working_days_from_now() timer on the task
        due_at = add_working_days(now, working_days)
    else:
        due_at = now + timedelta(days=due_days) if due_days else None
    product = instance.product
    return dict(
        id=str(task.id), instance_id=instance.id, product_id=instance.product_id,
        producer_id=product.producer_id if product else None, element_id=spec.bpmn_id,
        name=spec.bpmn_name or spec.bpmn_id, lane=spec.lane, role=role.key,
        jurisdiction_id=instance.areas.get(role.level or "commune"),
        form_key=form_key, data_key=data_key, step=_int(props.get("step")),
        created_at=now, due_at=due_at, assignee_id=assignee, personal=assignee is not None)


def assigned_person(task, expression: str | None) -> int | None:
    """The user a task is for when its diagram says so (the `assignee`
    property: an expression over the task's data, e.g. each instance of
    the council's multi-instance sheet gets `province_member['user_id']`).
    Such a task is that person's alone (its row is `personal`): nobody else
    may claim, complete or release it (BpmnEngine.unclaim, reassign)."""
    if not expression:
        return None
    spec = task.task_spec
    try:
        value = task.workflow.script_engine.evaluate(task, expression)
        person = int(value)
        if isinstance(value, bool) or person < 1:
            raise ValueError(value)
    except Exception as err:  # noqa: BLE001 - any failure is the diagram's, named below
        raise ProcessRefused(f"Không xác định được người nhận việc '{spec.bpmn_name or spec.bpmn_id}' "
                             f"({spec.bpmn_id}) từ '{expression}'; chưa có gì được lưu / the assignee of task "
                             f"{spec.bpmn_id} could not be found from '{expression}': {err}", spec.bpmn_id) from None
    return person


# --- reading a workflow -------------------------------------------------------------

def gateway_decision(task) -> PendingEvent | None:
    """Which way a gateway with several outgoing flows went, and why: the
    condition of the flow taken (None for the default flow) and the values
    its conditions read."""
    spec = task.task_spec
    conditions = getattr(spec, "cond_task_specs", None)
    if conditions is None or len(spec.outputs) < 2:
        return None
    chosen = [child.task_spec for child in task.children if not child.has_state(TaskState.PREDICTED_MASK)]
    taken, inputs = [], {}
    for condition, _target in conditions:
        if condition is not None:
            inputs.update(expressions.inputs_of(condition.args[0], task.data))
    for target in chosen:
        condition = next((c.args[0] for c, name in conditions if name == target.name and c is not None), None)
        taken.append({"to": getattr(target, "bpmn_id", None) or target.name, "condition": condition})
    return PendingEvent("gateway_decision", spec.bpmn_id, {"taken": taken, "inputs": inputs})


def timer_tasks(workflow: BpmnWorkflow) -> list:
    """Timer events the workflow waits on (or that fired and wait to run)."""
    return find_tasks(workflow, TaskState.WAITING | TaskState.READY, manual=False,
                      where=lambda t: isinstance(getattr(t.task_spec, "event_definition", None),
                                                 TimerEventDefinition))


def waiting_timers(workflow: BpmnWorkflow) -> dict[str, datetime]:
    """Element id -> when it fires, for the timers the workflow waits on
    (not those set aside: they wait for a person, in an incident)."""
    return {t.task_spec.bpmn_id: timer_due_at(t) for t in timer_tasks(workflow) if not timer_values.is_set_aside(t)}


def timer_due_at(task) -> datetime:
    """When a waiting timer fires: the moment SpiffWorkflow computed when it
    began to wait (its `event_value`, ISO text)."""
    value = task._get_internal_data("event_value")
    if value is None:  # not evaluated yet: check again at the next run of the worker
        return datetime.now(timezone.utc)
    return TimerEventDefinition.get_datetime(value)


def cycle_step_of(task_spec) -> int | None:
    """The cycle step (1..6) a task declares in its `step` property, if any."""
    extensions = getattr(task_spec, "extensions", None) or {}
    return _int(extensions.get("properties", {}).get("step"))


def _ready_user_task_ids(workflow: BpmnWorkflow) -> set[str]:
    return {str(t.id) for t in find_tasks(workflow, TaskState.READY, manual=True)}


def _int(value) -> int | None:
    return int(value) if value not in (None, "") else None
