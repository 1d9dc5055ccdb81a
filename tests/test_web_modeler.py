"""The diagram editor (/modeler/): who may open it, the configuration its
script reads, the shipped diagram it starts from, that the spiffworkflow
extension elements survive a bpmn-js round trip, and the page itself in a
real browser."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from demo.seed import DEMO_PASSWORD
from engine import diagram
from engine.forms import FORMS
from engine.roles import LANE_ROLES
from handlers.registry import all_handlers
from testkit.web_login import login
from tests.support.browser import ARTIFACTS

# The web tests run on SQLite only (the engine tests cover PostgreSQL); the
# bpmn-moddle round trip needs no database at all.
sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "processes" / "ocop_cycle.bpmn"
BUNDLE = ROOT / "web" / "static" / "dist" / "modeler.js"
SPIFF_TAGS = ("spiffworkflow:properties", "spiffworkflow:property", "spiffworkflow:serviceTaskOperator",
              "spiffworkflow:parameters", "spiffworkflow:parameter", "bpmn:conditionExpression")
# A council's member sheets (task_score_L): the collection is a variable's name, not a reference.
MULTI_INSTANCE_TAGS = ("bpmn:multiInstanceLoopCharacteristics", "bpmn:loopDataInputRef", "bpmn:loopDataOutputRef",
                       "bpmn:inputDataItem", "bpmn:outputDataItem")


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must build the front end (bash scripts/build_frontend.sh)")
    pytest.skip(reason)


def _count(xml: str, tag: str) -> int:
    return len(re.findall(rf"<{tag}[\s>/]", xml))


# --- who may open it -----------------------------------------------------------------------------

@sqlite
def test_anonymous_users_are_sent_to_sign_in(client):
    for path in ("/modeler/", "/modeler/config.json", "/modeler/bundled.bpmn"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


@sqlite
@pytest.mark.parametrize("username", ["htx.giomy", "cb.qt-gl", "hd.qt", "kiemtoan"])
def test_others_are_refused(client, username):
    login(client, username)
    for path in ("/modeler/", "/modeler/config.json", "/modeler/bundled.bpmn"):
        assert client.get(path).status_code == 403, (username, path)


@sqlite
@pytest.mark.parametrize("username", ["qlct.qt", "admin"])
def test_program_managers_and_administrators_get_the_page(client, username):
    login(client, username)
    response = client.get("/modeler/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="modeler-canvas"' in page and "/static/dist/modeler.js" in page
    for label in ("Kiểm tra", "Tải xuống", "Mở tệp", "Triển khai"):
        assert label in page
    # The CSP forbids inline code: no inline script or style at all.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "<style" not in page and " style=" not in page
    assert 'data-config-url="/modeler/config.json"' in page


@sqlite
def test_the_requested_definition_is_passed_to_the_script(client):
    login(client, "qlct.qt")
    assert 'data-definition-id="7"' in client.get("/modeler/?definition=7").get_data(as_text=True)
    assert 'data-definition-id=""' in client.get("/modeler/").get_data(as_text=True)
    assert client.get("/modeler/?definition=x").status_code == 400


# --- what the script reads -----------------------------------------------------------------------

@sqlite
def test_config_lists_forms_handlers_and_lanes(client):
    token = login(client, "qlct.qt")
    response = client.get("/modeler/config.json")
    assert response.status_code == 200 and response.is_json
    config = response.get_json()
    assert config["forms"] == sorted(FORMS)
    handlers = {spec["name"]: spec for spec in config["handlers"]}
    assert set(handlers) == set(all_handlers())
    for name, handler in all_handlers().items():
        declared, required = handler.parameter_names()
        listed = handlers[name]["parameters"]
        assert {p["name"] for p in listed} == declared, name
        assert {p["name"] for p in listed if p["required"]} == required, name
        assert all(p["type"] in ("str", "int", "float", "bool", "list", "dict") for p in listed)
        assert handlers[name]["description"] == handler.description
    assert [(lane["key"], lane["label"]) for lane in config["lanes"]] == \
        [(role.key, role.label_vi) for role in LANE_ROLES]
    assert config["steps"] == [1, 2, 3, 4, 5, 6]
    assert config["urls"] == {"bundled": "/modeler/bundled.bpmn", "definition": "/definitions/{id}.bpmn",
                              "validate": "/definitions/validate", "deploy": "/definitions/deploy"}
    assert config["csrf_token"] == token
    # A program manager deploys for their own province only.
    assert [p["name"] for p in config["provinces"]] == ["Tỉnh Quảng Trị"]


@sqlite
def test_administrators_may_deploy_nationally_or_for_any_province(client):
    login(client, "admin")
    provinces = client.get("/modeler/config.json").get_json()["provinces"]
    assert provinces[0] == {"id": None, "name": None}
    assert len(provinces) > 2 and all(p["id"] for p in provinces[1:])


@sqlite
def test_the_bundled_diagram_is_served(client):
    login(client, "qlct.qt")
    response = client.get("/modeler/bundled.bpmn")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.data == BUNDLED.read_bytes()


# --- the spiffworkflow extension in bpmn-moddle -----------------------------------------------------

def test_extension_elements_survive_a_round_trip(tmp_path):
    """bpmn-js reads and writes the diagram through bpmn-moddle with our
    spiffworkflow description: what comes back out is what the engine reads."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "bpmn-moddle").is_dir():
        _missing("node or node_modules is missing")
    script = ROOT / "web" / "static" / "src" / "roundtrip.js"
    for source in (BUNDLED, ROOT / "processes" / "variants" / "ocop_cycle_two_tier.bpmn"):
        run = subprocess.run([node, str(script), str(source)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, check=False)
        assert run.returncode == 0 and not run.stderr, run.stderr
        original, exported = source.read_text(encoding="utf-8"), run.stdout
        for tag in SPIFF_TAGS + MULTI_INSTANCE_TAGS:
            assert _count(exported, tag) == _count(original, tag), (source.name, tag)
        assert "<bpmn:loopDataInputRef>province_panel</bpmn:loopDataInputRef>" in exported, source.name
        assert "<bpmn:loopDataOutputRef>province_sheets</bpmn:loopDataOutputRef>" in exported, source.name
        assert 'spiffworkflow:serviceTaskOperator id="notify" resultVariable=' in exported
        checked = diagram.check(exported.encode("utf-8"), source.name)
        assert checked.ok, checked.problems


# --- in a browser --------------------------------------------------------------------------------

@sqlite
def test_editing_a_user_task_in_the_browser(page):
    if not BUNDLE.is_file():
        _missing(f"{BUNDLE.relative_to(ROOT)} is not built")
    page.goto("/login")
    page.fill("input[name=username]", "qlct.qt")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    problems = []
    page.on("console", lambda msg: problems.append(f"{msg.text} {msg.location.get('url', '')}")
            if msg.type == "error" and "favicon" not in msg.location.get("url", "") else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    page.goto("/modeler/")
    page.wait_for_selector('#modeler-canvas [data-element-id="task_review_idea"] rect')
    page.wait_for_selector("#modeler[data-ready=true]")
    assert "Sơ đồ gốc" in page.inner_text("#modeler-source")

    # The whole cycle fits the viewport; at that zoom the task can sit under the palette: centre it.
    page.evaluate("""() => {
        const modeler = window.ocopModeler.modeler, canvas = modeler.get('canvas');
        const task = modeler.get('elementRegistry').get('task_review_idea'), box = canvas.viewbox();
        canvas.viewbox({x: task.x + task.width / 2 - box.width / 2, y: task.y + task.height / 2 - box.height / 2,
                        width: box.width, height: box.height});
    }""")
    page.locator('#modeler-canvas [data-element-id="task_review_idea"]').first.click()
    assert page.input_value("#panel-form-key") == "review_idea"
    assert page.input_value("#panel-data-key") == "idea_review"
    assert page.input_value("#panel-due-days") == "15"
    assert page.inner_text("#panel-id") == "task_review_idea"
    assert "Cán bộ OCOP huyện" in page.inner_text("#panel-lane")
    assert "district_officer" in page.inner_text("#panel-lane")
    assert page.is_hidden("#panel-service-task")

    page.fill("#panel-due-days", "21")
    page.press("#panel-due-days", "Tab")
    xml = page.evaluate("window.ocopModeler.saveXML()")
    review = re.search(r'<bpmn:userTask id="task_review_idea".*?</bpmn:userTask>', xml, re.DOTALL).group(0)
    assert '<spiffworkflow:property name="dueDays" value="21"' in review
    assert '<spiffworkflow:property name="formKey" value="review_idea"' in review
    for tag in ("spiffworkflow:serviceTaskOperator",) + MULTI_INSTANCE_TAGS:
        assert _count(xml, tag) == _count(BUNDLED.read_text(), tag), tag
    sheets = re.search(r'<bpmn:userTask id="task_score_district".*?</bpmn:userTask>', xml, re.DOTALL).group(0)
    assert "<bpmn:loopDataInputRef>district_panel</bpmn:loopDataInputRef>" in sheets
    assert diagram.check(xml.encode("utf-8")).ok

    # A service task: its handler and one input per declared parameter.
    page.evaluate("window.ocopModeler.select('notify_idea_returned')")
    assert page.input_value("#panel-handler") == "notify"
    assert page.input_value("#panel-parameter-kind") == "'idea_returned'"
    assert page.is_visible("#panel-parameter-recipient")

    # A flow leaving an exclusive gateway: its condition and the default toggle.
    page.evaluate("window.ocopModeler.select('flow_idea_accept')")
    assert page.input_value("#panel-condition") == "idea_review['decision'] == 'accept'"
    assert not page.is_checked("#panel-default")
    page.evaluate("window.ocopModeler.select('flow_idea_return')")
    assert page.is_checked("#panel-default")

    # Check: the edited diagram is valid.
    page.click("#modeler-validate")
    page.wait_for_selector("#modeler-status.ok")
    assert "hợp lệ" in page.inner_text("#modeler-status")

    # Without its form the user task is refused; the problem names the
    # element, and clicking it selects and marks it on the canvas.
    page.evaluate("window.ocopModeler.select('task_review_idea')")
    page.select_option("#panel-form-key", "")
    page.click("#modeler-validate")
    page.wait_for_selector("#modeler-status.error")
    item = page.locator('#modeler-problems button[data-element-id="task_review_idea"]').first
    item.wait_for()
    page.evaluate("window.ocopModeler.select('flow_idea_accept')")
    item.click()
    assert page.inner_text("#panel-id") == "task_review_idea"
    assert page.locator('#modeler-canvas .djs-element.ocop-problem[data-element-id="task_review_idea"]').count() == 1

    # Deploying the broken diagram is refused with the same list...
    page.fill("#deploy-message", "Thử sửa thời hạn")
    page.click("#modeler-deploy-button")
    page.wait_for_selector("#modeler-status.error")
    assert page.locator('#modeler-problems button[data-element-id="task_review_idea"]').count() >= 1
    # ... and once the form is back, it is deployed for the province.
    page.select_option("#panel-form-key", "review_idea")
    page.click("#modeler-deploy-button")
    page.wait_for_selector("#modeler-status.ok")
    assert "Đã triển khai" in page.inner_text("#modeler-status")
    assert page.locator("#modeler-problems li.error").count() == 0

    # The deployed version opens in the editor from ?definition=<id>.
    deployed = re.search(r"#(\d+)", page.inner_text("#modeler-status")).group(1)
    page.goto(f"/modeler/?definition={deployed}")
    page.wait_for_selector("#modeler[data-ready=true]")
    assert f"số {deployed}" in page.inner_text("#modeler-source")
    page.evaluate("window.ocopModeler.select('task_review_idea')")
    assert page.input_value("#panel-due-days") == "21"
    # An unknown version: the shipped diagram, saying so.
    page.goto("/modeler/?definition=999999")
    page.wait_for_selector("#modeler[data-ready=true]")
    assert "Sơ đồ gốc" in page.inner_text("#modeler-source")
    assert page.locator("#modeler-status.warning").count() == 1

    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "modeler.png"), full_page=True)
    # The refused deploy (422) and the unknown version (404) are logged by the
    # browser; nothing else may fail.
    unexpected = [p for p in problems
                  if not ("status of 422" in p and p.endswith("/definitions/deploy"))
                  and not ("status of 404" in p and p.endswith("/definitions/999999.bpmn"))]
    assert not unexpected, unexpected  # script errors, CSP refusals, failed loads
