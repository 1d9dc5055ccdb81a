"""The task page: forms chosen by form key, validation errors beside their
fields, the dossier's history, the council's score sheet, drafts, and
completion by officers and producers -- through the web pages."""
from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.errors import ConcurrencyConflict, ServiceTaskFailed
from storage.criteria import criteria_set
from storage.models import AuditEvent, ProcessInstance, TaskDraft, User
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support.app import make_app
from tests.support.inbox_world import HONEY, PEPPER, add_officer, assignee, at_review_idea, user_id


def events(world, cycle: Cycle) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.instance_id == cycle.instance_id))


def completed_forms(world, cycle: Cycle) -> list[dict]:
    with world.db.transaction() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == cycle.instance_id,
                                                        AuditEvent.kind == "task_completed")
                               .order_by(AuditEvent.seq)).all()
        return [row.data["form"] for row in rows]


def field_block(page: str, name: str) -> str:
    """The markup of one field, from its wrapper to the next field."""
    start = page.index(f'id="field-{name}"')
    end = page.find('<div class="field', start + 1)
    return page[start:end if end > 0 else len(page)]


# The national diagram before issue 15 (git cd4c289): one council account typed every member's
# A/B/C subtotals on one page (form score_product). Instances started on it keep that version.
BEFORE_COUNCILS = Path(__file__).parent / "support" / "diagrams_before_councils" / "ocop_cycle.bpmn"


def at_score(world, product: str = PEPPER) -> Cycle:
    """A product at the old typed-subtotal score sheet: started on the
    pre-issue-15 diagram, deployed here as the active national version."""
    world.deploy(BEFORE_COUNCILS.read_bytes(), "ocop_cycle", "test", "the cycle before council sessions")
    cycle = Cycle(world, product).start().through_dossier()
    assert cycle.ready_forms() == ["score_product"]
    return cycle


# --- officers' review forms ------------------------------------------------------

def test_the_review_idea_page_shows_the_form_and_the_dossier(world, client):
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    login(client, "cb.qt-gl")
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    assert 'name="decision" value="accept"' in page and 'name="decision" value="return"' in page
    assert "Trả lại để bổ sung, hoàn thiện" in page and '<textarea id="f-reasons" name="reasons"' in page
    assert 'name="criteria_checked" value="local_material"' in page  # the idea checklist
    assert "Sử dụng nguyên liệu tại địa phương" in page
    # The dossier beside it: product, producer, commune, group, and what came before.
    for text in (PEPPER, "HTX Nông nghiệp Gio Mỹ", "Xã Gio Mỹ", "S10 – Gia vị khác",
                 "Đăng ký ý tưởng sản phẩm", "Hồ tiêu đỏ trồng trên đất bazan", "Mẫu 01 – sản phẩm mới",
                 "Tiếp nhận ý tưởng, chuyển lên huyện", "Lê Văn Tâm"):
        assert text in page, text
    assert page.count('name="csrf_token"') >= 2
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None and "style=" not in page


def test_completing_review_idea_moves_the_product_on(world, client):
    cycle = at_review_idea(world, PEPPER)
    token = login(client, "cb.qt-gl")
    response = client.post(f"/inbox/tasks/{cycle.task('review_idea').id}", data={
        "csrf_token": token, "decision": "accept", "reasons": "",
        "criteria_checked": ["local_material", "market"], "unexpected": "ignored"})
    assert response.status_code == 302 and response.headers["Location"] == "/inbox/"
    assert cycle.ready_forms() == ["submit_plan"]
    assert completed_forms(world, cycle)[-1] == {
        "decision": "accept", "reasons": "", "criteria_checked": ["local_material", "market"]}
    assert "Đã hoàn thành" in client.get("/inbox/").get_data(as_text=True)


