"""A dry run of a diagram before it is deployed.

The diagram goes through the REAL engine on a fresh in-memory SQLite
database (migrations applied, the demo areas and people seeded, the diagram
deployed as the active national definition), never a real database. Sample
products are driven to their ends with seeded decisions chosen so that
returns, every loop limit, low and high scores all occur. The report says
which end events were taken, which flow nodes of `ocop_product_cycle` and
`ocop_outreach` were never reached, which instances got stuck, and every
error raised (per product: one bad product does not stop the report).

The diagram is first checked with `engine.diagram.check`: a diagram with
problems is not run; the report carries the problems.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Callable

from simpleeval import NameNotDefined
from sqlalchemy import func, select
from sqlalchemy.pool import StaticPool

from engine import diagram, roles
from engine.access import load_actor
from engine.bpmn_engine import BpmnEngine
from engine.clock import MovableClock
from engine.driver import Driver
from engine.errors import Problem, ServiceTaskFailed, StepBudgetExhausted, TimerValueInvalid
from engine.samples import SampleDecider
from engine.sandbox import PRODUCERS, add_council_members, add_sample_products, seed_world
from storage.areas import area_chain
from storage.db import Database, as_utc
from storage.migrate import upgrade
from storage.models import (
    AuditEvent,
    Incident,
    Jurisdiction,
    ProcessInstance,
    Producer,
    Product,
    TimerDue,
    User,
)

DEFAULT_PRODUCTS = 30
DEFAULT_SEED = 1
MAX_TASKS = 200  # per instance, at least (task_cap): more means a loop the limits do not end
# The products a deploy dry-runs: with DEFAULT_SEED, the first 12 profiles
# (every loop limit, every council outcome, the late one) take every path of
# the shipped cycles (tests/test_dryrun.py) in about 1.4 s, where 30 take 3-4 s.
DEPLOY_PRODUCTS = 12
DRYRUN_NAME = "dryrun"
DRYRUN_USERNAME = "dryrun.producer"
# Every dry run happens on the same (fake) morning, so runs are reproducible.
DRYRUN_NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PROCESSES = (diagram.PRODUCT_PROCESS, diagram.OUTREACH_PROCESS)
QUALITY_RANGE = (20.0, 97.0)
LEVELS = ("commune", "district", "province", "central")


# Kinds of failure, by what failed: (label, Vietnamese, English).
FAILURES = {
    "loop": ("LoopNeverEnds", "vòng lặp không bao giờ thoát", "a loop that never exits"),
    "timer": ("TimerFailed", "hẹn giờ lỗi", "timer failed"),
    "serviceTask": ("ServiceTaskFailed", "bước tự động (dịch vụ) lỗi", "service task failed"),
    "scriptTask": ("ScriptFailed", "đoạn lệnh lỗi", "script failed"),
    "gateway": ("GatewayFailed", "cổng rẽ nhánh không tính được điều kiện", "gateway failed"),
    "startEvent": ("StartFailed", "không bắt đầu được quy trình", "the start failed"),
    "userTask": ("TaskFailed", "việc của người dùng lỗi", "user task failed"),
    "other": ("EngineRefused", "bộ máy quy trình từ chối", "the engine refused"),
}


@dataclass
class DryRunReport:
    ok: bool
    products: int = 0
    seed: int = DEFAULT_SEED
    problems: list[dict] = field(default_factory=list)      # diagram.check errors: nothing ran
    warnings: list[dict] = field(default_factory=list)      # diagram.check warnings
    paths: dict[str, int] = field(default_factory=dict)     # end event id -> instances that ended there
    reached: dict[str, int] = field(default_factory=dict)   # element id -> instances that reached it
    unreached: list[dict] = field(default_factory=list)     # {process, id, name, type}
    stuck: list[dict] = field(default_factory=list)         # {instance_id, product_id, process, reason, ready}
    errors: list[dict] = field(default_factory=list)        # {product_id, process, element_id, error, message}
    # (errors: `error` is the kind of failure, FAILURES; `message` Vietnamese first)
    profiles: list[dict] = field(default_factory=list)      # how each product was decided

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Profile:
    """How one product's decisions are made.

    `accept_kinds`: when set, the first that many kinds of decision form met
    (review_idea, review_plan, check_dossier, ...) always accept and every
    later kind always returns -- so 0, 1, 2, ... hit each loop limit in turn.
    Otherwise reviews accept with `accept_rate`. `qualities`: the product's
    true score for its 1st, 2nd, 3rd council (the last one repeats)."""

    label: str
    accept_rate: float
    qualities: tuple[float, ...]
    accept_kinds: int | None = None
    late: bool = False  # lets every deadline pass before acting, so the timers fire
    outlier_every: int = 0  # one council sheet in this many is 15 points below the others
    reevaluate: bool = False  # below 90 at the ministry, the province chooses to evaluate again


@dataclass
class ProductDecider(SampleDecider):
    accept_kinds: int | None = None
    reevaluate: bool = False
    _kinds: list = field(default_factory=list)
    _form_key: str = ""

    def form(self, form_key: str, criteria_set: str, today: date, quality: float | None = None) -> dict:
        self._form_key = form_key
        return super().form(form_key, criteria_set, today, quality)

    def _central_fallback(self, **kwargs) -> dict:
        if self.reevaluate:
            return {"choice": "re_evaluate", "reason": "Chạy thử: tỉnh đánh giá lại."}
        return super()._central_fallback(**kwargs)

    def _decision(self, accept: str) -> dict:
        if self.accept_kinds is None:
            return super()._decision(accept)
        if self._form_key not in self._kinds:
            self._kinds.append(self._form_key)
        if self._kinds.index(self._form_key) < self.accept_kinds:
            return {"decision": accept, "reasons": ""}
        return {"decision": "return", "reasons": "Chạy thử: trả lại để kiểm tra giới hạn nộp lại."}


def profiles(count: int, rng: random.Random) -> list[Profile]:
    """Deterministic mix: loop limits at each review stage, scores that fall
    between councils, then qualities spread evenly over QUALITY_RANGE with
    accept rates from always to often returning."""
    special = [Profile(f"returns from review kind {k + 1} on", 1.0, (70.0,), accept_kinds=k) for k in range(5)]
    special += [Profile("province council scores low", 1.0, (80.0, 35.0)),
                # Below 90 at the ministry: the province re-evaluates (once), scores 90+ again, the
                # ministry again below 90, and the province recognises on its result.
                Profile("central council scores below 90 (three councils)", 1.0, (95.0, 95.0, 82.0, 97.0, 82.0),
                        reevaluate=True),
                Profile("central council scores below 90 (two councils)", 1.0, (95.0, 82.0, 97.0, 82.0),
                        reevaluate=True),
                Profile("five stars", 1.0, (96.0,)),
                Profile("council members far apart (scored again)", 1.0, (96.0,), outlier_every=5),
                Profile("misses every deadline (dossier returned)", 1.0, (70.0,), accept_kinds=2, late=True)]
    rest = max(0, count - len(special))
    low, high = QUALITY_RANGE
    spread = [round(low + (high - low) * i / max(1, rest - 1), 1) for i in range(rest)]
    rng.shuffle(spread)
    rates = (1.0, 0.85, 0.6, 0.4)
    mixed = [Profile(f"accept {rates[i % len(rates)]:.0%}, quality {q}", rates[i % len(rates)], (q,))
             for i, q in enumerate(spread)]
    return (special + mixed)[:count]


def dry_run(xml: bytes, products: int = DEFAULT_PRODUCTS, seed: int = DEFAULT_SEED,
            filename: str = "diagram.bpmn") -> DryRunReport:
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    checked = diagram.check(xml, filename)
    report = DryRunReport(ok=False, products=products, seed=seed,
                          problems=[_problem(p) for p in checked.problems],
                          warnings=[_problem(p) for p in checked.warnings])
    if checked.problems:
        return report
    database = Database("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    try:
        _run(database, xml, checked, products, seed, report)
    finally:
        database.dispose()
    report.ok = not (report.errors or report.stuck or report.unreached)
    return report


def _run(database: Database, xml: bytes, checked: diagram.CheckedDiagram, count: int, seed: int,
         report: DryRunReport) -> None:
    upgrade(database.sql_engine)
    clock = MovableClock(DRYRUN_NOW)  # moved only to let deadlines and rounds pass
    engine = BpmnEngine(database, clock=clock)
    seed_world(database)
    add_council_members(database)  # councils of five, so sessions, recusals and spreads happen
    engine.deploy(xml, DRYRUN_NAME, "dryrun", "dry run")
    rng = random.Random(seed)
    nodes = {node["id"]: node for node in flow_nodes(checked.root)}
    starts = {node["process"]: node["id"] for node in nodes.values() if node["type"] == "startEvent"}

    def error(err: Exception, product_id: int | None, process: str, completing: str | None = None) -> dict:
        return _error(err, product_id, process, completing or starts.get(process), nodes)
    communes = _communes(engine, checked)
    with engine.db.transaction() as session:
        admin = load_actor(session, session.scalar(select(User.id).where(User.username == "admin")))
        chains = {c: area_chain(session, c) for c in communes}
    instance_ids: list[int] = []
    cap = task_cap(checked, engine.max_resubmissions)

    # Step 1 where the products are, at the level of the outreach lanes (the
    # lowest one when several): the district, or the commune itself.
    outreach_levels = _lane_levels(checked, diagram.OUTREACH_PROCESS)
    level = min(outreach_levels, key=LEVELS.index) if outreach_levels else "district"
    outreach_driver = Driver(engine, SampleDecider(random.Random(seed), accept_rate=1.0))
    for locality in sorted({chain.get(level) or commune for commune, chain in chains.items()}):
        try:
            started = engine.start_outreach(locality, admin, DRYRUN_NOW.year)
        except Exception as err:  # noqa: BLE001 - every failure goes in the report
            report.errors.append(error(err, None, diagram.OUTREACH_PROCESS))
            continue
        instance_ids.append(started.instance_id)
        _drive(engine, outreach_driver, started.instance_id, None, diagram.OUTREACH_PROCESS, (70.0,), report, clock,
               error, cap=cap)

    for product_id, profile in zip(_products(engine, communes, count, rng), profiles(count, rng)):
        report.profiles.append({"product_id": product_id, **asdict(profile)})
        decider = ProductDecider(random.Random(rng.random()), accept_rate=profile.accept_rate,
                                 accept_kinds=profile.accept_kinds, outlier_every=profile.outlier_every,
                                 reevaluate=profile.reevaluate)
        driver = Driver(engine, decider)
        with engine.db.transaction() as session:
            owner = load_actor(session, session.get(Product, product_id).producer.owner_user_id)
        clock.now = DRYRUN_NOW  # each product starts while registration is open; its own time then moves on
        try:
            started = engine.start_product(product_id, owner, DRYRUN_NOW.year)
        except Exception as err:  # noqa: BLE001
            report.errors.append(error(err, product_id, diagram.PRODUCT_PROCESS))
            continue
        instance_ids.append(started.instance_id)
        _drive(engine, driver, started.instance_id, product_id, diagram.PRODUCT_PROCESS, profile.qualities, report,
               clock, error, profile.late, cap)

    _summarize(engine, checked, instance_ids, report)


def task_cap(checked: diagram.CheckedDiagram, max_resubmissions: int) -> int:
    """The completions after which an instance counts as looping for good:
    every task that waits for a person, once per round a resubmission loop
    may take -- so a long diagram (2,000 steps in a row) is not cut short --
    and never fewer than MAX_TASKS."""
    waiting = sum(1 for node in flow_nodes(checked.root) if node["type"] in diagram.WAITING_TAGS)
    return max(MAX_TASKS, waiting * (max_resubmissions + 1))


def _communes(engine: BpmnEngine, checked: diagram.CheckedDiagram) -> list[int]:
    """The demo producers' communes whose area chain has every level the
    diagram's lanes act at (a district lane needs a district); all of them
    when none fits, so the failures show in the report."""
    levels = _lane_levels(checked, *PROCESSES)
    with engine.db.transaction() as session:
        codes = [commune for _u, _n, _p, _k, commune, _products in PRODUCERS]
        ids = {code: jid for code, jid in session.execute(
            select(Jurisdiction.code, Jurisdiction.id).where(Jurisdiction.code.in_(codes)))}
        communes = [ids[code] for code in dict.fromkeys(codes)]
        fitting = [c for c in communes if levels <= set(area_chain(session, c))]
    return fitting or communes


def _lane_levels(checked: diagram.CheckedDiagram, *process_ids: str) -> set[str]:
    """The area levels the lanes of those processes act at."""
    bpmn = diagram.NS["bpmn"]
    levels = set()
    for process in checked.root.iter(f"{{{bpmn}}}process"):
        if process.get("id") in process_ids:
            for lane in process.iter(f"{{{bpmn}}}lane"):
                role = roles.role_for_lane(lane.get("name"))
                if role is not None and role.level:
                    levels.add(role.level)
    return levels


def _products(engine: BpmnEngine, communes: list[int], count: int, rng: random.Random) -> list[int]:
    """The demo products of those communes, then new ones spread over them."""
    with engine.db.transaction() as session:
        ids = list(session.scalars(select(Product.id).join(Producer).where(Producer.commune_id.in_(communes))
                                   .order_by(Product.id)))[:count]
        if len(ids) < count:
            owner = User(username=DRYRUN_USERNAME, full_name="Chủ thể chạy thử")
            session.add(owner)
            session.flush()
            ids += add_sample_products(session, owner.id, communes, count - len(ids), rng, "chạy thử")
    return ids


def _let_deadlines_pass(engine: BpmnEngine, clock: MovableClock, instance_id: int) -> None:
    """Move the clock past the instance's waiting timers and fire them."""
    with engine.db.transaction() as session:
        due = session.scalar(select(func.max(TimerDue.due_at)).where(TimerDue.instance_id == instance_id))
    if due is not None:
        clock.now = max(clock.now, as_utc(due) + timedelta(minutes=1))
        engine.fire_due_timers(instance_id)


