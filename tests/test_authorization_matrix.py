"""Every endpoint x every role, in its own area and another: allowed or
refused, checked on the server. Refusals are 403 or 404 (never the data);
anonymous visitors are sent to sign in (pages) or get 401 (API)."""
import pytest
from sqlalchemy import select

from engine import checkpoints
from engine.outbox import deliver_outbox
from storage.models import Document, Enrolment, Notification, ProcessInstance, Training, User
from tests.conftest import make_app
from tests.cycle import Cycle
from tests.web_helpers import login

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
# Everyone the matrix signs in as: own area = Gio Mỹ commune, Gio Linh
# district, Quảng Trị province (where the product is); "other" elsewhere.
USERS = {
    "anonymous": None,
    "producer_own": "htx.giomy", "producer_other": "cty.tramcamlo",
    "commune_own": "cb.qt-gl-gm", "commune_other": "cb.qt-cl-ct",
    "district_own": "cb.qt-gl", "district_other": "cb.qt-cl",
    "district_council_own": "hd.qt-gl", "province_council_own": "hd.qt", "province_council_other": "hd.lc",
    "central_council": "hd.trunguong", "manager_own": "qlct.qt", "manager_other": "qlct.lc",
    "auditor": "kiemtoan", "admin": "admin",
}
OFFICERS = {"commune_own", "commune_other", "district_own", "district_other", "district_council_own",
            "province_council_own", "province_council_other", "central_council", "manager_own",
            "manager_other", "admin"}
SIGNED_IN = set(USERS) - {"anonymous"}
# Who may read the product's record: its producer, roles of its commune,
# district, province or the central level, and the auditor.
READERS = {"producer_own", "commune_own", "district_own", "district_council_own",
           "province_council_own", "manager_own", "central_council", "admin", "auditor"}
PRODUCERS = {"producer_own", "producer_other"}
# The auditor pages: auditors and administrators everything, program
# managers their own province (another province's instance answers 404).
AUDIT_SEARCH = {"auditor", "admin", "manager_own", "manager_other"}
AUDIT_INSTANCE = {"auditor", "admin", "manager_own"}
PRODUCT = "Hồ tiêu Gio Linh"

# (method, path template, form/json data, who is allowed). Placeholders:
# {task} the district officer's review task, {product}, {instance}, {document}, {user},
# {notification} one delivered to the producer, {enrolment} the product's training enrolment.
MATRIX = [
    ("GET", "/inbox/", None, OFFICERS | PRODUCERS),  # a producer's inbox holds its own tasks
    ("GET", "/inbox/tasks/{task}", None, {"district_own"}),
    ("POST", "/inbox/tasks/{task}", {"decision": "maybe"}, {"district_own"}),
    ("POST", "/inbox/tasks/{task}/draft", {"reasons": "nháp"}, {"district_own"}),
    ("POST", "/inbox/tasks/{task}/claim", {}, {"district_own"}),
    ("POST", "/inbox/tasks/{task}/reassign", {"username": "cb.qt-gl"}, {"manager_own", "admin"}),
    ("POST", "/inbox/tasks/{task}/unclaim", {}, {"manager_own", "admin"}),  # nobody holds it yet
    ("GET", "/portal/", None, SIGNED_IN),  # lists only what each may see
    ("GET", "/portal/products/{product}", None, READERS),
    ("GET", "/portal/documents/{document}", None, READERS),
    ("POST", "/portal/products/{product}/documents", {}, {"producer_own", "commune_own"}),
    ("POST", "/portal/products/{product}/start", {}, {"producer_own", "commune_own"}),
    ("GET", "/portal/products/new", None, {"producer_own", "producer_other", "commune_own", "commune_other"}),
    ("GET", "/portal/register", None, {"commune_own", "commune_other"}),
    ("GET", "/admin/users", None, {"admin"}),
    ("GET", "/admin/users/{user}", None, {"admin"}),
    ("GET", "/admin/users/new", None, {"admin"}),
    ("POST", "/admin/users/{user}/roles", {"role": "nope"}, {"admin"}),
    # The programme dashboard: program managers see their own province, auditors and administrators all.
    ("GET", "/dashboard/", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/funnel.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/stars.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/returns.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/step-times.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/overdue.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/api/v1/tasks", None, SIGNED_IN),
    ("GET", "/api/v1/products", None, SIGNED_IN),
    ("GET", "/api/v1/definitions", None, SIGNED_IN),
    ("GET", "/api/v1/instances/{instance}", None, READERS),
    ("GET", "/api/v1/instances/{instance}/history", None, READERS),
    ("GET", "/audit/", None, AUDIT_SEARCH),  # each sees only the instances in scope
    ("GET", "/audit/export.json", None, AUDIT_SEARCH),
    ("GET", "/audit/export.csv", None, AUDIT_SEARCH),
    ("GET", "/audit/instances/{instance}", None, AUDIT_INSTANCE),
    ("GET", "/audit/instances/{instance}/frames.json", None, AUDIT_INSTANCE),
    ("GET", "/audit/instances/{instance}/diagram.bpmn", None, AUDIT_INSTANCE),
    ("GET", "/audit/instances/{instance}/export.json", None, AUDIT_INSTANCE),
    ("GET", "/audit/instances/{instance}/export.csv", None, AUDIT_INSTANCE),
    ("POST", "/audit/instances/{instance}/verify", {}, AUDIT_INSTANCE),
    # Signed checkpoints cover every province: auditors and administrators only.
    ("GET", "/audit/checkpoints/", None, {"auditor", "admin"}),
    ("POST", "/audit/checkpoints/", {}, {"auditor", "admin"}),
    ("GET", "/audit/checkpoints/public-key.pem", None, {"auditor", "admin"}),
    # Failed service tasks: the same readers as the audit search (each sees their provinces).
    ("GET", "/incidents/", None, AUDIT_SEARCH),
    # The notification centre: everyone signed in has one; marking read touches only one's own
    # receipt ({notification} was delivered to the producer alone).
    ("GET", "/notifications/", None, SIGNED_IN),
    ("POST", "/notifications/{notification}/read", {}, {"producer_own"}),
    ("POST", "/notifications/read-all", {}, SIGNED_IN),
    ("GET", "/portal/enrolments/{enrolment}.ics", None, READERS),
    ("POST", "/api/v1/tasks/{task}/complete", {"decision": "maybe"}, {"district_own"}),
    ("POST", "/api/v1/products/{product}/start", {}, {"producer_own", "commune_own"}),
]


@pytest.fixture
def app(world, db_url, tmp_path, audit_signing_key):
    checkpoints.create_key(audit_signing_key)  # the checkpoint pages need the signing key
    # Fifteen people sign in for every endpoint: no login rate limit here.
    return make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)


