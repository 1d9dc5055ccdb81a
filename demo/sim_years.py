"""`ocop simulate --years N`: the programme over years, on a fake clock.

Products are registered over each year's registration window; their
people take days to months over each step (demo/sim_behaviour.py); about a
third of the producers whose idea was accepted leave before filing a
dossier; councils sit in their rounds (demo/sim_councils.py); and once a
simulated day the worker's jobs run on the moved clock (the caller passes
them: background/ sits beside demo/, not below it), so deadlines,
escalations, reminders and the provincial round's timer fire as they would.

Everything goes through the engine and the programme's use cases as real
users (the producer, the commune's and district's officers, council
members, the province's program manager), so the database it leaves is
one `ocop audit verify --all` checks like any other. The figures are
counted from that database afterwards (demo/sim_figures.py).

Drop-outs use what the diagrams offer: a producer who withdraws is
cancelled by the province's program manager (engine.cancel: only a
supervisor may end an instance) with the commune's reason, at the plan or
implementation step; a producer who lets a returned dossier lie more than
30 days is ended by the diagram's revise timer.

What comes after the council (numbered decisions, certificates and their
life: re-evaluation, upgrades, inspections, revocations) is the mixin of
demo/sim_lifecycle.py. A certificate is valid 36 months, so a run from
scratch sees its first re-evaluations in its fourth year; `history` years
run before `start` (their products extra, their figures not counted) give
the run a stock of certificates whose life falls inside it.
"""
from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from sqlalchemy import select

from demo.sim_behaviour import QUALITY_MEAN, QUALITY_SPREAD, Behaviour, QualityDecider
from demo.sim_councils import Sitting, ensure_councils, hold_sitting, sittings
from demo.sim_lifecycle import Lifecycle
from demo.simulate import SIM_USERNAME, create_products
from engine.access import Actor, load_actor
from engine.bpmn_engine import BpmnEngine
from engine.calendar import LOCAL_ZONE, is_working_day
from engine.clock import MovableClock
from engine.driver import Driver
from engine.errors import (
    AlreadyInCycle,
    ConcurrencyConflict,
    InstanceNotRunning,
    RegistrationClosed,
    ServiceTaskFailed,
    TaskNotReady,
    UnknownTask,
)
from storage.models import InboxTask, Jurisdiction, ProcessInstance, Producer, Product, RoleAssignment, User

Job = Callable[[BpmnEngine], int]
COUNCIL_FORMS = frozenset({"council_attendance", "council_sheet", "council_spread", "council_sign_off"})
# Tasks completed by a use case, not one by one: council sessions, and the
# People's Committee's (or ministry's) numbered decision of a round.
# (demo/sim_lifecycle.py schedules these, and the re-evaluation's written opinions.)
NOT_ONE_BY_ONE = COUNCIL_FORMS | {"recognition_decision", "revocation_decision"}
INSPECTIONS_ON = (3, 1)       # (month, day) each province plans its year's inspections
WINDOW_DAYS = 150             # each year's idea registration window, from the outreach
REGISTER_WITHIN = (3, 140)    # days into the window a producer registers its idea
WITHDRAW_AT_PLAN = 0.4        # of those who drop out, the share who leave at the plan step
WITHDRAW_DAYS = {"plan": (15, 80), "implementation": (30, 200)}
TRY_AGAIN = 0.35             # chance a product not recognised (or ended by a limit) comes back next year
WITHDRAWN_TRY_AGAIN = 0.1    # the same for a producer who withdrew
TICK_HOUR = 7                 # local hour the worker's daily pass runs
SKIPPED = (UnknownTask, TaskNotReady, InstanceNotRunning, ConcurrencyConflict, ServiceTaskFailed)


def local_time(day: date, hour: float) -> datetime:
    whole = int(hour)
    moment = datetime.combine(day, time(whole, int((hour - whole) * 60)), LOCAL_ZONE)
    return moment.astimezone(timezone.utc)


def first_working_day(day: date) -> date:
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


