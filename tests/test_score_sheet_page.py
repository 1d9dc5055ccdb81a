"""The council member's score sheet (form council_sheet) and the producer's
self-assessment (form 02, in submit_dossier) on the task page: the sheet of
the product's criteria set grouped by section, points from the data, the
self-assessed level and the evidence beside each criterion (expired
flagged), the posted form in the contract's shape, recusal, the draft, and
evidence opened inline with the download's access rule. The sheet task comes
from a tiny diagram (tests/support/sheet_world.py) until the cycle carries it."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from engine.forms import FORMS
from programme import score_sheets
from storage.models import AuditEvent, Document, TaskDraft
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support.inbox_world import PEPPER
from tests.support.product_records import PDF
from tests.support.sheet_world import (
    HOMESTAY,
    JAM,
    MEMBER,
    PRODUCER,
    SHEET_BPMN,
    product_of,
    sheet_task,
)
from web import task_forms

# The pages on SQLite (the queries are the portal's and the inbox's, tested on
# both); the stored columns on both in tests/test_evidence.py.
on_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


@pytest.fixture
def jam_task(world, monkeypatch):
    return sheet_task(world)


def every_level(code: str, pick=-1) -> dict[str, str]:
    return {item["id"]: item["levels"][pick]["key"] for item in score_sheets.scorable_items(code)}


def posted(levels: dict[str, str], **extra) -> dict:
    data = {f"level__{cid}": key for cid, key in levels.items()}
    data.update(extra)
    return data


def upload(client, token, pid, data: bytes, filename: str, criteria=(), valid_until=""):
    return client.post(f"/portal/products/{pid}/documents", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), filename),
                             "criteria": list(criteria), "valid_until": valid_until})


def criterion_block(page: str, cid: str) -> str:
    start = page.index(f'id="c-{cid}"')
    return page[start:page.index("</fieldset>", start)]


def completed_form(world, task_id: str) -> dict:
    with world.db.transaction() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.kind == "task_completed")).all()
        return next(e.data["form"] for e in events if e.data.get("task_id") == task_id)


# --- the page ------------------------------------------------------------------

@on_sqlite
def test_the_member_sees_the_s07_sheet_by_section_with_points_from_the_data(world, client, jam_task):
    login(client, MEMBER)
    page = client.get(f"/inbox/tasks/{jam_task}").get_data(as_text=True)
    # The product summary at the top.
    for text in (JAM, "HTX Nông nghiệp Gio Mỹ", "S07 – Chế biến từ rau, củ, quả, hạt"):
        assert text in page, text
    assert page.index('data-section="A"') < page.index('data-section="B"') < page.index('data-section="C"')
    items = score_sheets.scorable_items("S07")
    assert page.count('<fieldset class="criterion') == len(items) == 32
    for item in items:
        for level in item["levels"]:
            assert (f'name="level__{item["id"]}" value="{level["key"]}" data-points="{level["points"]}"'
                    in page), level["key"]
    assert "Yêu cầu tối thiểu cho 3 sao" in criterion_block(page, "A.1.1")
    # The bilingual label item has no printed options: the implied ones, in words.
    label = criterion_block(page, "A.2.4")
    assert "Không đạt" in label and "Đạt" in label and 'value="A.2.4#yes" data-points="1"' in label
    # The producer's own level beside the criterion.
    assert "Chủ thể tự đánh giá" in criterion_block(page, "A.1.1")
    assert "2 điểm – Sử dụng nguyên liệu có nguồn gốc trong tỉnh từ 50% đến dưới 75%" in criterion_block(page, "A.1.1")
    # Recusal, eliminations (the set's line and the criteria's), the totals bar, the script.
    assert "Tôi xin không chấm sản phẩm này (có xung đột lợi ích)" in page
    assert 'name="eliminations" value="set#0"' in page and 'name="eliminations" value="A.1.1#elim0"' in page
    assert "Hồ sơ bị loại khi" in page
    assert 'data-subtotal="A"' in page and "data-total" in page and "/static/js/sheet.js" in page
    # S07 needs the five samples; the dossier of this cycle does not list them.
    assert "Nộp 5 mẫu sản phẩm" in page and "không có trong hồ sơ" in page
    assert "<script>" not in page  # the CSP allows no inline script


@on_sqlite
def test_the_tourism_sheet_shows_its_cases_and_no_samples(world, client, monkeypatch):
    task_id = sheet_task(world, HOMESTAY, "S26")
    login(client, MEMBER)
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    block = criterion_block(page, "C.8")
    assert "Trường hợp 1: Dịch vụ du lịch do cộng đồng cung cấp" in block
    assert "Trường hợp 2: Điểm dịch vụ du lịch" in block
    assert 'value="C.8/case1#2" data-points="3"' in block and 'value="C.8/case2#1" data-points="1"' in block
    assert "Nộp 5 mẫu sản phẩm" not in page
    assert page.count('<fieldset class="criterion') == len(score_sheets.scorable_items("S26"))


@on_sqlite
def test_totals_come_from_the_data(world):
    assert score_sheets.sheet_totals("S07", every_level("S07")) == {"A": 40, "B": 25, "C": 35, "total": 100}
    assert score_sheets.sheet_totals("S26", {"C.8": "C.8/case2#2", "A.1.1": "nope"})["total"] == 3
    assert score_sheets.sheet_totals("S07", {})["total"] == 0


# --- posting ---------------------------------------------------------------------

@on_sqlite
def test_a_posted_sheet_becomes_the_contract_shape(world, client, jam_task):
    token = login(client, MEMBER)
    levels = every_level("S07", pick=0)
    response = client.post(f"/inbox/tasks/{jam_task}", data=posted(
        levels, csrf_token=token, eliminations=["A.1.1#elim0"], comments="  Mẫu đẹp  ", action="complete"))
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    assert completed_form(world, jam_task) == {"recused": False, "conflict_reason": "", "levels": levels,
                                               "eliminations": ["A.1.1#elim0"], "comments": "Mẫu đẹp"}


def test_parse_maps_the_radio_names_back():
    form = MultiDict([("level__A.1.1", "A.1.1#3"), ("level__C.8", ""), ("recused", "true"),
                      ("conflict_reason", " Họ hàng chủ thể "), ("eliminations", "set#0")])
    assert task_forms.parse_sheet("council_sheet", form, "S07") == {
        "recused": True, "conflict_reason": "Họ hàng chủ thể", "levels": {}, "eliminations": [], "comments": ""}
    assert task_forms.posted_levels(form) == {"A.1.1": "A.1.1#3"}


@on_sqlite
def test_a_missing_level_is_shown_beside_its_criterion(world, client, jam_task):
    token = login(client, MEMBER)
    levels = every_level("S07")
    levels.pop("B.5.1")
    response = client.post(f"/inbox/tasks/{jam_task}", data=posted(levels, csrf_token=token, action="complete"))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    block = criterion_block(page, "B.5.1")
    assert 'class="criterion has-error"' in page and "Hãy chọn một mức." in block
    assert "Hãy chọn một mức." not in criterion_block(page, "A.1.1")
    assert 'value="A.1.1#3" data-points="3" data-section="A" checked' in page  # what was chosen stays


@on_sqlite
def test_recusal_needs_a_reason(world, client, jam_task):
    token = login(client, MEMBER)
    refused = client.post(f"/inbox/tasks/{jam_task}", data={"csrf_token": token, "recused": "true",
                                                              "conflict_reason": "x", "action": "complete"})
    assert refused.status_code == 422
    assert re.search(r'id="err-conflict_reason"[^>]*>Hãy ghi lý do', refused.get_data(as_text=True))
    done = client.post(f"/inbox/tasks/{jam_task}", data={"csrf_token": token, "recused": "true",
                                                           "conflict_reason": "Là thành viên HTX",
                                                           "level__A.1.1": "A.1.1#1", "action": "complete"})
    assert done.status_code == 302
    form = completed_form(world, jam_task)
    assert form["recused"] is True and form["levels"] == {} and form["conflict_reason"] == "Là thành viên HTX"


# --- drafts ------------------------------------------------------------------------

@on_sqlite
def test_the_sheet_draft_comes_back_with_every_radio(world, client, jam_task):
    token = login(client, MEMBER)
    levels = every_level("S07", pick=1)
    saved = client.post(f"/inbox/tasks/{jam_task}/draft", headers={"X-Draft-Autosave": "1"},
                        data=posted(levels, csrf_token=token, eliminations="set#0", comments="Đang chấm"))
    assert saved.status_code == 200 and "saved_at" in saved.get_json()
    with world.db.transaction() as session:
        assert session.scalar(select(TaskDraft).where(TaskDraft.task_id == jam_task)) is not None
    page = client.get(f"/inbox/tasks/{jam_task}").get_data(as_text=True)
    for cid, key in levels.items():
        assert re.search(rf'value="{re.escape(key)}" data-points="[^"]*" data-section="." checked', page), cid
    assert 'value="set#0" checked' in page and "Đang chấm" in page
    total = score_sheets.sheet_totals("S07", levels)["total"]
    assert re.search(r'<output data-total>([^<]*)</output>', page).group(1) == f"{total:g}".replace(".", ",")


# --- evidence -------------------------------------------------------------------------

@on_sqlite
def test_evidence_is_listed_per_criterion_and_expired_flagged(world, app, client, jam_task):
    pid, instance_id = product_of(world, jam_task)
    producer = app.test_client()
    token = login(producer, PRODUCER)
    assert upload(producer, token, pid, PDF, "ATTP.pdf", ["A.1.1", "C.7"], "2026-01-31").status_code == 302
    assert upload(producer, token, pid, PNG, "vung-nguyen-lieu.png", ["A.1.1"], "2027-12-31").status_code == 302
    with world.db.transaction() as session:
        documents = session.scalars(select(Document).where(Document.product_id == pid).order_by(Document.id)).all()
        assert [d.instance_id for d in documents] == [instance_id, instance_id]  # the running cycle
        assert documents[0].criteria == ["A.1.1", "C.7"] and documents[0].valid_until == date(2026, 1, 31)
        pdf_id = documents[0].id
    login(client, MEMBER)
    page = client.get(f"/inbox/tasks/{jam_task}").get_data(as_text=True)
    block = criterion_block(page, "A.1.1")
    assert "ATTP.pdf" in block and "vung-nguyen-lieu.png" in block
    assert f'href="/portal/documents/{pdf_id}/view"' in block and 'target="_blank"' in block
    assert block.count("Hết hạn") == 1  # the clock says March 2026: the licence ran out in January
    assert "ATTP.pdf" in criterion_block(page, "C.7") and "ATTP.pdf" not in criterion_block(page, "A.1.2")
    # The dossier (the portal's product page) flags it too.
    product_page = producer.get(f"/portal/products/{pid}").get_data(as_text=True)
    assert "Hết hạn" in product_page and "A.1.1, C.7" in product_page and "Nộp 5 mẫu sản phẩm" in product_page


@on_sqlite
def test_inline_pdf_headers_and_access(world, app, client, jam_task):
    pid, _instance = product_of(world, jam_task)
    producer = app.test_client()
    token = login(producer, PRODUCER)
    upload(producer, token, pid, PDF, "kiem-nghiem.pdf", ["C.7"])
    upload(producer, token, pid, PNG, "anh.png", ["C.7"])
    with world.db.transaction() as session:
        pdf_id, png_id = session.scalars(select(Document.id).where(Document.product_id == pid)
                                         .order_by(Document.id)).all()
    login(client, MEMBER)
    response = client.get(f"/portal/documents/{pdf_id}/view")
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    image = client.get(f"/portal/documents/{png_id}/view")
    assert image.headers["Content-Disposition"].startswith("inline") and "sandbox" in image.headers[
        "Content-Security-Policy"]
    # The download stays a download.
    assert client.get(f"/portal/documents/{pdf_id}").headers["Content-Disposition"].startswith("attachment")
    # Another producer: 404 for both, as for a document that does not exist.
    other = app.test_client()
    login(other, "cty.tramcamlo")
    assert other.get(f"/portal/documents/{pdf_id}/view").status_code == 404
    assert other.get(f"/portal/documents/{pdf_id}").status_code == 404
    assert other.get("/portal/documents/999999/view").status_code == 404


@on_sqlite
def test_a_word_file_is_never_shown_inline(world, app, jam_task):
    from tests.test_web_portal import office_file
    pid, _instance = product_of(world, jam_task)
    producer = app.test_client()
    token = login(producer, PRODUCER)
    upload(producer, token, pid, office_file("word/document.xml"), "ban-cong-bo.docx", ["A.1.1"])
    with world.db.transaction() as session:
        doc_id = session.scalar(select(Document.id).where(Document.product_id == pid))
    response = producer.get(f"/portal/documents/{doc_id}/view")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/portal/documents/{doc_id}")


# --- self-assessment, spread, sign-off, attendance -------------------------------------

def test_the_self_assessment_maps_to_the_dossier(monkeypatch):
    form = MultiDict([("level__A.1.1", "A.1.1#3"), ("level__A.1.2", "A.1.2#2"), ("evidence", "lab_test")])
    assert task_forms.parse_sheet("submit_dossier", form, "S07") == {
        "self_assessment": {"A.1.1": "A.1.1#3", "A.1.2": "A.1.2#2"}, "self_assessment_score": 4.0}
    assert task_forms.parse_sheet("submit_dossier", MultiDict(), "S07") == {"self_assessment": {}}


@on_sqlite
def test_the_producer_self_assesses_on_the_dossier_page(world, client, monkeypatch):
    cycle = Cycle(world, PEPPER).start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan"):
        if form_key in cycle.ready_forms():
            cycle.do(form_key)
    task_id = cycle.task("submit_dossier").id
    token = login(client, PRODUCER)
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    assert "Tự đánh giá theo từng tiêu chí (mẫu 02, không bắt buộc)" in page
    assert 'name="level__A.1.1"' in page and 'data-mode="self"' in page
    assert 'name="recused"' not in page and 'name="eliminations"' not in page  # a producer does not recuse
    assert 'name="self_assessment_score"' not in page  # computed from the levels
    response = client.post(f"/inbox/tasks/{task_id}", data={
        "csrf_token": token, "evidence": ["business_registration", "product_samples"],
        "level__A.1.1": "A.1.1#3", "level__A.1.2": "A.1.2#2", "action": "complete"})
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    form = completed_form(world, task_id)
    assert form["self_assessment"] == {"A.1.1": "A.1.1#3", "A.1.2": "A.1.2#2"}
    assert form["self_assessment_score"] == score_sheets.sheet_totals("S10", form["self_assessment"])["total"]


def test_the_spread_and_sign_off_read_the_rank():
    data = {"province_rank": {"spread": 12.5, "spread_limit": 10, "totals": {"7": 80}},
            "province_panel": {"7": {"user_id": 7, "name": "Nguyễn Văn A"}},
            "province_session": {"session_id": 3}}
    about = score_sheets.rank_of(data, "task_spread_province")
    assert about["rank"]["spread"] == 12.5 and about["names"] == {"7": "Nguyễn Văn A"} and about["session_id"] == 3
    assert score_sheets.rank_of({}, "task_sign_off_district") == {"rank": {}, "names": {}, "session_id": None}


@on_sqlite
def test_attendance_is_taken_on_the_council_pages(world, client, monkeypatch):
    from tests.support import sheet_world
    monkeypatch.setitem(FORMS, "council_attendance", FORMS["council_sheet"])
    monkeypatch.setattr(sheet_world, "SHEET_BPMN", SHEET_BPMN.replace('"council_sheet"', '"council_attendance"'))
    task_id = sheet_task(world)
    login(client, MEMBER)
    response = client.get(f"/inbox/tasks/{task_id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(("/councils/", "/inbox/"))


@on_sqlite
@pytest.mark.parametrize("form_key,element", [("council_spread", "task_spread_province"),
                                              ("council_sign_off", "task_sign_off_province")])
def test_the_spread_and_sign_off_pages_show_the_result(world, client, monkeypatch, form_key, element):
    from tests.support import sheet_world
    rank = ('province_rank = {"average_shown": "71.50", "stars": 4, "disqualified": False, "spread": 12.5, '
            '"spread_limit": 10, "spread_exceeded": True, "totals": {"7": 78, "8": 65.5}, '
            '"sections": {"7": {"A": 30, "B": 20, "C": 28}}, "recused": [9], '
            '"reasons": [{"code": "spread", "vi": "Chênh lệch điểm vượt giới hạn", "en": "Spread over the limit"}]}\n'
            'province_panel = {"7": {"user_id": 7, "name": "Nguyễn Văn Bảy"}}')
    diagram = (SHEET_BPMN.replace('"council_sheet"', f'"{form_key}"').replace("task_score_province", element)
               .replace('dossier = {"evidence"', rank + '\ndossier = {"evidence"'))
    monkeypatch.setattr(sheet_world, "SHEET_BPMN", diagram)
    task_id = sheet_task(world)
    login(client, MEMBER)
    page = client.get(f"/inbox/tasks/{task_id}").get_data(as_text=True)
    for text in ("Kết quả chấm của hội đồng", "71.50", "12.5", "giới hạn 10", "Nguyễn Văn Bảy", "65.5",
                 "Chênh lệch điểm vượt giới hạn", "Thành viên không chấm (xung đột lợi ích): 1"):
        assert text in page, text
    assert '<textarea id="f-notes" name="notes"' in page
    if form_key == "council_sign_off":
        assert "Tôi xác nhận biên bản" in page and 'type="checkbox" name="confirmed"' in page


@on_sqlite
def test_the_sheet_in_english(world, client, jam_task):
    login(client, MEMBER)
    page = client.get(f"/inbox/tasks/{jam_task}?lang=en").get_data(as_text=True)
    block = criterion_block(page, "A.1.1")
    assert "Raw-material source" in block and "Minimum required for 3 stars" in block
    assert "Producer&#39;s self-assessment" in block or "Producer's self-assessment" in block
    assert "I will not score this product (conflict of interest)" in page
