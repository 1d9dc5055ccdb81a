"""The public verification page (/xac-minh/<code>, what a certificate's QR
code opens) and the public product page (/san-pham/<id>): what they say for
each status of a certificate, what they never say, and that a code naming
no certificate -- malformed or well formed -- gets the same 404 page."""
import re
import secrets
from datetime import date

import pytest
from sqlalchemy import select

from programme.certificate_views import certificate_by_code, public_product
from tests.support.certificates import SIGNER, legacy_listing, list_certificate, make_certificate, product_id_of

TODAY = date(2026, 3, 2)


@pytest.fixture
def client(app):
    return app.test_client()


def _certificate(world, name="Hồ tiêu Gio Linh", list_it=True, **kwargs):
    with world.db.transaction() as session:
        certificate = make_certificate(session, product_id_of(session, name), **kwargs)
        if list_it:
            list_certificate(session, certificate)
        return certificate


def _status_line(page: str) -> str:
    """The status paragraph's text, tags and spaces collapsed."""
    match = re.search(r'<section class="card" id="verification">\s*<p>(.*?)</p>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_a_valid_certificate_verifies(world, client):
    certificate = _certificate(world, stars=4, issued_on=date(2025, 6, 10))
    response = client.get(f"/xac-minh/{certificate.verify_code}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert _status_line(page) == "Còn hiệu lực"
    for text in (certificate.number, "Hồ tiêu Gio Linh", "HTX Nông nghiệp Gio Mỹ", "Tỉnh Quảng Trị", "4 sao",
                 "10/06/2025", "10/06/2028", SIGNER, "Ủy ban nhân dân tỉnh"):
        assert text in page, text
    assert re.search(r"Số \d+/QĐ-UBND ngày 10/06/2025", page)
    assert f"/san-pham/{certificate.product_id}" in page
    # In English, the same facts in English words.
    english = client.get(f"/xac-minh/{certificate.verify_code}?lang=en").get_data(as_text=True)
    assert "Valid" in _status_line(english) and "10 Jun 2028" in english


def test_each_status_in_plain_vietnamese(world, client):
    expired = _certificate(world, "Gạo hữu cơ Gio Mỹ", issued_on=date(2023, 1, 10), status="expired")
    passed = _certificate(world, "Mật ong rừng Gio Sơn", issued_on=date(2023, 3, 1))  # valid until yesterday
    revoked = _certificate(world, "Tinh dầu tràm Cam Lộ", issued_on=date(2024, 2, 1), status="revoked")
    with world.db.transaction() as session:
        product_id = product_id_of(session, "Rượu mận Sa Pa")
        old = make_certificate(session, product_id, issued_on=date(2023, 6, 1))
        new = make_certificate(session, product_id, stars=4, issued_on=date(2025, 12, 1), kind="upgraded",
                               previous=old)
        old_code, new_number = old.verify_code, new.number
    with world.db.reading() as session:
        found = certificate_by_code(session, revoked.verify_code, TODAY)
        revocation_number = found.revocation_number
    assert _status_line(client.get(f"/xac-minh/{expired.verify_code}").get_data(as_text=True)) \
        == "Hết hiệu lực sau ngày 10/01/2026"
    assert _status_line(client.get(f"/xac-minh/{passed.verify_code}").get_data(as_text=True)) \
        == "Hết hiệu lực sau ngày 01/03/2026"
    assert _status_line(client.get(f"/xac-minh/{revoked.verify_code}").get_data(as_text=True)) \
        == f"Đã bị thu hồi theo Quyết định số {revocation_number} ngày 31/01/2025"
    assert _status_line(client.get(f"/xac-minh/{old_code}").get_data(as_text=True)) \
        == f"Đã được thay thế bằng giấy chứng nhận số {new_number}"
    # A certificate that no longer holds does not link to a product page.
    assert "/san-pham/" not in client.get(f"/xac-minh/{revoked.verify_code}").get_data(as_text=True)


def test_a_code_naming_nothing_answers_the_same_404(world, client):
    certificate = _certificate(world)
    assert client.get(f"/xac-minh/{certificate.verify_code}").status_code == 200
    codes = [secrets.token_urlsafe(16)[:22],          # well formed, not there
             certificate.verify_code[:-1] + ("A" if certificate.verify_code[-1] != "A" else "B"),
             "abc", "x" * 200, "1' OR '1'='1", certificate.number.replace("/", "-"), "%C3%A9"]
    bodies = set()
    for code in codes:
        response = client.get(f"/xac-minh/{code}")
        assert response.status_code == 404, code
        body = response.get_data(as_text=True)
        assert "Không tìm thấy giấy chứng nhận" in body
        assert "Hồ tiêu" not in body and certificate.number not in body
        bodies.add(body)
    assert len(bodies) == 1  # nothing tells a malformed code from one that is not there
    # The form: the same page for a wrong code; a right one goes to its page.
    form_missing = client.get("/xac-minh", query_string={"ma": "abc"})
    assert form_missing.status_code == 404 and form_missing.get_data(as_text=True) in bodies
    assert client.get("/xac-minh", query_string={"ma": codes[0]}).get_data(as_text=True) in bodies
    found = client.get("/xac-minh", query_string={"ma": f" {certificate.verify_code} "})
    assert found.status_code == 302 and found.headers["Location"].endswith(f"/xac-minh/{certificate.verify_code}")
    assert client.get("/xac-minh").status_code == 200


def test_the_verification_form_is_rate_limited(world, client):
    statuses = [client.get("/xac-minh", query_string={"ma": secrets.token_urlsafe(16)[:22]}).status_code
                for _ in range(12)]
    assert statuses[:10] == [404] * 10 and statuses[-1] == 429
    assert client.get("/xac-minh").status_code == 200  # the empty form is not counted


def test_the_public_product_page(world, client):
    certificate = _certificate(world, stars=4, issued_on=date(2025, 6, 10))
    response = client.get(f"/san-pham/{certificate.product_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in ("Hồ tiêu Gio Linh", "Gia vị khác", "HTX Nông nghiệp Gio Mỹ", "Hợp tác xã", "Xã Gio Mỹ",
                 "Huyện Gio Linh", "Tỉnh Quảng Trị", "★★★★", certificate.number, "10/06/2025", "10/06/2028",
                 "Điểm bán sản phẩm OCOP", "Sàn thương mại điện tử", f"/xac-minh/{certificate.verify_code}",
                 "photo-placeholder"):
        assert text in page, text
    # Nothing private: no scores, sheets, officers, signer, files.
    for text in ("điểm", "Điểm trung bình", SIGNER, "Cán bộ", "Hội đồng", "/portal/documents", "<img"):
        assert text not in page.replace("Điểm bán", ""), text


def test_a_product_without_a_valid_certificate_has_no_public_page(world, client):
    revoked = _certificate(world, "Tinh dầu tràm Cam Lộ", issued_on=date(2025, 1, 5), status="revoked")
    expired = _certificate(world, "Gạo hữu cơ Gio Mỹ", issued_on=date(2023, 3, 1))
    with world.db.transaction() as session:
        never = product_id_of(session, "Cá khô Trung Giang")
    bodies = set()
    for product_id in (revoked.product_id, expired.product_id, never, 999_999, 2**31 - 1):
        response = client.get(f"/san-pham/{product_id}")
        body = response.get_data(as_text=True)
        assert response.status_code == 404, product_id
        assert "Sản phẩm hiện không có giấy chứng nhận OCOP còn hiệu lực" in body
        bodies.add(body)
    assert len(bodies) == 1
    assert client.get("/san-pham/99999999999").status_code == 404


def test_a_listing_from_before_certificates_has_its_page_while_it_holds(world, client):
    with world.db.transaction() as session:
        product_id = product_id_of(session, "Rượu mận Sa Pa")
        legacy_listing(session, product_id, 3, date(2025, 4, 1), date(2028, 4, 1))
    with world.db.reading() as session:
        found = public_product(session, product_id, TODAY)
        assert found.certificate is None and found.stars == 3 and found.channels == ["trade_fair"]
        assert public_product(session, product_id, date(2028, 4, 2)) is None
    page = client.get(f"/san-pham/{product_id}").get_data(as_text=True)
    assert "Rượu mận Sa Pa" in page and "Phường Sa Pa" in page and "Hội chợ, triển lãm" in page
    assert "/xac-minh/" not in page


def test_public_pages_need_no_sign_in_and_load_nothing_from_elsewhere(world, client):
    certificate = _certificate(world)
    for path in (f"/xac-minh/{certificate.verify_code}", f"/san-pham/{certificate.product_id}", "/xac-minh"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert "http://" not in response.get_data(as_text=True).replace("http://www.w3.org", "")


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _upload(world, app, filename, data, criteria):
    from engine.access import load_actor
    from programme.documents import add_document
    from storage.documents import DocumentStore
    from storage.models import Product, User
    with world.db.transaction() as session:
        product_id = product_id_of(session, "Hồ tiêu Gio Linh")
        owner = load_actor(session, session.scalar(select(User.id).where(User.username == "htx.giomy")))
        assert session.get(Product, product_id) is not None
    store = DocumentStore(app.config["UPLOAD_DIR"])
    return add_document(world.db, store, owner, product_id, filename, data, world.clock(), criteria=criteria)


def test_the_photo_is_a_packaging_image_and_nothing_else(world, app, client):
    _upload(world, app, "bao-bi-ho-tieu.png", PNG + b"packaging", ["A.2.2"])
    _upload(world, app, "giay-phep-rieng.png", PNG + b"licence", ["A.1.1"])   # newer, private evidence
    _upload(world, app, "ho-so.pdf", b"%PDF-1.4\n%%EOF\n", ["A.2.2"])          # not an image
    with world.db.transaction() as session:
        product_id = product_id_of(session, "Hồ tiêu Gio Linh")
    # No valid certificate yet: no page, no photo.
    assert client.get(f"/san-pham/{product_id}/anh").status_code == 404
    _certificate(world)
    page = client.get(f"/san-pham/{product_id}").get_data(as_text=True)
    assert f'src="/san-pham/{product_id}/anh"' in page and "photo-placeholder" not in page
    assert "giay-phep-rieng" not in page and "bao-bi-ho-tieu" not in page  # no file names either
    photo = client.get(f"/san-pham/{product_id}/anh")
    assert photo.status_code == 200 and photo.mimetype == "image/png"
    assert photo.get_data() == PNG + b"packaging"
    assert "sandbox" in photo.headers["Content-Security-Policy"]
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
