"""Browser security of the web application, the requests: CSRF on every
change (forms and the API), no cross-origin reads, cookies and secrets in
production, sessions bound to their browser and ended by signing out
(copied, remembered and forged cookies included), no open redirect after
sign-in. What the application answers (headers, caching, templates,
uploads, escaping) is in tests/web_security/test_responses.py; the shared
setting in tests/web_security/conftest.py."""
from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from storage.models import User
from testkit.web_login import csrf_token, signed_in
from tests.support.app import make_app
from tests.support.db_state import snapshot
from tests.support.product_records import PDF

ROOT = Path(__file__).resolve().parents[2]
NATIONAL_XML = (ROOT / "processes" / "ocop_cycle.bpmn").read_text(encoding="utf-8")


# --- CSRF ----------------------------------------------------------------------------------

# (who, path, form) for changes a cross-site page would love to make. Each one
# succeeds with the right token (checked below), so a 400 without it is the
# CSRF check and nothing else.
FORM_POSTS = [
    ("cb.qt-gl", "/inbox/tasks/{task}", {"decision": "accept"}),
    ("cb.qt-gl", "/inbox/tasks/{task}/draft", {"reasons": "nháp"}),
    ("cb.qt-gl", "/inbox/tasks/{task}/claim", {}),
    ("qlct.qt", "/inbox/tasks/{task}/reassign", {"username": "cb.qt-gl"}),
    ("htx.giomy", "/portal/products/{product}/documents", "upload"),
    ("admin", "/admin/users/{officer}/roles", {"role": "auditor", "jurisdiction_id": "{central}"}),
    ("admin", "/admin/users/{officer}/active", {"active": "0"}),
    ("admin", "/admin/users/{officer}/tokens", {"name": "tích hợp"}),
    ("admin", "/definitions/deploy", {"xml": NATIONAL_XML + "<!-- v2 -->", "name": "ocop_cycle",
                                      "message": "cross-site"}),
    ("htx.giomy", "/notifications/read-all", {}),
    ("kiemtoan", "/audit/checkpoints/", {}),
]


def _form(data, scene, token=None):
    if data == "upload":
        data = {"file": (io.BytesIO(PDF), "ho-so.pdf")}
    data = {key: value.format(**scene) if re.fullmatch(r"\{\w+\}", str(value)) else value
            for key, value in data.items()}
    return dict(data, **({"csrf_token": token} if token is not None else {}))


@pytest.mark.parametrize("who,template,data", FORM_POSTS, ids=[f"{t} as {w}" for w, t, _ in FORM_POSTS])
def test_cross_site_form_posts_are_refused(world, app, scene, who, template, data):
    """A form posted from another site carries the session cookie but not the
    page's token: no token, a token from the attacker's own session, or a
    forged one are all 400, and nothing changes. The same post with the
    page's token goes through."""
    path = template.format(**scene)
    client, token = signed_in(app, who)
    attacker, attackers_token = signed_in(app, "cty.tramcamlo")  # a valid token, of another session
    anonymous_token = csrf_token(app.test_client())
    before = snapshot(world)
    for label, forged in (("no token", None), ("another session's token", attackers_token),
                          ("an anonymous session's token", anonymous_token), ("garbage", "x" * 40)):
        response = client.post(path, data=_form(data, scene, forged), content_type="multipart/form-data")
        assert response.status_code == 400, (label, response.status_code)
        assert "CSRF" in response.get_data(as_text=True) or "csrf" in response.get_data(as_text=True).lower()
        assert snapshot(world) == before, label
    # A cross-site JSON post cannot set the header; a same-site script can.
    allowed = client.post(path, data=_form(data, scene, token), content_type="multipart/form-data")
    assert allowed.status_code in (200, 201, 302), allowed.status_code
    assert snapshot(world) != before


API_CHANGES = [
    ("cb.qt-gl", "POST", "/api/v1/tasks/{task}/claim", {}),
    ("cb.qt-gl", "POST", "/api/v1/tasks/{task}/complete", {"decision": "accept"}),
    ("qlct.qt", "POST", "/api/v1/tasks/{task}/unclaim", {}),
    ("htx.giomy", "POST", "/api/v1/products/{product}/start", {}),
    ("htx.giomy", "POST", "/api/v1/tokens", {"name": "kịch bản"}),
]


