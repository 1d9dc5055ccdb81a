"""Diagrams as an outside tester makes them (issue 14, items 2-8): each is
the bundled diagram changed with lxml, or a small one built here, and each
must be refused (or warned about) by `engine.diagram.check` with a plain
one-line message, in Vietnamese and English, that names the element."""
from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
import sys
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from engine import diagram, timer_values
from engine.errors import Problem

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
SEED = (PROCESSES / "ocop_cycle.bpmn").read_bytes()
BPMN = diagram.NS["bpmn"]
SPIFF = diagram.NS["spiffworkflow"]


def seed():
    return etree.fromstring(SEED)


def element(root, element_id: str):
    return root.xpath("//*[@id=$id]", id=element_id)[0]


def add(parent, xml: str):
    """Append XML (with the bpmn: and spiffworkflow: prefixes) to `parent`."""
    wrapper = etree.fromstring(f'<w xmlns:bpmn="{BPMN}" xmlns:spiffworkflow="{SPIFF}">{xml}</w>')
    for child in wrapper:
        parent.append(child)
    return parent[-1]


def check(root) -> diagram.CheckedDiagram:
    return diagram.check(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def problems_at(result, element_id: str, fragment: str) -> list[Problem]:
    found = [p for p in result.problems if p.element_id == element_id and fragment in p.message_en]
    assert found, f"no '{fragment}' at {element_id}: " + " | ".join(map(str, result.problems))
    for problem in found:
        assert_plain(problem)
    return found


def assert_plain(problem: Problem) -> None:
    """One line, in both languages, naming the element, no library jargon."""
    for text in (problem.message, problem.message_en, str(problem)):
        assert "\n" not in text and text.strip() == text, text
        for jargon in ("<Element", " at 0x", "Traceback", "Error(", "{http"):
            assert jargon not in text, text
    assert problem.message != problem.message_en
    assert re.search(r"[ăâđêôơưạảấầẩậắằẳặẹẻẽếềểệỉịọỏốồổộớờởợụủứừửựỳỵỷỹ]", problem.message.lower()), problem.message
    if problem.element_id:
        assert problem.line


# --- item 2: timers ----------------------------------------------------------------------

def boundary_timer(kind: str, text: str):
    root = seed()
    definition = element(root, "timer_check_dossier_late_definition")
    for child in list(definition):
        definition.remove(child)
    add(definition, f"<bpmn:{kind}>{text}</bpmn:{kind}>")
    return root


@pytest.mark.parametrize("kind, text, fragment", [
    ("timeDuration", "'P1X2'", "is not an ISO 8601 duration"),
    ("timeDuration", "'-P1D'", "is not an ISO 8601 duration"),
    ("timeDuration", "'P0D'", "is zero"),
    ("timeDuration", "'P9999999Y'", "longer than 100 years"),
    ("timeDuration", "P1D", "must be quoted"),
    ("timeDate", "2026-10-30T17:00:00", "must be quoted"),
    ("timeDuration", "15", "must give an ISO 8601 text"),
    ("timeDate", "'P1D'", "is a duration; a timeDate needs a moment"),
    ("timeDate", "'2026-02-30T10:00:00'", "is not an ISO 8601 date and time"),
    ("timeCycle", "'P1D'", "is not an ISO 8601 repeating interval"),
    ("timeCycle", "'R/PT0S'", "is zero"),
])
def test_a_malformed_timer_is_refused_at_its_event(kind, text, fragment):
    result = check(boundary_timer(kind, text))
    [problem] = problems_at(result, "timer_check_dossier_late", fragment)
    assert problem.element_name == "Quá 15 ngày làm việc"


@pytest.mark.parametrize("kind, text", [
    ("timeDuration", "'P15D'"), ("timeDuration", "'PT4H30M'"), ("timeDate", "'2026-10-30T17:00:00+07:00'"),
    ("timeCycle", "'R3/P1D'"), ("timeDate", "working_days_from_now(15)"),
    ("timeDuration", "review_period"),  # a variable: checked when the timer starts
])
def test_a_good_or_computed_timer_passes(kind, text):
    assert check(boundary_timer(kind, text)).problems == []


def test_timers_of_intermediate_and_start_events_are_checked_too():
    root = seed()
    flow = element(root, "flow_join_check")
    process = flow.getparent()
    add(process, '<bpmn:intermediateCatchEvent id="wait_a_bit" name="Chờ một chút">'
                 '<bpmn:timerEventDefinition><bpmn:timeDuration>\'P1X\'</bpmn:timeDuration>'
                 '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    add(process, '<bpmn:sequenceFlow id="flow_wait_in" sourceRef="gw_implementation_join" targetRef="wait_a_bit"/>'
                 '<bpmn:sequenceFlow id="flow_wait_out" sourceRef="wait_a_bit" targetRef="task_check_dossier"/>')
    process.remove(flow)
    outreach = element(root, diagram.OUTREACH_PROCESS)
    start = outreach.find(f"{{{BPMN}}}startEvent")
    add(start, "<bpmn:timerEventDefinition><bpmn:timeCycle>'R/P1Y/P1D'</bpmn:timeCycle></bpmn:timerEventDefinition>")
    result = check(root)
    problems_at(result, "wait_a_bit", "is not an ISO 8601 duration")
    problems_at(result, start.get("id"), "is not an ISO 8601 repeating interval")


def test_timer_values_reads_a_run_time_value_as_spiffworkflow_would():
    assert timer_values.problem("timeDuration", "P2D") is None
    vi, en = timer_values.problem("timeDuration", "2 days")
    assert "không phải" in vi and "not an ISO 8601 duration" in en


# --- item 3: every task that waits for a person is in a role's lane ------------------------

@pytest.mark.parametrize("tag", diagram.WAITING_TAGS)
def test_a_task_that_waits_for_a_person_outside_a_lane_is_refused(tag):
    root = seed()
    task = element(root, "task_check_dossier")
    if tag != "userTask":
        task.tag = f"{{{BPMN}}}{tag}"
    for ref in root.xpath("//bpmn:flowNodeRef[text()='task_check_dossier']", namespaces=diagram.NS):
        ref.getparent().remove(ref)
    result = check(root)
    [problem] = problems_at(result, "task_check_dossier", "must be in a lane that is a role")
    assert problem.element_name == "Kiểm tra hồ sơ sản phẩm"
    assert "làn" in problem.message and "vai trò" in problem.message


def test_a_manual_task_in_a_role_lane_passes():
    root = seed()
    element(root, "task_check_dossier").tag = f"{{{BPMN}}}manualTask"
    assert check(root).problems == []


def test_a_task_inside_a_sub_process_takes_the_sub_processs_lane():
    """SpiffWorkflow gives a sub-process's tasks the sub-process's lane."""
    root = seed()
    task = element(root, "task_check_dossier")
    process = task.getparent()
    for flow in root.xpath("//bpmn:sequenceFlow[@targetRef='task_check_dossier']", namespaces=diagram.NS):
        flow.set("targetRef", "check_in_sub")
    for flow in root.xpath("//bpmn:sequenceFlow[@sourceRef='task_check_dossier']", namespaces=diagram.NS):
        flow.set("sourceRef", "check_in_sub")
    boundary = element(root, "timer_check_dossier_late")
    boundary.set("attachedToRef", "check_in_sub")
    sub = add(process, '<bpmn:subProcess id="check_in_sub" name="Kiểm tra trong quy trình con">'
                       '<bpmn:startEvent id="sub_start"/><bpmn:endEvent id="sub_end"/>'
                       '<bpmn:sequenceFlow id="sub_in" sourceRef="sub_start" targetRef="task_check_dossier"/>'
                       '<bpmn:sequenceFlow id="sub_out" sourceRef="task_check_dossier" targetRef="sub_end"/>'
                       "</bpmn:subProcess>")
    sub.insert(1, task)
    for ref in root.xpath("//bpmn:flowNodeRef[text()='task_check_dossier']", namespaces=diagram.NS):
        ref.text = "check_in_sub"
    result = check(root)
    assert not [p for p in result.problems if "lane" in p.message_en], [str(p) for p in result.problems]
    spec = result.specs[diagram.PRODUCT_PROCESS][1]["check_in_sub"].task_specs["task_check_dossier"]
    assert spec.lane == "Cán bộ OCOP xã"


def test_waiting_tags_are_the_kinds_spiffworkflow_leaves_to_a_person():
    """SpiffWorkflow marks a spec `manual` when a person must complete it;
    every tag whose spec is manual needs a lane (WAITING_TAGS)."""
    from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec

    from engine.bpmn_parse import Parser
    parser = Parser(validator=None)
    manual = set()
    for tag in diagram.FLOW_NODE_TAGS:
        _node_parser, spec_class = parser._get_parser_class(f"{{{BPMN}}}{tag}")
        if spec_class is None:
            continue
        try:
            spec = spec_class(BpmnProcessSpec("p"), f"probe_{tag}")
        except TypeError:
            continue  # needs more than a name (events, sub-processes): never manual
        if spec.manual:
            manual.add(tag)
    assert manual == set(diagram.WAITING_TAGS)


# --- item 4: every evaluated place is linted ---------------------------------------------

_ATTRIBUTE = re.compile(r"(^|_)(condition|expression|cardinality|script|prescript|postscript|payload|params"
                        r"|variable|var|item|input|output|maximum|collection|correlations|cond)(s|_|$)")
# Attributes the pattern finds that hold no diagram text to evaluate, and why.
NOT_EVALUATED = {
    "AdHocSubprocessSpec.conditional_paths": "derived from its flows' conditions, linted there",
    "BpmnIoSpecification.data_inputs": "names of task data copied in; any name is only a key",
    "BpmnIoSpecification.data_outputs": "names of task data copied out; any name is only a key",
    "BpmnTaskSpec.data_input_associations": "data associations are refused as unsupported",
    "BpmnTaskSpec.data_output_associations": "data associations are refused as unsupported",
}


def _spec_attributes() -> set[str]:
    import SpiffWorkflow.bpmn.specs
    import SpiffWorkflow.specs
    import SpiffWorkflow.spiff.specs
    found = set()
    for package in (SpiffWorkflow.bpmn.specs, SpiffWorkflow.spiff.specs, SpiffWorkflow.specs):
        modules = [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__,
                                                                              package.__name__ + ".")]
        for module in map(importlib.import_module, modules):
            for cls in vars(module).values():
                if not inspect.isclass(cls) or not cls.__module__.startswith(package.__name__) \
                        or issubclass(cls, BaseException) or "__init__" not in cls.__dict__:
                    continue
                init = cls.__dict__["__init__"]
                names = set(list(inspect.signature(init).parameters)[1:])
                names |= set(re.findall(r"self\.(\w+)\s*=", inspect.getsource(init)))
                found |= {f"{cls.__name__}.{name}" for name in names
                          if _ATTRIBUTE.search(name) and not name.startswith("_")}
    return found


