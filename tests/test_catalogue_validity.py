"""The public catalogue lists a product only while its certificate holds
(status valid and valid_until today or later, today by the application's
clock): expired, revoked and replaced certificates disappear, on the day
they stop; listings published before certificates existed follow their
own validity. The catalogue shows each certificate's number and validity."""
from datetime import date, timedelta

import pytest

from programme.catalogue import promoted_products
from tests.support.certificates import legacy_listing, list_certificate, make_certificate, product_id_of

# The fake clock starts on 2 March 2026, 08:00 UTC: 15:00 in Vietnam.
TODAY = date(2026, 3, 2)
THREE_YEARS_BEFORE_YESTERDAY = date(2023, 3, 1)   # valid 36 months: until yesterday
THREE_YEARS_BEFORE_TODAY = date(2023, 3, 2)       # until today


def _names(rows):
    return {row.product_name for row in rows}


def _certify(world, name, **kwargs):
    with world.db.transaction() as session:
        certificate = make_certificate(session, product_id_of(session, name), **kwargs)
        list_certificate(session, certificate)
        return certificate.id, certificate.number


def test_only_valid_certificates_are_listed(world):
    _certify(world, "Hồ tiêu Gio Linh", stars=4, issued_on=date(2025, 6, 10))
    _certify(world, "Gạo hữu cơ Gio Mỹ", issued_on=THREE_YEARS_BEFORE_YESTERDAY)   # passed yesterday, job not run
    _certify(world, "Mật ong rừng Gio Sơn", issued_on=date(2024, 1, 5), status="expired")
    _certify(world, "Tinh dầu tràm Cam Lộ", issued_on=date(2025, 1, 5), status="revoked")
    _certify(world, "Cá khô Trung Giang", issued_on=THREE_YEARS_BEFORE_TODAY)     # its last day
    with world.db.reading() as session:
        rows = promoted_products(session, TODAY)
    assert _names(rows) == {"Hồ tiêu Gio Linh", "Cá khô Trung Giang"}
    pepper = next(row for row in rows if row.product_name == "Hồ tiêu Gio Linh")
    assert pepper.stars == 4 and pepper.valid_until == date(2028, 6, 10) and pepper.certificate_number
    # The next day the last-day one is gone.
    with world.db.reading() as session:
        assert _names(promoted_products(session, TODAY + timedelta(days=1))) == {"Hồ tiêu Gio Linh"}


def test_a_replaced_certificate_gives_way_to_its_successor(world):
    with world.db.transaction() as session:
        product_id = product_id_of(session, "Hồ tiêu Gio Linh")
        old = make_certificate(session, product_id, stars=3, issued_on=date(2023, 5, 4))
        list_certificate(session, old)
        new = make_certificate(session, product_id, stars=4, issued_on=date(2025, 11, 20), kind="upgraded",
                               previous=old)
        list_certificate(session, new)
        new_number = new.number
    with world.db.reading() as session:
        rows = promoted_products(session, TODAY)
    assert [(row.product_name, row.stars, row.certificate_number) for row in rows] == [
        ("Hồ tiêu Gio Linh", 4, new_number)]
    with world.db.reading() as session:
        assert promoted_products(session, TODAY, stars=3) == []


def test_listings_from_before_certificates_follow_their_own_validity(world):
    with world.db.transaction() as session:
        legacy_listing(session, product_id_of(session, "Hồ tiêu Gio Linh"), 3, date(2025, 4, 1), date(2028, 4, 1))
        legacy_listing(session, product_id_of(session, "Rượu mận Sa Pa"), 4, date(2023, 3, 1), TODAY - timedelta(1))
    with world.db.reading() as session:
        rows = promoted_products(session, TODAY)
    assert [(row.product_name, row.certificate_number, row.valid_until) for row in rows] == [
        ("Hồ tiêu Gio Linh", None, date(2028, 4, 1))]


def test_a_certificate_supersedes_a_listing_from_before_certificates(world, client):
    """Once a product has a certificate, an old listing no longer speaks for
    it: revoked, it leaves the catalogue and its public page."""
    with world.db.transaction() as session:
        product_id = product_id_of(session, "Hồ tiêu Gio Linh")
        legacy_listing(session, product_id, 3, date(2025, 4, 1), date(2028, 4, 1))
        list_certificate(session, make_certificate(session, product_id, issued_on=date(2025, 9, 1),
                                                   status="revoked"))
    with world.db.reading() as session:
        assert promoted_products(session, TODAY) == []
    assert client.get(f"/san-pham/{product_id}").status_code == 404


def test_filters_apply_to_the_certificates_stars(world):
    _certify(world, "Hồ tiêu Gio Linh", stars=4, issued_on=date(2025, 6, 10))
    _certify(world, "Rượu mận Sa Pa", stars=3, issued_on=date(2025, 6, 10))
    with world.db.reading() as session:
        assert _names(promoted_products(session, TODAY, stars=4)) == {"Hồ tiêu Gio Linh"}
        assert _names(promoted_products(session, TODAY, stars=3)) == {"Rượu mận Sa Pa"}
        assert _names(promoted_products(session, TODAY, group_code="S15")) == {"Rượu mận Sa Pa"}


@pytest.fixture
def client(app):
    return app.test_client()


def test_the_catalogue_page_follows_the_apps_clock(world, client):
    _, number = _certify(world, "Hồ tiêu Gio Linh", stars=4, issued_on=date(2023, 3, 20))
    _certify(world, "Tinh dầu tràm Cam Lộ", issued_on=date(2025, 1, 5), status="revoked")
    page = client.get("/catalogue").get_data(as_text=True)
    assert "Hồ tiêu Gio Linh" in page and number in page and "20/03/2026" in page
    assert "Tinh dầu tràm Cam Lộ" not in page
    assert "/san-pham/" in page  # each row links to the product's public page
    world.clock.advance(days=19)  # 21 March 2026: the certificate ended yesterday
    page = client.get("/catalogue").get_data(as_text=True)
    assert "Hồ tiêu Gio Linh" not in page and "Chưa có sản phẩm" in page
