"""The evaluation councils (Hội đồng đánh giá, phân hạng sản phẩm OCOP):
keeping a council's roster and rules, the products waiting for a session,
opening a session (phiên họp) with its attendance, and the chair's sign-off
of its minutes (biên bản). The minutes themselves are read in
programme/council_minutes.py.

Who may do what is engine/access.py's (may_keep_council, may_see_council,
may_open_session). Each use case is one transaction; every roster or rule
change writes its admin log line (subject 'council') in that transaction.
A session's attendance completes each agenda product's
`council_attendance` task through BpmnEngine.complete_task in the same
transaction as the session's rows: all products or none.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from engine import access
from engine.access import Actor, load_actor, supervision_of
from engine.bpmn_engine import BpmnEngine
from engine.errors import NotAllowed, OcopError, TaskNotReady, UnknownTask
from handlers.council_rules import Quorum, quorum
from programme.accounts import assign_role
from programme.rounds import open_round_of
from storage.areas import area_chain
from storage.council_models import (
    COUNCIL_LEVELS,
    COUNCIL_ROLES,
    SESSION_CLOSED,
    SESSION_OPEN,
    SINGLE_ROLES,
    Council,
    CouncilAgenda,
    CouncilMember,
    CouncilSession,
)
from storage.models import AdminLogEntry, InboxTask, Jurisdiction, Producer, Product, RoleAssignment, User

ATTENDANCE_FORM, SIGN_OFF_FORM = "council_attendance", "council_sign_off"
# Forms of a product still before its sign-off once its session has opened.
SESSION_FORMS = ("council_sheet", "council_spread", SIGN_OFF_FORM)
NAME_MAX, PLACE_MAX, NOTES_MAX, DEPARTMENT_MAX = 200, 255, 2000, 200
ROLE_VI = {"chair": "chủ tịch", "vice_chair": "phó chủ tịch", "member": "ủy viên", "secretary": "thư ký"}
LEVEL_VI = {"district": "cấp huyện", "province": "cấp tỉnh", "central": "cấp Trung ương"}


class CouncilRefused(OcopError):
    """A council change or session that the rules refuse; the message is
    Vietnamese, for the person who asked (nothing was written)."""


class QuorumNotMet(CouncilRefused):
    """The members present do not make the council's quorum."""

    def __init__(self, figures: Quorum):
        self.quorum = figures
        super().__init__(figures.message_vi())


class UnknownCouncil(CouncilRefused):
    """No such council, session or member -- or one the actor may not see
    (pages answer 404 for both)."""


def lane_role(level: str) -> str:
    """The council lane's role: district_council, province_council, central_council."""
    return f"{level}_council"


# --- reading councils ---------------------------------------------------------------------

def council_areas(session: Session, council: Council) -> dict[str, int]:
    return area_chain(session, council.area_id)


def active_members(session: Session, council_id: int) -> list[CouncilMember]:
    """The council's current roster, chair first, then by role and seat."""
    members = session.scalars(select(CouncilMember).options(selectinload(CouncilMember.user))
                              .where(CouncilMember.council_id == council_id, CouncilMember.removed_at.is_(None))
                              .order_by(CouncilMember.id)).all()
    return sorted(members, key=lambda m: (COUNCIL_ROLES.index(m.council_role), m.id))


def former_members(session: Session, council_id: int) -> list[CouncilMember]:
    """Seats that ended, newest first (the roster's history)."""
    return list(session.scalars(select(CouncilMember).options(selectinload(CouncilMember.user))
                                .where(CouncilMember.council_id == council_id,
                                       CouncilMember.removed_at.is_not(None))
                                .order_by(CouncilMember.removed_at.desc(), CouncilMember.id.desc())))


def _holder(members: list[CouncilMember], role: str) -> CouncilMember | None:
    return next((m for m in members if m.council_role == role), None)


