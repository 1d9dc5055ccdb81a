"""The notification centre, for every signed-in user: what the outbox
delivered to them, newest first, each read or unread for this user alone,
how many are unread, and marking them read.

Rows come only from the user's own receipts (background/outbox.py writes one
per addressee), so nobody sees another user's or another area's messages;
marking read touches only the user's own receipts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.access import Actor
from programme.products import may_view
from storage.db import Database
from storage.models import Notification, NotificationReceipt, ProcessInstance, Product

PAGE_SIZE = 30


@dataclass
class Entry:
    notification_id: int
    message: str
    reasons: str
    created_at: datetime
    read_at: datetime | None
    product_id: int | None  # set only when the user may open the product
    product_name: str | None


@dataclass
class ReceivedPage:
    """One page of the user's notifications, and how many there are in all."""

    entries: list[Entry]
    total: int


def unread_count(session: Session, user_id: int) -> int:
    """One COUNT over the user's unread receipts (every page's header)."""
    return session.scalar(select(func.count()).select_from(NotificationReceipt).where(
        NotificationReceipt.user_id == user_id, NotificationReceipt.read_at.is_(None))) or 0


def received(session: Session, actor: Actor, page: int) -> ReceivedPage:
    """Page `page` (from 1) of the actor's notifications, newest first. A
    notification names its product only when the actor may read it."""
    user_id = actor.user_id
    total = session.scalar(select(func.count()).select_from(NotificationReceipt)
                           .where(NotificationReceipt.user_id == user_id))
    rows = session.execute(
        select(Notification, NotificationReceipt.read_at, Product)
        .join(NotificationReceipt, NotificationReceipt.notification_id == Notification.id)
        .join(ProcessInstance, ProcessInstance.id == Notification.instance_id, isouter=True)
        .join(Product, Product.id == ProcessInstance.product_id, isouter=True)
        .where(NotificationReceipt.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    readable: dict[int, bool] = {}  # a product named by several notifications is checked once
    entries = []
    for notification, read_at, product in rows:
        if product is not None and product.id not in readable:
            readable[product.id] = may_view(session, actor, product.producer)
        shown = product is not None and readable[product.id]
        entries.append(Entry(notification.id, notification.message, notification.reasons,
                             notification.created_at, read_at, product.id if shown else None,
                             product.name if shown else None))
    return ReceivedPage(entries, total)


def mark_read(db: Database, user_id: int, notification_id: int, now: datetime) -> bool:
    """The user's receipt of the notification marked read (kept as first
    read when it already was) -- one transaction. False when the user
    received no such notification."""
    with db.transaction() as session:
        receipt = session.scalar(select(NotificationReceipt).where(
            NotificationReceipt.notification_id == notification_id, NotificationReceipt.user_id == user_id))
        if receipt is None:
            return False
        if receipt.read_at is None:
            receipt.read_at = now
        return True


def mark_all_read(db: Database, user_id: int, now: datetime) -> None:
    """Every unread receipt of the user marked read -- one statement, one transaction."""
    with db.transaction() as session:
        session.execute(update(NotificationReceipt)
                        .where(NotificationReceipt.user_id == user_id, NotificationReceipt.read_at.is_(None))
                        .values(read_at=now).execution_options(synchronize_session=False))