def test_return_without_reasons_shows_the_error_beside_the_field_and_changes_nothing(world, client):
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    before = events(world, cycle)
    token = login(client, "cb.qt-gl")
    response = client.post(f"/inbox/tasks/{task_id}", data={
        "csrf_token": token, "decision": "return", "reasons": "  ", "criteria_checked": "market"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Cần nêu lý do khi trả lại" in field_block(page, "reasons")
    assert 'value="return" checked' in page and 'value="market" checked' in page  # what was typed stays
    assert cycle.task("review_idea").id == task_id and events(world, cycle) == before


def test_a_return_with_reasons_reaches_the_producers_page(world, client):
    cycle = at_review_idea(world, PEPPER)
    token = login(client, "cb.qt-gl")
    client.post(f"/inbox/tasks/{cycle.task('review_idea').id}", data={
        "csrf_token": token, "decision": "return", "reasons": "Thiếu thông tin nguồn nguyên liệu"})
    assert cycle.ready_forms() == ["register_idea"]
    login(client, "htx.giomy")
    page = client.get(f"/inbox/tasks/{cycle.task('register_idea').id}").get_data(as_text=True)
    assert "Thiếu thông tin nguồn nguyên liệu" in page and 'class="badge returned"' in page


def test_required_yes_no_questions_must_be_answered(world, client):
    cycle = Cycle(world, PEPPER).start()
    cycle.do("register_idea")
    token = login(client, "cb.qt-gl-gm")
    task_id = cycle.task("receive_idea").id
    response = client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "notes": "ok"})
    assert response.status_code == 422
    assert "Bắt buộc nhập." in field_block(response.get_data(as_text=True), "form_complete")
    response = client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "form_complete": "false"})
    assert response.status_code == 302 and completed_forms(world, cycle)[-1]["form_complete"] is False


# --- producers ------------------------------------------------------------------

def test_a_producer_registers_an_idea_through_the_page(world, client):
    cycle = Cycle(world, PEPPER).start()
    task_id = cycle.task("register_idea").id
    token = login(client, "htx.giomy")
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    assert "Mẫu 02 – sản phẩm đã có" in page and 'href="/portal/"' in page
    response = client.post(f"/inbox/tasks/{task_id}", data={
        "csrf_token": token, "registration_form": "02", "product_description": "Hồ tiêu đỏ Gio Linh, sấy lạnh",
        "raw_materials": "Vườn tiêu của xã viên", "expected_market": "Cửa hàng OCOP", "production_capacity": ""})
    assert response.status_code == 302 and response.headers["Location"] == "/portal/"
    assert cycle.ready_forms() == ["receive_idea"]


def test_tasks_one_may_not_act_on_answer_404(world, client):
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    for username in ("cb.qt-cl", "htx.giomy", "tht.matonggioson", "qlct.qt", "kiemtoan"):
        token = login(client, username)
        assert client.get(f"/inbox/tasks/{task_id}").status_code == 404, username
        assert client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "decision": "accept"}
                           ).status_code == 404, username
        assert client.post(f"/inbox/tasks/{task_id}/draft", data={"csrf_token": token}).status_code == 404
    assert cycle.ready_forms() == ["review_idea"]
    login(client, "cb.qt-gl")
    assert client.get("/inbox/tasks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/inbox/tasks/" + "x" * 80).status_code == 404


# --- what a form refuses ------------------------------------------------------------

