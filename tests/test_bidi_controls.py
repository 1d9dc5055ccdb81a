"""Bidirectional controls are refused like other control characters
(engine.forms.CONTROL_CHARACTERS, the one definition) at every kind of
entry: a task's form, the JSON API, the sign-up and product registration
pages, and an upload's file name. "Mật ong \u202egnp.exe" would show as
"Mật ong exe.png"."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from engine.forms import CONTROL_CHARACTERS
from storage.models import AuditEvent, Document, Producer, Product, User
from testkit.cycle import Cycle
from testkit.web_login import csrf_token, login
from tests.support.product_records import PDF

PEPPER = "Hồ tiêu Gio Linh"
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
        "\u200e", "\u200f", "\u061c"]
SPOOF = "Mật ong \u202egnp.exe"
UNPRINTABLE = "Không được chứa ký tự điều khiển"


def test_the_definition_covers_every_bidi_control_and_keeps_right_to_left_text():
    assert all(CONTROL_CHARACTERS.search(f"a{c}b") for c in BIDI)
    # Right-to-left scripts and joiners are text, not controls.
    assert not CONTROL_CHARACTERS.search("مرحبا שלום a\u200db Mật ong")


def test_a_task_form_refuses_them(world, client):
    cycle = Cycle(world, PEPPER).start()
    task = cycle.task("register_idea")
    token = login(client, "htx.giomy")
    response = client.post(f"/inbox/tasks/{task.id}", data={
        "csrf_token": token, "registration_form": "02", "product_description": SPOOF,
        "raw_materials": "Hồ tiêu", "expected_market": "Quảng Trị", "production_capacity": "2 tấn"})
    assert response.status_code == 422 and UNPRINTABLE in response.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.scalar(select(AuditEvent.id).where(AuditEvent.instance_id == cycle.instance_id,
                                                          AuditEvent.kind == "task_completed")) is None


def test_the_api_refuses_them(world, app):
    cycle = Cycle(world, PEPPER).start()
    task = cycle.task("register_idea")
    client = app.test_client()
    token = login(client, "htx.giomy")
    named = client.post("/api/v1/tokens", json={"name": "kịch bản \u2066x"}, headers={"X-CSRFToken": token})
    assert named.status_code == 422 and "name" in named.get_json()["error"]["fields"]
    completed = client.post(f"/api/v1/tasks/{task.id}/complete", headers={"X-CSRFToken": token}, json={
        "registration_form": "02", "product_description": SPOOF, "raw_materials": "Hồ tiêu",
        "expected_market": "Quảng Trị", "production_capacity": "2 tấn"})
    assert completed.status_code == 422, completed.get_json()
    assert "product_description" in completed.get_json()["error"]["fields"]


@pytest.mark.parametrize("field", ["name", "full_name", "product_name"])
def test_sign_up_refuses_them(world, client, field):
    form = {"name": "HTX Dược liệu Cam Tuyền", "kind": "cooperative", "username": "htx.camtuyen",
            "full_name": "Lê Thị Mai", "password": "mat-khau-manh", "product_name": "Trà cà gai leo",
            "group_code": "S12"}
    with world.db.transaction() as session:
        commune = session.scalar(select(Producer.commune_id).limit(1))
    response = client.post("/portal/signup", data={**form, field: SPOOF, "commune_id": commune,
                                                   "csrf_token": csrf_token(client)})
    assert response.status_code == 400 and UNPRINTABLE in response.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.scalar(select(User.id).where(User.username == "htx.camtuyen")) is None


def test_product_registration_refuses_them(world, client):
    token = login(client, "htx.giomy")
    with world.db.transaction() as session:
        producer_id = session.scalar(select(Producer.id).where(Producer.name == "HTX Nông nghiệp Gio Mỹ"))
    response = client.post("/portal/products/new", data={
        "csrf_token": token, "producer_id": producer_id, "name": SPOOF, "group_code": "S08",
        "registration_form": "02"})
    assert response.status_code == 400 and UNPRINTABLE in response.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.scalar(select(Product.id).where(Product.name == SPOOF)) is None


def test_an_upload_named_with_them_is_refused(world, client):
    with world.db.transaction() as session:
        pid = session.scalar(select(Product.id).where(Product.name == PEPPER))
    token = login(client, "htx.giomy")
    response = client.post(f"/portal/products/{pid}/documents", content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (io.BytesIO(PDF), "ho-so\u202efdp.exe.pdf")})
    assert response.status_code == 400 and "Tên tệp chứa ký tự điều khiển" in response.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.scalar(select(Document.id).where(Document.product_id == pid)) is None
