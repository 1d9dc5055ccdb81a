"""The engine facade: everything the web layer and the CLI do to workflows.

Each public method is one database transaction: load, run SpiffWorkflow,
write the new state (optimistic version check), refresh the inbox rows,
append audit events, commit -- or change nothing. This module is the one
place where a task gets completed.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import threading
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import clock, diagram, expressions, incidents, roles, statements
from engine.access import Actor, may_act
from engine.calendar import add_working_days
from engine.errors import (
    AlreadyInCycle,
    ClaimedByOther,
    ConcurrencyConflict,
    InstanceNotRunning,
    NoActiveDefinition,
    NotAllowed,
    RegistrationClosed,
    ServiceTaskFailed,
    TaskNotReady,
    UnknownTask,
)
from engine.events import GENESIS, PendingEvent, chain, data_delta
from engine.expressions import SafeScriptEngine
from engine.forms import validate_form
from engine.serialization import specs_from_dict, specs_to_dict, state_from_json, state_to_json
from engine.stepping import EngineWorkflow, find_tasks, run_engine_steps
from handlers import registry
from handlers.registry import HandlerContext, HandlerParameterError
from storage.areas import area_chain
from storage.db import Database, connection_of
from storage.models import (
    InboxTask,
    Incident,
    ProcessDefinition,
    ProcessInstance,
    TimerDue,
)

DEFAULT_MAX_RESUBMISSIONS = 3
SPEC_CACHE_SIZE = 16
WORKFLOW_CACHE_SIZE = 256


# Set by keeps_step_on_failure for the attempt in progress: element -> error.
_FAILING: ContextVar[dict[str, str] | None] = ContextVar("ocop_failing_service_tasks", default=None)
MAX_DEFERRED_FAILURES = 10


def keeps_step_on_failure(method):
    """A service task that fails must not lose the step that reached it (a
    reviewer's decision, a fired timer). The first attempt runs everything;
    if a handler fails, that attempt is rolled back (its partial writes
    with it) and the call is made again with the task marked failing: it
    then fails at once, stays in ERROR, and an incident is opened for the
    worker to retry."""

    @functools.wraps(method)
    def attempt(self, *args, **kwargs):
        failing: dict[str, str] = {}
        while True:
            token = _FAILING.set(dict(failing))
            try:
                return method(self, *args, **kwargs)
            except ServiceTaskFailed as err:
                if err.element is None or err.element in failing or len(failing) >= MAX_DEFERRED_FAILURES:
                    raise
                failing[err.element] = str(err)
            finally:
                _FAILING.reset(token)

    return attempt


@dataclass
class StepResult:
    """What one engine call changed, for the caller to show."""

    instance_id: int
    status: str
    ready_tasks: list[dict]
    end_event: str | None = None
    stars: int | None = None


@dataclass(frozen=True)
class CachedWorkflow:
    """A committed step's workflow, kept for the instance's next step, with
    what the step found in it: the ready user tasks (the instance's inbox
    rows) and the waiting timers (its timer_due rows)."""

    version: int
    workflow: BpmnWorkflow
    ready_ids: frozenset[str]
    timers: dict[str, datetime]


class StepRun:
    """One engine call in progress: the transaction, the instance, its
    workflow and the events to append. Service-task handlers are dispatched
    through it so their writes join the same transaction. The instance is
    the row as the step read it (a migration passes its ORM object, which
    has the same attributes); its new values go to the database only."""

    def __init__(self, unit: Session | Connection, instance: statements.InstanceRow | ProcessInstance,
                 now: datetime):
        # The transaction: an ORM session, or (a completion) a plain connection.
        self.unit = unit
        self.connection = connection_of(unit)
        self.instance = instance
        self.now = now
        self.events: list[PendingEvent] = []
        self.last_step: int | None = None  # step of the last task run that declares one
        self.workflow: BpmnWorkflow | None = None
        # Ready user tasks when the step began: exactly the instance's inbox
        # rows, since every write keeps the two in step.
        self.ready_before: set[str] = set()
        self.result: StepResult | None = None
        self.result_version: int | None = None
        self.last_data: dict = {}  # data of the last task this step ran (for the completion's delta)
        self.timers: dict[str, datetime] = {}  # waiting timers (element -> due), found by conclude()
        self.timers_before: dict[str, datetime] = {}  # and when the step began (= its timer_due rows)
        # Service tasks that failed in an earlier, rolled-back attempt of this
        # call (element -> error): this attempt fails them at once, without
        # running their handler, and keeps the step (see keeps_step_on_failure).
        self.failing: dict[str, str] = dict(_FAILING.get() or {})
        self.failed: list[ServiceTaskFailed] = []

    def call_service(self, task, name: str, params: dict) -> str:
        element = task.task_spec.bpmn_id
        if element in self.failing:
            raise ServiceTaskFailed(self.failing[element], element, name)
        handler = registry.get(name)
        if handler is None:
            raise ServiceTaskFailed(f"no handler '{name}' (element {element})", element, name)
        values = {key: param["value"] for key, param in params.items()}
        context = HandlerContext(self.unit, self.instance, element, task.data, self.now.date(), self.now)
        try:
            result = handler.call(context, values)
        except HandlerParameterError as err:
            raise ServiceTaskFailed(f"{element}: {err}", element, name) from None
        except Exception as err:  # noqa: BLE001 - any handler failure: this attempt is rolled back
            raise ServiceTaskFailed(f"{element}: {type(err).__name__}: {err}", element, name) from None
        self.events.append(PendingEvent("service_called", task.task_spec.bpmn_id, {
            "handler": name, "step": step_of(task.task_spec), "params": values, "result": result}))
        return json.dumps(result, default=str)


class BpmnEngine:
    @classmethod
    def from_environment(cls) -> "BpmnEngine":
        """Configured by OCOP_DATABASE_URL and OCOP_MAX_RESUBMISSIONS."""
        limit = os.environ.get("OCOP_MAX_RESUBMISSIONS", str(DEFAULT_MAX_RESUBMISSIONS))
        if not limit.isdigit():
            raise ValueError(f"OCOP_MAX_RESUBMISSIONS must be a whole number, not '{limit}'")
        return cls(Database(), max_resubmissions=int(limit))

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None,
                 max_resubmissions: int = DEFAULT_MAX_RESUBMISSIONS):
        self.db = db
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.max_resubmissions = max_resubmissions
        self._specs: OrderedDict[int, dict] = OrderedDict()
        # instance id -> its workflow as last committed by this process.
        self._workflows: OrderedDict[int, CachedWorkflow] = OrderedDict()
        self._lock = threading.Lock()

    # --- definitions ------------------------------------------------------

    def deploy(self, xml: bytes, name: str, author: str, message: str = "",
               province_id: int | None = None, activate: bool = True) -> ProcessDefinition:
        """Check the diagram (all three layers) and store it as a new
        immutable version; deploying the same bytes again returns the
        existing version."""
        if isinstance(xml, str):
            xml = xml.encode("utf-8")
        checked = diagram.check_or_raise(xml, f"{name}.bpmn")
        with self.db.transaction() as session:
            definition, _created = self.store_definition(session, xml, checked, name, author, message,
                                                         province_id, activate)
            return definition

    def store_definition(self, session: Session, xml: bytes, checked: diagram.CheckedDiagram, name: str,
                         author: str, message: str, province_id: int | None,
                         activate: bool) -> tuple[ProcessDefinition, bool]:
        """In the caller's transaction, store a checked diagram as the next
        version of `name` (or find the latest version when it has the same
        bytes and scope). Returns the definition and whether it is new."""
        digest = hashlib.sha256(xml).hexdigest()
        latest = session.scalar(select(ProcessDefinition).where(ProcessDefinition.name == name)
                                .order_by(ProcessDefinition.version.desc()).limit(1))
        created = not (latest is not None and latest.sha256 == digest and latest.province_id == province_id)
        if created:
            definition = ProcessDefinition(
                name=name, version=(latest.version + 1) if latest else 1,
                bpmn_xml=xml.decode("utf-8"), sha256=digest,
                specs={pid: specs_to_dict(*pair) for pid, pair in checked.specs.items()},
                author=author, message=message, deployed_at=self.clock(), province_id=province_id)
            session.add(definition)
            session.flush()
        else:
            definition = latest
        if activate and not definition.is_active:
            self.activate(session, definition)
        return definition, created

    def activate(self, session: Session, definition: ProcessDefinition) -> None:
        """One active definition per scope (national, or one province)."""
        for other in session.scalars(select(ProcessDefinition).where(
                ProcessDefinition.is_active.is_(True), _same_scope(definition.province_id))):
            other.is_active = False
        definition.is_active = True

    def active_definition(self, session: Session, province_id: int | None) -> ProcessDefinition:
        """The province's own active variant if it has one, else the national one."""
        return session.get(ProcessDefinition, self.active_version(session, province_id).id)

    @staticmethod
    def active_version(session: Session, province_id: int | None):
        """active_definition's id, name, version and province_id only (a
        plain row, one statement: what a start needs)."""
        rows = session.connection().execute(statements.ACTIVE_DEFINITIONS, {"province_id": province_id}).all()
        for scope in (province_id, None):
            definition = next((row for row in rows if row.province_id == scope), None)
            if definition is not None:
                return definition
        raise NoActiveDefinition(f"no active diagram for province {province_id} nor a national one")

    def spec_for(self, session: Session | Connection, definition_id: int, process_id: str):
        """Parsed specs of a deployed version, restored once and cached (an
        LRU of SPEC_CACHE_SIZE versions); deployments never change."""
        with self._lock:
            bundle = self._specs.get(definition_id)
            if bundle is not None:
                self._specs.move_to_end(definition_id)
                return bundle[process_id]
        stored = connection_of(session).execute(
            select(ProcessDefinition.specs).where(ProcessDefinition.id == definition_id)).scalar_one()
        bundle = {pid: specs_from_dict(dct) for pid, dct in stored.items()}
        with self._lock:
            self._specs[definition_id] = bundle
            while len(self._specs) > SPEC_CACHE_SIZE:
                self._specs.popitem(last=False)
        return bundle[process_id]

    # --- starting instances ----------------------------------------------

    @keeps_step_on_failure
    def start_outreach(self, jurisdiction_id: int, actor: Actor, year: int | None = None) -> StepResult:
        """Step 1 for one locality: the campaign that opens idea registration."""
        now = self.clock()
        year = year or now.year
        with self.db.transaction() as session:
            chain = area_chain(session, jurisdiction_id)
            if not any(actor.holds(role, area) for role, area in (
                    ("district_officer", jurisdiction_id), ("commune_officer", jurisdiction_id),
                    ("program_manager", chain.get("province")), ("admin", chain.get("central")))):
                raise NotAllowed("only the area's OCOP officer, its province's program manager "
                                 "or an administrator may start an outreach campaign")
            definition = self.active_version(session, chain.get("province"))
            data = {"jurisdiction_id": jurisdiction_id, "year": year}
            run = self._start(session, definition, diagram.OUTREACH_PROCESS, None,
                              jurisdiction_id, chain, year, data, actor, now)
        return self._committed(run)

    @keeps_step_on_failure
    def start_product(self, product_id: int, actor: Actor, year: int | None = None) -> StepResult:
        """Steps 2-6 for one product: needs an open registration window."""
        now = self.clock()
        year = year or now.year
        with self.db.transaction() as session:
            connection = session.connection()
            product = connection.execute(statements.PRODUCT_WITH_COMMUNE, {"product_id": product_id}).first()
            if product is None:
                raise LookupError(f"no product {product_id}")
            commune_id = product.commune_id
            if not (product.producer_id in actor.producer_ids or actor.holds("commune_officer", commune_id)):
                raise NotAllowed("only the producer or its commune officer may register this product")
            chain = area_chain(session, commune_id)
            self._require_open_window(session, chain, now.date())
            self._require_not_in_cycle(session, product.id, year)
            definition = self.active_version(session, chain.get("province"))
            data = {
                "product_id": product.id, "product_name": product.name,
                "product_group": product.group_code, "producer_id": product.producer_id,
                "commune_id": commune_id, "district_id": chain.get("district"),
                "province_id": chain.get("province"), "year": year,
                "max_resubmissions": self.max_resubmissions,
            }
            run = self._start(session, definition, diagram.PRODUCT_PROCESS,
                              statements.ProductRow(product.id, product.name, product.producer_id, product.group_code),
                              commune_id, chain, year, data, actor, now)
        return self._committed(run)

    @staticmethod
    def _require_not_in_cycle(session: Session, product_id: int, year: int) -> None:
        # The unique index uq_process_instance_product_year settles a race
        # between two starts; this check gives the usual case its message.
        if session.connection().execute(statements.IN_CYCLE, {"product_id": product_id, "year": year}).first():
            raise AlreadyInCycle(f"Sản phẩm đã tham gia chu trình năm {year} / "
                                 f"the product is already in the {year} cycle")

    def _require_open_window(self, session: Session, chain: dict[str, int], today: date) -> None:
        window = session.connection().execute(statements.OPEN_WINDOW, {
            "areas": list(chain.values()), "today": today}).first()
        if window is None:
            raise RegistrationClosed("Chưa mở đăng ký ý tưởng sản phẩm cho địa bàn này / "
                                     "idea registration is not open for this area today")

    def _start(self, session, definition, process_id, product: statements.ProductRow | None, jurisdiction_id,
               areas, year, data, actor, now) -> StepRun:
        spec, subprocess_specs = self.spec_for(session, definition.id, process_id)
        instance = statements.InstanceRow(
            id=0, definition_id=definition.id, process_id=process_id, product_id=product.id if product else None,
            jurisdiction_id=jurisdiction_id, areas=areas, year=year, status="running", current_step=None,
            version=0, audit_seq=0, audit_head=GENESIS, product=product)
        columns = {name: getattr(instance, name) for name in statements.INSTANCE_INSERTED}
        try:
            inserted = session.connection().execute(statements.INSERT_INSTANCE, {
                **columns, "state": "", "started_at": now, "updated_at": now})
        except IntegrityError:  # lost a race against another start of this product and year
            raise AlreadyInCycle(f"the product is already in the {year} cycle") from None
        instance = dataclasses.replace(instance, id=inserted.inserted_primary_key[0])
        run = StepRun(session, instance, now)
        run.workflow = EngineWorkflow(spec, subprocess_specs, script_engine=SafeScriptEngine(run.call_service))
        for task in run.workflow.get_tasks(state=TaskState.READY):  # the start: data flows from it
            task.data.update(data)
        run.events.append(PendingEvent("started", process_id, {
            "definition": definition.name, "version": definition.version, "data": data}, actor.user_id))
        self.advance(run)
        self._save(run)
        return run

    # --- tasks --------------------------------------------------------------

    def ready_tasks(self, instance_id: int) -> list[InboxTask]:
        with self.db.transaction() as session:
            return list(session.scalars(select(InboxTask).where(InboxTask.instance_id == instance_id)
                                        .order_by(InboxTask.created_at, InboxTask.id)))

    @keeps_step_on_failure
    def complete_task(self, task_id: str, data: dict, actor: Actor) -> StepResult:
        """Validate the form, check the actor, run the task and everything
        automatic after it, and save -- all in one transaction."""
        now = self.clock()
        # A plain connection, not an ORM session: a completion runs prebuilt
        # statements only, and a session's bookkeeping cost as much as they do.
        with self.db.statements() as connection:
            # One query for the task, its instance and product.
            row = connection.execute(statements.TASK_WITH_INSTANCE, {"task_id": task_id}).first()
            if row is None:
                raise UnknownTask(task_id)
            instance = statements.instance_row(row._mapping)
            if not may_act(actor, row):
                raise NotAllowed(f"{actor.name} may not act on task '{row.name}' "
                                 f"(role {row.role} of area {row.jurisdiction_id})")
            if row.assignee_id is not None and row.assignee_id != actor.user_id:
                raise ClaimedByOther(f"task '{row.name}' is claimed by user {row.assignee_id}")
            form = validate_form(row.form_key, data, instance.product.group_code if instance.product else None)
            run = StepRun(connection, instance, now)
            self._load(run)
            task = run.workflow.get_task_from_id(UUID(task_id))
            if task is None:
                raise UnknownTask(task_id)
            if task.state != TaskState.READY:
                raise TaskNotReady(task_id, TaskState.get_name(task.state))
            before = dict(task.data)  # values are replaced by later steps, never changed in place
            task.data[row.data_key] = form
            completion = PendingEvent("task_completed", row.element_id, {
                "task_id": task_id, "name": row.name, "role": row.role, "step": row.step,
                "form_key": row.form_key, "data_key": row.data_key, "form": form}, actor.user_id)
            run.events.append(completion)
            self.run_user_task(run, task, completion, before)
            self._save(run)
        return self._committed(run)

    # --- claims ---------------------------------------------------------------

    def claim(self, task_id: str, actor: Actor) -> None:
        """Take a task: colleagues of the area then cannot complete it."""
        def change(row, instance):
            if not may_act(actor, row):
                raise NotAllowed(f"{actor.name} may not act on task '{row.name}'")
            if row.assignee_id not in (None, actor.user_id):
                raise ClaimedByOther(f"task '{row.name}' is already claimed by user {row.assignee_id}")
            return actor.user_id
        self._change_assignee(task_id, actor, "claimed", change)

    def unclaim(self, task_id: str, actor: Actor) -> None:
        """Give a task back to the area (its assignee or a supervisor)."""
        def change(row, instance):
            if row.assignee_id != actor.user_id and not _supervises(actor, instance):
                raise NotAllowed("only the assignee or a supervisor of the area may release this task")
            return None
        self._change_assignee(task_id, actor, "unclaimed", change)

    def reassign(self, task_id: str, actor: Actor, to: Actor) -> None:
        """A supervisor of the area hands the task to a named colleague who
        may act on it."""
        def change(row, instance):
            if not _supervises(actor, instance):
                raise NotAllowed("only a supervisor of the area may reassign tasks")
            if not may_act(to, row):
                raise NotAllowed(f"{to.name} does not hold role {row.role} for this area")
            return to.user_id
        self._change_assignee(task_id, actor, "reassigned", change)

    def _change_assignee(self, task_id: str, actor: Actor, kind: str, change) -> None:
        now = self.clock()
        with self.db.transaction() as session:
            row = session.get(InboxTask, task_id)
            if row is None:
                raise UnknownTask(task_id)
            instance = session.get(ProcessInstance, row.instance_id)
            # The row again, read after the instance: a claim committed in
            # between shows here, or it bumped the version read above and
            # this write fails its version check. Read only before the
            # instance, both claims could succeed.
            session.refresh(row)
            assignee = change(row, instance)
            event = PendingEvent(kind, row.element_id, {"task_id": task_id, "assignee": assignee,
                                                        "previous": row.assignee_id}, actor.user_id)
            old_version = instance.version
            new_version = self.write_instance(session, instance, {"updated_at": now}, [event], now)
            session.connection().execute(update(InboxTask.__table__).where(InboxTask.id == task_id)
                                         .values(assignee_id=assignee))
        with self._lock:  # the state did not change: a cached workflow stays valid
            cached = self._workflows.get(instance.id)
            if cached is not None and cached.version == old_version:
                self._workflows[instance.id] = dataclasses.replace(cached, version=new_version)

    def cancel(self, instance_id: int, actor: Actor, reason: str) -> StepResult:
        now = self.clock()
        with self.db.transaction() as session:
            instance = self.read_instance(session, instance_id)
            if instance is None:
                raise LookupError(f"no instance {instance_id}")
            if instance.status != "running":
                raise InstanceNotRunning(f"instance {instance_id} is {instance.status}")
            if not _supervises(actor, instance):
                raise NotAllowed("only a program manager of the province or an administrator may cancel")
            run = StepRun(session, instance, now)
            self._load(run)
            run.workflow.cancel()
            run.events.append(PendingEvent("cancelled", None, {"reason": reason}, actor.user_id))
            self._save(run, status="cancelled")
        return self._committed(run)

    # --- timers -------------------------------------------------------------

    @keeps_step_on_failure
    def fire_due_timers(self, instance_id: int) -> StepResult | None:
        """Fire the instance's BPMN timers that are due by the engine's
        clock and run what follows them, in one transaction like a task
        completion (the same version check: a timer fired concurrently by
        another worker, or a user's step in between, makes this one a
        ConcurrencyConflict that changes nothing). None when nothing was due."""
        now = self.clock()
        with self.db.transaction() as session:
            instance = self.read_instance(session, instance_id)
            if instance is None or instance.status != "running":
                return None
            run = StepRun(session, instance, now)
            self._load(run)
            waiting = {str(t.id): t.task_spec.bpmn_id for t in timer_tasks(run.workflow)}
            with clock.running_at(now):
                run.workflow.refresh_timers()
            fired = [t.task_spec.bpmn_id for t in run.workflow.get_tasks(state=TaskState.READY, manual=False)
                     if str(t.id) in waiting]
            if not fired:  # nothing is written; the workflow left the cache in _load
                return None
            self.advance(run)
            run.events.insert(0, PendingEvent("timer_fired", fired[0], {"elements": fired}))
            self._save(run)
        return self._committed(run)

    def due_timer_instances(self, limit: int = 500) -> list[int]:
        """Running instances with a timer due by now, the longest overdue first."""
        with self.db.transaction() as session:
            return list(session.scalars(
                select(TimerDue.instance_id).where(TimerDue.due_at <= self.clock())
                .group_by(TimerDue.instance_id).order_by(func.min(TimerDue.due_at)).limit(limit)))

    # --- failed service tasks -------------------------------------------------

    @keeps_step_on_failure
    def retry_incident(self, incident_id: int, actor: Actor | None = None) -> StepResult | None:
        """Run a failed service task again (the worker, or a supervisor with
        `actor`), and what follows it. A new failure counts one more attempt.
        None when the incident is already closed."""
        return self._resume_failed(incident_id, actor, skip=False)

    @keeps_step_on_failure
    def skip_incident(self, incident_id: int, actor: Actor) -> StepResult | None:
        """A supervisor lets the process go on past a failed service task
        without its result."""
        return self._resume_failed(incident_id, actor, skip=True)

    def _resume_failed(self, incident_id: int, actor: Actor | None, skip: bool) -> StepResult | None:
        now = self.clock()
        with self.db.transaction() as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise LookupError(f"no incident {incident_id}")
            if incident.status not in incidents.ACTIVE:
                return None
            instance = self.read_instance(session, incident.instance_id)
            if actor is not None and not _supervises(actor, instance):
                raise NotAllowed("only a program manager of the province or an administrator may retry or skip")
            if instance.status != "running":
                raise InstanceNotRunning(f"instance {instance.id} is {instance.status}")
            run = StepRun(session, instance, now)
            self._load(run)
            task = next((t for t in run.workflow.get_tasks(state=TaskState.ERROR)
                         if t.task_spec.bpmn_id == incident.element_id), None)
            if task is None:
                raise TaskNotReady(incident.element_id, "not in ERROR")
            run.events.append(PendingEvent("service_skipped" if skip else "service_retried", incident.element_id, {
                "incident": incident.id, "attempt": incident.attempts + 1, "handler": incident.handler},
                actor.user_id if actor else None))
            resume_failed_task(task, skip)
            self.advance(run)
            if not any(f.element == incident.element_id for f in run.failed):
                incidents.close(session, instance.id, incident.element_id, skip, now, actor.user_id if actor else None)
            self._save(run)
        return self._committed(run)

    # --- internals ----------------------------------------------------------

    @staticmethod
    def read_instance(session: Session, instance_id: int) -> statements.InstanceRow | None:
        """The instance (without its state) and its product, as a step reads them."""
        row = session.connection().execute(statements.INSTANCE, {"instance_id": instance_id}).first()
        return statements.instance_row(row._mapping) if row is not None else None

    def load_workflow(self, session: Session | Connection,
                      instance: ProcessInstance | statements.InstanceRow) -> BpmnWorkflow:
        """The instance's workflow as stored, for reading (replay, inspection)."""
        spec, subprocess_specs = self.spec_for(session, instance.definition_id, instance.process_id)
        state = (instance.state if isinstance(instance, ProcessInstance) else
                 connection_of(session).execute(statements.STATE, {"instance_id": instance.id}).scalar_one())
        return state_from_json(state, spec, subprocess_specs)

    def _load(self, run: StepRun) -> None:
        """The workflow as of the instance's stored version: from this
        process's cache when it holds exactly that version, else deserialized.
        The entry leaves the cache; only a committed step puts it back."""
        instance = run.instance
        with self._lock:
            cached = self._workflows.pop(instance.id, None)
        if cached is not None and cached.version == instance.version:
            run.workflow = cached.workflow
            run.ready_before, run.timers_before = set(cached.ready_ids), dict(cached.timers)
        else:
            run.workflow = self.load_workflow(run.connection, instance)
            run.ready_before = _ready_user_task_ids(run.workflow)
            run.timers_before = waiting_timers(run.workflow)
        # The script engine is not part of the state: set it after every load.
        run.workflow.script_engine = SafeScriptEngine(run.call_service)

    def forget_cached(self, instance_id: int) -> None:
        """Drop this process's cached workflow of an instance (e.g. migrated)."""
        with self._lock:
            self._workflows.pop(instance_id, None)

    def _committed(self, run: StepRun) -> StepResult:
        """After commit: remember the workflow for the next step."""
        run.workflow.script_engine = None  # drop the reference to the closed transaction
        with self._lock:
            self._workflows[run.instance.id] = CachedWorkflow(
                run.result_version, run.workflow, frozenset(task["id"] for task in run.result.ready_tasks),
                dict(run.timers))
            while len(self._workflows) > WORKFLOW_CACHE_SIZE:
                self._workflows.popitem(last=False)
        return run.result

    def run_user_task(self, run: StepRun, task, completion: PendingEvent, before: dict) -> None:
        """Run a user task whose form is in its data, and everything automatic
        after it; the completion event gets the data delta this caused (the
        form's own variable is already in the event)."""
        try:
            with clock.running_at(run.now):
                task.run()
        except WorkflowException as err:
            raise self._service_failure(err) from None
        run.last_data = task.data
        self.advance(run)
        completion.data["delta"] = data_delta(before, run.last_data,
                                                    skip=completion.data["data_key"])

    def advance(self, run: StepRun) -> None:
        """Run the automatic tasks that are ready (gateways, scripts, service
        tasks, events) until only user tasks wait; record what ran and which
        way each gateway went."""
        completed: list[str] = []

        def record(task):
            if not task.task_spec.manual and getattr(task.task_spec, "bpmn_id", None):
                completed.append(task.task_spec.bpmn_id)
                run.last_step = step_of(task.task_spec) or run.last_step
                run.last_data = task.data
                decision = gateway_decision(task)
                if decision is not None:
                    run.events.append(decision)

        try:
            with clock.running_at(run.now):
                run_engine_steps(run.workflow, did_complete_task=record)
        except (WorkflowException, ServiceTaskFailed) as err:  # SpiffWorkflow may or may not wrap it
            failure = err if isinstance(err, ServiceTaskFailed) else self._service_failure(err)
            if failure.element is None or failure.element not in run.failing:
                raise failure from None
            # Failed in the attempt before: the task stays in ERROR, the step is kept.
            run.failed.append(failure)
            run.events.append(PendingEvent("service_failed", failure.element, {
                "handler": failure.handler, "error": str(failure)}))
        if completed:
            run.events.append(PendingEvent("engine_steps", None, {"elements": completed}))

    @staticmethod
    def _service_failure(err: WorkflowException) -> ServiceTaskFailed:
        cause = getattr(err, "error", None) or err.__cause__ or err.__context__
        if isinstance(cause, ServiceTaskFailed):
            return cause
        # E.g. a parameter expression that cannot be evaluated: SpiffWorkflow names the task.
        task = getattr(err, "task", None)
        element = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
        operator = getattr(getattr(task, "task_spec", None), "operation_name", None)
        return ServiceTaskFailed(f"{err}", element if operator else None, operator)

    def conclude(self, run: StepRun, status: str | None = None) -> tuple[dict, dict]:
        """How the step ends, without writing: the ready user tasks (id ->
        task), the instance row's new values, and the closing events (tasks
        that became ready, the end reached)."""
        instance, workflow, now = run.instance, run.workflow, run.now
        ready = {str(t.id): t for t in find_tasks(workflow, TaskState.READY, manual=True)}
        newly_ready = [(task_id, t) for task_id, t in ready.items() if task_id not in run.ready_before]
        if newly_ready:  # task ids let a replay match later claims and completions
            run.events.append(PendingEvent("tasks_ready", None, {
                "elements": [t.task_spec.bpmn_id for _id, t in newly_ready],
                "task_ids": [task_id for task_id, _t in newly_ready]}))
        values = {"state": None, "updated_at": now, "status": status or instance.status}
        if workflow.is_completed() and values["status"] == "running":
            end_task = next((t for t in workflow.get_tasks(state=TaskState.COMPLETED)
                             if isinstance(t.task_spec, EndEvent)), None)
            stars = (end_task.data if end_task else workflow.data).get("stars")
            values.update(status="completed", finished_at=now, stars=stars or None,
                          end_event=end_task.task_spec.bpmn_id if end_task else None)
            run.events.append(PendingEvent("finished", values["end_event"], {"stars": stars}))
        ready_steps = [step for step in map(step_of, (t.task_spec for t in ready.values())) if step]
        values["current_step"] = max(ready_steps) if ready_steps else (run.last_step or instance.current_step)
        run.timers = waiting_timers(workflow)
        return ready, values

    def _save(self, run: StepRun, status: str | None = None) -> None:
        """Write the step. The instance row goes first and alone:
        UPDATE ... WHERE id = :id AND version = :old. A transaction that lost
        a race matches no row and stops there, before any task or history
        row is written; the winner holds the row until it commits."""
        connection, instance = run.connection, run.instance
        ready, values = self.conclude(run, status)
        stale_ids, new_rows = self.inbox_changes(run, ready)
        values["state"] = state_to_json(run.workflow)
        run.result_version = self.write_instance(connection, instance, values, run.events, run.now)
        if stale_ids:
            connection.execute(statements.DELETE_INBOX_ROWS, {"ids": stale_ids})
        if new_rows:
            connection.execute(statements.INSERT_INBOX_ROWS, new_rows)
        if run.timers != run.timers_before:  # most steps start and end without a timer
            self.write_timers(connection, instance.id, run.timers)
        if run.failed:
            with Session(bind=connection) as session:  # in the step's transaction
                incidents.open_incidents(session, instance.id, run.failed, run.now)
        run.result = StepResult(instance.id, values["status"], [
            {"id": task_id, "element_id": t.task_spec.bpmn_id, "name": t.task_spec.bpmn_name,
             "lane": t.task_spec.lane, "step": step_of(t.task_spec),
             "form_key": diagram.user_task_properties(t.task_spec).get("formKey")}
            for task_id, t in ready.items()], values.get("end_event"), values.get("stars"))

    @staticmethod
    def write_instance(unit: Session | Connection, instance: ProcessInstance, values: dict,
                        events: list[PendingEvent], now: datetime) -> int:
        """The one write of an instance row: the optimistic version check,
        the new values, the history events chained after the head. Plain
        Core statements: nothing of this is needed as ORM objects afterwards.
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

    def inbox_changes(self, run: StepRun, ready: dict) -> tuple[list[str], list[dict]]:
        """Task ids to delete and rows to add so the inbox holds exactly the
        instance's ready user tasks (rows of tasks still ready, and their
        claims, stay as they are)."""
        stale = sorted(run.ready_before - set(ready))
        new = [self.inbox_row(run.instance, task, run.now)
               for task_id, task in ready.items() if task_id not in run.ready_before]
        return stale, new

    @staticmethod
    def write_timers(unit: Session | Connection, instance_id: int, timers: dict[str, datetime]) -> None:
        """The instance's rows in timer_due: exactly its waiting timers."""
        connection = connection_of(unit)
        connection.execute(statements.DELETE_TIMERS, {"instance_id": instance_id})
        if timers:
            connection.execute(statements.INSERT_TIMERS, [
                {"instance_id": instance_id, "element_id": element, "due_at": due} for element, due in timers.items()])

    @staticmethod
    def inbox_row(instance: ProcessInstance, task, now: datetime) -> dict:
        spec = task.task_spec
        props = diagram.user_task_properties(spec)
        role = roles.role_for_lane(spec.lane)
        if role is None:  # deploy-time lint makes this unreachable
            raise ServiceTaskFailed(f"lane '{spec.lane}' of {spec.bpmn_id} is not a role")
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
            form_key=props["formKey"], data_key=props["dataKey"], step=_int(props.get("step")),
            created_at=now, due_at=due_at)


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


