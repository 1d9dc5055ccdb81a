"""End to end in a real browser (Debian's chromium through Playwright): one
product walks the whole cycle as each role signs in in turn, from the idea
to a 3-star listing in the public catalogue; another is returned and
resubmitted. Screenshots of key pages go to tests/artifacts/."""
import os
import re

import pytest
from sqlalchemy import select

from engine.samples import levels_for_total
from programme.councils import add_member, create_council
from storage.models import ProcessInstance, Product
from tests.support.browser import ARTIFACTS
from tests.support.councils import actor as council_actor
from tests.support.councils import area_id, make_accounts
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


# Gio Linh's district council: hd.qt-gl (the sandbox's council account) is
# its secretary; a chair and a member join it. Their sheets' target totals.
COUNCIL = (("ct.hdgl", "Lê Văn Chủ", "chair", "Phòng Nông nghiệp và Môi trường"),
           ("uv.hdgl", "Nguyễn Thị Một", "member", "Phòng Kinh tế - Hạ tầng"),
           ("hd.qt-gl", None, "secretary", "Văn phòng HĐND và UBND huyện"))
TOTALS = {"ct.hdgl": 64, "uv.hdgl": 60, "hd.qt-gl": 61}
SHEET_TASK = "Thành viên chấm điểm sản phẩm (Hội đồng cấp huyện)"


def store_council(world) -> dict[str, int]:
    """The district council, stored as a program manager would; username -> user id."""
    ids = make_accounts(world, COUNCIL)
    admin = council_actor(world, "admin")
    council_id = create_council(world, admin, "district", area_id(world, "QT-GL"), "Hội đồng OCOP huyện Gio Linh")
    for username, _name, role, department in COUNCIL:
        add_member(world, admin, council_id, ids[username], department, role)
    return ids


def council_session(page, world, product):
    """The secretary puts the product on a session with everyone present;
    the chair fills their sheet in the browser, the two others' sheets go
    through the engine (for brevity); the chair confirms the minutes."""
    ids = store_council(world)
    sign_in(page, "hd.qt-gl")
    page.goto("/councils/")
    page.get_by_role("link", name="Mở phiên họp").first.click()
    page.wait_for_load_state()
    page.locator("label", has_text=product).locator("input[name=task_id]").check()
    for username in TOTALS:
        page.locator(f"input[name=present][value='{ids[username]}']").check()
    page.fill("[name=held_on]", "2026-06-15")
    page.fill("[name=place]", "Hội trường UBND huyện Gio Linh")
    shot(page, "05_council_session")
    page.locator("#open-session button[type=submit]").click()
    page.wait_for_load_state()
    match = re.search(r"/councils/sessions/(\d+)$", page.url)
    assert match, page.url
    minutes_url = match.group(0)
    sign_out(page)

    with world.db.reading() as session:
        instance_id = session.scalar(select(ProcessInstance.id).join(Product, Product.id == ProcessInstance.product_id)
                                     .where(Product.name == product))
    sheets = {task.assignee_id: task for task in world.ready_tasks(instance_id) if task.form_key == "council_sheet"}
    assert sorted(sheets) == sorted(ids.values())  # one sheet per member present, in their own inbox
    for username in ("uv.hdgl", "hd.qt-gl"):
        world.complete_task(sheets[ids[username]].id, {"levels": levels_for_total("S10", TOTALS[username])},
                            council_actor(world, username))

    sign_in(page, "ct.hdgl")
    open_task(page, product, SHEET_TASK)
    for criterion, level in levels_for_total("S10", TOTALS["ct.hdgl"]).items():
        page.locator(f"input[name='level__{criterion}'][value='{level}']").check()
    shot(page, "06_council_sheet")
    submit(page)
    page.goto(minutes_url)
    page.get_by_role("button", name="Xác nhận biên bản").click()
    page.wait_for_load_state()
    shot(page, "07_council_minutes")
    sign_out(page)
    # The district's People's Committee recognises its 3 stars by a numbered decision (issue 16).
    sign_in(page, "ubnd.qt-gl")
    page.goto(f"/rounds/decisions/new?authority=district&area={area_id(world, 'QT-GL')}")
    page.fill("[name=number]", "15/QĐ-UBND")
    page.fill("[name=signer]", "Chủ tịch UBND huyện Gio Linh")
    shot(page, "07b_recognition_decision")
    page.get_by_role("button", name="Ghi quyết định").click()
    page.wait_for_load_state()
    assert "15/QĐ-UBND" in page.content()
    sign_out(page)
    with world.db.reading() as session:
        assert session.scalar(select(ProcessInstance.stars).where(ProcessInstance.id == instance_id)) == 3


def test_one_product_through_the_whole_cycle(page, world):
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

    council_session(page, world, product)

    page.goto("/catalogue?stars=3")
    shot(page, "08_catalogue")
    listing = page.locator("tr", has_text=product)
    assert listing.count() == 1 and "★★★" in listing.inner_text()

    sign_in(page, "htx.giomy")
    page.goto("/portal/")
    assert re.search(r"3\s*sao", page.locator("main").inner_text())
    shot(page, "09_portal_recognised")


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
    shot(page, "10_returned_with_reasons")
    sign_out(page)
    do_task(page, "htx.giomy", product, "Đăng ký ý tưởng sản phẩm", "register_idea")
    do_task(page, "cb.qt-gl-gm", product, "Tiếp nhận ý tưởng, chuyển lên huyện", "receive_idea")
    do_task(page, "cb.qt-gl", product, "Đánh giá ý tưởng sản phẩm", "review_idea")
    sign_in(page, "htx.giomy")
    page.goto("/portal/")
    assert "Nộp phương án sản xuất kinh doanh" in page.locator("main").inner_text()
