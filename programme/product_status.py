"""Where each product stands in its cycle, and what a product's page
shows, for the producers' portal (producers and the officers of its areas).

A product's status is read from rows the engine keeps current on every
step -- the process instance (current step, status, end event, stars), the
task table (what is ready, for which role), the audit history (returns
and their reasons) and the notifications -- never by deserializing a
workflow, so a page listing many products stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.diagram import PRODUCT_PROCESS
from programme.products import communes_by_id, may_view
from programme.rounds import Standing, standings
from storage.models import (
    AuditEvent,
    Document,
    Enrolment,
    InboxTask,
    Notification,
    ProcessInstance,
    Producer,
    Product,
    PromotionListing,
    Training,
)

STEPS = (1, 2, 3, 4, 5, 6)
# Step 1 (outreach) runs per locality; a product's own cycle starts at step 2.
FIRST_PRODUCT_STEP = 2
RECOGNISED_FROM_STARS = 3


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
    # Where a waiting product stands ("Chờ Hội đồng cấp tỉnh xét — Đợt 2 năm 2027, xét trước 30/12/2027").
    standing: Standing | None = None


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
    cycles = {pid: _cycle(instance, tasks.get(instance.id, [])) for pid, instance in latest.items()}
    where = standings(session, [c.instance_id for c in cycles.values() if c.status == "running"])
    for cycle in cycles.values():
        cycle.standing = where.get(cycle.instance_id)
    return cycles


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
    council_results: list[CouncilResult] = field(default_factory=list)


@dataclass(frozen=True)
class CouncilResult:
    """A council's result for the product, with every reason in words
    (handlers/council_rules.py): shown once the chair confirmed the minutes,
    as councils do not disclose results before the session ends."""

    year: int
    at: datetime
    level: str
    average: float
    stars: int
    recognised_stars: int
    reasons: list[str]


def detail(session: Session, product: Product) -> ProductDetail:
    instances = {instance.id: instance.year for instance in session.scalars(
        select(ProcessInstance).where(ProcessInstance.product_id == product.id,
                                      ProcessInstance.process_id == PRODUCT_PROCESS))}
    ids = list(instances)
    returns, results = [], []
    ranked: dict[tuple[int, str], dict] = {}  # the last council result not yet confirmed, per level
    if ids:
        # JSON queries differ between SQLite and PostgreSQL: filter the
        # (few) completed-task and service events of this product in Python.
        for event in session.scalars(select(AuditEvent).where(
                AuditEvent.instance_id.in_(ids), AuditEvent.kind.in_(("task_completed", "service_called")))
                .order_by(AuditEvent.at, AuditEvent.id)):
            if event.kind == "service_called":
                if (event.data or {}).get("handler") == "rank_council":
                    result = event.data.get("result") or {}
                    ranked[(event.instance_id, result.get("level", ""))] = result
                continue
            if event.data.get("form_key") == "council_sign_off":
                level = (event.element_id or "").rsplit("_", 1)[-1]
                result = ranked.pop((event.instance_id, level), None)
                if result:
                    results.append(CouncilResult(instances[event.instance_id], event.at, level,
                                                 result.get("average_shown", 0), result.get("stars", 0),
                                                 result.get("recognised_stars", 0),
                                                 [reason["vi"] for reason in result.get("reasons", [])]))
                continue
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
    return ProductDetail(summary(session, product), returns, notifications, enrolments, listing, documents,
                         results)


def readable_enrolment(session: Session, actor: Actor, enrolment_id: int) -> Enrolment | None:
    """A training enrolment, if the actor may read the product it belongs to
    (else None: the portal answers 404 for both)."""
    enrolment = session.get(Enrolment, enrolment_id)
    producer = session.get(Producer, enrolment.producer_id) if enrolment else None
    if producer is None or not may_view(session, actor, producer):
        return None
    return enrolment
