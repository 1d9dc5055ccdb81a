"""Councils and rounds for `ocop simulate --years`: the councils every
level needs, the round calendar, and council sessions held the way the
session page holds them (programme/councils.py): the secretary opens the
session with the waiting products, each present member scores them on
their own sheet, the secretary records any re-scoring discussion, and the
chair confirms the minutes.

Rounds (OCOP.md, 26/2026 Art. 4): the province's dossiers proposed by
30/4 are decided before 30/6, by 30/10 before 30/12; the ministry's by
30/7 before 30/9 and by 30/01 before 30/3. A session of a round takes the
products waiting at that council's attendance since the round's proposal
deadline; later ones wait for the next round. District councils (the seed
era's cycle) have no rounds: they sit once a month.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from engine.access import Actor, load_actor
from engine.bpmn_engine import BpmnEngine
from engine.calendar import LOCAL_ZONE, is_working_day
from engine.driver import Driver
from engine.errors import ConcurrencyConflict, InstanceNotRunning, TaskNotReady, UnknownTask
from programme.accounts import create_user
from programme.councils import CouncilRefused, add_member, create_council, open_session, sign_off_session
from storage.council_models import Council, CouncilMember
from storage.models import InboxTask, Jurisdiction, RoleAssignment, User

# (month, day) a round's proposals close -> (month, day) it is decided by.
PROVINCE_ROUNDS = (((4, 30), (6, 30)), ((10, 30), (12, 30)))
CENTRAL_ROUNDS = (((1, 30), (3, 30)), ((7, 30), (9, 30)))
DISTRICT_SITTING_DAY = 12      # district councils sit on the first working day from the 12th
ROUND_SITTING_AFTER = (20, 45)  # a round's session, days after its proposals close
MEMBERS = ("chair", "vice_chair", "member", "member")
DEPARTMENTS = ("Sở Nông nghiệp và Môi trường", "Sở Công Thương", "Sở Y tế", "Sở Khoa học và Công nghệ")
SESSION_FORMS_MEMBERS = ("council_sheet", "council_spread")


@dataclass(frozen=True)
class Sitting:
    """A council session the simulation holds: which council, on what day,
    for products waiting since at most `waiting_since`; a round's session
    has the day its decision is due by (district sittings: None)."""

    level: str
    area_id: int
    on: datetime
    waiting_since: datetime
    decide_by: date | None = None


def ensure_councils(engine: BpmnEngine, admin: Actor) -> dict[tuple[str, int], int]:
    """An active council with a chair and a secretary for every council lane
    role holder's area (districts, provinces, the nation), created by the
    administrator through the councils' use cases when missing (the demo
    keeps its own); the sandbox's role holder is the secretary, new
    simulation accounts the other seats. Returns {(level, area id): council id}."""
    with engine.db.reading() as session:
        holders = session.execute(
            select(RoleAssignment.role, RoleAssignment.jurisdiction_id, User.id, User.username)
            .join(User, User.id == RoleAssignment.user_id)
            .where(RoleAssignment.role.in_(("district_council", "province_council", "central_council")))
            .order_by(User.id)).all()
        existing = {(c.level, c.area_id): c.id for c in session.scalars(select(Council).where(Council.active.is_(True)))}
        names = dict(session.execute(select(Jurisdiction.id, Jurisdiction.name)).all())
    councils = {}
    for role, area_id, user_id, username in holders:
        level = role.removesuffix("_council")
        key = (level, area_id)
        if key in councils:
            continue
        if key in existing:
            councils[key] = existing[key]
            continue
        council_id = create_council(engine, admin, level, area_id,
                                    f"Hội đồng đánh giá, phân hạng sản phẩm OCOP ({names[area_id]})")
        with engine.db.transaction() as session:
            seats = []
            for number, seat_role in enumerate(MEMBERS, start=1):
                name = f"sim.{username}.tv{number}"
                user = session.scalar(select(User).where(User.username == name)) or create_user(
                    session, name, f"Thành viên hội đồng {number} ({names[area_id]})", None)
                seats.append((user.id, seat_role, DEPARTMENTS[(number - 1) % len(DEPARTMENTS)]))
        for seat_user, seat_role, department in seats:
            add_member(engine, admin, council_id, seat_user, department, seat_role)
        add_member(engine, admin, council_id, user_id, "Văn phòng Điều phối OCOP", "secretary")
        councils[key] = council_id
    return councils


def _local(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), LOCAL_ZONE).astimezone(timezone.utc)


def _working_day_from(day: date) -> date:
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def sittings(councils: dict[tuple[str, int], int], first: date, last: date, rng) -> list[Sitting]:
    """Every session the simulation holds between `first` and `last`: each
    district council monthly, each province's and the ministry's council
    once in each of their rounds."""
    planned = []
    for (level, area_id) in sorted(councils):
        if level == "district":
            month = date(first.year, first.month, 1)
            while month <= last:
                day = _working_day_from(month.replace(day=DISTRICT_SITTING_DAY))
                planned.append(Sitting(level, area_id, _local(day), _local(day)))
                month = (month + timedelta(days=32)).replace(day=1)
            continue
        rounds = PROVINCE_ROUNDS if level == "province" else CENTRAL_ROUNDS
        for year in range(first.year, last.year + 1):
            for (close_month, close_day), (decide_month, decide_day) in rounds:
                closes = date(year, close_month, close_day)
                decide_by = date(year, decide_month, decide_day)
                held = _working_day_from(closes + timedelta(days=rng.randint(*ROUND_SITTING_AFTER)))
                held = min(held, decide_by - timedelta(days=3))
                # The seed era's round timer releases products at 23:59:59 on the
                # closing day; the simulated worker passes once a day, the next morning.
                planned.append(Sitting(level, area_id, _local(held), _local(closes + timedelta(days=1), 12),
                                       decide_by))
    return [s for s in planned if first <= s.on.astimezone(LOCAL_ZONE).date() <= last]


def hold_sitting(engine: BpmnEngine, driver: Driver, councils: dict[tuple[str, int], int], sitting: Sitting,
                 instances: set[int], sheet_quality, criteria_set_of) -> int:
    """The session of `sitting` for the simulation's products waiting at its
    council since the round's deadline: opened, scored, re-scored when
    members' totals diverge, and signed off by the chair. Members score
    near `sheet_quality(instance id)`. Returns how many products it took."""
    council_id = councils[(sitting.level, sitting.area_id)]
    with engine.db.reading() as session:
        waiting = session.execute(
            select(InboxTask.id, InboxTask.instance_id)
            .where(InboxTask.form_key == "council_attendance", InboxTask.role == f"{sitting.level}_council",
                   InboxTask.jurisdiction_id == sitting.area_id, InboxTask.created_at <= sitting.waiting_since)
            .order_by(InboxTask.created_at, InboxTask.instance_id)).all()  # not by the random task id
        waiting = [(task_id, instance_id) for task_id, instance_id in waiting if instance_id in instances]
        if not waiting:
            return 0
        seats = session.execute(select(CouncilMember.user_id, CouncilMember.council_role)
                                .where(CouncilMember.council_id == council_id,
                                       CouncilMember.removed_at.is_(None))).all()
        roles = {user_id: role for user_id, role in seats}
        secretary = load_actor(session, next(u for u, r in roles.items() if r == "secretary"))
        chair = load_actor(session, next(u for u, r in roles.items() if r == "chair"))
    held_on = sitting.on.astimezone(LOCAL_ZONE).date()
    session_id = open_session(engine, secretary, council_id, [task_id for task_id, _ in waiting], list(roles),
                              held_on, "Phòng họp Ủy ban nhân dân")
    on_agenda = [instance_id for _, instance_id in waiting]
    seen_by_council = {i: sheet_quality(i) for i in on_agenda}
    for _round in range(12):  # sheets, then at most a few re-scorings (the diagram bounds them too)
        pending = [t for i in on_agenda for t in engine.ready_tasks(i) if t.form_key in SESSION_FORMS_MEMBERS]
        # Task ids are random (uuid4): sheets in an order every run repeats.
        pending.sort(key=lambda t: (t.instance_id, t.element_id, t.assignee_id or 0))
        if not pending:
            break
        for task in pending:
            data = driver.decider.form(task.form_key, criteria_set_of(task.instance_id), held_on,
                                       seen_by_council[task.instance_id])
            try:
                engine.complete_task(task.id, data, driver.actor_for(task))
            except (UnknownTask, TaskNotReady, InstanceNotRunning, ConcurrencyConflict):
                continue
    try:
        sign_off_session(engine, chair, session_id, "Thống nhất kết quả chấm điểm.")
    except CouncilRefused:  # nothing left to sign (every agenda product ended meanwhile)
        pass
    return len(on_agenda)