@pytest.fixture
def ids(world, app):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    client = app.test_client()
    token = login(client, "htx.giomy")
    client.post(f"/portal/products/{cycle.product_id}/documents",
                data={"csrf_token": token, "file": (__import__("io").BytesIO(PDF), "giay-phep.pdf")},
                content_type="multipart/form-data")
    with world.db.transaction() as session:
        document = session.scalar(select(Document.id).where(Document.product_id == cycle.product_id))
        user = session.scalar(select(User.id).where(User.username == "cb.qt-cl"))
        assert document, "the producer's upload should have been stored"
        notification, enrolment = _notification_and_enrolment(session, cycle, world.clock())
    deliver_outbox(world)
    return {"task": cycle.task("review_idea").id, "product": cycle.product_id,
            "instance": cycle.instance_id, "document": document, "user": user,
            "notification": notification, "enrolment": enrolment}


def _notification_and_enrolment(session, cycle, now):
    """A message for the product's producer and a training enrolment of the
    product, as the cycle's handlers would write them later on."""
    instance = session.get(ProcessInstance, cycle.instance_id)
    producer_id = instance.product.producer_id
    notification = Notification(instance_id=instance.id, recipient_role="producer", producer_id=producer_id,
                                kind="idea_accepted", message="Ý tưởng sản phẩm đã được chấp nhận.", created_at=now)
    training = Training(title="Tập huấn xây dựng phương án", topic="business_plan", level="district",
                        jurisdiction_id=instance.areas["district"], starts_on=now.date(), place="Hội trường",
                        capacity=30, enrolled=1)
    session.add_all([notification, training])
    session.flush()
    enrolment = Enrolment(training_id=training.id, instance_id=instance.id, producer_id=producer_id,
                          topic="business_plan", enrolled_at=now)
    session.add(enrolment)
    session.flush()
    return notification.id, enrolment.id


def request(app, who, method, path, data):
    client = app.test_client()
    token = login(client, USERS[who]) if USERS[who] else None
    if path.startswith("/api/"):
        headers = {"X-CSRFToken": token} if token else {}
        return client.open(path, method=method, json=data if method == "POST" else None, headers=headers)
    form = dict(data or {}, csrf_token=token) if method == "POST" else None
    return client.open(path, method=method, data=form)


@pytest.mark.parametrize("method,template,data,allowed", MATRIX,
                         ids=[f"{m} {t}" for m, t, _, _ in MATRIX])
def test_matrix(app, ids, method, template, data, allowed):
    path = template.format(**ids)
    wrong = []
    for who in USERS:
        response = request(app, who, method, path, data)
        status = response.status_code
        if status == 200 and who not in READERS and PRODUCT in response.get_data(as_text=True):
            wrong.append(f"{who}: sees the product of another area")
        if who == "anonymous":
            # Pages send visitors to sign in; a form post without a session
            # fails its CSRF check first; the API answers 401.
            ok = status == 401 if path.startswith("/api/") else status in (302, 400)
        elif who in allowed:
            ok = status not in (401, 403, 404)
        else:
            ok = status in (403, 404)
        if not ok:
            wrong.append(f"{who}: {status} ({'allowed' if who in allowed else 'refused'} expected)")
    assert not wrong, f"{method} {path}: " + "; ".join(wrong)