def may_see(session: Session, actor: Actor, council: Council) -> bool:
    members = [m.user_id for m in active_members(session, council.id)]
    return access.may_see_council(actor, council_areas(session, council), members)


def may_keep(session: Session, actor: Actor, council: Council) -> bool:
    return access.may_keep_council(actor, council_areas(session, council))


def readable_council(session: Session, actor: Actor, council_id: int) -> Council | None:
    """The council if the actor may see it, else None (as if it did not exist)."""
    council = session.get(Council, council_id)
    return council if council is not None and may_see(session, actor, council) else None


@dataclass(frozen=True)
class CouncilEntry:
    """A council as the councils page lists it."""

    council: Council
    area_name: str
    members: int
    waiting: int
    kept: bool        # the reader keeps its roster (program manager, administrator)
    my_role: str | None


def councils_for(session: Session, actor: Actor) -> list[CouncilEntry]:
    """The councils the actor sits on, keeps or (an auditor) reads; active
    first. A few statements whatever their number (an administrator sees
    every council of the country)."""
    supervision = supervision_of(session, actor)
    councils = session.scalars(select(Council).options(selectinload(Council.area))
                               .where(access.seen_councils(actor, supervision))
                               .order_by(Council.active.desc(), Council.level, Council.name, Council.id)).all()
    if not councils:
        return []
    ids = [council.id for council in councils]
    seated = (CouncilMember.council_id.in_(ids), CouncilMember.removed_at.is_(None))
    sizes = dict(session.execute(select(CouncilMember.council_id, func.count()).where(*seated)
                                 .group_by(CouncilMember.council_id)).all())
    mine = dict(session.execute(select(CouncilMember.council_id, CouncilMember.council_role)
                                .where(*seated, CouncilMember.user_id == actor.user_id)).all())
    kept = set(session.scalars(select(Council.id).where(Council.id.in_(ids), access.kept_councils(supervision))))
    waiting = {(role, area): n for role, area, n in session.execute(
        select(InboxTask.role, InboxTask.jurisdiction_id, func.count())
        .where(InboxTask.form_key == ATTENDANCE_FORM,
               InboxTask.jurisdiction_id.in_(sorted({council.area_id for council in councils})))
        .group_by(InboxTask.role, InboxTask.jurisdiction_id))}
    return [CouncilEntry(council, council.area.name, sizes.get(council.id, 0),
                         waiting.get((lane_role(council.level), council.area_id), 0) if council.active else 0,
                         council.id in kept, mine.get(council.id))
            for council in councils]


def council_areas_to_keep(session: Session, actor: Actor) -> list[tuple[str, Jurisdiction]]:
    """(level, area) pairs where the actor may create a council
    (may_keep_council, through its SQL form): the districts and provinces of
    its provinces; every area, the central level included, for an
    administrator."""
    supervision = supervision_of(session, actor)
    if not supervision:
        return []
    query = select(Jurisdiction).where(Jurisdiction.level.in_(COUNCIL_LEVELS))
    if not supervision.everything:
        query = query.where(Jurisdiction.id.in_(sorted(supervision.area_ids)))
    order = {level: n for n, level in enumerate(("central", "province", "district"))}
    units = session.scalars(query.order_by(Jurisdiction.name)).all()
    return [(unit.level, unit) for unit in sorted(units, key=lambda unit: order[unit.level])]


def council_log(session: Session, council_id: int, limit: int = 100) -> list[AdminLogEntry]:
    """The council's admin log lines, newest first."""
    return list(session.scalars(select(AdminLogEntry).where(AdminLogEntry.subject == "council",
                                                            AdminLogEntry.subject_id == council_id)
                                .order_by(AdminLogEntry.at.desc(), AdminLogEntry.id.desc()).limit(limit)))


def account_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.strip().lower()))


# --- keeping a council --------------------------------------------------------------------

