"""Officers' daily digests: what waits on them and what is overdue, from
their own inbox only, at most once per officer and local day."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from background.digests import send_digests
from storage.models import DigestSent, InboxTask, User
from testkit.cycle import Cycle
from testkit.server import free_port
from tests.support.smtpserver import SmtpServer
from tests.support.threads import run_at_once

PRODUCT = "Hồ tiêu Gio Linh"
COMMUNE_OFFICER = "cb.qt-gl-gm"     # Gio Mỹ: the product's commune
OTHER_OFFICER = "cb.qt-cl-ct"       # Cam Thành: nothing of this product
GIO_MY = "cb@giomy.example"
CAM_THANH = "cb@camthanh.example"


@pytest.fixture
def smtp(monkeypatch):
    with SmtpServer() as server:
        monkeypatch.setenv("OCOP_SMTP_URL", server.url)
        monkeypatch.delenv("OCOP_DIGEST_HOUR", raising=False)
        yield server


@pytest.fixture
def waiting(world):
    """The product's idea waits on the Gio Mỹ commune officer; both
    officers have an address."""
    with world.db.transaction() as session:
        for username, address in ((COMMUNE_OFFICER, GIO_MY), (OTHER_OFFICER, CAM_THANH)):
            session.scalar(select(User).where(User.username == username)).email = address
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    return cycle


def test_the_digest_lists_what_waits_and_what_is_overdue(world, smtp, waiting):
    task = waiting.task("receive_idea")
    with world.db.transaction() as session:
        session.execute(update(InboxTask).where(InboxTask.id == task.id)
                        .values(due_at=world.clock() - timedelta(days=2)))
    assert send_digests(world) == 1
    [mail] = smtp.to(GIO_MY)
    assert str(mail["Subject"]) == "[OCOP] 1 việc đang chờ, 1 việc quá hạn – 02/03/2026"
    body = mail.get_content()
    assert "Việc đang chờ: 1" in body and "Việc quá hạn: 1" in body
    assert f"[QUÁ HẠN] {task.name} – {PRODUCT} – Xã Gio Mỹ" in body
    assert f"/inbox/tasks/{task.id}" in body and "Daily OCOP summary" in body
    assert smtp.to(CAM_THANH) == []  # nothing waits there: no mail


def test_at_most_one_digest_per_local_day(world, smtp, waiting):
    assert send_digests(world) == 1
    world.clock.advance(hours=1)
    assert send_digests(world) == 0
    assert len(smtp.to(GIO_MY)) == 1
    # 17:00 UTC is midnight in Vietnam: the 3rd, but before the morning hour.
    world.clock.advance(hours=8)
    assert send_digests(world) == 0
    world.clock.advance(hours=15)  # 08:00 UTC, 15:00 on the 3rd in Vietnam
    assert send_digests(world) == 1
    mails = smtp.to(GIO_MY)
    assert len(mails) == 2 and "03/03/2026" in str(mails[1]["Subject"])
    assert mails[0]["Message-ID"] != mails[1]["Message-ID"]


def test_nothing_before_the_morning_hour_nor_without_smtp(world, smtp, waiting, monkeypatch):
    world.clock.now = datetime(2026, 3, 2, 23, 30, tzinfo=timezone.utc)  # 06:30 on the 3rd in Vietnam
    assert send_digests(world) == 0
    world.clock.advance(minutes=30)
    monkeypatch.delenv("OCOP_SMTP_URL")
    assert send_digests(world) == 0
    monkeypatch.setenv("OCOP_SMTP_URL", smtp.url)
    assert send_digests(world) == 1


def test_a_failed_send_gives_the_day_back(world, waiting, monkeypatch):
    monkeypatch.setenv("OCOP_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    assert send_digests(world) == 0
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(DigestSent)) == 0
    with SmtpServer() as server:
        monkeypatch.setenv("OCOP_SMTP_URL", server.url)
        world.clock.advance(hours=1)
        assert send_digests(world) == 1
        assert len(server.to(GIO_MY)) == 1


def test_concurrent_runs_send_one_digest(world, smtp, waiting):
    results, errors = run_at_once(lambda: send_digests(world), 3)
    assert not errors and sum(results) == 1
    assert len(smtp.to(GIO_MY)) == 1