def test_every_expression_attribute_of_spiffworkflows_specs_is_linted():
    """A place SpiffWorkflow evaluates that a later version adds shows up
    here as an attribute of a spec class, and fails until it is linted."""
    linted = {attribute for place in diagram.EVALUATED_PLACES for attribute in place.spec_attributes}
    linted |= set(diagram.SERVICE_PARAMETERS)
    found = _spec_attributes()
    assert {"StandardLoopTask.condition", "MultiInstanceTask.cardinality", "ScriptTask.script"} <= found
    assert found - linted - set(NOT_EVALUATED) == set()


ESCAPES = ("__import__('os').system('id')", "().__class__.__bases__")


def _looped_script_task(xml: str):
    """`xml` (loop characteristics) in a script task, before its script as
    the schema orders them."""
    root = seed()
    task = element(root, "script_init_counters")
    script = task.find(f"{{{BPMN}}}script")
    add(task, xml)
    script.addprevious(task[-1])
    return root, "script_init_counters"


def _extension(xml: str):
    root = seed()
    task = element(root, "script_init_counters")
    add(task.find(f"{{{BPMN}}}extensionElements"), xml)
    return root, "script_init_counters"


def _message_correlation(attack: str):
    root = seed()
    root.insert(0, add(etree.Element("w"), '<bpmn:correlationProperty id="cp_product" name="product">'
                   '<bpmn:correlationPropertyRetrievalExpression messageRef="msg_x">'
                   f"<bpmn:formalExpression>{attack}</bpmn:formalExpression>"
                   "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>"))
    root.insert(0, etree.fromstring(f'<bpmn:message xmlns:bpmn="{BPMN}" id="msg_x" name="x"/>'))
    return root, "cp_product"


