"""Evaluation rounds (đợt đánh giá) as the people who plan and follow them
see them: a province's program manager (or an administrator; for the
ministry's rounds, an administrator or the ministry) plans a year, changes
a round's dates, adds an extra round, closes a round -- each change one
transaction with its admin log line (subject 'round'). Everyone who may
read a province's rounds lists them with their counts, opens a round's
page (agenda, council sessions, decisions), and sees where a waiting
product stands ("Chờ Hội đồng cấp tỉnh xét — Đợt 2 năm 2027, xét trước
30/12/2027"): the portal, the inbox and `ocop status` use where_it_stands.

Access rules are engine/access.py's (may_plan_rounds, may_see_rounds).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import access
from engine.access import Actor
from engine.bpmn_engine import BpmnEngine
from engine.errors import NotAllowed, OcopError
from storage.council_models import CouncilAgenda, CouncilSession
from storage.models import AdminLogEntry, InboxTask, Jurisdiction, Producer, Product
from storage.recognition_models import (
    ROUND_CLOSED,
    ROUND_LEVELS,
    ROUND_OPEN,
    Decision,
    EvaluationRound,
    RoundEntry,
)
from storage.round_calendar import default_dates, ensure_year, round_label

NOTE_MAX = 2000
LEVEL_COUNCIL = {"province": ("Hội đồng cấp tỉnh", "the provincial council"),
                 "central": ("Hội đồng cấp Trung ương", "the central council")}
DECIDER = {"province_committee": ("Ủy ban nhân dân tỉnh", "the Provincial People's Committee"),
           "district_committee": ("Ủy ban nhân dân huyện", "the District People's Committee"),
           "ministry": ("Bộ Nông nghiệp và Môi trường", "the Ministry of Agriculture and Environment")}


class RoundRefused(OcopError):
    """A round change the rules refuse; the message is Vietnamese / English
    for the person who asked (nothing was written)."""


class UnknownRound(RoundRefused):
    """No such round, or one the actor may not see (pages answer 404)."""


# --- where a product stands ---------------------------------------------------------------

@dataclass(frozen=True)
class Standing:
    """What a waiting product waits for, in both languages."""

    vi: str
    en: str
    round_id: int | None = None

    def __str__(self) -> str:
        return self.vi


def _dmy(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def standings(session: Session, instance_ids: list[int]) -> dict[int, Standing]:
    """instance id -> where it stands, for instances on a round's agenda or
    waiting for a decision; absent when it waits for nothing of the kind."""
    if not instance_ids:
        return {}
    entries = {row.instance_id: row for row in session.execute(
        select(RoundEntry.instance_id, EvaluationRound.id, EvaluationRound.level, EvaluationRound.year,
               EvaluationRound.number, EvaluationRound.extra, EvaluationRound.decide_by)
        .join(EvaluationRound, EvaluationRound.id == RoundEntry.round_id)
        .where(RoundEntry.instance_id.in_(instance_ids), RoundEntry.left_at.is_(None)))}
    ready: dict[int, list[InboxTask]] = {}
    for task in session.scalars(select(InboxTask).where(InboxTask.instance_id.in_(instance_ids))
                                .order_by(InboxTask.created_at, InboxTask.id)):
        ready.setdefault(task.instance_id, []).append(task)
    found = {}
    for instance_id in instance_ids:
        standing = _standing(entries.get(instance_id), ready.get(instance_id, []))
        if standing is not None:
            found[instance_id] = standing
    return found


def where_it_stands(session: Session, instance_id: int) -> Standing | None:
    """Where one product's instance stands (see standings)."""
    return standings(session, [instance_id]).get(instance_id)


def _standing(entry, tasks: list[InboxTask]) -> Standing | None:
    forms = {task.form_key: task for task in tasks}
    if "central_fallback" in forms:
        return Standing("Chờ Ủy ban nhân dân tỉnh quyết định: Bộ đánh giá dưới 90 điểm",
                        "Waiting for the Provincial People's Committee: below 90 at the ministry",
                        entry.id if entry else None)
    suffix_vi = suffix_en = ""
    if entry is not None:
        label = round_label(entry.number, entry.year, entry.extra)
        suffix_vi = f" — {label}, xét trước {_dmy(entry.decide_by)}"
        suffix_en = (f" — round {entry.number} of {entry.year}{' (extra)' if entry.extra else ''}, "
                     f"decided by {_dmy(entry.decide_by)}")
    decision = forms.get("recognition_decision")
    if decision is not None:
        vi, en = DECIDER.get(decision.role, DECIDER["province_committee"])
        return Standing(f"Chờ quyết định công nhận của {vi}{suffix_vi}",
                        f"Waiting for the recognition decision of {en}{suffix_en}", entry.id if entry else None)
    if entry is None:
        return None
    council_vi, council_en = LEVEL_COUNCIL[entry.level]
    note_vi = note_en = ""
    if entry.level == "central":  # 90+ at the province: approved there, proposed for five stars
        note_vi = " (tỉnh đã công nhận kết quả, đề nghị công nhận 5 sao)"
        note_en = " (approved by the province, proposed for 5 stars)"
    if "council_attendance" in forms:
        return Standing(f"Chờ {council_vi} xét{note_vi}{suffix_vi}", f"Waiting for {council_en}{note_en}{suffix_en}",
                        entry.id)
    return Standing(f"{council_vi} đang xét{note_vi}{suffix_vi}", f"Before {council_en}{note_en}{suffix_en}",
                    entry.id)


