"""Delivering the outbox: `notification` rows written by the `notify`
handler inside an engine call's transaction reach their people after commit.

In-app: one `notification_receipt` per addressee -- the owner of the
producer, or every active holder of the role for the area -- which the
notification centre lists and whose read state is per user.
E-mail: to each addressee with an address, when OCOP_SMTP_URL is set.

Safe to run twice and on several machines at once: a row is claimed with a
conditional UPDATE before anything is sent, so only one run holds it; a
claim older than STALE_CLAIM (its worker died) may be taken over. A failed
send leaves the row undelivered with a later `next_attempt_at` (doubling
each time): retried, never lost. Each mail carries a Message-ID stable per
(notification, recipient), so the one resend a crash between sending and
recording can cause is recognisable as the same message.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from background.invitations import TOPIC_ANNOUNCED_BY, enrolment_filename, enrolment_ics
from background.jobs import job
from background.mail import Mailer, MailSettings, mail_domain, mailbox, public_url
from storage.models import (
    Enrolment,
    Notification,
    NotificationReceipt,
    ProcessInstance,
    Producer,
    RoleAssignment,
    User,
)

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
BATCH = 200  # notifications looked at per run; the rest wait for the next run


@job("outbox", every_seconds=60,
     description="Giao thông báo trong ứng dụng và qua e-mail / deliver notifications in-app and by e-mail",
     counts="notifications delivered")
def deliver_outbox(engine) -> int:
    """Deliver what is due; returns how many notifications were delivered."""
    settings = MailSettings.from_environment()
    if settings is None:
        _say_in_app_only()
    mailer = Mailer(settings) if settings else None
    delivered = 0
    try:
        for notification_id in _due(engine, engine.clock()):
            now = engine.clock()
            claim = _claim(engine, notification_id, now)
            if claim is None:
                continue  # another run holds it, or delivered it meanwhile
            try:
                _deliver(engine, notification_id, mailer)
            except Exception as err:  # noqa: BLE001 -- whatever failed, the row must be retried, not lost
                _postpone(engine, notification_id, claim, err)
            else:
                delivered += _finish(engine, notification_id, claim)
    finally:
        if mailer:
            mailer.close()
    return delivered


# --- claiming ------------------------------------------------------------------

def _undelivered_and_free(now: datetime):
    return (Notification.delivered_at.is_(None),
            or_(Notification.delivery_claimed_at.is_(None), Notification.delivery_claimed_at < now - STALE_CLAIM),
            or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now))


def _due(engine, now: datetime) -> list[int]:
    with engine.db.transaction() as session:
        return list(session.scalars(select(Notification.id).where(*_undelivered_and_free(now))
                                    .order_by(Notification.id).limit(BATCH)))


def _claim(engine, notification_id: int, now: datetime) -> str | None:
    """Take the row for this run, or None if someone else has it. On
    PostgreSQL a concurrent UPDATE of the same row waits for the first and
    then re-checks the condition, so exactly one of them gets it."""
    claim = uuid.uuid4().hex
    with engine.db.transaction() as session:
        taken = session.execute(
            update(Notification).where(Notification.id == notification_id, *_undelivered_and_free(now))
            .values(delivery_claim=claim, delivery_claimed_at=now)
            .execution_options(synchronize_session=False)).rowcount
    return claim if taken == 1 else None


def _finish(engine, notification_id: int, claim: str) -> int:
    with engine.db.transaction() as session:
        return session.execute(
            update(Notification).where(Notification.id == notification_id, Notification.delivery_claim == claim)
            .values(delivered_at=engine.clock(), delivery_claim=None, delivery_claimed_at=None, last_error=None)
            .execution_options(synchronize_session=False)).rowcount


def retry_delay(attempts: int) -> timedelta:
    """1 minute after the first failure, then doubling, at most 6 hours."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


def _postpone(engine, notification_id: int, claim: str, err: Exception) -> None:
    now = engine.clock()
    with engine.db.transaction() as session:
        attempts = (session.scalar(select(Notification.delivery_attempts)
                                   .where(Notification.id == notification_id)) or 0) + 1
        session.execute(
            update(Notification).where(Notification.id == notification_id, Notification.delivery_claim == claim)
            .values(delivery_claim=None, delivery_claimed_at=None, delivery_attempts=attempts,
                    next_attempt_at=now + retry_delay(attempts), last_error=str(err)[:500])
            .execution_options(synchronize_session=False))
    log.warning("notification %s not delivered (attempt %s), retrying in %s: %s",
                notification_id, attempts, retry_delay(attempts), err)


# --- delivering -----------------------------------------------------------------

@dataclass
class _Mail:
    receipt_id: int
    user_id: int
    address: str
    name: str