def _ad_hoc(attack: str):
    root = seed()
    process = element(root, diagram.OUTREACH_PROCESS)
    add(process, '<bpmn:adHocSubProcess id="adhoc" name="Việc tuỳ chọn">'
                 '<bpmn:task id="adhoc_task"/>'
                 f"<bpmn:completionCondition>{attack}</bpmn:completionCondition></bpmn:adHocSubProcess>")
    return root, "adhoc"


PLACES = {
    # place: build(attack) -> (root, element the problem names)
    "loopCondition": lambda a: _looped_script_task(
        f"<bpmn:standardLoopCharacteristics><bpmn:loopCondition>{a}</bpmn:loopCondition>"
        "</bpmn:standardLoopCharacteristics>"),
    "loopCardinality": lambda a: _looped_script_task(
        f"<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>{a}</bpmn:loopCardinality>"
        "</bpmn:multiInstanceLoopCharacteristics>"),
    "completionCondition": lambda a: _looped_script_task(
        "<bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>3</bpmn:loopCardinality>"
        f"<bpmn:completionCondition>{a}</bpmn:completionCondition></bpmn:multiInstanceLoopCharacteristics>"),
    "ad hoc completionCondition": _ad_hoc,
    "postScript": lambda a: _extension(f"<spiffworkflow:postScript>x = {a}</spiffworkflow:postScript>"),
    "messagePayload": lambda a: _extension(f"<spiffworkflow:messagePayload>{a}</spiffworkflow:messagePayload>"),
    "payloadExpression": lambda a: _extension(
        f"<spiffworkflow:payloadExpression>{a}</spiffworkflow:payloadExpression>"),
    "processVariableCorrelation": lambda a: _extension(
        "<spiffworkflow:processVariableCorrelation><spiffworkflow:propertyId>p</spiffworkflow:propertyId>"
        f"<spiffworkflow:expression>{a}</spiffworkflow:expression></spiffworkflow:processVariableCorrelation>"),
    "correlation formalExpression": _message_correlation,
}


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("attack", ESCAPES)
def test_an_escape_attempt_is_refused_in_every_evaluated_place(place, attack):
    root, owner = PLACES[place](attack)
    problems_at(check(root), owner, "not allowed")