# --- reading rounds -----------------------------------------------------------------------

@dataclass
class RoundSummary:
    round: EvaluationRound
    label: str
    waiting: int = 0
    in_session: int = 0
    decided: int = 0


def _in_session(session: Session, round_ids: list[int]) -> dict[int, set[int]]:
    """round id -> instances on the agenda of one of its council sessions."""
    rows = session.execute(select(CouncilSession.round_id, CouncilAgenda.instance_id)
                           .join(CouncilAgenda, CouncilAgenda.session_id == CouncilSession.id)
                           .where(CouncilSession.round_id.in_(round_ids))).all()
    found: dict[int, set[int]] = {}
    for round_id, instance_id in rows:
        found.setdefault(round_id, set()).add(instance_id)
    return found


def rounds_of(session: Session, actor: Actor, level: str, province_id: int | None, year: int) -> list[RoundSummary]:
    """The rounds of an area's year in date order, with how many products
    wait on their agenda, are before a council session of theirs, or were
    decided. Raises NotAllowed for an actor who may not see them."""
    if level not in ROUND_LEVELS:
        raise UnknownRound("Không có cấp đánh giá này. / No such level.")
    if not access.may_see_rounds(actor, province_id):
        raise NotAllowed("Không được xem các đợt đánh giá này. / You may not see these rounds.")
    area = (EvaluationRound.province_id.is_(None) if province_id is None
            else EvaluationRound.province_id == province_id)
    rounds = list(session.scalars(select(EvaluationRound).where(
        EvaluationRound.level == level, area, EvaluationRound.year == year)
        .order_by(EvaluationRound.proposals_by, EvaluationRound.id)))
    ids = [r.id for r in rounds]
    summaries = {r.id: RoundSummary(r, round_label(r.number, r.year, r.extra)) for r in rounds}
    if not ids:
        return []
    in_session = _in_session(session, ids)
    for round_id, instance_id, left_at in session.execute(
            select(RoundEntry.round_id, RoundEntry.instance_id, RoundEntry.left_at)
            .where(RoundEntry.round_id.in_(ids))):
        summary = summaries[round_id]
        if left_at is not None:
            summary.decided += 1
        elif instance_id in in_session.get(round_id, set()):
            summary.in_session += 1
        else:
            summary.waiting += 1
    return list(summaries.values())


@dataclass
class AgendaRow:
    instance_id: int
    product_id: int | None
    product_name: str
    producer_name: str
    standing: str
    left: bool
    outcome: str | None


@dataclass
class RoundPage:
    round: EvaluationRound
    label: str
    area_name: str
    agenda: list[AgendaRow] = field(default_factory=list)
    sessions: list[CouncilSession] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    may_plan: bool = False


def readable_round(session: Session, actor: Actor, round_id: int) -> EvaluationRound | None:
    found = session.get(EvaluationRound, round_id)
    return found if found is not None and access.may_see_rounds(actor, found.province_id) else None


def round_page(session: Session, actor: Actor, round_id: int) -> RoundPage:
    """A round's page: its agenda (each product and where it stands), its
    council sessions, its decisions. UnknownRound when it may not be seen."""
    found = readable_round(session, actor, round_id)
    if found is None:
        raise UnknownRound(f"Không có đợt đánh giá số {round_id}. / No round {round_id}.")
    area_name = session.get(Jurisdiction, found.province_id).name if found.province_id else "Việt Nam"
    rows = session.execute(
        select(RoundEntry.instance_id, RoundEntry.product_id, RoundEntry.left_at, RoundEntry.outcome,
               Product.name, Producer.name)
        .outerjoin(Product, Product.id == RoundEntry.product_id)
        .outerjoin(Producer, Producer.id == Product.producer_id)
        .where(RoundEntry.round_id == found.id).order_by(RoundEntry.joined_at, RoundEntry.id)).all()
    where = standings(session, [r[0] for r in rows if r[2] is None])
    agenda = [AgendaRow(instance_id, product_id, product or "", producer or "",
                        str(where.get(instance_id, "")), left_at is not None, outcome)
              for instance_id, product_id, left_at, outcome, product, producer in rows]
    sessions = list(session.scalars(select(CouncilSession).where(CouncilSession.round_id == found.id)
                                    .order_by(CouncilSession.held_on, CouncilSession.id)))
    decisions = list(session.scalars(select(Decision).where(Decision.round_id == found.id)
                                     .order_by(Decision.signed_on, Decision.id)))
    return RoundPage(found, round_label(found.number, found.year, found.extra), area_name, agenda, sessions,
                     decisions, access.may_plan_rounds(actor, found.level, found.province_id))


