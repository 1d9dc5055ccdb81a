"""Producers and their products: registering them, who may see and manage
them, and where each product stands in its cycle.

A product's status is read from rows the engine keeps current on every
step -- the process instance (current step, status, end event, stars), the
task table (what is ready, for which role), the audit history (returns
and their reasons) and the notifications -- never by deserializing a
workflow, so a page listing many products stays cheap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import access
from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.diagram import PRODUCT_PROCESS
from engine.errors import NoActiveDefinition, NotAllowed, OcopError, RegistrationClosed
from engine.execution import Outcome
from programme.accounts import MIN_PASSWORD_LENGTH, create_user
from programme.tasks import prefill_registration
from storage.areas import area_chain
from storage.criteria import sets_by_code
from storage.models import (
    PRODUCER_KINDS,
    AuditEvent,
    Document,
    Enrolment,
    InboxTask,
    Jurisdiction,
    Notification,
    ProcessInstance,
    Producer,
    Product,
    PromotionListing,
    Training,
    User,
)

STEPS = (1, 2, 3, 4, 5, 6)
# Step 1 (outreach) runs per locality; a product's own cycle starts at step 2.
FIRST_PRODUCT_STEP = 2
RECOGNISED_FROM_STARS = 3
NAME_MAX = 200
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")


class InvalidRegistration(ValueError):
    """Form values that cannot be registered: field -> error code (required,
    too_long, unknown_group, unknown_kind, unknown_commune, username_format,
    username_taken, password_short)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(f"invalid registration: {errors}")


# --- who may see and manage ------------------------------------------------

def may_manage(actor: Actor, producer: Producer) -> bool:
    """engine.access.may_manage_producer, for a producer row."""
    return access.may_manage_producer(actor, producer.id, producer.commune_id)


def may_view(session: Session, actor: Actor, producer: Producer) -> bool:
    """engine.access.may_read_product, for a producer row (its commune's area chain)."""
    return access.may_read_product(actor, producer.id, area_chain(session, producer.commune_id).values())


def managed_producers(session: Session, actor: Actor) -> list[Producer]:
    """Producers the actor owns, and those of the communes it is officer of."""
    return list(session.scalars(select(Producer).where(access.managed_producers(actor))
                                .order_by(Producer.name, Producer.id)))


def all_communes(session: Session) -> list[tuple[int, str]]:
    """Every commune as (id, "Xã A – Huyện B – Tỉnh C"), for a producer
    choosing its own when it registers."""
    units = {unit.id: unit for unit in session.scalars(select(Jurisdiction))}
    labels = []
    for unit in units.values():
        if unit.level != "commune":
            continue
        names, parent = [unit.name], units.get(unit.parent_id)
        while parent is not None and parent.level != "central":
            names.append(parent.name)
            parent = units.get(parent.parent_id)
        labels.append((unit.id, " – ".join(names)))
    return sorted(labels, key=lambda item: item[1].split(" – ")[::-1])  # by province, district, commune


def communes_by_id(session: Session, ids) -> dict[int, Jurisdiction]:
    ids = list(set(ids))
    if not ids:
        return {}
    return {unit.id: unit for unit in session.scalars(select(Jurisdiction).where(Jurisdiction.id.in_(ids)))}


# --- registering -----------------------------------------------------------

def product_errors(name: str, group_code: str) -> dict[str, str]:
    errors = {}
    if not name.strip():
        errors["name"] = "required"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = "too_long"
    if group_code not in sets_by_code():
        errors["group_code"] = "unknown_group"
    return errors


def register_product(session: Session, producer: Producer, name: str, group_code: str) -> Product:
    errors = product_errors(name, group_code)
    if errors:
        raise InvalidRegistration(errors)
    product = Product(producer_id=producer.id, name=" ".join(name.split()), group_code=group_code)
    session.add(product)
    session.flush()
    return product


