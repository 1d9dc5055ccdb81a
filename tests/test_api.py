"""The JSON API, /api/v1: authentication (tokens, sessions with CSRF), area
limits, tasks through their life, errors as JSON, the OpenAPI document."""
import json
import re

import pytest
from sqlalchemy import func, select

from demo.seed import DEMO_PASSWORD
from programme.accounts import assign_role, create_user
from storage.models import Jurisdiction, Product, TaskDraft, User
from testkit.cycle import Cycle
from testkit.web_login import login

API = "/api/v1"


# --- helpers ---------------------------------------------------------------------

def _session_client(app, username: str):
    """A browser-like client signed in through the login form, and its CSRF token."""
    client = app.test_client()
    return client, login(client, username)


def _token_for(app, username: str, name: str = "kịch bản") -> str:
    client, csrf = _session_client(app, username)
    response = client.post(f"{API}/tokens", json={"name": name}, headers={"X-CSRFToken": csrf})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


class Bearer:
    """A client that authenticates with a token only (no cookies at all)."""

    def __init__(self, app, token: str):
        self.client = app.test_client(use_cookies=False)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path, **kwargs):
        return self.client.get(API + path, headers=self.headers, **kwargs)

    def post(self, path, **kwargs):
        return self.client.post(API + path, headers=self.headers, **kwargs)

    def delete(self, path, **kwargs):
        return self.client.delete(API + path, headers=self.headers, **kwargs)


def _as(app, username: str) -> Bearer:
    return Bearer(app, _token_for(app, username))