def test_wrong_types_and_missing_fields_are_shown_per_field(world, client):
    cycle = Cycle(world, PEPPER).start()
    token = login(client, "htx.giomy")
    task_id = cycle.task("register_idea").id
    response = client.post(f"/inbox/tasks/{task_id}", data={
        "csrf_token": token, "registration_form": "03", "product_description": "ngắn"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Hãy chọn một giá trị trong danh sách." in field_block(page, "registration_form")
    assert "Cần từ 10 đến 5000 ký tự." in field_block(page, "product_description")
    assert "Bắt buộc nhập." in field_block(page, "raw_materials")
    assert "Bắt buộc nhập." in field_block(page, "expected_market")
    assert cycle.ready_forms() == ["register_idea"]

    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea")
    task_id = cycle.task("submit_plan").id
    response = client.post(f"/inbox/tasks/{task_id}", data={
        "csrf_token": token, "plan_summary": "Mở rộng vùng trồng hồ tiêu", "investment_vnd": "hai trăm triệu"})
    assert response.status_code == 422
    assert "Phải là số nguyên." in field_block(response.get_data(as_text=True), "investment_vnd")
    # Amounts as people write them are understood; documents one per line.
    response = client.post(f"/inbox/tasks/{task_id}", data={
        "csrf_token": token, "plan_summary": "Mở rộng vùng trồng hồ tiêu", "investment_vnd": "200.000.000",
        "documents": "Phương án.pdf\r\n\r\nMẫu 04.pdf\r\n"})
    assert response.status_code == 302
    assert completed_forms(world, cycle)[-1] == {
        "plan_summary": "Mở rộng vùng trồng hồ tiêu", "organisation_description": "",
        "investment_vnd": 200_000_000, "documents": ["Phương án.pdf", "Mẫu 04.pdf"]}


def test_oversized_text_is_refused(world, client):
    cycle = Cycle(world, PEPPER).start()
    cycle.do("register_idea")
    token = login(client, "cb.qt-gl-gm")
    response = client.post(f"/inbox/tasks/{cycle.task('receive_idea').id}", data={
        "csrf_token": token, "form_complete": "true", "notes": "x" * 5001})
    assert response.status_code == 422
    assert "Tối đa 5000 ký tự." in field_block(response.get_data(as_text=True), "notes")
    assert cycle.ready_forms() == ["receive_idea"]


def test_script_in_a_text_field_is_stored_as_typed_and_shown_escaped(world, client):
    cycle = Cycle(world, PEPPER).start()
    payload = '<script>alert("ocop")</script> Hồ tiêu đỏ'
    token = login(client, "htx.giomy")
    client.post(f"/inbox/tasks/{cycle.task('register_idea').id}", data={
        "csrf_token": token, "registration_form": "01", "product_description": payload,
        "raw_materials": "<b>tiêu</b>", "expected_market": "Trong tỉnh"})
    assert completed_forms(world, cycle)[-1]["product_description"] == payload
    login(client, "cb.qt-gl-gm")
    page = client.get(f"/inbox/tasks/{cycle.task('receive_idea').id}").get_data(as_text=True)
    assert "<script>alert" not in page and "<b>tiêu</b>" not in page
    assert html_lib.escape(payload, quote=False) in page or "&lt;script&gt;alert(&#34;ocop&#34;)" in page


# --- the council's typed score sheet, for instances on versions before council sessions -----
# (each member's own sheet of today's diagrams: tests/test_score_sheet_page.py)

def test_the_score_sheet_takes_its_maxima_and_groups_from_the_criteria_set(world, client):
    cycle = at_score(world)
    login(client, "hd.qt-gl")
    page = client.get(f"/inbox/tasks/{cycle.task('score_product').id}").get_data(as_text=True)
    assert "Bộ tiêu chí <strong>S10</strong>" in page
    assert 'max="40" name="sheets-0-part_a"' in page and 'max="25" name="sheets-0-part_b"' in page
    assert 'max="35" name="sheets-6-part_c"' in page and 'name="sheets-7-' not in page  # seven rows
    for section in criteria_set("S10")["sections"]:  # the set's groups, as guidance
        for group in section["groups"]:
            assert f"{group['id']} {group['text_vi']} – {group['max_points']} điểm" in page
    bands = re.search(r"data-bands='([^']+)'", page).group(1)
    assert '"min": 90' in bands and '"stars": 5' in bands
    assert '<script src="/static/js/score_sheet.js" defer></script>' in page
    script = client.get("/static/js/score_sheet.js").get_data(as_text=True)
    assert "data-bands" in script and "90" not in script  # bands come from the page


def test_a_score_above_the_maximum_is_refused(world, client):
    cycle = at_score(world)
    task_id = cycle.task("score_product").id
    before = events(world, cycle)
    token = login(client, "hd.qt-gl")
    response = client.post(f"/inbox/tasks/{task_id}", data={
        "csrf_token": token,
        "sheets-0-member": "Chủ tịch", "sheets-0-part_a": "30", "sheets-0-part_b": "20", "sheets-0-part_c": "30",
        "sheets-2-member": "Thư ký", "sheets-2-part_a": "45", "sheets-2-part_b": "20", "sheets-2-part_c": "30"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    cell = page[page.index('name="sheets-2-part_a"'):page.index('name="sheets-2-part_b"')]
    assert "Phần A tối đa 40 điểm" in cell  # beside the row it belongs to (row 3, not sheet 2)
    assert 'value="45"' in cell and events(world, cycle) == before
    assert cycle.task("score_product").id == task_id


def test_a_council_scores_through_the_sheet(world, client):
    cycle = at_score(world)
    token = login(client, "hd.qt-gl")
    rows = {"sheets-0-member": "Chủ tịch", "sheets-0-part_a": "22", "sheets-0-part_b": "14",
            "sheets-0-part_c": "19,5",  # a decimal comma
            "sheets-3-member": "Thư ký", "sheets-3-part_a": "22", "sheets-3-part_b": "14", "sheets-3-part_c": "18.5"}
    response = client.post(f"/inbox/tasks/{cycle.task('score_product').id}", data={"csrf_token": token, **rows})
    assert response.status_code == 302
    sheets = completed_forms(world, cycle)[-1]["sheets"]
    assert [(s["member"], s["part_c"]) for s in sheets] == [("Chủ tịch", 19.5), ("Thư ký", 18.5)]
    instance = cycle.instance()
    assert (instance.status, instance.stars) == ("completed", 3)  # average 55: 3 stars at the district
    assert "3 sao" in client.get("/inbox/").get_data(as_text=True)


def test_the_score_sheet_computes_totals_without_javascript(world, client):
    cycle = at_score(world)
    token = login(client, "hd.qt-gl")
    response = client.post(f"/inbox/tasks/{cycle.task('score_product').id}", data={
        "csrf_token": token, "sheets-0-member": "A", "sheets-0-part_a": "36", "sheets-0-part_b": "20",
        "sheets-0-part_c": "30", "sheets-1-member": "a", "sheets-1-part_a": "36", "sheets-1-part_b": "20",
        "sheets-1-part_c": "30"})  # the same member twice
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Mỗi thành viên chỉ nộp một phiếu" in page
    assert "<output data-average>86</output>" in page and "★★★★ 4 sao" in page


# --- drafts --------------------------------------------------------------------------

def test_a_draft_is_saved_and_prefills_the_page(world, client):
    add_officer(world, "cb.qt-gl.2", "district_officer", "QT-GL")
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    token = login(client, "cb.qt-gl")
    response = client.post(f"/inbox/tasks/{task_id}/draft", data={
        "csrf_token": token, "decision": "return", "reasons": "Đang xem <xét>", "criteria_checked": ["market"]})
    assert response.status_code == 302 and response.headers["Location"] == f"/inbox/tasks/{task_id}"
    assert cycle.ready_forms() == ["review_idea"]  # nothing completed
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    assert 'value="return" checked' in page and 'value="market" checked' in page
    assert ">Đang xem &lt;xét&gt;</textarea>" in page and "bản nháp" in page
    with world.db.transaction() as session:
        draft = session.scalar(select(TaskDraft).where(TaskDraft.task_id == task_id))
        assert draft.user_id == user_id(world, "cb.qt-gl") and "csrf_token" not in draft.data

    login(client, "cb.qt-gl.2")  # a draft is its author's only
    assert "Đang xem" not in client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)

    token = login(client, "cb.qt-gl")
    client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "decision": "accept"})
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(TaskDraft)) == 0


