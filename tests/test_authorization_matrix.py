"""Every endpoint x every role, in its own area and another: allowed or
refused, checked on the server. Refusals are 403 or 404 (never the data);
anonymous visitors are sent to sign in (pages) or get 401 (API)."""
import io
import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit import checkpoints
from background.outbox import deliver_outbox
from engine.access import load_actor
from programme import definitions as defs
from storage.models import (
    Document,
    Jurisdiction,
    ProcessDefinition,
    RoleAssignment,
    User,
)
from testkit.cycle import Cycle, training_incident
from testkit.web_login import login
from tests.support.app import make_app
from tests.support.db_state import snapshot
from tests.support.product_records import PDF, notification_and_enrolment

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

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
# Diagrams (definitions, modeler): program managers and administrators. Every
# manager reads every version (diagrams hold no product data); changing a
# scope needs its manager (a province) or an administrator (the nation).
EDITORS = {"manager_own", "manager_other", "admin"}
CHECKPOINTS = {"auditor", "admin"}
# The councils' pages: council members, program managers, auditors, administrators. Quảng Trị's
# province council ({council}, hd.qt its secretary) is seen by its members, the province's
# manager, auditors and administrators (others: 404); kept by the manager and administrators.
COUNCIL_PAGES = {"district_council_own", "province_council_own", "province_council_other", "central_council",
                 "manager_own", "manager_other", "auditor", "admin"}
COUNCIL_READERS = {"province_council_own", "manager_own", "auditor", "admin"}
COUNCIL_KEEPERS = {"manager_own", "admin"}
COMMUNE_OFFICERS = {"commune_own", "commune_other"}
# The rounds' pages (issue 16): the same people as the councils'; Quảng Trị's rounds and
# decisions are read by its manager and council, the central council, auditors, administrators.
ROUND_PAGES = COUNCIL_PAGES
ROUND_READERS = {"province_council_own", "manager_own", "central_council", "auditor", "admin"}
PRODUCT = "Hồ tiêu Gio Linh"
PRODUCER = "HTX Nông nghiệp Gio Mỹ"
NATIONAL_XML = (Path(__file__).resolve().parents[1] / "processes" / "ocop_cycle.bpmn").read_text(encoding="utf-8")

