"""The minutes (biên bản) of a council session: what the printable page
shows -- the council, date and place, the roster with attendance, and per
product on the agenda each member's sheet (levels chosen, section
subtotals, total, recusal and its reason), the averages, the result with
every reason, the spread and the chair's sign-off.

Everything scored is read from the agenda instances' audit events, never
from a table of its own: `task_completed` events of form `council_sheet`
carry the sheets, `service_called` events of handler `rank_council` the
result, `council_spread` and `council_sign_off` completions the discussion
and the confirmation. So `ocop audit verify` covers what the minutes show.
A product's events count from its attendance completion by this session up
to the next session's, if it went on to another council.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.council_rules import Quorum, quorum
from storage import criteria as criteria_data
from storage.council_models import Council, CouncilSession
from storage.db import as_utc
from storage.models import AuditEvent, Jurisdiction, Producer, Product, User

ATTENDANCE_FORM, SHEET_FORM, SPREAD_FORM, SIGN_OFF_FORM = (
    "council_attendance", "council_sheet", "council_spread", "council_sign_off")
RANK_HANDLER = "rank_council"
SECTIONS = ("A", "B", "C")


@lru_cache(maxsize=32)
def _items(code: str) -> tuple[dict, ...]:
    """The set's scorable criteria in sheet order, each with its levels."""
    return tuple(criteria_data.scorable_items(code))


@lru_cache(maxsize=32)
def _elimination_texts(code: str) -> dict[str, str]:
    return {e["key"]: e["text_vi"] for e in criteria_data.eliminations(code)}


@dataclass(frozen=True)
class SheetLine:
    """One criterion of a member's sheet: the level chosen and its points."""

    criterion_id: str
    criterion: str
    level_key: str | None
    level: str
    points: float | None
    # The sheet prints no points for this level (S04/S07/S10/S11 A.1.2, see
    # processes/criteria/README.md): `points` is the data's inferred value, shown as such.
    inferred: bool = False


@dataclass
class MemberSheet:
    """A present member's sheet for one product (their last, after re-scoring)."""

    user_id: int
    name: str
    department: str
    role: str
    submitted_at: datetime | None = None
    recused: bool = False
    conflict_reason: str = ""
    lines: list[SheetLine] = field(default_factory=list)
    sections: dict[str, float] = field(default_factory=dict)
    total: float | None = None
    eliminations: list[str] = field(default_factory=list)
    comments: str = ""
    rounds: int = 0           # sheets submitted for this product (more than one: re-scored)

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None


@dataclass(frozen=True)
class Note:
    """A spread discussion or the chair's sign-off: who, when, what."""

    name: str
    at: datetime
    notes: str


@dataclass
class AgendaMinutes:
    instance_id: int
    product_id: int | None
    product: str
    producer: str
    group_code: str | None
    sheets: list[MemberSheet]
    rank: dict[str, Any] | None
    criterion_averages: list[tuple[str, str, float]]
    spread_notes: list[Note]
    sign_off: Note | None

    @property
    def reasons(self) -> list[dict]:
        return (self.rank or {}).get("reasons") or []


@dataclass
class Minutes:
    session: CouncilSession
    council: Council
    area_name: str
    opened_by: str
    roster: list[dict]          # the snapshot, each with "present": bool
    quorum: Quorum
    items: list[AgendaMinutes]

    @property
    def chair_id(self) -> int | None:
        return next((m["user_id"] for m in self.roster if m["role"] == "chair"), None)

    @property
    def signed_off(self) -> bool:
        return bool(self.items) and all(item.sign_off is not None for item in self.items)

    @property
    def recusals(self) -> list[tuple[str, MemberSheet]]:
        return [(item.product, sheet) for item in self.items for sheet in item.sheets if sheet.recused]


def session_minutes(session: Session, session_id: int) -> Minutes | None:
    """Everything the session's minutes show (None: no such session). The
    caller has checked the reader may see it (programme.councils.readable_session)."""
    meeting = session.get(CouncilSession, session_id)
    if meeting is None:
        return None
    council = meeting.council
    present = set(meeting.present or [])
    roster = [dict(member, present=member["user_id"] in present) for member in meeting.roster]
    figures = quorum(meeting.roster, meeting.present, council.quorum_fraction, council.chair_required)
    opener = session.get(User, meeting.opened_by) if meeting.opened_by else None
    area = session.get(Jurisdiction, council.area_id)
    instance_ids = [entry.instance_id for entry in meeting.agenda]
    events: dict[int, list[AuditEvent]] = {i: [] for i in instance_ids}
    if instance_ids:
        for event in session.scalars(select(AuditEvent).where(
                AuditEvent.instance_id.in_(instance_ids),
                AuditEvent.kind.in_(("task_completed", "service_called")))
                .order_by(AuditEvent.instance_id, AuditEvent.seq)):
            events[event.instance_id].append(event)
    actor_ids = {e.actor_id for evs in events.values() for e in evs if e.actor_id}
    names = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(actor_ids))).all()) \
        if actor_ids else {}
    products = {p.id: (p, producer) for p, producer in session.execute(
        select(Product, Producer.name).join(Producer, Producer.id == Product.producer_id)
        .where(Product.id.in_([e.product_id for e in meeting.agenda if e.product_id])))}
    items = []
    for entry in meeting.agenda:
        product, producer = products.get(entry.product_id, (None, ""))
        window = _window(events[entry.instance_id], entry.task_id)
        items.append(_agenda_minutes(entry, product, producer, window, meeting, names))
    return Minutes(meeting, council, area.name if area else "", opener.full_name if opener else "",
                   roster, figures, items)


