"""Administration pages: users, roles per area, deactivation, API tokens."""
import re

from sqlalchemy import select

from storage.models import ApiToken, Jurisdiction, User
from testkit.web_login import csrf_token, login

NEW_PASSWORD = "mat-khau-moi-2026"


def _area_id(world, code: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))


def _user(world, username: str) -> User:
    with world.db.transaction() as session:
        return session.scalar(select(User).where(User.username == username))


def _sign_in(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client)})


def test_only_administrators_get_in(client):
    assert client.get("/admin/users").status_code == 302  # to the sign-in page
    login(client, "cb.qt-gl")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/users/new").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    login(client, "kiemtoan")
    assert client.get("/admin/users").status_code == 403


def test_user_list_shows_roles_areas_and_producers(client):
    login(client, "admin")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "cb.qt-gl" in page and "Cán bộ OCOP huyện" in page and "Huyện Gio Linh" in page
    assert "HTX Nông nghiệp Gio Mỹ" in page  # htx.giomy owns a producer, not a role
    assert 'href="/admin/users/new"' in page


def test_admin_creates_an_officer_who_signs_in_to_the_inbox(world, client):
    token = login(client, "admin")
    form = client.get("/admin/users/new").get_data(as_text=True)
    assert 'name="csrf_token"' in form and "<script" not in form and "style=" not in form
    response = client.post("/admin/users/new", data={
        "csrf_token": token, "username": "CB.Moi", "full_name": "Cán bộ Mới", "password": NEW_PASSWORD,
        "role": "commune_officer", "jurisdiction_id": str(_area_id(world, "QT-GL-GC"))})
    assert response.status_code == 302
    created = _user(world, "cb.moi")
    assert created is not None and created.full_name == "Cán bộ Mới"
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Cán bộ OCOP xã" in detail and "Xã Gio Châu" in detail

    other = client.application.test_client()
    assert _sign_in(other, "cb.moi", NEW_PASSWORD).status_code == 302
    landing = other.get("/")
    assert landing.headers["Location"].endswith("/inbox/")
    assert other.get("/inbox/").status_code == 200


def test_wrong_level_for_a_role_is_refused_with_a_message(world, client):
    token = login(client, "admin")
    response = client.post("/admin/users/new", data={
        "csrf_token": token, "username": "cb.sai", "full_name": "Sai cấp", "password": NEW_PASSWORD,
        "role": "district_officer", "jurisdiction_id": str(_area_id(world, "QT-GL-GC"))})  # a commune
    assert response.status_code == 422
    assert "phải gán cho một địa bàn cấp huyện" in response.get_data(as_text=True)
    assert _user(world, "cb.sai") is None  # nothing half-made

    # The same rule when adding a role to an existing account.
    officer = _user(world, "cb.qt-cl")
    response = client.post(f"/admin/users/{officer.id}/roles", data={
        "csrf_token": token, "role": "province_council", "jurisdiction_id": str(_area_id(world, "QT-CL"))})
    assert response.status_code == 422
    assert "phải gán cho một địa bàn cấp tỉnh" in response.get_data(as_text=True)


def test_short_password_and_taken_username_are_refused(client):
    token = login(client, "admin")
    short = client.post("/admin/users/new", data={"csrf_token": token, "username": "ngan",
                                                  "full_name": "Ngắn", "password": "1234567"})
    assert short.status_code == 422 and "ít nhất 8 ký tự" in short.get_data(as_text=True)
    taken = client.post("/admin/users/new", data={"csrf_token": token, "username": "cb.qt-gl",
                                                  "full_name": "Trùng", "password": NEW_PASSWORD})
    assert taken.status_code == 422 and "đã có người dùng" in taken.get_data(as_text=True)


def test_assign_and_remove_a_role(world, client):
    token = login(client, "admin")
    officer = _user(world, "cb.qt-cl")
    response = client.post(f"/admin/users/{officer.id}/roles", data={
        "csrf_token": token, "role": "district_council", "jurisdiction_id": str(_area_id(world, "QT-CL"))})
    assert response.status_code == 302
    page = client.get(f"/admin/users/{officer.id}").get_data(as_text=True)
    assert "Hội đồng đánh giá cấp huyện" in page
    removal = re.findall(rf'action="(/admin/users/{officer.id}/roles/\d+/remove)"', page)
    assert len(removal) == 2
    for action in removal:
        assert client.post(action, data={"csrf_token": token}).status_code == 302
    assert "Chưa có vai trò nào" in client.get(f"/admin/users/{officer.id}").get_data(as_text=True)


def test_posts_need_the_csrf_token(world, client):
    login(client, "admin")
    officer = _user(world, "cb.qt-cl")
    assert client.post(f"/admin/users/{officer.id}/active", data={"active": "0"}).status_code == 400
    assert _user(world, "cb.qt-cl").is_active


def test_deactivated_user_cannot_sign_in_and_loses_their_session(world, client):
    officer_client = client.application.test_client()
    login(officer_client, "cb.qt-cl")
    assert officer_client.get("/inbox/").status_code == 200

    token = login(client, "admin")
    officer = _user(world, "cb.qt-cl")
    assert client.post(f"/admin/users/{officer.id}/active", data={"csrf_token": token, "active": "0"}
                       ).status_code == 302
    assert "Đã khoá" in client.get("/admin/users").get_data(as_text=True)

    assert officer_client.get("/").headers["Location"].endswith("/overview")  # session no longer signed in
    assert _sign_in(client.application.test_client(), "cb.qt-cl", "ocop-demo").status_code == 401

    client.post(f"/admin/users/{officer.id}/active", data={"csrf_token": token, "active": "1"})
    assert _sign_in(client.application.test_client(), "cb.qt-cl", "ocop-demo").status_code == 302
    # The session from before the deactivation does not come back with the account.
    assert officer_client.get("/").headers["Location"].endswith("/overview")


def test_admin_cannot_lock_themselves_out(world, client):
    token = login(client, "admin")
    me = _user(world, "admin")
    client.post(f"/admin/users/{me.id}/active", data={"csrf_token": token, "active": "0"})
    assert _user(world, "admin").is_active
    page = client.get(f"/admin/users/{me.id}").get_data(as_text=True)
    action = re.search(rf'action="(/admin/users/{me.id}/roles/\d+/remove)"', page).group(1)
    client.post(action, data={"csrf_token": token})
    assert client.get("/admin/users").status_code == 200  # still an administrator


def test_admin_issues_and_revokes_an_api_token(world, client):
    token = login(client, "admin")
    officer = _user(world, "cb.qt-gl")
    page = client.post(f"/admin/users/{officer.id}/tokens", data={"csrf_token": token, "name": "báo cáo"}
                       ).get_data(as_text=True)
    secret = re.search(r"<code data-new-token>([^<]+)</code>", page).group(1)
    assert client.application.test_client().get(
        "/api/v1/tasks", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    # Shown once: the next view of the page does not have it.
    assert secret not in client.get(f"/admin/users/{officer.id}").get_data(as_text=True)
    with world.db.transaction() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.user_id == officer.id))
        assert row.token_sha256 != secret and secret not in row.token_sha256
    client.post(f"/admin/users/{officer.id}/tokens/{row.id}/revoke", data={"csrf_token": token})
    assert client.application.test_client().get(
        "/api/v1/tasks", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
