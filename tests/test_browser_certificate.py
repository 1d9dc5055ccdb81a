"""In a real browser (Debian's chromium through Playwright): the producer
opens its printable certificate from its portal, the print button works
without inline script, the print layout hides the site's chrome, the
verification link leads to the public page saying "Còn hiệu lực"; on a
360 px wide phone the verification, product and certificate pages never
scroll sideways. Screenshots go to tests/artifacts/."""
import os
from datetime import date

import pytest

from tests.support.browser import ARTIFACTS
from tests.support.certificates import list_certificate, make_certificate, product_id_of
from tests.support.web_helpers import page_errors
from tests.support.web_helpers import sign_in_browser as sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def shot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=True)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.fixture
def certificate(world):
    with world.db.transaction() as session:
        made = make_certificate(session, product_id_of(session, "Hồ tiêu Gio Linh"), stars=4,
                                issued_on=date(2025, 6, 10))
        list_certificate(session, made)
        return made


def test_certificate_to_public_verification(page, certificate):
    errors = page_errors(page)
    sign_in(page, "htx.giomy")
    page.goto("/portal/")
    page.locator("#certificates").get_by_role("link", name=certificate.number).click()
    page.wait_for_load_state()
    main = page.locator("main")
    assert "GIẤY CHỨNG NHẬN SẢN PHẨM OCOP" in main.inner_text()
    assert page.locator("svg.qr path").count() == 1
    button = page.get_by_role("button", name="In giấy chứng nhận")
    assert button.is_visible()  # unhidden by js/print.js: the script ran under the page's CSP
    shot(page, "certificate_screen")
    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible() and not button.is_visible()
    shot(page, "certificate_print")
    page.emulate_media(media="screen")
    # The QR code's link, followed as a phone would after scanning it.
    page.get_by_role("link", name="Trang xác minh công khai").click()
    page.wait_for_load_state()
    assert f"/xac-minh/{certificate.verify_code}" in page.url
    assert page.locator("#verification .status").inner_text() == "Còn hiệu lực"
    assert certificate.number in page.locator("#verification").inner_text()
    shot(page, "certificate_verified")
    assert not errors, errors


def test_public_pages_fit_a_phone(browser, live_server, certificate):
    context = browser.new_context(base_url=live_server, locale="vi-VN", viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        for name, path in (("verify_360", f"/xac-minh/{certificate.verify_code}"),
                           ("product_360", f"/san-pham/{certificate.product_id}"),
                           ("catalogue_360", "/catalogue"), ("verify_form_360", "/xac-minh")):
            page.goto(path)
            assert no_sideways_scroll(page), path
            shot(page, name)
        sign_in(page, "htx.giomy")
        page.goto(f"/certificates/{certificate.id}")
        assert no_sideways_scroll(page), "certificate"
        shot(page, "certificate_360")
    finally:
        context.close()
