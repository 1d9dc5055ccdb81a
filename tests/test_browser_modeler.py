"""The diagram editor end to end in a real browser (Debian's chromium through
Playwright): a program manager inserts a user task into the cycle, is told
about the dangling flow, fixes it and deploys for the province; a product
started afterwards runs the new version, and the new task lands in the
district officer's inbox."""
import os
import re

import pytest

from testkit.cycle import Cycle
from tests.support.browser import ARTIFACTS
from tests.support.web_helpers import page_errors, require_bundle
from tests.support.web_helpers import sign_in_browser as sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

NEW_TASK = "task_precheck_idea"
NEW_NAME = "Thẩm định sơ bộ ý tưởng"
PRODUCT = "Gạo hữu cơ Gio Mỹ"

# Through the modeler's own services (palette drags would be brittle): a user
# task in the district officers' lane, below "receive idea", with a flow into
# it from "receive idea" and nothing out of it yet.
ADD_TASK = """([id]) => {
  const modeler = window.ocopModeler.modeler;
  const registry = modeler.get('elementRegistry');
  const receive = registry.get('task_receive_idea');
  const review = registry.get('task_review_idea');
  const businessObject = modeler.get('bpmnFactory').create('bpmn:UserTask', { id });
  const shape = modeler.get('elementFactory').createShape({ type: 'bpmn:UserTask', businessObject });
  const modeling = modeler.get('modeling');
  const task = modeling.createShape(shape, { x: receive.x + receive.width / 2, y: 700 }, review.parent);
  modeling.connect(receive, task);
  return task.id;
}"""

# receive -> new task (the flow drawn above); the old receive -> review flow
# now leaves the new task instead.
CONNECT = """([id]) => {
  const modeler = window.ocopModeler.modeler;
  const registry = modeler.get('elementRegistry');
  const task = registry.get(id);
  const old = registry.get('flow_receive_review');
  modeler.get('modeling').reconnectStart(old, task, { x: task.x + task.width, y: task.y + task.height / 2 });
  const flow = registry.get('flow_receive_review');
  return [flow.source.id, flow.target.id,
          task.incoming.map((f) => f.source.id), task.outgoing.map((f) => f.target.id)];
}"""



def test_a_new_task_is_modelled_deployed_and_reaches_the_officer(page, world):
    require_bundle("modeler.js")
    problems = page_errors(page)

    sign_in(page, "qlct.qt")
    page.goto("/modeler/")
    page.wait_for_selector("#modeler[data-ready=true]")
    page.wait_for_selector('#modeler-canvas [data-element-id="task_receive_idea"] rect')

    # The task, its flow in, and its properties through the panel.
    assert page.evaluate(ADD_TASK, [NEW_TASK]) == NEW_TASK
    page.wait_for_selector(f'#modeler-canvas [data-element-id="{NEW_TASK}"] rect')
    page.evaluate(f"window.ocopModeler.select('{NEW_TASK}')")
    page.wait_for_function(f"document.getElementById('panel-id').textContent === '{NEW_TASK}'")
    assert "Cán bộ OCOP huyện" in page.inner_text("#panel-lane")
    assert "district_officer" in page.inner_text("#panel-lane")
    page.fill("#panel-name", NEW_NAME)
    page.press("#panel-name", "Tab")
    page.select_option("#panel-step", "2")
    page.select_option("#panel-form-key", "receive_idea")
    page.fill("#panel-data-key", "idea_precheck")
    page.press("#panel-data-key", "Tab")
    page.locator(f'#modeler-canvas [data-element-id="{NEW_TASK}"]', has_text=NEW_NAME).first.wait_for()

    # Nothing leaves the new task yet: the check names it.
    page.click("#modeler-validate")
    page.wait_for_selector("#modeler-status.error")
    problem = page.locator(f'#modeler-problems li.error button[data-element-id="{NEW_TASK}"]').first
    problem.wait_for()
    assert re.search(r"không có luồng ra|không thể đi tới sự kiện kết thúc", problem.inner_text()), \
        problem.inner_text()
    assert page.locator(f'#modeler-canvas .djs-element.ocop-problem[data-element-id="{NEW_TASK}"]').count() == 1
    # Close up on the new task for the screenshot (clicking the problem selects it).
    page.evaluate("""([id]) => {
      const modeler = window.ocopModeler.modeler;
      modeler.get('canvas').zoom(1);
      modeler.get('canvas').scrollToElement(modeler.get('elementRegistry').get(id));
    }""", [NEW_TASK])
    problem.click()
    assert page.inner_text("#panel-id") == NEW_TASK
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "modeler_validation.png"), full_page=True)

    # receive -> new task -> review: clean.
    assert page.evaluate(CONNECT, [NEW_TASK]) == \
        [NEW_TASK, "task_review_idea", ["task_receive_idea"], ["task_review_idea"]]
    page.click("#modeler-validate")
    page.wait_for_selector("#modeler-status.ok")
    assert page.locator("#modeler-problems li.error").count() == 0
    xml = page.evaluate("window.ocopModeler.saveXML()")
    new_task = re.search(rf'<bpmn:userTask id="{NEW_TASK}".*?</bpmn:userTask>', xml, re.DOTALL).group(0)
    for name, value in (("formKey", "receive_idea"), ("dataKey", "idea_precheck"), ("step", "2")):
        assert f'<spiffworkflow:property name="{name}" value="{value}"' in new_task, name
    lane = re.search(r'<bpmn:lane id="lane_district_officer".*?</bpmn:lane>', xml, re.DOTALL).group(0)
    assert f"<bpmn:flowNodeRef>{NEW_TASK}</bpmn:flowNodeRef>" in lane

    # Deployed for Quảng Trị.
    page.fill("#deploy-message", "Thêm bước thẩm định sơ bộ ý tưởng")
    page.select_option("#deploy-province", label="Tỉnh Quảng Trị")
    page.click("#modeler-deploy-button")
    page.wait_for_selector("#modeler-status.ok")
    assert "Đã triển khai" in page.inner_text("#modeler-status")

    # A product started now runs the new version (the live server shares the database).
    cycle = Cycle(world, PRODUCT).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    [precheck] = cycle.ready()
    assert (precheck.element_id, precheck.name, precheck.role) == (NEW_TASK, NEW_NAME, "district_officer")

    page.locator("header form button[type=submit]").click()
    page.wait_for_load_state()
    sign_in(page, "cb.qt-gl")
    page.goto("/inbox/")
    row = page.locator("tr", has_text=PRODUCT)
    row.get_by_role("link", name=NEW_NAME).first.wait_for()
    row.get_by_role("link", name=NEW_NAME).first.click()
    page.wait_for_load_state()
    assert NEW_NAME in page.locator("main").inner_text()
    assert not problems, problems
