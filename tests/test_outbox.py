"""The outbox: notifications written by the cycle reach their people after
commit, in-app and by e-mail to a real SMTP server; a failing server means
later, never lost; two runs, even at once, deliver each mail once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from background.outbox import STALE_CLAIM, _claim, deliver_outbox, retry_delay
from storage.models import Jurisdiction, Notification, NotificationReceipt, RoleAssignment, User
from testkit.cycle import RETURN, Cycle, returned
from testkit.server import free_port
from tests.support.smtpserver import SmtpServer
from tests.support.threads import run_at_once

PRODUCT = "Hồ tiêu Gio Linh"
OWNER = "htx.giomy"


@pytest.fixture
def smtp(monkeypatch):
    with SmtpServer() as server:
        monkeypatch.setenv("OCOP_SMTP_URL", server.url)
        monkeypatch.setenv("OCOP_MAIL_FROM", "Chương trình OCOP <ocop@quangtri.example>")
        yield server


def set_emails(engine, **addresses):
    with engine.db.transaction() as session:
        for username, address in addresses.items():
            session.scalar(select(User).where(User.username == username)).email = address


def returned_idea(engine) -> Cycle:
    cycle = Cycle(engine, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea", returned("review_idea"))
    return cycle


def officer_notification(engine, district_code: str = "QT-GL") -> int:
    with engine.db.transaction() as session:
        area = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == district_code))
        note = Notification(recipient_role="district_officer", jurisdiction_id=area, kind="registration_open",
                            message="Đã mở đăng ký ý tưởng sản phẩm OCOP năm 2026.", created_at=engine.clock())
        session.add(note)
        session.flush()
        return note.id


def receipts(engine, notification_id: int) -> list[str]:
    with engine.db.transaction() as session:
        return sorted(session.scalars(select(User.username).join(NotificationReceipt).where(
            NotificationReceipt.notification_id == notification_id)))


def undelivered(engine) -> int:
    with engine.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.delivered_at.is_(None)))


def test_returned_idea_reaches_the_producer_in_app_and_by_mail_with_the_reasons(world, smtp):
    set_emails(world, **{OWNER: "tam@htx-giomy.example"})
    cycle = returned_idea(world)
    assert deliver_outbox(world) >= 1
    with world.db.transaction() as session:
        note = session.scalar(select(Notification).where(Notification.instance_id == cycle.instance_id,
                                                         Notification.kind == "idea_returned"))
        assert note.delivered_at is not None and note.delivery_claim is None
    assert receipts(world, note.id) == [OWNER]
    [mail] = smtp.to("tam@htx-giomy.example")
    body = mail.get_content()
    assert "được trả lại" in str(mail["Subject"])
    assert RETURN["reasons"] in body and f"/portal/products/{cycle.product_id}" in body
    assert mail["Message-ID"] == f"<notification-{note.id}.user-{_user_id(world, OWNER)}@quangtri.example>"
    assert "OCOP" in str(mail["From"])


def test_an_area_notification_goes_to_every_officer_of_that_area_only(world, smtp):
    with world.db.transaction() as session:
        area = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL"))
        colleague = User(username="cb2.qt-gl", full_name="Cán bộ thứ hai", email="cb2@giolinh.example")
        session.add(colleague)
        session.flush()
        session.add(RoleAssignment(user_id=colleague.id, role="district_officer", jurisdiction_id=area))
    set_emails(world, **{"cb.qt-gl": "cb@giolinh.example", "cb.qt-cl": "cb@camlo.example"})
    note = officer_notification(world)
    assert deliver_outbox(world) == 1
    assert receipts(world, note) == ["cb.qt-gl", "cb2.qt-gl"]
    assert sorted(str(m["To"]).split("<")[1].rstrip(">") for m in smtp.messages) == [
        "cb2@giolinh.example", "cb@giolinh.example"]
    assert smtp.to("cb@camlo.example") == []


def test_running_again_sends_nothing_twice(world, smtp):
    set_emails(world, **{OWNER: "tam@htx-giomy.example", "cb.qt-gl": "cb@giolinh.example"})
    returned_idea(world)
    officer_notification(world)
    first = deliver_outbox(world)
    sent = len(smtp.messages)
    assert first >= 2 and sent == 2
    world.clock.advance(hours=1)
    assert deliver_outbox(world) == 0
    assert len(smtp.messages) == sent


def test_without_smtp_notifications_are_delivered_in_app_only(world, monkeypatch, caplog):
    monkeypatch.delenv("OCOP_SMTP_URL", raising=False)
    set_emails(world, **{OWNER: "tam@htx-giomy.example"})
    cycle = returned_idea(world)
    assert deliver_outbox(world) >= 1
    assert undelivered(world) == 0
    with world.db.transaction() as session:
        note = session.scalar(select(Notification.id).where(Notification.instance_id == cycle.instance_id))
    assert receipts(world, note) == [OWNER]


def test_a_refused_connection_is_retried_with_backoff_and_nothing_is_lost(world, monkeypatch):
    monkeypatch.setenv("OCOP_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nobody listens there
    set_emails(world, **{OWNER: "tam@htx-giomy.example"})
    cycle = returned_idea(world)
    with world.db.transaction() as session:
        note_id = session.scalar(select(Notification.id).where(Notification.instance_id == cycle.instance_id,
                                                               Notification.kind == "idea_returned"))

    def state():
        with world.db.transaction() as session:
            note = session.get(Notification, note_id)
            return note.delivered_at, note.delivery_attempts, note.next_attempt_at, note.last_error

    assert deliver_outbox(world) == 0
    delivered, attempts, next_at, error = state()
    assert (delivered, attempts) == (None, 1) and error
    assert next_at.replace(tzinfo=None) == (world.clock() + retry_delay(1)).replace(tzinfo=None)
    assert receipts(world, note_id) == [OWNER]  # in-app does not wait for the mail server

    assert deliver_outbox(world) == 0  # not due yet: untouched
    assert state()[1] == 1
    world.clock.advance(seconds=61)
    assert deliver_outbox(world) == 0
    assert state()[1] == 2 and retry_delay(2) == timedelta(minutes=2)

    with SmtpServer() as server:
        monkeypatch.setenv("OCOP_SMTP_URL", server.url)
        world.clock.advance(minutes=2)
        assert deliver_outbox(world) == 1
        assert deliver_outbox(world) == 0
        assert len(server.to("tam@htx-giomy.example")) == 1
    assert state()[0] is not None


def test_backoff_doubles_up_to_six_hours():
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert retry_delay(30) == timedelta(hours=6)


def test_a_claim_of_a_dead_worker_is_taken_over_once_stale(world, smtp):
    set_emails(world, **{"cb.qt-gl": "cb@giolinh.example"})
    note = officer_notification(world)
    assert _claim(world, note, world.clock())  # a worker claims it, then dies
    assert deliver_outbox(world) == 0 and smtp.messages == []
    world.clock.advance(seconds=STALE_CLAIM.total_seconds() + 1)
    assert deliver_outbox(world) == 1
    assert len(smtp.messages) == 1


def test_concurrent_runs_deliver_each_notification_once(world, smtp):
    set_emails(world, **{"cb.qt-gl": "cb@giolinh.example"})
    ids = [officer_notification(world) for _ in range(12)]
    results, errors = run_at_once(lambda: deliver_outbox(world), 4)
    assert not errors
    assert sum(results) == len(ids)
    message_ids = [str(m["Message-ID"]) for m in smtp.messages]
    assert len(message_ids) == len(ids) == len(set(message_ids))
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(NotificationReceipt)) == len(ids)


def test_the_enrolment_mail_carries_the_training_invitation(world, smtp):
    set_emails(world, **{OWNER: "tam@htx-giomy.example"})
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea")
    deliver_outbox(world)
    [mail] = [m for m in smtp.to("tam@htx-giomy.example") if "chấp nhận" in str(m["Subject"])]
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    event = Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
    assert str(event["UID"]).startswith("ocop-enrolment-") and "Tập huấn" in str(event["SUMMARY"])


def _user_id(engine, username: str) -> int:
    with engine.db.transaction() as session:
        return session.scalar(select(User.id).where(User.username == username))