@pytest.mark.parametrize("place, xml", [
    ("loopDataInputRef", "<bpmn:multiInstanceLoopCharacteristics><bpmn:loopDataInputRef>__class__"
                         "</bpmn:loopDataInputRef></bpmn:multiInstanceLoopCharacteristics>"),
    ("loopMaximum", '<bpmn:standardLoopCharacteristics loopMaximum="-1"/>'),
])
def test_names_and_numbers_spiffworkflow_reads_are_checked(place, xml):
    root, owner = _looped_script_task(xml)
    result = check(root)
    assert [p for p in result.problems if p.element_id == owner and p.layer == "lint"], place


# --- item 5: long diagrams -------------------------------------------------------------------

def chain(count: int, loop: bool = False) -> bytes:
    """A product process of `count` user tasks in sequence in the commune
    officer's lane (a loop back to the first when `loop`), and the outreach
    process the engine needs."""
    tasks, flows = [], ['<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="t0"/>']
    for i in range(count):
        tasks.append(f'<bpmn:userTask id="t{i}" name="Bước {i}"><bpmn:extensionElements><spiffworkflow:properties>'
                     '<spiffworkflow:property name="formKey" value="check_dossier"/>'
                     f'<spiffworkflow:property name="dataKey" value="d{i}"/></spiffworkflow:properties>'
                     "</bpmn:extensionElements></bpmn:userTask>")
        if i:
            flows.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="t{i - 1}" targetRef="t{i}"/>')
    last = f"t{count - 1}"
    if loop:
        tasks.append('<bpmn:exclusiveGateway id="again" default="f_again"/>')
        flows.append(f'<bpmn:sequenceFlow id="f_to_again" sourceRef="{last}" targetRef="again"/>'
                     '<bpmn:sequenceFlow id="f_again" sourceRef="again" targetRef="t0"/>'
                     '<bpmn:sequenceFlow id="f_done" sourceRef="again" targetRef="end">'
                     "<bpmn:conditionExpression>rounds &gt; max_rounds</bpmn:conditionExpression>"
                     "</bpmn:sequenceFlow>")
    else:
        flows.append(f'<bpmn:sequenceFlow id="f_end" sourceRef="{last}" targetRef="end"/>')
    refs = "".join(f"<bpmn:flowNodeRef>t{i}</bpmn:flowNodeRef>" for i in range(count))
    return (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="{BPMN}" '
            f'xmlns:spiffworkflow="{SPIFF}" id="d" targetNamespace="http://example.org/ocop">'
            f'<bpmn:process id="{diagram.PRODUCT_PROCESS}" isExecutable="true">'
            f'<bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="Cán bộ OCOP xã">{refs}</bpmn:lane></bpmn:laneSet>'
            f'<bpmn:startEvent id="start"/>{"".join(tasks)}<bpmn:endEvent id="end"/>{"".join(flows)}</bpmn:process>'
            f'<bpmn:process id="{diagram.OUTREACH_PROCESS}" isExecutable="true"><bpmn:startEvent id="s2"/>'
            '<bpmn:endEvent id="e2"/><bpmn:sequenceFlow id="g" sourceRef="s2" targetRef="e2"/></bpmn:process>'
            "</bpmn:definitions>").encode()


