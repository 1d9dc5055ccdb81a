"""The auditor's history page in a real browser (Debian's chromium through
Playwright): the diagram beside the timeline, moved through the history by
keyboard, by the step buttons and from a timeline row; the markers and
counts change with it, under the page's CSP (no console errors)."""
import os

import pytest

from testkit.cycle import Cycle, returned, sheets
from tests.support.browser import ARTIFACTS
from tests.support.web_helpers import page_errors, require_bundle
from tests.support.web_helpers import sign_in_browser as sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PRODUCT = "Hồ tiêu Gio Linh"


def done(page, element_id: str) -> bool:
    return page.locator(f'#history-canvas .djs-element.history-done[data-element-id="{element_id}"]').count() == 1


def active(page, element_id: str) -> bool:
    return page.locator(f'#history-canvas .djs-element.history-active[data-element-id="{element_id}"]').count() == 1


def overlay_text(page, element_id: str) -> str:
    overlays = page.locator(f'#history-canvas .djs-overlays[data-container-id="{element_id}"]')
    return overlays.inner_text() if overlays.count() else ""


def position(page) -> int:
    return int(page.get_attribute("#history-viewer", "data-seq"))


def test_an_auditor_steps_through_a_returned_product(page, world):
    require_bundle("history.js")
    problems = page_errors(page)

    cycle = Cycle(world, PRODUCT).start()
    for round_ in range(2):  # returned twice, the first review claimed first
        cycle.do("register_idea")
        cycle.do("receive_idea")
        if round_ == 0:
            world.claim(cycle.task("review_idea").id, cycle.actor("review_idea"))
        cycle.do("review_idea", returned("review_idea"))
    cycle.through_dossier()
    cycle.do("score_product", sheets(60))

    page.set_viewport_size({"width": 1600, "height": 1000})
    sign_in(page, "kiemtoan")
    assert page.url.endswith("/audit/")                      # the auditor lands on the search
    page.fill("input[name=product]", "ho tieu")
    page.locator("main form button[type=submit]").click()
    page.get_by_role("link", name=PRODUCT).click()
    page.wait_for_selector("#history-viewer[data-ready='1']")
    total = int(page.get_attribute("#history-slider", "max"))
    assert position(page) == total                           # it opens on the end of the history

    # The end: three rounds of the idea review, the return flow taken twice.
    assert done(page, "task_review_idea") and done(page, "end_recognised")
    assert "3×" in overlay_text(page, "task_review_idea")
    # Who acted shows once the diagram is large enough to hold the names.
    assert "Cán bộ OCOP Huyện Gio Linh" not in overlay_text(page, "task_review_idea")
    for _ in range(6):
        if page.evaluate("window.ocopHistory.canvas.zoom()") >= 0.4:
            break
        page.click("#history-zoom-in")
    page.locator('#history-canvas .history-people', has_text="Cán bộ OCOP Huyện Gio Linh").first.wait_for()
    assert page.locator('#history-canvas .history-flow[data-element-id="flow_idea_back"]').count() == 1
    assert "2×" in overlay_text(page, "flow_idea_back")
    assert page.locator("#history-canvas .history-active").count() == 0

    # Keyboard: Home is the first event, nothing done on the diagram yet.
    page.focus("#history-slider")
    page.keyboard.press("Home")
    assert position(page) == 1
    assert page.locator("#history-canvas .history-done").count() == 0
    assert "Sự kiện 1 / " in page.inner_text("#history-status")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")                        # the first task became ready
    assert position(page) == 3 and active(page, "task_register_idea")
    assert done(page, "start_product_cycle") and not done(page, "task_register_idea")
    assert "chưa ai nhận" in overlay_text(page, "task_register_idea")
    page.click("#history-next")                              # ... and was completed
    assert position(page) == 4 and done(page, "task_register_idea") and not active(page, "task_register_idea")

    # From the timeline: the claim, where the district officer holds the review.
    claim = page.locator('.audit-event[data-kind="claimed"] .history-goto').first
    claim.click()
    assert active(page, "task_review_idea") and not done(page, "task_review_idea")
    assert "Cán bộ OCOP Huyện Gio Linh" in overlay_text(page, "task_review_idea")
    current = page.locator(".audit-event.current")
    assert current.count() == 1 and current.get_attribute("data-kind") == "claimed"
    page.click("#history-prev")
    assert position(page) == int(claim.get_attribute("data-seq")) - 1

    # The first return, as a screenshot: the way back to the producer taken once.
    back = page.locator('.audit-event[data-kind="task_completed"]', has_text="Trả lại để bổ sung").first
    back.locator(".history-goto").click()
    for _ in range(6):
        page.click("#history-next")
    assert "flow_idea_back" in page.evaluate(
        "Array.from(document.querySelectorAll('#history-canvas .history-flow')).map(e => e.dataset.elementId)")
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "audit_history.png"))
    page.click("#history-last")
    assert position(page) == total and "2×" in overlay_text(page, "flow_idea_back")
    assert not problems, problems
