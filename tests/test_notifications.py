"""The notification centre: each user sees what was delivered to them and
nothing else, reads it separately from colleagues of the same area, and
the header counts what is unread."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from background.outbox import deliver_outbox
from demo.seed import DEMO_PASSWORD
from programme.accounts import create_user
from storage.models import Jurisdiction, Notification, RoleAssignment, User
from testkit.cycle import RETURN, Cycle, returned
from testkit.web_login import login

PRODUCT = "Hồ tiêu Gio Linh"
GIO_LINH_NEWS = "Tin cho cán bộ huyện Gio Linh"
CAM_LO_NEWS = "Tin cho cán bộ huyện Cam Lộ"
UNREAD = re.compile(r'data-unread="(\d+)"')


@pytest.fixture
def delivered(world, monkeypatch):
    """A returned idea for the producer, one message for Gio Linh's district
    officers (two of them) and one for Cam Lộ's, delivered in-app."""
    monkeypatch.delenv("OCOP_SMTP_URL", raising=False)
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea", returned("review_idea"))
    ids = {}
    with world.db.transaction() as session:
        gio_linh, cam_lo = (session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))
                            for code in ("QT-GL", "QT-CL"))
        colleague = create_user(session, "cb2.qt-gl", "Cán bộ thứ hai Gio Linh", DEMO_PASSWORD)
        session.add(RoleAssignment(user_id=colleague.id, role="district_officer", jurisdiction_id=gio_linh))
        for key, area, text in (("gio_linh", gio_linh, GIO_LINH_NEWS), ("cam_lo", cam_lo, CAM_LO_NEWS)):
            note = Notification(recipient_role="district_officer", jurisdiction_id=area, kind="registration_open",
                                message=text, created_at=world.clock())
            session.add(note)
            session.flush()
            ids[key] = note.id
        ids["producer"] = session.scalar(select(Notification.id).where(
            Notification.instance_id == cycle.instance_id, Notification.kind == "idea_returned"))
    deliver_outbox(world)
    return {"product": cycle.product_id, **ids}


def unread(client, path: str = "/catalogue") -> int:
    found = UNREAD.search(client.get(path).get_data(as_text=True))
    return int(found.group(1)) if found else 0


def test_the_producer_sees_its_message_with_the_reasons_and_a_link(client, delivered):
    login(client, "htx.giomy")
    assert unread(client) == 1
    page = client.get("/notifications/").get_data(as_text=True)
    assert "được trả lại" in page and RETURN["reasons"] in page
    assert f'/portal/products/{delivered["product"]}' in page
    assert GIO_LINH_NEWS not in page and CAM_LO_NEWS not in page


def test_officers_see_their_own_area_only(app, delivered):
    gio_linh, cam_lo = app.test_client(), app.test_client()
    login(gio_linh, "cb.qt-gl")
    login(cam_lo, "cb.qt-cl")
    page = gio_linh.get("/notifications/").get_data(as_text=True)
    assert GIO_LINH_NEWS in page and CAM_LO_NEWS not in page and RETURN["reasons"] not in page
    page = cam_lo.get("/notifications/").get_data(as_text=True)
    assert CAM_LO_NEWS in page and GIO_LINH_NEWS not in page
    other = app.test_client()
    login(other, "kiemtoan")
    assert unread(other) == 0
    assert GIO_LINH_NEWS not in other.get("/notifications/").get_data(as_text=True)


def test_read_state_is_per_user(app, delivered):
    first, second = app.test_client(), app.test_client()
    token = login(first, "cb.qt-gl")
    login(second, "cb2.qt-gl")
    assert unread(first) == unread(second) == 1
    response = first.post(f"/notifications/{delivered['gio_linh']}/read", data={"csrf_token": token})
    assert response.status_code == 302
    assert unread(first) == 0
    assert unread(second) == 1  # the colleague's copy is still unread
    page = second.get("/notifications/").get_data(as_text=True)
    assert 'class="unread"' in page


def test_nobody_marks_another_users_notification(app, delivered):
    intruder, owner = app.test_client(), app.test_client()
    token = login(intruder, "cb.qt-cl")
    login(owner, "htx.giomy")
    for notification in (delivered["producer"], delivered["gio_linh"]):
        assert intruder.post(f"/notifications/{notification}/read", data={"csrf_token": token}).status_code == 404
    assert unread(owner) == 1


def test_mark_all_read(client, delivered, world):
    token = login(client, "cb.qt-gl")
    with world.db.transaction() as session:
        area = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL"))
        session.add(Notification(recipient_role="district_officer", jurisdiction_id=area, kind="registration_open",
                                 message="Tin thứ hai", created_at=world.clock()))
    world.clock.advance(minutes=1)
    deliver_outbox(world)
    assert unread(client) == 2
    assert client.post("/notifications/read-all", data={"csrf_token": token}).status_code == 302
    assert unread(client) == 0
    page = client.get("/notifications/").get_data(as_text=True)
    assert page.index("Tin thứ hai") < page.index(GIO_LINH_NEWS)  # newest first


def test_changes_need_the_csrf_token_and_a_session(app, delivered):
    client = app.test_client()
    assert client.get("/notifications/").status_code == 302  # to sign in
    assert 'data-nav="notifications"' not in client.get("/catalogue").get_data(as_text=True)
    login(client, "cb.qt-gl")
    assert client.post(f"/notifications/{delivered['gio_linh']}/read").status_code == 400
    assert unread(client) == 1


def test_the_page_in_english(client, delivered):
    login(client, "htx.giomy")
    page = client.get("/notifications/?lang=en").get_data(as_text=True)
    assert "Notifications" in page and "Mark all as read" in page


def test_an_administrator_gives_a_new_account_its_address(client, world):
    token = login(client, "admin")
    form = {"csrf_token": token, "username": "cb.moi", "full_name": "Cán bộ mới", "password": "mat-khau-dai"}
    refused = client.post("/admin/users/new", data={**form, "email": "không phải địa chỉ"})
    assert refused.status_code == 422
    assert client.post("/admin/users/new", data={**form, "email": "cb.moi@giolinh.example"}).status_code == 302
    with world.db.transaction() as session:
        assert session.scalar(select(User.email).where(User.username == "cb.moi")) == "cb.moi@giolinh.example"
