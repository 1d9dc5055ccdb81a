"""The HTML forms under hostile input: hypothesis builds posts with control
characters and NUL bytes inside text, text past its limit, values outside
a field's choices, numbers that are not numbers (NaN, infinity, 5 000
digits, "½", hex), impossible dates, missing required fields, repeated
fields (lists where a value is expected) and unknown fields. Each is
answered with a 4xx page that says what is wrong (never a 500), and a
refused post changes nothing.

- task completion for every form key (web/task_forms.py), each task
  reached through the engine (testkit/cycle.py): 422, the instance's version
  and audit events as before, and the task still takes its valid form;
  text that is odd but legal (right-to-left marks, zero-width joiners,
  emoji, markup, quotes, exactly at the length limit) is accepted, stored
  as typed and shown escaped, on both databases;
- drafts of a task: anything is kept or refused as too long (413), the
  instance is untouched and the page still opens;
- a producer's product registration, self sign-up, sign-in, an
  administrator creating an account: refused with the message beside the
  field (400/401/422), nothing written; accepted ones are stored cleaned;
- evidence uploads: random bytes under random (hostile) names are refused
  (400) unless their content matches an accepted type; a stored file keeps
  a clean name and comes back as the same bytes, as an attachment.

The web tests run on SQLite (as the other web tests); what only
PostgreSQL refuses (a NUL in a text column, a name past its column's
length) is also tried on PostgreSQL. The JSON API is fuzzed in
test_fuzz_api.py, diagram uploads in test_fuzz_bpmn.py.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from marshmallow import fields as mf
from marshmallow import validate
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from audit.verification import verify
from demo.seed import DEMO_PASSWORD
from engine.access import load_actor
from engine.driver import Driver
from engine.forms import CONFIRM_DONE, CONTROL_CHARACTERS, FORMS, form_schema
from storage.models import AuditEvent, Document, Jurisdiction, ProcessInstance, Product, TaskDraft, User
from testkit.cycle import VALID, Cycle, sheets
from testkit.web_login import csrf_token, login
from tests.support.app import make_app
from tests.support.inbox_world import add_officer
from web.task_forms import MAX_DRAFT_CHARS, form_fields

sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.filter_too_much, HealthCheck.data_too_large])
FEW = settings(SETTINGS, max_examples=12)

PEPPER, WINE = "Hồ tiêu Gio Linh", "Rượu mận Sa Pa"
# Control characters that survive the page's own clean-up (strip() at the
# ends, splitlines() in one-per-line fields) inside a text; bidi controls
# too (a right-to-left override makes "gnp.exe" read "exe.png").
CONTROLS = ["\x00", "\x01", "\x08", "\x1b", "\x7f", "\u202e", "\u2066", "\u200f"]
SCRIPT = "<script>alert(1)</script>"
REFUSED = "Biểu mẫu còn lỗi; chưa có gì được lưu."
UNPRINTABLE = "Không được chứa ký tự điều khiển."
LEGAL_ODDITIES = ["مرحبا שלום", "a\u200db", "e\u0301\u0301\u0301", "💥🇻🇳", SCRIPT, "' OR 1=1 --",
                  "Robert'); DROP TABLE product;--", "{{ 7*7 }}", "%s%n", "\\x00", "${jndi:ldap://x}"]


# --- reaching a task of every form key ------------------------------------------------------

EXTRA_VALID = {
    "plan_outreach": {"window_opens": "2027-03-01", "window_closes": "2027-04-30", "channels": ["meeting"],
                      "target_producers": 10},
    "outreach_report": {"meetings_held": 3, "producers_reached": 20},
    "council_spread": {"notes": "Hội đồng thảo luận lại phần C rồi chấm lại"},
    "council_sign_off": {"confirmed": True, "notes": "Nhất trí"},
    "central_fallback": {"choice": "recognise", "reason": "Công nhận theo kết quả đánh giá của Bộ"},
}
# The certificate lifecycle's forms (issue 16, helper B1).
EXTRA_VALID.update({
    "reevaluation_dossier": {"markets": "Thêm hai điểm bán OCOP", "legal_papers": ["Giấy ATTP số 12, đến 2028"]},
    "reevaluation_check": {"complete": True},
    "upgrade_dossier": {"summary": "Bao bì mới, thêm kênh xuất khẩu", "criteria_touched": ["A.1.1"],
                        "changes": "Đổi bao bì hút chân không, thêm mã QR"},
    "upgrade_check": {"complete": True},
    "inspection_report": {"inspected_on": "2026-03-01", "criteria_maintained": True, "mark_used_correctly": True,
                          "findings": "", "propose_revocation": False},
})
LIFECYCLE_FORMS = ("reevaluation_dossier", "reevaluation_check", "upgrade_dossier", "upgrade_check")
VALID_DATA = {**VALID, **EXTRA_VALID}
SEED_PATH = ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan", "support_record",
             "submit_dossier", "check_dossier")
# Not fuzzed here: score_product runs only on versions before the council
# sessions; council_attendance is never a form (tests/test_council_sessions.py);
# the member's sheet has its own page (tests/test_score_sheet_page.py); a
# recognition decision is recorded on the decision page (tests/test_recognition.py).
NOT_HERE = {CONFIRM_DONE, "score_product", "council_attendance", "council_sheet", "recognition_decision",
            "revocation_decision"}  # the last two are recorded by their decision pages only
TWO_TIER_PATH = ("register_idea", "review_idea", "submit_plan", "review_plan", "support_record",
                 "submit_dossier", "commune_assessment", "advisory_review")


class Waiting:
    """A ready task of one form key: its id, instance and who acts on it."""

    def __init__(self, world, task, instance_id: int):
        self.world, self.task_id, self.instance_id = world, task.id, instance_id
        actor = Driver(world).actor_for(task)
        with world.db.transaction() as session:
            self.username = session.get(User, actor.user_id).username

    def state(self) -> tuple[int, int]:
        """The instance's version and number of audit events."""
        with self.world.db.transaction() as session:
            version = session.get(ProcessInstance, self.instance_id).version
            events = session.scalar(select(func.count()).select_from(AuditEvent)
                                    .where(AuditEvent.instance_id == self.instance_id))
        return version, events


