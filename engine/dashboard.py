"""The programme at a glance for program managers and auditors: the funnel
of one cycle year by province and district, the star distribution, return
rates per review, time spent in each step, and overdue tasks per area.

Everything is computed from what was persisted: instance rows, their audit
events, the inbox's task rows and the published promotion listings. Counts
are aggregated in SQL; the JSON fields are read through SQLAlchemy's JSON
operators, which compile to `json_extract` on SQLite and `->>` / `#>>` on
PostgreSQL. Only the time spent in each step needs rows in Python (one
short row per completed task).

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
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import and_, case, distinct, exists, func, select, true
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.audit import as_utc
from engine.errors import NotAllowed
from storage.models import AuditEvent, InboxTask, Jurisdiction, ProcessInstance, PromotionListing

PRODUCT_PROCESS = "ocop_product_cycle"
# Roles that see every province; a program manager sees the provinces where
# they hold the role.
NATIONAL_ROLES = ("auditor", "admin")
MANAGER_ROLE = "program_manager"

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
        national = any(role in NATIONAL_ROLES for role, _area in actor.roles)
        managed = frozenset(area for role, area in actor.roles if role == MANAGER_ROLE and area is not None)
        return cls(national, managed)

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
    return Dashboard(filters, funnel(session, filters), star_distribution(session, filters),
                     return_rates(session, filters), step_times(session, filters),
                     overdue_tasks(session, filters, now))


# --- queries -------------------------------------------------------------------

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


def funnel(session: Session, filters: Filters) -> Funnel:
    """How many products of the year reached each stage, per district and
    per province. An instance counts once per stage however many times it
    got there (a plan accepted after two returns is one accepted plan)."""
    province, district = _province(), _district()
    form_key = AuditEvent.data["form_key"].as_string()
    decision = AuditEvent.data[("form", "decision")].as_string()
    handler = AuditEvent.data["handler"].as_string()
    completed = AuditEvent.kind == "task_completed"

    def reached(condition):
        return func.count(distinct(case((condition, AuditEvent.instance_id))))

    started = session.execute(
        select(province, district, func.count(ProcessInstance.id), func.count(PromotionListing.id))
        .outerjoin(PromotionListing, PromotionListing.instance_id == ProcessInstance.id)
        .where(_in_scope(filters)).group_by(province, district)).all()
    stages = session.execute(
        select(province, district,
               reached(and_(completed, form_key == "review_idea", decision == "accept")),
               reached(and_(completed, form_key == "review_plan", decision == "accept")),
               reached(and_(completed, form_key == "submit_dossier")),
               reached(and_(AuditEvent.kind == "service_called", handler == "rank_product")))
        .join(AuditEvent, AuditEvent.instance_id == ProcessInstance.id)
        .where(_in_scope(filters), AuditEvent.kind.in_(("task_completed", "service_called")))
        .group_by(province, district)).all()

    by_area: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FUNNEL_STAGES, 0))
    for province_id, district_id, registered, promoted in started:
        by_area[(province_id, district_id)].update(registered=registered, promoted=promoted)
    for province_id, district_id, *counts in stages:
        by_area[(province_id, district_id)].update(zip(FUNNEL_STAGES[1:5], counts))

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


def star_distribution(session: Session, filters: Filters) -> dict[str, int]:
    """Completed cycles of the year that a council ranked: by recognised
    stars (3, 4, 5), and those not recognised (ranked under 3 stars). Cycles
    that ended before any ranking (resubmission limits) are not here: the
    funnel shows where they stopped."""
    handler = AuditEvent.data["handler"].as_string()
    ranked = exists().where(AuditEvent.instance_id == ProcessInstance.id,
                            AuditEvent.kind == "service_called", handler == "rank_product")
    rows = session.execute(select(ProcessInstance.stars, func.count())
                           .where(_in_scope(filters), ProcessInstance.status == "completed", ranked)
                           .group_by(ProcessInstance.stars)).all()
    counts = dict.fromkeys(STAR_BUCKETS, 0)
    for stars, count in rows:
        counts[str(stars) if stars in (3, 4, 5) else "not_recognised"] += count
    return counts


def return_rates(session: Session, filters: Filters) -> list[ReturnRate]:
    """Per reviewed document (idea, plan, dossier): completed reviews and
    how many of them sent it back. Every review counts, resubmissions
    included; in the two-tier cycle both the commune and the province
    advisory team review the dossier."""
    form_key = AuditEvent.data["form_key"].as_string()
    # One object in SELECT and GROUP BY: PostgreSQL then sees the same
    # bound parameters in both and accepts the grouping.
    was_returned = AuditEvent.data[("form", "decision")].as_string() == RETURN_DECISION
    rows = session.execute(
        select(form_key, was_returned, func.count())
        .join(ProcessInstance, ProcessInstance.id == AuditEvent.instance_id)
        .where(_in_scope(filters), AuditEvent.kind == "task_completed", form_key.in_(REVIEWED))
        .group_by(form_key, was_returned)).all()
    rates = {subject: ReturnRate(subject, REVIEW_STEPS[subject], 0, 0) for subject in REVIEW_SUBJECTS}
    for key, returned, count in rows:
        rate = rates[REVIEWED[key]]
        rate.reviews += count
        rate.returned += count if returned else 0
    return list(rates.values())


def step_times(session: Session, filters: Filters) -> list[StepTime]:
    """Days each instance spent in each step: median and 90th percentile
    over the instances of the year.

    An instance's life is cut at each completed user task; the time from
    the previous completion (or the start) to this one is charged to the
    step of the task just completed. Summed per instance and step, this is
    the time from entering a step to leaving it, loops included (a dossier
    returned from the check in step 5 charges the revision to step 4 and
    the second check to step 5 again), and parallel tasks of one step are
    not counted twice. Work still in an inbox is not counted until it is
    done (the overdue chart shows it); steps without user tasks (6) take
    no time.
    """
    step = AuditEvent.data["step"].as_integer()
    rows = session.execute(
        select(AuditEvent.instance_id, ProcessInstance.started_at, AuditEvent.at, step)
        .join(ProcessInstance, ProcessInstance.id == AuditEvent.instance_id)
        .where(_in_scope(filters), AuditEvent.kind == "task_completed")
        .order_by(AuditEvent.instance_id, AuditEvent.seq)).all()
    spent: dict[int, list[float]] = defaultdict(list)   # step -> days per instance
    current, previous, per_step = None, None, {}
    for instance_id, started_at, at, task_step in rows:
        if instance_id != current:
            _collect(spent, per_step)
            current, previous, per_step = instance_id, as_utc(started_at), {}
        at = as_utc(at)
        if task_step is not None:
            per_step[task_step] = per_step.get(task_step, 0.0) + (at - previous).total_seconds()
        previous = at
    _collect(spent, per_step)
    return [StepTime(number, len(days), percentile(days, 50), percentile(days, 90))
            for number, days in sorted(spent.items())]


def _collect(spent: dict[int, list[float]], per_step: dict[int, float]) -> None:
    for number, seconds in per_step.items():
        spent[number].append(seconds / SECONDS_PER_DAY)


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
    query = select(distinct(ProcessInstance.year)).where(ProcessInstance.process_id == PRODUCT_PROCESS)
    if not audience.national:
        query = query.where(_province().in_(audience.provinces))
    return sorted(set(session.scalars(query)) | {current}, reverse=True)


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for stage, count in counts.items():
        into[stage] += count
