"""Browser security over the whole web application: CSRF on every change
(forms and the API), cookies in production, the security headers on every
kind of response, templates without inline script (so the CSP can stay
strict), uploads never served as active content, no open redirect after
sign-in, sessions bound to their browser, user text always escaped."""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import func, select

from audit import checkpoints
from background.outbox import deliver_outbox
from storage.models import Document, Jurisdiction, ProcessDefinition, Product, User
from testkit.cycle import Cycle
from testkit.web_login import csrf_token, login
from tests.support.app import make_app
from tests.support.db_state import snapshot
from tests.support.product_records import PDF, notification_and_enrolment

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "web" / "templates"
NATIONAL_XML = (ROOT / "processes" / "ocop_cycle.bpmn").read_text(encoding="utf-8")
PRODUCT = "Hồ tiêu Gio Linh"


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: these properties belong to the web layer, not the database."""
    return f"sqlite:///{tmp_path / 'ocop.db'}"


@pytest.fixture
def app(world, db_url, tmp_path, audit_signing_key):
    checkpoints.create_key(audit_signing_key)
    application = make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)
    # Everything below relies on Flask-WTF's check being on, as in production.
    assert application.config.get("WTF_CSRF_ENABLED", True) is True
    return application


@pytest.fixture
def scene(world, app):
    """The product at the district's idea review, with one evidence file,
    one notification and one training enrolment."""
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    client = app.test_client()
    token = login(client, "htx.giomy")
    assert client.post(f"/portal/products/{cycle.product_id}/documents",
                       data={"csrf_token": token, "file": (io.BytesIO(PDF), "giay-phep.pdf")},
                       content_type="multipart/form-data").status_code == 302
    with world.db.transaction() as session:
        document = session.scalar(select(Document.id).where(Document.product_id == cycle.product_id))
        notification, enrolment = notification_and_enrolment(session, cycle, world.clock())
        officer = session.scalar(select(User.id).where(User.username == "cb.qt-cl"))
        central = session.scalar(select(Jurisdiction.id).where(Jurisdiction.level == "central"))
    deliver_outbox(world)
    return {"task": cycle.task("review_idea").id, "product": cycle.product_id, "instance": cycle.instance_id,
            "document": document, "notification": notification, "enrolment": enrolment, "officer": officer,
            "central": str(central)}


def signed_in(app, username: str):
    client = app.test_client()
    return client, login(client, username)


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


# --- security headers -------------------------------------------------------------------------

def _directives(csp: str) -> dict[str, list[str]]:
    directives = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_secure_headers(response, what: str) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy")
    assert csp, f"{what}: no CSP"
    directives = _directives(csp)
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts in (["'self'"], ["'none'"]), f"{what}: script-src {scripts}"
    assert not any("unsafe" in source for source in scripts), what
    assert directives.get("frame-ancestors") == ["'none'"], f"{what}: frame-ancestors {csp}"
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin-when-cross-origin"), what


def test_security_headers_on_every_kind_of_response(world, app, scene):
    anonymous = app.test_client()
    producer, _ = signed_in(app, "htx.giomy")
    officer, token = signed_in(app, "cb.qt-gl")
    auditor, _ = signed_in(app, "kiemtoan")
    manager, _ = signed_in(app, "qlct.qt")
    with world.db.transaction() as session:
        definition = session.scalar(select(ProcessDefinition.id).order_by(ProcessDefinition.id))
    responses = {
        "HTML page": (officer.get("/inbox/"), 200),
        "HTML task page": (officer.get(f"/inbox/tasks/{scene['task']}"), 200),
        "public page": (anonymous.get("/overview"), 200),
        "login page": (anonymous.get("/login"), 200),
        "redirect": (anonymous.get("/inbox/"), 302),
        "JSON": (anonymous.get("/healthz"), 200),
        "API JSON": (officer.get("/api/v1/tasks"), 200),
        "API error": (anonymous.get("/api/v1/tasks"), 401),
        "API 404": (officer.get("/api/v1/no-such-thing"), 404),
        "OpenAPI": (anonymous.get("/api/v1/openapi.json"), 200),
        "dashboard CSV": (manager.get("/dashboard/funnel.csv"), 200),
        "audit CSV": (auditor.get("/audit/export.csv"), 200),
        "audit JSON export": (auditor.get(f"/audit/instances/{scene['instance']}/export.json"), 200),
        "diagram XML": (auditor.get(f"/audit/instances/{scene['instance']}/diagram.bpmn"), 200),
        "BPMN download": (manager.get(f"/definitions/{definition}.bpmn"), 200),
        "calendar": (producer.get(f"/portal/enrolments/{scene['enrolment']}.ics"), 200),
        "evidence file": (producer.get(f"/portal/documents/{scene['document']}"), 200),
        "404 page": (officer.get("/no-such-page"), 404),
        "404 of an id": (officer.get("/portal/products/999999"), 404),
        "403 page": (officer.get("/admin/users"), 403),
        "405 page": (anonymous.get("/logout"), 405),
        "CSRF refusal": (officer.post(f"/inbox/tasks/{scene['task']}/claim"), 400),
        "422 form": (officer.post(f"/inbox/tasks/{scene['task']}", data={"csrf_token": token, "decision": "?"}),
                     422),
        "stylesheet": (anonymous.get("/static/site.css"), 200),
        "script": (anonymous.get("/static/js/score_sheet.js"), 200),
        "missing static file": (anonymous.get("/static/nope.js"), 404),
    }
    for what, (response, status) in responses.items():
        assert response.status_code == status, (what, response.status_code)
        assert_secure_headers(response, what)
        response.close()


def test_security_headers_on_a_server_error(world, app):
    """A crash answers a plain 500 page, headers and all, without a traceback."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("secret detail")
    app.add_url_rule("/__boom", "boom", boom)
    response = app.test_client().get("/__boom")
    assert response.status_code == 500 and "secret detail" not in response.get_data(as_text=True)
    assert_secure_headers(response, "500 page")


