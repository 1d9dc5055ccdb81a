"""Walk one product through the cycle with explicit decisions, as real
users: `Cycle(engine, "Hồ tiêu Gio Linh").start().do("register_idea")`.

Holds the cycle walker (Cycle), the valid form values of each step (VALID),
a return decision (RETURN, returned), council score sheets (sheets) and a
product with an open incident (training_incident). Used by most of tests/
and by the benchmarks (bench/run.py, bench/workload.py, bench/audit_verify.py)."""
from __future__ import annotations

from sqlalchemy import select

from engine.access import Actor, load_actor
from engine.bpmn_engine import BpmnEngine
from engine.driver import Driver
from engine.execution import Outcome as StepResult
from engine.samples import levels_for_total
from storage.models import InboxTask, Incident, ProcessInstance, Product

VALID = {
    "register_idea": {"registration_form": "01", "product_description": "Hồ tiêu đỏ trồng trên đất bazan",
                      "raw_materials": "Hồ tiêu Gio Linh", "expected_market": "Siêu thị trong tỉnh"},
    "receive_idea": {"form_complete": True},
    "review_idea": {"decision": "accept"},
    "submit_plan": {"plan_summary": "Mở rộng vùng trồng, đóng gói hút chân không", "investment_vnd": 200_000_000},
    "review_plan": {"decision": "accept", "support_to_arrange": ["training"]},
    "support_record": {"visited_on": "2026-03-10", "activities": "Tư vấn nhãn mác, mã vạch"},
    "submit_dossier": {"evidence": ["business_registration", "food_safety_licence", "lab_test"]},
    "check_dossier": {"decision": "forward"},
    "commune_assessment": {"decision": "forward", "local_origin": True, "local_labour": True},
    "advisory_review": {"decision": "forward"},
}
RETURN = {"decision": "return", "reasons": "Thiếu thông tin nguồn nguyên liệu"}


def sheets(total: float, members: int = 3) -> dict:
    """Council sheets whose average total is `total` (parts in proportion 40/25/35)."""
    return {"sheets": [{"member": f"Thành viên {n}", "part_a": round(total * 0.40, 2),
                        "part_b": round(total * 0.25, 2), "part_c": round(total * 0.35, 2)}
                       for n in range(1, members + 1)]}


# After the council, steps taken by the People's Committee or the ministry:
# a Cycle takes them as they come (the decision as Driver records it, the
# province recognising on the ministry's result), unless made with
# decide=False to take them itself (tests of the decision use case).
FALLBACK_RECOGNISE = {"choice": "recognise", "reason": "Công nhận theo kết quả đánh giá của Bộ."}


