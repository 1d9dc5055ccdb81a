"""The programme at a glance for program managers and auditors: the funnel
of one cycle year by province and district, the star distribution, return
rates per review, time spent in each step, and overdue tasks per area.

Everything is computed from what was persisted: instance rows, their audit
events, the inbox's task rows and the published promotion listings.
Overdue tasks are counted in SQL. The other figures need each instance's
history (which reviews accepted or returned, when each task was done), and
reading 10,000 histories is what costs -- above all parsing the events'
JSON, which SQLite and PostgreSQL's `json` type do anew for every field.
So one pass reads only the few events that matter (start, completed
tasks, rankings) and takes form keys, steps and handlers from the
deployed diagrams (`diagram_elements`); the database extracts only the
decisions of reviews, through SQLAlchemy's JSON operators (`json_extract`
on SQLite, `->>` / `#>>` on PostgreSQL). What a history says is kept in
memory under the hash of its last event (see `instance_facts`), and the
figures are summed in Python from these per-instance facts.

Which instances count: product cycles (`ocop_product_cycle`) of the chosen
cycle year (`process_instance.year`, the year the product registered for),
in the chosen provinces. Cancelled cycles count nowhere: a supervisor
cancels a cycle started by mistake, or one that is then restarted (the
restart is the instance that counts), so counting them would count some
products twice.

Districts: communes of a two-tier province (after July 2025) sit directly
under the province, so their instances have no district. The by-district
figures give them one row per province with `district_id = None`
("communes directly under the province") rather than inventing a level.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, NamedTuple, Sequence

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from engine import diagram
from engine.access import Actor, oversight_of
from engine.errors import NotAllowed
from storage.models import (
    AuditEvent,
    InboxTask,
    Jurisdiction,
    ProcessDefinition,
    ProcessInstance,
    PromotionListing,
)

PRODUCT_PROCESS = "ocop_product_cycle"

FUNNEL_STAGES = ("registered", "idea_accepted", "plan_accepted", "dossier_submitted", "ranked", "promoted")
STAR_BUCKETS = ("3", "4", "5", "not_recognised")

# The review forms (engine/forms.py) and what each one reviews. The dossier
# belongs to step 4; the diagrams mark its checks as step 5 because the
# evaluation round begins with them.
REVIEWED = {"review_idea": "idea", "review_plan": "plan", "check_dossier": "dossier",
            "commune_assessment": "dossier", "advisory_review": "dossier"}
REVIEW_SUBJECTS = ("idea", "plan", "dossier")
REVIEW_STEPS = {"idea": 2, "plan": 3, "dossier": 4}
RETURN_DECISION = "return"
# Funnel stages a completed task reaches: (form key, decision or None for any).
STAGE_OF_COMPLETION = {("review_idea", "accept"): "idea_accepted", ("review_plan", "accept"): "plan_accepted",
                       ("submit_dossier", None): "dossier_submitted"}
# The handlers that rank a product: `rank_council` (a council session's
# sheets, handlers/council_ranking.py) in the current diagrams, `rank_product`
# (one typed score) in diagram versions before issue 15, whose instances
# still count.
RANKING_HANDLERS = frozenset({"rank_council", "rank_product"})

SECONDS_PER_DAY = 86400.0


# --- who sees what ------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    year: int
    provinces: tuple[int, ...] | None = None  # None: every province


@dataclass(frozen=True)
class Audience:
    """The provinces a user may see on the dashboard."""

    national: bool
    provinces: frozenset[int] = frozenset()

    @classmethod
    def of(cls, actor: Actor) -> "Audience":
        oversight = oversight_of(actor)
        return cls(oversight.everything, oversight.province_ids)

    @property
    def may_view(self) -> bool:
        return self.national or bool(self.provinces)

    def filters(self, year: int, province: int | None = None) -> Filters:
        """The filters for a request. A province the user may not see is
        refused, never silently widened or narrowed."""
        if not self.may_view:
            raise NotAllowed("the programme dashboard is for program managers, auditors and administrators")
        if province is not None:
            if not (self.national or province in self.provinces):
                raise NotAllowed(f"province {province} is outside the user's scope")
            return Filters(year, (province,))
        return Filters(year, None if self.national else tuple(sorted(self.provinces)))


# --- what the dashboard shows ------------------------------------------------

@dataclass
class FunnelRow:
    province_id: int | None
    province: str
    district_id: int | None = None    # None on district rows: communes directly under the province
    district: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FUNNEL_STAGES, 0))


@dataclass
class Funnel:
    total: dict[str, int]
    provinces: list[FunnelRow]
    districts: list[FunnelRow]


@dataclass
class ReturnRate:
    subject: str          # idea | plan | dossier
    step: int
    reviews: int
    returned: int

    @property
    def rate(self) -> float | None:
        """Returned reviews over all reviews, 0..1; None without reviews."""
        return self.returned / self.reviews if self.reviews else None


@dataclass
class StepTime:
    step: int
    instances: int              # instances with at least one completed task in the step
    median_days: float | None
    p90_days: float | None


@dataclass
class OverdueArea:
    jurisdiction_id: int | None
    name: str
    level: str | None
    tasks: int


@dataclass
class Dashboard:
    filters: Filters
    funnel: Funnel
    stars: dict[str, int]
    returns: list[ReturnRate]
    step_times: list[StepTime]
    overdue: list[OverdueArea]


def dashboard(session: Session, filters: Filters, now: datetime) -> Dashboard:
    instances = instance_facts(session, filters)
    return Dashboard(filters, funnel(session, filters, instances), star_distribution(session, filters, instances),
                     return_rates(session, filters, instances), step_times(session, filters, instances),
                     overdue_tasks(session, filters, now))


# --- one pass over the histories ---------------------------------------------------

# Named tuples, not dataclasses: there is one per instance, 10,000s of them.
class History(NamedTuple):
    """What the dashboard needs from one instance's history."""

    stages: frozenset[str]                       # funnel stages reached by events (idea_accepted ... ranked)
    reviews: tuple[tuple[str, int, int], ...]    # (subject, reviews, returned)
    seconds_in_step: tuple[tuple[int, float], ...]


