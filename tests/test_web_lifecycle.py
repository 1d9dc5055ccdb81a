"""The certificate's pages (web/lifecycle.py) on SQLite and PostgreSQL: the
panel on the producer's product page (the re-evaluation window, the
"Đề nghị nâng hạng" button), the upgrade request and its refusals, the
certificate's life page, and what changed since the recognition on an
upgrade's council sheet page; 404 for anybody else's certificate.
"""
from datetime import timedelta

from sqlalchemy import select

from engine.access import load_actor
from programme.certificates import local_today, reevaluation_window, running_upgrade
from storage.models import Product, User
from testkit.web_login import login
from tests.support.certificate_life import Life
from tests.support.councils import MEMBERS, province_council
from tests.support.inbox_world import HONEY, PEPPER, user_id

PRODUCER = "htx.giomy"


def certified(world, days_left: int = 900, stars: int = 3) -> Life:
    today = local_today(world)
    return Life(world, PEPPER, stars=stars, issued_on=today - timedelta(days=1095 - days_left),
                valid_until=today + timedelta(days=days_left))


def honey_owner(world) -> str:
    with world.db.reading() as session:
        product = session.scalar(select(Product).where(Product.name == HONEY))
        return session.get(User, product.producer.owner_user_id).username


def vn(day) -> str:
    return day.strftime("%d/%m/%Y")


def test_the_product_page_shows_the_window_and_the_upgrade_button(world, client):
    life = certified(world)
    login(client, PRODUCER)
    page = client.get(f"/portal/products/{life.product_id}").get_data(as_text=True)
    window = reevaluation_window(life.certificate().valid_until)
    assert f"Nhận hồ sơ đánh giá lại từ {vn(window.opens)} đến {vn(window.closes)}" in page
    assert "Đề nghị nâng hạng" in page and life.certificate().number in page
    english = client.get(f"/portal/products/{life.product_id}?lang=en").get_data(as_text=True)
    assert "Đề nghị nâng hạng" not in english


def test_the_producer_asks_for_an_upgrade_once(world, client):
    life = certified(world)
    token = login(client, PRODUCER)
    url = f"/lifecycle/certificates/{life.certificate_id}/upgrade"
    response = client.post(url, data={"csrf_token": token})
    assert response.status_code == 303
    with world.db.reading() as session:
        instance_id = running_upgrade(session, life.product_id)
    assert instance_id and life.forms(instance_id) == ["upgrade_dossier"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Đã gửi đề nghị nâng hạng" in page and "Mở việc đang chờ bạn" in page
    assert "Sản phẩm đang có một đề nghị nâng hạng chưa xong." in page  # the button gives way to the reason
    again = client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "Sản phẩm đang có một đề nghị nâng hạng chưa xong." in again.get_data(as_text=True)
    # The dossier's task page speaks Vietnamese.
    task = life.task("upgrade_dossier", instance_id)
    form = client.get(f"/inbox/tasks/{task.id}").get_data(as_text=True)
    assert "Tóm tắt những thay đổi từ lần công nhận trước" in form and "criteria_touched" in form


def test_someone_elses_certificate_is_not_found(world, client):
    life = certified(world)
    token = login(client, honey_owner(world))
    assert client.post(f"/lifecycle/certificates/{life.certificate_id}/upgrade",
                       data={"csrf_token": token}).status_code == 404
    assert client.get(f"/lifecycle/certificates/{life.certificate_id}").status_code == 404
    assert client.get("/lifecycle/certificates/99999999").status_code == 404
    with world.db.reading() as session:
        assert running_upgrade(session, life.product_id) is None


def test_the_commune_officer_sees_the_life_but_has_no_button(world, client):
    life = certified(world)
    login(client, "cb.qt-gl-gm")
    page = client.get(f"/lifecycle/certificates/{life.certificate_id}").get_data(as_text=True)
    assert life.certificate().number in page and "Còn hiệu lực" in page
    product = client.get(f"/portal/products/{life.product_id}").get_data(as_text=True)
    assert "Đề nghị nâng hạng" not in product


def test_an_upgrade_sheet_shows_what_changed(world, client):
    council_id, _ids = province_council(world)
    life = certified(world)
    from programme.certificates import start_upgrade
    from programme.councils import open_session, waiting_products
    with world.db.reading() as session:
        producer = load_actor(session, user_id(world, PRODUCER))
    upgrade = start_upgrade(world, producer, life.certificate_id)
    life.do("upgrade_dossier", {"summary": "Bao bì mới, thêm kênh xuất khẩu", "criteria_touched": ["A.1.1"],
                                "changes": "Đổi bao bì hút chân không, thêm mã QR truy xuất"}, instance_id=upgrade)
    life.do("upgrade_check", {"complete": True}, instance_id=upgrade)
    with world.db.reading() as session:
        secretary = load_actor(session, user_id(world, "hd.qt"))
        waiting = [w for w in waiting_products(session, secretary, council_id) if w.instance_id == upgrade]
    open_session(world, secretary, council_id, [waiting[0].task_id],
                 [user_id(world, u) for u, *_ in MEMBERS], local_today(world), "Sở NN&MT")
    sheet = next(t for t in life.ready(upgrade) if t.assignee_id == user_id(world, "ct.hdqt"))
    login(client, "ct.hdqt")
    page = client.get(f"/inbox/tasks/{sheet.id}").get_data(as_text=True)
    assert "Những gì đã thay đổi từ lần công nhận trước" in page
    assert "Đổi bao bì hút chân không" in page and "3 sao" in page