def _window(events: list[AuditEvent], attendance_task_id: str) -> list[AuditEvent]:
    """The product's events from this session's attendance to the next one's."""
    start = next((n for n, e in enumerate(events) if e.kind == "task_completed"
                  and (e.data or {}).get("task_id") == attendance_task_id), None)
    if start is None:
        return []
    window = []
    for event in events[start + 1:]:
        if event.kind == "task_completed" and (event.data or {}).get("form_key") == ATTENDANCE_FORM:
            break
        window.append(event)
    return window


def _agenda_minutes(entry, product: Product | None, producer: str, window: list[AuditEvent],
                    meeting: CouncilSession, names: dict[int, str]) -> AgendaMinutes:
    code = product.group_code if product else None
    by_member = {m["user_id"]: m for m in meeting.roster}
    sheets = {uid: MemberSheet(uid, m["name"], m.get("department", ""), m["role"])
              for uid, m in by_member.items() if uid in set(meeting.present or [])}
    rank, spread_notes, sign_off = None, [], None
    for event in window:
        data = event.data or {}
        if event.kind == "service_called":
            if data.get("handler") == RANK_HANDLER and isinstance(data.get("result"), dict):
                rank = data["result"]
            continue
        form_key, form = data.get("form_key"), data.get("form") or {}
        name = names.get(event.actor_id, "")
        if form_key == SHEET_FORM and event.actor_id is not None:
            sheet = sheets.get(event.actor_id)
            if sheet is None:  # not on the snapshot's present list: shown, not hidden
                member = by_member.get(event.actor_id, {})
                sheet = sheets[event.actor_id] = MemberSheet(event.actor_id, name, member.get("department", ""),
                                                             member.get("role", ""))
            _fill_sheet(sheet, form, code, as_utc(event.at))
        elif form_key == SPREAD_FORM:
            spread_notes.append(Note(name, as_utc(event.at), str(form.get("notes", ""))))
        elif form_key == SIGN_OFF_FORM:
            sign_off = Note(name, as_utc(event.at), str(form.get("notes", "")))
    if rank:  # the handler's figures are what decided: show them
        for uid, sheet in sheets.items():
            total = (rank.get("totals") or {}).get(str(uid))
            sections = (rank.get("sections") or {}).get(str(uid))
            if total is not None and not sheet.recused:
                sheet.total = float(total)
            if sections:
                sheet.sections = {key: float(value) for key, value in sections.items()}
    texts = {item["id"]: item["text_vi"] for item in _items(code)} if code else {}
    averages = [(cid, texts.get(cid, cid), float(value))
                for cid, value in ((rank or {}).get("criterion_averages") or {}).items()]
    return AgendaMinutes(entry.instance_id, entry.product_id, product.name if product else f"#{entry.instance_id}",
                         producer, code, sorted(sheets.values(), key=lambda s: _role_order(s.role)),
                         rank, averages, spread_notes, sign_off)


def _role_order(role: str) -> int:
    order = ("chair", "vice_chair", "member", "secretary")
    return order.index(role) if role in order else len(order)


def _fill_sheet(sheet: MemberSheet, form: dict, code: str | None, at: datetime) -> None:
    sheet.rounds += 1
    sheet.submitted_at = at
    sheet.recused = bool(form.get("recused"))
    sheet.conflict_reason = str(form.get("conflict_reason") or "")
    sheet.comments = str(form.get("comments") or "")
    chosen = form.get("levels") or {}
    eliminations = _elimination_texts(code) if code else {}
    sheet.eliminations = [eliminations.get(key, key) for key in form.get("eliminations") or []]
    sheet.lines, sheet.sections, sheet.total = [], {}, None
    if sheet.recused:
        return
    sections = dict.fromkeys(SECTIONS, 0.0)
    for item in _items(code) if code else ():
        key = chosen.get(item["id"])
        level = next((lv for lv in item["levels"] if lv["key"] == key), None)
        points = None if level is None else float(level["points"])
        inferred = bool(level and level.get("inferred"))  # a blank cell of the source counts 0
        if points is not None:
            sections[item["section"]] = sections.get(item["section"], 0.0) + points
        sheet.lines.append(SheetLine(item["id"], item["text_vi"], key, level["text_vi"] if level else "", points,
                                     inferred))
    sheet.sections = sections
    sheet.total = sum(sections.values())