class InstanceFacts(NamedTuple):
    id: int
    province_id: int | None
    district_id: int | None
    status: str
    stars: int | None
    promoted: bool
    history: History


# Histories are append-only, and an instance row carries the hash of its
# last event, which covers every event before it (engine/events.py). What is
# read from a history can therefore be kept under that hash: it stays true
# for as long as the hash is the instance's head. Finished instances never
# change, so after the first view only the instances that moved since are
# read again; the histories are by far the largest table. Bounded, least
# recently used first.
_HISTORY_CACHE_SIZE = 50_000  # about 1 KB each
_histories: OrderedDict[str, History] = OrderedDict()
_histories_lock = threading.Lock()
_CHUNK = 500


def instance_facts(session: Session, filters: Filters) -> list[InstanceFacts]:
    """The instances in scope with what their histories say."""
    rows = session.connection().execute(
        select(ProcessInstance.id, _province().label("province_id"), _district().label("district_id"),
               ProcessInstance.status, ProcessInstance.stars, ProcessInstance.audit_head,
               PromotionListing.id.label("listing_id"))
        .outerjoin(PromotionListing, PromotionListing.instance_id == ProcessInstance.id)
        .where(_in_scope(filters))).all()
    with _histories_lock:
        known = {row.audit_head: _histories.get(row.audit_head) for row in rows}
    missing = [row for row in rows if known[row.audit_head] is None]
    if missing:
        elements = diagram_elements(session)
        for start in range(0, len(missing), _CHUNK):
            read = _read_histories(session, missing[start:start + _CHUNK], elements)
            known.update(read)
            with _histories_lock:
                _histories.update(read)
                while len(_histories) > _HISTORY_CACHE_SIZE:
                    _histories.popitem(last=False)
    return [InstanceFacts(row.id, row.province_id, row.district_id, row.status, row.stars,
                          row.listing_id is not None, known[row.audit_head]) for row in rows]


@dataclass(frozen=True)
class Element:
    """What a diagram says of one of its elements: a user task's form key
    and step, a service task's handler and step."""

    form_key: str | None = None
    step: int | None = None
    handler: str | None = None


