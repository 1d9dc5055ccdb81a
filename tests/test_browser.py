"""End to end in a real browser (Debian's chromium through Playwright): one
product walks the whole cycle as each role signs in in turn, from the idea
to a 3-star listing in the public catalogue; another is returned and
resubmitted. Screenshots of key pages go to tests/artifacts/."""
import os
import re

import pytest

from tests.support.browser import ARTIFACTS
from tests.support.web_helpers import sign_in_browser as sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

TEXT = {
    "product_description": "Tiêu đen trồng xen vườn cà phê, phơi nắng tự nhiên",
    "raw_materials": "Hồ tiêu của các hộ thành viên",
    "expected_market": "Cửa hàng OCOP và sàn thương mại điện tử",
    "plan_summary": "Đầu tư máy sấy, đóng gói hút chân không, đăng ký mã vạch",
    "activities": "Hướng dẫn ghi nhãn và truy xuất nguồn gốc",
}


def shot(page, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=True)



def sign_out(page):
    page.locator("header form button[type=submit]").click()
    page.wait_for_load_state()


def open_task(page, product, task_name):
    """From the inbox (officers: a row per task) or the portal (producers: a
    card per product, "Làm việc này" beside each waiting task), open it."""
    page.goto("/")
    if "/portal" in page.url:
        card = page.locator("section.card", has_text=product).first
        card.locator("li", has_text=task_name).get_by_role("link", name="Làm việc này").first.click()
    else:
        page.locator("tr", has_text=product).get_by_role("link", name=task_name).first.click()
    page.wait_for_load_state()
    assert task_name in page.locator("main").inner_text()


def choose(page, name, value):
    page.locator(f"input[name={name}][value='{value}']").check()


def submit(page):
    page.locator("button[name=action][value=complete]").click()
    page.wait_for_load_state()
    errors = page.locator(".error-text")
    assert errors.count() == 0, errors.all_inner_texts()


def fill_form(page, form_key):
    if form_key == "register_idea":
        choose(page, "registration_form", "01")
        for name in ("product_description", "raw_materials", "expected_market"):
            page.fill(f"[name={name}]", TEXT[name])
    elif form_key == "receive_idea":
        choose(page, "form_complete", "true")
    elif form_key in ("review_idea", "review_plan"):
        choose(page, "decision", "accept")
    elif form_key == "submit_plan":
        page.fill("[name=plan_summary]", TEXT["plan_summary"])
    elif form_key == "support_record":
        page.fill("[name=visited_on]", "2026-03-05")
        page.fill("[name=activities]", TEXT["activities"])
    elif form_key == "submit_dossier":
        for evidence in ("business_registration", "food_safety_licence", "lab_test"):
            choose(page, "evidence", evidence)
    elif form_key == "check_dossier":
        choose(page, "decision", "forward")


def do_task(page, user, product, task_name, form_key, screenshot=None):
    sign_in(page, user)
    open_task(page, product, task_name)
    fill_form(page, form_key)
    if screenshot:
        shot(page, screenshot)
    submit(page)
    sign_out(page)