@pytest.mark.parametrize("who,method,template,body", API_CHANGES, ids=[f"{m} {t}" for _, m, t, _ in API_CHANGES])
def test_session_api_changes_need_the_csrf_header(world, app, scene, who, method, template, body):
    """The API authenticated by the session cookie refuses changes without
    X-CSRFToken (or with another session's token): 403 csrf_failed, nothing
    changed. Reads need no token."""
    path = template.format(**scene)
    client, token = signed_in(app, who)
    _other, others_token = signed_in(app, "cty.tramcamlo")
    before = snapshot(world)
    for headers in ({}, {"X-CSRFToken": others_token}, {"X-CSRFToken": ""}, {"X-CSRF-Token": "x" * 40}):
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code == 403, (headers, response.status_code)
        assert response.get_json()["error"]["code"] == "csrf_failed"
        assert snapshot(world) == before
    # A form-encoded cross-site post (what an HTML form can send) is refused the same way.
    assert client.post(path, data=body).status_code == 403
    assert client.get("/api/v1/tasks").status_code == 200
    # With the header (a same-site script) the change goes through.
    response = client.open(path, method=method, json=body, headers={"X-CSRFToken": token})
    assert response.status_code < 400 or response.status_code == 409, response.get_json()


def test_the_token_revocation_needs_the_csrf_header_too(world, app):
    client, token = signed_in(app, "cb.qt-gl")
    created = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRFToken": token}).get_json()
    assert client.delete(f"/api/v1/tokens/{created['id']}").status_code == 403
    assert client.get("/api/v1/tokens").get_json()["tokens"][0]["revoked_at"] is None
    assert client.delete(f"/api/v1/tokens/{created['id']}", headers={"X-CSRFToken": token}).status_code == 200


def test_bearer_token_calls_need_no_csrf_token_and_ignore_cookies(world, app, scene):
    """A token is sent by a program, never added by a browser on its own:
    no CSRF token is needed. A request carrying the header is judged by the
    token alone: a bad token with a valid session cookie is 401."""
    client, token = signed_in(app, "cb.qt-gl")
    secret = client.post("/api/v1/tokens", json={"name": "tích hợp"}, headers={"X-CSRFToken": token}
                         ).get_json()["token"]
    bearer = app.test_client(use_cookies=False)
    claimed = bearer.post(f"/api/v1/tasks/{scene['task']}/claim", headers={"Authorization": f"Bearer {secret}"})
    assert claimed.status_code == 200 and claimed.get_json()["task"]["assignee_id"] is not None
    forged = client.post(f"/api/v1/tasks/{scene['task']}/unclaim", headers={
        "Authorization": "Bearer ocop_not-a-token", "X-CSRFToken": token})
    assert forged.status_code == 401 and forged.get_json()["error"]["code"] == "unauthenticated"
    # A token cannot mint further tokens.
    assert bearer.post("/api/v1/tokens", json={"name": "y"}, headers={"Authorization": f"Bearer {secret}"}
                       ).status_code == 403


def test_no_cross_origin_reads(world, app):
    """No CORS: a page of another origin gets no Access-Control-Allow-* header
    on a read or a preflight."""
    client, _token = signed_in(app, "cb.qt-gl")
    origin = {"Origin": "https://evil.example"}
    for response in (client.get("/api/v1/tasks", headers=origin),
                     client.options("/api/v1/tasks", headers={**origin, "Access-Control-Request-Method": "POST"})):
        assert not [h for h in response.headers.keys() if h.lower().startswith("access-control-")]


# --- cookies and secrets in production ------------------------------------------------------

LONG_SECRET = "s" * 48


def _set_cookie(response, name: str) -> str | None:
    return next((value for key, value in response.headers.items()
                 if key == "Set-Cookie" and value.startswith(f"{name}=")), None)


def test_production_cookies_are_secure_httponly_and_lax(world, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("OCOP_ENV", "production")
    monkeypatch.setenv("OCOP_SECRET_KEY", LONG_SECRET)
    app = make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)
    assert app.secret_key == LONG_SECRET
    client = app.test_client()
    token = csrf_token(client)
    # Over HTTPS Flask-WTF also wants a same-site Referer.
    response = client.post("/login", data={"username": "cb.qt-gl", "password": "ocop-demo", "csrf_token": token},
                           base_url="https://localhost", headers={"Referer": "https://localhost/login"})
    assert response.status_code == 302
    cookie = _set_cookie(response, "session")
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert "secure" in attributes and "httponly" in attributes
    assert attributes["samesite"].lower() == "samesite=lax"
    # Sign-in never sets a long-lived remember-me cookie (there is no "remember me"):
    # the session cookie ends with the browser, and the server refuses it after
    # PERMANENT_SESSION_LIFETIME at the latest.
    assert _set_cookie(response, app.config.get("REMEMBER_COOKIE_NAME", "remember_token")) is None
    assert app.config["REMEMBER_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_HTTPONLY"]
    # HTTPS only from the first visit on.
    assert "max-age=" in client.get("/login", base_url="https://localhost").headers["Strict-Transport-Security"]