def _deliver(engine, notification_id: int, mailer: Mailer | None) -> None:
    """Receipts first (in-app, committed), then one mail per addressee not
    mailed yet, each recorded as soon as it is sent."""
    now = engine.clock()
    with engine.db.transaction() as session:
        notification = session.get(Notification, notification_id)
        users = addressees(session, notification)
        have = dict(session.execute(select(NotificationReceipt.user_id, NotificationReceipt.id).where(
            NotificationReceipt.notification_id == notification_id)).all())
        for user in users:
            if user.id not in have:
                session.add(NotificationReceipt(notification_id=notification_id, user_id=user.id,
                                                delivered_at=now))
        session.flush()
        if not users:
            log.info("notification %s (%s) has nobody to deliver to", notification_id, notification.kind)
        if mailer is None:
            return
        pending = [_Mail(receipt.id, user.id, user.email.strip(), user.full_name) for user, receipt in session.execute(
            select(User, NotificationReceipt).join(NotificationReceipt, NotificationReceipt.user_id == User.id)
            .where(NotificationReceipt.notification_id == notification_id, NotificationReceipt.emailed_at.is_(None),
                   User.email.is_not(None), User.email != "")
            .order_by(User.id))]
        content = _content(session, notification) if pending else None
    for mail in pending:
        message = _message(notification_id, content, mail)
        if message is None:
            log.warning("user %s has an unusable e-mail address %r: not mailed", mail.user_id, mail.address)
            continue
        mailer.send(message)
        with engine.db.transaction() as session:
            session.execute(update(NotificationReceipt).where(NotificationReceipt.id == mail.receipt_id)
                            .values(emailed_at=engine.clock()).execution_options(synchronize_session=False))


def addressees(session: Session, notification: Notification) -> list[User]:
    """Who the notification is for: the producer's owner, or the active
    holders of the role for the area."""
    if notification.producer_id is not None:
        query = select(User).join(Producer, Producer.owner_user_id == User.id).where(
            Producer.id == notification.producer_id)
    elif notification.jurisdiction_id is not None:
        query = select(User).join(RoleAssignment, RoleAssignment.user_id == User.id).where(
            RoleAssignment.role == notification.recipient_role,
            RoleAssignment.jurisdiction_id == notification.jurisdiction_id)
    else:
        return []
    return list(session.scalars(query.where(User.is_active.is_(True)).order_by(User.id)))


@dataclass
class _Content:
    subject: str
    body: str
    attachment: tuple[bytes, str] | None  # (content, filename)


def _content(session: Session, notification: Notification) -> _Content:
    product_id = None
    if notification.instance_id is not None:
        product_id = session.scalar(select(ProcessInstance.product_id)
                                    .where(ProcessInstance.id == notification.instance_id))
    lines = [notification.message]
    if notification.reasons:
        lines += ["", f"Lý do: {notification.reasons}"]
    attachment = None
    topic = TOPIC_ANNOUNCED_BY.get(notification.kind)
    if topic and notification.producer_id is not None and notification.instance_id is not None:
        enrolment = session.scalar(select(Enrolment).where(Enrolment.instance_id == notification.instance_id,
                                                           Enrolment.topic == topic))
        if enrolment is not None:
            attachment = (enrolment_ics(session, enrolment), enrolment_filename(enrolment))
            lines += ["", "Lịch tập huấn đính kèm (tệp .ics) để thêm vào lịch của bạn."]
    if product_id is not None:
        lines += ["", f"Xem sản phẩm: {public_url(f'/portal/products/{product_id}')}"]
    lines += ["", f"Tất cả thông báo: {public_url('/notifications/')}", "", "--",
              "Chương trình OCOP – thư tự động, vui lòng không trả lời.",
              "OCOP programme – automatic message (in Vietnamese above), please do not reply."]
    subject = notification.message if len(notification.message) <= 150 else notification.message[:147] + "..."
    return _Content(f"[OCOP] {subject}", "\n".join(lines), attachment)


def _message(notification_id: int, content: _Content, mail: _Mail) -> EmailMessage | None:
    to = mailbox(mail.name, mail.address)
    if to is None:
        return None
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = content.subject
    # Stable per (notification, recipient): a resend after a crash is the same message.
    message["Message-ID"] = f"<notification-{notification_id}.user-{mail.user_id}@{mail_domain()}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(f"Kính gửi {mail.name},\n\n{content.body}\n")
    if content.attachment:
        data, filename = content.attachment
        # As text with its charset, so mail readers decode the Vietnamese right.
        message.add_attachment(data.decode("utf-8"), subtype="calendar", charset="utf-8", filename=filename,
                               params={"method": "PUBLISH"})
    return message


_told_in_app_only = False


def _say_in_app_only() -> None:
    global _told_in_app_only
    if not _told_in_app_only:  # once per process, not every minute
        log.info("OCOP_SMTP_URL is not set: notifications are delivered in-app only, no e-mail")
        _told_in_app_only = True