def register_producer(session: Session, commune_id: int, name: str, kind: str, username: str,
                      full_name: str, password: str, product_name: str, group_code: str) -> Product:
    """A new producer with its owner account and first product; returns the product.
    Every field is checked before anything is written, so the caller can
    show all the errors at once."""
    username = username.strip().lower()
    errors = {}
    commune = session.get(Jurisdiction, commune_id) if commune_id else None
    if commune is None or commune.level != "commune":
        errors["commune_id"] = "unknown_commune"
    if not name.strip():
        errors["name"] = "required"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = "too_long"
    if kind not in PRODUCER_KINDS:
        errors["kind"] = "unknown_kind"
    if not USERNAME.match(username):
        errors["username"] = "username_format"
    elif session.scalar(select(User.id).where(User.username == username)):
        errors["username"] = "username_taken"
    if not full_name.strip():
        errors["full_name"] = "required"
    elif len(full_name.strip()) > NAME_MAX:
        errors["full_name"] = "too_long"
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = "password_short"
    errors.update({f"product_{key}": code for key, code in product_errors(product_name, group_code).items()})
    if errors:
        raise InvalidRegistration(errors)
    owner = create_user(session, username, full_name, password)
    producer = Producer(name=" ".join(name.split()), kind=kind, commune_id=commune.id, owner_user_id=owner.id)
    session.add(producer)
    session.flush()
    return register_product(session, producer, product_name, group_code)


# --- starting a product's cycle ---------------------------------------------------

# Why a cycle may not start today, though the product is fine: the caller
# says so. The engine raises them before writing anything, so what the same
# transaction wrote before (a new product) can still be committed.
# AlreadyInCycle is raised, not returned: a start that lost a race learns it
# from the database's unique index, which ends the transaction.
START_REFUSALS = (RegistrationClosed, NoActiveDefinition)


@dataclass
class Started:
    """A product registered and/or its cycle started: the cycle's first
    outcome, or why it did not start (one of START_REFUSALS)."""

    product_id: int
    outcome: Outcome | None = None
    refused: OcopError | None = None


def register_and_start(engine: BpmnEngine, actor: Actor, producer_id: int, name: str, group_code: str,
                       registration_form: str) -> Started:
    """Register a product of a producer the actor manages and start its
    cycle for this year, its idea registration form pre-filled with the
    registration form chosen (01 new, 02 existing product) -- one
    transaction. When the cycle cannot start today (registration closed, no
    active diagram), the product stays registered and `refused` says why:
    the engine refuses before it writes anything."""
    def work(session: Session) -> Started:
        producer = session.get(Producer, producer_id)
        if producer is None or not may_manage(actor, producer):
            raise NotAllowed("only the producer or its commune officer may register its products")
        product = register_product(session, producer, name, group_code)
        return _start(engine, session, actor, product.id, registration_form)
    return engine.run(work)


def start_cycle(engine: BpmnEngine, actor: Actor, product_id: int, registration_form: str) -> Started:
    """Start a registered product's cycle for this year, its idea
    registration form pre-filled -- one transaction. Raises NotAllowed when
    the actor may not manage the product; a refusal of the start itself is
    in `refused`; AlreadyInCycle is raised."""
    return engine.run(lambda session: _start(engine, session, actor, product_id, registration_form))


def _start(engine: BpmnEngine, session: Session, actor: Actor, product_id: int,
           registration_form: str) -> Started:
    try:
        outcome = engine.start_product(product_id, actor, unit=session)
    except START_REFUSALS as refused:
        return Started(product_id, refused=refused)
    prefill_registration(session, outcome.instance_id, registration_form, engine.clock())
    return Started(product_id, outcome)


# --- where a product stands --------------------------------------------------

@dataclass
class Waiting:
    """A ready task of the cycle: who it waits on."""

    task_id: str
    name: str
    role: str
    step: int | None
    due_at: datetime | None
    producer_id: int | None
    jurisdiction_id: int | None


