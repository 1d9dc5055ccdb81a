"""The councils' pages (web/councils.py), on SQLite and PostgreSQL: the
menu link, keeping a roster through the forms (CSRF, admin log), 404 for a
council outside the reader's reach, opening a session (refused without
quorum, nothing written), the minutes and the chair's confirmation; and at
phone width (360 px) nothing scrolls sideways."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage.council_models import Council, CouncilMember, CouncilSession
from storage.models import AdminLogEntry, InboxTask
from testkit.web_login import login
from tests.support.councils import area_id, products_waiting, province_council
from tests.support.web_helpers import sign_in_browser


def count(engine, model, *where) -> int:
    with engine.db.reading() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def attendance_tasks(engine) -> list[str]:
    with engine.db.reading() as session:
        return list(session.scalars(select(InboxTask.id).where(InboxTask.form_key == "council_attendance")
                                    .order_by(InboxTask.id)))


@pytest.fixture
def council(world):
    council_id, ids = province_council(world)
    yield council_id, ids


def test_the_menu_shows_councils_to_members_and_keepers_only(council, app):
    for username in ("hd.qt", "qlct.qt", "admin"):
        client = app.test_client()
        login(client, username)
        assert 'data-nav="councils"' in client.get("/catalogue").get_data(as_text=True)
        assert "Hội đồng OCOP tỉnh Quảng Trị" in client.get("/councils/").get_data(as_text=True)
    for username in ("htx.giomy", "cb.qt-gl"):
        client = app.test_client()
        login(client, username)
        assert 'data-nav="councils"' not in client.get("/catalogue").get_data(as_text=True)
        assert client.get("/councils/").status_code == 403


def test_a_program_manager_keeps_the_roster_through_the_forms(world, client):
    token = login(client, "qlct.qt")
    qt = area_id(world, "QT")
    assert client.post("/councils/", data={"area_id": qt, "name": "Hội đồng tỉnh"}).status_code == 400
    response = client.post("/councils/", data={"area_id": qt, "name": "Hội đồng tỉnh",
                                               "quorum_fraction": "0,75", "chair_required": "1",
                                               "spread_limit": "10", "csrf_token": token})
    assert response.status_code == 302
    council_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    response = client.post(f"/councils/{council_id}/members", data={
        "username": "hd.qt", "department": "Sở Khoa học và Công nghệ", "council_role": "secretary",
        "csrf_token": token}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Đã thêm" in page and 'data-role="secretary"' in page and 'data-action="member_added"' in page
    response = client.post(f"/councils/{council_id}/members", data={
        "username": "cb.qt-gl", "department": "", "council_role": "secretary", "csrf_token": token},
        follow_redirects=True)
    assert "Hội đồng đã có thư ký" in response.get_data(as_text=True)
    with world.db.reading() as session:
        seat = session.scalar(select(CouncilMember.id).where(CouncilMember.council_id == council_id))
    client.post(f"/councils/{council_id}/members/{seat}/remove", data={"csrf_token": token})
    client.post(f"/councils/{council_id}/settings", data={"name": "Hội đồng tỉnh QT", "quorum_fraction": "0.6",
                                                          "spread_limit": "12", "csrf_token": token})
    page = client.get(f"/councils/{council_id}").get_data(as_text=True)
    assert "Hội đồng tỉnh QT" in page and "Thành viên trước đây (1)" in page
    assert count(world, AdminLogEntry, AdminLogEntry.subject == "council") == 4
    # The diagrams' page still lists only diagram entries, and still renders.
    assert client.get("/definitions/").status_code == 200


def test_a_council_outside_the_readers_reach_is_not_found(council, app):
    council_id, _ids = council
    for username in ("hd.lc", "qlct.lc", "hd.qt-gl"):
        client = app.test_client()
        token = login(client, username)
        assert client.get(f"/councils/{council_id}").status_code == 404
        assert client.get(f"/councils/{council_id}/sessions/new").status_code == 404
        assert client.post(f"/councils/{council_id}/members", data={
            "username": "cb.qt-gl", "council_role": "member", "csrf_token": token}).status_code == 404
        assert "Hội đồng OCOP tỉnh Quảng Trị" not in client.get("/councils/").get_data(as_text=True)
    client = app.test_client()
    token = login(client, "uv1.hdqt")  # a member sees it, and may not change it
    assert client.get(f"/councils/{council_id}").status_code == 200
    assert client.post(f"/councils/{council_id}/members", data={
        "username": "cb.qt-gl", "council_role": "member", "csrf_token": token}).status_code == 403


def test_a_session_without_quorum_is_refused_then_opened_and_its_minutes_confirmed(council, world, app):
    council_id, ids = council
    products_waiting(world, 2)
    tasks = attendance_tasks(world)
    secretary = app.test_client()
    token = login(secretary, "hd.qt")
    page = secretary.get(f"/councils/{council_id}/sessions/new").get_data(as_text=True)
    assert page.count('name="task_id"') == 2 and page.count('name="present"') == 5 and 'id="quorum-live"' in page
    three = [ids[u] for u in ("ct.hdqt", "pct.hdqt", "hd.qt")]
    response = secretary.post(f"/councils/{council_id}/sessions", data={
        "task_id": tasks, "present": three, "held_on": "2026-03-10", "place": "Hội trường UBND tỉnh",
        "csrf_token": token})
    assert response.status_code == 400
    assert "Có mặt 3/5 thành viên (cần ít nhất 4)" in response.get_data(as_text=True)
    assert count(world, CouncilSession) == 0 and attendance_tasks(world) == tasks

    four = three + [ids["uv1.hdqt"]]
    response = secretary.post(f"/councils/{council_id}/sessions", data={
        "task_id": tasks, "present": four, "held_on": "2026-03-10", "place": "Hội trường UBND tỉnh",
        "csrf_token": token})
    assert response.status_code == 302 and attendance_tasks(world) == []
    minutes_url = response.headers["Location"]
    page = secretary.get(minutes_url).get_data(as_text=True)
    assert "Biên bản họp hội đồng" in page and 'data-present="1"' in page and 'data-present="0"' in page
    assert "Phạm Thị Hai" in page and page.count('class="product"') == 2 and "@media print" not in page
    assert 'data-form="sign-off"' not in page  # the secretary does not confirm

    chair = app.test_client()
    token = login(chair, "ct.hdqt")
    page = chair.get(minutes_url).get_data(as_text=True)
    assert 'data-form="sign-off"' in page and "Xác nhận biên bản" in page
    session_id = minutes_url.rstrip("/").rsplit("/", 1)[1]
    page = chair.post(f"/councils/sessions/{session_id}/sign-off", data={"notes": "Nhất trí", "csrf_token": token},
                      follow_redirects=True).get_data(as_text=True)
    assert "Đã xác nhận biên bản cho 2 sản phẩm" in page and page.count('data-sign-off="1"') == 2
    assert count(world, CouncilSession, CouncilSession.status == "closed") == 1
    outsider = app.test_client()
    login(outsider, "hd.lc")
    assert outsider.get(minutes_url).status_code == 404


def test_the_councils_pages_fit_a_phone(council, world, page):
    council_id, ids = council
    products_waiting(world, 1)
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in_browser(page, "hd.qt")
    page.goto(f"/councils/{council_id}/sessions/new")
    live = page.locator("#quorum-live")
    for user in ("ct.hdqt", "pct.hdqt", "uv1.hdqt"):
        page.check(f"input[name=present][value='{ids[user]}']")
    assert "Chưa đủ" in live.inner_text()
    page.check(f"input[name=present][value='{ids['hd.qt']}']")
    assert "Đủ điều kiện" in live.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.fill("input[name=place]", "Hội trường UBND tỉnh")
    page.locator("#open-session button[type=submit]").click()
    page.wait_for_load_state()
    assert "/councils/sessions/" in page.url
    for url in (page.url, f"/councils/{council_id}", "/councils/"):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, url
    assert count(world, Council) == 1


def test_the_minutes_page_shows_sheets_and_recusals(council, world, app):
    from datetime import date

    from programme import councils
    from tests.support.councils import actor
    council_id, ids = council
    instance_id, = products_waiting(world, 1, sheets=2)
    session_id = councils.open_session(world, actor(world, "hd.qt"), council_id, attendance_tasks(world),
                                       [ids[u] for u in ("ct.hdqt", "pct.hdqt", "uv1.hdqt", "hd.qt")],
                                       date(2026, 3, 10), "Hội trường")
    from programme.council_minutes import _items

    def sheet_task():
        with world.db.reading() as session:
            return session.scalar(select(InboxTask.id).where(InboxTask.form_key == "council_sheet"))
    # Hồ tiêu Gio Linh is scored on S10, whose A.1.2 lowest level has no printed points.
    items = _items("S10")
    world.complete_task(sheet_task(), {"recused": False, "levels": {i["id"]: i["levels"][0]["key"] for i in items},
                                       "eliminations": [], "comments": "Ghi chú"}, actor(world, "ct.hdqt"))
    world.complete_task(sheet_task(), {"recused": True, "conflict_reason": "Người nhà của chủ thể", "levels": {},
                                     "eliminations": [], "comments": ""}, actor(world, "pct.hdqt"))
    client = app.test_client()
    login(client, "kiemtoan")   # auditors read the minutes
    page = client.get(f"/councils/sessions/{session_id}").get_data(as_text=True)
    assert "Không chấm (xung đột lợi ích): Người nhà của chủ thể" in page and 'data-recused="1"' in page
    assert "Thành viên không chấm do xung đột lợi ích" in page and "Chưa nộp phiếu" in page
    assert 'data-form="sign-off"' not in page
    assert 'data-sheet="%d"' % ids["ct.hdqt"] in page and "(bảng điểm không in điểm; suy ra)" in page
