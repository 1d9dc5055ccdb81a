"""In a real browser (Debian's chromium through Playwright), the whole
administrative act: the province's People's Committee finds the product
waiting in its inbox, records the numbered decision on the decision page,
opens the certificate the decision issued (printable, with its QR code),
and follows the verification link to the public page, which says the
certificate is valid. The catalogue then lists the product with its
certificate's number."""
import os

import pytest

from testkit.cycle import Cycle, sheets
from tests.support.browser import ARTIFACTS
from tests.support.web_helpers import page_errors
from tests.support.web_helpers import sign_in_browser as sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PEPPER = "Hồ tiêu Gio Linh"


@pytest.fixture
def waiting(world) -> Cycle:
    """The pepper past the district and province councils (4 stars),
    waiting for the province's decision."""
    cycle = Cycle(world, PEPPER, decide=False).start().through_dossier()
    cycle.do("score_product", sheets(75))
    cycle.do("score_product", sheets(80))
    assert cycle.ready_forms() == ["recognition_decision"]
    return cycle


def test_decision_to_certificate_to_public_verification(page, waiting):
    errors = page_errors(page)
    sign_in(page, "ubnd.qt")
    page.goto("/inbox/")
    page.locator("main").get_by_role("link", name="Quyết định công nhận").first.click()
    page.wait_for_load_state()
    assert "/rounds/decisions/new" in page.url
    row = page.locator(f"tr[data-instance='{waiting.instance_id}']")
    assert PEPPER in row.inner_text() and "4 sao" in row.inner_text()
    page.fill("input[name=number]", "125/QĐ-UBND")
    page.fill("input[name=signer]", "Hoàng Nam, Phó Chủ tịch Ủy ban nhân dân tỉnh")
    page.get_by_role("button", name="Ghi quyết định").click()
    page.wait_for_load_state()
    main = page.locator("main")
    assert "125/QĐ-UBND" in main.inner_text() and PEPPER in main.inner_text()
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "decision_recorded.png"), full_page=True)

    main.locator("a[href^='/certificates/']").first.click()
    page.wait_for_load_state()
    assert "GIẤY CHỨNG NHẬN SẢN PHẨM OCOP" in page.locator("main").inner_text()
    assert "125/QĐ-UBND" in page.locator("main").inner_text()
    assert page.locator("svg.qr path").count() == 1
    page.get_by_role("link", name="Trang xác minh công khai").click()
    page.wait_for_load_state()
    assert "/xac-minh/" in page.url
    verification = page.locator("#verification")
    assert verification.locator(".status").inner_text() == "Còn hiệu lực"
    assert PEPPER in verification.inner_text() and "125/QĐ-UBND" in verification.inner_text()
    page.screenshot(path=os.path.join(ARTIFACTS, "decision_verified.png"), full_page=True)

    page.goto("/catalogue")
    assert PEPPER in page.locator("main").inner_text()
    assert not errors, errors