def _drive(engine: BpmnEngine, driver: Driver, instance_id: int, product_id: int | None, process: str,
           qualities: tuple[float, ...], report: DryRunReport, clock: MovableClock, error: Callable,
           late: bool = False, cap: int = MAX_TASKS) -> None:
    """Complete the oldest ready task until the instance ends, nothing is
    ready, an error is raised or `cap` tasks were completed. A `late` product
    lets every deadline pass before each task."""
    scored = 0
    for _ in range(cap):
        if late:
            try:
                _let_deadlines_pass(engine, clock, instance_id)
            except Exception as err:  # noqa: BLE001
                report.errors.append(error(err, product_id, process, "timers"))
                return
        tasks = engine.ready_tasks(instance_id)
        if not tasks and driver.wait_for_timer(instance_id):  # e.g. the provincial round
            continue
        if not tasks:
            with engine.db.transaction() as session:
                status = session.get(ProcessInstance, instance_id).status
            if status == "running":
                report.stuck.append({"instance_id": instance_id, "product_id": product_id, "process": process,
                                     "reason": "running with no ready task", "ready": []})
            return
        task = tasks[0]
        if task.form_key in ("score_product", "council_attendance"):  # the next council
            scored += 1
        quality = qualities[min(max(scored - 1, 0), len(qualities) - 1)]
        try:
            driver.complete_next(instance_id, quality)
        except Exception as err:  # noqa: BLE001
            report.errors.append(error(err, product_id, process, task.element_id))
            return
        failed = _failed_service_task(engine, instance_id)
        if failed is not None:  # the call's work was kept; the service task (or timer) waits in an incident
            report.errors.append(error(ServiceTaskFailed(failed.error, failed.element_id), product_id, process,
                                       task.element_id))
            return
    report.stuck.append({"instance_id": instance_id, "product_id": product_id, "process": process,
                         "reason": f"still running after {cap} tasks",
                         "ready": [t.element_id for t in engine.ready_tasks(instance_id)]})