@dataclass
class Cycle:
    instance_id: int
    year: int
    status: str              # running | completed | cancelled
    current_step: int | None
    end_event: str | None
    stars: int | None
    started_at: datetime
    finished_at: datetime | None
    outcome: str             # running | recognised | not_recognised | stopped | cancelled | finished
    steps: list[tuple[int, str]] = field(default_factory=list)  # (step, done|current|stopped|todo)
    waiting: list[Waiting] = field(default_factory=list)


def outcome_of(instance: ProcessInstance) -> str:
    """What a cycle came to, from the instance row. End events are named in
    the editable diagram, so recognition is also read from the stars."""
    if instance.status == "running":
        return "running"
    if instance.status == "cancelled":
        return "cancelled"
    end = instance.end_event or ""
    if end == "end_recognised" or (instance.stars or 0) >= RECOGNISED_FROM_STARS:
        return "recognised"
    if end == "end_not_recognised":
        return "not_recognised"
    if end.endswith("_limit"):
        return "stopped"
    return "finished"


def timeline(instance: ProcessInstance, outcome: str) -> list[tuple[int, str]]:
    """Each of the six steps marked done, current, stopped (where a finished
    cycle ended short) or todo."""
    current = instance.current_step or FIRST_PRODUCT_STEP
    if outcome in ("recognised", "finished"):
        return [(step, "done") for step in STEPS]
    if outcome == "not_recognised":  # the ranking (step 5) is where it ended
        current = 5
    mark = "current" if outcome == "running" else "stopped"
    return [(step, "done" if step < current else mark if step == current else "todo") for step in STEPS]


def _cycle(instance: ProcessInstance, tasks: list[InboxTask]) -> Cycle:
    outcome = outcome_of(instance)
    return Cycle(
        instance.id, instance.year, instance.status, instance.current_step, instance.end_event,
        instance.stars, instance.started_at, instance.finished_at, outcome, timeline(instance, outcome),
        [Waiting(t.id, t.name, t.role, t.step, t.due_at, t.producer_id, t.jurisdiction_id) for t in tasks])


def latest_cycles(session: Session, product_ids: list[int]) -> dict[int, Cycle]:
    """product id -> its most recent cycle (with its ready tasks)."""
    if not product_ids:
        return {}
    latest: dict[int, ProcessInstance] = {}
    for instance in session.scalars(
            select(ProcessInstance)
            .where(ProcessInstance.product_id.in_(product_ids), ProcessInstance.process_id == PRODUCT_PROCESS)
            .order_by(ProcessInstance.started_at.desc(), ProcessInstance.id.desc())):
        latest.setdefault(instance.product_id, instance)
    tasks: dict[int, list[InboxTask]] = {}
    if latest:
        ids = [instance.id for instance in latest.values()]
        for task in session.scalars(select(InboxTask).where(InboxTask.instance_id.in_(ids))
                                    .order_by(InboxTask.created_at, InboxTask.id)):
            tasks.setdefault(task.instance_id, []).append(task)
    return {pid: _cycle(instance, tasks.get(instance.id, [])) for pid, instance in latest.items()}


@dataclass
class ProductSummary:
    id: int
    name: str
    group_code: str
    producer_id: int
    producer_name: str
    commune_name: str
    cycle: Cycle | None


def summaries(session: Session, producers: list[Producer]) -> list[ProductSummary]:
    """The products of these producers, each with its latest cycle."""
    by_id = {producer.id: producer for producer in producers}
    products = list(session.scalars(select(Product).where(Product.producer_id.in_(list(by_id)))
                                    .order_by(Product.producer_id, Product.name, Product.id))) if by_id else []
    cycles = latest_cycles(session, [product.id for product in products])
    communes = communes_by_id(session, [producer.commune_id for producer in producers])
    return [ProductSummary(p.id, p.name, p.group_code, p.producer_id, by_id[p.producer_id].name,
                           communes[by_id[p.producer_id].commune_id].name, cycles.get(p.id))
            for p in products]


