"""Finding instances for the auditor, and who may see which.

Scope: who reads which instances is engine.access's `Oversight` (auditors
and administrators every instance, a program manager those of their
provinces, nobody else any). Every query here is limited to it in SQL, so a
page, a count or an export never holds an instance outside it.

Text filters (product, producer, commune, actor) match a substring without
regard to case or Vietnamese diacritics ("ho tieu" finds "Hồ tiêu"). SQL's
lower() folds only ASCII on SQLite and under PostgreSQL's C locale, so both
sides are folded explicitly: in Python for the search term, in SQL with a
registered function (SQLite) or translate() over the accented letters
(PostgreSQL), both built from the one `fold` below.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Select, String, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from engine.access import Oversight
from storage.models import AuditEvent, Jurisdiction, ProcessDefinition, ProcessInstance, Producer, Product, User

PAGE_SIZE = 25
# Dates on the search form are Vietnamese calendar days.
LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
OUTCOMES = ("running", "completed", "cancelled")


# --- folding text ------------------------------------------------------------------------

def fold(text: str | None) -> str | None:
    """Lower case without diacritics: "Đặc sản Hồ Tiêu" -> "dac san ho tieu"."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _translation_table() -> tuple[str, str]:
    """Every precomposed Latin letter whose fold is one ASCII letter."""
    source, target = [], []
    for block in (range(0x00C0, 0x0250), range(0x1E00, 0x1F00)):
        for code in block:
            char = chr(code)
            folded = fold(char)
            if len(folded) == 1 and folded != char and folded.isascii() and folded.isalpha():
                source.append(char)
                target.append(folded)
    return "".join(source), "".join(target)


_FROM, _TO = _translation_table()


def _folded(session: Session, column):
    dialect = session.bind.dialect.name
    if dialect == "sqlite":
        # Registered on the connection this query runs on (cheap; idempotent).
        session.connection().connection.driver_connection.create_function(
            "ocop_fold", 1, fold, deterministic=True)
        return func.ocop_fold(column, type_=String)
    if dialect == "postgresql":
        return func.translate(func.lower(column), _FROM, _TO, type_=String)
    return func.lower(column)


# --- the filter --------------------------------------------------------------------------

@dataclass
class AuditFilter:
    product: str = ""        # substring of the product's name
    producer: str = ""       # substring of the producer's name
    commune: str = ""        # substring of the instance's area name (a product's commune)
    step: int | None = None  # current step
    outcome: str = ""        # running | completed | cancelled | end:<end event id> | stars:<n>
    started_from: date | None = None
    started_to: date | None = None
    actor: str = ""          # a username, or a substring of a full name, of someone with an event
    page: int = 1

    def args(self, **changes) -> dict:
        """As query-string arguments (empty ones left out)."""
        values = {"product": self.product, "producer": self.producer, "commune": self.commune,
                  "step": self.step, "outcome": self.outcome,
                  "from": self.started_from.isoformat() if self.started_from else None,
                  "to": self.started_to.isoformat() if self.started_to else None,
                  "actor": self.actor, "page": self.page if self.page > 1 else None}
        values.update(changes)
        return {key: value for key, value in values.items() if value not in (None, "")}


@dataclass
class InstanceSummary:
    id: int
    process_id: str
    status: str
    current_step: int | None
    end_event: str | None
    stars: int | None
    started_at: datetime
    finished_at: datetime | None
    events: int
    product_id: int | None
    product_name: str | None
    producer_name: str | None
    area_name: str
    definition: str
    version: int


@dataclass
class SearchPage:
    items: list[InstanceSummary] = field(default_factory=list)
    total: int = 0
    page: int = 1
    pages: int = 1


_Area = aliased(Jurisdiction)


def _base(columns) -> Select:
    return (select(*columns).select_from(ProcessInstance)
            .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
            .join(_Area, _Area.id == ProcessInstance.jurisdiction_id)
            .outerjoin(Product, Product.id == ProcessInstance.product_id)
            .outerjoin(Producer, Producer.id == Product.producer_id))


def _conditions(session: Session, scope: Oversight, f: AuditFilter) -> list:
    conditions = [scope.instances()]
    for column, term in ((Product.name, f.product), (Producer.name, f.producer), (_Area.name, f.commune)):
        if term.strip():
            conditions.append(_folded(session, column).contains(fold(term.strip()), autoescape=True))
    if f.step is not None:
        conditions.append(ProcessInstance.current_step == f.step)
    if f.outcome in OUTCOMES:
        conditions.append(ProcessInstance.status == f.outcome)
    elif f.outcome.startswith("end:"):
        conditions.append(ProcessInstance.end_event == f.outcome[4:])
    elif f.outcome.startswith("stars:") and f.outcome[6:].isdigit():
        conditions.append(ProcessInstance.stars == int(f.outcome[6:]))
    if f.started_from:
        conditions.append(ProcessInstance.started_at >= _local_midnight(f.started_from))
    if f.started_to:
        conditions.append(ProcessInstance.started_at < _local_midnight(f.started_to + timedelta(days=1)))
    if f.actor.strip():
        term = f.actor.strip()
        people = select(User.id).where(or_(User.username == term,
                                           _folded(session, User.full_name).contains(fold(term), autoescape=True)))
        conditions.append(exists().where(AuditEvent.instance_id == ProcessInstance.id,
                                         AuditEvent.actor_id.in_(people)))
    return conditions


def _local_midnight(day: date) -> datetime:
    # In UTC: SQLite compares the stored text, which is UTC without a zone.
    return datetime.combine(day, time(), tzinfo=LOCAL_ZONE).astimezone(timezone.utc)


def search(session: Session, scope: Oversight, f: AuditFilter, page_size: int = PAGE_SIZE) -> SearchPage:
    """One page of the instances in scope that match, newest start first."""
    where = and_(*_conditions(session, scope, f))
    total = session.scalar(_base([func.count(ProcessInstance.id)]).where(where)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(f.page, 1), pages)
    rows = session.execute(
        _base([ProcessInstance.id, ProcessInstance.process_id, ProcessInstance.status,
               ProcessInstance.current_step, ProcessInstance.end_event, ProcessInstance.stars,
               ProcessInstance.started_at, ProcessInstance.finished_at, ProcessInstance.audit_seq,
               Product.id, Product.name, Producer.name, _Area.name, ProcessDefinition.name,
               ProcessDefinition.version])
        .where(where).order_by(ProcessInstance.started_at.desc(), ProcessInstance.id.desc())
        .limit(page_size).offset((page - 1) * page_size)).all()
    return SearchPage([InstanceSummary(*row) for row in rows], total, page, pages)


def matching_ids(session: Session, scope: Oversight, f: AuditFilter) -> list[int]:
    """Every matching instance id in scope (no paging), oldest first: what
    a filtered export covers."""
    where = and_(*_conditions(session, scope, f))
    return list(session.scalars(_base([ProcessInstance.id]).where(where).order_by(ProcessInstance.id)))


def end_events(session: Session, scope: Oversight) -> list[str]:
    """The end events instances in scope finished at (for the outcome filter)."""
    return sorted(session.scalars(_base([ProcessInstance.end_event]).where(
        scope.instances(), ProcessInstance.end_event.is_not(None)).distinct()))


def instance_areas(session: Session, instance_id: int) -> dict | None:
    """The instance's area chain ({level: id}), which says whose scope it is
    in; None when there is no such instance."""
    return session.scalar(select(ProcessInstance.areas).where(ProcessInstance.id == instance_id))
