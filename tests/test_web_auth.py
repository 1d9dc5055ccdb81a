"""Signing in and out; sessions and CSRF."""
from testkit.web_login import csrf_token, login


def test_login_logout(client):
    token = login(client, "cb.qt-gl")
    assert client.get("/").headers["Location"].endswith("/inbox/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").headers["Location"].endswith("/overview")


def test_wrong_password_and_unknown_user_look_the_same(client):
    token = csrf_token(client)
    wrong = client.post("/login", data={"username": "cb.qt-gl", "password": "nope-nope", "csrf_token": token})
    unknown = client.post("/login", data={"username": "ghost", "password": "nope-nope", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401


def test_login_needs_the_csrf_token(client):
    response = client.post("/login", data={"username": "cb.qt-gl", "password": "ocop-demo"})
    assert response.status_code == 400


def test_login_attempts_are_rate_limited(client):
    token = csrf_token(client)
    codes = [client.post("/login", data={"username": "cb.qt-gl", "password": "wrong-pass", "csrf_token": token})
             .status_code for _ in range(12)]
    assert codes[:10] == [401] * 10 and codes[-1] == 429


def test_session_cookie_flags(client):
    login(client, "cb.qt-gl")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_no_open_redirect_after_login(client):
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example/", data={
        "username": "cb.qt-gl", "password": "ocop-demo", "csrf_token": token})
    assert response.headers["Location"] == "/"
