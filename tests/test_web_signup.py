"""A producer registers itself, then works in its portal."""
from sqlalchemy import select

from storage.models import Producer, Product, User
from testkit.web_login import csrf_token

FORM = {"name": "HTX Dược liệu Cam Tuyền", "kind": "cooperative", "username": "htx.camtuyen",
        "full_name": "Lê Thị Mai", "password": "mat-khau-manh", "product_name": "Trà cà gai leo",
        "group_code": "S12"}


def commune_id(world, code):
    from storage.models import Jurisdiction
    with world.db.transaction() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))


def test_a_producer_signs_up_and_lands_in_its_portal(world, client):
    page = client.get("/portal/signup").get_data(as_text=True)
    assert "Xã Cam Tuyền – Huyện Cam Lộ – Tỉnh Quảng Trị" in page
    response = client.post("/portal/signup", data={**FORM, "commune_id": commune_id(world, "QT-CL-CTu"),
                                                   "csrf_token": csrf_token(client)})
    assert response.status_code == 302 and "/portal/products/" in response.headers["Location"]
    assert "Trà cà gai leo" in client.get("/portal/").get_data(as_text=True)  # signed in
    with world.db.transaction() as session:
        user = session.scalar(select(User).where(User.username == "htx.camtuyen"))
        producer = session.scalar(select(Producer).where(Producer.owner_user_id == user.id))
        assert user.password_hash and "mat-khau" not in user.password_hash
        assert session.scalar(select(Product.group_code).where(Product.producer_id == producer.id)) == "S12"
        assert not user.roles  # a producer holds no officer role


def test_sign_up_errors_are_shown_and_nothing_is_created(world, client):
    bad = {**FORM, "commune_id": "999999", "username": "cb.qt-gl", "password": "short", "kind": "bank"}
    response = client.post("/portal/signup", data={**bad, "csrf_token": csrf_token(client)})
    assert response.status_code == 400
    with world.db.transaction() as session:
        assert session.scalar(select(Producer).where(Producer.name == FORM["name"])) is None


def test_sign_up_needs_csrf(client):
    assert client.post("/portal/signup", data=FORM).status_code == 400