def reach(world, form_key: str) -> Waiting:
    if form_key in ("plan_outreach", "outreach_report"):
        with world.db.transaction() as session:
            district = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL"))
            admin = load_actor(session, session.scalar(select(User.id).where(User.username == "admin")))
        instance_id = world.start_outreach(district, admin, year=2027).instance_id
        task = world.ready_tasks(instance_id)[0]
        if form_key == "outreach_report":
            world.complete_task(task.id, EXTRA_VALID["plan_outreach"], Driver(world).actor_for(task))
            task = world.ready_tasks(instance_id)[0]
        assert task.form_key == form_key
        return Waiting(world, task, instance_id)
    if form_key in ("council_spread", "council_sign_off"):
        for n in (1, 2):  # a council of three, so that members can disagree
            add_officer(world, f"hd.qt-gl.tv{n}", "district_council", "QT-GL")
        cycle = Cycle(world, PEPPER).start().through_dossier()
        cycle.open_session()
        cycle.score([40, 80, 60] if form_key == "council_spread" else [60])
        return Waiting(world, cycle.task(form_key), cycle.instance_id)
    if form_key in LIFECYCLE_FORMS:
        return _reach_lifecycle(world, form_key)
    if form_key == "inspection_report":
        return _reach_inspection(world)
    if form_key == "central_fallback":  # 90+ at the province, below 90 at the ministry
        cycle = Cycle(world, PEPPER, decide=False).start().through_dossier()
        cycle.do("score_product", sheets(92))
        cycle.do("score_product", sheets(97))
        decision = cycle.task("recognition_decision")
        world.complete_task(decision.id, cycle.driver.recognition_decision(decision),
                            cycle.driver.actor_for(decision), from_session=True)
        cycle.do("score_product", sheets(84))
        return Waiting(world, cycle.task(form_key), cycle.instance_id)
    two_tier = form_key in ("commune_assessment", "advisory_review")
    cycle = Cycle(world, WINE if two_tier else PEPPER).start()
    for step in TWO_TIER_PATH if two_tier else SEED_PATH:
        if step == form_key:
            return Waiting(world, cycle.task(form_key), cycle.instance_id)
        cycle.do(step)
    raise AssertionError(form_key)