def test_a_draft_of_the_score_sheet_keeps_its_rows(world, client):
    cycle = at_score(world)
    task_id = cycle.task("score_product").id
    token = login(client, "hd.qt-gl")
    client.post(f"/inbox/tasks/{task_id}/draft", data={
        "csrf_token": token, "sheets-1-member": "Thành viên 2", "sheets-1-part_a": "31"})
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    assert 'name="sheets-1-member" value="Thành viên 2"' in page and 'value="31"' in page


# --- engine errors on completion ---------------------------------------------------------

def test_a_task_claimed_by_a_colleague_cannot_be_completed(world, client):
    add_officer(world, "cb.qt-gl.2", "district_officer", "QT-GL")
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    token = login(client, "cb.qt-gl.2")
    client.post(f"/inbox/tasks/{task_id}/claim", data={"csrf_token": token})
    token = login(client, "cb.qt-gl")
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    assert "Người nhận: Cán bộ cb.qt-gl.2" in page
    response = client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "decision": "accept"})
    assert response.status_code == 409 and "người khác nhận" in response.get_data(as_text=True)
    assert cycle.ready_forms() == ["review_idea"] and assignee(world, task_id) == user_id(world, "cb.qt-gl.2")


@pytest.mark.parametrize("error,status,message", [
    (ConcurrencyConflict(1), 409, "Hãy tải lại trang"),
    (ServiceTaskFailed("handler broke"), 502, "Bước tự động sau việc này bị lỗi"),
])
def test_engine_failures_get_a_clear_message(world, client, app, monkeypatch, error, status, message):
    cycle = at_review_idea(world, PEPPER)
    token = login(client, "cb.qt-gl")

    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(app.extensions["ocop_engine"], "complete_task", fail)
    response = client.post(f"/inbox/tasks/{cycle.task('review_idea').id}",
                           data={"csrf_token": token, "decision": "accept"})
    assert response.status_code == status and message in response.get_data(as_text=True)


