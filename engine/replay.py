"""Replay: rebuild an instance from its history and compare.

The history of an instance is a sequence of engine calls, each one a group
of events: the call itself (`started`, `task_completed`, a claim,
`cancelled`, `migrated`) followed by what it caused (`gateway_decision`,
`service_called`, `engine_steps`, `tasks_ready`, `finished`). A replay
builds a fresh workflow from the pinned definition version of the
`started` event and applies each call in order through the same engine
code a live call runs (engine/execution.py: `run_user_task`, `advance`,
`conclude`; `migration.move_workflow`); after every call it compares what the replay
caused with what was recorded, and at the end it compares the replayed
workflow with the stored state and the instance row.

A replay writes nothing. Service tasks do not run their handlers again:
a handler with side effects (a training enrolment, a listing) gets its
recorded result back; a pure handler (`rank_product`) is run again and its
result must equal the recorded one, so an altered score sheet is caught.

The first difference stops the replay: later ones would only echo it.
"""
from __future__ import annotations

import dataclasses
import json
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import clock, execution, statements
from engine.bpmn_engine import BpmnEngine
from engine.errors import ProcessRefused, ServiceTaskFailed
from engine.events import EVENT_MISSING, STATE_DRIFT, Finding, PendingEvent, plain
from engine.stepping import DEFAULT_STEP_BUDGET, EngineWorkflow
from handlers import registry
from handlers.context import HandlerContext
from handlers.registry import HandlerParameterError
from storage.db import as_utc
from storage.models import AuditEvent, ProcessDefinition, ProcessInstance

# The kinds that open a group: one engine call each.
CALL_KINDS = frozenset({"started", "task_completed", "claimed", "unclaimed", "reassigned", "cancelled",
                        "migrated", "timer_fired", "service_retried", "service_skipped"})
CLAIM_KINDS = frozenset({"claimed", "unclaimed", "reassigned"})


class Drift(Exception):
    """The replay and the record part ways at one event."""

    def __init__(self, seq: int | None, message: str):
        super().__init__(message)
        self.seq = seq


class ReplayRun(execution.Execution):
    """An engine call that writes nothing: service tasks take the results recorded
    in this call's group (pure handlers are run again instead)."""

    def __init__(self, session: Session, instance, event: AuditEvent, recorded: list[AuditEvent],
                 step_budget: int = DEFAULT_STEP_BUDGET):
        super().__init__(session, instance, as_utc(event.at), step_budget)
        self.seq = event.seq
        self.recorded_services = [e for e in recorded if e.kind == "service_called"]
        # A failure recorded in this call happens again here, without the handler.
        self.failing = {e.element_id: e.data.get("error", "") for e in recorded if e.kind == "service_failed"}

    def call_service(self, task, name: str, params: dict) -> str:
        element = task.task_spec.bpmn_id
        if element in self.failing:
            raise ServiceTaskFailed(self.failing[element], element, name)
        values = {key: param["value"] for key, param in params.items()}
        recorded = next((e for e in self.recorded_services if e.element_id == element), None)
        if recorded is not None:
            self.recorded_services.remove(recorded)
        handler = registry.get(name)
        if handler is None:
            raise ServiceTaskFailed(f"no handler '{name}' (element {element})")
        if handler.pure:
            context = HandlerContext(self.unit, self.instance, element, task.data, self.now.date(), self.now)
            try:
                result = handler.call(context, values)
            except HandlerParameterError as err:
                raise ServiceTaskFailed(f"{element}: {err}") from None
        elif recorded is None:
            raise ServiceTaskFailed(f"{element} runs handler '{name}' here, but the history records no such call")
        else:
            result = recorded.data.get("result")
        self.events.append(PendingEvent("service_called", element, {
            "handler": name, "step": recorded.data.get("step") if recorded else None, "params": values,
            "result": result}))
        return json.dumps(result, default=str)


def groups(events: list[AuditEvent]) -> list[tuple[AuditEvent, list[AuditEvent]]]:
    """Events split into engine calls: (the call, what it caused)."""
    out: list[tuple[AuditEvent, list[AuditEvent]]] = []
    for event in events:
        if event.kind in CALL_KINDS or not out:
            out.append((event, []))
        else:
            out[-1][1].append(event)
    return out