# (method, path template, form/json data, who is allowed). Placeholders:
# {task} the district officer's review task, {product}, {instance}, {document}, {user} (cb.qt-cl,
# the district officer of Cam Lộ), {assignment} one of {user}'s roles, {token} an API token of {user},
# {notification} one delivered to the producer, {enrolment} the product's training enrolment,
# {checkpoint} a signed checkpoint, {definition} the national diagram, {definition_v2} a second
# national version (not active), {variant} Lào Cai's two-tier variant, {province} Quảng Trị,
# {incident} an open incident on another product of the same producer, {certificate} a certificate
# of {product} (tests/support/certificates.py). A data value that is
# exactly a placeholder is filled in too.
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
    ("GET", "/certificates/{certificate}", None, READERS),
    # A certificate's life (issue 16): read as its product; the upgrade is its producer's to ask for.
    ("GET", "/lifecycle/certificates/{certificate}", None, READERS),
    ("POST", "/lifecycle/certificates/{certificate}/upgrade", {}, {"producer_own"}),
    ("GET", "/portal/documents/{document}", None, READERS),
    ("GET", "/portal/documents/{document}/view", None, READERS),
    ("POST", "/portal/products/{product}/documents", {}, {"producer_own", "commune_own"}),
    ("POST", "/portal/products/{product}/start", {}, {"producer_own", "commune_own"}),
    ("GET", "/portal/products/new", None, PRODUCERS | COMMUNE_OFFICERS),
    # Registering a product for a producer one manages (an empty name: refused with 400, nothing stored).
    ("POST", "/portal/products/new", {"name": ""}, PRODUCERS | COMMUNE_OFFICERS),
    ("GET", "/portal/register", None, COMMUNE_OFFICERS),
    ("POST", "/portal/register", {"name": ""}, COMMUNE_OFFICERS),
    ("GET", "/admin/users", None, {"admin"}),
    ("GET", "/admin/users/{user}", None, {"admin"}),
    ("GET", "/admin/users/new", None, {"admin"}),
    ("POST", "/admin/users/new", {"username": "x"}, {"admin"}),
    ("POST", "/admin/users/{user}/roles", {"role": "nope"}, {"admin"}),
    ("POST", "/admin/users/{user}/roles/{assignment}/remove", {}, {"admin"}),
    ("POST", "/admin/users/{user}/active", {"active": "1"}, {"admin"}),
    ("POST", "/admin/users/{user}/tokens", {"name": "tích hợp"}, {"admin"}),
    ("POST", "/admin/users/{user}/tokens/{token}/revoke", {}, {"admin"}),
    # The programme dashboard: program managers see their own province, auditors and administrators all.
    ("GET", "/dashboard/", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/funnel.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/stars.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/returns.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/step-times.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/dashboard/overdue.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    # Revocation and inspection after recognition: the province's office and program manager (of the
    # certificate's province); the decision is the People's Committee's or the ministry's (none of USERS).
    ("GET", "/revocations/", None, {"manager_own", "manager_other"}),
    ("GET", "/revocations/certificates/{certificate}", None, {"manager_own"}),
    ("POST", "/revocations/certificates/{certificate}/revocation", {"ground": ""}, {"manager_own"}),
    ("POST", "/revocations/certificates/{certificate}/inspection", {"reason": ""}, {"manager_own"}),
    ("POST", "/revocations/plan", {"province_id": "{province}", "year": "2026", "percent": "10"}, {"manager_own"}),
    ("GET", "/revocations/decisions/{revocation_task}", None, {"manager_own"}),  # the office follows the case
    ("POST", "/revocations/decisions/{revocation_task}", {"revoke": "yes"}, set()),
    # The OCOP report: the nation for auditors and admins, its own province for a program manager.
    ("GET", "/reports/", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/reports/bao-cao.csv", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/reports/bao-cao.xlsx", None, {"manager_own", "manager_other", "auditor", "admin"}),
    ("GET", "/api/v1/tasks", None, SIGNED_IN),
    ("GET", "/api/v1/products", None, SIGNED_IN),
    ("GET", "/api/v1/definitions", None, SIGNED_IN),
    ("GET", "/api/v1/instances/{instance}", None, READERS),
    ("GET", "/api/v1/instances/{instance}/history", None, READERS),
    ("POST", "/api/v1/tasks/{task}/claim", {}, {"district_own"}),
    ("POST", "/api/v1/tasks/{task}/unclaim", {}, {"manager_own", "admin"}),  # nobody holds it yet
    ("POST", "/api/v1/tasks/{task}/complete", {"decision": "maybe"}, {"district_own"}),
    ("POST", "/api/v1/products/{product}/start", {}, {"producer_own", "commune_own"}),
    # Everyone's own API tokens; {token} belongs to the district officer of Cam Lộ.
    ("GET", "/api/v1/tokens", None, SIGNED_IN),
    ("POST", "/api/v1/tokens", {"name": "kịch bản"}, SIGNED_IN),
    ("DELETE", "/api/v1/tokens/{token}", None, {"district_other"}),
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
    ("GET", "/audit/checkpoints/", None, CHECKPOINTS),
    ("POST", "/audit/checkpoints/", {}, CHECKPOINTS),
    ("GET", "/audit/checkpoints/{checkpoint}.json", None, CHECKPOINTS),
    ("GET", "/audit/checkpoints/public-key.pem", None, CHECKPOINTS),
    # Failed service tasks: the same readers as the audit search (each sees their provinces);
    # retrying or skipping is for the province's program manager and administrators (another
    # province's manager gets 404, an auditor 403).
    ("GET", "/incidents/", None, AUDIT_SEARCH),
    ("POST", "/incidents/{incident}/retry", {}, {"manager_own", "admin"}),
    ("POST", "/incidents/{incident}/skip", {}, {"manager_own", "admin"}),
    # The notification centre: everyone signed in has one; marking read touches only one's own
    # receipt ({notification} was delivered to the producer alone).
    ("GET", "/notifications/", None, SIGNED_IN),
    ("POST", "/notifications/{notification}/read", {}, {"producer_own"}),
    ("POST", "/notifications/read-all", {}, SIGNED_IN),
    ("GET", "/portal/enrolments/{enrolment}.ics", None, READERS),
    # Diagrams. Reading, checking and dry runs: every editor. Deploying for Quảng Trị: its manager
    # and administrators; activating the national diagram: administrators; Lào Cai's variant: its
    # manager and administrators; migrating onto a national version: administrators.
    ("GET", "/definitions/", None, EDITORS),
    ("GET", "/definitions/{definition}.bpmn", None, EDITORS),
    ("POST", "/definitions/validate", {"xml": NATIONAL_XML}, EDITORS),
    ("POST", "/definitions/dryrun", {"xml": NATIONAL_XML, "products": "1"}, EDITORS),
    ("POST", "/definitions/deploy", {"xml": NATIONAL_XML, "name": "ocop_cycle", "province_id": "{province}",
                                     "message": "biến thể của tỉnh"}, {"manager_own", "admin"}),
    ("POST", "/definitions/{definition}/activate", {"message": "quay lại"}, {"admin"}),
    ("POST", "/definitions/{variant}/activate", {"message": "quay lại"}, {"manager_other", "admin"}),
    ("GET", "/definitions/compare?a={definition}&b={variant}", None, EDITORS),
    ("GET", "/definitions/compare.json?a={definition}&b={variant}", None, EDITORS),
    # The migration plan lists running instances with their products: each editor sees only
    # those of their own provinces (another province's manager must not see the product).
    ("GET", "/definitions/{definition_v2}/migrate", None, EDITORS),
    ("POST", "/definitions/{definition_v2}/migrate", {"from": "{definition}"}, {"admin"}),
    ("GET", "/modeler/", None, EDITORS),
    ("GET", "/modeler/bundled.bpmn", None, EDITORS),
    ("GET", "/modeler/config.json", None, EDITORS),
    # Evaluation councils. Every post here is refused by its own rules after the permission
    # check (an empty name, an unknown council role, no product on the agenda), except the
    # member's removal; only the session's chair (not among USERS) confirms its minutes.
    ("GET", "/councils/", None, COUNCIL_PAGES),
    ("POST", "/councils/", {"area_id": "{province}", "name": ""}, COUNCIL_KEEPERS),
    ("GET", "/councils/{council}", None, COUNCIL_READERS),
    ("POST", "/councils/{council}/settings", {"name": ""}, COUNCIL_KEEPERS),
    ("POST", "/councils/{council}/members", {"username": "cb.qt-cl", "council_role": "nope"}, COUNCIL_KEEPERS),
    ("POST", "/councils/{council}/members/{council_member}/role", {"council_role": "nope"}, COUNCIL_KEEPERS),
    ("POST", "/councils/{council}/members/{council_member}/remove", {}, COUNCIL_KEEPERS),
    ("GET", "/councils/{council}/sessions/new", None, COUNCIL_READERS),
    ("POST", "/councils/{council}/sessions", {"held_on": "2026-03-10", "place": "Hội trường"},
     {"province_council_own"} | COUNCIL_KEEPERS),
    ("GET", "/councils/sessions/{council_session}", None, COUNCIL_READERS),
    ("POST", "/councils/sessions/{council_session}/sign-off", {}, set()),
    # Evaluation rounds and recognition decisions (issue 16). {round} is a closed round of
    # Quảng Trị, so every post is refused by its own rules after the permission check; no
    # user here holds a People's Committee role, so nobody records a decision.
    ("GET", "/rounds/", None, ROUND_PAGES),
    ("GET", "/rounds/?level=central", None, ROUND_PAGES),
    ("POST", "/rounds/plan", {"level": "province", "province_id": "{province}", "year": "1999"}, COUNCIL_KEEPERS),
    ("POST", "/rounds/extra", {"level": "province", "province_id": "{province}", "year": "2026"},
     COUNCIL_KEEPERS),
    ("GET", "/rounds/{round}", None, ROUND_READERS),
    ("POST", "/rounds/{round}/dates", {"proposals_by": "2026-04-30", "decide_by": "2026-06-30"},
     COUNCIL_KEEPERS),
    ("POST", "/rounds/{round}/close", {}, COUNCIL_KEEPERS),
    ("GET", "/rounds/decisions/new?authority=province&area={province}", None, ROUND_READERS),
    ("POST", "/rounds/decisions/new", {"authority": "province", "area": "{province}", "number": "1/QĐ"}, set()),
    ("GET", "/rounds/decisions/{decision}", None, ROUND_READERS),
    ("POST", "/logout", {}, SIGNED_IN),
]

