"""Comparing two diagram versions (engine/compare.py, /definitions/compare)
and moving running instances to a version from the web (/definitions/<id>/migrate)."""
import re
from pathlib import Path

from sqlalchemy import select

from storage.models import Jurisdiction, ProcessDefinition, ProcessInstance
from testkit.cycle import Cycle
from testkit.web_login import login

SEED = (Path(__file__).resolve().parents[1] / "processes" / "ocop_cycle.bpmn").read_text(encoding="utf-8")
REGISTER = '<bpmn:userTask id="task_register_idea" name="Đăng ký ý tưởng sản phẩm">'
DISTRICT = "Thành viên chấm điểm sản phẩm (Hội đồng cấp huyện)"
FLOW = '<bpmn:sequenceFlow id="flow_register_receive" sourceRef="task_register_idea" targetRef="task_receive_idea"/>'


def renamed_and_added() -> bytes:
    """task_register_idea renamed; a manual task added between it and task_receive_idea."""
    assert REGISTER in SEED and FLOW in SEED
    xml = SEED.replace(REGISTER, REGISTER.replace("Đăng ký ý tưởng sản phẩm", "Đăng ký ý tưởng (mẫu 01)"))
    return xml.replace(FLOW, '<bpmn:sequenceFlow id="flow_register_receive" sourceRef="task_register_idea" '
                             'targetRef="task_extra_check"/>\n'
                             '    <bpmn:scriptTask id="task_extra_check" name="Kiểm tra bổ sung">'
                             '<bpmn:script>extra_checked = True</bpmn:script></bpmn:scriptTask>\n'
                             '    <bpmn:sequenceFlow id="flow_extra_receive" sourceRef="task_extra_check" '
                             'targetRef="task_receive_idea"/>').encode()


def later_change() -> bytes:
    """task_score_district (step 5) renamed: safe for an instance still at step 2."""
    assert DISTRICT in SEED
    return SEED.replace(f'name="{DISTRICT}"', f'name="{DISTRICT} - v2"', 1).encode()


def national_id(world) -> int:
    with world.db.transaction() as session:
        return world.active_definition(session, None).id


def test_compare_lists_a_renamed_task_as_changed_and_an_added_one_as_added(world, client):
    old = national_id(world)
    new = world.deploy(renamed_and_added(), "ocop_cycle", "test", "thêm bước kiểm tra").id

    token = login(client, "cb.qt-gl")  # a district officer
    assert client.get(f"/definitions/compare?a={old}&b={new}").status_code == 403
    assert client.get(f"/definitions/compare.json?a={old}&b={new}").status_code == 403
    client.post("/logout", data={"csrf_token": token})

    login(client, "qlct.qt")
    index = client.get("/definitions/").get_data(as_text=True)
    assert f'href="/definitions/compare?b={new}"' in index and "So sánh với phiên bản trước" in index
    assert f'href="/definitions/{new}/migrate"' in index

    answer = client.get(f"/definitions/compare.json?a={old}&b={new}").get_json()
    added = {e["id"]: e for e in answer["added"]}
    changed = {e["id"]: e for e in answer["changed"]}
    assert added["task_extra_check"]["type"] == "scriptTask"
    assert added["task_extra_check"]["name"] == "Kiểm tra bổ sung" and "flow_extra_receive" in added
    assert changed["task_register_idea"]["changes"] == {
        "name": ["Đăng ký ý tưởng sản phẩm", "Đăng ký ý tưởng (mẫu 01)"]}
    assert changed["flow_register_receive"]["changes"] == {"target": ["task_receive_idea", "task_extra_check"]}
    assert answer["removed"] == [] and answer["b"]["id"] == new

    page = client.get(f"/definitions/compare?b={new}")  # a defaults to the previous version
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'data-diff="added" data-element="task_extra_check"', html)
    assert re.search(r'data-diff="changed" data-element="task_register_idea"', html)
    assert "Đăng ký ý tưởng (mẫu 01)" in html and "<script>" not in html
    assert client.get(f"/definitions/compare?a=9999&b={new}").status_code == 404


def test_the_migrate_page_plans_then_moves_the_safe_instances(world, client):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    cycle.do("register_idea")
    old = national_id(world)
    with world.db.transaction() as session:
        qt = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "QT"))
    target = world.deploy(later_change(), "ocop_cycle", "test", "đổi tên bước chấm điểm huyện").id
    variant = world.deploy(later_change().replace(b" - v2", b" - QT"), "ocop_cycle", "test", province_id=qt).id

    # Lào Cai's program manager may look but not move anything to a national or Quảng Trị version.
    token = login(client, "qlct.lc")
    for refused in (target, variant):
        assert client.post(f"/definitions/{refused}/migrate", data={"csrf_token": token}).status_code == 403
    with world.db.transaction() as session:
        assert session.get(ProcessInstance, cycle.instance_id).definition_id == old
    client.post("/logout", data={"csrf_token": token})

    token = login(client, "admin")
    page = client.get(f"/definitions/{target}/migrate?from={old}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-instance="{cycle.instance_id}" data-verdict="safe"' in html
    assert "Hồ tiêu Gio Linh" in html and "Chuyển các hồ sơ đang chạy" in html
    assert client.post(f"/definitions/{target}/migrate", data={"from": old}).status_code == 400  # no CSRF
    done = client.post(f"/definitions/{target}/migrate", data={"csrf_token": token, "from": old})
    assert done.status_code == 200
    assert 'data-outcome="migrated"' in done.get_data(as_text=True)
    with world.db.transaction() as session:
        assert session.get(ProcessInstance, cycle.instance_id).definition_id == target
        assert session.get(ProcessDefinition, target).province_id is None
    again = client.get(f"/definitions/{target}/migrate").get_data(as_text=True)
    assert f'data-instance="{cycle.instance_id}"' not in again  # nothing left on other versions
