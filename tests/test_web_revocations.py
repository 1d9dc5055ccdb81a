"""The revocation and inspection pages (web/revocations.py), on SQLite and
PostgreSQL: the menu link for those concerned only, opening a revocation
from a certificate's page, the inbox sending the decision task to the
decision page, a decision recorded there (refusals shown, nothing written),
404 for a decider who is not the authority, and a year's inspection plan."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from demo.seed import DEMO_PASSWORD
from storage.models import InboxTask, Jurisdiction, ProcessInstance
from storage.recognition_models import Certificate, Decision
from testkit.web_login import signed_in
from tests.support.revocation_people import certificate_of, people_of

SEED = "Hồ tiêu Gio Linh"


@pytest.fixture
def people(world):
    return people_of(world, password=DEMO_PASSWORD)


def decision_task_id(world) -> str:
    with world.db.reading() as session:
        return session.scalar(select(InboxTask.id).where(InboxTask.form_key == "revocation_decision"))


def test_the_menu_and_pages_are_for_those_concerned(app, people):
    for username in ("vp.qt", "ubnd.qt", "bo.nnmt", "qlct.qt"):
        client, _token = signed_in(app, username)
        assert 'data-nav="revocations"' in client.get("/catalogue").get_data(as_text=True)
        assert client.get("/revocations/").status_code == 200
    for username in ("htx.giomy", "cb.qt-gl-gm", "hd.qt"):
        client, _token = signed_in(app, username)
        assert 'data-nav="revocations"' not in client.get("/catalogue").get_data(as_text=True)
        assert client.get("/revocations/").status_code == 403


def test_a_revocation_opened_and_decided_through_the_pages(world, app, people):
    certificate_id = certificate_of(world, SEED)
    office, token = signed_in(app, "vp.qt")
    page = office.get("/revocations/").get_data(as_text=True)
    assert f'data-certificate="{certificate_id}"' in page
    assert SEED in office.get(f"/revocations/certificates/{certificate_id}").get_data(as_text=True)
    form = {"csrf_token": token, "ground": "law_violation", "concluded_by": "Thanh tra Sở Y tế",
            "concluded_on": "2026-03-01", "summary": "Vi phạm an toàn thực phẩm"}
    refused = office.post(f"/revocations/certificates/{certificate_id}/revocation", data={**form, "summary": ""})
    assert refused.status_code == 422 and "Nội dung kết luận" in refused.get_data(as_text=True)
    assert decision_task_id(world) is None
    assert office.post(f"/revocations/certificates/{certificate_id}/revocation", data=form).status_code == 302
    page = office.get("/revocations/").get_data(as_text=True)
    assert "Thu hồi giấy chứng nhận" in page and "16/03/2026" in page
    task_id = decision_task_id(world)

    committee, token = signed_in(app, "ubnd.qt")
    moved = committee.get(f"/inbox/tasks/{task_id}")
    assert moved.status_code == 302 and moved.location.endswith(f"/revocations/decisions/{task_id}")
    page = committee.get(f"/revocations/decisions/{task_id}").get_data(as_text=True)
    assert SEED in page and "Thanh tra Sở Y tế" in page
    # A hand-made post to the task page records nothing either.
    assert committee.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "revoke": "true"}).status_code == 302
    bad = committee.post(f"/revocations/decisions/{task_id}", data={"csrf_token": token, "revoke": "yes",
                                                                     "number": "", "signed_on": "2026-03-02",
                                                                     "signer": "Chủ tịch"})
    assert bad.status_code == 422 and "Số quyết định" in bad.get_data(as_text=True)
    with world.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 1  # the recognition only
    done = committee.post(f"/revocations/decisions/{task_id}", data={
        "csrf_token": token, "revoke": "yes", "number": "88/QĐ-UBND", "signed_on": "2026-03-02",
        "signer": "Chủ tịch Võ Văn Hưng", "reason": "Vi phạm an toàn thực phẩm"})
    assert done.status_code == 302
    with world.db.reading() as session:
        assert session.get(Certificate, certificate_id).status == "revoked"
    assert committee.get(f"/revocations/decisions/{task_id}").status_code == 404


def test_another_authority_finds_no_decision_page(world, app, people):
    certificate_id = certificate_of(world, SEED)
    office, token = signed_in(app, "vp.qt")
    office.post(f"/revocations/certificates/{certificate_id}/revocation", data={
        "csrf_token": token, "ground": "mark_misused", "concluded_by": "Quản lý thị trường",
        "concluded_on": "2026-03-01", "summary": "Dùng nhãn OCOP cho sản phẩm khác"})
    task_id = decision_task_id(world)
    for username in ("ubnd.lc", "bo.nnmt"):
        client, token = signed_in(app, username)
        assert client.get(f"/revocations/decisions/{task_id}").status_code == 404
        assert client.post(f"/revocations/decisions/{task_id}", data={
            "csrf_token": token, "revoke": "yes", "number": "1/QĐ", "signed_on": "2026-03-02",
            "signer": "X"}).status_code == 404
        assert client.get(f"/revocations/certificates/{certificate_id}").status_code == 404
    with world.db.reading() as session:
        assert session.get(Certificate, certificate_id).status == "valid"


def test_a_years_inspections_are_planned_from_the_list(world, app, people):
    for name in (SEED, "Gạo hữu cơ Gio Mỹ", "Mật ong rừng Gio Sơn"):
        certificate_of(world, name)
    with world.db.reading() as session:
        qt = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT"))
    office, token = signed_in(app, "vp.qt")
    answer = office.post("/revocations/plan", data={"csrf_token": token, "province_id": qt, "year": 2026,
                                                    "percent": "50"}, follow_redirects=True)
    assert "2 giấy chứng nhận" in answer.get_data(as_text=True)
    answer = office.post("/revocations/plan", data={"csrf_token": token, "province_id": qt, "year": 2030,
                                                    "percent": "50"}, follow_redirects=True)
    assert "Chỉ lập kế hoạch cho năm 2026 hoặc 2027" in answer.get_data(as_text=True)
    assert "only" not in answer.get_data(as_text=True)  # no English in Vietnamese mode
    with world.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.process_id == "ocop_inspection")) == 2
    assert office.get("/revocations/").get_data(as_text=True).count("Kiểm tra định kỳ") >= 2


def test_an_inspection_report_filled_on_the_task_page(world, app, people):
    certificate_id = certificate_of(world, SEED)
    office, token = signed_in(app, "vp.qt")
    assert office.post(f"/revocations/certificates/{certificate_id}/inspection", data={
        "csrf_token": token, "reason": "Phản ánh của người tiêu dùng"}).status_code == 302
    with world.db.reading() as session:
        task_id = session.scalar(select(InboxTask.id).where(InboxTask.form_key == "inspection_report"))
    page = office.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    assert "Sử dụng đúng nhãn, biểu tượng và thông tin OCOP" in page and "mark_used_correctly" in page
    assert ">criteria_not_maintained<" not in page and "Căn cứ đề nghị thu hồi" in page
    form = {"csrf_token": token, "inspected_on": "2026-03-02", "criteria_maintained": "true",
            "mark_used_correctly": "false", "findings": "", "propose_revocation": "false"}
    assert office.post(f"/inbox/tasks/{task_id}", data=form).status_code == 422  # findings required
    proposed = {**form, "findings": "Dùng nhãn OCOP trên sản phẩm chưa được công nhận",
                "propose_revocation": "true", "ground": "mark_misused"}
    assert office.post(f"/inbox/tasks/{task_id}", data=proposed).status_code in (302, 303)
    with world.db.reading() as session:
        decision = session.scalar(select(InboxTask).where(InboxTask.form_key == "revocation_decision"))
        assert decision.element_id == "task_revocation_province_inspection"
    page = signed_in(app, "ubnd.qt")[0].get(f"/revocations/decisions/{decision.id}").get_data(as_text=True)
    assert "Sử dụng sai nhãn hiệu, biểu tượng OCOP" in page and "Kiểm tra sau công nhận" in page


def test_the_pages_fit_a_phone(world, people, page):
    from tests.support.web_helpers import sign_in_browser
    certificate_id = certificate_of(world, SEED)
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in_browser(page, "vp.qt")
    page.goto(f"/revocations/certificates/{certificate_id}")
    page.select_option("select[name=ground]", "production_stopped")
    page.fill("input[name=concluded_by]", "UBND xã Gio Mỹ")
    page.fill("textarea[name=summary]", "Xã xác nhận cơ sở đã ngừng sản xuất")
    page.locator("form[data-form=revocation] button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("[data-case]").count() == 1
    for url in ("/revocations/", f"/revocations/certificates/{certificate_id}"):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, url
    task_id = decision_task_id(world)
    page.context.clear_cookies()
    sign_in_browser(page, "ubnd.qt")
    page.goto(f"/inbox/tasks/{task_id}")
    assert f"/revocations/decisions/{task_id}" in page.url
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.check("input[name=revoke][value=yes]")
    page.fill("input[name=number]", "15/QĐ-UBND")
    page.fill("input[name=signed_on]", "2026-03-02")
    page.fill("input[name=signer]", "Chủ tịch UBND tỉnh")
    page.locator("form[data-form=decision] button[type=submit]").click()
    page.wait_for_load_state()
    assert "Đã ghi quyết định thu hồi" in page.content()
    with world.db.reading() as session:
        assert session.get(Certificate, certificate_id).status == "revoked"


def test_the_pages_in_english(world, app, people):
    certificate_id = certificate_of(world, SEED)
    office, token = signed_in(app, "vp.qt")
    page = office.get("/revocations/?lang=en").get_data(as_text=True)
    assert "Revocation, inspection after recognition" in page and "Valid certificates" in page
    assert "Thu hồi giấy chứng nhận" not in page
    page = office.get(f"/revocations/certificates/{certificate_id}").get_data(as_text=True)
    assert "Ground for revocation" in page and "The OCOP mark misused" in page
    refused = office.post(f"/revocations/certificates/{certificate_id}/revocation", data={
        "csrf_token": token, "ground": "law_violation", "concluded_by": "Thanh tra", "concluded_on": "2026-03-01",
        "summary": ""}).get_data(as_text=True)
    assert "conclusion: 5 to 5000 characters" in refused and "Nội dung kết luận" not in refused