def _failed_service_task(engine: BpmnEngine, instance_id: int) -> Incident | None:
    with engine.db.transaction() as session:
        return session.scalar(select(Incident).where(Incident.instance_id == instance_id).limit(1))


def _error(err: Exception, product_id: int | None, process: str, completing: str | None,
           nodes: dict[str, dict]) -> dict:
    """One error of the report: where (the element the engine names, else
    the one SpiffWorkflow was running, else the task being completed or the
    process's start), what kind of failure by that element's type, and the
    message in Vietnamese first -- naming the variable when one is undefined."""
    element = getattr(err, "element", None)
    for cause in _chain(err):
        spec = getattr(getattr(cause, "task", None), "task_spec", None)
        if element is None and getattr(spec, "bpmn_id", None):
            element = spec.bpmn_id
    element = element or completing
    label, vietnamese, english = FAILURES[_kind(err, (nodes.get(element) or {}).get("type"))]
    node = nodes.get(element) or {}
    where = f" '{node['name']}'" if node.get("name") else ""
    detail = str(err)
    undefined = next((cause.name for cause in _chain(err) if isinstance(cause, (NameError, NameNotDefined))), None)
    if undefined:
        detail = f"biến '{undefined}' chưa được định nghĩa / variable '{undefined}' is not defined; {detail}"
    return {"product_id": product_id, "process": process, "element_id": element, "completing": completing,
            "error": label, "message": f"{vietnamese.capitalize()}{where} ({element}) / {english}: {detail}"}


