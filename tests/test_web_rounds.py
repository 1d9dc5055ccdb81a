"""The rounds and decisions pages on SQLite and PostgreSQL: the program
manager's rounds of the year, a round's page, the inbox's decision task
sent to the decision page, a decision recorded there by the province's
People's Committee (its page lists the certificate), and refusals."""
from sqlalchemy import select

from storage.recognition_models import Certificate, Decision, RoundEntry
from testkit.cycle import Cycle, sheets
from testkit.web_login import login
from tests.support.inbox_world import area_id

PEPPER = "Hồ tiêu Gio Linh"


def waiting_for_decision(world) -> Cycle:
    cycle = Cycle(world, PEPPER, decide=False).start().through_dossier()
    cycle.do("score_product", sheets(75))
    cycle.do("score_product", sheets(80))
    assert cycle.ready_forms() == ["recognition_decision"]
    return cycle


def test_rounds_pages_and_a_decision_recorded_on_its_page(world, app):
    cycle = waiting_for_decision(world)
    qt = area_id(world, "QT")
    manager = app.test_client()
    login(manager, "qlct.qt")
    listing = manager.get(f"/rounds/?province={qt}&year=2026").get_data(as_text=True)
    assert "Đợt 1 năm 2026" in listing and "Đợt đánh giá" in listing
    with world.db.transaction() as session:
        round_id = session.scalar(select(RoundEntry.round_id).where(RoundEntry.instance_id == cycle.instance_id))
    page = manager.get(f"/rounds/{round_id}").get_data(as_text=True)
    assert PEPPER in page and "Chờ quyết định công nhận của Ủy ban nhân dân tỉnh" in page

    committee = app.test_client()
    token = login(committee, "ubnd.qt")
    task = cycle.task("recognition_decision")
    inbox = committee.get("/inbox/").get_data(as_text=True)
    assert "Chờ quyết định công nhận của Ủy ban nhân dân tỉnh — Đợt 1 năm 2026, xét trước 30/06/2026" in inbox
    moved = committee.get(f"/inbox/tasks/{task.id}")
    assert moved.status_code == 302 and "/rounds/decisions/new" in moved.headers["Location"]
    form = committee.get(moved.headers["Location"]).get_data(as_text=True)
    assert PEPPER in form and "Công nhận 4 sao" in form
    today = world.clock().date().isoformat()
    refused = committee.post("/rounds/decisions/new", data={
        "csrf_token": token, "authority": "province", "area": qt, "instance_id": cycle.instance_id,
        "number": "", "signed_on": today, "signer": "Nguyễn Văn An"})
    assert refused.status_code == 200 and "Số quyết định" in refused.get_data(as_text=True)
    done = committee.post("/rounds/decisions/new", data={
        "csrf_token": token, "authority": "province", "area": qt, "instance_id": cycle.instance_id,
        "number": "77/QĐ-UBND", "signed_on": today, "signer": "Nguyễn Văn An, Phó Chủ tịch"})
    assert done.status_code == 302
    with world.db.transaction() as session:
        decision_id = session.scalar(select(Decision.id))
        certificate = session.scalar(select(Certificate))
    shown = committee.get(f"/rounds/decisions/{decision_id}").get_data(as_text=True)
    assert "77/QĐ-UBND" in shown and certificate.number in shown and f"/certificates/{certificate.id}" in shown
    assert manager.get(f"/rounds/decisions/{decision_id}").status_code == 200
    english = manager.get(f"/rounds/decisions/{decision_id}?lang=en").get_data(as_text=True)
    assert "Decision" in english

    producer = app.test_client()
    login(producer, "htx.giomy")
    assert producer.get("/rounds/").status_code == 403
    other = app.test_client()
    other_token = login(other, "qlct.lc")
    assert other.get(f"/rounds/{round_id}").status_code == 404
    assert other.get(f"/rounds/decisions/{decision_id}").status_code == 404
    stranger = other.post("/rounds/decisions/new", data={
        "csrf_token": other_token, "authority": "province", "area": qt, "instance_id": cycle.instance_id,
        "number": "78/QĐ-UBND", "signed_on": today, "signer": "Ai đó"})
    assert stranger.status_code == 403
