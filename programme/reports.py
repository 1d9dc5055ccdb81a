"""The province's and the nation's OCOP report (issue 16): the stock of
valid certificates by stars, product group and producer kind; new,
re-recognised, upgraded, revoked and expired certificates per round and
per year; certificates expiring in the next six months; and, for the
nation, one row per province. For program managers and the People's
Committee of their province, for auditors, administrators and the
ministry for every province (engine.access.report_scope_of).

Every figure is an aggregate statement (GROUP BY) over the certificate
table, counted "as at" the report's date `on`:
- valid on a date: issued on or before it, `valid_until` on or after it,
  and still valid, or replaced, revoked or expired only after it (so a
  past date counts what was valid then; today it is "status valid and
  valid_until >= today");
- issued (new, re-recognised, upgraded): by the year of `issued_on` and by
  the round of the certificate's decision;
- revoked: by the year of `status_changed_on`, and by the revocation
  decision's round when it has one;
- expired: status expired, or still marked valid with `valid_until` passed
  and no certificate replacing it (the expiry job has not run yet), by
  the year of `valid_until`.
The statements per report are a fixed number whatever the data's size;
the few hundred aggregate rows they return are summed here by key.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Integer, and_, cast, exists, extract, func, or_, select
from sqlalchemy.orm import Session, aliased

from engine.access import Actor, ReportScope, report_scope_of
from engine.errors import NotAllowed
from handlers.promotion import add_months
from storage.criteria import sets_by_code
from storage.models import PRODUCER_KINDS, Jurisdiction, Producer, Product
from storage.recognition_models import (
    CERT_EXPIRED,
    CERT_REVOKED,
    CERT_VALID,
    CERTIFICATE_KINDS,
    Certificate,
    Decision,
    EvaluationRound,
)

STARS = (3, 4, 5)
REVOKED, EXPIRED = "revoked", "expired"
# The columns of every movements table: how certificates came and went.
MOVEMENTS = (*CERTIFICATE_KINDS, REVOKED, EXPIRED)
EXPIRING_MONTHS = 6
# Certificates listed on screen as expiring; downloads list them all.
EXPIRING_ON_SCREEN = 300


# --- who reads what ------------------------------------------------------------

@dataclass(frozen=True)
class ReportFilters:
    on: date                 # the date of the stock; movements up to it
    year: int                # the year of the rounds and the by-province movements
    scope: ReportScope       # the provinces counted (narrowed by the province filter)

    @property
    def provinces(self) -> tuple[int, ...] | None:
        return None if self.scope.everything else tuple(sorted(self.scope.province_ids))


@dataclass(frozen=True)
class ReportAudience:
    """The provinces a user may report on."""

    scope: ReportScope

    @classmethod
    def of(cls, actor: Actor) -> "ReportAudience":
        return cls(report_scope_of(actor))

    @property
    def may_view(self) -> bool:
        return bool(self.scope)

    @property
    def national(self) -> bool:
        return self.scope.everything

    def filters(self, on: date, year: int, province: int | None = None) -> ReportFilters:
        """A province outside the user's scope is refused, never quietly replaced."""
        if not self.may_view:
            raise NotAllowed("the OCOP report is for program managers, the People's Committee, "
                             "the ministry, auditors and administrators")
        if province is not None:
            if not self.scope.covers(province):
                raise NotAllowed(f"province {province} is outside the user's scope")
            return ReportFilters(on, year, ReportScope(province_ids=frozenset({province})))
        return ReportFilters(on, year, self.scope)


# --- what the report shows ------------------------------------------------------

@dataclass
class Stock:
    total: int = 0
    by_stars: dict[int, int] = field(default_factory=lambda: dict.fromkeys(STARS, 0))
    by_set: dict[str, int] = field(default_factory=lambda: dict.fromkeys(sorted(sets_by_code()), 0))
    by_industry: dict[str, int] = field(default_factory=lambda: dict.fromkeys(industries(), 0))
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRODUCER_KINDS, 0))


def no_movements() -> dict[str, int]:
    return dict.fromkeys(MOVEMENTS, 0)


@dataclass
class RoundRow:
    round_id: int
    level: str                 # province | central
    province: str | None       # the province's name; None for the ministry's rounds
    year: int
    number: int
    counts: dict[str, int] = field(default_factory=no_movements)


@dataclass
class YearRow:
    year: int
    counts: dict[str, int] = field(default_factory=no_movements)


@dataclass
class ExpiringCertificate:
    number: str
    product: str
    producer: str
    commune: str
    stars: int
    valid_until: date


@dataclass
class Expiring:
    until: date
    total: int
    by_month: list[tuple[int, int, int]]          # (year, month, certificates)
    certificates: list[ExpiringCertificate]      # the first EXPIRING_ON_SCREEN, or all


@dataclass
class ProvinceRow:
    province_id: int
    code: str
    name: str
    stock: dict[int, int] = field(default_factory=lambda: dict.fromkeys(STARS, 0))
    movements: dict[str, int] = field(default_factory=no_movements)

    @property
    def total(self) -> int:
        return sum(self.stock.values())


