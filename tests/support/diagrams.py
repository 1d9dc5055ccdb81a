"""Changed versions of the national diagram (processes/ocop_cycle.bpmn), to
deploy as a new version and migrate or replay onto: used by
tests/test_migration.py, tests/test_replay.py and tests/test_audit_pages.py."""
from programme.definitions import NATIONAL_DIAGRAM

NATIONAL_XML = NATIONAL_DIAGRAM[1].read_text(encoding="utf-8")
DISTRICT_NAME = "Đưa vào phiên họp, điểm danh (Hội đồng cấp huyện)"
REGISTER_NAME = "Đăng ký ý tưởng sản phẩm"


def later_change() -> str:
    """task_attendance_district (step 5: the product waits for the district
    council's session) renamed and due in 45 days instead of 30."""
    head, tail = NATIONAL_XML.split('<bpmn:userTask id="task_attendance_district"', 1)
    element, rest = tail.split("</bpmn:userTask>", 1)
    assert 'name="dueDays" value="30"' in element
    element = (element.replace(DISTRICT_NAME, DISTRICT_NAME + " - v2")
               .replace('name="dueDays" value="30"', 'name="dueDays" value="45"'))
    return head + '<bpmn:userTask id="task_attendance_district"' + element + "</bpmn:userTask>" + rest


def earlier_change() -> str:
    """task_register_idea (the first task of step 2) renamed."""
    old = f'<bpmn:userTask id="task_register_idea" name="{REGISTER_NAME}">'
    assert old in NATIONAL_XML
    return NATIONAL_XML.replace(old, f'<bpmn:userTask id="task_register_idea" name="{REGISTER_NAME} (mẫu 01)">')