def _log(session: Session, engine: BpmnEngine, actor: Actor, council: Council, action: str, message: str) -> None:
    session.add(AdminLogEntry(at=engine.clock(), actor_id=actor.user_id, actor_name=actor.name, action=action,
                              subject="council", subject_id=council.id,
                              province_id=council_areas(session, council).get("province"),
                              message=f"{council.name}: {message}"))


def _kept_council(session: Session, actor: Actor, council_id: int) -> Council:
    council = session.get(Council, council_id)
    if council is None or not may_see(session, actor, council):
        raise UnknownCouncil(f"Không có hội đồng số {council_id}.")
    if not may_keep(session, actor, council):
        raise NotAllowed("Chỉ quản lý chương trình của tỉnh hoặc quản trị hệ thống được thay đổi hội đồng này.")
    return council


def _rules(name: str, quorum_fraction: float, spread_limit: float) -> tuple[str, float, float]:
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_MAX:
        raise CouncilRefused(f"Tên hội đồng phải có từ 1 đến {NAME_MAX} ký tự.")
    try:
        quorum_fraction, spread_limit = float(quorum_fraction), float(spread_limit)
    except (TypeError, ValueError):
        raise CouncilRefused("Tỷ lệ tối thiểu và chênh lệch điểm phải là số.") from None
    if not 0 < quorum_fraction <= 1:
        raise CouncilRefused("Tỷ lệ thành viên tối thiểu phải lớn hơn 0 và không quá 1 (ví dụ 0,75).")
    if not 0 < spread_limit <= 100:
        raise CouncilRefused("Chênh lệch điểm tối đa giữa các thành viên phải từ trên 0 đến 100 điểm.")
    return name, quorum_fraction, spread_limit


def create_council(engine: BpmnEngine, actor: Actor, level: str | None, area_id: int, name: str,
                   quorum_fraction: float = 0.75, chair_required: bool = True, spread_limit: float = 10.0) -> int:
    """A new active council of an area (one per level and area); returns its
    id. `level` None: the area's own level (a district's council is a
    district council, and so on)."""
    with engine.db.transaction() as session:
        area = session.get(Jurisdiction, area_id)
        if area is None:
            raise CouncilRefused(f"Không có địa bàn số {area_id}.")
        if not access.may_keep_council(actor, area_chain(session, area_id)):
            raise NotAllowed("Chỉ quản lý chương trình của tỉnh hoặc quản trị hệ thống được lập hội đồng "
                             "cho địa bàn này (hội đồng Trung ương: quản trị hệ thống).")
        level = level or area.level
        if level not in COUNCIL_LEVELS or area.level != level:
            raise CouncilRefused(f"Hội đồng {LEVEL_VI.get(level, level)} phải thuộc một địa bàn "
                                 f"{LEVEL_VI.get(level, level)} (huyện, tỉnh hoặc Trung ương).")
        name, quorum_fraction, spread_limit = _rules(name, quorum_fraction, spread_limit)
        if session.scalar(select(Council.id).where(Council.level == level, Council.area_id == area_id,
                                                   Council.active.is_(True))) is not None:
            raise CouncilRefused(f"{area.name} đã có hội đồng {LEVEL_VI[level]} đang hoạt động.")
        council = Council(level=level, area_id=area_id, name=name, quorum_fraction=quorum_fraction,
                          chair_required=bool(chair_required), spread_limit=spread_limit, active=True,
                          created_at=engine.clock())
        session.add(council)
        session.flush()
        _log(session, engine, actor, council, "council_created",
             f"lập hội đồng ({area.name}); {_rules_text(council)}")
        return council.id


def _rules_text(council: Council) -> str:
    chair = "chủ tịch phải có mặt" if council.chair_required else "không bắt buộc chủ tịch có mặt"
    return (f"có mặt tối thiểu {council.quorum_fraction:g} số thành viên, {chair}, "
            f"chênh lệch điểm tối đa {council.spread_limit:g}")