@dataclass
class Report:
    filters: ReportFilters
    stock: Stock
    years: list[YearRow]          # newest first
    rounds: list[RoundRow]        # the rounds of filters.year
    rounds_unassigned: dict[str, int]  # the year's certificates whose decision names no round
    expiring: Expiring
    provinces: list[ProvinceRow]  # one per province in scope


def report(session: Session, filters: ReportFilters, limit: int | None = EXPIRING_ON_SCREEN) -> Report:
    """The whole report; `limit`: how many expiring certificates to list (None: all)."""
    stock, stock_by_province = valid_stock(session, filters)
    issued, revoked, expired = movements(session, filters)
    provinces = province_rows(session, filters, stock_by_province, issued, revoked, expired)
    rounds, unassigned = round_rows(session, filters, issued, revoked)
    return Report(filters, stock, year_rows(issued, revoked, expired), rounds, unassigned,
                  expiring(session, filters, limit), provinces)


# --- the statements -----------------------------------------------------------

def _year(column):
    return cast(extract("year", column), Integer)


def valid_on(day: date):
    """SQL on Certificate: valid on `day` (see the module docstring)."""
    return and_(Certificate.issued_on <= day, Certificate.valid_until >= day,
                or_(Certificate.status == CERT_VALID, Certificate.status_changed_on > day))


def expired_by(day: date):
    """SQL on Certificate: expired before `day`, by its status or by a date
    the expiry job has not caught up with (and no certificate replaces it)."""
    successor = aliased(Certificate)
    replaced = exists().where(successor.previous_id == Certificate.id, successor.issued_on <= day)
    return and_(Certificate.valid_until < day,
                or_(Certificate.status == CERT_EXPIRED, and_(Certificate.status == CERT_VALID, ~replaced)))


def valid_stock(session: Session, filters: ReportFilters) -> tuple[Stock, dict[int, dict[int, int]]]:
    """The stock on filters.on, and the same by province and stars."""
    rows = session.execute(
        select(Certificate.province_id, Certificate.stars, Certificate.group_code, Certificate.producer_kind,
               func.count())
        .where(valid_on(filters.on), filters.scope.certificates())
        .group_by(Certificate.province_id, Certificate.stars, Certificate.group_code,
                  Certificate.producer_kind)).all()
    stock = Stock()
    by_province: dict[int, dict[int, int]] = defaultdict(lambda: dict.fromkeys(STARS, 0))
    industry_of = set_industries()
    for province_id, stars, group_code, kind, count in rows:
        stock.total += count
        stock.by_stars[stars] = stock.by_stars.get(stars, 0) + count
        stock.by_set[group_code] = stock.by_set.get(group_code, 0) + count
        industry = industry_of.get(group_code, "")
        stock.by_industry[industry] = stock.by_industry.get(industry, 0) + count
        stock.by_kind[kind] = stock.by_kind.get(kind, 0) + count
        by_province[province_id][stars] = by_province[province_id].get(stars, 0) + count
    return stock, by_province


def movements(session: Session, filters: ReportFilters):
    """Aggregate rows of the certificates issued, revoked and expired up to
    filters.on: issued (province, year, kind, round id, count), revoked
    (province, year, round id, count), expired (province, year, count)."""
    revocation = aliased(Decision)
    issued = session.execute(
        select(Certificate.province_id, _year(Certificate.issued_on), Certificate.kind, Decision.round_id,
               func.count())
        .join(Decision, Decision.id == Certificate.decision_id)
        .where(Certificate.issued_on <= filters.on, filters.scope.certificates())
        .group_by(Certificate.province_id, _year(Certificate.issued_on), Certificate.kind,
                  Decision.round_id)).all()
    revoked = session.execute(
        select(Certificate.province_id, _year(Certificate.status_changed_on), revocation.round_id, func.count())
        .outerjoin(revocation, revocation.id == Certificate.revocation_decision_id)
        .where(Certificate.status == CERT_REVOKED, Certificate.status_changed_on <= filters.on,
               filters.scope.certificates())
        .group_by(Certificate.province_id, _year(Certificate.status_changed_on), revocation.round_id)).all()
    expired = session.execute(
        select(Certificate.province_id, _year(Certificate.valid_until), func.count())
        .where(expired_by(filters.on), filters.scope.certificates())
        .group_by(Certificate.province_id, _year(Certificate.valid_until))).all()
    return issued, revoked, expired


def year_rows(issued, revoked, expired) -> list[YearRow]:
    years: dict[int, YearRow] = {}
    for _province, year, kind, _round, count in issued:
        years.setdefault(year, YearRow(year)).counts[kind] += count
    for _province, year, _round, count in revoked:
        years.setdefault(year, YearRow(year)).counts[REVOKED] += count
    for _province, year, count in expired:
        years.setdefault(year, YearRow(year)).counts[EXPIRED] += count
    return [years[year] for year in sorted(years, reverse=True)]


