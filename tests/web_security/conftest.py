"""The setting of the web security tests (test_requests.py: what a request
may do; test_responses.py: what a response gives away): their database (SQLite only),
their application (checkpoint key made, login rate limit off, CSRF checks
on as in production) and the scene they aim at."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from audit import checkpoints
from background.outbox import deliver_outbox
from storage.models import Document, Jurisdiction, User
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support.app import make_app
from tests.support.product_records import PDF, notification_and_enrolment

PRODUCT = "Hồ tiêu Gio Linh"


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: these properties belong to the web layer, not the database."""
    return f"sqlite:///{tmp_path / 'ocop.db'}"


@pytest.fixture
def app(world, db_url, tmp_path, audit_signing_key):
    checkpoints.create_key(audit_signing_key)
    application = make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)
    # Everything the security tests check relies on Flask-WTF's check being on, as in production.
    assert application.config.get("WTF_CSRF_ENABLED", True) is True
    return application


@pytest.fixture
def scene(world, app) -> dict:
    """The product at the district's idea review, with one evidence file,
    one notification and one training enrolment."""
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    client = app.test_client()
    token = login(client, "htx.giomy")
    assert client.post(f"/portal/products/{cycle.product_id}/documents",
                       data={"csrf_token": token, "file": (io.BytesIO(PDF), "giay-phep.pdf")},
                       content_type="multipart/form-data").status_code == 302
    with world.db.transaction() as session:
        document = session.scalar(select(Document.id).where(Document.product_id == cycle.product_id))
        notification, enrolment = notification_and_enrolment(session, cycle, world.clock())
        officer = session.scalar(select(User.id).where(User.username == "cb.qt-cl"))
        central = session.scalar(select(Jurisdiction.id).where(Jurisdiction.level == "central"))
    deliver_outbox(world)
    return {"task": cycle.task("review_idea").id, "product": cycle.product_id, "instance": cycle.instance_id,
            "document": document, "notification": notification, "enrolment": enrolment, "officer": officer,
            "central": str(central)}
