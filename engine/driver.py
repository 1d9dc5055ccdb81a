"""Drive instances through the real engine with sample decisions: used by
the demo data, `ocop simulate`, the benchmark and the tests.

Every completion goes through `BpmnEngine.complete_task` as a real user who
holds the task's role for the task's area, so authorization, form
validation, persistence and audit are all exercised.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from sqlalchemy import func, select

from engine.access import Actor, load_actor
from engine.bpmn_engine import BpmnEngine
from engine.execution import Outcome
from engine.samples import SampleDecider
from storage.council_models import Council, CouncilMember
from storage.db import as_utc
from storage.decisions import number_taken, record_decision
from storage.models import InboxTask, ProcessInstance, Producer, RoleAssignment, TimerDue, User
from storage.recognition_models import Decision, RoundEntry

RECOGNITION_FORM = "recognition_decision"
# The lane role of a recognition decision task -> the authority that signs it.
AUTHORITY_OF_ROLE = {"district_committee": "district", "province_committee": "province", "ministry": "ministry"}


@dataclass
class Driver:
    engine: BpmnEngine
    decider: SampleDecider = field(default_factory=lambda: SampleDecider(random.Random(0)))
    _actors: dict = field(default_factory=dict)

    def actor_for(self, task: InboxTask) -> Actor:
        """A user allowed to act on the task (cached per role and area): the
        person the diagram gave it to, when it names one."""
        if task.assignee_id is not None:
            key = ("user", task.assignee_id)
            if key not in self._actors:
                with self.engine.db.transaction() as session:
                    self._actors[key] = load_actor(session, task.assignee_id)
            return self._actors[key]
        key = ("producer", task.producer_id) if task.role == "producer" else (task.role, task.jurisdiction_id)
        if key not in self._actors:
            with self.engine.db.transaction() as session:
                if task.role == "producer":
                    user_id = session.scalar(select(Producer.owner_user_id).where(Producer.id == task.producer_id))
                else:
                    user_id = session.scalar(select(RoleAssignment.user_id).where(
                        RoleAssignment.role == task.role,
                        RoleAssignment.jurisdiction_id == task.jurisdiction_id).limit(1))
                if user_id is None:
                    raise LookupError(f"nobody holds role {task.role} for area {task.jurisdiction_id}")
                self._actors[key] = load_actor(session, user_id)
        return self._actors[key]

    def complete_next(self, instance_id: int, quality: float | None = None,
                      overrides: dict[str, dict] | None = None) -> Outcome | None:
        """Complete the oldest ready task of the instance; None when none is ready.
        `overrides` maps a form key to the data to submit instead of a sample."""
        tasks = self.engine.ready_tasks(instance_id)
        if not tasks:
            return None
        task = tasks[0]
        with self.engine.db.transaction() as session:
            instance = session.get(ProcessInstance, instance_id)
            criteria_set = instance.product.group_code if instance.product else "S07"
        if overrides and task.form_key in overrides:
            data = overrides[task.form_key]
        elif task.form_key == "council_attendance":
            data = self.council_session(task)
        elif task.form_key == RECOGNITION_FORM:
            data = self.recognition_decision(task)
        else:
            data = self.decider.form(task.form_key, criteria_set, self.engine.clock().date(), quality)
        return self.engine.complete_task(task.id, data, self.actor_for(task),
                                         from_session=task.form_key in ("council_attendance", RECOGNITION_FORM))

    def recognition_decision(self, task: InboxTask) -> dict:
        """A decision of one product, as the proposal before the task says:
        what the decision page records (programme/recognition.py), for runs
        with nobody at the page. Numbered in turn within the issuing area."""
        proposal = ready_task_data(self.engine, task).get("proposal") or {}
        authority = AUTHORITY_OF_ROLE.get(task.role, "province")
        actor = self.actor_for(task)
        with self.engine.db.transaction() as session:
            issued = session.scalar(select(func.count()).select_from(Decision)
                                    .where(Decision.area_id == task.jurisdiction_id)) or 0
            round_id = session.scalar(select(RoundEntry.round_id).where(
                RoundEntry.instance_id == task.instance_id, RoundEntry.left_at.is_(None)).limit(1))
            outcome = proposal.get("outcome", "recognised")
            stars = int(proposal.get("stars") or 0)
            suffix = "BNNMT" if authority == "ministry" else "UBND"
            while number_taken(session, task.jurisdiction_id, f"{issued + 1}/QĐ-{suffix}"):
                issued += 1
            decision = record_decision(
                session, authority=authority, area_id=task.jurisdiction_id, number=f"{issued + 1}/QĐ-{suffix}",
                signed_on=self.engine.clock().date(), signer=actor.name, round_id=round_id,
                items=[{"instance_id": task.instance_id, "product_id": task.product_id, "stars": stars,
                        "outcome": outcome}],
                recorded_by=actor.user_id, recorded_at=self.engine.clock())
        return {"decision": decision, "outcome": outcome, "stars": stars}

    def council_session(self, task: InboxTask, present: list[int] | None = None) -> dict:
        """The attendance of a council session for a product waiting at
        `task`: the council of the task's role and area, everybody present
        (or `present`). What the council session page records, for runs
        with nobody at the page (dry run, simulation, demo, tests)."""
        with self.engine.db.transaction() as session:
            members = council_roster(session, task.role, task.jurisdiction_id)
        if not members:
            raise LookupError(f"no council for role {task.role} in area {task.jurisdiction_id}")
        chair = next(m["user_id"] for m in members if m["role"] == "chair")
        secretary = next((m["user_id"] for m in members if m["role"] == "secretary"), chair)
        rules = members[0]
        return {"session_id": None, "council_id": rules.get("council_id"),
                "council_name": rules.get("council_name", "Hội đồng đánh giá"),
                "held_on": self.engine.clock().date().isoformat(), "place": "",
                "members": [{k: m[k] for k in ("user_id", "name", "department", "role")} for m in members],
                "present": [m["user_id"] for m in members] if present is None else present,
                "quorum_fraction": rules.get("quorum_fraction", 0.75),
                "chair_required": rules.get("chair_required", True),
                "spread_limit": rules.get("spread_limit", 10.0), "chair_id": chair, "secretary_id": secretary}

    def run_to_end(self, instance_id: int, quality: float | None = None, max_tasks: int = 200,
                   stop_at_form: str | None = None) -> Outcome | None:
        """Complete tasks until the instance finishes (or a task with
        `stop_at_form` is ready, or nothing is ready and no timer can be
        waited for)."""
        result = None
        for _ in range(max_tasks):
            tasks = self.engine.ready_tasks(instance_id)
            if stop_at_form and any(t.form_key == stop_at_form for t in tasks):
                return result
            if not tasks:
                if self.wait_for_timer(instance_id):
                    continue
                return result
            result = self.complete_next(instance_id, quality)
        raise RuntimeError(f"instance {instance_id} did not finish within {max_tasks} tasks")

    def wait_for_timer(self, instance_id: int) -> bool:
        """Let time pass to the instance's next timer and fire it, when the
        engine runs on a clock that can be moved (an object with a `now`
        attribute: the tests', the dry run's, a simulation's). A real clock
        cannot be moved: then the instance simply waits. Returns whether a
        timer fired."""
        if not hasattr(self.engine.clock, "now"):
            return False
        with self.engine.db.transaction() as session:
            due = session.scalar(select(func.min(TimerDue.due_at)).where(TimerDue.instance_id == instance_id))
        if due is None:
            return False
        self.engine.clock.now = max(self.engine.clock.now, as_utc(due) + timedelta(minutes=1))
        return self.engine.fire_due_timers(instance_id) is not None


def ready_task_data(engine: BpmnEngine, task: InboxTask) -> dict:
    """The process data a ready task sees (e.g. the `proposal` before a
    recognition decision), read from the stored workflow."""
    with engine.db.transaction() as session:
        workflow = engine.load_workflow(session, session.get(ProcessInstance, task.instance_id))
        spiff_task = workflow.get_task_from_id(UUID(task.id))
        return dict(spiff_task.data) if spiff_task is not None else {}


def council_roster(session, role: str, area_id: int) -> list[dict]:
    """The members of the council that acts in this lane role for this area:
    the stored council (storage/council_models.py) when there is one, with
    its rules. Without one, the holders of the role: the first account
    (the sandbox's "thư ký") the secretary, the next the chair, the others
    members; one holder alone chairs."""
    level = role.removesuffix("_council")
    council = session.scalar(select(Council).where(Council.level == level, Council.area_id == area_id,
                                                   Council.active.is_(True)))
    if council is not None:
        seats = session.execute(select(CouncilMember.user_id, User.full_name, CouncilMember.department,
                                       CouncilMember.council_role)
                                .join(User, User.id == CouncilMember.user_id)
                                .where(CouncilMember.council_id == council.id, CouncilMember.removed_at.is_(None))
                                .order_by(CouncilMember.id)).all()
        if seats:
            rules = {"council_id": council.id, "council_name": council.name,
                     "quorum_fraction": council.quorum_fraction, "chair_required": council.chair_required,
                     "spread_limit": council.spread_limit}
            return [{"user_id": uid, "name": name, "department": department or "", "role": seat_role, **rules}
                    for uid, name, department, seat_role in seats]
    holders = session.execute(select(User.id, User.full_name).join(RoleAssignment, RoleAssignment.user_id == User.id)
                              .where(RoleAssignment.role == role, RoleAssignment.jurisdiction_id == area_id,
                                     User.is_active.is_(True))
                              .order_by(User.id)).all()
    roles = ["secretary", "chair"] if len(holders) > 1 else ["chair"]
    return [{"user_id": uid, "name": name, "department": "",
             "role": roles[index] if index < len(roles) else "member"}
            for index, (uid, name) in enumerate(holders)]
