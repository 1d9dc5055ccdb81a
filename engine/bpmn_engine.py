"""The BPMN engine: what the programme, the web layer and the command line
do to workflows, one verb each.

Every call is one database transaction: load the workflow, run
SpiffWorkflow, write the new state (optimistic version check), refresh the
inbox rows, append the history, commit -- or change nothing. The work each
call shares is in engine/execution.py; a task is completed in
`BpmnEngine.complete_task`, and nowhere else.

A use case that must write its own rows in the same transaction as an
engine call (a product registered and its cycle started, a task completed
and its drafts removed) runs its work through `BpmnEngine.run` and passes
the unit of work to the engine call (`unit=`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import time
from contextvars import ContextVar
from datetime import date, datetime, timezone
from typing import Callable, TypeVar
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import access, clock, diagram, execution, incidents, process_ids, statements
from engine.access import Actor
from engine.caches import DEFAULT_WORKFLOW_CACHE_MB, SpecCache, WorkflowCache
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
from engine.events import GENESIS, PendingEvent
from engine.execution import Execution, Outcome
from engine.forms import SESSION_FORMS, validate_form
from engine.serialization import specs_to_dict
from engine.stepping import DEFAULT_STEP_BUDGET, EngineWorkflow
from handlers.context import ProductView
from storage.areas import area_chain
from storage.db import Database, connection_of
from storage.models import InboxTask, Incident, ProcessDefinition, ProcessInstance

DEFAULT_MAX_RESUBMISSIONS = 3
T = TypeVar("T")

# Inside BpmnEngine.run: what to do once its transaction has committed.
_AFTER_COMMIT: ContextVar[list[Callable[[], None]] | None] = ContextVar("ocop_after_commit", default=None)


class BpmnEngine:
    @classmethod
    def from_environment(cls) -> "BpmnEngine":
        """Configured by OCOP_DATABASE_URL, OCOP_MAX_RESUBMISSIONS,
        OCOP_STEP_BUDGET (automatic steps per engine call, engine/stepping.py)
        and OCOP_WORKFLOW_CACHE_MB (memory for cached workflows, engine/execution.py;
        0 caches none)."""
        return cls(Database(), max_resubmissions=_whole_number("OCOP_MAX_RESUBMISSIONS", DEFAULT_MAX_RESUBMISSIONS),
                   step_budget=_whole_number("OCOP_STEP_BUDGET", DEFAULT_STEP_BUDGET, least=1),
                   workflow_cache_mb=_whole_number("OCOP_WORKFLOW_CACHE_MB", DEFAULT_WORKFLOW_CACHE_MB))

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None,
                 max_resubmissions: int = DEFAULT_MAX_RESUBMISSIONS, step_budget: int = DEFAULT_STEP_BUDGET,
                 workflow_cache_mb: int = DEFAULT_WORKFLOW_CACHE_MB):
        self.db = db
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.max_resubmissions = max_resubmissions
        self.step_budget = step_budget
        self.specs = SpecCache()
        self.workflows = WorkflowCache(max_bytes=workflow_cache_mb * 1024 * 1024)

    # --- one transaction --------------------------------------------------------

    def run(self, work: Callable[[Session | Connection], T], plain: bool = False) -> T:
        """Run `work(unit)` in one transaction (an ORM session, or a plain
        Core connection with `plain`), and commit. Engine calls given that
        unit join it; their workflows are cached only after the commit.

        A service task that fails must not lose the work that reached it (a
        reviewer's decision, a fired timer): the transaction is rolled back
        (the handler's partial writes with it) and the work runs again with
        that task marked failing, so it fails at once, stays in ERROR, and an
        incident is opened for the worker to retry."""
        failing: dict[str, str] = {}
        while True:
            after_commit: list[Callable[[], None]] = []
            tokens = execution.FAILING.set(dict(failing)), _AFTER_COMMIT.set(after_commit)
            try:
                with (self.db.statements() if plain else self.db.transaction()) as unit:
                    result = work(unit)
            except ServiceTaskFailed as err:
                if (err.element is None or err.element in failing
                        or len(failing) >= execution.MAX_DEFERRED_FAILURES):
                    raise
                failing[err.element] = str(err)
                continue
            finally:
                execution.FAILING.reset(tokens[0])
                _AFTER_COMMIT.reset(tokens[1])
            for action in after_commit:
                action()
            return result

    def _in_unit(self, unit, call: Callable[[Session | Connection], T], plain: bool = False) -> T:
        """`call` in the caller's unit when given, else in a transaction of its own."""
        return call(unit) if unit is not None else self.run(call, plain)

    @staticmethod
    def _after_commit(action: Callable[[], None]) -> None:
        pending = _AFTER_COMMIT.get()
        if pending is None:
            raise RuntimeError("an engine call given a unit of work must run inside BpmnEngine.run")
        pending.append(action)

    def _call(self, unit: Session | Connection, instance, now: datetime) -> Execution:
        """An engine call on `instance`, within this engine's step budget."""
        return Execution(unit, instance, now, self.step_budget)

    def _finish(self, call: Execution, status: str | None = None) -> Outcome:
        """Write the call; after the commit, cache its workflow for the next call."""
        execution.save(call, status)
        self._after_commit(lambda: self.workflows.keep(call))
        return call.outcome

    # --- definitions --------------------------------------------------------------

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

    @staticmethod
    def activate(session: Session, definition: ProcessDefinition) -> None:
        """One active definition per scope (national, or one province)."""
        same_scope = (ProcessDefinition.province_id.is_(None) if definition.province_id is None
                      else ProcessDefinition.province_id == definition.province_id)
        for other in session.scalars(select(ProcessDefinition).where(
                ProcessDefinition.is_active.is_(True), same_scope)):
            other.is_active = False
        definition.is_active = True

    def active_definition(self, session: Session, province_id: int | None) -> ProcessDefinition:
        """The province's own active variant if it has one, else the national one."""
        return session.get(ProcessDefinition, self._active_version(session, province_id).id)

    @staticmethod
    def _active_version(session: Session, province_id: int | None):
        """The active definition's id, name, version and province_id only (a
        plain row, one statement: what a start needs)."""
        rows = session.connection().execute(statements.ACTIVE_DEFINITIONS, {"province_id": province_id}).all()
        for scope in (province_id, None):
            definition = next((row for row in rows if row.province_id == scope), None)
            if definition is not None:
                return definition
        raise NoActiveDefinition(f"no active diagram for province {province_id} nor a national one")

    # --- starting instances -------------------------------------------------------

    def start_outreach(self, jurisdiction_id: int, actor: Actor, year: int | None = None,
                       unit: Session | None = None) -> Outcome:
        """Cycle step 1 for one locality: the campaign that opens idea registration."""
        return self._in_unit(unit, lambda session: self._start_outreach(session, jurisdiction_id, actor, year))

    def _start_outreach(self, session: Session, jurisdiction_id: int, actor: Actor, year: int | None) -> Outcome:
        now = self.clock()
        year = year or now.year
        chain = area_chain(session, jurisdiction_id)
        if not access.may_start_outreach(actor, jurisdiction_id, chain):
            raise NotAllowed("only the area's OCOP officer, its province's program manager "
                             "or an administrator may start an outreach campaign")
        definition = self._active_version(session, chain.get("province"))
        data = {"jurisdiction_id": jurisdiction_id, "year": year}
        return self._start(session, definition, diagram.OUTREACH_PROCESS, None,
                           jurisdiction_id, chain, year, data, actor, now)

    def start_product(self, product_id: int, actor: Actor, year: int | None = None,
                      unit: Session | None = None) -> Outcome:
        """Cycle steps 2-6 for one product: needs an open registration
        window. Every refusal (RegistrationClosed, NoActiveDefinition,
        AlreadyInCycle, NotAllowed) comes before anything is written."""
        return self._in_unit(unit, lambda session: self._start_product(session, product_id, actor, year))

    def _start_product(self, session: Session, product_id: int, actor: Actor, year: int | None) -> Outcome:
        now = self.clock()
        year = year or now.year
        connection = session.connection()
        product = connection.execute(statements.PRODUCT_WITH_COMMUNE, {"product_id": product_id}).first()
        if product is None:
            raise LookupError(f"no product {product_id}")
        commune_id = product.commune_id
        if not access.may_manage_producer(actor, product.producer_id, commune_id):
            raise NotAllowed("only the producer or its commune officer may register this product")
        chain = area_chain(session, commune_id)
        self._require_open_window(session, chain, now.date())
        self._require_not_in_cycle(session, product.id, year)
        definition = self._active_version(session, chain.get("province"))
        data = {
            "product_id": product.id, "product_name": product.name,
            "product_group": product.group_code, "producer_id": product.producer_id,
            "commune_id": commune_id, "district_id": chain.get("district"),
            "province_id": chain.get("province"), "year": year,
            "max_resubmissions": self.max_resubmissions,
        }
        return self._start(session, definition, diagram.PRODUCT_PROCESS,
                           ProductView(product.id, product.name, product.producer_id, product.group_code),
                           commune_id, chain, year, data, actor, now)

    def start_lifecycle(self, process_id: str, product_id: int, data: dict, actor: Actor,
                        unit: Session | None = None) -> Outcome:
        """Start one of the processes after recognition (a certificate's
        validity, an upgrade, a revocation, an inspection) for a product, from
        the product's province's active diagram when it has that process,
        else the national one. Who may start which is the use case's
        (programme/) check; this only refuses what no caller may do."""
        if process_id not in process_ids.LIFECYCLE_PROCESSES:
            raise ValueError(f"not a lifecycle process: {process_id}")
        return self._in_unit(unit, lambda session: self._start_lifecycle(session, process_id, product_id,
                                                                         data, actor))

    def _start_lifecycle(self, session: Session, process_id: str, product_id: int, data: dict,
                         actor: Actor) -> Outcome:
        now = self.clock()
        product = session.connection().execute(statements.PRODUCT_WITH_COMMUNE, {"product_id": product_id}).first()
        if product is None:
            raise LookupError(f"no product {product_id}")
        chain = area_chain(session, product.commune_id)
        definition = self._definition_with(session, chain.get("province"), process_id)
        data = {"product_id": product.id, "product_name": product.name, "product_group": product.group_code,
                "producer_id": product.producer_id, "commune_id": product.commune_id,
                "district_id": chain.get("district"), "province_id": chain.get("province"),
                "year": now.year, "max_resubmissions": self.max_resubmissions, **data}
        return self._start(session, definition, process_id,
                           ProductView(product.id, product.name, product.producer_id, product.group_code),
                           product.commune_id, chain, now.year, data, actor, now)

    def _definition_with(self, session: Session, province_id: int | None, process_id: str):
        """The active definition of the province (else the nation) that has
        `process_id`; a province's variant without it falls back to the
        national diagram's."""
        rows = session.connection().execute(statements.ACTIVE_DEFINITIONS, {"province_id": province_id}).all()
        for scope in (province_id, None):
            for row in rows:
                if row.province_id == scope and self.specs.has_process(session, row.id, process_id):
                    return row
        raise NoActiveDefinition(f"no active diagram has the process {process_id}")

    @staticmethod
    def _require_not_in_cycle(session: Session, product_id: int, year: int) -> None:
        # The unique index uq_process_instance_product_year settles a race
        # between two starts; this check gives the usual case its message.
        if session.connection().execute(statements.IN_CYCLE, {"product_id": product_id, "year": year}).first():
            raise AlreadyInCycle(f"Sản phẩm đã tham gia chu trình năm {year} / "
                                 f"the product is already in the {year} cycle")

    @staticmethod
    def _require_open_window(session: Session, chain: dict[str, int], today: date) -> None:
        window = session.connection().execute(statements.OPEN_WINDOW, {
            "areas": list(chain.values()), "today": today}).first()
        if window is None:
            raise RegistrationClosed("Chưa mở đăng ký ý tưởng sản phẩm cho địa bàn này / "
                                     "idea registration is not open for this area today")

    def _start(self, session, definition, process_id, product: ProductView | None, jurisdiction_id,
               areas, year, data, actor, now) -> Outcome:
        spec, subprocess_specs = self.specs.spec_for(session, definition.id, process_id)
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
        call = self._call(session, instance, now)
        call.workflow = EngineWorkflow(spec, subprocess_specs, script_engine=call.script_engine())
        for task in call.workflow.get_tasks(state=TaskState.READY):  # the start: data flows from it
            task.data.update(data)
        # The whole area chain is hashed too: the instance row's areas decide who
        # sees and acts on it, and verification compares them (audit/instance_row.py).
        call.events.append(PendingEvent("started", process_id, {
            "definition": definition.name, "version": definition.version, "data": data, "areas": areas},
            actor.user_id))
        execution.advance(call)
        return self._finish(call)

    # --- tasks ----------------------------------------------------------------------

    def ready_tasks(self, instance_id: int) -> list[InboxTask]:
        """The instance's inbox rows: its ready user tasks."""
        with self.db.transaction() as session:
            return list(session.scalars(select(InboxTask).where(InboxTask.instance_id == instance_id)
                                        .order_by(InboxTask.created_at, InboxTask.id)))

    def complete_task(self, task_id: str, data: dict, actor: Actor,
                      unit: Session | Connection | None = None, from_session: bool = False) -> Outcome:
        """Validate the form, check the actor, run the task and everything
        automatic after it, and save -- all in one transaction. The one
        place where a task gets completed. A council's attendance
        (forms.SESSION_FORMS) is recorded only by the council session
        (`from_session`): its roster comes from the stored council, never
        from what a caller types."""
        # A plain connection, not an ORM session: a completion runs prebuilt
        # statements only, and a session's bookkeeping cost as much as they do.
        def completion(connection):
            return self._complete_task(connection, task_id, data, actor, from_session)
        if unit is not None:
            return completion(unit)
        # Tasks of one instance that are ready together (the council members'
        # sheets of a multi-instance task) are completed at the same moment:
        # only one of them can write the instance's next version, so the
        # others start again on top of it. A second completion of the SAME
        # task then finds it done (UnknownTask / TaskNotReady), as before.
        for attempt in range(1, self.COMPLETION_ATTEMPTS + 1):
            try:
                return self.run(completion, plain=True)
            except ConcurrencyConflict:
                if attempt == self.COMPLETION_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.02 * attempt))
        raise AssertionError("unreachable")

    # Enough for a council of 15 submitting within the same second.
    COMPLETION_ATTEMPTS = 16

    def _complete_task(self, unit: Session | Connection, task_id: str, data: dict, actor: Actor,
                       from_session: bool = False) -> Outcome:
        now = self.clock()
        connection = connection_of(unit)
        # One query for the task, its instance and product.
        row = connection.execute(statements.TASK_WITH_INSTANCE, {"task_id": task_id}).first()
        if row is None:
            raise UnknownTask(task_id)
        instance = statements.instance_row(row._mapping)
        if not access.may_act(actor, row):
            raise NotAllowed(f"{actor.name} may not act on task '{row.name}' "
                             f"(role {row.role} of area {row.jurisdiction_id})")
        if row.assignee_id is not None and row.assignee_id != actor.user_id:
            raise ClaimedByOther(f"task '{row.name}' is claimed by user {row.assignee_id}")
        if row.form_key in SESSION_FORMS and not from_session:
            raise NotAllowed(f"task '{row.name}' is recorded by opening a council session, not as a form")
        form = validate_form(row.form_key, data, instance.product.group_code if instance.product else None)
        call = self._call(unit, instance, now)
        execution.load(call, self.specs, self.workflows)
        task = call.workflow.get_task_from_id(UUID(task_id))
        if task is None:
            raise UnknownTask(task_id)
        if task.state != TaskState.READY:
            raise TaskNotReady(task_id, TaskState.get_name(task.state))
        before = dict(task.data)  # values are replaced by later tasks, never changed in place
        if row.data_key:  # a confirmation (engine.diagram.task_form) stores nothing
            task.data[row.data_key] = form
        completion = PendingEvent("task_completed", row.element_id, {
            "task_id": task_id, "name": row.name, "role": row.role, "step": row.step,
            "form_key": row.form_key, "data_key": row.data_key, "form": form}, actor.user_id)
        call.events.append(completion)
        execution.run_user_task(call, task, completion, before)
        return self._finish(call)

    # --- claims -----------------------------------------------------------------------

    def claim(self, task_id: str, actor: Actor) -> None:
        """Take a task: colleagues of the area then cannot complete it."""
        def change(session, row, instance):
            if not access.may_act(actor, row):
                raise NotAllowed(f"{actor.name} may not act on task '{row.name}'")
            if row.assignee_id not in (None, actor.user_id):
                raise ClaimedByOther(f"task '{row.name}' is already claimed by user {row.assignee_id}")
            return actor.user_id
        self._change_assignee(task_id, actor, "claimed", change)

    def unclaim(self, task_id: str, actor: Actor) -> None:
        """Give a task back to the area (its assignee or a supervisor)."""
        def change(session, row, instance):
            if row.assignee_id != actor.user_id and not access.supervises(actor, instance.areas):
                raise NotAllowed("only the assignee or a supervisor of the area may release this task")
            self._refuse_personal(row)
            return None
        self._change_assignee(task_id, actor, "unclaimed", change)

    def reassign(self, task_id: str, actor: Actor, to: Actor) -> None:
        """A supervisor of the area hands the task to a named colleague who
        may act on it."""
        def change(session, row, instance):
            if not access.supervises(actor, instance.areas):
                raise NotAllowed("only a supervisor of the area may reassign tasks")
            self._refuse_personal(row)
            if not access.may_act(to, row):
                raise NotAllowed(f"{to.name} does not hold role {row.role} for this area")
            return to.user_id
        self._change_assignee(task_id, actor, "reassigned", change)

    @staticmethod
    def _refuse_personal(row: InboxTask) -> None:
        """A task the diagram gives to one person (a council member's own
        sheet) is theirs: it is neither released to the area nor handed on."""
        if row.personal:
            raise NotAllowed(f"task '{row.name}' belongs to its assignee alone (the diagram names them)")

    # Assignment changes lost to a concurrent write are tried again this many
    # times: they read only the task row, so the retry decides on what the
    # winner committed (its holder claiming again is then a no-op).
    ASSIGNMENT_ATTEMPTS = 3

    def _change_assignee(self, task_id: str, actor: Actor, kind: str, change) -> None:
        for attempt in range(1, self.ASSIGNMENT_ATTEMPTS + 1):
            try:
                return self._change_assignee_once(task_id, actor, kind, change)
            except ConcurrencyConflict:
                if attempt == self.ASSIGNMENT_ATTEMPTS:
                    raise

    def _change_assignee_once(self, task_id: str, actor: Actor, kind: str, change) -> None:
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
            assignee = change(session, row, instance)
            if assignee == row.assignee_id:
                # Its holder claiming again, a release of a free task: no
                # change, so no event and no new version.
                return
            event = PendingEvent(kind, row.element_id, {"task_id": task_id, "assignee": assignee,
                                                        "previous": row.assignee_id}, actor.user_id)
            old_version = instance.version
            new_version = execution.write_instance(session, instance, {"updated_at": now}, [event], now)
            session.connection().execute(update(InboxTask.__table__).where(InboxTask.id == task_id)
                                         .values(assignee_id=assignee))
        # The state did not change: a cached workflow stays valid.
        self.workflows.renumber(instance.id, old_version, new_version)

    # --- cancelling ---------------------------------------------------------------------

    def cancel(self, instance_id: int, actor: Actor, reason: str, unit: Session | None = None) -> Outcome:
        """End a running instance (a program manager of its province or an administrator)."""
        return self._in_unit(unit, lambda session: self._cancel(session, instance_id, actor, reason))

    def _cancel(self, session: Session, instance_id: int, actor: Actor, reason: str) -> Outcome:
        instance = self._read_instance(session, instance_id)
        if instance is None:
            raise LookupError(f"no instance {instance_id}")
        if instance.status != "running":
            raise InstanceNotRunning(f"instance {instance_id} is {instance.status}")
        if not access.supervises(actor, instance.areas):
            raise NotAllowed("only a program manager of the province or an administrator may cancel")
        call = self._call(session, instance, self.clock())
        execution.load(call, self.specs, self.workflows)
        call.workflow.cancel()
        call.events.append(PendingEvent("cancelled", None, {"reason": reason}, actor.user_id))
        return self._finish(call, status="cancelled")

    # --- timers ---------------------------------------------------------------------------

    def fire_due_timers(self, instance_id: int) -> Outcome | None:
        """Fire the instance's BPMN timers that are due by the engine's
        clock and run what follows them, in one transaction like a task
        completion (the same version check: a timer fired concurrently by
        another worker, or a user's task in between, makes this one a
        ConcurrencyConflict that changes nothing). None when nothing was due."""
        return self.run(lambda session: self._fire_due_timers(session, instance_id))

    def _fire_due_timers(self, session: Session, instance_id: int) -> Outcome | None:
        now = self.clock()
        instance = self._read_instance(session, instance_id)
        if instance is None or instance.status != "running":
            return None
        call = self._call(session, instance, now)
        execution.load(call, self.specs, self.workflows)
        waiting = {str(t.id): t.task_spec.bpmn_id for t in execution.timer_tasks(call.workflow)}
        with execution.refusals(), clock.running_at(now):
            call.workflow.refresh_timers()
        fired = [t.task_spec.bpmn_id for t in call.workflow.get_tasks(state=TaskState.READY, manual=False)
                 if str(t.id) in waiting]
        if not fired:  # nothing is written; the workflow left the cache in load()
            return None
        execution.advance(call)
        call.events.insert(0, PendingEvent("timer_fired", fired[0], {"elements": fired}))
        return self._finish(call)

    # --- failed service tasks -------------------------------------------------------------

    def retry_incident(self, incident_id: int, actor: Actor | None = None) -> Outcome | None:
        """Run a failed service task again (the worker, or a supervisor with
        `actor`), and what follows it. A new failure counts one more attempt.
        None when the incident is already closed."""
        return self.run(lambda session: self._resume_failed(session, incident_id, actor, skip=False))

    def skip_incident(self, incident_id: int, actor: Actor) -> Outcome | None:
        """A supervisor lets the process go on past a failed service task
        without its result."""
        return self.run(lambda session: self._resume_failed(session, incident_id, actor, skip=True))

    def _resume_failed(self, session: Session, incident_id: int, actor: Actor | None,
                       skip: bool) -> Outcome | None:
        now = self.clock()
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise LookupError(f"no incident {incident_id}")
        if incident.status not in incidents.ACTIVE:
            return None
        instance = self._read_instance(session, incident.instance_id)
        if actor is not None and not access.supervises(actor, instance.areas):
            raise NotAllowed("only a program manager of the province or an administrator may retry or skip")
        if instance.status != "running":
            raise InstanceNotRunning(f"instance {instance.id} is {instance.status}")
        call = self._call(session, instance, now)
        execution.load(call, self.specs, self.workflows)
        task = execution.failed_task(call.workflow, incident.element_id)
        if task is None:
            raise TaskNotReady(incident.element_id, "not in ERROR")
        call.events.append(PendingEvent("service_skipped" if skip else "service_retried", incident.element_id, {
            "incident": incident.id, "attempt": incident.attempts + 1, "handler": incident.handler},
            actor.user_id if actor else None))
        execution.resume_failed_task(task, skip)
        execution.advance(call)
        if not any(f.element == incident.element_id for f in call.failed):
            incidents.close(session, instance.id, incident.element_id, skip, now, actor.user_id if actor else None)
        return self._finish(call)

    # --- reading ----------------------------------------------------------------------------

    @staticmethod
    def _read_instance(session: Session, instance_id: int) -> statements.InstanceRow | None:
        """The instance (without its state) and its product, as an engine call reads them."""
        row = session.connection().execute(statements.INSTANCE, {"instance_id": instance_id}).first()
        return statements.instance_row(row._mapping) if row is not None else None

    def load_workflow(self, unit: Session | Connection,
                      instance: ProcessInstance | statements.InstanceRow) -> BpmnWorkflow:
        """The instance's workflow as stored, for reading (replay, inspection)."""
        return execution.load_workflow(self.specs, unit, instance)

    def forget_cached(self, instance_id: int) -> None:
        """Drop this process's cached workflow of an instance (e.g. migrated)."""
        self.workflows.forget(instance_id)


def _whole_number(variable: str, default: int, least: int = 0) -> int:
    value = os.environ.get(variable, str(default))
    if not value.isdigit() or int(value) < least:
        raise ValueError(f"{variable} must be a whole number of at least {least}, not '{value}'")
    return int(value)
