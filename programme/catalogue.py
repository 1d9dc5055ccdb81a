"""What the public pages read, for anyone (signed in or not): the
programme at a glance (aggregates only) and the catalogue of promoted
(3-star-and-up) products, and whether the database answers at all
(/healthz, for load balancers and operators)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from engine.diagram import PRODUCT_PROCESS
from storage.models import InboxTask, Jurisdiction, ProcessInstance, PromotionListing

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


def promoted_products(session: Session, stars: int | None = None, province_id: int | None = None,
                      group_code: str | None = None) -> list[tuple[PromotionListing, str]]:
    """Promotion listings with their province's name, most stars first,
    filtered by stars (3, 4 or 5), province and criteria set when given."""
    query = (select(PromotionListing, Jurisdiction.name)
             .join(Jurisdiction, Jurisdiction.id == PromotionListing.province_id)
             .order_by(PromotionListing.stars.desc(), PromotionListing.product_name))
    if stars in PROMOTED_STARS:
        query = query.where(PromotionListing.stars == stars)
    if province_id:
        query = query.where(PromotionListing.province_id == province_id)
    if group_code:
        query = query.where(PromotionListing.group_code == group_code)
    return [tuple(row) for row in session.execute(query.limit(CATALOGUE_LIMIT)).all()]


def provinces(session: Session) -> list[tuple[int, str]]:
    """Every province as (id, name), by name: the catalogue's filter."""
    return [tuple(row) for row in session.execute(
        select(Jurisdiction.id, Jurisdiction.name)
        .where(Jurisdiction.level == "province").order_by(Jurisdiction.name)).all()]


def check_database(session: Session) -> None:
    """One round trip to the database; raises whatever its failure is."""
    session.execute(text("SELECT 1"))