def change_settings(engine: BpmnEngine, actor: Actor, council_id: int, name: str, quorum_fraction: float,
                    chair_required: bool, spread_limit: float) -> None:
    """Rename the council or change its rules (sessions already held keep theirs)."""
    with engine.db.transaction() as session:
        council = _kept_council(session, actor, council_id)
        name, quorum_fraction, spread_limit = _rules(name, quorum_fraction, spread_limit)
        before = (council.name, _rules_text(council))
        council.name, council.quorum_fraction = name, quorum_fraction
        council.chair_required, council.spread_limit = bool(chair_required), spread_limit
        after = (council.name, _rules_text(council))
        if after != before:
            _log(session, engine, actor, council, "council_settings",
                 f"trước: {before[0]}; {before[1]} — sau: {after[0]}; {after[1]}")


def _check_single_role(members: list[CouncilMember], role: str, seat_id: int | None = None) -> None:
    if role not in COUNCIL_ROLES:
        raise CouncilRefused(f"Vai trò trong hội đồng không hợp lệ: {role}.")
    holder = _holder(members, role) if role in SINGLE_ROLES else None
    if holder is not None and holder.id != seat_id:
        raise CouncilRefused(f"Hội đồng đã có {ROLE_VI[role]} ({holder.user.full_name}); "
                             f"hãy đổi vai trò hoặc cho người đó rời hội đồng trước.")


def add_member(engine: BpmnEngine, actor: Actor, council_id: int, user_id: int, department: str,
               council_role: str) -> int:
    """Seat an account on the council with its department and council role;
    it gets the council lane's role at the council's area if it lacks it
    (that is how it acts on the council's tasks). Returns the seat's id."""
    department = " ".join((department or "").split())
    with engine.db.transaction() as session:
        council = _kept_council(session, actor, council_id)
        if len(department) > DEPARTMENT_MAX:
            raise CouncilRefused(f"Tên cơ quan, đơn vị tối đa {DEPARTMENT_MAX} ký tự.")
        if not council.active:
            raise CouncilRefused("Hội đồng đã ngừng hoạt động.")
        user = session.get(User, user_id, options=[selectinload(User.roles)])
        if user is None or not user.is_active:
            raise CouncilRefused("Không có tài khoản đang hoạt động này.")
        members = active_members(session, council.id)
        if any(m.user_id == user.id for m in members):
            raise CouncilRefused(f"{user.full_name} đã là thành viên hội đồng.")
        _check_single_role(members, council_role)
        role = lane_role(council.level)
        granted = not any(r.role == role and r.jurisdiction_id == council.area_id for r in user.roles)
        if granted:
            assign_role(session, user, role, council.area_id)
        seat = CouncilMember(council_id=council.id, user_id=user.id, department=department,
                             council_role=council_role, added_at=engine.clock())
        session.add(seat)
        session.flush()
        _log(session, engine, actor, council, "member_added",
             f"thêm {user.full_name} ({user.username}), {ROLE_VI[council_role]}, {department or '—'}"
             + ("; cấp quyền hội đồng tại địa bàn" if granted else ""))
        return seat.id


def _kept_seat(session: Session, actor: Actor, member_id: int,
               council_id: int | None) -> tuple[Council, CouncilMember]:
    """The seat (of `council_id`, when given) if the actor keeps its
    council; a seat that already ended is refused, not unknown."""
    seat = session.get(CouncilMember, member_id)
    if seat is None or council_id not in (None, seat.council_id):
        raise UnknownCouncil(f"Không có thành viên hội đồng số {member_id}.")
    council = _kept_council(session, actor, seat.council_id)
    if seat.removed_at is not None:
        raise CouncilRefused(f"{seat.user.full_name} đã rời hội đồng.")
    return council, seat