# Per deployed diagram (by its sha256: a deployment never changes), its
# product-cycle elements.
_diagrams: dict[str, dict[str, Element]] = {}
_diagrams_lock = threading.Lock()


def diagram_elements(session: Session) -> dict[str, Element | None]:
    """Element id -> what every deployed product-cycle diagram says of it,
    or None where two versions disagree.

    An event's form key, step and handler were copied from the diagram of
    its instance, so the diagrams give them without parsing each event's
    JSON, which is what reading histories costs. Only events of elements
    the diagrams do not settle have their JSON read.
    """
    deployed = session.execute(select(ProcessDefinition.id, ProcessDefinition.sha256)).all()
    with _diagrams_lock:
        unread = [definition_id for definition_id, sha256 in deployed if sha256 not in _diagrams]
    if unread:
        read = {sha256: _elements_of(xml) for sha256, xml in session.execute(
            select(ProcessDefinition.sha256, ProcessDefinition.bpmn_xml)
            .where(ProcessDefinition.id.in_(unread)))}
        with _diagrams_lock:
            _diagrams.update(read)
    merged: dict[str, Element | None] = {}
    with _diagrams_lock:
        for sha256 in {sha256 for _id, sha256 in deployed}:
            for element_id, element in _diagrams[sha256].items():
                merged[element_id] = element if merged.get(element_id, element) == element else None
    return merged


def _elements_of(xml: str) -> dict[str, Element]:
    """User and service tasks of a deployed diagram's product cycle, read as
    the engine reads them (engine/diagram.py, Execution.call_service in engine/execution.py)."""
    root, _problems = diagram.read_xml(xml)
    if root is None:  # deployed diagrams were checked; nothing to read otherwise
        return {}
    elements = {}
    for process in root.xpath("bpmn:process[@id=$id]", id=PRODUCT_PROCESS, namespaces=diagram.NS):
        for task in process.xpath(".//bpmn:userTask | .//bpmn:serviceTask", namespaces=diagram.NS):
            properties = {node.get("name"): node.get("value", "") for node in task.xpath(
                "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", namespaces=diagram.NS)}
            operator = task.xpath("bpmn:extensionElements/spiffworkflow:serviceTaskOperator/@id",
                                  namespaces=diagram.NS)
            step = properties.get("step", "")
            elements[task.get("id")] = Element(properties.get("formKey"), int(step) if step.isdigit() else None,
                                               operator[0] if operator else None)
    return elements


def _read_histories(session: Session, rows, elements: dict[str, Element | None]) -> dict[str, History]:
    """Read the histories of some instances: their start, completed tasks
    and rankings. The database extracts a review's decision, and the form
    key, step or handler only of elements the diagrams do not settle."""
    settled = [element_id for element_id, element in elements.items() if element is not None]
    reviews = [element_id for element_id in settled if elements[element_id].form_key in REVIEWED]
    rankings = [element_id for element_id in settled if elements[element_id].handler in RANKING_HANDLERS]
    unsettled = AuditEvent.element_id.not_in(settled)
    completed, service = AuditEvent.kind == "task_completed", AuditEvent.kind == "service_called"
    data = AuditEvent.data
    # Core rows (the connection, not the ORM session): many small rows.
    events = session.connection().execute(
        select(AuditEvent.instance_id, AuditEvent.kind, AuditEvent.element_id, AuditEvent.at,
               case((and_(completed, or_(AuditEvent.element_id.in_(reviews), unsettled)),
                     data[("form", "decision")].as_string())),
               case((and_(completed, unsettled), data["form_key"].as_string())),
               case((unsettled, data["step"].as_integer())),
               case((and_(service, unsettled), data["handler"].as_string())))
        .where(AuditEvent.instance_id.in_([row.id for row in rows]),
               or_(AuditEvent.kind.in_(("started", "task_completed")),
                   and_(service, or_(AuditEvent.element_id.in_(rankings), unsettled))))
        .order_by(AuditEvent.instance_id, AuditEvent.seq)).all()
    by_instance: dict[int, list] = defaultdict(list)
    for event in events:
        by_instance[event[0]].append(event)
    return {row.audit_head: _history(by_instance[row.id], elements) for row in rows}