def test_development_cookies_are_httponly_and_lax_but_not_secure(world, app):
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login", data={"username": "cb.qt-gl", "password": "ocop-demo", "csrf_token": token})
    cookie = _set_cookie(response, "session").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert "Strict-Transport-Security" not in client.get("/login").headers


@pytest.mark.parametrize("secret", [None, "", "short", "x" * 31])
def test_production_refuses_to_start_without_a_long_secret(world, db_url, tmp_path, monkeypatch, secret):
    monkeypatch.setenv("OCOP_ENV", "production")
    if secret is None:
        monkeypatch.delenv("OCOP_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("OCOP_SECRET_KEY", secret)
    with pytest.raises(RuntimeError, match="OCOP_SECRET_KEY"):
        make_app(world, db_url, tmp_path)
    monkeypatch.setenv("OCOP_SECRET_KEY", "x" * 32)
    assert make_app(world, db_url, tmp_path).secret_key == "x" * 32


def test_a_session_cookie_does_not_work_from_another_browser(world, app):
    """Flask-Login's strong session protection: the cookie replayed with
    another User-Agent is a signed-out visitor."""
    client, _token = signed_in(app, "cb.qt-gl")
    cookie = client.get_cookie("session").value
    assert client.get("/inbox/").status_code == 200
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    response = thief.get("/inbox/", headers={"User-Agent": "Mozilla/5.0 (thief)"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_signing_out_ends_the_session_in_this_browser(world, app):
    client, token = signed_in(app, "cb.qt-gl")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    response = client.get("/inbox/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def _user_id(world, username: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(User.id).where(User.username == username))


def _refused(client) -> None:
    """The client is a signed-out visitor: pages send it to sign in, the API
    answers 401."""
    response = client.get("/inbox/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/api/v1/tasks").status_code == 401


def _session_cookie(app, client, data: dict) -> str:
    """A session cookie holding `data`, signed with the application's secret
    as Flask would sign it, and bound to the client's browser (the identifier
    Flask-Login's strong session protection checks)."""
    with app.test_request_context(environ_base=client.environ_base):
        identifier = app.login_manager._session_identifier_generator()
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.dumps({"_fresh": True, "_id": identifier, **data})


def _remember_cookie(app, value: str) -> str:
    """A remember-me cookie naming `value`, as Flask-Login's login_user(...,
    remember=True) would set it (the application offers no "remember me",
    but Flask-Login honours such a cookie, so it must die the same way)."""
    from flask_login.utils import encode_cookie
    with app.test_request_context():
        return encode_cookie(value)


def test_a_copied_session_cookie_dies_with_the_sign_out(world, app):
    """Signing out ends every session of the user ("sign out everywhere"): a
    copy of the cookie taken before (malware, a shared machine, a proxy) and
    the user's other browsers are signed out too, for pages and the API."""
    client, token = signed_in(app, "cb.qt-gl")
    other_browser, _other_token = signed_in(app, "cb.qt-gl")
    someone_else, _token = signed_in(app, "cb.qt-cl")
    copy = client.get_cookie("session").value
    replay = app.test_client()
    replay.set_cookie("session", copy)
    assert replay.get("/inbox/").status_code == 200 and other_browser.get("/inbox/").status_code == 200

    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    for dead in (client, other_browser):
        _refused(dead)
    replay = app.test_client()
    replay.set_cookie("session", copy)
    _refused(replay)
    assert someone_else.get("/inbox/").status_code == 200  # another user's session lives on

    # Signing in again gives a new session that works, while the copy stays dead.
    again, _token = signed_in(app, "cb.qt-gl")
    assert again.get("/inbox/").status_code == 200
    _refused(replay)


def test_a_remember_me_cookie_dies_with_the_sign_out(world, app):
    user_id = _user_id(world, "cb.qt-gl")
    remembered = _remember_cookie(app, f"{user_id}.0")
    browser = app.test_client()
    browser.set_cookie("remember_token", remembered)
    assert browser.get("/inbox/").status_code == 200  # a valid one signs the browser in

    client, token = signed_in(app, "cb.qt-gl")  # signing out anywhere ends it
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    _refused(browser)
    fresh = app.test_client()
    fresh.set_cookie("remember_token", remembered)
    _refused(fresh)


def test_sessions_from_before_a_deactivation_stay_dead_after_reactivation(world, app):
    officer, _token = signed_in(app, "cb.qt-cl")
    copy = officer.get_cookie("session").value
    admin, token = signed_in(app, "admin")
    user_id = _user_id(world, "cb.qt-cl")
    assert admin.post(f"/admin/users/{user_id}/active", data={"csrf_token": token, "active": "0"}).status_code == 302
    _refused(officer)
    assert admin.post(f"/admin/users/{user_id}/active", data={"csrf_token": token, "active": "1"}).status_code == 302
    _refused(officer)
    replay = app.test_client()
    replay.set_cookie("session", copy)
    _refused(replay)
    again, _token = signed_in(app, "cb.qt-cl")  # the reactivated account signs in afresh
    assert again.get("/inbox/").status_code == 200


def test_a_session_in_the_current_form_signs_in(world, app):
    """The forged cookies below are made right: this one names the user at
    their current epoch, and is signed in."""
    client = app.test_client()
    client.set_cookie("session", _session_cookie(app, client, {"_user_id": f"{_user_id(world, 'cb.qt-gl')}.0"}))
    assert client.get("/inbox/").status_code == 200
    assert client.get("/api/v1/tasks").status_code == 200


@pytest.mark.parametrize("value", [
    "{id}",  # a session from before epochs: signed out, not an error
    "{id}.1", "{id}.99999999999", "{id}.2147483647", "{id}.-1", "{id}.01", "{id}.", "{id}.0.0", "{id}.x",
    " {id}.0", "{id}.0 ", "{id}.0\n", "{id},0", "+{id}.0", "0{id}.0", "{id}\x00.0",
    "abc", "", ".", ".0", "1.x", "0.0", "-1.0", "99999999999.0", "2147483648.0", "99999999999999999999.0",
    "١.٠", "².0", "１.０", "1e3.0", "0x1.0", "None",
    1, 1.5, True, ["{id}", 0], {"id": "{id}"},
])
def test_a_malformed_session_user_is_a_signed_out_visitor(world, app, value):
    """Whatever a session's user id holds (a cookie forged with the secret, an
    old session), it is anonymous: never a 500, never someone."""
    user_id = str(_user_id(world, "cb.qt-gl"))

    def filled(item):
        if isinstance(item, str):
            return item.replace("{id}", user_id)
        if isinstance(item, list):
            return [filled(part) for part in item]
        if isinstance(item, dict):
            return {key: filled(part) for key, part in item.items()}
        return item

    for remember in (False, True):
        client = app.test_client()
        if remember:
            if not isinstance(value, str):
                continue
            client.set_cookie("remember_token", _remember_cookie(app, filled(value)))
        else:
            client.set_cookie("session", _session_cookie(app, client, {"_user_id": filled(value)}))
        _refused(client)


# --- open redirects --------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "/\\evil.example", "/\\/evil.example", "\\\\evil.example",
    "/%5Cevil.example", "/\t/evil.example", "/\n/evil.example", "http:/evil.example", "javascript:alert(1)",
    "/%09/evil.example", " //evil.example",
])
def test_no_open_redirect_after_sign_in(app, target):
    """Whatever `next` says, the browser stays on this site. Browsers read a
    backslash as a slash and drop tabs and newlines, so "/\\evil.example"
    would be "//evil.example": another host."""
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login", query_string={"next": target}, data={
        "username": "cb.qt-gl", "password": "ocop-demo", "csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "\\" not in location and not re.search(r"[\x00-\x20]", location), location
    resolved = urlsplit(urljoin("https://ocop.example/login", location.replace("\\", "/")))
    assert resolved.netloc == "ocop.example" and resolved.scheme == "https", location


def test_a_local_next_is_kept(app):
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login?next=/inbox/%3Fstep%3D2", data={
        "username": "cb.qt-gl", "password": "ocop-demo", "csrf_token": token})
    assert response.headers["Location"] == "/inbox/?step=2"