def _kind(err: Exception, element_type: str | None) -> str:
    if isinstance(err, StepBudgetExhausted):
        return "loop"
    # An incident on an event can only be a timer set aside (service tasks are tasks).
    if isinstance(err, TimerValueInvalid) or isinstance(err, ServiceTaskFailed) and (element_type or "").endswith("Event"):
        return "timer"
    if element_type and element_type.endswith("Gateway"):
        return "gateway"
    if element_type in FAILURES:
        return element_type
    return "serviceTask" if isinstance(err, ServiceTaskFailed) else "other"


def _chain(err: BaseException):
    """The error and its causes (SpiffWorkflow wraps the Python error; the
    engine's error hides SpiffWorkflow's with `from None`, which keeps it as
    the context)."""
    seen = 0
    while err is not None and seen < 8:
        yield err
        err, seen = err.__cause__ or err.__context__, seen + 1


def _summarize(engine: BpmnEngine, checked: diagram.CheckedDiagram, instance_ids: list[int],
               report: DryRunReport) -> None:
    reached: dict[str, set[int]] = {}
    paths: Counter = Counter()
    with engine.db.transaction() as session:
        for event in session.scalars(select(AuditEvent).where(AuditEvent.instance_id.in_(instance_ids))):
            elements = []
            if event.kind in ("task_completed", "service_called", "finished") and event.element_id:
                elements.append(event.element_id)
            if event.kind == "engine_steps":
                elements += (event.data or {}).get("elements", [])
            if event.kind == "finished" and event.element_id:
                paths[event.element_id] += 1
            for element in elements:
                reached.setdefault(element, set()).add(event.instance_id)
    report.paths = dict(sorted(paths.items()))
    report.reached = {element: len(ids) for element, ids in sorted(reached.items())}
    report.unreached = [node for node in flow_nodes(checked.root) if node["id"] not in reached]


