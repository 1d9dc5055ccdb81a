"""A task done outside the system -- a BPMN manualTask (or plain task) in a
role lane, without a formKey -- is offered in the inbox of its lane's role
and area like any task, and is completed with a plain 'Đã xong'
confirmation: no fields, nothing stored (engine.diagram.task_form). Through
the task page and the JSON API; the history then replays."""
from __future__ import annotations

import pytest
from lxml import etree
from sqlalchemy import select

from audit import verification
from engine import diagram
from engine.forms import CONFIRM_DONE
from storage.models import AuditEvent
from testkit.cycle import Cycle
from testkit.web_login import login
from tests.support.inbox_world import PEPPER
from tests.test_diagrams_from_outside import SEED, element


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: this is about the pages and the API, not the database."""
    return f"sqlite:///{tmp_path / 'ocop.db'}"


OFFICER = "cb.qt-gl-gm"  # the commune officer of Gio Mỹ, where both products are made
RICE = "Gạo hữu cơ Gio Mỹ"
SUPPORT = "task_support_record"


def manual_support(tag: str = "manualTask") -> bytes:
    """The bundled cycle with the on-site support step done outside the
    system: a manualTask (or plain task) without a form (its step and due date kept)."""
    root = etree.fromstring(SEED)
    task = element(root, SUPPORT)
    task.tag = f"{{{diagram.NS['bpmn']}}}{tag}"
    for prop in task.xpath(".//spiffworkflow:property[@name='formKey' or @name='dataKey']", namespaces=diagram.NS):
        prop.getparent().remove(prop)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def at_support(world, product: str, tag: str = "manualTask") -> Cycle:
    world.deploy(manual_support(tag), "manual_support", "test")  # the active national diagram
    cycle = Cycle(world, product).start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan"):
        cycle.do(form_key)
    return cycle


def support_task(cycle: Cycle):
    [task] = [t for t in cycle.ready() if t.element_id == SUPPORT]
    return task


def test_the_checks_pass_a_manual_task_and_still_check_a_form_it_names():
    assert diagram.check(manual_support()).problems == []
    root = etree.fromstring(manual_support())
    element(root, SUPPORT).find(".//spiffworkflow:properties", diagram.NS).append(etree.fromstring(
        f'<spiffworkflow:property xmlns:spiffworkflow="{diagram.NS["spiffworkflow"]}" name="formKey" value="nope"/>'))
    problems = diagram.check(etree.tostring(root)).problems
    assert {p.element_id for p in problems} == {SUPPORT}
    assert sorted(p.message_en.split(" ")[0] for p in problems) == ["dataKey", "formKey"]  # as on a userTask


@pytest.mark.parametrize("tag", ["manualTask", "task"])
def test_a_manual_task_is_offered_and_confirmed_on_the_task_page(world, client, tag):
    cycle = at_support(world, PEPPER, tag)
    task = support_task(cycle)
    assert (task.role, task.form_key, task.data_key) == ("commune_officer", CONFIRM_DONE, "")
    token = login(client, OFFICER)
    assert "Ghi nhận hỗ trợ tại cơ sở" in client.get("/inbox/").get_data(as_text=True)
    page = client.get(f"/inbox/tasks/{task.id}").get_data(as_text=True)
    assert "Xác nhận đã làm xong" in page and "Việc này được làm ngoài hệ thống" in page
    assert ">Đã xong</button>" in page and "Lưu nháp" not in page

    response = client.post(f"/inbox/tasks/{task.id}", data={"csrf_token": token, "action": "complete"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert SUPPORT not in [t.element_id for t in cycle.ready()]
    assert "submit_dossier" in cycle.ready_forms()
    with world.db.transaction() as session:
        done = session.scalar(select(AuditEvent).where(AuditEvent.instance_id == cycle.instance_id,
                                                       AuditEvent.element_id == SUPPORT,
                                                       AuditEvent.kind == "task_completed"))
        assert (done.data["form_key"], done.data["data_key"], done.data["form"]) == (CONFIRM_DONE, "", {})
        assert done.data["delta"] == {"set": {}, "removed": []}  # nothing stored
    report = verification.verify(world, [cycle.instance_id], replay_too=True)
    assert report.problems == [], [str(p) for p in report.problems]


def test_a_manual_task_is_confirmed_through_the_api(world, app):
    cycle = at_support(world, RICE)
    task = support_task(cycle)
    client = app.test_client()
    token = login(client, OFFICER)
    headers = {"X-CSRFToken": token}
    listed = client.get("/api/v1/tasks", headers=headers).get_json()["tasks"]
    assert [t["form_key"] for t in listed if t["id"] == task.id] == [CONFIRM_DONE]
    refused = client.post(f"/api/v1/tasks/{task.id}/complete", json={"notes": "x"}, headers=headers)
    assert refused.status_code == 422  # a confirmation has no fields
    done = client.post(f"/api/v1/tasks/{task.id}/complete", json={}, headers=headers)
    assert done.status_code == 200, done.get_json()
    assert SUPPORT not in [t.element_id for t in cycle.ready()]