def change_role(engine: BpmnEngine, actor: Actor, member_id: int, council_role: str,
                council_id: int | None = None) -> None:
    """Give a seated member another council role (one chair, one secretary)."""
    with engine.db.transaction() as session:
        council, seat = _kept_seat(session, actor, member_id, council_id)
        _check_single_role(active_members(session, council.id), council_role, seat.id)
        if seat.council_role == council_role:
            return
        before, seat.council_role = seat.council_role, council_role
        session.flush()
        _log(session, engine, actor, council, "member_role",
             f"{seat.user.full_name}: {ROLE_VI[before]} → {ROLE_VI[council_role]}")


def remove_member(engine: BpmnEngine, actor: Actor, member_id: int, council_id: int | None = None) -> None:
    """End a member's seat (kept in the roster's history) and, unless they
    sit on another council of the same level and area, the council lane's
    role at that area with it: a former member no longer sees the council's
    work. Refused while a sheet, spread record or sign-off of theirs waits
    (the diagram gave it to them alone: it would be stranded)."""
    with engine.db.transaction() as session:
        council, seat = _kept_seat(session, actor, member_id, council_id)
        role = lane_role(council.level)
        waiting = session.scalar(select(func.count()).select_from(InboxTask).where(
            InboxTask.assignee_id == seat.user_id, InboxTask.role == role,
            InboxTask.jurisdiction_id == council.area_id))
        if waiting:
            raise CouncilRefused(f"{seat.user.full_name} còn {waiting} việc của hội đồng đang chờ (phiếu chấm, "
                                 f"biên bản); hãy để thành viên hoàn thành trước khi rời hội đồng.")
        seat.removed_at = engine.clock()
        other_seat = session.scalar(
            select(CouncilMember.id).join(Council, Council.id == CouncilMember.council_id)
            .where(CouncilMember.user_id == seat.user_id, CouncilMember.removed_at.is_(None),
                   CouncilMember.id != seat.id, Council.active.is_(True), Council.level == council.level,
                   Council.area_id == council.area_id).limit(1))
        withdrawn = []
        if other_seat is None:
            withdrawn = list(session.scalars(select(RoleAssignment).where(
                RoleAssignment.user_id == seat.user_id, RoleAssignment.role == role,
                RoleAssignment.jurisdiction_id == council.area_id)))
            for assignment in withdrawn:
                session.delete(assignment)
        _log(session, engine, actor, council, "member_removed",
             f"{seat.user.full_name} ({ROLE_VI[seat.council_role]}) rời hội đồng"
             + ("; thu hồi quyền hội đồng tại địa bàn" if withdrawn else ""))


# --- products waiting, sessions -----------------------------------------------------------

@dataclass(frozen=True)
class WaitingProduct:
    """A product whose cycle waits for a session of the council."""

    task_id: str
    instance_id: int
    product_id: int | None
    product: str
    producer: str
    group_code: str | None
    since: datetime
    due_at: datetime | None


def _waiting_rows(session: Session, council: Council, task_ids=None):
    query = (select(InboxTask, Product.name, Product.group_code, Producer.name)
             .outerjoin(Product, Product.id == InboxTask.product_id)
             .outerjoin(Producer, Producer.id == InboxTask.producer_id)
             .where(InboxTask.form_key == ATTENDANCE_FORM, InboxTask.role == lane_role(council.level),
                    InboxTask.jurisdiction_id == council.area_id)
             .order_by(InboxTask.created_at, InboxTask.id))
    if task_ids is not None:
        query = query.where(InboxTask.id.in_(list(task_ids)))
    return session.execute(query).all()


def waiting_products(session: Session, actor: Actor, council_id: int) -> list[WaitingProduct]:
    """The products waiting for a session of the council: the ready
    attendance tasks of its lane role at its area. Raises UnknownCouncil
    for a council the actor may not see."""
    council = readable_council(session, actor, council_id)
    if council is None:
        raise UnknownCouncil(f"Không có hội đồng số {council_id}.")
    return [WaitingProduct(task.id, task.instance_id, task.product_id, product or task.name, producer or "",
                           group, task.created_at, task.due_at)
            for task, product, group, producer in _waiting_rows(session, council)]