@pytest.mark.parametrize("loop", [False, True], ids=["chain", "loop"])
def test_two_thousand_tasks_in_sequence_validate(loop):
    limit = sys.getrecursionlimit()
    result = diagram.check(chain(2000, loop))
    assert result.problems == [], [str(p) for p in result.problems[:3]]
    spec, _subprocesses = result.specs[diagram.PRODUCT_PROCESS]
    assert spec.task_specs["t0"].outputs == [spec.task_specs["t1"]]
    assert sys.getrecursionlimit() == limit


def test_a_loop_too_long_even_with_room_is_a_plain_problem(monkeypatch):
    from engine import bpmn_parse
    monkeypatch.setattr(bpmn_parse, "ROOMY_RECURSION_LIMIT", sys.getrecursionlimit())
    problems = [p for p in diagram.check(chain(2000, loop=True)).problems if p.layer == "bpmn"]
    assert len(problems) == 1 and "loops too deeply" in problems[0].message_en
    assert_plain(problems[0])


def test_sinks_first_parsing_builds_the_same_specs_as_spiffworkflow():
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

    from engine.serialization import specs_to_dict
    root, _ = diagram.read_xml(SEED)
    theirs = SpiffBpmnParser(validator=None)
    theirs.add_bpmn_xml(root, "ocop_cycle.bpmn")
    ours = diagram.check(SEED, "ocop_cycle.bpmn").specs
    for process_id in theirs.get_process_ids():
        mine = specs_to_dict(*ours[process_id])
        library = specs_to_dict(theirs.get_spec(process_id), theirs.get_subprocess_specs(process_id))
        assert mine == library, process_id


# --- items 6 and 7: plain messages; every problem of a file in one report ----------------------