def _history(events, elements: dict[str, Element | None]) -> History:
    """One instance's facts; see step_times for how time is charged to
    steps. Times are compared as the database returns them (all naive
    UTC, or all aware)."""
    stages: set[str] = set()
    reviews: dict[str, list[int]] = {}
    seconds: dict[int, float] = defaultdict(float)
    previous = None
    for _instance, kind, element_id, at, decision, form_key, step, handler in events:
        if kind == "started":
            previous = at
            continue
        element = elements.get(element_id)
        if element is not None:
            form_key, step, handler = element.form_key, element.step, element.handler
        if kind == "service_called":
            if handler not in RANKING_HANDLERS:
                continue
            stages.add("ranked")
        if step is not None and previous is not None:
            seconds[step] += (at - previous).total_seconds()
        previous = at
        if kind != "task_completed":
            continue
        stage = STAGE_OF_COMPLETION.get((form_key, decision)) or STAGE_OF_COMPLETION.get((form_key, None))
        if stage:
            stages.add(stage)
        if form_key in REVIEWED:
            counts = reviews.setdefault(REVIEWED[form_key], [0, 0])
            counts[0] += 1
            counts[1] += decision == RETURN_DECISION
    return History(frozenset(stages), tuple((subject, *counts) for subject, counts in reviews.items()),
                   tuple(seconds.items()))


# --- the figures -------------------------------------------------------------------

def funnel(session: Session, filters: Filters, instances: list[InstanceFacts] | None = None) -> Funnel:
    """How many products of the year reached each stage, per district and
    per province. An instance counts once per stage however many times it
    got there (a plan accepted after two returns is one accepted plan)."""
    instances = instance_facts(session, filters) if instances is None else instances
    by_area: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FUNNEL_STAGES, 0))
    for instance in instances:
        counts = by_area[(instance.province_id, instance.district_id)]
        counts["registered"] += 1
        counts["promoted"] += instance.promoted
        for stage in instance.history.stages:
            counts[stage] += 1

    names = area_names(session, {area for key in by_area for area in key if area is not None})
    districts = sorted((FunnelRow(p, names.get(p, str(p)), d, names.get(d) if d else None, counts)
                        for (p, d), counts in by_area.items()),
                       key=lambda row: (row.province, row.district_id is not None, row.district or ""))
    provinces: dict[int | None, FunnelRow] = {}
    for row in districts:
        total = provinces.setdefault(row.province_id, FunnelRow(row.province_id, row.province))
        _add(total.counts, row.counts)
    total = dict.fromkeys(FUNNEL_STAGES, 0)
    for row in provinces.values():
        _add(total, row.counts)
    return Funnel(total, list(provinces.values()), districts)


def star_distribution(session: Session, filters: Filters,
                      instances: list[InstanceFacts] | None = None) -> dict[str, int]:
    """Completed cycles of the year that a council ranked: by recognised
    stars (3, 4, 5), and those not recognised (ranked under 3 stars). Cycles
    that ended before any ranking (resubmission limits) are not here: the
    funnel shows where they stopped."""
    instances = instance_facts(session, filters) if instances is None else instances
    counts = dict.fromkeys(STAR_BUCKETS, 0)
    for instance in instances:
        if instance.status == "completed" and "ranked" in instance.history.stages:
            counts[str(instance.stars) if instance.stars in (3, 4, 5) else "not_recognised"] += 1
    return counts


def return_rates(session: Session, filters: Filters,
                 instances: list[InstanceFacts] | None = None) -> list[ReturnRate]:
    """Per reviewed document (idea, plan, dossier): completed reviews and
    how many of them sent it back. Every review counts, resubmissions
    included; in the two-tier cycle both the commune and the province
    advisory team review the dossier."""
    instances = instance_facts(session, filters) if instances is None else instances
    rates = {subject: ReturnRate(subject, REVIEW_STEPS[subject], 0, 0) for subject in REVIEW_SUBJECTS}
    for instance in instances:
        for subject, reviews, returned in instance.history.reviews:
            rates[subject].reviews += reviews
            rates[subject].returned += returned
    return list(rates.values())