def _reach_inspection(world) -> Waiting:
    """The coordination office's inspection of the pepper's certificate."""
    from programme.inspections import start_inspection
    from tests.support.certificates import make_certificate
    with world.db.transaction() as session:
        product_id = session.scalar(select(Product.id).where(Product.name == PEPPER))
        certificate_id = make_certificate(session, product_id).id
        office = load_actor(session, session.scalar(select(User.id).where(User.username == "vpdp.qt")))
    instance_id = start_inspection(world, office, certificate_id, "Kiểm tra đột xuất theo phản ánh").instance_id
    return Waiting(world, world.ready_tasks(instance_id)[0], instance_id)


def _reach_lifecycle(world, form_key: str) -> Waiting:
    """The pepper's certificate in its re-evaluation window, or its upgrade."""
    from datetime import timedelta

    from programme.certificates import local_today, start_upgrade
    from tests.support.certificate_life import Life
    today = local_today(world)
    life = Life(world, PEPPER, valid_until=today + timedelta(days=150), issued_on=today - timedelta(days=945))
    with world.db.transaction() as session:
        owner = load_actor(session, session.scalar(select(User.id).where(User.username == "htx.giomy")))
    if form_key.startswith("upgrade"):
        instance_id = start_upgrade(world, owner, life.certificate_id)
    else:
        life.start_validity(owner)
        life.fire()
        instance_id = life.instance_id
    dossier = form_key.replace("_check", "_dossier")
    if form_key != dossier:
        life.do(dossier, EXTRA_VALID[dossier], instance_id=instance_id)
    return Waiting(world, life.task(form_key, instance_id), instance_id)


# --- a form's data as the page posts it -----------------------------------------------------------

def _kinds(form_key: str) -> dict:
    return {spec.name: spec for spec in form_fields(form_key)}


def web_pairs(form_key: str, data: dict) -> list[tuple[str, str]]:
    """The (name, value) pairs a browser posts for `data`."""
    specs = _kinds(form_key)
    pairs: list[tuple[str, str]] = []
    for name, value in data.items():
        kind = specs[name].kind
        if kind == "score_sheet":
            for row, sheet in enumerate(value):
                pairs += [(f"sheets-{row}-{key}", str(sheet[key])) for key in ("member", "part_a", "part_b", "part_c")]
        elif kind == "checkboxes":
            pairs += [(name, item) for item in value]
        elif kind == "lines":
            pairs.append((name, "\n".join(value)))
        elif kind in ("yesno", "checkbox"):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


