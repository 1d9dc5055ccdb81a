"""A council member scores on a phone (360 x 800) in a real browser (Debian's
chromium through Playwright): opens the sheet, picks levels and watches the
total change, opens a criterion's PDF evidence in the browser, reloads, and
finds every choice still there (the draft saved as they clicked). The sheet
task comes from tests/support/sheet_world.py's tiny diagram; once the cycle
carries task_score_<level>, only the set-up changes."""
from __future__ import annotations

import os

import pytest

from engine.access import load_actor
from programme import documents
from storage.documents import DocumentStore
from storage.models import Producer, Product
from tests.support.browser import ARTIFACTS
from tests.support.product_records import PDF
from tests.support.sheet_world import MEMBER, product_of, sheet_task
from tests.support.web_helpers import page_errors, sign_in_browser

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def attach_pdf(world, product_id: int, instance_id: int, upload_dir) -> int:
    """The producer's lab test, tied to A.1.1, uploaded for this cycle."""
    with world.db.transaction() as session:
        owner = session.get(Producer, session.get(Product, product_id).producer_id).owner_user_id
        actor = load_actor(session, owner)
    document = documents.add_document(world.db, DocumentStore(upload_dir), actor, product_id,
                                      "phieu-kiem-nghiem.pdf", PDF, world.clock(), criteria=["A.1.1"],
                                      instance_id=instance_id)
    return document.id


def total(page) -> str:
    return page.locator("[data-total]").inner_text()


def test_a_member_scores_at_phone_width(browser, live_server, world, tmp_path, monkeypatch):
    task_id = sheet_task(world)
    product_id, instance_id = product_of(world, task_id)
    document_id = attach_pdf(world, product_id, instance_id, tmp_path / "uploads")

    context = browser.new_context(base_url=live_server, locale="vi-VN", viewport={"width": 360, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15000)
    problems = page_errors(page)
    try:
        sign_in_browser(page, MEMBER)
        page.goto(f"/inbox/tasks/{task_id}")
        assert "Mứt gừng Gio Mỹ" in page.locator("main").inner_text()
        assert total(page) == "0"
        # One criterion per block, nothing wider than the phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        block = page.locator("#c-A\\.1\\.1")
        box = block.bounding_box()
        assert box["width"] <= 360
        # Large tap targets: a level's whole row is its label.
        level = block.locator("label.level", has_text="75% đến 100%")
        assert level.bounding_box()["height"] >= 44
        level.click()
        assert total(page) == "3"
        page.locator("#c-A\\.1\\.2 label.level", has_text="tiêu chuẩn quốc gia").click()
        assert total(page) == "4" and page.locator("[data-subtotal=A]").inner_text() == "4"
        page.locator("#c-B\\.4\\.1 label.level").last.click()
        b_points = page.locator("#c-B\\.4\\.1 input[type=radio]").last.get_attribute("data-points")
        assert page.locator("[data-subtotal=B]").inner_text() == b_points
        assert total(page) == str(4 + int(b_points))
        # The total bar stays in view while scrolling the sheet.
        page.locator("#c-C\\.7").scroll_into_view_if_needed()
        bar = page.locator(".sheet-total").bounding_box()
        assert 0 <= bar["y"] and bar["y"] + bar["height"] <= 800 + 1
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "score_sheet_360.png"))
        page.wait_for_selector("[data-sheet][data-saved='1']")  # the draft is saved as the member clicks

        # The criterion's evidence opens in the browser, not as a download.
        link = block.get_by_role("link", name="phieu-kiem-nghiem.pdf")
        assert link.get_attribute("href") == f"/portal/documents/{document_id}/view"
        responses = []
        context.on("response", lambda r: responses.append(r) if "/view" in r.url else None)
        with context.expect_page() as opened:
            link.click()
        viewer = opened.value
        viewer.wait_for_load_state()
        assert responses, "the PDF was not requested"
        headers = responses[-1].all_headers()
        assert responses[-1].status == 200 and headers["content-type"] == "application/pdf"
        assert headers["content-disposition"].startswith("inline")
        assert headers["x-content-type-options"] == "nosniff"
        viewer.close()

        # A dropped connection or a reload loses nothing.
        page.reload()
        assert block.locator("input[value='A.1.1#3']").is_checked()
        assert page.locator("#c-A\\.1\\.2 input[value='A.1.2#2']").is_checked()
        assert total(page) == str(4 + int(b_points))
        assert "Đang hiển thị bản nháp" in page.locator("main").inner_text()
        assert problems == []
    finally:
        context.close()
