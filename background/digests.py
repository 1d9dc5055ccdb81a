"""Daily e-mail digests for officers: what waits on them in their inbox
(the tasks of their roles and areas, by the inbox's own visibility rule)
and what of it is overdue, with links.

At most one digest per officer and local day (Asia/Ho_Chi_Minh): the
`digest_sent` row is claimed (a unique (user, day) insert) before the mail
goes out, so a second run the same day -- or a concurrent one -- sends
nothing. A failed send gives the claim back for the next hourly run. An
officer with nothing waiting gets no mail. Without SMTP nothing is sent.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from background.jobs import job
from background.mail import Mailer, MailSettings, mail_domain, mailbox, public_url
from engine.access import Actor, acting_on_tasks, load_actor
from storage.models import DigestSent, InboxTask, Jurisdiction, Producer, Product, RoleAssignment, User

log = logging.getLogger(__name__)

LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
# Digests go out from this local hour on (OCOP_DIGEST_HOUR), at the first hourly run after it.
DEFAULT_SEND_HOUR = 7
LISTED = 10  # tasks named in the mail; the rest are counted
STALE_CLAIM = timedelta(minutes=30)


@dataclass
class Line:
    task_id: str
    name: str
    product: str | None
    commune: str | None
    due_at: datetime | None
    overdue: bool


@dataclass
class Digest:
    user_id: int
    name: str
    address: str
    waiting: int
    overdue: int
    lines: list[Line]


@job("digests", every_seconds=3600,
     description="Thư tóm tắt hằng ngày cho cán bộ / officers' daily e-mail digest of waiting and overdue tasks",
     counts="digests sent")
def send_digests(engine) -> int:
    """Send today's digests not sent yet; returns how many went out."""
    settings = MailSettings.from_environment()
    if settings is None:
        return 0
    now = engine.clock()
    local = now.astimezone(LOCAL_TIME)
    if local.hour < int(os.environ.get("OCOP_DIGEST_HOUR", DEFAULT_SEND_HOUR)):
        return 0
    sent = 0
    with Mailer(settings) as mailer:
        for user_id in _officers(engine):
            digest = compose(engine, user_id, now)
            if digest is None:
                continue
            mail = message(digest, local.date())
            if mail is None:
                log.warning("user %s has an unusable e-mail address %r: no digest", user_id, digest.address)
                continue
            claim_id = _claim(engine, user_id, local.date(), now, digest)
            if claim_id is None:
                continue
            try:
                mailer.send(mail)
            except Exception as err:  # noqa: BLE001 -- give the day back, the next run tries again
                _release(engine, claim_id)
                log.warning("digest for user %s not sent: %s", user_id, err)
                continue
            with engine.db.transaction() as session:
                session.execute(update(DigestSent).where(DigestSent.id == claim_id).values(sent_at=engine.clock())
                                .execution_options(synchronize_session=False))
            sent += 1
    return sent


def _officers(engine) -> list[int]:
    """Active users with an e-mail address and a role for an area."""
    with engine.db.transaction() as session:
        return list(session.scalars(
            select(User.id).where(User.is_active.is_(True), User.email.is_not(None), User.email != "",
                                  User.id.in_(select(RoleAssignment.user_id)
                                              .where(RoleAssignment.jurisdiction_id.is_not(None))))
            .order_by(User.id)))


