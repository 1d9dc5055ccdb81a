"""The notification centre's pages: the signed-in user's notifications
(programme/notifications.py), newest first, marking them read, and the
unread count in every page's header.

Marking read touches only the user's own receipt: another user's
notification id answers 404, like one that does not exist.
"""
from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from programme import notifications as notices
from programme.notifications import PAGE_SIZE
from web.context import MAX_PAGE, actor, bpmn_engine, db, query_int, reading

notifications = Blueprint("notifications", __name__, url_prefix="/notifications")


@notifications.app_context_processor
def unread_count():
    """`unread_notifications()` for base.html: one COUNT over the user's
    unread receipts, run only by pages that show the header."""

    def unread_notifications() -> int:
        if not current_user.is_authenticated:
            return 0
        if "unread_notifications" not in g:  # once per request, however often the page asks
            with reading() as session:
                g.unread_notifications = notices.unread_count(session, actor().user_id)
        return g.unread_notifications

    return {"unread_notifications": unread_notifications}


@notifications.get("/")
@login_required
def index():
    page = query_int("page", 1, MAX_PAGE) or 1
    with reading() as session:
        found = notices.received(session, actor(), page)
    return render_template("notifications/index.html", entries=found.entries, page=page, total=found.total,
                           pages=max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1))


@notifications.post("/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    if not notices.mark_read(db(), actor().user_id, notification_id, bpmn_engine().clock()):
        abort(404)
    return redirect(_back())


@notifications.post("/read-all")
@login_required
def mark_all_read():
    notices.mark_all_read(db(), actor().user_id, bpmn_engine().clock())
    return redirect(_back())


def _back() -> str:
    # Back to the page of the list the user was on; only a local path.
    page = request.form.get("page", "")
    return url_for("notifications.index", page=int(page)) if page.isdigit() and int(page) > 1 \
        else url_for("notifications.index")