def test_unsupported_bpmn_is_named_with_every_other_problem():
    root = seed()
    task = element(root, "task_register_idea")
    process = task.getparent()
    root.insert(0, etree.fromstring(f'<bpmn:dataStore xmlns:bpmn="{BPMN}" id="store" name="Kho hồ sơ"/>'))
    add(process, '<bpmn:dataStoreReference id="store_ref" name="Kho hồ sơ tỉnh" dataStoreRef="store"/>')
    add(task, '<bpmn:dataOutputAssociation id="to_store"><bpmn:targetRef>store_ref</bpmn:targetRef>'
              "</bpmn:dataOutputAssociation>")
    add(process, '<bpmn:subProcess id="empty_sub" name="Quy trình con rỗng"><bpmn:task id="lonely"/></bpmn:subProcess>')
    element(root, "task_check_dossier").tag = f"{{{BPMN}}}sendTask"
    outreach = element(root, diagram.OUTREACH_PROCESS)
    outreach.set("id", "renamed_outreach")
    for ref in root.xpath("//*[@processRef='ocop_outreach']"):
        ref.set("processRef", "renamed_outreach")
    result = check(root)
    problems_at(result, "store", "data store (dataStore) is not supported by this engine")
    problems_at(result, "store_ref", "data store (dataStoreReference) is not supported")
    [association] = problems_at(result, "task_register_idea", "data association")
    assert association.element_name == "Đăng ký ý tưởng sản phẩm"
    problems_at(result, "empty_sub", "sub-process without a start event is not supported")
    assert any(p.layer == "bpmn" and "ocop_outreach" in p.message_en for p in result.problems)
    # SpiffWorkflow still read the rest: the lint's problems come in the same report.
    assert any(p.layer == "lint" for p in result.problems)
    for problem in result.problems:
        assert_plain(problem)


def test_spiffworkflows_cut_off_sentence_is_rewritten():
    root = seed()
    task = element(root, "script_init_counters")
    flow = root.xpath("//bpmn:sequenceFlow[@sourceRef='script_init_counters']", namespaces=diagram.NS)[0]
    add(flow.getparent(), '<bpmn:sequenceFlow id="second_way" sourceRef="script_init_counters" '
                          f'targetRef="{flow.get("targetRef")}"/>')
    [problem] = problems_at(check(root), "script_init_counters", "several outgoing flows")
    assert "gateway" in problem.message_en and "cổng" in problem.message
    assert problem.element_name == task.get("name")


def test_every_engine_problem_of_a_file_is_reported():
    """Two broken processes: both reported, with the lint's problems."""
    root = seed()
    for task_id in ("script_init_counters", "task_plan_outreach"):
        flow = root.xpath("//bpmn:sequenceFlow[@sourceRef=$id]", id=task_id, namespaces=diagram.NS)[0]
        add(flow.getparent(), f'<bpmn:sequenceFlow id="{task_id}_extra" sourceRef="{task_id}" '
                              f'targetRef="{flow.get("targetRef")}"/>')
    bpmn = [p for p in check(root).problems if p.layer == "bpmn"]
    assert {p.element_id for p in bpmn} == {"script_init_counters", "task_plan_outreach"}, list(map(str, bpmn))


def test_libxml2s_messages_are_said_plainly():
    mismatch = SEED.replace(b"</bpmn:process>", b"</bpmn:proces>", 1)
    [problem] = diagram.check(mismatch).problems
    assert "closing tag </proces> do not match" in problem.message_en and "không khớp" in problem.message
    root = seed()
    element(root, "task_check_dossier").set("bogus", "1")
    [problem] = check(root).problems
    assert problem.message_en == "XSD: not valid BPMN: bpmn:userTask may not have the attribute 'bogus'"
    assert problem.element_name == "Kiểm tra hồ sơ sản phẩm"
    assert_plain(problem)


def test_a_call_to_a_missing_process_is_said_plainly():
    root = seed()
    process = element(root, diagram.OUTREACH_PROCESS)
    flow = process.find(f"{{{BPMN}}}sequenceFlow")
    add(process, '<bpmn:callActivity id="call_nowhere" name="Gọi quy trình khác" calledElement="nowhere"/>')
    add(process, f'<bpmn:sequenceFlow id="to_call" sourceRef="{flow.get("sourceRef")}" targetRef="call_nowhere"/>'
                 f'<bpmn:sequenceFlow id="from_call" sourceRef="call_nowhere" targetRef="{flow.get("targetRef")}"/>')
    process.remove(flow)
    problem = next(p for p in check(root).problems if p.layer == "bpmn")
    assert "Process 'nowhere' is called (callActivity) but is not in the file" == problem.message_en
    assert_plain(problem)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ocop_cycle.bpmn", SEED)
    return buffer.getvalue()


