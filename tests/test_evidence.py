"""Evidence tied to criteria (issue 15, item 8): a document names criteria
of its product's set (validated, kept in sheet order), the cycle it was
uploaded for and a validity date; migration 0015 adds the columns (and
takes them away again) on SQLite and PostgreSQL."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, select

from engine.access import load_actor
from programme import documents, score_sheets
from storage.db import Database
from storage.documents import DocumentRefused, DocumentStore
from storage.migrate import alembic_config, upgrade
from storage.models import Document, Producer, Product
from testkit.web_login import login
from tests.support.product_records import PDF

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def pepper(world):
    """(producer's actor, product id) of HTX Gio Mỹ's pepper (set S10)."""
    with world.db.transaction() as session:
        product = session.scalar(select(Product).where(Product.name == "Hồ tiêu Gio Linh"))
        owner = session.get(Producer, product.producer_id).owner_user_id
        return load_actor(session, owner), product.id


def test_criteria_are_checked_against_the_products_set(world, tmp_path):
    actor, pid = pepper(world)
    store = DocumentStore(tmp_path)
    with pytest.raises(DocumentRefused) as refused:
        documents.add_document(world.db, store, actor, pid, "a.pdf", PDF, NOW, criteria=["A.1.1", "Z.9"])
    assert refused.value.reason == "criteria"
    with pytest.raises(DocumentRefused):  # S26's case criterion is not in S10
        documents.add_document(world.db, store, actor, pid, "a.pdf", PDF, NOW, criteria=["C.8.1"])
    kept = documents.add_document(world.db, store, actor, pid, "a.pdf", PDF, NOW,
                                  criteria=["C.7", "A.1.1", "A.1.1"], valid_until=date(2026, 12, 31))
    with world.db.transaction() as session:
        row = session.get(Document, kept.id)
        assert row.criteria == ["A.1.1", "C.7"]  # each once, in sheet order
        assert row.valid_until == date(2026, 12, 31) and row.instance_id is None
    assert not any(tmp_path.rglob("*.pdf"))


def test_a_cycle_of_another_product_is_refused(world, tmp_path):
    from testkit.cycle import Cycle
    actor, pid = pepper(world)
    rice = Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
    with pytest.raises(DocumentRefused) as refused:
        documents.add_document(world.db, DocumentStore(tmp_path), actor, pid, "a.pdf", PDF, NOW,
                               instance_id=rice.instance_id)
    assert refused.value.reason == "cycle"


def test_the_upload_form_ties_the_file_to_criteria_and_a_date(world, app, client):
    _actor, pid = pepper(world)
    token = login(client, "htx.giomy")
    page = client.get(f"/portal/products/{pid}").get_data(as_text=True)
    for item in score_sheets.scorable_items("S10"):
        assert f'name="criteria" value="{item["id"]}"' in page
    assert 'type="date" name="valid_until"' in page

    def upload(**fields):
        return client.post(f"/portal/products/{pid}/documents", content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (io.BytesIO(PDF), "giay-phep.pdf"), **fields})

    bad = upload(criteria=["A.9.9"])
    assert bad.status_code == 400 and "không thuộc bộ tiêu chí" in bad.get_data(as_text=True)
    bad_date = upload(valid_until="31/12/2026")
    assert bad_date.status_code == 400 and "Ngày hết hiệu lực không hợp lệ" in bad_date.get_data(as_text=True)
    assert upload(criteria=["A.1.1"], valid_until="2025-12-31").status_code == 302
    page = client.get(f"/portal/products/{pid}").get_data(as_text=True)
    assert "Hết hạn" in page  # the clock is in March 2026
    with world.db.transaction() as session:
        rows = session.scalars(select(Document).where(Document.product_id == pid)).all()
    assert [(r.criteria, r.valid_until) for r in rows] == [(["A.1.1"], date(2025, 12, 31))]


def test_expiry_is_a_local_date():
    # 17:30 UTC on 31 Dec is already 1 Jan in Vietnam.
    assert score_sheets.local_today(datetime(2026, 12, 31, 17, 30, tzinfo=timezone.utc)) == date(2027, 1, 1)
    doc = Document(valid_until=date(2026, 12, 31))
    assert score_sheets.is_expired(doc, date(2027, 1, 1)) and not score_sheets.is_expired(doc, date(2026, 12, 31))
    assert not score_sheets.is_expired(Document(valid_until=None), date(2030, 1, 1))


def test_migration_0015_adds_and_removes_the_columns(db_url):
    database = Database(db_url)
    try:
        upgrade(database.sql_engine)
        columns = {c["name"]: c for c in inspect(database.sql_engine).get_columns("document")}
        assert {"criteria", "valid_until", "instance_id"} <= set(columns)
        assert columns["valid_until"]["nullable"] and columns["instance_id"]["nullable"]
        assert not columns["criteria"]["nullable"]
        foreign = inspect(database.sql_engine).get_foreign_keys("document")
        assert any(fk["referred_table"] == "process_instance" and fk["constrained_columns"] == ["instance_id"]
                   for fk in foreign)
        config = alembic_config(database.sql_engine.url.render_as_string(hide_password=False))
        with database.sql_engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0014")
        assert not {"criteria", "valid_until", "instance_id"} & {
            c["name"] for c in inspect(database.sql_engine).get_columns("document")}
        upgrade(database.sql_engine)
        assert "criteria" in {c["name"] for c in inspect(database.sql_engine).get_columns("document")}
    finally:
        database.dispose()