def test_one_product_through_the_whole_cycle(page):
    product = "Tiêu đen Gio Mỹ"
    sign_in(page, "htx.giomy")
    page.goto("/portal/products/new")
    page.fill("[name=name]", product)
    page.select_option("[name=group_code]", "S10")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    shot(page, "01_portal_new_product")
    sign_out(page)

    do_task(page, "htx.giomy", product, "Đăng ký ý tưởng sản phẩm", "register_idea", "02_register_idea")
    do_task(page, "cb.qt-gl-gm", product, "Tiếp nhận ý tưởng, chuyển lên huyện", "receive_idea")
    sign_in(page, "cb.qt-gl")
    page.goto("/inbox/")
    shot(page, "03_district_inbox")
    sign_out(page)
    do_task(page, "cb.qt-gl", product, "Đánh giá ý tưởng sản phẩm", "review_idea", "04_review_idea")
    do_task(page, "htx.giomy", product, "Nộp phương án sản xuất kinh doanh", "submit_plan")
    do_task(page, "cb.qt-gl", product, "Đánh giá phương án sản xuất kinh doanh", "review_plan")
    do_task(page, "cb.qt-gl-gm", product, "Ghi nhận hỗ trợ tại cơ sở", "support_record")
    do_task(page, "htx.giomy", product, "Triển khai phương án, nộp hồ sơ sản phẩm", "submit_dossier")
    do_task(page, "cb.qt-gl-gm", product, "Kiểm tra hồ sơ sản phẩm", "check_dossier")

    sign_in(page, "hd.qt-gl")
    open_task(page, product, "Chấm điểm sản phẩm (Hội đồng cấp huyện)")
    for row, (a, b, c) in enumerate([(26, 16, 22), (24, 15, 21), (25, 16, 20)]):
        if not page.locator(f"[name=sheets-{row}-member]").is_visible():
            page.get_by_role("button", name="Thêm thành viên").click()  # score_sheet.js shows one row at a time
        page.fill(f"[name=sheets-{row}-member]", f"Thành viên {row + 1}")
        page.fill(f"[name=sheets-{row}-part_a]", str(a))
        page.fill(f"[name=sheets-{row}-part_b]", str(b))
        page.fill(f"[name=sheets-{row}-part_c]", str(c))
    page.locator("[name=sheets-2-part_c]").blur()
    shot(page, "05_score_sheet")
    submit(page)
    sign_out(page)

    page.goto("/catalogue?stars=3")
    shot(page, "06_catalogue")
    listing = page.locator("tr", has_text=product)
    assert listing.count() == 1 and "★★★" in listing.inner_text()

    sign_in(page, "htx.giomy")
    page.goto("/portal/")
    assert re.search(r"3\s*sao", page.locator("main").inner_text())
    shot(page, "07_portal_recognised")


def test_a_returned_idea_is_revised_and_resubmitted(page):
    product = "Gạo hữu cơ Gio Mỹ"
    sign_in(page, "htx.giomy")
    page.goto("/portal/")
    page.locator(".card, tr, li", has_text=product).first.get_by_role("link", name=product).first.click()
    page.locator("form[action$='/start'] button[type=submit]").click()
    page.wait_for_load_state()
    sign_out(page)
    do_task(page, "htx.giomy", product, "Đăng ký ý tưởng sản phẩm", "register_idea")
    do_task(page, "cb.qt-gl-gm", product, "Tiếp nhận ý tưởng, chuyển lên huyện", "receive_idea")

    sign_in(page, "cb.qt-gl")
    open_task(page, product, "Đánh giá ý tưởng sản phẩm")
    choose(page, "decision", "return")
    page.locator("button[name=action][value=complete]").click()
    page.wait_for_load_state()
    assert page.locator(".error-text").count() >= 1  # reasons are required on return
    reasons = "Cần nêu rõ vùng nguyên liệu và sản lượng dự kiến"
    choose(page, "decision", "return")
    page.fill("[name=reasons]", reasons)
    submit(page)
    sign_out(page)

    sign_in(page, "htx.giomy")
    page.goto("/portal/")
    page.locator(".card, tr, li", has_text=product).first.get_by_role("link", name=product).first.click()
    assert reasons in page.locator("main").inner_text()
    shot(page, "08_returned_with_reasons")
    sign_out(page)
    do_task(page, "htx.giomy", product, "Đăng ký ý tưởng sản phẩm", "register_idea")
    do_task(page, "cb.qt-gl-gm", product, "Tiếp nhận ý tưởng, chuyển lên huyện", "receive_idea")
    do_task(page, "cb.qt-gl", product, "Đánh giá ý tưởng sản phẩm", "review_idea")
    sign_in(page, "htx.giomy")
    page.goto("/portal/")
    assert "Nộp phương án sản xuất kinh doanh" in page.locator("main").inner_text()