def round_rows(session: Session, filters: ReportFilters, issued, revoked) -> tuple[list[RoundRow], dict[str, int]]:
    """The rounds of filters.year with what their decisions issued and
    revoked, and the year's certificates issued or revoked by a decision
    that names no round. The rounds' names and provinces in one statement."""
    counts: dict[int, dict[str, int]] = defaultdict(no_movements)
    unassigned = no_movements()
    for _province, year, kind, round_id, count in issued:
        if round_id is not None:
            counts[round_id][kind] += count
        elif year == filters.year:
            unassigned[kind] += count
    for _province, year, round_id, count in revoked:
        if round_id is not None:
            counts[round_id][REVOKED] += count
        elif year == filters.year:
            unassigned[REVOKED] += count
    rows = session.execute(
        select(EvaluationRound.id, EvaluationRound.level, Jurisdiction.name, EvaluationRound.year,
               EvaluationRound.number)
        .outerjoin(Jurisdiction, Jurisdiction.id == EvaluationRound.province_id)
        .where(EvaluationRound.id.in_(sorted(counts)), EvaluationRound.year == filters.year)).all()
    result = [RoundRow(round_id, level, name, year, number, counts[round_id])
              for round_id, level, name, year, number in rows]
    result.sort(key=lambda row: (row.level != "central", row.province or "", row.number))
    return result, unassigned


def province_rows(session: Session, filters: ReportFilters, stock_by_province, issued, revoked,
                  expired) -> list[ProvinceRow]:
    """One row per province in scope, with its stock and the movements of filters.year."""
    query = select(Jurisdiction.id, Jurisdiction.code, Jurisdiction.name).where(Jurisdiction.level == "province")
    if filters.provinces is not None:
        query = query.where(Jurisdiction.id.in_(filters.provinces))
    rows = {row.id: ProvinceRow(row.id, row.code, row.name, dict(stock_by_province.get(row.id) or
                                                                 dict.fromkeys(STARS, 0)))
            for row in session.execute(query.order_by(Jurisdiction.name))}
    for province, year, kind, _round, count in issued:
        if year == filters.year and province in rows:
            rows[province].movements[kind] += count
    for province, year, _round, count in revoked:
        if year == filters.year and province in rows:
            rows[province].movements[REVOKED] += count
    for province, year, count in expired:
        if year == filters.year and province in rows:
            rows[province].movements[EXPIRED] += count
    return list(rows.values())


def expiring(session: Session, filters: ReportFilters, limit: int | None = EXPIRING_ON_SCREEN) -> Expiring:
    """Certificates valid on filters.on whose validity ends within six months of it."""
    until = add_months(filters.on, EXPIRING_MONTHS)
    condition = and_(valid_on(filters.on), Certificate.valid_until <= until, filters.scope.certificates())
    month = cast(extract("month", Certificate.valid_until), Integer)
    by_month = [tuple(row) for row in session.execute(
        select(_year(Certificate.valid_until), month, func.count()).where(condition)
        .group_by(_year(Certificate.valid_until), month)
        .order_by(_year(Certificate.valid_until), month))]
    commune = aliased(Jurisdiction)
    query = (select(Certificate.number, Product.name, Producer.name, commune.name, Certificate.stars,
                    Certificate.valid_until)
             .join(Product, Product.id == Certificate.product_id)
             .join(Producer, Producer.id == Certificate.producer_id)
             .join(commune, commune.id == Certificate.commune_id)
             .where(condition).order_by(Certificate.valid_until, Certificate.number))
    if limit is not None:
        query = query.limit(limit)
    listed = [ExpiringCertificate(*row) for row in session.execute(query)]
    return Expiring(until, sum(count for _year_, _month, count in by_month), by_month, listed)


def report_provinces(session: Session, audience: ReportAudience) -> list[tuple[int, str, str]]:
    """The provinces the audience may choose from: (id, code, name), by name."""
    query = select(Jurisdiction.id, Jurisdiction.code, Jurisdiction.name).where(Jurisdiction.level == "province")
    if not audience.national:
        query = query.where(Jurisdiction.id.in_(sorted(audience.scope.province_ids)))
    return [tuple(row) for row in session.execute(query.order_by(Jurisdiction.name))]


# --- product groups -------------------------------------------------------------

def industries() -> list[str]:
    """The six product groups (ngành: I food ... VI community tourism), in order."""
    return sorted(set(set_industries().values()), key=_roman)


def set_industries() -> dict[str, str]:
    """Criteria set code (S01..S26) -> its product group's code (I..VI)."""
    return {code: entry["product_group"]["industry"]["code"] for code, entry in sets_by_code().items()}


def industry_names() -> dict[str, tuple[str, str]]:
    """Product group code -> (Vietnamese name, English name)."""
    names = {}
    for entry in sets_by_code().values():
        industry = entry["product_group"]["industry"]
        names[industry["code"]] = (industry["name_vi"], industry.get("name_en", industry["name_vi"]))
    return names


_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8}


def _roman(code: str) -> int:
    return _ROMAN.get(code, 99)