def _error(response, status: int, code: str) -> dict:
    """Every error is JSON with a stable code; never HTML, never a traceback."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


def _at_review_idea(world, product: str) -> Cycle:
    cycle = Cycle(world, product).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    assert cycle.ready_forms() == ["review_idea"]
    return cycle


def _product_id(world, name: str) -> int:
    with world.db.transaction() as session:
        return session.scalar(select(Product.id).where(Product.name == name))


# --- authentication ----------------------------------------------------------------

def test_no_credentials_is_401(client):
    for path in ("/tasks", "/products", "/definitions", "/instances/1", "/tokens"):
        _error(client.get(API + path), 401, "unauthenticated")
    response = client.get(f"{API}/tasks", headers={"Authorization": "Basic YWRtaW46b2NvcC1kZW1v"})
    _error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _error(client.get(f"{API}/tasks", headers={"Authorization": "Bearer not-a-token"}), 401, "unauthenticated")


def test_session_auth_reads_and_needs_csrf_to_write(app):
    client, csrf = _session_client(app, "cb.qt-gl")
    assert client.get(f"{API}/tasks").status_code == 200
    # A cross-site form post would carry the cookie but not the header.
    _error(client.post(f"{API}/tokens", json={"name": "x"}), 403, "csrf_failed")
    _error(client.post(f"{API}/tokens", json={"name": "x"}, headers={"X-CSRFToken": "forged"}),
           403, "csrf_failed")
    created = client.post(f"{API}/tokens", json={"name": "x"}, headers={"X-CSRFToken": csrf})
    assert created.status_code == 201
    assert created.get_json()["token"].startswith("ocop_")


def test_token_auth_needs_no_csrf_and_cannot_mint_tokens(app):
    officer = _as(app, "cb.qt-gl")
    listed = officer.get("/tokens").get_json()["tokens"]
    assert [t["name"] for t in listed] == ["kịch bản"] and "token" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    _error(officer.post("/tokens", json={"name": "khác"}), 403, "forbidden")


def test_revoked_token_is_refused(app):
    officer = _as(app, "cb.qt-gl")
    token_id = officer.get("/tokens").get_json()["tokens"][0]["id"]
    revoked = officer.delete(f"/tokens/{token_id}")
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    _error(officer.get("/tasks"), 401, "unauthenticated")


def test_token_of_a_deactivated_user_is_refused(world, app):
    officer = _as(app, "cb.qt-gl")
    with world.db.transaction() as session:
        session.scalar(select(User).where(User.username == "cb.qt-gl")).is_active = False
    _error(officer.get("/tasks"), 401, "unauthenticated")


def test_another_users_token_cannot_be_revoked(app):
    first = _as(app, "cb.qt-gl")
    token_id = first.get("/tokens").get_json()["tokens"][0]["id"]
    _error(_as(app, "cb.qt-cl").delete(f"/tokens/{token_id}"), 404, "not_found")
    assert first.get("/tasks").status_code == 200


# --- tasks -----------------------------------------------------------------------

def test_task_list_is_limited_to_the_area(world, app):
    gio_linh = _at_review_idea(world, "Hồ tiêu Gio Linh")
    cam_lo = _at_review_idea(world, "Tinh dầu tràm Cam Lộ")
    listing = _as(app, "cb.qt-cl").get("/tasks").get_json()
    assert [t["product_name"] for t in listing["tasks"]] == ["Tinh dầu tràm Cam Lộ"]
    assert listing["total"] == 1 and listing["counts"]["area"] == 1
    assert all(t["instance_id"] != gio_linh.instance_id for t in listing["tasks"])

    gl = _as(app, "cb.qt-gl")
    task = gl.get("/tasks").get_json()["tasks"][0]
    assert task["instance_id"] == gio_linh.instance_id and task["form_key"] == "review_idea"
    assert task["commune_name"] == "Xã Gio Mỹ" and task["overdue"] is False
    assert gl.get("/tasks?form_key=review_plan").get_json()["total"] == 0
    assert gl.get("/tasks?scope=mine").get_json()["total"] == 0
    _error(gl.get("/tasks?scope=everything"), 422, "invalid")
    assert cam_lo.instance_id != gio_linh.instance_id


def test_claim_then_complete_review_idea_moves_the_product_on(world, app):
    cycle = _at_review_idea(world, "Hồ tiêu Gio Linh")
    task_id = cycle.task("review_idea").id
    officer = _as(app, "cb.qt-gl")
    claimed = officer.post(f"/tasks/{task_id}/claim")
    assert claimed.status_code == 200
    assert claimed.get_json()["task"]["assignee_id"] == cycle.actor("review_idea").user_id
    assert officer.get("/tasks?scope=mine").get_json()["total"] == 1

    done = officer.post(f"/tasks/{task_id}/complete", json={"decision": "accept"})
    assert done.status_code == 200, done.get_json()
    result = done.get_json()
    assert result["status"] == "running" and [t["form_key"] for t in result["ready_tasks"]] == ["submit_plan"]
    assert cycle.ready_forms() == ["submit_plan"]

    instance = officer.get(f"/instances/{cycle.instance_id}").get_json()
    assert instance["current_step"] == 3 and instance["product_name"] == "Hồ tiêu Gio Linh"
    assert [t["form_key"] for t in instance["ready_tasks"]] == ["submit_plan"]
    history = officer.get(f"/instances/{cycle.instance_id}/history").get_json()
    assert history["chain_intact"] is True
    kinds = [event["kind"] for event in history["events"]]
    assert kinds[0] == "started" and "claimed" in kinds and kinds.count("task_completed") == 3


def test_completing_through_the_api_removes_the_tasks_draft(world, app):
    """A completion is one transaction whichever way it comes: the draft
    saved on the task page goes with the task (its inbox row takes its drafts)."""
    cycle = _at_review_idea(world, "Hồ tiêu Gio Linh")
    task_id = cycle.task("review_idea").id
    client, csrf = _session_client(app, "cb.qt-gl")
    saved = client.post(f"/inbox/tasks/{task_id}/draft", data={
        "csrf_token": csrf, "decision": "return", "reasons": "Đang xem"})
    assert saved.status_code == 302

    def drafts() -> int:
        with world.db.transaction() as session:
            return session.scalar(select(func.count()).select_from(TaskDraft).where(TaskDraft.task_id == task_id))
    assert drafts() == 1

    done = _as(app, "cb.qt-gl").post(f"/tasks/{task_id}/complete", json={"decision": "accept"})
    assert done.status_code == 200, done.get_json()
    assert cycle.ready_forms() == ["submit_plan"]
    assert drafts() == 0


def test_unclaim_gives_the_task_back(world, app):
    task_id = _at_review_idea(world, "Hồ tiêu Gio Linh").task("review_idea").id
    officer = _as(app, "cb.qt-gl")
    officer.post(f"/tasks/{task_id}/claim")
    released = officer.post(f"/tasks/{task_id}/unclaim")
    assert released.status_code == 200 and released.get_json()["task"]["assignee_id"] is None


def test_task_claimed_by_a_colleague_is_a_conflict(world, app):
    task_id = _at_review_idea(world, "Hồ tiêu Gio Linh").task("review_idea").id
    with world.db.transaction() as session:
        colleague = create_user(session, "cb.qt-gl.2", "Cán bộ thứ hai", DEMO_PASSWORD)
        area = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT-GL"))
        assign_role(session, colleague, "district_officer", area)
    assert _as(app, "cb.qt-gl").post(f"/tasks/{task_id}/claim").status_code == 200
    other = _as(app, "cb.qt-gl.2")
    _error(other.post(f"/tasks/{task_id}/claim"), 409, "conflict")
    _error(other.post(f"/tasks/{task_id}/complete", json={"decision": "accept"}), 409, "conflict")


def test_bad_form_data_is_422_with_fields(world, app):
    cycle = _at_review_idea(world, "Hồ tiêu Gio Linh")
    task_id = cycle.task("review_idea").id
    officer = _as(app, "cb.qt-gl")
    error = _error(officer.post(f"/tasks/{task_id}/complete", json={"decision": "maybe"}), 422, "invalid")
    assert "decision" in error["fields"]
    error = _error(officer.post(f"/tasks/{task_id}/complete", json={"decision": "return"}), 422, "invalid")
    assert "reasons" in error["fields"]
    error = _error(officer.post(f"/tasks/{task_id}/complete", json={"decision": "accept", "extra": 1}),
                   422, "invalid")
    assert "extra" in error["fields"]
    _error(officer.post(f"/tasks/{task_id}/complete", data="decision=accept",
                        content_type="application/x-www-form-urlencoded"), 422, "invalid")
    _error(officer.post(f"/tasks/{task_id}/complete", json=["accept"]), 422, "invalid")
    assert cycle.ready_forms() == ["review_idea"]  # nothing changed


def test_wrong_role_in_the_area_is_403(world, app):
    task_id = _at_review_idea(world, "Hồ tiêu Gio Linh").task("review_idea").id
    # The commune officer of Gio Mỹ sees the instance but review_idea is the district's.
    _error(_as(app, "cb.qt-gl-gm").post(f"/tasks/{task_id}/claim"), 403, "forbidden")


def test_another_areas_task_and_instance_are_404(world, app):
    cycle = _at_review_idea(world, "Hồ tiêu Gio Linh")
    task_id = cycle.task("review_idea").id
    outsider = _as(app, "cb.qt-cl")
    missing = _error(outsider.post("/tasks/00000000-0000-0000-0000-000000000000/claim"), 404, "not_found")
    hidden = _error(outsider.post(f"/tasks/{task_id}/claim"), 404, "not_found")
    assert set(missing) == set(hidden)  # the same shape: nothing tells them apart
    _error(outsider.post(f"/tasks/{task_id}/complete", json={"decision": "accept"}), 404, "not_found")
    _error(outsider.post(f"/tasks/{task_id}/unclaim"), 404, "not_found")
    _error(outsider.get(f"/instances/{cycle.instance_id}"), 404, "not_found")
    _error(outsider.get(f"/instances/{cycle.instance_id}/history"), 404, "not_found")
    _error(outsider.get("/instances/999999"), 404, "not_found")
    _error(outsider.post(f"/products/{_product_id(world, 'Gạo hữu cơ Gio Mỹ')}/start"), 404, "not_found")
    assert cycle.ready_forms() == ["review_idea"]


def test_history_for_producer_officers_of_the_area_and_auditors(world, app):
    cycle = _at_review_idea(world, "Hồ tiêu Gio Linh")
    for username in ("htx.giomy", "cb.qt-gl", "cb.qt-gl-gm", "kiemtoan"):
        response = _as(app, username).get(f"/instances/{cycle.instance_id}/history")
        assert response.status_code == 200, username
        assert response.get_json()["events"][0]["kind"] == "started"
    _error(_as(app, "cty.tramcamlo").get(f"/instances/{cycle.instance_id}/history"), 404, "not_found")


# --- products ---------------------------------------------------------------------

def test_products_own_for_producers_area_for_officers(world, app):
    own = _as(app, "htx.giomy").get("/products").get_json()
    assert sorted(p["name"] for p in own["products"]) == ["Gạo hữu cơ Gio Mỹ", "Hồ tiêu Gio Linh"]
    area = _as(app, "cb.qt-cl").get("/products").get_json()
    assert sorted(p["name"] for p in area["products"]) == ["Cà phê rang xay Cam Hiếu", "Tinh dầu tràm Cam Lộ"]
    assert _as(app, "kiemtoan").get("/products").get_json()["total"] == 7
    assert _as(app, "cb.lc-sp").get("/products").get_json()["total"] == 1  # two-tier commune


def test_producer_starts_a_product(world, app):
    producer = _as(app, "htx.giomy")
    product_id = _product_id(world, "Gạo hữu cơ Gio Mỹ")
    started = producer.post(f"/products/{product_id}/start")
    assert started.status_code == 201, started.get_json()
    result = started.get_json()
    assert [t["form_key"] for t in result["ready_tasks"]] == ["register_idea"]
    listed = {p["id"]: p for p in producer.get("/products").get_json()["products"]}
    assert listed[product_id]["latest_instance"]["id"] == result["instance_id"]
    _error(producer.post(f"/products/{product_id}/start", json={"year": "soon"}), 422, "invalid")
    # A district officer sees the product but does not register it.
    _error(_as(app, "cb.qt-gl").post(f"/products/{product_id}/start"), 403, "forbidden")


def test_registration_closed_is_409(world, app):
    world.clock.advance(days=200)  # past every outreach window
    response = _as(app, "htx.giomy").post(f"/products/{_product_id(world, 'Gạo hữu cơ Gio Mỹ')}/start")
    _error(response, 409, "registration_closed")


def test_definitions(app):
    definitions = _as(app, "cb.qt-gl").get("/definitions").get_json()["definitions"]
    by_name = {d["name"]: d for d in definitions}
    assert by_name["ocop_cycle"]["active"] is True and by_name["ocop_cycle"]["province_id"] is None
    assert by_name["ocop_cycle_two_tier"]["province_name"] == "Tỉnh Lào Cai"
    assert all(len(d["sha256"]) == 64 and d["version"] >= 1 and d["deployed_at"] for d in definitions)


# --- the contract ---------------------------------------------------------------------

def test_openapi_document_lists_every_route(app, client):
    response = client.get(f"{API}/openapi.json")  # public: no credentials needed
    assert response.status_code == 200
    document = json.loads(response.get_data(as_text=True))
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    schemas = document["components"]["schemas"]
    assert {"Error", "TaskList", "StepResult", "Instance", "History", "ReviewIdeaForm"} <= set(schemas)
    routes = [rule for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("api.") and rule.endpoint != "api.unknown_route"]
    assert len(routes) >= 13
    for rule in routes:
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in document["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = document["paths"][path][method.lower()]
            assert operation["responses"], (path, method)
    # The error body documents every code the API answers with.
    from web.api.errors import ERROR_CODES
    described = schemas["ErrorBody"]["properties"]["code"]["description"]
    assert all(re.search(rf"\b{code}\b", described) for code in ERROR_CODES), described
    complete = document["paths"]["/api/v1/tasks/{task_id}/complete"]["post"]
    assert complete["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert "422" in complete["responses"]
    tasks_parameters = {p["name"] for p in document["paths"]["/api/v1/tasks"]["get"]["parameters"]}
    assert {"step", "form_key", "commune_id", "group_code", "scope", "overdue", "sort", "page"} <= tasks_parameters


@pytest.mark.parametrize("method, path", [
    ("get", "/nowhere"), ("post", "/tasks"), ("get", "/tasks/abc/claim"), ("delete", "/definitions"),
])
def test_routing_errors_are_json(app, method, path):
    response = getattr(_as(app, "cb.qt-gl").client, method)(API + path)
    status, code = (404, "not_found") if path == "/nowhere" else (405, "method_not_allowed")
    _error(response, status, code)
