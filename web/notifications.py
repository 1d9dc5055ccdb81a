"""The notification centre: what the outbox delivered to the signed-in
user, newest first, each read or unread for this user alone, and the
unread count in every page's header.

Rows come only from the user's own receipts (background/outbox.py writes one
per addressee), so nobody sees another user's or another area's messages;
marking read touches only the user's own receipt (another id answers 404).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select, update

from programme import products
from storage.models import Notification, NotificationReceipt, ProcessInstance, Product
from web.context import actor, bpmn_engine, db

notifications = Blueprint("notifications", __name__, url_prefix="/notifications")

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


@notifications.app_context_processor
def unread_count():
    """`unread_notifications()` for base.html: one COUNT over the user's
    unread receipts, run only by pages that show the header."""

    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        if "unread_notifications" not in g:  # once per request, however often the page asks
            with db().transaction() as session:
                g.unread_notifications = session.scalar(
                    select(func.count()).select_from(NotificationReceipt).where(
                        NotificationReceipt.user_id == actor().user_id, NotificationReceipt.read_at.is_(None))) or 0
        return g.unread_notifications

    return {"unread_notifications": unread_notifications}


@notifications.get("/")
@login_required
def index():
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    user_id = actor().user_id
    with db().transaction() as session:
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
        readable: dict[int, bool] = {}
        entries = []
        for notification, read_at, product in rows:
            if product is not None and product.id not in readable:
                readable[product.id] = products.may_view(session, actor(), product.producer)
            shown = product is not None and readable[product.id]
            entries.append(Entry(notification.id, notification.message, notification.reasons,
                                 notification.created_at, read_at, product.id if shown else None,
                                 product.name if shown else None))
    return render_template("notifications/index.html", entries=entries, page=page, total=total,
                           pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1))


@notifications.post("/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    with db().transaction() as session:
        receipt = session.scalar(select(NotificationReceipt).where(
            NotificationReceipt.notification_id == notification_id,
            NotificationReceipt.user_id == actor().user_id))
        if receipt is None:
            abort(404)
        if receipt.read_at is None:
            receipt.read_at = bpmn_engine().clock()
    return redirect(_back())


@notifications.post("/read-all")
@login_required
def mark_all_read():
    with db().transaction() as session:
        session.execute(update(NotificationReceipt)
                        .where(NotificationReceipt.user_id == actor().user_id, NotificationReceipt.read_at.is_(None))
                        .values(read_at=bpmn_engine().clock()).execution_options(synchronize_session=False))
    return redirect(_back())


def _back() -> str:
    # Back to the page of the list the user was on; only a local path.
    page = request.form.get("page", "")
    return url_for("notifications.index", page=int(page)) if page.isdigit() and int(page) > 1 \
        else url_for("notifications.index")