def _snapshot(members: list[CouncilMember]) -> list[dict]:
    return [{"user_id": m.user_id, "name": m.user.full_name, "department": m.department, "role": m.council_role}
            for m in members]


def session_quorum(council: Council, members: list[dict], present) -> Quorum:
    """The council's quorum rule on a roster (snapshot dicts) and who is present."""
    return quorum(members, present, council.quorum_fraction, council.chair_required)


def open_session(engine: BpmnEngine, actor: Actor, council_id: int, task_ids, present_user_ids,
                 held_on: date, place: str) -> int:
    """Open a session: record who is present, put the chosen waiting
    products on its agenda, and complete each one's attendance task with
    the contract's `council_attendance` data -- one transaction, so a
    refused quorum, or a product no longer waiting, writes nothing.
    Returns the session's id."""
    task_ids = list(dict.fromkeys(str(t) for t in task_ids))
    present = sorted({int(u) for u in present_user_ids})
    place = " ".join((place or "").split())

    def work(session: Session) -> int:
        council = session.get(Council, council_id)
        if council is None or not may_see(session, actor, council):
            raise UnknownCouncil(f"Không có hội đồng số {council_id}.")
        members = active_members(session, council.id)
        chair, secretary = _holder(members, "chair"), _holder(members, "secretary")
        areas = council_areas(session, council)
        if not access.may_open_session(actor, areas, chair and chair.user_id, secretary and secretary.user_id):
            raise NotAllowed("Chỉ thư ký, chủ tịch hội đồng hoặc quản lý chương trình được mở phiên họp.")
        if not council.active:
            raise CouncilRefused("Hội đồng đã ngừng hoạt động.")
        if not task_ids:
            raise CouncilRefused("Chọn ít nhất một sản phẩm đưa vào phiên họp.")
        if not place or len(place) > PLACE_MAX:
            raise CouncilRefused(f"Địa điểm họp phải có từ 1 đến {PLACE_MAX} ký tự.")
        if not isinstance(held_on, date):
            raise CouncilRefused("Ngày họp không hợp lệ.")
        if chair is None or secretary is None:
            raise CouncilRefused("Hội đồng cần có chủ tịch và thư ký trước khi họp.")
        roster = _snapshot(members)
        strangers = set(present) - {m["user_id"] for m in roster}
        if strangers:
            raise CouncilRefused("Người có mặt phải là thành viên hội đồng.")
        figures = session_quorum(council, roster, present)
        if not figures.met:
            raise QuorumNotMet(figures)
        waiting = {task.id: task for task, *_rest in _waiting_rows(session, council, task_ids)}
        gone = [t for t in task_ids if t not in waiting]
        if gone:
            raise CouncilRefused(f"{len(gone)} sản phẩm đã chọn không còn chờ phiên họp (đã được xử lý); "
                                 "tải lại trang và chọn lại.")
        now = engine.clock()
        meeting = CouncilSession(council_id=council.id, held_on=held_on, place=place, opened_by=actor.user_id,
                                 opened_at=now, present=present, roster=roster, status=SESSION_OPEN,
                                 round_id=open_round_of(session, [waiting[t].instance_id for t in task_ids]))
        session.add(meeting)
        session.flush()
        data = {"session_id": meeting.id, "council_id": council.id, "council_name": council.name,
                "held_on": held_on.isoformat(), "place": place, "members": roster, "present": present,
                "quorum_fraction": float(council.quorum_fraction), "chair_required": bool(council.chair_required),
                "spread_limit": float(council.spread_limit), "chair_id": chair.user_id,
                "secretary_id": secretary.user_id}
        # A program manager or administrator who opens the session holds no
        # council role: the attendance is then recorded as the secretary's
        # (the session row names who opened it).
        secretary_actor = None
        for task_id in task_ids:
            task = waiting[task_id]
            acting = actor
            if not access.may_act(actor, task):
                secretary_actor = secretary_actor or load_actor(session, secretary.user_id)
                acting = secretary_actor
            session.add(CouncilAgenda(session_id=meeting.id, instance_id=task.instance_id,
                                      product_id=task.product_id, task_id=task.id, element_id=task.element_id))
            session.flush()
            try:
                engine.complete_task(task_id, dict(data), acting, unit=session, from_session=True)
            except (UnknownTask, TaskNotReady) as err:  # taken by a concurrent session: all or nothing
                raise CouncilRefused("Một sản phẩm đã chọn vừa được xử lý ở nơi khác; không có gì được ghi. "
                                     "Tải lại trang và chọn lại.") from err
        return meeting.id

    return engine.run(work)