def summary(session: Session, product: Product) -> ProductSummary:
    producer = product.producer
    cycle = latest_cycles(session, [product.id]).get(product.id)
    return ProductSummary(product.id, product.name, product.group_code, producer.id, producer.name,
                          producer.commune.name, cycle)


def can_start(session: Session, product_id: int, year: int) -> bool:
    """A product runs one cycle a year: not while one is running, nor again
    in a year whose cycle has ended (a cancelled cycle may be restarted)."""
    blocking = session.scalar(select(ProcessInstance.id).where(
        ProcessInstance.product_id == product_id, ProcessInstance.process_id == PRODUCT_PROCESS,
        (ProcessInstance.status == "running")
        | ((ProcessInstance.year == year) & (ProcessInstance.status != "cancelled"))).limit(1))
    return blocking is None


# --- the product's history -----------------------------------------------------

@dataclass
class Returned:
    """A reviewer sent something back: when, at which task, by whom, why."""

    at: datetime
    year: int
    task_name: str
    role: str
    step: int | None
    reasons: str


@dataclass
class EnrolmentView:
    title: str
    starts_on: date
    place: str
    topic: str
    enrolment_id: int  # names its calendar invitation (.ics)


@dataclass
class ProductDetail:
    summary: ProductSummary
    returns: list[Returned]
    notifications: list[Notification]
    enrolments: list[EnrolmentView]
    listing: PromotionListing | None
    documents: list[Document]


def detail(session: Session, product: Product) -> ProductDetail:
    instances = {instance.id: instance.year for instance in session.scalars(
        select(ProcessInstance).where(ProcessInstance.product_id == product.id,
                                      ProcessInstance.process_id == PRODUCT_PROCESS))}
    ids = list(instances)
    returns = []
    if ids:
        # JSON queries differ between SQLite and PostgreSQL: filter the
        # (few) completed-task events of this product in Python.
        for event in session.scalars(select(AuditEvent).where(
                AuditEvent.instance_id.in_(ids), AuditEvent.kind == "task_completed")
                .order_by(AuditEvent.at, AuditEvent.id)):
            form = (event.data or {}).get("form") or {}
            if form.get("decision") == "return":
                returns.append(Returned(event.at, instances[event.instance_id], event.data.get("name", ""),
                                        event.data.get("role", ""), event.data.get("step"),
                                        str(form.get("reasons") or "")))
    notifications = list(session.scalars(select(Notification).where(
        Notification.instance_id.in_(ids), Notification.producer_id == product.producer_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc()))) if ids else []
    enrolments = [EnrolmentView(t.title, t.starts_on, t.place, t.topic, enrolment_id) for t, enrolment_id in
                  session.execute(select(Training, Enrolment.id).join(Enrolment, Enrolment.training_id == Training.id)
                                  .where(Enrolment.instance_id.in_(ids)).order_by(Training.starts_on))] if ids else []
    listing = session.scalar(select(PromotionListing).where(PromotionListing.product_id == product.id)
                             .order_by(PromotionListing.certified_on.desc(), PromotionListing.id.desc())
                             .limit(1))
    documents = list(session.scalars(select(Document).where(Document.product_id == product.id)
                                     .order_by(Document.uploaded_at.desc(), Document.id.desc())))
    return ProductDetail(summary(session, product), returns, notifications, enrolments, listing, documents)


def add_document(session: Session, product: Product, user_id: int, sha256: str, filename: str,
                 content_type: str, size: int, now: datetime) -> Document:
    """One row per upload; the bytes are stored once per content (storage.documents)."""
    document = Document(sha256=sha256, filename=filename, content_type=content_type, size=size,
                        product_id=product.id, uploaded_by=user_id, uploaded_at=now)
    session.add(document)
    session.flush()
    return document