@dataclass
class YearsSimulation(Lifecycle):
    """One run: `products` products registered over `years` years from
    `start` (default: 1 January of the year after the engine's clock), the
    worker's `jobs` run once a simulated day. `run()` moves the engine's
    clock (made a MovableClock when it is not one) through the years."""

    engine: BpmnEngine
    products: int
    years: int
    seed: int
    jobs: dict[str, Job] = field(default_factory=dict)
    start: date | None = None
    progress: Callable[[int], None] | None = None
    # Years the programme ran before `start`: as many products a year register
    # then, so the run begins with a stock of certificates that reach their
    # re-evaluation window, upgrade or expire during its years (0: none).
    history: int = 0
    # filled as it runs
    quality: dict[int, float] = field(default_factory=dict)        # instance id -> true quality
    criteria_set: dict[int, str] = field(default_factory=dict)     # instance id -> criteria set
    province_of: dict[int, int] = field(default_factory=dict)      # instance id -> province id
    instances: set[int] = field(default_factory=set)
    known_tasks: set[str] = field(default_factory=set)
    dropping: dict[int, str | None] = field(default_factory=dict)  # instance id -> stage it leaves at
    product_quality: dict[int, float] = field(default_factory=dict)  # product id -> its quality now
    product_of: dict[int, int] = field(default_factory=dict)         # cycle instance id -> product id
    latest_instance: dict[int, int | None] = field(default_factory=dict)  # product id -> its last cycle
    # Ready tasks of forms nobody here fills yet (lifecycle forms before they are wired), by form.
    unfilled: dict[str, int] = field(default_factory=dict)
    # the lifecycle's (demo/sim_lifecycle.py)
    decisions_due: dict[tuple[str, int], datetime] = field(default_factory=dict)  # (lane role, area) -> when
    reevaluation_asked: set[int] = field(default_factory=set)   # validity instances whose producer chose
    seen: dict[int, float] = field(default_factory=dict)        # instance -> what its written panel sees
    diverging: dict[int, bool] = field(default_factory=dict)
    upgrade_asked: set[int] = field(default_factory=set)        # products
    lifecycle_seen: int = 0                                     # the last lifecycle instance looked at
    left_to_sessions: frozenset = COUNCIL_FORMS
    _events: list = field(default_factory=list)
    _sequence: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        # One generator per concern, so a change in one draws nothing from another.
        self.behaviour = Behaviour(random.Random(f"{self.seed}-behaviour"))
        self.driver = Driver(self.engine, QualityDecider(random.Random(f"{self.seed}-forms"),
                                                         score_mean=QUALITY_MEAN, score_spread=QUALITY_SPREAD))
        self.calendar_rng = random.Random(f"{self.seed}-calendar")
        if not hasattr(self.engine.clock, "now"):
            self.engine.clock = MovableClock(self.engine.clock())
        if self.start is None:
            # The next calendar year: clear of the demo's cycles and windows of this one.
            self.start = date(self.engine.clock().astimezone(LOCAL_ZONE).year + 1, 1, 1)
        self.end = date(self.start.year + self.years, self.start.month, self.start.day)
        self.first = date(self.start.year - self.history, self.start.month, self.start.day)
        self.stock = round(self.products / self.years * self.history)

    # --- the run ----------------------------------------------------------------------

    def run(self) -> dict:
        # Set, not moved forward: `--start` may name a day before the clock's.
        self.engine.clock.now = local_time(self.first, 8)
        with self.engine.db.reading() as session:
            admin_id = session.scalar(select(User.id).where(User.username == "admin"))
            if admin_id is None:
                raise RuntimeError("no administrator account: run `ocop init` first")
            self.admin = load_actor(session, admin_id)
        self.councils = ensure_councils(self.engine, self.admin)
        product_ids = create_products(self.engine, self.products + self.stock,
                                      random.Random(f"{self.seed}-products"))
        self.product_ids = product_ids[:self.products]
        self.stock_ids = product_ids[self.products:]
        self._load_people(product_ids)
        self._plan(self.product_ids)
        while self._events:
            when, _n, kind, payload = heapq.heappop(self._events)
            if when.astimezone(LOCAL_ZONE).date() >= self.end:
                break
            self._move_to(when)
            getattr(self, f"_on_{kind}")(payload)
        self._move_to(local_time(self.end, 0))
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    def _move_to(self, moment: datetime) -> None:
        self.engine.clock.now = max(self.engine.clock.now, moment)

    @property
    def _first_instance(self) -> int:
        return min(self.instances, default=0)

    def _at(self, when: datetime, kind: str, payload=None) -> None:
        heapq.heappush(self._events, (when, next(self._sequence), kind, payload))

    def _load_people(self, product_ids: list[int]) -> None:
        with self.engine.db.reading() as session:
            self.product_rows = {pid: (group, commune) for pid, group, commune in session.execute(
                select(Product.id, Product.group_code, Producer.commune_id)
                .join(Producer, Producer.id == Product.producer_id).where(Product.id.in_(product_ids)))}
            self.owner = load_actor(session, session.scalar(select(User.id).where(User.username == SIM_USERNAME)))
            managers = session.execute(select(RoleAssignment.jurisdiction_id, RoleAssignment.user_id)
                                       .where(RoleAssignment.role == "program_manager")
                                       .order_by(RoleAssignment.user_id)).all()
            self.managers: dict[int, Actor] = {}
            for province_id, user_id in managers:
                if province_id not in self.managers:
                    self.managers[province_id] = load_actor(session, user_id)
            units = session.execute(select(Jurisdiction.id, Jurisdiction.level, Jurisdiction.parent_id)).all()
        self.parent = {unit_id: parent for unit_id, _level, parent in units}
        self.level = {unit_id: level for unit_id, level, _parent in units}
        self.localities = [unit_id for unit_id, level, parent in units
                           if level == "district" or (level == "commune" and self.level.get(parent) == "province")]

    def _province(self, area_id: int) -> int | None:
        while area_id is not None and self.level.get(area_id) != "province":
            area_id = self.parent.get(area_id)
        return area_id

    def _plan(self, product_ids: list[int]) -> None:
        """The calendar: daily worker passes, each year's outreach and
        registrations, the councils' sittings, the yearly inspections."""
        day = self.first
        while day < self.end:
            self._at(local_time(day, TICK_HOUR), "tick", day)
            day += timedelta(days=1)
        per_year = [len(product_ids[year::self.years]) for year in range(self.years)]
        remaining = iter(product_ids)
        for offset in range(self.years):
            year = self.start.year + offset
            opens = first_working_day(date(year, 1, 5))
            self._at(local_time(opens, 8), "outreach", opens)
            planned = first_working_day(date(year, *INSPECTIONS_ON))
            self._at(local_time(planned, 8), "inspections", year)
            for _ in range(per_year[offset]):
                registered = opens + timedelta(days=self.calendar_rng.randint(*REGISTER_WITHIN))
                self._at(local_time(registered, self.calendar_rng.uniform(8, 17)), "register", next(remaining))
        stock = iter(self.stock_ids)
        for offset in range(self.history):  # the years before `start`, their products the stock
            year = self.first.year + offset
            opens = first_working_day(date(year, 1, 5))
            self._at(local_time(opens, 8), "outreach", opens)
            self._at(local_time(first_working_day(date(year, *INSPECTIONS_ON)), 8), "inspections", year)
            for _ in range(len(self.stock_ids[offset::self.history])):
                registered = opens + timedelta(days=self.calendar_rng.randint(*REGISTER_WITHIN))
                self._at(local_time(registered, self.calendar_rng.uniform(8, 17)), "register", next(stock))
        for sitting in sittings(self.councils, self.first, self.end - timedelta(days=1), self.calendar_rng):
            self._at(sitting.on, "sitting", sitting)

    # --- events ---------------------------------------------------------------------------

    def _on_tick(self, day: date) -> None:
        """The worker's pass of the day (timers: deadlines, escalations,
        reminders, rounds; retries), then what the day's lifecycle brings,
        then the tasks the timers made ready."""
        for job in self.jobs.values():
            job(self.engine)
        self._upgrades(day)
        self._sync()
        if self.progress:
            self.progress(1)

    def _on_outreach(self, opens: date) -> None:
        """Step 1 in every locality: the campaign opens idea registration
        for WINDOW_DAYS."""
        window = {"window_opens": opens.isoformat(),
                  "window_closes": (opens + timedelta(days=WINDOW_DAYS)).isoformat(),
                  "channels": ["meeting", "loudspeaker"], "target_producers": 20}
        for area_id in self.localities:
            outcome = self.engine.start_outreach(area_id, self.admin, year=opens.year)
            self.instances.add(outcome.instance_id)
            for task in self.engine.ready_tasks(outcome.instance_id):
                if task.form_key == "plan_outreach":
                    self.known_tasks.add(task.id)
                    self._complete(task, dict(window))
            self._refresh(outcome.instance_id)
        self._try_again(opens)

    def _try_again(self, opens: date) -> None:
        """Producers whose cycle ended without recognition in an earlier year
        may register again in this year's window ("participate next year"),
        their product somewhat better for it."""
        with self.engine.db.reading() as session:
            ended = session.execute(
                select(ProcessInstance.id, ProcessInstance.product_id, ProcessInstance.status,
                       ProcessInstance.end_event)
                .where(ProcessInstance.id.in_(list(self.product_of)), ProcessInstance.status != "running")
                .order_by(ProcessInstance.id)).all()
        latest = {}
        for instance_id, product_id, status, end_event in ended:
            if self.latest_instance.get(product_id) == instance_id and end_event != "end_recognised":
                latest[product_id] = status
        for product_id, status in sorted(latest.items()):
            if self.behaviour.rng.random() < (WITHDRAWN_TRY_AGAIN if status == "cancelled" else TRY_AGAIN):
                self.latest_instance[product_id] = None  # registering again: asked once
                registered = opens + timedelta(days=self.calendar_rng.randint(*REGISTER_WITHIN))
                self._at(local_time(registered, self.calendar_rng.uniform(8, 17)), "register", product_id)

    def _on_register(self, product_id: int) -> None:
        try:
            outcome = self.engine.start_product(product_id, self.owner)
        except (RegistrationClosed, AlreadyInCycle):
            return  # counted from the database: it never became an idea
        instance_id = outcome.instance_id
        self.instances.add(instance_id)
        if product_id in self.product_quality:
            self.product_quality[product_id] = min(97.0, self.product_quality[product_id] + self.behaviour.better())
        else:
            self.product_quality[product_id] = self.behaviour.quality()
        self.quality[instance_id] = self.product_quality[product_id]
        self.product_of[instance_id] = product_id
        self.latest_instance[product_id] = instance_id
        group, commune_id = self.product_rows[product_id]
        self.criteria_set[instance_id] = group or "S07"
        self.province_of[instance_id] = self._province(commune_id)
        self._refresh(instance_id)

    def _on_complete(self, task: InboxTask) -> None:
        quality = self.quality.get(task.instance_id)
        if task.element_id == "task_opinion_reevaluation":
            self._complete(task, self._opinion(task))
            self._refresh(task.instance_id)
            return
        data = self.driver.decider.form(task.form_key, self.criteria_set.get(task.instance_id, "S07"),
                                        self.engine.clock().astimezone(LOCAL_ZONE).date(), quality)
        self._complete(task, data)
        self._refresh(task.instance_id)

    def _complete(self, task: InboxTask, data: dict) -> None:
        try:
            self.engine.complete_task(task.id, data, self.driver.actor_for(task))
        except SKIPPED:
            pass  # the task ended meanwhile (a timer, a cancel): nothing to do

    def _on_withdraw(self, instance_id: int) -> None:
        """The producer leaves: the commune reports it and the province's
        program manager ends the cycle with the reason."""
        actor = self.managers.get(self.province_of.get(instance_id)) or self.admin
        try:
            self.engine.cancel(instance_id, actor, self.behaviour.withdrawal_reason())
        except SKIPPED:
            pass

    def _on_sitting(self, sitting: Sitting) -> None:
        def sheet_quality(instance_id: int) -> float:
            return self.behaviour.council_quality(self.quality.get(instance_id, 60.0))

        # The decisions follow: _sync schedules them as the products start waiting.
        hold_sitting(self.engine, self.driver, self.councils, sitting, self.instances, sheet_quality,
                     lambda instance_id: self.criteria_set.get(instance_id, "S07"))
        self._sync()

    def _on_decisions(self, key: tuple[str, int]) -> None:
        self._issue_decisions(key)
        self._sync()

    def _on_inspections(self, year: int) -> None:
        self._inspections(year)

    # --- tasks -----------------------------------------------------------------------------

    def _refresh(self, instance_id: int) -> None:
        self._schedule(self.engine.ready_tasks(instance_id))

    def _sync(self) -> None:
        """Every ready task of the simulation's instances not seen yet (made
        ready by a timer, a council session or a decision), lifecycle
        instances started meanwhile included."""
        self._discover()
        with self.engine.db.reading() as session:
            # The simulation's instances all came after the earliest of them;
            # ids first, whole rows only for the tasks not seen yet.
            rows = session.execute(select(InboxTask.id, InboxTask.instance_id).where(
                InboxTask.instance_id >= self._first_instance)).all()
            new = [task_id for task_id, instance_id in rows
                   if task_id not in self.known_tasks and instance_id in self.instances]
            tasks = list(session.scalars(select(InboxTask).where(InboxTask.id.in_(new)))) if new else []
        self._schedule(tasks)

    def _schedule(self, tasks: list[InboxTask]) -> None:
        # Task ids are random (uuid4): order by what is the same in every run.
        for task in sorted(tasks, key=lambda t: (t.instance_id, t.element_id, t.assignee_id or 0)):
            if task.id in self.known_tasks:
                continue
            self.known_tasks.add(task.id)
            if self._lifecycle_task(task) or task.form_key in NOT_ONE_BY_ONE:
                continue
            if not hasattr(self.driver.decider, f"_{task.form_key}"):
                self.unfilled[task.form_key] = self.unfilled.get(task.form_key, 0) + 1
                continue
            begun = max(task.created_at.replace(tzinfo=timezone.utc), self.engine.clock.now - timedelta(days=1))
            stage = self._leaves_at(task)
            if stage is not None:
                low, high = WITHDRAW_DAYS[stage]
                self._at(begun + timedelta(days=self.behaviour.rng.uniform(low, high)), "withdraw",
                         task.instance_id)
                continue
            days = self.behaviour.days(task.element_id, task.form_key)
            self._at(max(begun + timedelta(days=days), self.engine.clock.now), "complete", task)

    def _leaves_at(self, task: InboxTask) -> str | None:
        """Whether the producer leaves instead of doing this task: decided
        once, when the accepted idea's plan is first asked for; a leaver
        goes at the plan step or while implementing, never filing a dossier."""
        instance_id = task.instance_id
        if task.element_id == "task_submit_plan" and instance_id not in self.dropping:
            leaves = self.behaviour.drops_out(self.quality.get(instance_id, 60.0))
            stage = None
            if leaves:
                stage = "plan" if self.behaviour.rng.random() < WITHDRAW_AT_PLAN else "implementation"
            self.dropping[instance_id] = stage
            return "plan" if stage == "plan" else None
        if task.element_id == "task_submit_dossier" and self.dropping.get(instance_id) == "implementation":
            return "implementation"
        return None


def simulate_years(engine: BpmnEngine, products: int, years: int, seed: int, jobs: dict[str, Job],
                   start: date | None = None, progress: Callable[[int], None] | None = None,
                   history: int = 0) -> dict:
    """Run the simulation and count what it left in the database (the
    years from `start` only; with `history`, the stock's products too)."""
    from demo.sim_figures import figures
    simulation = YearsSimulation(engine, products, years, seed, jobs, start, progress, history=history)
    span = simulation.run()
    counted = figures(engine, simulation.start, simulation.end, simulation.product_ids + simulation.stock_ids)
    return {**span, **counted, "products": products, "stock": len(simulation.stock_ids),
            "tasks_nobody_fills": dict(sorted(simulation.unfilled.items()))}