def test_a_task_completed_meanwhile_is_gone(world, client):
    cycle = at_review_idea(world, PEPPER)
    task_id = cycle.task("review_idea").id
    token = login(client, "cb.qt-gl")
    assert client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "decision": "accept"}).status_code == 302
    # The second submission (a double click, a second tab) lost the race to the first: 409, saying so.
    again = client.post(f"/inbox/tasks/{task_id}", data={"csrf_token": token, "decision": "accept"})
    assert again.status_code == 409 and "Việc này vừa được hoàn thành" in again.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.get(ProcessInstance, cycle.instance_id).current_step == 3


def test_completing_without_the_csrf_token_is_refused(world, client):
    cycle = at_review_idea(world, PEPPER)
    login(client, "cb.qt-gl")
    task_id = cycle.task("review_idea").id
    assert client.post(f"/inbox/tasks/{task_id}", data={"decision": "accept"}).status_code == 400
    assert client.post(f"/inbox/tasks/{task_id}/draft", data={"decision": "accept"}).status_code == 400
    assert cycle.ready_forms() == ["review_idea"]


def test_each_form_key_renders(world, db_url, tmp_path):
    """Every form of the product cycle opens, as the user who acts on it; the
    council's forms through a real session of a council of three. Thirteen
    logins: the login rate limit is off."""
    client = make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False).test_client()
    for n in (1, 2):  # so that members can disagree and the secretary records the spread
        add_officer(world, f"hd.qt-gl.tv{n}", "district_council", "QT-GL")
    honey = Cycle(world, HONEY).start()
    seen = set()

    def opens(form_key: str, task=None) -> None:
        task = task or honey.task(form_key)
        if task.assignee_id is not None:  # a member's sheet, the secretary's record, the chair's sign-off
            with world.db.transaction() as session:
                username = session.scalar(select(User.username).where(User.id == task.assignee_id))
        else:
            username = {"producer": "tht.matonggioson", "commune_officer": "cb.qt-gl-gs",
                        "district_officer": "cb.qt-gl", "district_council": "hd.qt-gl"}[task.role]
        login(client, username)
        response = client.get(f"/inbox/tasks/{task.id}")
        if form_key == "council_attendance":  # recorded by the council session pages, never as a form
            assert response.status_code == 302 and response.headers["Location"] == "/councils/", form_key
        else:
            assert response.status_code == 200, form_key
            assert task.form_key == form_key
        seen.add(form_key)

    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan",
                     "support_record", "submit_dossier", "check_dossier", "council_attendance"):
        while form_key not in honey.ready_forms():
            honey.do(honey.ready_forms()[0])
        opens(form_key)
    honey.open_session()
    sheets = [task for task in honey.ready() if task.form_key == "council_sheet"]
    assert len(sheets) == 3
    opens("council_sheet", sheets[0])
    honey.score([40, 80, 60])  # a spread above the limit: the secretary records it
    opens("council_spread")
    honey.do("council_spread", {"notes": "Hội đồng thảo luận lại phần C rồi chấm lại"})
    honey.score([60])
    opens("council_sign_off")
    # The old typed-subtotal sheet, for instances started before council sessions.
    opens("score_product", at_score(world, PEPPER).task("score_product"))
    assert len(seen) == 13


def test_the_council_marks_missed_starred_minimums(world, client):
    """The old sheet's ticked minimums; today's are computed from each
    criterion's average (tests/test_council_rules.py)."""
    cycle = at_score(world)  # Hồ tiêu Gio Linh: criteria set S10
    token = login(client, "hd.qt-gl")
    page = client.get(f"/inbox/tasks/{cycle.task('score_product').id}").get_data(as_text=True)
    assert 'name="minimums_missed" value="A.1.5"' in page and "bắt buộc từ 4 sao" in page
    rows = {"sheets-0-member": "Chủ tịch", "sheets-0-part_a": "30", "sheets-0-part_b": "19",
            "sheets-0-part_c": "26", "minimums_missed": ["A.1.5"]}  # 75 points, a 4-star minimum missed
    response = client.post(f"/inbox/tasks/{cycle.task('score_product').id}", data={"csrf_token": token, **rows})
    assert response.status_code == 302
    instance = cycle.instance()
    assert (instance.status, instance.stars) == ("completed", 3)  # not forwarded to the province
