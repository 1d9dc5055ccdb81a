"""Insecure direct object references: a signed-in user of one area guesses
the ids of another area's objects -- neighbouring and random integer ids,
random and real-but-foreign task UUIDs -- on every route that takes an id.

Each attempt must answer 403 or 404 with none of the foreign data in the
body (the product's and producer's names, the values of its forms and
drafts, its files' names), must change nothing in the database, and where
the answer is 404, a foreign id must look exactly like an id that does not
exist (same status, same body once the id itself is blanked out).

The foreign objects all belong to "Hồ tiêu Gio Linh" (Gio Mỹ commune, Gio
Linh district, Quảng Trị); the intruders hold roles elsewhere: Cam Lộ (a
producer, a commune officer, a district officer of the same province) and
Lào Cai (its program manager).
"""
from __future__ import annotations

import io
import re
import uuid

import pytest
from sqlalchemy import func, select

from background.outbox import deliver_outbox
from engine.access import load_actor, may_read_product, oversight_of
from programme.products import may_manage, may_view
from storage.models import (
    ApiToken,
    Document,
    Enrolment,
    Incident,
    Notification,
    ProcessDefinition,
    ProcessInstance,
    Product,
    RoleAssignment,
    TaskDraft,
    User,
)
from testkit.cycle import Cycle, training_incident
from testkit.web_login import login
from tests.support.db_state import snapshot
from tests.support.product_records import PDF, notification_and_enrolment

PRODUCT = "Hồ tiêu Gio Linh"
PRODUCER = "HTX Nông nghiệp Gio Mỹ"
DESCRIPTION = "Hồ tiêu đỏ trồng trên đất bazan"  # the idea registration's form value (testkit/cycle.py)
DRAFT = "Nháp riêng của cán bộ huyện Gio Linh"
FILENAME = "giay-phep-rieng-gio-my.pdf"
TOKEN_NAME = "tich-hop-rieng-gio-linh"
SECRETS = (PRODUCT, PRODUCER, DESCRIPTION, DRAFT, FILENAME, TOKEN_NAME)

# Intruders: roles in other areas only.
INTRUDERS = ("cty.tramcamlo", "cb.qt-cl-ct", "cb.qt-cl", "qlct.lc")
BOTH = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# --- the foreign objects ---------------------------------------------------------------

def user_id(world, username: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(User.id).where(User.username == username))


def actor_of(world, username: str):
    with world.db.transaction() as session:
        return load_actor(session, user_id(world, username))