class Replay:
    """One instance's replay; `run()` returns the first difference found."""

    def __init__(self, engine: BpmnEngine, session: Session, instance: ProcessInstance, events: list[AuditEvent]):
        self.engine = engine
        self.session = session
        self.instance = instance
        self.row = statements.snapshot(instance)  # what the replayed calls see of it
        self.events = events
        self.workflow: BpmnWorkflow | None = None
        self.definition: ProcessDefinition | None = None
        self.task_ids: dict[str, str] = {}  # recorded task id -> replayed task id
        self.ready: set[str] = set()  # ids of the replayed user tasks waiting now
        # The instance row as the replay has it so far.
        self.status, self.current_step, self.stars, self.end_event = "running", None, None, None

    def run(self) -> list[Finding]:
        try:
            for call, caused in groups(self.events):
                self.apply(call, caused)
            self.compare_with_stored()
        except Drift as drift:
            return [Finding(self.instance.id, drift.seq, STATE_DRIFT, str(drift))]
        return []

    # --- applying one recorded call ---------------------------------------

    def apply(self, call: AuditEvent, caused: list[AuditEvent]) -> None:
        if self.workflow is None and call.kind != "started":
            raise Drift(call.seq, f"the history begins with '{call.kind}', not 'started'")
        as_replayed = dataclasses.replace(self.row, status=self.status, current_step=self.current_step)
        run = ReplayRun(self.session, as_replayed, call, caused, self.engine.step_budget)
        run.workflow = self.workflow
        run.ready_before = self.ready
        status = None
        try:
            if call.kind == "started":
                self.start(run, call)
            elif call.kind == "task_completed":
                self.complete(run, call)
            elif call.kind in CLAIM_KINDS:
                self.ready_task(call)  # a claim changes who, not where: the task must be waiting
            elif call.kind == "cancelled":
                run.workflow.cancel()
                status = "cancelled"
            elif call.kind in ("service_retried", "service_skipped"):
                failed = execution.failed_task(self.workflow, call.element_id)
                if failed is None:
                    raise Drift(call.seq, f"'{call.kind}' on {call.element_id}, which has not failed at this point")
                self.workflow.script_engine = run.script_engine()
                execution.resume_failed_task(failed, call.kind == "service_skipped")
                execution.advance(run)
            elif call.kind == "timer_fired":
                self.fire_timers(run, call)
            elif call.kind == "migrated":
                self.migrate(call)
                run.workflow = self.workflow
            else:
                raise Drift(call.seq, f"unknown kind of engine call '{call.kind}'")
        except (ServiceTaskFailed, ProcessRefused) as err:
            raise Drift(call.seq, f"the replay fails here: {err}") from None
        if call.kind not in CLAIM_KINDS:
            ready, values = execution.conclude(run, status)
            self.ready = set(ready)
            self.status, self.current_step = values["status"], values["current_step"]
            if "end_event" in values:
                self.stars, self.end_event = values["stars"], values["end_event"]
            self.compare_caused(call, caused, run.events)

    def start(self, run: ReplayRun, call: AuditEvent) -> None:
        name, version = call.data.get("definition"), call.data.get("version")
        self.definition = self.session.scalar(select(ProcessDefinition).where(
            ProcessDefinition.name == name, ProcessDefinition.version == version))
        if self.definition is None:
            raise Drift(call.seq, f"the history starts on {name} version {version}, which is not deployed")
        spec, subprocess_specs = self.engine.specs.spec_for(self.session, self.definition.id, call.element_id)
        # The engine's own workflow class, as a live start makes: its shortcuts past
        # SpiffWorkflow's tree walks were most of a replay's time without them.
        run.workflow = self.workflow = EngineWorkflow(spec, subprocess_specs,
                                                      script_engine=run.script_engine())
        for task in run.workflow.get_tasks(state=TaskState.READY):
            task.data.update(call.data.get("data") or {})
        execution.advance(run)

    def complete(self, run: ReplayRun, call: AuditEvent) -> None:
        task = self.ready_task(call)
        data = call.data
        if not task.task_spec.manual:
            raise Drift(call.seq, f"{call.element_id} is not a user task")
        self.workflow.script_engine = run.script_engine()
        before = dict(task.data)
        if data["data_key"]:
            task.data[data["data_key"]] = data.get("form")
        completion = PendingEvent("task_completed", call.element_id, {"data_key": data["data_key"]})
        execution.run_user_task(run, task, completion, before)
        if "delta" in data and not _same(completion.data["delta"], data["delta"]):
            raise Drift(call.seq, "the data this completion changed differs: recorded "
                        f"{_short(data['delta'])}, replayed {_short(completion.data['delta'])}")

    def fire_timers(self, run: ReplayRun, call: AuditEvent) -> None:
        """The timers the worker fired at the recorded time, and what followed."""
        waiting = {str(t.id) for t in execution.timer_tasks(self.workflow)}
        self.workflow.script_engine = run.script_engine()
        with clock.running_at(run.now):
            self.workflow.refresh_timers()
        fired = [t.task_spec.bpmn_id for t in self.workflow.get_tasks(state=TaskState.READY, manual=False)
                 if str(t.id) in waiting]
        if fired != call.data.get("elements"):
            raise Drift(call.seq, f"timers due at this time: {fired}, recorded as fired: {call.data.get('elements')}")
        execution.advance(run)

    def ready_task(self, call: AuditEvent):
        """The replayed task a recorded call refers to: by the task id mapped
        from `tasks_ready`, else the one ready task of that element."""
        recorded_id = call.data.get("task_id")
        task = None
        if recorded_id in self.task_ids:
            task = self.workflow.get_task_from_id(UUID(self.task_ids[recorded_id]))
        else:
            matches = [t for t in self.workflow.get_tasks(state=TaskState.READY, manual=True)
                       if t.task_spec.bpmn_id == call.element_id]
            task = matches[0] if len(matches) == 1 else None
        if task is None or task.state != TaskState.READY or task.task_spec.bpmn_id != call.element_id:
            raise Drift(call.seq, f"'{call.kind}' on {call.element_id}, which is not waiting at this point")
        return task

    def migrate(self, call: AuditEvent) -> None:
        from engine.migration import move_workflow  # migration imports the engine too

        target = self.session.get(ProcessDefinition, call.data.get("to_definition"))
        if target is None or target.version != call.data.get("to_version"):
            raise Drift(call.seq, f"migrated to definition {call.data.get('to_definition')}, which is not deployed")
        spec, subprocess_specs = self.engine.specs.spec_for(self.session, target.id, self.instance.process_id)
        try:
            move_workflow(self.workflow, spec, subprocess_specs)
        except Exception as err:  # noqa: BLE001 - any failure is where the replay parts ways
            raise Drift(call.seq, f"the recorded migration cannot be repeated: {err}") from None
        self.definition = target

    # --- comparing --------------------------------------------------------

    def compare_caused(self, call: AuditEvent, recorded: list[AuditEvent], replayed: list[PendingEvent]) -> None:
        """The events the call caused, one by one: kind, element and data."""
        replayed = [e for e in replayed if e.kind != call.kind]
        for index in range(max(len(recorded), len(replayed))):
            want = recorded[index] if index < len(recorded) else None
            got = replayed[index] if index < len(replayed) else None
            seq = want.seq if want is not None else call.seq
            if want is None:
                raise Drift(seq, f"the replay also produces '{got.kind}' {got.element_id or ''} "
                            "after this call; the history has no such event")
            if got is None:
                raise Drift(seq, f"the history has '{want.kind}' {want.element_id or ''}, "
                            "which the replay does not produce")
            got_data = got.data
            if want.kind == "tasks_ready":
                self.map_task_ids(want, got_data)
                want_data = {"elements": want.data.get("elements")}
                got_data = {"elements": got_data.get("elements")}
            else:
                want_data = want.data
            if (want.kind, want.element_id) != (got.kind, got.element_id) or not _same(got_data, want_data):
                raise Drift(seq, f"'{want.kind}' {want.element_id or ''} differs: recorded {_short(want_data)}, "
                            f"replayed '{got.kind}' {got.element_id or ''} {_short(got_data)}")

    def map_task_ids(self, recorded: AuditEvent, replayed: dict) -> None:
        for old, new in zip(recorded.data.get("task_ids") or [], replayed.get("task_ids") or []):
            self.task_ids[old] = new

    def compare_with_stored(self) -> None:
        """The replayed workflow against the stored state, and the instance
        row against the replay's outcome and the history's head."""
        instance, last = self.instance, self.events[-1]
        if self.definition.id != instance.definition_id:
            raise Drift(None, f"the instance runs definition {instance.definition_id}, "
                        f"the history ends on definition {self.definition.id}")
        if (instance.audit_seq, instance.audit_head) != (last.seq, last.hash):
            raise Drift(last.seq, f"the instance's history head is event {instance.audit_seq}, "
                        f"the last stored event is {last.seq}")
        expected = {"status": self.status, "stars": self.stars, "end_event": self.end_event,
                    "current_step": self.current_step}
        for column, value in expected.items():
            if getattr(instance, column) != value:
                raise Drift(None, f"the instance's {column} is {getattr(instance, column)!r}, "
                            f"the replay gives {value!r}")
        try:
            stored = self.engine.load_workflow(self.session, instance)
        except Exception as err:  # noqa: BLE001 - a state that does not load has drifted too
            raise Drift(None, f"the stored state cannot be read: {type(err).__name__}: {err}") from None
        _compare_workflows(stored, self.workflow, self.task_ids)


