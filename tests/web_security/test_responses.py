"""Browser security of the web application, the responses: the security
headers on every kind of response, signed-in pages never cached, templates
without inline script (so the CSP can stay strict), uploads never served
as active content, user text always escaped. The requests (CSRF, cookies,
sessions, redirects) are in tests/web_security/test_requests.py; the shared
setting in tests/web_security/conftest.py."""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import Document, ProcessDefinition, Product
from testkit.web_login import signed_in

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "web" / "templates"
PRODUCT = "Hồ tiêu Gio Linh"  # the scene's product (conftest.py)


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