class Cycle:
    def __init__(self, engine: BpmnEngine, product_name: str, decide: bool = True):
        self.engine = engine
        self.driver = Driver(engine)
        self.decide = decide
        with engine.db.transaction() as session:
            product = session.scalar(select(Product).where(Product.name == product_name))
            self.product_id = product.id
            self.owner: Actor = load_actor(session, product.producer.owner_user_id)
        self.instance_id: int | None = None
        self.last: StepResult | None = None

    def start(self) -> "Cycle":
        self.last = self.engine.start_product(self.product_id, self.owner)
        self.instance_id = self.last.instance_id
        return self

    def ready(self) -> list[InboxTask]:
        return self.engine.ready_tasks(self.instance_id)

    def ready_forms(self) -> list[str]:
        return sorted(task.form_key for task in self.ready())

    def task(self, form_key: str) -> InboxTask:
        """The ready task of this form; when nothing is ready but a timer
        waits (the provincial round), time passes to it first."""
        if not self.ready():
            self.driver.wait_for_timer(self.instance_id)
        matches = [task for task in self.ready() if task.form_key == form_key]
        if not matches and form_key == "score_product":  # today's diagrams: the council's session
            matches = [task for task in self.ready() if task.form_key == "council_attendance"]
        assert matches, f"no ready '{form_key}' task; ready: {self.ready_forms()}"
        return matches[0]

    def actor(self, form_key: str) -> Actor:
        return self.driver.actor_for(self.task(form_key))

    def do(self, form_key: str, data: dict | None = None, actor: Actor | None = None) -> StepResult:
        if not self.ready():  # e.g. waiting for the provincial round
            self.driver.wait_for_timer(self.instance_id)
        if form_key == "score_product" and "council_attendance" in self.ready_forms():
            # The council of today's diagrams: a session where each member
            # scores on their own sheet; `sheets(total)` gives the totals.
            totals = [float(s["part_a"]) + float(s["part_b"]) + float(s["part_c"])
                      for s in (data or sheets(75))["sheets"]]
            return self.hold_council(totals)
        task = self.task(form_key)
        payload = VALID.get(form_key, {}) if data is None else data
        self.last = self.engine.complete_task(task.id, payload, actor or self.driver.actor_for(task))
        self.settle()
        return self.last

    def settle(self) -> None:
        """Take the recognition steps that are ready (when `decide`)."""
        while self.decide:
            task = next((t for t in self.ready() if t.form_key in ("recognition_decision", "central_fallback")),
                        None)
            if task is None:
                return
            if task.form_key == "central_fallback":
                self.last = self.engine.complete_task(task.id, FALLBACK_RECOGNISE, self.driver.actor_for(task))
            else:
                self.last = self.engine.complete_task(task.id, self.driver.recognition_decision(task),
                                                      self.driver.actor_for(task), from_session=True)

    def open_session(self, present: list[int] | None = None) -> StepResult:
        """Put the product on a council session: everybody present, or `present`."""
        task = self.task("council_attendance")
        self.last = self.engine.complete_task(task.id, self.driver.council_session(task, present),
                                              self.driver.actor_for(task), from_session=True)
        return self.last

    def score(self, totals: list[float] | float, recused: dict[int, str] | None = None,
              eliminations: dict[int, list[str]] | None = None) -> StepResult:
        """Each member present completes their own sheet, aiming at the
        totals given (in turn, by member); `recused` maps a member's user
        id to the reason they do not score."""
        totals = totals if isinstance(totals, list) else [totals]
        group = self._criteria_set()
        for index, task in enumerate(sorted((t for t in self.ready() if t.form_key == "council_sheet"),
                                            key=lambda t: t.assignee_id)):
            if recused and task.assignee_id in recused:
                sheet = {"recused": True, "conflict_reason": recused[task.assignee_id]}
            else:
                sheet = {"levels": levels_for_total(group, totals[index % len(totals)]),
                         "eliminations": (eliminations or {}).get(task.assignee_id, [])}
            self.last = self.engine.complete_task(task.id, sheet, self.driver.actor_for(task))
        return self.last

    def hold_council(self, totals: list[float] | float, present: list[int] | None = None) -> StepResult:
        """A whole council session for this product: attendance, every
        member's sheet, and the chair's sign-off."""
        self.open_session(present)
        self.score(totals)
        return self.do("council_sign_off", {"confirmed": True})

    def _criteria_set(self) -> str:
        with self.engine.db.transaction() as session:
            return session.get(Product, self.product_id).group_code

    def through_dossier(self) -> "Cycle":
        """Accept everything up to the first council's score sheet."""
        for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan"):
            if form_key in self.ready_forms():
                self.do(form_key)
        self.do("support_record")
        self.do("submit_dossier")
        for form_key in ("check_dossier", "commune_assessment", "advisory_review"):
            if form_key in self.ready_forms():
                self.do(form_key)
        return self

    def instance(self) -> ProcessInstance:
        with self.engine.db.transaction() as session:
            return session.get(ProcessInstance, self.instance_id)

    def data(self) -> dict:
        with self.engine.db.transaction() as session:
            instance = session.get(ProcessInstance, self.instance_id)
            workflow = self.engine.load_workflow(session, instance)
            return workflow.last_task.data if workflow.last_task else {}


def returned(form_key: str) -> dict:
    """A valid submission of a review form that sends the dossier back."""
    return {**VALID.get(form_key, {}), **RETURN}


def training_incident(engine: BpmnEngine, product_name: str) -> int:
    """An open incident: the product's idea is accepted while the training
    handler fails (it works again afterwards, so a retry succeeds)."""
    from handlers import registry
    handler = registry.get("schedule_training")
    real = handler.function

    def broken(context, **params):
        raise ConnectionError("lịch tập huấn tạm thời không truy cập được")
    handler.function = broken
    try:
        cycle = Cycle(engine, product_name).start()
        cycle.do("register_idea")
        cycle.do("receive_idea")
        cycle.do("review_idea")
    finally:
        handler.function = real
    with engine.db.transaction() as session:
        incident = session.scalar(select(Incident.id).where(Incident.instance_id == cycle.instance_id))
    assert incident is not None, "the failed training should have opened an incident"
    return incident