def _compare_workflows(stored: BpmnWorkflow, replayed: BpmnWorkflow, task_ids: dict[str, str]) -> None:
    if stored.data != replayed.data and plain(stored.data) != plain(replayed.data):
        raise Drift(None, f"the stored workflow data differs: {_data_diff(stored.data, replayed.data)}")
    stored_tasks, replayed_tasks = stored.get_tasks(), replayed.get_tasks()
    for index, (mine, theirs) in enumerate(zip(stored_tasks, replayed_tasks)):
        name = mine.task_spec.name
        if name != theirs.task_spec.name or mine.state != theirs.state:
            raise Drift(None, f"stored state: task {index + 1} is {name} ({TaskState.get_name(mine.state)}), "
                        f"the replay has {theirs.task_spec.name} ({TaskState.get_name(theirs.state)})")
        if mine.data != theirs.data and plain(mine.data) != plain(theirs.data):
            raise Drift(None, f"stored state: the data of {name} ({TaskState.get_name(mine.state)}) differs: "
                        f"{_data_diff(mine.data, theirs.data)}")
        if mine.state == TaskState.READY and mine.task_spec.manual and task_ids.get(str(mine.id)) != str(theirs.id):
            raise Drift(None, f"stored state: the waiting task {name} has id {mine.id}, "
                        "which the history never made ready")
    if len(stored_tasks) != len(replayed_tasks):
        raise Drift(None, f"stored state has {len(stored_tasks)} tasks, the replay {len(replayed_tasks)}")


def _same(replayed, recorded) -> bool:
    """Whether replayed data equals recorded (JSON-plain) data: compared as
    they are first, made plain only when that differs (a date against its
    text): most compare equal at once, and plain() is a JSON round trip."""
    return replayed == recorded or plain(replayed) == recorded


def _data_diff(stored: dict, replayed: dict) -> str:
    stored, replayed = plain(stored), plain(replayed)
    keys = sorted(k for k in set(stored) | set(replayed) if stored.get(k) != replayed.get(k))
    return "; ".join(f"{k}: stored {_short(stored.get(k))}, replayed {_short(replayed.get(k))}" for k in keys[:3])


def _short(value, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def replay_instance(engine: BpmnEngine, session: Session, instance: ProcessInstance,
                    events: list[AuditEvent] | None = None) -> list[Finding]:
    """Replay one instance (its events, oldest first, if already loaded)."""
    if events is None:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id)
                                      .order_by(AuditEvent.seq)))
    if not events:
        return [Finding(instance.id, None, EVENT_MISSING, "the instance has no history at all")]
    return Replay(engine, session, instance, events).run()
