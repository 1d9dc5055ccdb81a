"""The producers' portal: products and where they stand, registering
products and producers, starting a cycle, evidence files and who may see them."""
from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from pathlib import Path

from sqlalchemy import select, update

from storage.documents import MAX_SIZE
from storage.models import (
    Document,
    Jurisdiction,
    ProcessInstance,
    Producer,
    Product,
    RegistrationWindow,
    TaskDraft,
    User,
)
from testkit.cycle import Cycle, returned, sheets
from testkit.web_login import login

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def product_id(world, name: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Product.id).where(Product.name == name))


def card(page: str, pid: int) -> str:
    """The product's card on the portal list."""
    match = re.search(rf'<section class="card product" id="product-{pid}">(.*?)</section>', page, re.DOTALL)
    assert match, f"no card for product {pid}"
    return match.group(1)


def current_step(html: str) -> str | None:
    match = re.search(r'<li class="current"[^>]*>\s*<span class="step-no">(\d)</span>', html)
    return match.group(1) if match else None


def instances(world, pid: int) -> list[ProcessInstance]:
    with world.db.transaction() as session:
        return list(session.scalars(select(ProcessInstance).where(ProcessInstance.product_id == pid)))


def upload(client, token, pid, data: bytes, filename: str):
    return client.post(f"/portal/products/{pid}/documents", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), filename)})