def test_signed_in_pages_are_not_stored_by_caches(world, app, scene):
    """Pages and data of a signed-in user are never kept by the browser or a
    proxy (the back button after signing out shows nothing); the static
    files keep their own caching."""
    client, _ = signed_in(app, "cb.qt-gl")
    for path in ("/inbox/", f"/inbox/tasks/{scene['task']}", "/api/v1/tasks", "/notifications/"):
        assert "no-store" in client.get(path).headers.get("Cache-Control", ""), path
    assert "no-store" not in client.get("/static/site.css").headers.get("Cache-Control", "")


# --- no inline script in the templates ----------------------------------------------------------

def test_templates_have_no_inline_script_handlers_or_styles():
    """The CSP allows scripts and styles only from files of this site; an
    inline script, an on*= handler, a javascript: URL or a style attribute
    would be blocked by the browser (or need the CSP weakened)."""
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(TEMPLATES)
        for match in re.finditer(r"<script\b([^>]*)>", text, re.I):
            if not re.search(r"\bsrc\s*=", match.group(1), re.I):
                problems.append(f"{name}: inline <script>")
        problems += [f"{name}: event handler {m.group(0)}"
                     for m in re.finditer(r"<[^>]*\s(on[a-z]+)\s*=", text, re.I)]
        problems += [f"{name}: javascript: URL" for _ in re.finditer(r"javascript\s*:", text, re.I)]
        problems += [f"{name}: <style> element" for _ in re.finditer(r"<style\b", text, re.I)]
        problems += [f"{name}: style attribute" for _ in re.finditer(r"<[^>]*\sstyle\s*=", text, re.I)]
        problems += [f"{name}: script from another host" for _ in re.finditer(
            r"<(?:script|link|img)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text, re.I)]
    assert TEMPLATES.is_dir() and not problems, problems


def test_the_check_finds_what_it_looks_for(tmp_path, monkeypatch):
    """The template check above on a page that breaks every rule."""
    bad = tmp_path / "bad.html"
    bad.write_text('<script>alert(1)</script><a href="javascript:x()" onclick="y()" style="color:red">'
                   '<script src="https://cdn.example/x.js"></script>', encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "TEMPLATES", tmp_path)
    with pytest.raises(AssertionError) as failed:
        test_templates_have_no_inline_script_handlers_or_styles()
    for problem in ("inline <script>", "event handler", "javascript: URL", "style attribute", "another host"):
        assert problem in str(failed.value)


# --- uploads are never active content ------------------------------------------------------------

ACTIVE = [
    ("trang.html", b"<html><body><script>alert(document.cookie)</script></body></html>", "type"),
    ("trang.htm", b"<script>alert(1)</script>", "type"),
    ("anh.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "type"),
    ("ma.js", b"alert(document.cookie)", "type"),
    ("trang.xhtml", b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>', "type"),
    ("ho-so.pdf.html", b"%PDF-1.4\n<script>alert(1)</script>", "type"),
    ("ho-so.pdf", b"<html><script>alert(1)</script></html>", "content"),
    ("anh.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "content"),
    ("anh.jpg", b"<html><script>alert(1)</script></html>", "content"),
]
MESSAGES = {"type": "Chỉ nhận tệp PDF, JPG, PNG, DOCX hoặc XLSX.",
            "content": "Nội dung tệp không đúng với phần mở rộng của tên tệp."}


@pytest.mark.parametrize("filename,data,reason", ACTIVE, ids=[name for name, _, _ in ACTIVE])
def test_active_content_is_refused_at_upload(world, app, filename, data, reason):
    client, token = signed_in(app, "htx.giomy")
    with world.db.transaction() as session:
        pid = session.scalar(select(Product.id).where(Product.name == PRODUCT))
    response = client.post(f"/portal/products/{pid}/documents", data={"csrf_token": token, "file": (
        io.BytesIO(data), filename)}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert MESSAGES[reason] in response.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 0
    assert not any(p.is_file() for p in Path(app.config["UPLOAD_DIR"]).rglob("*"))


@pytest.mark.parametrize("filename", ["bao-cao.pdf", "trang.html.pdf", 'x"; filename="evil.html.pdf'])
def test_a_pdf_with_an_html_body_is_only_ever_downloaded(world, app, filename):
    """A file that passes the check (PDF magic) but holds HTML is stored, and
    served as an attachment under a PDF type, nosniff, with a sandbox CSP:
    no browser renders it as a page of this site."""
    body = b"%PDF-1.4\n<html><body><script>alert(document.cookie)</script></body></html>"
    client, token = signed_in(app, "htx.giomy")
    with world.db.transaction() as session:
        pid = session.scalar(select(Product.id).where(Product.name == PRODUCT))
    assert client.post(f"/portal/products/{pid}/documents", data={"csrf_token": token, "file": (
        io.BytesIO(body), filename)}, content_type="multipart/form-data").status_code == 302
    with world.db.transaction() as session:
        document = session.scalar(select(Document).where(Document.product_id == pid))
    response = client.get(f"/portal/documents/{document.id}")
    assert response.status_code == 200 and response.data == body
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and disposition.count("filename=") == 1
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    directives = _directives(response.headers["Content-Security-Policy"])
    assert "sandbox" in directives and directives["default-src"] == ["'none'"]
    assert_secure_headers(response, "evidence file")


# --- user text is escaped everywhere -----------------------------------------------------------

def test_user_text_is_escaped_in_pages(world, app):
    """A producer names its product with markup; every page that shows the
    name shows it as text."""
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    client, token = signed_in(app, "htx.giomy")
    with world.db.transaction() as session:
        producer = session.scalar(select(Product.producer_id).where(Product.name == PRODUCT))
    response = client.post("/portal/products/new", data={"csrf_token": token, "producer_id": str(producer),
                                                          "name": payload, "group_code": "S10",
                                                          "registration_form": "01"})
    assert response.status_code == 302
    pid = int(response.headers["Location"].rsplit("/", 1)[-1])
    officer, _ = signed_in(app, "cb.qt-gl-gm")
    auditor, _ = signed_in(app, "kiemtoan")
    pages = [client.get(f"/portal/products/{pid}"), client.get("/portal/"), client.get("/inbox/"),
             officer.get("/portal/"), auditor.get("/audit/")]
    for page in pages:
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert" in pages[0].get_data(as_text=True)
