"""The engine facade: everything the web layer and the CLI do to workflows.

Each public method is one database transaction: load, run SpiffWorkflow,
write the new state (optimistic version check), refresh the inbox rows,
append audit events, commit -- or change nothing. This module is the one
place where a task gets completed.
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine import audit, diagram, roles
from engine.access import Actor, may_act
from engine.audit import PendingEvent
from engine.errors import (
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
from engine.expressions import SafeScriptEngine
from engine.forms import validate_form
from engine.serialization import specs_from_dict, specs_to_dict, state_from_json, state_to_json
from handlers import registry
from handlers.registry import HandlerContext, HandlerParameterError
from storage.areas import area_chain
from storage.db import Database
from storage.models import (
    InboxTask,
    ProcessDefinition,
    ProcessInstance,
    Product,
    RegistrationWindow,
)

DEFAULT_MAX_RESUBMISSIONS = 3
SPEC_CACHE_SIZE = 16


@dataclass
class StepResult:
    """What one engine call changed, for the caller to show."""

    instance_id: int
    status: str
    ready_tasks: list[dict]
    end_event: str | None = None
    stars: int | None = None


class _Run:
    """One engine call in progress: the transaction, the instance and the
    events to append. Service-task handlers are dispatched through it so
    their writes join the same transaction."""

    def __init__(self, session: Session, instance: ProcessInstance, now: datetime):
        session.info["instance_id"] = instance.id
        self.session = session
        self.instance = instance
        self.now = now
        self.events: list[PendingEvent] = []
        self.last_step: int | None = None  # step of the last task run that declares one

    def call_service(self, task, name: str, params: dict) -> str:
        handler = registry.get(name)
        if handler is None:
            raise ServiceTaskFailed(f"no handler '{name}' (element {task.task_spec.bpmn_id})")
        values = {key: param["value"] for key, param in params.items()}
        context = HandlerContext(self.session, self.instance, task.task_spec.bpmn_id, task.data,
                                 self.now.date(), self.now)
        try:
            result = handler.call(context, values)
        except HandlerParameterError as err:
            raise ServiceTaskFailed(f"{task.task_spec.bpmn_id}: {err}") from None
        self.events.append(PendingEvent("service_called", task.task_spec.bpmn_id, {
            "handler": name, "step": _step_of(task.task_spec), "params": values, "result": result}))
        return json.dumps(result, default=str)


class OcopEngine:
    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None,
                 max_resubmissions: int = DEFAULT_MAX_RESUBMISSIONS):
        self.db = db
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.max_resubmissions = max_resubmissions
        self._specs: OrderedDict[int, dict] = OrderedDict()

    # --- definitions ------------------------------------------------------

    def deploy(self, xml: bytes, name: str, author: str, message: str = "",
               province_id: int | None = None, activate: bool = True) -> ProcessDefinition:
        """Check the diagram (all three layers) and store it as a new
        immutable version; deploying the same bytes again returns the
        existing version."""
        if isinstance(xml, str):
            xml = xml.encode("utf-8")
        checked = diagram.check_or_raise(xml, f"{name}.bpmn")
        digest = hashlib.sha256(xml).hexdigest()
        with self.db.transaction() as session:
            latest = session.scalar(select(ProcessDefinition).where(ProcessDefinition.name == name)
                                    .order_by(ProcessDefinition.version.desc()).limit(1))
            if latest is not None and latest.sha256 == digest and latest.province_id == province_id:
                if activate and not latest.is_active:
                    self._activate(session, latest)
                return latest
            definition = ProcessDefinition(
                name=name, version=(latest.version + 1) if latest else 1,
                bpmn_xml=xml.decode("utf-8"), sha256=digest,
                specs={pid: specs_to_dict(*pair) for pid, pair in checked.specs.items()},
                author=author, message=message, deployed_at=self.clock(), province_id=province_id)
            session.add(definition)
            session.flush()
            if activate:
                self._activate(session, definition)
            return definition

    def _activate(self, session: Session, definition: ProcessDefinition) -> None:
        """One active definition per scope (national, or one province)."""
        for other in session.scalars(select(ProcessDefinition).where(
                ProcessDefinition.is_active.is_(True),
                ProcessDefinition.province_id.is_(None) if definition.province_id is None
                else ProcessDefinition.province_id == definition.province_id)):
            other.is_active = False
        definition.is_active = True

    def active_definition(self, session: Session, province_id: int | None) -> ProcessDefinition:
        """The province's own active variant if it has one, else the national one."""
        for scope in (province_id, None):
            definition = session.scalar(select(ProcessDefinition).where(
                ProcessDefinition.is_active.is_(True),
                ProcessDefinition.province_id.is_(None) if scope is None
                else ProcessDefinition.province_id == scope))
            if definition is not None:
                return definition
        raise NoActiveDefinition(f"no active diagram for province {province_id} nor a national one")

    def _spec_for(self, session: Session, definition_id: int, process_id: str):
        """Parsed specs of a deployed version, restored once and cached (an
        LRU of SPEC_CACHE_SIZE versions); deployments never change."""
        bundle = self._specs.get(definition_id)
        if bundle is None:
            stored = session.scalar(select(ProcessDefinition.specs).where(ProcessDefinition.id == definition_id))
            bundle = {pid: specs_from_dict(dct) for pid, dct in stored.items()}
            self._specs[definition_id] = bundle
            while len(self._specs) > SPEC_CACHE_SIZE:
                self._specs.popitem(last=False)
        else:
            self._specs.move_to_end(definition_id)
        return bundle[process_id]

    @contextmanager
    def _unit_of_work(self):
        """One transaction; a lost optimistic-lock race (the instance row or
        its task rows changed since we read them) becomes ConcurrencyConflict."""
        info: dict = {}
        try:
            with self.db.transaction() as session:
                info = session.info
                yield session
        except StaleDataError:
            raise ConcurrencyConflict(info.get("instance_id")) from None

    # --- starting instances ----------------------------------------------

    def start_outreach(self, jurisdiction_id: int, actor: Actor, year: int | None = None) -> StepResult:
        """Step 1 for one locality: the campaign that opens idea registration."""
        now = self.clock()
        year = year or now.year
        with self._unit_of_work() as session:
            chain = area_chain(session, jurisdiction_id)
            if not any(actor.holds(role, area) for role, area in (
                    ("district_officer", jurisdiction_id), ("commune_officer", jurisdiction_id),
                    ("program_manager", chain.get("province")), ("admin", chain.get("central")))):
                raise NotAllowed("only the area's OCOP officer, its province's program manager "
                                 "or an administrator may start an outreach campaign")
            definition = self.active_definition(session, chain.get("province"))
            data = {"jurisdiction_id": jurisdiction_id, "year": year}
            return self._start(session, definition, diagram.OUTREACH_PROCESS, None,
                               jurisdiction_id, chain, year, data, actor, now)

    def start_product(self, product_id: int, actor: Actor, year: int | None = None) -> StepResult:
        """Steps 2-6 for one product: needs an open registration window."""
        now = self.clock()
        year = year or now.year
        with self._unit_of_work() as session:
            product = session.get(Product, product_id)
            if product is None:
                raise LookupError(f"no product {product_id}")
            commune_id = product.producer.commune_id
            if not (product.producer_id in actor.producer_ids or actor.holds("commune_officer", commune_id)):
                raise NotAllowed("only the producer or its commune officer may register this product")
            chain = area_chain(session, commune_id)
            self._require_open_window(session, chain, now.date())
            definition = self.active_definition(session, chain.get("province"))
            data = {
                "product_id": product.id, "product_name": product.name,
                "product_group": product.group_code, "producer_id": product.producer_id,
                "commune_id": commune_id, "district_id": chain.get("district"),
                "province_id": chain.get("province"), "year": year,
                "max_resubmissions": self.max_resubmissions,
            }
            return self._start(session, definition, diagram.PRODUCT_PROCESS, product.id,
                               commune_id, chain, year, data, actor, now)

    def _require_open_window(self, session: Session, chain: dict[str, int], today: date) -> None:
        window = session.scalar(select(RegistrationWindow.id).where(
            RegistrationWindow.jurisdiction_id.in_(chain.values()),
            RegistrationWindow.opens_on <= today, RegistrationWindow.closes_on >= today).limit(1))
        if window is None:
            raise RegistrationClosed("Chưa mở đăng ký ý tưởng sản phẩm cho địa bàn này / "
                                     "idea registration is not open for this area today")

    def _start(self, session, definition, process_id, product_id, jurisdiction_id, areas, year, data,
               actor, now) -> StepResult:
        spec, subprocess_specs = self._spec_for(session, definition.id, process_id)
        instance = ProcessInstance(definition_id=definition.id, process_id=process_id,
                                   product_id=product_id, jurisdiction_id=jurisdiction_id, areas=areas,
                                   year=year, status="running", state="", started_at=now, updated_at=now)
        session.add(instance)
        session.flush()
        run = _Run(session, instance, now)
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=SafeScriptEngine(run.call_service))
        for task in workflow.get_tasks(state=TaskState.READY):  # the start: data flows from it
            task.data.update(data)
        run.events.append(PendingEvent("started", process_id, {
            "definition": definition.name, "version": definition.version, "data": data}, actor.user_id))
        self._advance(workflow, run)
        return self._save(run, workflow)

    # --- tasks --------------------------------------------------------------

    def ready_tasks(self, instance_id: int) -> list[InboxTask]:
        with self.db.transaction() as session:
            return list(session.scalars(select(InboxTask).where(InboxTask.instance_id == instance_id)
                                        .order_by(InboxTask.created_at, InboxTask.id)))

    def complete_task(self, task_id: str, data: dict, actor: Actor) -> StepResult:
        """Validate the form, check the actor, run the task and everything
        automatic after it, and save -- all in one transaction."""
        now = self.clock()
        with self._unit_of_work() as session:
            row = session.get(InboxTask, task_id)
            if row is None:
                raise UnknownTask(task_id)
            if not may_act(actor, row):
                raise NotAllowed(f"{actor.name} may not act on task '{row.name}' "
                                 f"(role {row.role} of area {row.jurisdiction_id})")
            if row.assignee_id is not None and row.assignee_id != actor.user_id:
                raise ClaimedByOther(f"task '{row.name}' is claimed by user {row.assignee_id}")
            instance = session.get(ProcessInstance, row.instance_id,
                                   options=[joinedload(ProcessInstance.product).joinedload(Product.producer)])
            product = instance.product
            form = validate_form(row.form_key, data, product.group_code if product else None)
            run = _Run(session, instance, now)
            workflow = self._load(run)
            task = workflow.get_task_from_id(UUID(task_id))
            if task is None:
                raise UnknownTask(task_id)
            if task.state != TaskState.READY:
                raise TaskNotReady(task_id, TaskState.get_name(task.state))
            task.data[row.data_key] = form
            run.events.append(PendingEvent("task_completed", row.element_id, {
                "task_id": task_id, "name": row.name, "role": row.role, "step": row.step,
                "form_key": row.form_key,
                "data_key": row.data_key, "form": form}, actor.user_id))
            self._run_task(task, run)
            self._advance(workflow, run)
            return self._save(run, workflow)

    def cancel(self, instance_id: int, actor: Actor, reason: str) -> StepResult:
        now = self.clock()
        with self._unit_of_work() as session:
            instance = session.get(ProcessInstance, instance_id)
            if instance is None:
                raise LookupError(f"no instance {instance_id}")
            if instance.status != "running":
                raise InstanceNotRunning(f"instance {instance_id} is {instance.status}")
            if not any(actor.holds(role, instance.areas.get(level))
                       for role, level in (("program_manager", "province"), ("admin", "central"))):
                raise NotAllowed("only a program manager of the province or an administrator may cancel")
            run = _Run(session, instance, now)
            workflow = self._load(run)
            workflow.cancel()
            run.events.append(PendingEvent("cancelled", None, {"reason": reason}, actor.user_id))
            instance.status = "cancelled"
            return self._save(run, workflow)

    # --- internals ----------------------------------------------------------

    def load_workflow(self, session: Session, instance: ProcessInstance) -> BpmnWorkflow:
        """The instance's workflow, read-only use (replay, inspection)."""
        return self._load(_Run(session, instance, self.clock()))

    def _load(self, run: _Run) -> BpmnWorkflow:
        instance = run.instance
        spec, subprocess_specs = self._spec_for(run.session, instance.definition_id, instance.process_id)
        workflow = state_from_json(instance.state, spec, subprocess_specs)
        # The script engine is not part of the state: set it after every load.
        workflow.script_engine = SafeScriptEngine(run.call_service)
        return workflow

    def _run_task(self, task, run: _Run) -> None:
        try:
            task.run()
        except WorkflowException as err:
            raise self._service_failure(err) from None

    def _advance(self, workflow: BpmnWorkflow, run: _Run) -> None:
        completed: list[str] = []

        def record(task):
            if not task.task_spec.manual and getattr(task.task_spec, "bpmn_id", None):
                completed.append(task.task_spec.bpmn_id)
                run.last_step = _step_of(task.task_spec) or run.last_step

        try:
            workflow.do_engine_steps(did_complete_task=record)
        except WorkflowException as err:
            raise self._service_failure(err) from None
        if completed:
            run.events.append(PendingEvent("engine_steps", None, {"elements": completed}))

    @staticmethod
    def _service_failure(err: WorkflowException) -> Exception:
        cause = getattr(err, "error", None) or err.__cause__ or err.__context__
        if isinstance(cause, ServiceTaskFailed):
            return cause
        return ServiceTaskFailed(f"{err}")

    def _save(self, run: _Run, workflow: BpmnWorkflow) -> StepResult:
        """Write the step. The instance row goes first, alone
        (UPDATE ... WHERE version = :old): a transaction that lost a race
        fails there, before any task row or history row is written."""
        session, instance, now = run.session, run.instance, run.now
        ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
        stale_rows, new_rows = self._inbox_changes(run, ready)
        if workflow.is_completed() and instance.status == "running":
            end_task = next((t for t in workflow.get_tasks(state=TaskState.COMPLETED)
                             if isinstance(t.task_spec, EndEvent)), None)
            instance.status = "completed"
            instance.finished_at = now
            instance.end_event = end_task.task_spec.bpmn_id if end_task else None
            stars = (end_task.data if end_task else workflow.data).get("stars")
            instance.stars = stars or None
            run.events.append(PendingEvent("finished", instance.end_event, {"stars": stars}))
        ready_steps = [step for step in map(_step_of, (t.task_spec for t in ready.values())) if step]
        instance.current_step = max(ready_steps) if ready_steps else (run.last_step or instance.current_step)
        instance.state = state_to_json(workflow)
        instance.updated_at = now
        history = audit.chain(instance, run.events, now)
        session.flush()
        for row in stale_rows:
            session.delete(row)
        session.add_all(new_rows + history)
        session.flush()
        return StepResult(instance.id, instance.status, [
            {"id": task_id, "element_id": t.task_spec.bpmn_id, "name": t.task_spec.bpmn_name,
             "lane": t.task_spec.lane, "step": _step_of(t.task_spec),
             "form_key": diagram.user_task_properties(t.task_spec).get("formKey")}
            for task_id, t in ready.items()], instance.end_event, instance.stars)

    def _inbox_changes(self, run: _Run, ready: dict) -> tuple[list[InboxTask], list[InboxTask]]:
        """Task rows to delete and to add so the inbox holds exactly the
        instance's ready user tasks (claims on tasks still ready are kept)."""
        with run.session.no_autoflush:
            rows = {row.id: row for row in run.session.scalars(
                select(InboxTask).where(InboxTask.instance_id == run.instance.id))}
        stale = [row for task_id, row in rows.items() if task_id not in ready]
        new = [self._inbox_row(run.instance, task, run.now)
               for task_id, task in ready.items() if task_id not in rows]
        if new:
            run.events.append(PendingEvent("tasks_ready", None, {"elements": [r.element_id for r in new]}))
        return stale, new

    @staticmethod
    def _inbox_row(instance: ProcessInstance, task, now: datetime) -> InboxTask:
        spec = task.task_spec
        props = diagram.user_task_properties(spec)
        role = roles.role_for_lane(spec.lane)
        if role is None:  # deploy-time lint makes this unreachable
            raise ServiceTaskFailed(f"lane '{spec.lane}' of {spec.bpmn_id} is not a role")
        due_days = _int(props.get("dueDays"))
        product = instance.product
        return InboxTask(
            id=str(task.id), instance_id=instance.id, product_id=instance.product_id,
            producer_id=product.producer_id if product else None, element_id=spec.bpmn_id,
            name=spec.bpmn_name or spec.bpmn_id, lane=spec.lane, role=role.key,
            jurisdiction_id=instance.areas.get(role.level or "commune"),
            form_key=props["formKey"], data_key=props["dataKey"], step=_int(props.get("step")),
            created_at=now, due_at=now + timedelta(days=due_days) if due_days else None)


def _step_of(task_spec) -> int | None:
    """The cycle step (1..6) a task declares in its `step` property, if any."""
    extensions = getattr(task_spec, "extensions", None) or {}
    return _int(extensions.get("properties", {}).get("step"))


def _int(value) -> int | None:
    return int(value) if value not in (None, "") else None
