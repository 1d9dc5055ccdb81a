"""A council member's score sheet, now: a tiny diagram whose product cycle
is one province council task (formKey council_sheet, dataKey sheet) after a
script that writes the producer's dossier (self-assessment, evidence
kinds), deployed for Quảng Trị; two products of HTX Gio Mỹ to score (S07
and the tourism set S26). Used by tests/test_score_sheet_page.py and
tests/test_browser_score_sheet.py. When the real cycle carries the sheet,
these tests can walk it there instead (the lead's testkit.cycle).

engine/forms.py does not register `council_sheet` yet on this branch:
`sheet_form` registers a stand-in schema for the test only (monkeypatch);
the same for council_spread and council_sign_off."""
from __future__ import annotations

from sqlalchemy import select

from engine.access import load_actor
from storage.models import InboxTask, Jurisdiction, Producer, Product, User

JAM = "Mứt gừng Gio Mỹ"          # set S07
HOMESTAY = "Du lịch cộng đồng Gio Mỹ"  # set S26 (tourism: no samples)
MEMBER = "hd.qt"                   # the Quảng Trị council's account (province_council at QT)
PRODUCER = "htx.giomy"

SELF_ASSESSMENT = {"A.1.1": "A.1.1#2", "A.2.4": "A.2.4#yes"}

SHEET_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="definitions_sheet"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="collab_sheet">
    <bpmn:participant id="p_cycle" name="Chấm điểm" processRef="ocop_product_cycle"/>
    <bpmn:participant id="p_outreach" name="Tuyên truyền" processRef="ocop_outreach"/>
  </bpmn:collaboration>
  <bpmn:process id="ocop_product_cycle" name="Chấm điểm (thử)" isExecutable="true">
    <bpmn:laneSet id="ls_cycle">
      <bpmn:lane id="lane_producer" name="Chủ thể OCOP">
        <bpmn:flowNodeRef>start_cycle</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>script_dossier</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="lane_council" name="Hội đồng đánh giá cấp tỉnh">
        <bpmn:flowNodeRef>task_score_province</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end_cycle</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start_cycle"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="script_dossier" name="Hồ sơ">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>dossier = {"evidence": ["business_registration", "lab_test"], "self_assessment": {"A.1.1": "A.1.1#2", "A.2.4": "A.2.4#yes"}}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:userTask id="task_score_province" name="Phiếu chấm điểm của thành viên hội đồng">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formKey" value="council_sheet"/>
        <spiffworkflow:property name="dataKey" value="sheet"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end_cycle"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start_cycle" targetRef="script_dossier"/>
    <bpmn:sequenceFlow id="f2" sourceRef="script_dossier" targetRef="task_score_province"/>
    <bpmn:sequenceFlow id="f3" sourceRef="task_score_province" targetRef="end_cycle"/>
  </bpmn:process>
  <bpmn:process id="ocop_outreach" name="Tuyên truyền (thử)" isExecutable="true">
    <bpmn:startEvent id="start_outreach"><bpmn:outgoing>o1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="end_outreach"><bpmn:incoming>o1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="o1" sourceRef="start_outreach" targetRef="end_outreach"/>
  </bpmn:process>
</bpmn:definitions>
"""


def _id(session, model, **where):
    return session.scalar(select(model.id).filter_by(**where))


def sheet_task(world, product_name: str = JAM, group_code: str = "S07") -> str:
    """Deploy the diagram for Quảng Trị, register the product for HTX Gio Mỹ,
    start its cycle; the id of the council's sheet task."""
    with world.db.transaction() as session:
        province = _id(session, Jurisdiction, code="QT")
        producer = session.scalar(select(Producer).where(Producer.name == "HTX Nông nghiệp Gio Mỹ"))
        product = Product(producer_id=producer.id, name=product_name, group_code=group_code)
        session.add(product)
        session.flush()
        product_id = product.id
        owner = load_actor(session, producer.owner_user_id)
    world.deploy(SHEET_BPMN.encode(), "sheet-test", "test", province_id=province)
    outcome = world.start_product(product_id, owner)
    with world.db.transaction() as session:
        task = session.scalar(select(InboxTask).where(InboxTask.instance_id == outcome.instance_id))
        return task.id


def product_of(world, task_id: str) -> tuple[int, int]:
    """(product id, instance id) of the sheet task."""
    with world.db.transaction() as session:
        task = session.get(InboxTask, task_id)
        return task.product_id, task.instance_id


def user_named(world, username: str) -> int:
    with world.db.transaction() as session:
        return _id(session, User, username=username)