def flow_nodes(root) -> list[dict]:
    """Every flow node of the two processes the engine starts, in document order."""
    bpmn = diagram.NS["bpmn"]
    nodes = []
    for process in root.iter(f"{{{bpmn}}}process"):
        if process.get("id") not in PROCESSES:
            continue
        for element in process.iter(*(f"{{{bpmn}}}{tag}" for tag in diagram.FLOW_NODE_TAGS)):
            nodes.append({"process": process.get("id"), "id": element.get("id"),
                          "name": element.get("name") or "", "type": element.tag.split("}")[1]})
    return nodes


def _problem(problem: Problem) -> dict:
    return problem.as_dict()


def format_report(report: DryRunReport) -> str:
    if report.problems:
        return "\n".join(["Sơ đồ có lỗi, không chạy thử / the diagram has errors, nothing ran:"]
                         + [f"  [{p['layer']}] {p['message']} ({p['element_id'] or '-'}, line {p['line'] or '-'})"
                            for p in report.problems])
    lines = [f"Chạy thử / dry run: {report.products} products, seed {report.seed}",
             "Kết thúc / paths taken:"]
    lines += [f"  {end:<34} {count:>5}" for end, count in report.paths.items()]
    lines.append(f"Phần tử đã qua / elements reached: {len(report.reached)}")
    lines.append(f"Chưa bao giờ đến / never reached: {len(report.unreached)}")
    lines += [f"  {n['process']}: {n['id']} ({n['type']}) {n['name']}" for n in report.unreached]
    lines.append(f"Bị kẹt / stuck: {len(report.stuck)}")
    lines += [f"  instance {s['instance_id']} (product {s['product_id']}): {s['reason']} {s['ready'] or ''}"
              for s in report.stuck]
    lines.append(f"Lỗi / errors: {len(report.errors)}")
    lines += [f"  product {e['product_id']} at {e['element_id']}: {e['error']}: {e['message']}"
              for e in report.errors]
    lines.append("OK" if report.ok else "NOT OK")
    return "\n".join(lines)
