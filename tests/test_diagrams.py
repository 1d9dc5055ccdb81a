"""Checking diagrams before deploy: hostile XML, invalid BPMN, and what the
engine needs. Every failure is a list of problems naming the element (and
line); a refused diagram is never stored."""
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import diagram
from engine.errors import DiagramError
from storage.models import ProcessDefinition

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
SEED = (PROCESSES / "ocop_cycle.bpmn").read_text(encoding="utf-8")
TWO_TIER = (PROCESSES / "variants" / "ocop_cycle_two_tier.bpmn").read_text(encoding="utf-8")


def problems(xml: str) -> list[str]:
    return [str(p) for p in diagram.check(xml.encode("utf-8")).problems]


def one_problem(xml: str, *fragments: str) -> str:
    found = problems(xml)
    assert found, "the diagram should have been refused"
    text = " | ".join(found)
    for fragment in fragments:
        assert fragment in text, text
    return text


@pytest.mark.parametrize("xml", [SEED, TWO_TIER])
def test_bundled_diagrams_pass_all_three_layers(xml):
    assert problems(xml) == []


@pytest.mark.parametrize("xml", [SEED, TWO_TIER])
def test_bundled_diagrams_draw_every_element(xml):
    """bpmn-js needs a DI shape or edge for every pool, lane, node and flow."""
    root, _ = diagram.read_xml(xml.encode())
    drawn = {el.get("bpmnElement") for el in root.iter() if el.get("bpmnElement")}
    elements = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")
                and el.tag.split("}")[1] in ("participant", "lane", "sequenceFlow", "userTask",
                                             "serviceTask", "scriptTask", "startEvent", "endEvent",
                                             "exclusiveGateway", "parallelGateway")}
    assert elements - drawn == set()


def test_malformed_xml_names_the_line():
    text = one_problem(SEED.replace("</bpmn:process>", "</bpmn:proces>", 1), "[xml]", "not well-formed")
    assert re.search(r"line \d+", text)


def test_not_bpmn_at_all():
    one_problem("<html><body>hello</body></html>", "bpmn:definitions")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
<bpmn:process id="p" name="&lol3;"/></bpmn:definitions>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
<bpmn:process id="p" name="&xxe;"/></bpmn:definitions>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entity_payloads_are_refused(payload):
    text = one_problem(payload, "DOCTYPE")
    assert "root:" not in text


def test_entities_are_never_resolved_even_past_the_precheck():
    # UTF-16 hides the DOCTYPE from a byte search; the parser still resolves nothing.
    root, found = diagram.read_xml(EXTERNAL_ENTITY.replace('<?xml version="1.0"?>', "")
                                   .encode("utf-16"))
    assert found or b"root:" not in diagram.etree.tostring(root)


def test_oversized_file_is_refused():
    one_problem(SEED + "<!--" + "x" * diagram.MAX_BPMN_BYTES + "-->", "limit")


def test_xsd_violation_names_element_and_line():
    text = one_problem(SEED.replace('<bpmn:userTask id="task_register_idea"',
                                    '<bpmn:userTask bogus="1" id="task_register_idea"', 1), "[xml]", "XSD")
    assert "task_register_idea" in text and "line" in text


def test_missing_process_is_reported():
    one_problem(SEED.replace('id="ocop_outreach"', 'id="some_other_process"')
                .replace('processRef="ocop_outreach"', 'processRef="some_other_process"'),
                "[bpmn]", "ocop_outreach")


@pytest.mark.parametrize("attack", [
    "().__class__.__base__.__subclasses__()",
    "__import__('os').system('touch /tmp/pwned')",
])
def test_escaping_condition_is_refused(attack):
    bad = SEED.replace("idea_review['decision'] == 'accept'", attack.replace("'", "&apos;"), 1)
    assert bad != SEED
    one_problem(bad, "flow_idea_accept", "line", "not allowed")


def test_escaping_script_is_refused():
    bad = SEED.replace("idea_returns = 0", "import os", 1)
    assert bad != SEED
    one_problem(bad, "script lines must be")


def test_escaping_service_parameter_is_refused():
    bad = SEED.replace("value=\"'business_plan'\"", "value=\"__import__('os')\"", 1)
    assert bad != SEED
    one_problem(bad, "parameter 'topic'", "not allowed")


def test_unknown_handler_is_refused_at_deploy_time():
    bad = SEED.replace('serviceTaskOperator id="schedule_training"', 'serviceTaskOperator id="send_sms"', 1)
    one_problem(bad, "handler 'send_sms' is not registered")


def test_handler_parameters_must_fit_its_schema():
    bad = SEED.replace('<spiffworkflow:parameter id="topic"', '<spiffworkflow:parameter id="subject"', 1)
    one_problem(bad, "has no parameter 'subject'", "needs parameter 'topic'")


def test_unknown_form_key_and_lane():
    bad = SEED.replace('value="review_idea"', 'value="review_everything"', 1)
    one_problem(bad, "formKey 'review_everything'", "task_review_idea")
    bad = SEED.replace('name="Cán bộ OCOP huyện"', 'name="Phòng Nông nghiệp"', 1)
    one_problem(bad, "lane 'Phòng Nông nghiệp'", "not a role")


def test_refused_diagram_is_not_deployed(engine):
    with pytest.raises(DiagramError) as caught:
        engine.deploy(SEED.replace('serviceTaskOperator id="notify"', 'serviceTaskOperator id="x"')
                      .encode(), "ocop_cycle", "tester")
    assert caught.value.problems and all(p.element_id for p in caught.value.problems)
    with engine.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ProcessDefinition)) == 0


def test_deploys_are_immutable_versions(engine):
    first = engine.deploy(SEED.encode(), "ocop_cycle", "tester", "first")
    again = engine.deploy(SEED.encode(), "ocop_cycle", "tester", "same bytes")
    changed = engine.deploy(SEED.replace("Đăng ký ý tưởng sản phẩm", "Đăng ký ý tưởng", 1).encode(),
                            "ocop_cycle", "tester", "renamed a task")
    assert (first.version, again.id, changed.version) == (1, first.id, 2)
    with engine.db.transaction() as session:
        active = session.scalars(select(ProcessDefinition.version).where(
            ProcessDefinition.is_active.is_(True))).all()
    assert active == [2]


def test_constant_parameters_are_checked_against_the_schema():
    bad = SEED.replace("value=\"'business_plan'\"", "value=\"'cooking'\"", 1)
    one_problem(bad, "parameter 'topic' of 'schedule_training' does not fit")


CAMUNDA = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="ocop_product_cycle" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Activity_review" name="Review" camunda:formKey="embedded:app:review.html">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing></bpmn:userTask>
    <bpmn:serviceTask id="Activity_mail" camunda:class="com.example.Mail">
      <bpmn:incoming>Flow_2</bpmn:incoming><bpmn:outgoing>Flow_3</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>Flow_3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Activity_review"/>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Activity_review" targetRef="Activity_mail"/>
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Activity_mail" targetRef="End_1"/>
  </bpmn:process>
  <bpmn:process id="ocop_outreach" isExecutable="true">
    <bpmn:startEvent id="S2"><bpmn:outgoing>F4</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="E2"><bpmn:incoming>F4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F4" sourceRef="S2" targetRef="E2"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_a_diagram_from_another_tool_gets_a_clear_list():
    found = problems(CAMUNDA)
    text = " | ".join(found)
    assert "Activity_review" in text and "formKey '(missing)'" in text and "in no lane" in text
    assert "Activity_mail" in text and "names no handler" in text