def readable_session(session: Session, actor: Actor, session_id: int) -> CouncilSession | None:
    """The session if the actor may see its council, else None."""
    meeting = session.get(CouncilSession, session_id)
    if meeting is None or readable_council(session, actor, meeting.council_id) is None:
        return None
    return meeting


def sessions_for(session: Session, actor: Actor, council_id: int | None = None,
                 limit: int = 50) -> list[CouncilSession]:
    """The sessions of the councils the actor sees (members, those who keep
    them, auditors), newest first; of one council when `council_id`."""
    query = (select(CouncilSession).options(selectinload(CouncilSession.council), selectinload(CouncilSession.agenda))
             .join(Council, Council.id == CouncilSession.council_id)
             .where(access.seen_councils(actor, supervision_of(session, actor))))
    if council_id is not None:
        query = query.where(CouncilSession.council_id == council_id)
    return list(session.scalars(query.order_by(CouncilSession.held_on.desc(), CouncilSession.id.desc())
                                .limit(limit)))


def sign_off_tasks(session: Session, session_id: int) -> list[InboxTask]:
    """The ready sign-off tasks of the session's agenda products."""
    instances = select(CouncilAgenda.instance_id).where(CouncilAgenda.session_id == session_id)
    return list(session.scalars(select(InboxTask).where(InboxTask.instance_id.in_(instances),
                                                        InboxTask.form_key == SIGN_OFF_FORM)
                                .order_by(InboxTask.created_at, InboxTask.id)))


def chair_of(meeting: CouncilSession) -> int | None:
    return next((m["user_id"] for m in meeting.roster if m.get("role") == "chair"), None)


def sign_off_session(engine: BpmnEngine, actor: Actor, session_id: int, notes: str = "") -> int:
    """The chair confirms the minutes: completes every ready sign-off task of
    the session's agenda with {"confirmed": true, "notes": notes}, in one
    transaction; the session is closed once no agenda product is still
    being scored. Returns how many products were signed off."""
    notes = (notes or "").strip()

    def work(session: Session) -> int:
        meeting = readable_session(session, actor, session_id)
        if meeting is None:
            raise UnknownCouncil(f"Không có phiên họp số {session_id}.")
        if actor.user_id is None or actor.user_id != chair_of(meeting):
            raise NotAllowed("Chỉ chủ tịch hội đồng của phiên họp được xác nhận biên bản.")
        if len(notes) > NOTES_MAX:
            raise CouncilRefused(f"Ghi chú tối đa {NOTES_MAX} ký tự.")
        tasks = sign_off_tasks(session, meeting.id)
        if not tasks:
            raise CouncilRefused("Chưa có sản phẩm nào của phiên họp chờ xác nhận biên bản.")
        for task in tasks:
            engine.complete_task(task.id, {"confirmed": True, "notes": notes}, actor, unit=session)
        instances = select(CouncilAgenda.instance_id).where(CouncilAgenda.session_id == meeting.id)
        pending = session.scalar(select(InboxTask.id).where(InboxTask.instance_id.in_(instances),
                                                            InboxTask.form_key.in_(SESSION_FORMS)).limit(1))
        if pending is None:
            meeting.status, meeting.closed_at = SESSION_CLOSED, engine.clock()
        return len(tasks)

    return engine.run(work)