def office_file(member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(member, "<doc/>")
    return buffer.getvalue()


# --- the list -------------------------------------------------------------------

def test_portal_lists_own_products_with_step_and_waiting_on(world, client):
    rice = Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
    rice.do("register_idea")
    rice.do("receive_idea")
    pepper = Cycle(world, "Hồ tiêu Gio Linh").start()
    Cycle(world, "Tinh dầu tràm Cam Lộ").start()
    login(client, "htx.giomy")
    page = client.get("/portal/").get_data(as_text=True)
    assert "Tinh dầu tràm" not in page  # another producer's product
    rice_card = card(page, rice.product_id)
    assert current_step(rice_card) == "2"
    assert '<li class="done"' in rice_card  # step 1, outreach
    assert "Chờ Cán bộ OCOP huyện: Đánh giá ý tưởng sản phẩm" in rice_card
    assert "/inbox/tasks/" not in rice_card  # not the producer's to do
    pepper_card = card(page, pepper.product_id)
    own_task = pepper.task("register_idea")
    assert "Chờ Chủ thể OCOP: Đăng ký ý tưởng sản phẩm" in pepper_card
    assert f'href="/inbox/tasks/{own_task.id}"' in pepper_card


def test_portal_shows_finished_cycles_outcome(world, client):
    pepper = Cycle(world, "Hồ tiêu Gio Linh").start().through_dossier()
    pepper.do("score_product", sheets(80))
    pepper.do("score_product", sheets(82))
    rice = Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
    for _round in range(4):  # one return more than allowed ends the cycle
        rice.do("register_idea")
        rice.do("receive_idea")
        rice.do("review_idea", returned("review_idea"))
    assert rice.instance().status == "completed"
    login(client, "htx.giomy")
    page = client.get("/portal/").get_data(as_text=True)
    pepper_card = card(page, pepper.product_id)
    assert "Được công nhận 4 sao OCOP" in pepper_card and pepper_card.count('<li class="done"') == 6
    rice_card = card(page, rice.product_id)
    assert "quá số lần được trả lại" in rice_card
    assert '<li class="stopped"' in rice_card and current_step(rice_card) is None


def test_portal_needs_sign_in(client):
    response = client.get("/portal/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- registering a product and starting its cycle ----------------------------------

def test_new_product_is_registered_and_its_cycle_started(world, client):
    token = login(client, "htx.giomy")
    form = client.get("/portal/products/new").get_data(as_text=True)
    assert 'name="csrf_token"' in form and "S26" in form
    with world.db.transaction() as session:
        producer = session.scalar(select(Producer).where(Producer.name == "HTX Nông nghiệp Gio Mỹ"))
        producer_id, owner_id = producer.id, producer.owner_user_id
    response = client.post("/portal/products/new", data={
        "csrf_token": token, "producer_id": producer_id, "name": "Nước mắm Gio Mỹ",
        "group_code": "S08", "registration_form": "02"})
    assert response.status_code == 302
    pid = product_id(world, "Nước mắm Gio Mỹ")
    assert response.headers["Location"].endswith(f"/portal/products/{pid}")
    [instance] = instances(world, pid)
    assert instance.status == "running" and instance.current_step == 2
    with world.db.transaction() as session:
        draft = session.scalar(select(TaskDraft).where(TaskDraft.user_id == owner_id))
        assert draft.data == {"registration_form": ["02"]}
    page = client.get(f"/portal/products/{pid}").get_data(as_text=True)
    assert "Chờ Chủ thể OCOP: Đăng ký ý tưởng sản phẩm" in page
    assert "Bắt đầu chu trình năm nay" not in page  # one cycle a year
    assert client.post(f"/portal/products/{pid}/start", data={"csrf_token": token}).status_code == 302
    assert len(instances(world, pid)) == 1


def test_registration_closed_keeps_the_product_to_start_later(world, client):
    with world.db.transaction() as session:
        closes = {w.id: w.closes_on for w in session.scalars(select(RegistrationWindow))}
        session.execute(update(RegistrationWindow).values(closes_on=date(2026, 1, 1)))
    token = login(client, "htx.giomy")
    with world.db.transaction() as session:
        producer_id = session.scalar(select(Producer.id).where(Producer.name == "HTX Nông nghiệp Gio Mỹ"))
    response = client.post("/portal/products/new", data={
        "csrf_token": token, "producer_id": producer_id, "name": "Mật ong Gio Mỹ",
        "group_code": "S04", "registration_form": "01"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    pid = product_id(world, "Mật ong Gio Mỹ")
    assert pid is not None and instances(world, pid) == []
    assert "chưa mở đăng ký ý tưởng sản phẩm" in page and "Bắt đầu chu trình năm nay" in page
    with world.db.transaction() as session:
        for window_id, day in closes.items():
            session.execute(update(RegistrationWindow).where(RegistrationWindow.id == window_id)
                            .values(closes_on=day))
    client.post(f"/portal/products/{pid}/start", data={"csrf_token": token, "registration_form": "01"})
    assert [i.status for i in instances(world, pid)] == ["running"]


def test_new_product_form_errors(world, client):
    token = login(client, "htx.giomy")
    with world.db.transaction() as session:
        other = session.scalar(select(Producer.id).where(Producer.name == "Công ty TNHH Tinh dầu tràm Cam Lộ"))
    response = client.post("/portal/products/new", data={
        "csrf_token": token, "producer_id": other, "name": " ", "group_code": "S99",
        "registration_form": "05"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    for message in ("Bắt buộc nhập.", "Chọn một nhóm sản phẩm trong danh sách.",
                    "Chọn chủ thể trong danh sách.", "Chọn sản phẩm mới hoặc sản phẩm đã có."):
        assert message in page
    with world.db.transaction() as session:
        assert session.scalar(select(Product.id).where(Product.group_code == "S99")) is None


def test_posts_need_the_csrf_token(world, client):
    login(client, "htx.giomy")
    pid = product_id(world, "Hồ tiêu Gio Linh")
    assert client.post(f"/portal/products/{pid}/start").status_code == 400
    assert instances(world, pid) == []


# --- one product -----------------------------------------------------------------

def test_detail_shows_returns_with_reasons_and_notifications(world, client):
    rice = Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
    rice.do("register_idea")
    rice.do("receive_idea")
    rice.do("review_idea", returned("review_idea"))
    login(client, "htx.giomy")
    page = client.get(f"/portal/products/{rice.product_id}").get_data(as_text=True)
    returns = page[page.index('id="returns"'):page.index('id="notifications"')]
    assert "Thiếu thông tin nguồn nguyên liệu" in returns and "Cán bộ OCOP huyện" in returns
    assert "Đánh giá ý tưởng sản phẩm" in returns
    notices = page[page.index('id="notifications"'):page.index('id="trainings"')]
    assert "được trả lại để bổ sung" in notices and "Thiếu thông tin nguồn nguyên liệu" in notices
    assert "Chờ Chủ thể OCOP" in page  # back with the producer to revise


def test_detail_of_a_recognised_product(world, client):
    pepper = Cycle(world, "Hồ tiêu Gio Linh").start().through_dossier()
    pepper.do("score_product", sheets(80))
    pepper.do("score_product", sheets(82))
    login(client, "htx.giomy")
    page = client.get(f"/portal/products/{pepper.product_id}").get_data(as_text=True)
    assert "Được công nhận 4 sao OCOP" in page
    trainings = page[page.index('id="trainings"'):page.index('id="promotion"')]
    assert "Tập huấn xây dựng phương án sản xuất kinh doanh" in trainings and "Hội trường UBND" in trainings
    promotion = page[page.index('id="promotion"'):page.index('id="documents"')]
    # Recognised by the province's decision (signed on the test clock's 2/3/2026); listed for 36 months.
    assert "02/03/2029" in promotion and "★★★★" in promotion and "Hội chợ, triển lãm" in promotion


def test_other_products_and_areas_answer_404(world, client):
    pid = product_id(world, "Gạo hữu cơ Gio Mỹ")
    token = login(client, "cty.tramcamlo")
    assert client.get(f"/portal/products/{pid}").status_code == 404
    assert client.get("/portal/products/999999").status_code == 404
    assert client.post(f"/portal/products/{pid}/start", data={"csrf_token": token}).status_code == 404
    assert upload(client, token, pid, PDF, "a.pdf").status_code == 404
    assert client.get("/portal/register").status_code == 404  # not a commune officer
    client.post("/logout", data={"csrf_token": token})
    login(client, "cb.qt-cl")  # officer of another district
    assert client.get(f"/portal/products/{pid}").status_code == 404
    assert instances(world, pid) == []


# --- evidence files --------------------------------------------------------------

def test_upload_is_stored_once_by_content_and_served_as_attachment(world, app, client):
    pid = product_id(world, "Hồ tiêu Gio Linh")
    token = login(client, "htx.giomy")
    assert upload(client, token, pid, PDF, "Giấy phép ATTP.pdf").status_code == 302
    assert upload(client, token, pid, PDF, "ban-sao.pdf").status_code == 302
    with world.db.transaction() as session:
        documents = list(session.scalars(select(Document).where(Document.product_id == pid).order_by(Document.id)))
    assert [d.filename for d in documents] == ["Giấy phép ATTP.pdf", "ban-sao.pdf"]
    assert documents[0].sha256 == documents[1].sha256 and documents[0].content_type == "application/pdf"
    root = Path(app.config["UPLOAD_DIR"])
    stored = [p for p in root.rglob("*") if p.is_file()]
    assert stored == [root / documents[0].sha256[:2] / documents[0].sha256]
    page = client.get(f"/portal/products/{pid}").get_data(as_text=True)
    assert "Giấy phép ATTP.pdf" in page
    response = client.get(f"/portal/documents/{documents[0].id}")
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/pdf"


def test_office_and_image_files_are_accepted(world, client):
    pid = product_id(world, "Hồ tiêu Gio Linh")
    token = login(client, "htx.giomy")
    assert upload(client, token, pid, office_file("word/document.xml"), "phuong-an.docx").status_code == 302
    assert upload(client, token, pid, office_file("xl/workbook.xml"), "bang-tinh.xlsx").status_code == 302
    assert upload(client, token, pid, b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "nhan.png").status_code == 302
    assert upload(client, token, pid, b"\xff\xd8\xff\xe0" + b"\0" * 32, "anh.JPG").status_code == 302


def test_uploads_refused(world, app, client):
    pid = product_id(world, "Hồ tiêu Gio Linh")
    token = login(client, "htx.giomy")
    too_big = upload(client, token, pid, b"%PDF-" + b"0" * MAX_SIZE, "lon.pdf")
    assert too_big.status_code == 400 and "Tệp quá lớn" in too_big.get_data(as_text=True)
    html = upload(client, token, pid, b"<html><script>alert(1)</script></html>", "trang.html")
    assert html.status_code == 400 and "Chỉ nhận tệp PDF" in html.get_data(as_text=True)
    exe = upload(client, token, pid, b"MZ\x90\x00\x03\x00\x00\x00" + b"\0" * 64, "ho-so.pdf")
    assert exe.status_code == 400 and "không đúng với phần mở rộng" in exe.get_data(as_text=True)
    not_word = upload(client, token, pid, office_file("xl/workbook.xml"), "gia-mao.docx")
    assert not_word.status_code == 400
    assert upload(client, token, pid, b"", "rong.pdf").status_code == 400
    with world.db.transaction() as session:
        assert session.scalar(select(Document.id).where(Document.product_id == pid)) is None
    assert not any(p.is_file() for p in Path(app.config["UPLOAD_DIR"]).rglob("*"))


def test_download_is_limited_to_the_producer_and_its_area_officers(world, app, client):
    pid = product_id(world, "Gạo hữu cơ Gio Mỹ")
    token = login(client, "htx.giomy")
    upload(client, token, pid, PDF, "ho-so.pdf")
    with world.db.transaction() as session:
        document_id = session.scalar(select(Document.id).where(Document.product_id == pid))
    for username, status in (("cty.tramcamlo", 404), ("cb.qt-cl", 404), ("cb.qt-gl-gm", 200), ("cb.qt-gl", 200)):
        other = app.test_client()
        login(other, username)
        assert other.get(f"/portal/documents/{document_id}").status_code == status, username
    assert app.test_client().get(f"/portal/documents/{document_id}").status_code == 302  # sign in first


def test_download_never_labels_a_file_as_html(world, app, client):
    pid = product_id(world, "Gạo hữu cơ Gio Mỹ")
    token = login(client, "htx.giomy")
    upload(client, token, pid, PDF, "ho-so.pdf")
    with world.db.transaction() as session:
        document = session.scalar(select(Document).where(Document.product_id == pid))
        document.content_type = "text/html"  # a row written by something else
        document_id = document.id
    response = client.get(f"/portal/documents/{document_id}")
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response.headers["Content-Security-Policy"]


# --- a commune officer registers a producer -----------------------------------------

REGISTRATION = {"name": "Tổ hợp tác Nước mắm Gio Mỹ", "kind": "cooperative_group",
                "username": "tht.nuocmamgiomy", "full_name": "Nguyễn Thị Mai", "password": "mat-khau-1",
                "product_name": "Nước mắm cá cơm Gio Mỹ", "group_code": "S08"}


def gio_my(world) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL-GM"))


def test_commune_officer_registers_a_producer_and_starts_its_cycle(world, app, client):
    token = login(client, "cb.qt-gl-gm")
    form = client.get("/portal/register").get_data(as_text=True)
    assert "Tổ hợp tác" in form and "Trang trại" in form and 'name="csrf_token"' in form
    response = client.post("/portal/register", data={"csrf_token": token, "commune_id": gio_my(world),
                                                     **REGISTRATION})
    assert response.status_code == 302
    pid = product_id(world, "Nước mắm cá cơm Gio Mỹ")
    with world.db.transaction() as session:
        producer = session.scalar(select(Producer).where(Producer.name == REGISTRATION["name"]))
        owner = session.get(User, producer.owner_user_id)
        assert producer.kind == "cooperative_group" and producer.commune.name == "Xã Gio Mỹ"
        assert owner.username == "tht.nuocmamgiomy" and owner.full_name == "Nguyễn Thị Mai"
    assert client.post(f"/portal/products/{pid}/start", data={"csrf_token": token}).status_code == 302
    assert [i.status for i in instances(world, pid)] == ["running"]
    assert "Nước mắm cá cơm Gio Mỹ" in client.get("/portal/").get_data(as_text=True)
    producer_client = app.test_client()
    login(producer_client, "tht.nuocmamgiomy", "mat-khau-1")
    page = producer_client.get("/portal/").get_data(as_text=True)
    assert "Chờ Chủ thể OCOP: Đăng ký ý tưởng sản phẩm" in page and "Hồ tiêu" not in page


def test_register_producer_form_errors(world, client):
    token = login(client, "cb.qt-gl-gm")
    with world.db.transaction() as session:
        other_commune = session.scalar(select(Producer.commune_id).where(
            Producer.name == "Công ty TNHH Tinh dầu tràm Cam Lộ"))
    response = client.post("/portal/register", data={
        "csrf_token": token, **REGISTRATION, "commune_id": other_commune, "kind": "bank",
        "username": "htx.giomy", "password": "short", "product_name": "", "group_code": "S99"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    for message in ("Chọn xã trong danh sách.", "Chọn loại hình chủ thể trong danh sách.",
                    "Tên đăng nhập đã có người dùng.", "Mật khẩu cần ít nhất 8 ký tự.",
                    "Bắt buộc nhập.", "Chọn một nhóm sản phẩm trong danh sách."):
        assert message in page
    bad_username = client.post("/portal/register", data={
        "csrf_token": token, "commune_id": gio_my(world), **REGISTRATION, "username": "Tên có dấu"})
    assert bad_username.status_code == 400 and "chữ thường không dấu" in bad_username.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.scalar(select(Producer.id).where(Producer.name == REGISTRATION["name"])) is None