def open_round_of(session: Session, instance_ids: list[int]) -> int | None:
    """The round the first of these instances is on (for a council session
    opened on their attendance tasks)."""
    if not instance_ids:
        return None
    return session.scalar(select(RoundEntry.round_id).where(RoundEntry.instance_id.in_(list(instance_ids)),
                                                            RoundEntry.left_at.is_(None))
                          .order_by(RoundEntry.id).limit(1))


# --- planning rounds ----------------------------------------------------------------------

def _log(session: Session, engine: BpmnEngine, actor: Actor, item: EvaluationRound, action: str,
         message: str) -> None:
    session.add(AdminLogEntry(at=engine.clock(), actor_id=actor.user_id, actor_name=actor.name, action=action,
                              subject="round", subject_id=item.id, province_id=item.province_id,
                              message=f"{round_label(item.number, item.year, item.extra)} "
                                      f"({'Trung ương' if item.level == 'central' else 'tỉnh'}): {message}"))


def _check_planner(actor: Actor, level: str, province_id: int | None) -> None:
    if level not in ROUND_LEVELS:
        raise RoundRefused("Không có cấp đánh giá này. / No such level.")
    if (level == "central") != (province_id is None):
        raise RoundRefused("Đợt của Bộ không thuộc tỉnh nào; đợt của tỉnh phải có tỉnh. / "
                           "The ministry's rounds belong to no province; a province's round needs one.")
    if not access.may_plan_rounds(actor, level, province_id):
        raise NotAllowed("Chỉ quản lý chương trình của tỉnh (đợt của Bộ: Bộ) hoặc quản trị hệ thống được lập "
                         "đợt đánh giá. / Only the province's program manager (the ministry's rounds: the "
                         "ministry) or an administrator plans rounds.")


def _check_dates(proposals_by, decide_by) -> None:
    if not isinstance(proposals_by, date) or not isinstance(decide_by, date):
        raise RoundRefused("Ngày không hợp lệ. / Invalid date.")
    if decide_by < proposals_by:
        raise RoundRefused("Hạn xét phải sau hạn đề nghị. / The decision date must follow the proposals date.")


def _kept_round(session: Session, actor: Actor, round_id: int) -> EvaluationRound:
    found = session.get(EvaluationRound, round_id)
    if found is None or not access.may_see_rounds(actor, found.province_id):
        raise UnknownRound(f"Không có đợt đánh giá số {round_id}. / No round {round_id}.")
    _check_planner(actor, found.level, found.province_id)
    return found


def plan_year(engine: BpmnEngine, actor: Actor, level: str, province_id: int | None, year: int) -> int:
    """Create the year's default rounds (rounds.json) for the area; refused
    when the year already has rounds. Returns how many were created."""
    with engine.db.transaction() as session:
        _check_planner(actor, level, province_id)
        if not isinstance(year, int) or not 2000 <= year <= 2100:
            raise RoundRefused("Năm không hợp lệ. / Invalid year.")
        created = ensure_year(session, level, province_id, year, created_by=actor.user_id)
        if not created:
            raise RoundRefused(f"Năm {year} đã có đợt đánh giá. / {year} already has its rounds.")
        area = (EvaluationRound.province_id.is_(None) if province_id is None
                else EvaluationRound.province_id == province_id)
        for item in session.scalars(select(EvaluationRound).where(EvaluationRound.level == level, area,
                                                                  EvaluationRound.year == year)):
            _log(session, engine, actor, item, "round_plan",
                 f"lập theo lịch mặc định: đề nghị trước {_dmy(item.proposals_by)}, xét trước {_dmy(item.decide_by)}")
        return created


def change_dates(engine: BpmnEngine, actor: Actor, round_id: int, proposals_by: date, decide_by: date,
                 note: str = "") -> None:
    """Move a round's dates; refused for a closed round or dates out of order."""
    note = " ".join((note or "").split())[:NOTE_MAX]
    with engine.db.transaction() as session:
        item = _kept_round(session, actor, round_id)
        _check_dates(proposals_by, decide_by)
        if item.status == ROUND_CLOSED:
            raise RoundRefused("Đợt đánh giá đã kết thúc, không đổi được ngày. / The round is closed.")
        before = f"{_dmy(item.proposals_by)} -> {_dmy(item.decide_by)}"
        item.proposals_by, item.decide_by = proposals_by, decide_by
        if note:
            item.note = note
        _log(session, engine, actor, item, "round_dates",
             f"đổi ngày {before} thành {_dmy(proposals_by)} -> {_dmy(decide_by)}" + (f" ({note})" if note else ""))