def compose(engine, user_id: int, now: datetime) -> Digest | None:
    """The digest's content, or None when nothing waits on the officer."""
    with engine.db.transaction() as session:
        actor: Actor = load_actor(session, user_id)
        user = session.get(User, user_id)
        mine = acting_on_tasks(actor)
        waiting = session.scalar(select(func.count()).select_from(InboxTask).where(mine))
        if not waiting:
            return None
        overdue = session.scalar(select(func.count()).select_from(InboxTask).where(mine, InboxTask.due_at < now))
        rows = session.execute(
            select(InboxTask, Product.name, Jurisdiction.name)
            .join(Product, Product.id == InboxTask.product_id, isouter=True)
            .join(Producer, Producer.id == InboxTask.producer_id, isouter=True)
            .join(Jurisdiction, Jurisdiction.id == Producer.commune_id, isouter=True)
            .where(mine)
            # Overdue first (earliest deadline first), then the longest waiting.
            .order_by(InboxTask.due_at.is_(None), InboxTask.due_at, InboxTask.created_at, InboxTask.id)
            .limit(LISTED)).all()
        lines = [Line(task.id, task.name, product, commune, _utc(task.due_at),
                      task.due_at is not None and _utc(task.due_at) < now)
                 for task, product, commune in rows]
        return Digest(user_id, user.full_name, user.email.strip(), waiting, overdue, lines)


def _claim(engine, user_id: int, day: date, now: datetime, digest: Digest) -> int | None:
    """The day's row for this run, or None when the digest is sent or being
    sent. A claim left by a run that died is taken over once stale."""
    try:
        with engine.db.transaction() as session:
            row = DigestSent(user_id=user_id, local_day=day, claimed_at=now, task_count=digest.waiting,
                             overdue_count=digest.overdue)
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        pass
    with engine.db.transaction() as session:
        row_id = session.scalar(select(DigestSent.id).where(DigestSent.user_id == user_id,
                                                            DigestSent.local_day == day))
        taken = session.execute(
            update(DigestSent).where(DigestSent.id == row_id, DigestSent.sent_at.is_(None),
                                     DigestSent.claimed_at < now - STALE_CLAIM)
            .values(claimed_at=now).execution_options(synchronize_session=False)).rowcount
    return row_id if taken == 1 else None


def _release(engine, claim_id: int) -> None:
    with engine.db.transaction() as session:
        session.execute(delete(DigestSent).where(DigestSent.id == claim_id, DigestSent.sent_at.is_(None)))


def message(digest: Digest, day: date) -> EmailMessage | None:
    to = mailbox(digest.name, digest.address)
    if to is None:
        return None
    when = day.strftime("%d/%m/%Y")
    lines = [f"Kính gửi {digest.name},", "",
             f"Tóm tắt công việc OCOP ngày {when}:",
             f"- Việc đang chờ: {digest.waiting}",
             f"- Việc quá hạn: {digest.overdue}", ""]
    for line in digest.lines:
        mark = "[QUÁ HẠN] " if line.overdue else ""
        about = " – ".join(part for part in (line.product, line.commune) if part)
        due = f" – hạn {line.due_at.astimezone(LOCAL_TIME):%d/%m/%Y}" if line.due_at else ""
        lines.append(f"- {mark}{line.name}{' – ' + about if about else ''}{due}")
        lines.append(f"  {public_url(f'/inbox/tasks/{line.task_id}')}")
    if digest.waiting > len(digest.lines):
        lines.append(f"… và {digest.waiting - len(digest.lines)} việc khác.")
    lines += ["", f"Mở hộp việc: {public_url('/inbox/')}",
              f"Việc quá hạn: {public_url('/inbox/?overdue=1')}", "", "--",
              f"Daily OCOP summary: {digest.waiting} tasks waiting, {digest.overdue} overdue.",
              "Chương trình OCOP – thư tự động, vui lòng không trả lời."]
    mail = EmailMessage()
    mail["To"] = to
    mail["Subject"] = f"[OCOP] {digest.waiting} việc đang chờ, {digest.overdue} việc quá hạn – {when}"
    # One per officer and day: a resend after a crash is recognisably the same message.
    mail["Message-ID"] = f"<digest-{day.isoformat()}.user-{digest.user_id}@{mail_domain()}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content("\n".join(lines) + "\n")
    return mail


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they are stored in UTC.
    if value is None or value.tzinfo:
        return value
    return value.replace(tzinfo=timezone.utc)