# Endpoints that need no row: open to everyone by design, or answering the same
# to everyone. Any other endpoint without a row in MATRIX fails
# test_every_endpoint_has_a_matrix_row, so a new route cannot skip this file.
PUBLIC = {
    "static": "the application's own CSS, JavaScript and fonts",
    "public.home": "/ only redirects: to one's work when signed in, else to the overview",
    "public.overview": "the programme at a glance: aggregate counts only",
    "public.catalogue": "the public catalogue of promoted (3-star-and-up) products",
    "public.healthz": "the load balancer's health check: says ok or unavailable, nothing else",
    "public.product": "a product's public page while its OCOP certificate holds (public facts only)",
    "public.product_photo": "its photo: only an image tied to the packaging criterion, only while the page exists",
    "public.verify": "a certificate's public verification page (its QR code's link; the code is unguessable)",
    "public.verify_form": "typing a certificate's verification code (rate limited; the same 404 as a wrong link)",
    "auth.login": "the sign-in form itself (CSRF-checked, rate-limited)",
    "portal.signup": "a producer registering itself (signed-in users are sent to their portal)",
    "api.openapi": "the API's OpenAPI document: the contract, no data",
    "api.unknown_route": "JSON 404/405 for paths under /api/v1 that match no endpoint",
}


class Ids(dict):
    """The placeholders' values, each made when a row first asks for it (a
    row pays only for what it uses)."""

    def __init__(self, world, makers):
        super().__init__()
        self.world, self.makers = world, makers

    def __missing__(self, key):
        value = self[key] = self.makers[key](self.world, self)
        return value


