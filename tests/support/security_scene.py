"""The setting of the web security tests (tests/test_web_security_requests.py
and tests/test_web_security_responses.py): their database (SQLite only),
their application (checkpoint key made, login rate limit off, CSRF checks
on as in production), the scene they aim at, and signing in a test client.
Each of the two modules wraps these in its own fixtures."""
from __future__ import annotations

import io

from sqlalchemy import select

from audit import checkpoints
from background.outbox import deliver_outbox
from storage.models import Document, Jurisdiction, User
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support.app import make_app
from tests.support.product_records import PDF, notification_and_enrolment

PRODUCT = "Hồ tiêu Gio Linh"


def sqlite_url(tmp_path) -> str:
    """SQLite only: these properties belong to the web layer, not the database."""
    return f"sqlite:///{tmp_path / 'ocop.db'}"


def security_app(world, db_url, tmp_path, audit_signing_key):
    checkpoints.create_key(audit_signing_key)
    application = make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)
    # Everything the security tests check relies on Flask-WTF's check being on, as in production.
    assert application.config.get("WTF_CSRF_ENABLED", True) is True
    return application


def make_scene(world, app) -> dict:
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


def signed_in(app, username: str):
    client = app.test_client()
    return client, login(client, username)