def add_extra_round(engine: BpmnEngine, actor: Actor, level: str, province_id: int | None, year: int,
                    proposals_by: date, decide_by: date, note: str = "") -> int:
    """An extra round of the year (allowed by the council's rules); returns its id."""
    note = " ".join((note or "").split())[:NOTE_MAX]
    with engine.db.transaction() as session:
        _check_planner(actor, level, province_id)
        _check_dates(proposals_by, decide_by)
        if not isinstance(year, int) or not 2000 <= year <= 2100:
            raise RoundRefused("Năm không hợp lệ. / Invalid year.")
        ensure_year(session, level, province_id, year, created_by=actor.user_id)  # the usual two first
        area = (EvaluationRound.province_id.is_(None) if province_id is None
                else EvaluationRound.province_id == province_id)
        last = session.scalar(select(func.max(EvaluationRound.number)).where(
            EvaluationRound.level == level, area, EvaluationRound.year == year)) or 0
        item = EvaluationRound(level=level, province_id=province_id, year=year, number=last + 1,
                               proposals_by=proposals_by, decide_by=decide_by, extra=True, status=ROUND_OPEN,
                               note=note, created_by=actor.user_id)
        session.add(item)
        session.flush()
        _log(session, engine, actor, item, "round_extra",
             f"thêm đợt bổ sung: đề nghị trước {_dmy(proposals_by)}, xét trước {_dmy(decide_by)}")
        return item.id


def close_round(engine: BpmnEngine, actor: Actor, round_id: int) -> None:
    """Close a round: no product joins it any more."""
    with engine.db.transaction() as session:
        item = _kept_round(session, actor, round_id)
        if item.status == ROUND_CLOSED:
            raise RoundRefused("Đợt đánh giá đã kết thúc. / The round is already closed.")
        item.status = ROUND_CLOSED
        _log(session, engine, actor, item, "round_close", "kết thúc đợt")


def default_calendar_of(level: str, year: int) -> list[tuple[date, date]]:
    """The default dates a year's rounds would get (for the planning form)."""
    return default_dates(level, year)


@dataclass
class RoundAgenda:
    """A round with products still on its agenda (for `ocop status`)."""

    round_id: int
    area_name: str
    label: str
    decide_by: date
    before_council: int
    before_decision: int


def waiting_in_rounds(session: Session) -> list[RoundAgenda]:
    """Every round with products on its agenda, by decision date: how many
    wait for (or sit before) the council, and how many for the decision."""
    rows = session.execute(
        select(EvaluationRound, Jurisdiction.name, RoundEntry.instance_id)
        .join(RoundEntry, RoundEntry.round_id == EvaluationRound.id)
        .outerjoin(Jurisdiction, Jurisdiction.id == EvaluationRound.province_id)
        .where(RoundEntry.left_at.is_(None))
        .order_by(EvaluationRound.decide_by, EvaluationRound.id)).all()
    deciding = set(session.scalars(select(InboxTask.instance_id).where(
        InboxTask.form_key.in_(("recognition_decision", "central_fallback")),
        InboxTask.instance_id.in_([r[2] for r in rows])))) if rows else set()
    found: dict[int, RoundAgenda] = {}
    for item, area_name, instance_id in rows:
        line = found.setdefault(item.id, RoundAgenda(item.id, area_name or "Bộ Nông nghiệp và Môi trường",
                                                     round_label(item.number, item.year, item.extra),
                                                     item.decide_by, 0, 0))
        if instance_id in deciding:
            line.before_decision += 1
        else:
            line.before_council += 1
    return list(found.values())


@dataclass(frozen=True)
class RoundArea:
    """An area whose rounds a user may see: a province, or the ministry (province_id None)."""

    level: str
    province_id: int | None
    name: str


def round_areas(session: Session, actor: Actor) -> list[RoundArea]:
    """The provinces (and the ministry) whose rounds the actor may see, by name."""
    provinces = session.execute(select(Jurisdiction.id, Jurisdiction.name)
                                .where(Jurisdiction.level == "province").order_by(Jurisdiction.name)).all()
    found = [RoundArea("province", pid, name) for pid, name in provinces if access.may_see_rounds(actor, pid)]
    if access.may_see_rounds(actor, None):
        found.append(RoundArea("central", None, "Bộ Nông nghiệp và Môi trường"))
    return found