def step_times(session: Session, filters: Filters, instances: list[InstanceFacts] | None = None) -> list[StepTime]:
    """Days each instance spent in each step: median and 90th percentile
    over the instances of the year.

    An instance's life is cut at each completed user task (and council
    ranking); the time from the previous cut (or the start) to this one is
    charged to the step of the task just completed. Summed per instance
    and step, this is the time from entering a step to leaving it, loops
    included (a dossier returned from the check in step 5 charges the
    revision to step 4 and the second check to step 5 again), and parallel
    tasks of one step are not counted twice. Work still in an inbox is not
    counted until it is done (the overdue chart shows it); steps without
    user tasks (6) take no time. An instance counts for the steps in which
    it completed a task.
    """
    instances = instance_facts(session, filters) if instances is None else instances
    spent: dict[int, list[float]] = defaultdict(list)   # step -> days per instance
    for instance in instances:
        for step, seconds in instance.history.seconds_in_step:
            spent[step].append(seconds / SECONDS_PER_DAY)
    return [StepTime(number, len(days), percentile(days, 50), percentile(days, 90))
            for number, days in sorted(spent.items())]


def _province():
    return ProcessInstance.areas["province"].as_integer()


def _district():
    return ProcessInstance.areas["district"].as_integer()


def _in_scope(filters: Filters):
    """The instances a figure counts (see the module docstring)."""
    conditions = [ProcessInstance.process_id == PRODUCT_PROCESS, ProcessInstance.year == filters.year,
                  ProcessInstance.status != "cancelled"]
    if filters.provinces is not None:
        conditions.append(_province().in_(filters.provinces))
    return and_(*conditions)


def _in_provinces(filters: Filters):
    if filters.provinces is None:
        return true()
    return _province().in_(filters.provinces)


def overdue_tasks(session: Session, filters: Filters, now: datetime) -> list[OverdueArea]:
    """Tasks waiting past their due date now, per area of the role that
    must act (the commune for its officer, the district for its council...),
    for the instances of the chosen provinces. Overdue work is a fact of
    today, so every cycle year counts (a product of last year's cycle still
    waits on someone), outreach campaigns included."""
    rows = session.execute(
        select(InboxTask.jurisdiction_id, func.count())
        .join(ProcessInstance, ProcessInstance.id == InboxTask.instance_id)
        .where(InboxTask.due_at < now, _in_provinces(filters))
        .group_by(InboxTask.jurisdiction_id)).all()
    areas = {row.id: row for row in session.execute(
        select(Jurisdiction.id, Jurisdiction.name, Jurisdiction.level)
        .where(Jurisdiction.id.in_([area for area, _count in rows if area is not None])))}
    result = [OverdueArea(area, areas[area].name if area in areas else "", areas[area].level if area in areas
                          else None, count) for area, count in rows]
    return sorted(result, key=lambda row: (-row.tasks, row.name))


# --- helpers ---------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between the two
    nearest ranks (numpy's default): percentile([1, 2, 3, 4], 50) == 2.5."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def area_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(session.execute(select(Jurisdiction.id, Jurisdiction.name).where(Jurisdiction.id.in_(ids))).all())


def provinces(session: Session, audience: Audience) -> list[tuple[int, str]]:
    """The provinces the audience may choose from, by name."""
    query = select(Jurisdiction.id, Jurisdiction.name).where(Jurisdiction.level == "province")
    if not audience.national:
        query = query.where(Jurisdiction.id.in_(audience.provinces))
    return [tuple(row) for row in session.execute(query.order_by(Jurisdiction.name))]


def cycle_years(session: Session, audience: Audience, current: int) -> list[int]:
    """Years with product cycles the audience may see, and the current one; newest first."""
    query = select(ProcessInstance.year).distinct().where(ProcessInstance.process_id == PRODUCT_PROCESS)
    if not audience.national:
        query = query.where(_province().in_(audience.provinces))
    return sorted(set(session.scalars(query)) | {current}, reverse=True)


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for stage, count in counts.items():
        into[stage] += count