def _letters(min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[str]:
    return st.text(st.characters(categories=["L", "N"]), min_size=min_size, max_size=max_size)


def _with_control() -> st.SearchStrategy[str]:
    return st.builds(lambda a, c, b: f"x{a}{c}{b}y", st.text(max_size=30), st.sampled_from(CONTROLS),
                     st.text(max_size=30))


def _too_long(limit: int) -> st.SearchStrategy[str]:
    return st.builds(lambda unit, extra: (unit * (limit + extra))[:limit + extra], _letters(), st.integers(1, 50))


def _bad_text(limit: int | None) -> st.SearchStrategy[str]:
    return st.one_of(_with_control(), _too_long(limit)) if limit else _with_control()


BAD_NUMBERS = ["abc", "1e5", "NaN", "inf", "-1", "0x10", "½", "9" * 5000, "--1", "1-2", "١٢a", "...", "1/2"]
BAD_DECIMALS = ["NaN", "nan", "inf", "-inf", "1e999", "-0.5", "100.5", "abc", "1,2,3", "½", "0x1p3"]
BAD_DATES = ["2026-02-30", "2026-13-01", "0000-01-01", "not a date", "10/03/2026", "2026-3-1x", "9" * 40]
BAD_SCORES = ["NaN", "inf", "-1", "1000", "abc", "1e999", "--", "½"]


def _inner_choices(form_key: str, name: str) -> tuple | None:
    inner = form_schema(form_key).fields[name].inner
    one_of = next((v for v in inner.validators if isinstance(v, validate.OneOf)), None)
    return tuple(one_of.choices) if one_of else None


def invalid_value(form_key: str, spec) -> st.SearchStrategy | None:
    """Values this field must refuse, as the page posts them: a strategy
    of replacement pairs for the field, or None when nothing is invalid
    (an unticked checkbox is simply "no")."""
    name = spec.name
    if spec.kind in ("text", "textarea"):
        return _bad_text(spec.max_length).map(lambda v: [(name, v)])
    if spec.kind == "radio":
        choices = {value for value, _label in spec.choices}
        return st.text(max_size=30).filter(lambda v: v.strip() not in choices).map(lambda v: [(name, v)])
    if spec.kind == "yesno":
        answers = {"true", "false"} | {str(v) for v in mf.Boolean.truthy | mf.Boolean.falsy}
        return st.text(max_size=10).filter(lambda v: v not in answers).map(lambda v: [(name, v)])
    if spec.kind == "checkboxes":
        choices = _inner_choices(form_key, name)
        entry = (st.text(max_size=20).filter(lambda v: v not in choices) if choices
                 else _bad_text(spec.max_length))
        return st.lists(entry, min_size=1, max_size=3).map(lambda values: [(name, v) for v in values])
    if spec.kind == "lines":
        return _bad_text(spec.max_length).map(lambda v: [(name, f"ổn\n{v}\n")])
    if spec.kind == "number":
        return st.sampled_from(BAD_NUMBERS).map(lambda v: [(name, v)])
    if spec.kind == "decimal":
        return st.sampled_from(BAD_DECIMALS).map(lambda v: [(name, v)])
    if spec.kind == "date":
        return st.sampled_from(BAD_DATES).map(lambda v: [(name, v)])
    if spec.kind == "score_sheet":
        part = st.tuples(st.sampled_from(["part_a", "part_b", "part_c"]), st.sampled_from(BAD_SCORES))
        member = st.tuples(st.just("member"), _bad_text(200))
        return st.one_of(part, member).map(lambda cell: [(f"sheets-0-{cell[0]}", cell[1])])
    return None


@st.composite
def hostile_posts(draw, form_key: str):
    """The task's valid form with one field made invalid (or a required one
    left out), plus noise: unknown fields, repeated fields, markup."""
    base = web_pairs(form_key, VALID_DATA[form_key])
    specs = [spec for spec in form_fields(form_key) if invalid_value(form_key, spec) is not None]
    spec = draw(st.sampled_from(specs))
    cells = (lambda key: key.startswith("sheets-")) if spec.kind == "score_sheet" else (lambda key: key == spec.name)
    if spec.required and draw(st.booleans()):
        replaced = [pair for pair in base if not cells(pair[0])]  # left out
    else:
        bad = draw(invalid_value(form_key, spec))
        bad_keys = {key for key, _value in bad}
        kept = [pair for pair in base
                if pair[0] not in bad_keys and not (spec.kind != "score_sheet" and cells(pair[0]))]
        replaced = bad + kept
    others = [s.name for s in form_fields(form_key) if s.name != spec.name and s.kind != "score_sheet"]
    noise_names = st.one_of(st.text(max_size=20), st.sampled_from(others)) if others else st.text(max_size=20)
    noise = draw(st.lists(st.tuples(noise_names, st.one_of(st.text(max_size=40), st.just(SCRIPT))), max_size=3))
    noise = [(key, value) for key, value in noise if not cells(key) and key != "csrf_token"]
    return replaced + noise


# --- task completion --------------------------------------------------------------------------

@sqlite
# A confirmation has no fields to fuzz (tests/test_manual_tasks.py: extra ones are refused).
@pytest.mark.parametrize("form_key", sorted(set(FORMS) - NOT_HERE))
def test_hostile_task_forms_are_refused_and_change_nothing(world, client, form_key):
    waiting = reach(world, form_key)
    token = login(client, waiting.username)
    before = waiting.state()
    url = f"/inbox/tasks/{waiting.task_id}"

    @SETTINGS
    @given(post=hostile_posts(form_key))
    def refused(post):
        response = client.post(url, data=MultiDict([("csrf_token", token), *post]))
        page = response.get_data(as_text=True)
        assert response.status_code == 422, (post, response.status_code)
        assert REFUSED in page and 'class="error-text"' in page  # what is wrong, beside its field
        assert SCRIPT not in page  # what was typed comes back escaped
        assert waiting.state() == before

    refused()
    # The task was untouched: its valid form still completes it.
    response = client.post(url, data=MultiDict([("csrf_token", token), *web_pairs(form_key, VALID_DATA[form_key])]))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert waiting.state()[0] == before[0] + 1


def test_odd_but_legal_text_is_stored_as_typed_and_shown_escaped(world, client):
    """On both databases: text at its limit, made of everything a form may
    hold, goes through the page, the engine and the record unchanged."""
    waiting = reach(world, "register_idea")
    token = login(client, waiting.username)
    text = " ".join(LEGAL_ODDITIES)
    long_text = (text + " ") * (5000 // (len(text) + 1)) + "x" * (5000 % (len(text) + 1))
    assert len(long_text) == 5000 and not CONTROL_CHARACTERS.search(long_text)
    form = {"registration_form": "02", "product_description": long_text, "raw_materials": text,
            "expected_market": "שלום " + SCRIPT, "production_capacity": "tab\tinside"}
    response = client.post(f"/inbox/tasks/{waiting.task_id}", data={"csrf_token": token, **form})
    assert response.status_code == 302, response.get_data(as_text=True)
    with world.db.transaction() as session:
        stored = session.scalars(select(AuditEvent.data).where(AuditEvent.instance_id == waiting.instance_id,
                                                               AuditEvent.kind == "task_completed")).all()[-1]
    assert stored["form"] == {**form, "production_capacity": "tab\tinside"}
    # The next task's page shows the idea, escaped.
    receive = world.ready_tasks(waiting.instance_id)[0]
    login(client, Waiting(world, receive, waiting.instance_id).username)
    page = client.get(f"/inbox/tasks/{receive.id}").get_data(as_text=True)
    assert SCRIPT not in page and "&lt;script&gt;" in page and "💥🇻🇳" in page
    report = verify(world, [waiting.instance_id])
    assert report.ok, report.problems


# --- drafts -------------------------------------------------------------------------------------

@sqlite
def test_hostile_drafts_are_kept_or_refused_and_the_page_still_opens(world, client):
    waiting = reach(world, "review_idea")
    token = login(client, waiting.username)
    before = waiting.state()
    url = f"/inbox/tasks/{waiting.task_id}"
    anything = st.one_of(st.text(max_size=50), _with_control(), st.just(SCRIPT), _too_long(MAX_DRAFT_CHARS))

    @SETTINGS
    @given(post=st.lists(st.tuples(st.one_of(st.sampled_from(["decision", "reasons", "criteria_checked"]),
                                             st.text(max_size=30)), anything), max_size=6))
    def kept(post):
        post = [(key, value) for key, value in post if key != "csrf_token"]
        response = client.post(url + "/draft", data=MultiDict([("csrf_token", token), *post]))
        assert response.status_code in (302, 413), response.status_code
        if response.status_code == 413:
            assert "Bản nháp quá dài nên chưa được lưu." in response.get_data(as_text=True)
        page = client.get(url)
        assert page.status_code == 200 and SCRIPT not in page.get_data(as_text=True)
        assert waiting.state() == before

    kept()
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(TaskDraft)) <= 1  # one draft per user and task


# --- the portal: product registration and sign-up -------------------------------------------------

def _count(world, model) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


NAMES = st.one_of(_with_control(), _too_long(200), st.text(max_size=60), st.sampled_from(LEGAL_ODDITIES),
                  st.just(""), st.just("   "))
IDS = st.sampled_from(["²", "١٢", "9" * 30, "2147483648", "0", "-3", "1e3", "x", "", "1\x00"])
_serial = iter(range(10**9))


@st.composite
def one_hostile(draw, base: dict, hostile: dict) -> tuple[dict, str]:
    """`base` (a valid form) with one or two fields replaced by hostile values."""
    chosen = draw(st.lists(st.sampled_from(sorted(hostile)), min_size=1, max_size=2, unique=True))
    return {**base, **{name: draw(hostile[name]) for name in chosen}}, chosen[0]


def test_product_registration_refuses_hostile_fields(world, client):
    token = login(client, "htx.giomy")
    with world.db.transaction() as session:
        producer_id = str(session.scalar(select(Product.producer_id).where(Product.name == PEPPER)))
    base = {"producer_id": producer_id, "name": "Trà", "group_code": "S03", "registration_form": "01"}
    hostile = {"name": NAMES, "group_code": st.text(max_size=10), "producer_id": IDS,
               "registration_form": st.text(max_size=5)}

    @FEW
    @given(post=one_hostile(base, hostile))
    def registered(post):
        form, _field = post
        products = _count(world, Product)
        response = client.post("/portal/products/new", data={"csrf_token": token, **form})
        if response.status_code == 302:  # a hostile value that is a fine name after all
            with world.db.transaction() as session:
                newest = session.scalars(select(Product).order_by(Product.id.desc())).first()
            assert newest.name == " ".join(form["name"].split()) and not CONTROL_CHARACTERS.search(newest.name)
            return
        assert response.status_code == 400, response.status_code
        page = response.get_data(as_text=True)
        assert 'class="error-text"' in page and SCRIPT not in page
        if CONTROL_CHARACTERS.search(form["name"].strip()):
            assert UNPRINTABLE in page
        assert _count(world, Product) == products

    registered()


@pytest.fixture
def unlimited_app(world, db_url, tmp_path):
    """The app without the sign-in and sign-up rate limits (hypothesis posts
    dozens of times a minute from one address)."""
    return make_app(world, db_url, tmp_path, RATELIMIT_ENABLED=False)


def test_sign_up_refuses_hostile_fields(world, unlimited_app):
    with world.db.transaction() as session:
        commune = str(session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL-GM")))
    base = {"commune_id": commune, "name": "HTX Chè Gio An", "kind": "cooperative", "full_name": "Lê Thị Na",
            "password": "mat-khau-dai", "product_name": "Chè xanh", "group_code": "S03"}
    hostile = {"commune_id": IDS, "name": NAMES, "full_name": NAMES, "product_name": NAMES,
               "kind": st.text(max_size=12), "username": st.text(max_size=20), "password": st.text(max_size=7),
               "group_code": st.text(max_size=10)}

    @FEW
    @given(post=one_hostile(base, hostile))
    def signed_up(post):
        form, _field = post
        form.setdefault("username", f"chu.the.{next(_serial)}")
        client = unlimited_app.test_client()
        users = _count(world, User)
        response = client.post("/portal/signup", data={"csrf_token": csrf_token(client), **form})
        if response.status_code == 302:
            with world.db.transaction() as session:
                user = session.scalar(select(User).where(User.username == form["username"].strip().lower()))
            assert user.full_name == form["full_name"].strip() and not CONTROL_CHARACTERS.search(user.full_name)
            return
        assert response.status_code == 400, response.status_code
        page = response.get_data(as_text=True)
        assert 'class="error-text"' in page and SCRIPT not in page
        assert _count(world, User) == users

    signed_up()


# --- signing in -------------------------------------------------------------------------------

def test_sign_in_refuses_hostile_credentials(world, unlimited_app):
    client = unlimited_app.test_client()

    @FEW
    @given(username=st.one_of(st.text(max_size=100), _with_control(), _too_long(1000)),
           password=st.one_of(st.text(max_size=100), _with_control()))
    def refused(username, password):
        assume(password != DEMO_PASSWORD)
        response = client.post("/login", data={"csrf_token": csrf_token(client), "username": username,
                                               "password": password})
        assert response.status_code == 401
        assert "Wrong username or password." in response.get_data(as_text=True) \
            or "Sai tên đăng nhập hoặc mật khẩu" in response.get_data(as_text=True)

    refused()


def _as_a_browser_reads(location: str) -> str:
    """Browsers drop tabs and line breaks from URLs and read \\ as /."""
    return re.sub(r"[\t\n\r]", "", location).replace("\\", "/")


@sqlite
def test_sign_in_never_redirects_to_another_host(world, unlimited_app):
    client = unlimited_app.test_client()
    hosts = st.sampled_from(["//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example",
                             "javascript:alert(1)", "\\\\evil.example", "/%2F%2Fevil.example", "///evil.example"])

    @FEW
    @given(target=st.one_of(st.text(max_size=40), hosts, st.builds(lambda a, b: a + b, hosts, st.text(max_size=10))))
    def stays(target):
        response = client.post("/login", query_string={"next": target}, data={
            "csrf_token": csrf_token(client), "username": "cb.qt-gl", "password": DEMO_PASSWORD})
        assert response.status_code == 302
        seen = urlsplit(_as_a_browser_reads(response.headers["Location"]))
        assert not seen.scheme and not seen.netloc and seen.path.startswith("/"), response.headers["Location"]
        client.post("/logout", data={"csrf_token": csrf_token(client)})

    stays()


# --- an administrator creates an account --------------------------------------------------------

def test_account_creation_refuses_hostile_fields(world, client):
    token = login(client, "admin")
    with world.db.transaction() as session:
        district = str(session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL")))
    base = {"full_name": "Cán bộ Mới", "password": "mat-khau-dai", "email": "", "role": "district_officer",
            "jurisdiction_id": district}
    hostile = {"username": st.text(max_size=20), "full_name": NAMES, "password": st.text(max_size=7),
               "email": st.one_of(st.text(max_size=30), _with_control(), _too_long(201).map(lambda v: v + "@x.vn")),
               "role": st.text(max_size=15), "jurisdiction_id": IDS}

    @FEW
    @given(post=one_hostile(base, hostile))
    def created(post):
        form, _field = post
        form.setdefault("username", f"can.bo.{next(_serial)}")
        users = _count(world, User)
        response = client.post("/admin/users/new", data={"csrf_token": token, **form})
        if response.status_code == 302:
            with world.db.transaction() as session:
                user = session.scalar(select(User).where(User.username == form["username"].strip().lower()))
            assert user.full_name == form["full_name"].strip() and not CONTROL_CHARACTERS.search(user.full_name)
            return
        assert response.status_code == 422, response.status_code
        assert 'class="flash error"' in response.get_data(as_text=True)
        assert _count(world, User) == users

    created()


# --- evidence uploads -------------------------------------------------------------------------------

FILENAMES = st.one_of(
    st.text(max_size=40), _with_control().map(lambda v: v + ".pdf"), _too_long(300).map(lambda v: v + ".pdf"),
    st.sampled_from(["../../etc/passwd", "..\\..\\win.ini.pdf", "/etc/passwd.pdf", "a/b/c.pdf", ".pdf", "",
                     "CON.pdf", "ho-so.pdf\x00.html", "trang.html", "script.svg", "x.PDF", "💥.png"]))
CONTENTS = st.one_of(st.binary(max_size=200), st.builds(lambda body: b"%PDF-1.7\n" + body, st.binary(max_size=100)),
                     st.builds(lambda body: b"\x89PNG\r\n\x1a\n" + body, st.binary(max_size=64)),
                     st.just(b""), st.just(b"<html><script>alert(1)</script></html>"))


@sqlite
def test_uploads_of_anything_under_any_name(world, app, client, tmp_path):
    with world.db.transaction() as session:
        product_id = session.scalar(select(Product.id).where(Product.name == PEPPER))
    token = login(client, "htx.giomy")
    uploads = Path(app.config["UPLOAD_DIR"])

    @FEW
    @given(data=CONTENTS, filename=FILENAMES)
    def uploaded(data, filename):
        documents = _count(world, Document)
        response = client.post(f"/portal/products/{product_id}/documents",
                               data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
                               content_type="multipart/form-data")
        if response.status_code == 302:
            with world.db.transaction() as session:
                row = session.scalars(select(Document).order_by(Document.id.desc())).first()
            assert _count(world, Document) == documents + 1
            assert not re.search(r"[/\\\x00-\x1f\x7f]", row.filename) and row.filename, row.filename
            download = client.get(f"/portal/documents/{row.id}")
            assert download.status_code == 200 and download.data == data
            assert download.headers["Content-Disposition"].startswith("attachment")
            assert download.mimetype != "text/html"
        else:
            assert response.status_code == 400, response.status_code
            assert 'id="file-error"' in response.get_data(as_text=True)
            assert _count(world, Document) == documents

    uploaded()
    # Nothing was written outside the upload directory.
    stray = [path for path in tmp_path.rglob("*") if path.is_file() and uploads not in path.parents
             and not path.name.startswith("ocop.db")]
    assert stray == [], stray