@pytest.fixture
def foreign(world, app):
    """Everything of one product an intruder could aim at: its instance at the
    district's idea review (claimed by the district officer, who keeps a
    draft), an evidence file, a notification and a training enrolment, and
    the district officer's API token."""
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    task_id = cycle.task("review_idea").id
    district = actor_of(world, "cb.qt-gl")
    world.claim(task_id, district)
    client = app.test_client()
    token = login(client, "htx.giomy")
    response = client.post(f"/portal/products/{cycle.product_id}/documents",
                           data={"csrf_token": token, "file": (io.BytesIO(PDF), FILENAME)},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    from programme.tokens import issue_token
    with world.db.transaction() as session:
        session.add(TaskDraft(task_id=task_id, user_id=district.user_id, data={"reasons": [DRAFT]},
                              saved_at=world.clock()))
        document = session.scalar(select(Document.id).where(Document.product_id == cycle.product_id))
        notification, enrolment = notification_and_enrolment(session, cycle, world.clock())
        api_token, _secret = issue_token(session, district.user_id, TOKEN_NAME, world.clock())
        api_token = api_token.id
    deliver_outbox(world)
    return {"task": task_id, "product": cycle.product_id, "instance": cycle.instance_id,
            "document": document, "notification": notification, "enrolment": enrolment,
            "token": api_token, "district_user": district.user_id}


# --- checking answers ------------------------------------------------------------------

_VOLATILE = re.compile(r'(name="csrf_token" value="|content=")[^"]*"')


def normalized(response, *ids) -> tuple[int, str]:
    """Status and body with the ids asked for (and CSRF tokens) blanked out."""
    body = _VOLATILE.sub(r'\1"', response.get_data(as_text=True))
    for value in ids:
        body = re.sub(rf"(?<![\w-]){re.escape(str(value))}(?![\w-])", "ID", body)
    return response.status_code, body


def refused(response, what: str, statuses=(403, 404), echoed: bool = False) -> None:
    """`echoed`: a search page shows the words searched for in its form."""
    body = response.get_data(as_text=True)
    if echoed:
        body = re.sub(r'value="[^"]*"', "", body)
    assert response.status_code in statuses, f"{what}: {response.status_code}"
    leaked = [secret for secret in SECRETS if secret in body]
    assert not leaked, f"{what}: the answer shows {leaked}"


class Intruder:
    """A signed-in user of another area, with the requests a page or a
    script of theirs could make."""

    def __init__(self, app, world, username: str):
        self.username = username
        self.client = app.test_client()
        self.token = login(self.client, username)
        self.actor = actor_of(world, username)

    def get(self, path):
        return self.client.get(path)

    def post(self, path, **data):
        return self.client.post(path, data={"csrf_token": self.token, **data})

    def api(self, method, path, json=None):
        return self.client.open(path, method=method, json=json, headers={"X-CSRFToken": self.token})


def unused_int(world, model) -> int:
    with world.db.transaction() as session:
        return (session.scalar(select(func.max(model.id))) or 0) + 1000


def neighbours(value: int) -> list[int]:
    return [n for n in (value - 1, value, value + 1) if n > 0]


def random_ids(seed: int) -> list[int]:
    import random
    rng = random.Random(seed)
    # Past 2**31 - 1 no id can exist (32-bit keys): refused before any query, 404 even where
    # the route would answer 403 to this user.
    return [rng.randrange(1, 10_000_000) for _ in range(2)] + [2**31 - 1, 2**40]


# --- integer ids -----------------------------------------------------------------------

PRODUCT_PAGES = ("/portal/products/{id}",)
INSTANCE_PAGES = ("/api/v1/instances/{id}", "/api/v1/instances/{id}/history")
AUDIT_PAGES = ("/audit/instances/{id}", "/audit/instances/{id}/frames.json", "/audit/instances/{id}/diagram.bpmn",
               "/audit/instances/{id}/export.json", "/audit/instances/{id}/export.csv")


def _readable_products(world, actor) -> set[int]:
    with world.db.transaction() as session:
        return {product.id for product in session.scalars(select(Product))
                if may_view(session, actor, product.producer)}


def _manageable_products(world, actor) -> set[int]:
    with world.db.transaction() as session:
        return {product.id for product in session.scalars(select(Product)) if may_manage(actor, product.producer)}


def _readable_instances(world, actor) -> tuple[set[int], set[int]]:
    """(instances the API shows the actor, instances the audit pages show it)."""
    scope = oversight_of(actor)
    api, audit = set(), set()
    with world.db.transaction() as session:
        for instance in session.scalars(select(ProcessInstance)):
            producer = instance.product.producer_id if instance.product else None
            if may_read_product(actor, producer, instance.areas.values()):
                api.add(instance.id)
            if scope.covers(instance.areas):
                audit.add(instance.id)
    return api, audit


@BOTH
def test_guessed_integer_ids_of_another_area(world, app, foreign):
    """Products, instances, documents, enrolments, notifications and tokens,
    by the foreign id, its neighbours and random ids: each answers exactly
    what the intruder may see (own things 200), everything else 403/404,
    and nothing changes."""
    before = snapshot(world)
    missing = {model: unused_int(world, model) for model in (Product, ProcessInstance, Document, Enrolment,
                                                             Notification, ApiToken)}
    for username in INTRUDERS:
        intruder = Intruder(app, world, username)
        products = _readable_products(world, intruder.actor)
        manageable = _manageable_products(world, intruder.actor)
        api_instances, audit_instances = _readable_instances(world, intruder.actor)
        assert foreign["product"] not in products and foreign["instance"] not in api_instances

        for pid in neighbours(foreign["product"]) + random_ids(1) + [missing[Product]]:
            response = intruder.get(f"/portal/products/{pid}")
            if pid in products:
                assert response.status_code == 200, (username, pid)
            else:
                refused(response, f"{username} GET product {pid}", (404,))
            if pid not in manageable:  # never post to what one may really change
                refused(intruder.post(f"/portal/products/{pid}/start"), f"{username} start {pid}", (404,))
                refused(intruder.client.post(f"/portal/products/{pid}/documents", data={
                    "csrf_token": intruder.token, "file": (io.BytesIO(PDF), "x.pdf")},
                    content_type="multipart/form-data"), f"{username} upload to {pid}", (404,))
                refused(intruder.api("POST", f"/api/v1/products/{pid}/start", {}),
                        f"{username} API start {pid}", (404,))

        for iid in neighbours(foreign["instance"]) + random_ids(2) + [missing[ProcessInstance]]:
            for template in INSTANCE_PAGES:
                response = intruder.get(template.format(id=iid))
                if iid in api_instances:
                    assert response.status_code == 200, (username, template, iid)
                else:
                    refused(response, f"{username} {template} {iid}", (404,))
            for template in AUDIT_PAGES:
                response = intruder.get(template.format(id=iid))
                if iid in audit_instances:
                    assert response.status_code == 200, (username, template, iid)
                else:
                    # 404 outside the reader's provinces; someone who reads no history at all
                    # gets 403 (or 404 for an id past any possible one, refused before routing).
                    refused(response, f"{username} {template} {iid}",
                            (404,) if oversight_of(intruder.actor) else (403, 404))
            if iid not in audit_instances:
                refused(intruder.post(f"/audit/instances/{iid}/verify"), f"{username} verify {iid}")

        for did in neighbours(foreign["document"]) + random_ids(3) + [missing[Document]]:
            refused(intruder.get(f"/portal/documents/{did}"), f"{username} document {did}", (404,))
        for eid in neighbours(foreign["enrolment"]) + random_ids(4) + [missing[Enrolment]]:
            refused(intruder.get(f"/portal/enrolments/{eid}.ics"), f"{username} enrolment {eid}", (404,))
        for nid in neighbours(foreign["notification"]) + random_ids(5) + [missing[Notification]]:
            refused(intruder.post(f"/notifications/{nid}/read"), f"{username} read {nid}", (404,))
        for tid in neighbours(foreign["token"]) + random_ids(6) + [missing[ApiToken]]:
            refused(intruder.api("DELETE", f"/api/v1/tokens/{tid}"), f"{username} revoke token {tid}", (404,))
            refused(intruder.post(f"/admin/users/{foreign['district_user']}/tokens/{tid}/revoke"),
                    f"{username} admin revoke {tid}", (403, 404) if tid > 2**31 - 1 else (403,))
        # Its own lists never carry the foreign product either.
        for path in ("/portal/", "/inbox/", "/notifications/", "/api/v1/products", "/api/v1/tasks",
                     "/api/v1/tokens"):
            response = intruder.get(path)
            assert response.status_code in (200, 403), (username, path)
            refused(response, f"{username} {path}", (200, 403))
    assert snapshot(world) == before


@BOTH
def test_a_foreign_id_answers_like_one_that_does_not_exist(world, app, foreign):
    """Where the answer is 404, it is the same answer, byte for byte once the
    id is blanked out: the intruder cannot tell "exists elsewhere" from
    "does not exist"."""
    missing = {"product": unused_int(world, Product), "instance": unused_int(world, ProcessInstance),
               "document": unused_int(world, Document), "enrolment": unused_int(world, Enrolment),
               "notification": unused_int(world, Notification), "token": unused_int(world, ApiToken),
               "task": str(uuid.uuid4())}
    requests = [
        ("GET", "/portal/products/{product}", None), ("POST", "/portal/products/{product}/start", {}),
        ("GET", "/portal/documents/{document}", None), ("GET", "/portal/enrolments/{enrolment}.ics", None),
        ("POST", "/notifications/{notification}/read", {}),
        ("GET", "/api/v1/instances/{instance}", None), ("GET", "/api/v1/instances/{instance}/history", None),
        ("POST", "/api/v1/products/{product}/start", {}), ("DELETE", "/api/v1/tokens/{token}", None),
        ("GET", "/inbox/tasks/{task}", None), ("POST", "/inbox/tasks/{task}", {"decision": "accept"}),
        ("POST", "/inbox/tasks/{task}/draft", {"reasons": "x"}), ("POST", "/inbox/tasks/{task}/claim", {}),
        ("POST", "/inbox/tasks/{task}/unclaim", {}),
        ("POST", "/inbox/tasks/{task}/reassign", {"username": "cb.qt-cl"}),
        ("POST", "/api/v1/tasks/{task}/claim", {}), ("POST", "/api/v1/tasks/{task}/unclaim", {}),
        ("POST", "/api/v1/tasks/{task}/complete", {"decision": "accept"}),
    ]
    before = snapshot(world)
    for username in ("cb.qt-cl", "qlct.lc"):
        intruder = Intruder(app, world, username)
        for method, template, data in requests:
            answers = []
            for ids in (foreign, missing):
                path = template.format(**ids)
                value = path.split("/")[-1] if template.endswith("}") else re.search(
                    r"/([0-9a-f-]{1,36})(?:\.ics|/[a-z]+)$", path).group(1)
                if path.startswith("/api/"):
                    response = intruder.api(method, path, data if method == "POST" else None)
                elif method == "POST":
                    response = intruder.post(path, **data)
                else:
                    response = intruder.get(path)
                refused(response, f"{username} {method} {path}", (404,))
                answers.append(normalized(response, value))
            assert answers[0] == answers[1], f"{username} {method} {template}: foreign and missing differ"
    assert snapshot(world) == before


# --- task UUIDs -------------------------------------------------------------------------

def _task_attempts(intruder: Intruder, task_id: str) -> list[tuple[str, object]]:
    colleague = "cb.qt-cl" if intruder.username != "cb.qt-cl" else intruder.username
    return [
        ("view", intruder.get(f"/inbox/tasks/{task_id}")),
        ("complete", intruder.post(f"/inbox/tasks/{task_id}", decision="accept")),
        ("draft", intruder.post(f"/inbox/tasks/{task_id}/draft", reasons="ghi đè")),
        ("claim", intruder.post(f"/inbox/tasks/{task_id}/claim")),
        ("unclaim", intruder.post(f"/inbox/tasks/{task_id}/unclaim")),
        ("reassign", intruder.post(f"/inbox/tasks/{task_id}/reassign", username=colleague)),
        ("reassign to self", intruder.post(f"/inbox/tasks/{task_id}/reassign", username=intruder.username)),
        ("API claim", intruder.api("POST", f"/api/v1/tasks/{task_id}/claim", {})),
        ("API unclaim", intruder.api("POST", f"/api/v1/tasks/{task_id}/unclaim", {})),
        ("API complete", intruder.api("POST", f"/api/v1/tasks/{task_id}/complete", {"decision": "accept"})),
    ]


@BOTH
def test_task_uuids_of_another_area(world, app, foreign):
    """The real (foreign) task id, ids one digit away from it and random
    UUIDs: view, complete, draft, claim, unclaim, reassign, in the pages and
    the API. All 404, nothing shown, the claim and the draft untouched."""
    real = foreign["task"]
    near = real[:-1] + ("0" if real[-1] != "0" else "1")
    guesses = [real, near, str(uuid.uuid4()), str(uuid.UUID(int=0)), real.upper()]
    before = snapshot(world)
    for username in INTRUDERS:
        intruder = Intruder(app, world, username)
        for task_id in guesses:
            for what, response in _task_attempts(intruder, task_id):
                refused(response, f"{username} {what} {task_id}", (404,))
    after = snapshot(world)
    assert after == before
    assert dict(after["tasks"])[real] == foreign["district_user"]  # still claimed by its officer


# --- the rest, by role (SQLite) -------------------------------------------------------------

@pytest.fixture
def foreign_incident(world, foreign):
    """An open incident on a second product of the same producer: its
    training could not be scheduled after the district accepted the idea."""
    return training_incident(world, "Gạo hữu cơ Gio Mỹ")


@SQLITE
def test_incidents_of_another_province(world, app, foreign, foreign_incident):
    """Retry and skip: another province's manager gets the same 404 as for an
    incident that does not exist; an auditor (reads, never acts) gets 403;
    officers are not let in at all."""
    missing = unused_int(world, Incident)
    before = snapshot(world)
    manager = Intruder(app, world, "qlct.lc")
    for action in ("retry", "skip"):
        answers = []
        for incident in (foreign_incident, missing):
            response = manager.post(f"/incidents/{incident}/{action}")
            refused(response, f"qlct.lc {action} {incident}", (404,))
            answers.append(normalized(response, incident))
        assert answers[0] == answers[1]
    assert "Gạo hữu cơ Gio Mỹ" not in manager.get("/incidents/").get_data(as_text=True)
    for username, status in (("kiemtoan", 403), ("cb.qt-gl", 403), ("cb.qt-cl", 403), ("htx.giomy", 403)):
        intruder = Intruder(app, world, username)
        for action in ("retry", "skip"):
            refused(intruder.post(f"/incidents/{foreign_incident}/{action}"), f"{username} {action}", (status,))
    assert snapshot(world) == before


@SQLITE
def test_users_definitions_and_checkpoints_are_not_reachable_by_id(world, app, foreign):
    """User administration answers 403 to everyone but administrators, for
    any id (their own included); another province's manager cannot
    activate, deploy for or migrate into a scope that is not theirs;
    checkpoints are for auditors and administrators."""
    with world.db.transaction() as session:
        national = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.province_id.is_(None)))
        assignment = session.scalar(select(RoleAssignment.id).where(RoleAssignment.user_id == foreign["district_user"]))
        quang_tri = session.scalar(select(ProcessInstance.areas).where(
            ProcessInstance.id == foreign["instance"]))["province"]
    xml = (__import__("pathlib").Path(__file__).resolve().parents[1] / "processes" / "ocop_cycle.bpmn").read_text()
    before = snapshot(world)
    for username in INTRUDERS:
        intruder = Intruder(app, world, username)
        own = intruder.actor.user_id
        for uid in neighbours(foreign["district_user"]) + [own, unused_int(world, User)]:
            refused(intruder.get(f"/admin/users/{uid}"), f"{username} user {uid}", (403,))
            refused(intruder.post(f"/admin/users/{uid}/roles", role="admin"), f"{username} role {uid}", (403,))
            refused(intruder.post(f"/admin/users/{uid}/active", active="0"), f"{username} lock {uid}", (403,))
            refused(intruder.post(f"/admin/users/{uid}/roles/{assignment}/remove"), f"{username} unrole", (403,))
            refused(intruder.post(f"/admin/users/{uid}/tokens", name="x"), f"{username} token {uid}", (403,))
        refused(intruder.get("/audit/checkpoints/1.json"), f"{username} checkpoint", (403,))
        expected = (403,)
        refused(intruder.post(f"/definitions/{national}/activate"), f"{username} activate national", expected)
        refused(intruder.post("/definitions/deploy", xml=xml, name="ocop_cycle", province_id=str(quang_tri),
                              message="chiếm quyền"), f"{username} deploy for Quảng Trị", expected)
        refused(intruder.post(f"/definitions/{national}/migrate"), f"{username} migrate", expected)
    assert snapshot(world) == before