@pytest.mark.parametrize("data, kind", [
    (_zip(), "ZIP"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
])
def test_a_file_that_is_not_xml_is_named_for_what_it_is(data, kind):
    [problem] = diagram.check(data).problems
    assert f"This is a {kind}" in problem.message_en and "not a BPMN diagram" in problem.message_en
    assert f"tệp {kind}" in problem.message and "không phải sơ đồ BPMN" in problem.message
    assert "UTF-8" not in problem.message_en and "byte" not in problem.message_en
    assert_plain(problem)


def test_too_deep_xml_says_so_without_libxml2s_option():
    deep = (f'<bpmn:definitions xmlns:bpmn="{BPMN}" id="d">' + "<a>" * 300 + "</a>" * 300
            + "</bpmn:definitions>").encode()
    [problem] = diagram.check(deep).problems
    assert "nested too deeply" in problem.message_en and "lồng nhau quá sâu" in problem.message
    assert "XML_PARSE_HUGE" not in str(problem) and "Excessive" not in str(problem)


def test_the_portal_shows_the_message_in_the_readers_language(client):
    from testkit.web_login import login
    token = login(client, "qlct.qt")
    xml = etree.tostring(boundary_timer("timeDuration", "'P1X2'"), xml_declaration=True, encoding="UTF-8")

    def timer_problem(answer) -> dict:
        return next(p for p in answer.get_json()["errors"] if p["element_id"] == "timer_check_dossier_late")

    vietnamese = timer_problem(client.post("/definitions/validate", data=xml, content_type="application/xml",
                                           headers={"X-CSRFToken": token}))
    assert vietnamese["message"] == vietnamese["message_vi"] != vietnamese["message_en"]
    assert vietnamese["element_name"] == "Quá 15 ngày làm việc"
    client.get("/overview?lang=en")
    english = timer_problem(client.post("/definitions/validate", data=xml, content_type="application/xml",
                                        headers={"X-CSRFToken": token}))
    assert english["message"] == english["message_en"] == vietnamese["message_en"]
    page = client.post("/definitions/deploy", data={"csrf_token": token, "check_only": "1",
                                                    "file": (io.BytesIO(xml), "d.bpmn")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "is not an ISO 8601 duration" in page and "Quá 15 ngày làm việc" in page


# --- item 8: two start events -----------------------------------------------------------------

def test_two_start_events_in_one_process_are_a_warning():
    root = seed()
    outreach = element(root, diagram.OUTREACH_PROCESS)
    first = outreach.find(f"{{{BPMN}}}startEvent")
    add(outreach, '<bpmn:startEvent id="second_start" name="Bắt đầu lần hai"/>')
    add(outreach, f'<bpmn:sequenceFlow id="from_second" sourceRef="second_start" '
                  f'targetRef="{outreach.find(f"{{{BPMN}}}sequenceFlow").get("targetRef")}"/>')
    result = check(root)
    assert result.problems == [], [str(p) for p in result.problems]
    [warning] = [w for w in result.warnings if w.element_id == diagram.OUTREACH_PROCESS]
    assert "2 start events" in warning.message_en and first.get("id") in warning.message_en
    assert "sự kiện bắt đầu" in warning.message
    assert_plain(warning)


@pytest.mark.parametrize("checker, source", [
    ("check_expression", "__import__('os').system('id')"), ("check_expression", "().__class__.__bases__"),
    ("check_expression", "_secret"), ("check_expression", "f(x=1)"), ("check_expression", "b'x'"),
    ("check_expression", "'%d' % 1"), ("check_expression", "1 / 0"), ("check_expression", "x +"),
    ("check_expression", "-" * 60 + "1"), ("check_expression", "1" * 2001),
    ("check_script", "import os"), ("check_script", "_x = 1"), ("check_script", "x = (\n"),
])
def test_every_expression_refusal_has_its_vietnamese(checker, source):
    from engine import expressions
    with pytest.raises(expressions.ExpressionError) as refused:
        getattr(expressions, checker)(source)
    assert expressions.vietnamese(refused.value) != str(refused.value)
