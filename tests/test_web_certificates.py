"""The printable certificate (/certificates/<id>): who sees it (its
producer, the officers of its area chain, auditors, administrators;
anyone else a 404 like a certificate that does not exist), what it
prints (national heading, product, producer, address, stars, decision,
validity, number, a QR code to the absolute verification URL), a
producer's certificates on its portal, and the access rule's predicate
and SQL agreeing."""
import re
from datetime import date

import pytest
from sqlalchemy import select

from engine.access import load_actor
from programme.certificate_views import readable_certificate, seen_certificates
from storage.models import Producer, User
from testkit.web_login import login
from tests.support.app import make_app
from tests.support.certificates import SIGNER, list_certificate, make_certificate, product_id_of

TODAY = date(2026, 3, 2)
# "Hồ tiêu Gio Linh": Gio Mỹ commune, Gio Linh district, Quảng Trị province.
ALLOWED = ("htx.giomy", "cb.qt-gl-gm", "cb.qt-gl", "hd.qt-gl", "hd.qt", "qlct.qt", "tutvan.qt", "hd.trunguong",
           "kiemtoan", "admin")
REFUSED = ("cty.tramcamlo", "htx.ruoumansapa", "cb.qt-cl-ct", "cb.qt-gl-gc", "cb.qt-cl", "hd.qt-cl", "qlct.lc",
           "hd.lc", "cb.lc-sp")


@pytest.fixture
def app(world, db_url, tmp_path):
    """Many people sign in from one address here: the login rate limit is off."""
    return make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)


@pytest.fixture
def certificate(world):
    with world.db.transaction() as session:
        made = make_certificate(session, product_id_of(session, "Hồ tiêu Gio Linh"), stars=4,
                                issued_on=date(2025, 6, 10))
        list_certificate(session, made)
        return made


def _page(app, username, path):
    client = app.test_client()
    login(client, username)
    return client.get(path)


def test_who_sees_the_printable_certificate(world, app, certificate):
    path = f"/certificates/{certificate.id}"
    for username in ALLOWED:
        response = _page(app, username, path)
        assert response.status_code == 200, username
        assert certificate.number in response.get_data(as_text=True), username
    missing_path = f"/certificates/{certificate.id + 1000}"
    for username in REFUSED:
        response = _page(app, username, path)
        body = response.get_data(as_text=True)
        assert response.status_code == 404, username
        assert "Hồ tiêu" not in body and certificate.number not in body, username
        # Exactly what a certificate that does not exist answers.
        missing = _page(app, username, missing_path).get_data(as_text=True)
        assert body == missing, username
    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert _page(app, "admin", "/certificates/99999999999").status_code == 404


def test_what_the_certificate_prints(world, app, certificate):
    page = _page(app, "htx.giomy", f"/certificates/{certificate.id}").get_data(as_text=True)
    for text in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "GIẤY CHỨNG NHẬN SẢN PHẨM OCOP",
                 "ỦY BAN NHÂN DÂN TỈNH QUẢNG TRỊ", "Hồ tiêu Gio Linh", "đạt OCOP 4 sao", "★★★★",
                 "HTX Nông nghiệp Gio Mỹ", "Xã Gio Mỹ, Huyện Gio Linh, Tỉnh Quảng Trị", SIGNER,
                 "Từ 10/06/2025 đến 10/06/2028", certificate.number, "In giấy chứng nhận",
                 "certificate.css", "js/print.js"):
        assert text in page, text
    assert re.search(r"Số \d+/QĐ-UBND ngày 10/06/2025", page)
    # The QR code: an inline SVG drawn on the server, and the absolute URL it carries, in the text.
    verify_url = f"http://localhost/xac-minh/{certificate.verify_code}"
    assert re.search(r'<svg class="qr" role="img"[^>]*><path d="M[0-9,HVMz.]+', page)
    assert verify_url in page
    # No QR decoder here: drawing the verification URL again gives exactly the page's code.
    from web.certificates import qr_svg
    assert str(qr_svg(verify_url)) in page
    # No inline script or style: the page's Content-Security-Policy allows none.
    assert "<script>" not in page and "style=" not in page and "onclick" not in page


def test_the_print_layout_is_a4(world, app):
    css = app.test_client().get("/static/certificate.css").get_data(as_text=True)
    assert "@media print" in css and "size: A4" in css


def test_a_certificate_that_no_longer_holds_says_so(world, app):
    with world.db.transaction() as session:
        revoked = make_certificate(session, product_id_of(session, "Hồ tiêu Gio Linh"), issued_on=date(2024, 2, 1),
                                   status="revoked")
    page = _page(app, "qlct.qt", f"/certificates/{revoked.id}").get_data(as_text=True)
    assert "Giấy chứng nhận này không còn hiệu lực: Đã bị thu hồi." in page


def test_the_producers_portal_lists_its_certificates(world, app, certificate):
    own = _page(app, "htx.giomy", "/portal/").get_data(as_text=True)
    assert certificate.number in own and f'href="/certificates/{certificate.id}"' in own
    assert "Còn hiệu lực" in own
    assert certificate.number in _page(app, "cb.qt-gl-gm", "/portal/").get_data(as_text=True)
    other = _page(app, "cty.tramcamlo", "/portal/").get_data(as_text=True)
    assert certificate.number not in other and 'id="certificates"' not in other


def test_the_rule_and_its_sql_agree(world):
    with world.db.transaction() as session:
        made = [make_certificate(session, product_id_of(session, name), issued_on=date(2025, 1, 2))
                for name in ("Hồ tiêu Gio Linh", "Tinh dầu tràm Cam Lộ", "Rượu mận Sa Pa", "Cá khô Trung Giang")]
        certificate_ids = {c.id for c in made}
    with world.db.reading() as session:
        producer_ids = list(session.scalars(select(Producer.id)))
        for user_id, username in session.execute(select(User.id, User.username)).all():
            actor = load_actor(session, user_id)
            by_sql = {c.id for c in seen_certificates(session, actor, producer_ids, TODAY)}
            by_rule = {cid for cid in certificate_ids if readable_certificate(session, actor, cid, TODAY)}
            assert by_sql == by_rule, username
