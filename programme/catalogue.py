"""What the public pages read, for anyone (signed in or not): the
programme at a glance (aggregates only), the catalogue of promoted
(3-star-and-up) products whose certificate holds today, and whether the
database answers at all (/healthz, for load balancers and operators)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from engine.diagram import PRODUCT_PROCESS
from storage.models import InboxTask, Jurisdiction, ProcessInstance, PromotionListing
from storage.recognition_models import CERT_VALID, Certificate

PROMOTED_STARS = (3, 4, 5)
# A catalogue page lists at most this many products.
CATALOGUE_LIMIT = 500


@dataclass
class Overview:
    """Counts only: nothing here names a product or a producer."""

    running: dict[int | None, int]          # current step -> products in a running cycle
    ended: dict[str | None, int]            # end event -> cycles completed there
    waiting: list[tuple[str, int]]          # role -> ready tasks waiting on it


def programme_overview(session: Session) -> Overview:
    running = dict(session.execute(
        select(ProcessInstance.current_step, func.count())
        .where(ProcessInstance.process_id == PRODUCT_PROCESS, ProcessInstance.status == "running")
        .group_by(ProcessInstance.current_step)).all())
    ended = dict(session.execute(
        select(ProcessInstance.end_event, func.count())
        .where(ProcessInstance.process_id == PRODUCT_PROCESS, ProcessInstance.status == "completed")
        .group_by(ProcessInstance.end_event)).all())
    waiting = [tuple(row) for row in session.execute(select(InboxTask.role, func.count())
                                                     .group_by(InboxTask.role)).all()]
    return Overview(running, ended, waiting)


@dataclass(frozen=True)
class CatalogueRow:
    """One product in the catalogue, with its certificate's number and
    validity (no number for a listing made before certificates)."""

    product_id: int
    product_name: str
    producer_name: str
    commune_name: str
    province_name: str
    group_code: str
    stars: int
    valid_until: date
    certificate_number: str | None


def promoted_products(session: Session, today: date, stars: int | None = None, province_id: int | None = None,
                      group_code: str | None = None) -> list[CatalogueRow]:
    """Products whose listing holds today, most stars first, filtered by
    stars (3, 4 or 5), province and criteria set when given. A listing holds
    while its certificate does (status valid and valid_until >= today:
    expired, revoked and replaced certificates drop out the day they stop);
    a listing made before certificates existed, while its own valid_until
    does and the product has no certificate yet. One row per product: its
    newest listing that holds."""
    shown_stars = func.coalesce(Certificate.stars, PromotionListing.stars)
    holds = or_(and_(PromotionListing.certificate_id.is_(None), PromotionListing.valid_until >= today,
                     ~legacy_superseded(PromotionListing.product_id)),
                and_(Certificate.status == CERT_VALID, Certificate.valid_until >= today))
    query = (select(PromotionListing, Jurisdiction.name, Certificate.number, Certificate.stars,
                    Certificate.valid_until)
             .join(Jurisdiction, Jurisdiction.id == PromotionListing.province_id)
             .outerjoin(Certificate, Certificate.id == PromotionListing.certificate_id)
             .where(holds)
             .order_by(shown_stars.desc(), PromotionListing.product_name, PromotionListing.certified_on.desc(),
                       PromotionListing.id.desc()))
    if stars in PROMOTED_STARS:
        query = query.where(shown_stars == stars)
    if province_id:
        query = query.where(PromotionListing.province_id == province_id)
    if group_code:
        query = query.where(PromotionListing.group_code == group_code)
    rows, seen = [], set()
    for listing, province_name, number, certificate_stars, certificate_until in session.execute(
            query.limit(CATALOGUE_LIMIT)).all():
        if listing.product_id in seen:  # an older listing of a product already shown
            continue
        seen.add(listing.product_id)
        rows.append(CatalogueRow(listing.product_id, listing.product_name, listing.producer_name,
                                 listing.commune_name, province_name, listing.group_code,
                                 certificate_stars or listing.stars, certificate_until or listing.valid_until,
                                 number))
    return rows


def legacy_superseded(product_id):
    """SQL: the product has a certificate (valid or not): from then on its
    certificates alone say whether it is listed, not a listing from before
    them (a revoked product must not come back through an old listing)."""
    # Its own alias: the catalogue's query joins Certificate already, and
    # would otherwise correlate this subquery with that join.
    any_certificate = aliased(Certificate)
    return exists().where(any_certificate.product_id == product_id)


def provinces(session: Session) -> list[tuple[int, str]]:
    """Every province as (id, name), by name: the catalogue's filter."""
    return [tuple(row) for row in session.execute(
        select(Jurisdiction.id, Jurisdiction.name)
        .where(Jurisdiction.level == "province").order_by(Jurisdiction.name)).all()]


def check_database(session: Session) -> None:
    """One round trip to the database; raises whatever its failure is."""
    session.execute(text("SELECT 1"))