def _admin(world):
    with world.db.transaction() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == "admin")))


def _scalar(world, query):
    with world.db.transaction() as session:
        return session.scalar(query)


def _cycle(world, ids):
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    return cycle


def _document(world, ids):
    """The producer's upload, through the real form."""
    client, token = signed_in_client(ids.app, world, "producer_own")
    client.post(f"/portal/products/{ids['product']}/documents",
                data={"csrf_token": token, "file": (io.BytesIO(PDF), "giay-phep.pdf")},
                content_type="multipart/form-data")
    document = _scalar(world, select(Document.id).where(Document.product_id == ids["product"]))
    assert document, "the producer's upload should have been stored"
    return document


def _notification_enrolment(world, ids):
    with world.db.transaction() as session:
        made = notification_and_enrolment(session, ids["cycle"], world.clock())
    deliver_outbox(world)
    return made


def _token(world, ids):
    from programme.tokens import issue_token
    with world.db.transaction() as session:
        return issue_token(session, ids["user"], "báo cáo", world.clock())[0].id


def _checkpoint(world, ids):
    with world.db.transaction() as session:
        return checkpoints.issue(session, checkpoints.load_private_key(checkpoints.key_path()), world.clock()).id


def _definition_v2(world, ids):
    """The national diagram again (a comment more), stored but not active."""
    return defs.deploy(world, _admin(world), NATIONAL_XML + "<!-- v2 -->", "ocop_cycle", "v2",
                       activate=False).id


def _incident(world, ids):
    """Another product of the same producer whose training could not be
    scheduled after the district accepted its idea (the handler is back to
    normal afterwards, so a retry succeeds)."""
    ids["task"]  # noqa: B018 - the main product's cycle first, as in every row
    return training_incident(world, "Gạo hữu cơ Gio Mỹ")


def _council(world, ids):
    from tests.support.councils import province_council
    return province_council(world)[0]


def _council_member(world, ids):
    from storage.council_models import CouncilMember
    return _scalar(world, select(CouncilMember.id).where(CouncilMember.council_id == ids["council"],
                                                         CouncilMember.council_role == "member"))


def _council_session(world, ids):
    """A session of the council with nothing on its agenda (none can be
    opened on the bundled diagram yet: it has no attendance task)."""
    from datetime import date

    from storage.council_models import CouncilSession
    with world.db.transaction() as session:
        meeting = CouncilSession(council_id=ids["council"], held_on=date(2026, 3, 10), place="Hội trường",
                                 opened_at=world.clock(), present=[], roster=[], status="open")
        session.add(meeting)
        session.flush()
        return meeting.id