@SQLITE
def test_filters_naming_another_area_show_nothing_of_it(world, app, foreign):
    """Filters take ids and names too: another province on the dashboard is
    refused (403, never quietly replaced), and searches, exports and lists
    filtered on the foreign commune or product come back without it."""
    with world.db.transaction() as session:
        areas = session.scalar(select(ProcessInstance.areas).where(ProcessInstance.id == foreign["instance"]))
    before = snapshot(world)
    manager = Intruder(app, world, "qlct.lc")
    for path in ("/dashboard/", "/dashboard/funnel.csv", "/dashboard/stars.csv", "/dashboard/returns.csv",
                 "/dashboard/step-times.csv", "/dashboard/overdue.csv"):
        refused(manager.get(f"{path}?province={areas['province']}"), f"qlct.lc {path}", (403,))
    for path in (f"/audit/?product={PRODUCT}", f"/audit/?producer={PRODUCER}", "/audit/?commune=Gio Mỹ",
                 f"/audit/export.json?product={PRODUCT}", f"/audit/export.csv?product={PRODUCT}", "/incidents/",
                 f"/api/v1/tasks?commune={areas['commune']}", f"/inbox/?commune={areas['commune']}"):
        refused(manager.get(path), f"qlct.lc {path}", (200,), echoed=True)
    # The same search by the product's own program manager finds it: the check above can see a leak.
    own = Intruder(app, world, "qlct.qt").get(f"/audit/?product={PRODUCT}").get_data(as_text=True)
    assert PRODUCT in re.sub(r'value="[^"]*"', "", own)
    officer = Intruder(app, world, "cb.qt-cl")
    for path in (f"/inbox/?commune={areas['commune']}", f"/inbox/?commune={areas['commune']}&scope=unassigned",
                 f"/api/v1/tasks?commune={areas['commune']}", "/api/v1/products?page=1"):
        refused(officer.get(path), f"cb.qt-cl {path}", (200,))
    assert snapshot(world) == before