def resume_failed_task(task, skip: bool) -> None:
    """A service task in ERROR: made ready to run again, or marked done
    without running (its result variable stays unset)."""
    if skip:
        task.complete()
    else:
        task._ready()


def timer_tasks(workflow: BpmnWorkflow) -> list:
    """Timer events the workflow waits on (or that fired and wait to run)."""
    return find_tasks(workflow, TaskState.WAITING | TaskState.READY, manual=False,
                      where=lambda t: isinstance(getattr(t.task_spec, "event_definition", None),
                                                 TimerEventDefinition))


def waiting_timers(workflow: BpmnWorkflow) -> dict[str, datetime]:
    """Element id -> when it fires, for the timers the workflow waits on."""
    return {t.task_spec.bpmn_id: timer_due_at(t) for t in timer_tasks(workflow)}


def timer_due_at(task) -> datetime:
    """When a waiting timer fires: the moment SpiffWorkflow computed when it
    began to wait (its `event_value`, ISO text)."""
    value = task._get_internal_data("event_value")
    if value is None:  # not evaluated yet: check again at the next run of the worker
        return datetime.now(timezone.utc)
    return TimerEventDefinition.get_datetime(value)


def _supervises(actor: Actor, instance: ProcessInstance) -> bool:
    """Program managers of the instance's province and administrators."""
    return (actor.holds("program_manager", instance.areas.get("province"))
            or actor.holds("admin", instance.areas.get("central")))


def _ready_user_task_ids(workflow: BpmnWorkflow) -> set[str]:
    return {str(t.id) for t in find_tasks(workflow, TaskState.READY, manual=True)}


def _same_scope(province_id: int | None):
    return (ProcessDefinition.province_id.is_(None) if province_id is None
            else ProcessDefinition.province_id == province_id)


def step_of(task_spec) -> int | None:
    """The cycle step (1..6) a task declares in its `step` property, if any."""
    extensions = getattr(task_spec, "extensions", None) or {}
    return _int(extensions.get("properties", {}).get("step"))


def _int(value) -> int | None:
    return int(value) if value not in (None, "") else None