def _certificate(world, ids):
    from tests.support.certificates import make_certificate
    with world.db.transaction() as session:
        return make_certificate(session, ids["product"]).id


def _round(world, ids):
    """A closed round of Quảng Trị (its dates cannot change, it cannot close again)."""
    from storage.recognition_models import EvaluationRound
    with world.db.transaction() as session:
        item = EvaluationRound(level="province", province_id=ids["province"], year=2026, number=1,
                               proposals_by=date(2026, 4, 30), decide_by=date(2026, 6, 30), status="closed")
        session.add(item)
        session.flush()
        return item.id


def _decision(world, ids):
    """A decision of Quảng Trị's People's Committee listing no product."""
    from storage.decisions import record_decision
    with world.db.transaction() as session:
        return record_decision(session, authority="province", area_id=ids["province"], number="1/QĐ-UBND",
                               signed_on=date(2026, 3, 2), signer="Chủ tịch UBND tỉnh", items=[],
                               round_id=ids["round"], recorded_by=None, recorded_at=world.clock())["id"]


def _revocation_task(world, ids):
    """The People's Committee's decision task of a revocation case opened by the program manager."""
    from datetime import date

    from engine.access import load_actor
    from programme import revocations
    with world.db.transaction() as session:
        manager = load_actor(session, session.scalar(select(User.id).where(User.username == "qlct.qt")))
    case = revocations.open_revocation(world, manager, ids["certificate"], "mark_misused", "Sở Công Thương",
                                       date(2026, 3, 1), "Nhãn ghi sai hạng sao OCOP.")
    return world.ready_tasks(case.instance_id)[0].id


MAKERS = {
    "certificate": _certificate,
    "revocation_task": _revocation_task,
    "round": _round,
    "decision": _decision,
    "council": _council,
    "council_member": _council_member,
    "council_session": _council_session,
    "cycle": _cycle,
    "task": lambda world, ids: ids["cycle"].task("review_idea").id,
    "product": lambda world, ids: ids["cycle"].product_id,
    "instance": lambda world, ids: ids["cycle"].instance_id,
    "document": _document,
    "user": lambda world, ids: _scalar(world, select(User.id).where(User.username == "cb.qt-cl")),
    "assignment": lambda world, ids: _scalar(world, select(RoleAssignment.id).where(
        RoleAssignment.user_id == ids["user"])),
    "token": _token,
    "notification_enrolment": _notification_enrolment,
    "notification": lambda world, ids: ids["notification_enrolment"][0],
    "enrolment": lambda world, ids: ids["notification_enrolment"][1],
    "checkpoint": _checkpoint,
    "definition": lambda world, ids: _scalar(world, select(ProcessDefinition.id).where(
        ProcessDefinition.name == "ocop_cycle", ProcessDefinition.province_id.is_(None))),
    "definition_v2": _definition_v2,
    "variant": lambda world, ids: _scalar(world, select(ProcessDefinition.id).where(
        ProcessDefinition.province_id.is_not(None))),
    "province": lambda world, ids: _scalar(world, select(Jurisdiction.id).where(Jurisdiction.code == "QT")),
    "incident": _incident,
}


@pytest.fixture
def app(world, db_url, tmp_path, audit_signing_key):
    checkpoints.create_key(audit_signing_key)  # the checkpoint pages need the signing key
    # Fifteen people sign in for every endpoint: no login rate limit here.
    return make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)


@pytest.fixture
def ids(world, app):
    """Every row works on the product at the district's idea review, with its
    evidence file, notification, enrolment and an API token, whatever the
    row asks for; checkpoints, the second national version and the incident
    only for the rows that use them."""
    made = Ids(world, MAKERS)
    made.app = app
    for key in ("task", "document", "notification", "enrolment", "token", "assignment"):
        made[key]  # noqa: B018 - made now: the pages then have them to show or hide
    return made


# Signing in (scrypt) is most of a row's time: each user signs in once per
# module, and later rows reuse the session cookie and CSRF token on their own
# fresh application and database. Both are signed with the same (development)
# secret key and the demo seeds users in the same order, so the same user id
# names the same person. A session also names the user's session epoch, which
# signing out (the POST /logout row) or a deactivation moves on in that row's
# database: the id and the epoch are checked before a cookie is reused, and a
# user whose epoch moved signs in afresh.
_SIGNED_IN: dict[str, tuple[tuple[int, int], str, str]] = {}


def signed_in_client(app, world, who):
    """A test client of `app` signed in as USERS[who], and its CSRF token."""
    client = app.test_client()
    username = USERS[who]
    if username is None:
        return client, None
    with world.db.transaction() as session:
        user = tuple(session.execute(select(User.id, User.session_epoch).where(User.username == username)).one())
    cached = _SIGNED_IN.get(username)
    if cached is not None and cached[0] == user:
        client.set_cookie("session", cached[1])
        return client, cached[2]
    token = login(client, username)
    _SIGNED_IN[username] = (user, client.get_cookie("session").value, token)
    return client, token


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def request(app, world, who, method, path, data, ids):
    client, token = signed_in_client(app, world, who)
    data = {key: ids[_PLACEHOLDER.fullmatch(value).group(1)] if isinstance(value, str)
            and _PLACEHOLDER.fullmatch(value) else value for key, value in (data or {}).items()}
    if path.startswith("/api/"):
        headers = {"X-CSRFToken": token} if token else {}
        return client.open(path, method=method, json=data if method == "POST" else None, headers=headers)
    form = dict(data, csrf_token=token) if method == "POST" else None
    return client.open(path, method=method, data=form)


@pytest.mark.parametrize("method,template,data,allowed", MATRIX,
                         ids=[f"{m} {t}" for m, t, _, _ in MATRIX])
def test_matrix(app, world, ids, method, template, data, allowed):
    path = _PLACEHOLDER.sub(lambda match: str(ids[match.group(1)]), template)
    before = snapshot(world) if method == "GET" else None
    wrong = []
    for who in USERS:
        response = request(app, world, who, method, path, data, ids)
        status = response.status_code
        body = response.get_data().decode("utf-8", "replace")  # an XLSX download is binary
        if who not in READERS and (PRODUCT in body or PRODUCER in body):
            wrong.append(f"{who}: {status} shows the product of another area")
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
    # A GET is safe: whoever asks, it changes nothing (so a link or an
    # image on another site cannot change anything either).
    assert before is None or snapshot(world) == before, f"GET {path} changed the database"


def test_every_endpoint_has_a_matrix_row(db_url):
    """Each method of each route either has a row in MATRIX or is in PUBLIC
    (with its reason): a new endpoint without a row fails here."""
    from web.app import create_app
    application = create_app(db_url, testing=True)
    adapter = application.url_map.bind("localhost")
    covered = set()
    for method, template, _data, _allowed in MATRIX:
        path = _PLACEHOLDER.sub("1", template).split("?")[0]
        endpoint, _args = adapter.match(path, method=method)
        covered.add((endpoint, method))
    missing = sorted(f"{method} {rule.rule} ({rule.endpoint})"
                     for rule in application.url_map.iter_rules() if rule.endpoint not in PUBLIC
                     for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
                     if (rule.endpoint, method) not in covered)
    assert not missing, "endpoints without a row in MATRIX (or a reason in PUBLIC): " + "; ".join(missing)
    unused = set(PUBLIC) - {rule.endpoint for rule in application.url_map.iter_rules()}
    assert not unused, f"PUBLIC names endpoints that no longer exist: {unused}"


def test_signup_is_for_visitors_only(app, world):
    """The one PUBLIC form that creates something: visitors get the form;
    anyone signed in is sent to their portal, and a post creates nothing."""
    assert app.test_client().get("/portal/signup").status_code == 200
    with world.db.transaction() as session:
        users = session.scalar(select(func.count()).select_from(User))
    for who in ("producer_own", "commune_own", "admin"):
        client, token = signed_in_client(app, world, who)
        assert client.get("/portal/signup").headers.get("Location", "").endswith("/portal/")
        response = client.post("/portal/signup", data={"csrf_token": token, "username": "moi.dangky",
                                                       "password": "mat-khau-dai", "name": "HTX Mới"})
        assert response.status_code == 302 and response.headers["Location"].endswith("/portal/")
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(User)) == users
