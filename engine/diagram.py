"""Reading and checking a BPMN diagram before it may be deployed.

Three layers, every problem collected and named by element (id and name)
and line, in Vietnamese and English (engine.errors.Problem):
1. xml:  what the file is (a ZIP, PDF or image is named as such), then a
         hostile-input safe parse (no DTD, no entities, no network, size
         and depth limits), then BPMN 2.0 + spiff extension XSD validation;
2. bpmn: SpiffWorkflow's own parser, each process on its own, its errors
         in plain words (engine.bpmn_parse), and the valid BPMN it cannot
         run (`_unsupported`: data stores, data associations, sub-processes
         without a start event, element kinds it has no parser for);
3. lint: what this engine needs: every task that waits for a person in a
         lane that is a role, known form keys, registered handlers with
         fitting parameters, every text SpiffWorkflow (or a task's
         `assignee`) evaluates inside the allow-list language
         (EVALUATED_PLACES), timers it can schedule, and a sound flow graph
         (`engine/flow_graph.py`: connected, reachable, defaults, loops bounded).

The layers after the XML one read the valid tree and report together. Problems
block a deploy; warnings (`CheckedDiagram.warnings`, `lint_warnings`) do not.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

from lxml import etree
from marshmallow import ValidationError
from SpiffWorkflow.spiff.parser.process import VALIDATOR

from engine import bpmn_parse, expressions, forms, roles, timer_values, xml_messages
from engine.errors import DiagramError, Problem
from engine.flow_graph import FLOW_NODE_TAGS, SCOPE_TAGS, lint_flows
from engine.flow_graph import at as _at
from engine.flow_graph import local as _local

# The cycle's process ids, also read as diagram.PRODUCT_PROCESS and so on.
from engine.process_ids import OUTREACH_PROCESS, PRODUCT_PROCESS, REQUIRED_PROCESSES  # noqa: F401
from handlers import registry

MAX_BPMN_BYTES = 2 * 1024 * 1024
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
# Tasks SpiffWorkflow leaves READY for a person: each in a lane that is a role.
WAITING_TAGS = ("userTask", "manualTask", "task")


@dataclass(frozen=True)
class Place:
    """A text in the XML that SpiffWorkflow evaluates (or assigns to)."""

    xpath: str
    kind: str  # expression | script | variable | whole number | timer
    label_vi: str
    label_en: str
    # The "Class.attribute" of SpiffWorkflow's specs the text becomes; the
    # test that walks the library's spec classes looks them up here.
    spec_attributes: tuple[str, ...]


_MI = "bpmn:multiInstanceLoopCharacteristics"
_EXT = "bpmn:extensionElements/spiffworkflow"
# Every place SpiffWorkflow 3.2's parsers (bpmn/parser, spiff/parser) read a
# text that its script engine later evaluates or that names a variable it
# writes. Service-task parameters are checked with their handler
# (`_lint_service_task`).
EVALUATED_PLACES = (
    Place("//bpmn:sequenceFlow/bpmn:conditionExpression", "expression", "điều kiện của luồng",
          "flow condition", ("ExclusiveChoice.cond_task_specs", "MultiChoice.cond_task_specs")),
    Place("//bpmn:standardLoopCharacteristics/bpmn:loopCondition", "expression", "điều kiện lặp",
          "loop condition", ("StandardLoopTask.condition",)),
    Place("//bpmn:standardLoopCharacteristics/@loopMaximum", "whole number", "số lần lặp tối đa",
          "loop maximum", ("StandardLoopTask.maximum",)),
    Place(f"//{_MI}/bpmn:loopCardinality", "expression", "số lượng phiên bản (loopCardinality)",
          "loop cardinality", ("MultiInstanceTask.cardinality",)),
    Place(f"//{_MI}/bpmn:completionCondition", "expression", "điều kiện hoàn thành",
          "completion condition", ("MultiInstanceTask.condition",)),
    Place("//bpmn:adHocSubProcess/bpmn:completionCondition", "expression", "điều kiện hoàn thành",
          "completion condition", ("AdHocSubprocessSpec.completion_condition",)),
    Place(f"//{_MI}/bpmn:loopDataInputRef", "variable", "tập hợp đầu vào (loopDataInputRef)",
          "input collection", ("MultiInstanceTask.data_input",)),
    Place(f"//{_MI}/bpmn:loopDataOutputRef", "variable", "tập hợp đầu ra (loopDataOutputRef)",
          "output collection", ("MultiInstanceTask.data_output",)),
    Place(f"//{_MI}/bpmn:inputDataItem/@id", "variable", "phần tử đầu vào (inputDataItem)",
          "input item", ("MultiInstanceTask.input_item",)),
    Place(f"//{_MI}/bpmn:outputDataItem/@id", "variable", "phần tử đầu ra (outputDataItem)",
          "output item", ("MultiInstanceTask.output_item",)),
    Place("//bpmn:timerEventDefinition/bpmn:*[self::bpmn:timeDate or self::bpmn:timeDuration "
          "or self::bpmn:timeCycle]", "timer", "hẹn giờ", "timer", ("TimerEventDefinition.expression",)),
    Place("//bpmn:conditionalEventDefinition/bpmn:condition", "expression", "điều kiện của sự kiện",
          "event condition", ("ConditionalEventDefinition.expression",)),
    Place("//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression", "expression",
          "biểu thức tương quan", "correlation expression", ("CorrelationProperty.retrieval_expression",)),
    Place("//bpmn:correlationPropertyRetrievalExpression/bpmn:messagePath", "expression",
          "biểu thức tương quan", "correlation expression", ("CorrelationProperty.retrieval_expression",)),
    Place("//spiffworkflow:messagePayload", "expression", "nội dung thông điệp", "message payload",
          ("MessageEventDefinition.expression",)),
    Place("//spiffworkflow:processVariableCorrelation/spiffworkflow:expression", "expression",
          "biểu thức tương quan", "correlation expression", ("MessageEventDefinition.process_correlations",)),
    Place("//spiffworkflow:messageVariable", "variable", "biến nhận thông điệp", "message variable",
          ("MessageEventDefinition.message_var",)),
    Place(f"//{_EXT}:payloadExpression", "expression", "nội dung sự kiện", "event payload",
          ("SpiffItemAwareEventDefinition.expression",)),
    Place(f"//{_EXT}:variableName", "variable", "biến nhận dữ liệu", "variable name",
          ("SpiffItemAwareEventDefinition.variable", "UserTask.variable")),
    Place("//bpmn:scriptTask/bpmn:script", "script", "kịch bản", "script", ("ScriptTask.script",)),
    Place(f"//{_EXT}:preScript", "script", "kịch bản trước (preScript)", "pre-script",
          ("SpiffBpmnTask.prescript",)),
    Place(f"//{_EXT}:postScript", "script", "kịch bản sau (postScript)", "post-script",
          ("SpiffBpmnTask.postscript",)),
    Place(f"//{_EXT}:serviceTaskOperator/@resultVariable", "variable", "biến kết quả",
          "result variable", ("ServiceTask.result_variable",)),
)
# Checked where the handler is known (`_lint_service_task`).
SERVICE_PARAMETERS = ("ServiceTask.operation_params",)

# Processing instructions are kept so they can be refused (remove_pis would
# hide them, but the file is stored and served as uploaded). huge_tree=False
# keeps libxml2's depth limit (256 levels): far deeper than any diagram.
_SAFE_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False,
                            dtd_validation=False, huge_tree=False, remove_pis=False)
MAX_XML_DEPTH = 256

# What a file that is not XML usually is, by its first bytes.
_MAGIC = (
    (b"PK\x03\x04", "ZIP (hoặc DOCX, XLSX)", "ZIP (or DOCX, XLSX)"),
    (b"PK\x05\x06", "ZIP", "ZIP"),
    (b"%PDF", "PDF", "PDF"),
    (b"\x89PNG", "PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG", "JPEG"),
    (b"GIF8", "GIF", "GIF"),
    (b"\x1f\x8b", "gzip", "gzip"),
    (b"7z\xbc\xaf", "7z", "7z"),
    (b"Rar!", "RAR", "RAR"),
    (b"\xd0\xcf\x11\xe0", "Word/Excel cũ (OLE)", "old Word/Excel (OLE)"),
    (b"\x7fELF", "chương trình (ELF)", "program (ELF)"),
    (b"MZ", "chương trình Windows", "Windows program"),
)


@dataclass
class CheckedDiagram:
    xml: bytes
    root: etree._Element | None = None
    specs: dict = field(default_factory=dict)  # process id -> (spec, subprocess_specs)
    problems: list[Problem] = field(default_factory=list)
    # Shown to the author, never block a deploy.
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(xml: bytes, filename: str = "diagram.bpmn") -> CheckedDiagram:
    """Run all three layers. XML problems stop there (nothing else can be
    trusted); the rest all read the valid tree and report together."""
    result = CheckedDiagram(xml)
    result.root, result.problems = read_xml(xml)
    if result.problems:
        return result
    result.problems = xsd_problems(result.root)
    if result.problems:
        return result
    unsupported = _unsupported(result.root)
    # SpiffWorkflow reads a copy without the data elements, refused already,
    # so that it still reports what else is wrong (a data store stops its
    # whole parse); its problems at the other unsupported elements repeat ours.
    result.specs, parsed = bpmn_parse.parse_specs(_without_data(result.root), filename)
    flagged = {element.get("id") for element, _problem in unsupported}
    result.problems = ([problem for _element, problem in unsupported]
                       + [p for p in parsed if p.element_id not in flagged]
                       + _missing_processes(result.root) + lint(result.root))
    result.warnings = lint_warnings(result.root)
    return result


def check_or_raise(xml: bytes, filename: str = "diagram.bpmn") -> CheckedDiagram:
    result = check(xml, filename)
    if not result.ok:
        raise DiagramError(result.problems)
    return result


def read_xml(xml: bytes) -> tuple[etree._Element | None, list[Problem]]:
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if len(xml) > MAX_BPMN_BYTES:
        return None, [_at(None, f"Tệp dài {len(xml)} byte, vượt giới hạn {MAX_BPMN_BYTES} byte",
                          f"The file is {len(xml)} bytes, over the limit of {MAX_BPMN_BYTES}", "xml")]
    if not xml.strip():
        return None, [_at(None, "Tệp trống: không có sơ đồ nào", "The file is empty: there is no diagram", "xml")]
    kind = _binary_kind(xml)
    if kind:
        return None, [_at(None, f"Đây là tệp {kind[0]}, không phải sơ đồ BPMN: hãy tải lên tệp .bpmn "
                                "(XML) xuất từ trình vẽ quy trình",
                          f"This is a {kind[1]} file, not a BPMN diagram: upload the .bpmn (XML) file "
                          "saved by the process modeler", "xml")]
    try:
        xml.decode("utf-8")  # stored and served as UTF-8 text, as bpmn-js writes it
    except UnicodeDecodeError as err:
        return None, [_at(None, f"Tệp không phải văn bản UTF-8 (byte thứ {err.start} không hợp lệ): "
                                "sơ đồ BPMN phải được lưu với mã UTF-8",
                          f"The file is not UTF-8 text (byte {err.start} is not valid): a BPMN diagram "
                          "must be saved as UTF-8", "xml")]
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        # Entity expansion and external entities both need a DTD; BPMN never does.
        return None, [_doctype()]
    parser = etree.XMLParser(**_SAFE_PARSER_OPTIONS)
    try:
        root = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError as err:
        return None, [_syntax_problem(err, xml)]
    if root.getroottree().docinfo.doctype or root.getroottree().docinfo.internalDTD is not None:
        # The byte search above misses a DOCTYPE in UTF-16.
        return None, [_doctype()]
    if etree.QName(root).namespace != NS["bpmn"] or etree.QName(root).localname != "definitions":
        return None, [Problem(f"Đây là tệp XML nhưng không phải sơ đồ BPMN: phần tử gốc là "
                              f"'{etree.QName(root).localname}', cần bpmn:definitions (namespace {NS['bpmn']})",
                              None, root.sourceline, "xml",
                              f"This is XML but not a BPMN diagram: the root element is "
                              f"'{etree.QName(root).localname}', it must be bpmn:definitions "
                              f"(namespace {NS['bpmn']})")]
    problems = [Problem(f"Lệnh xử lý (<?{pi.target} ...?>) không được phép trong tệp BPMN", None,
                        pi.sourceline, "xml",
                        f"A processing instruction (<?{pi.target} ...?>) is not allowed in a BPMN file")
                for pi in [*root.itersiblings(preceding=True), *root.iter()]
                if isinstance(pi, etree._ProcessingInstruction)]
    problems += [_at(element, "XInclude không được phép trong tệp BPMN",
                     "XInclude is not allowed in a BPMN file", "xml")
                 for element in root.iter() if isinstance(element.tag, str)
                 and etree.QName(element).namespace in XINCLUDE_NAMESPACES]
    return (None, problems) if problems else (root, [])


def _binary_kind(xml: bytes) -> tuple[str, str] | None:
    """(Vietnamese, English) name of the kind of file `xml` is when its
    first bytes say it is not text, else None."""
    for magic, vi, en in _MAGIC:
        if xml.startswith(magic):
            return vi, en
    head = xml[:512]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")):
        return "nhị phân", "binary"  # NUL bytes: no text file, bar UTF-16 (handled by the parser)
    return None


def _doctype() -> Problem:
    return _at(None, "Khai báo DOCTYPE hoặc ENTITY không được phép trong tệp BPMN",
               "A DOCTYPE or ENTITY declaration is not allowed in a BPMN file", "xml")


def _syntax_problem(err: etree.XMLSyntaxError, xml: bytes) -> Problem:
    if not xml.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return Problem("Tệp không phải XML (không bắt đầu bằng '<'): sơ đồ BPMN là một tệp XML",
                       None, err.lineno, "xml",
                       "The file is not XML (it does not start with '<'): a BPMN diagram is an XML file")
    vi, en = xml_messages.syntax(err.msg or "", MAX_XML_DEPTH)
    return Problem(vi, None, err.lineno, "xml", en)


def xsd_problems(root: etree._Element) -> list[Problem]:
    schema = VALIDATOR.validator
    VALIDATOR.preprocess(root)
    if schema.validate(root):
        return []
    problems = []
    for entry in schema.error_log:
        element = _element_at_line(root, entry.line)
        vi, en = xml_messages.xsd(entry.message)
        problems.append(Problem(vi, element.get("id") if element is not None else None, entry.line, "xml", en,
                                element.get("name") if element is not None else None))
    return problems[:50]


def _missing_processes(root: etree._Element) -> list[Problem]:
    # SpiffWorkflow builds no spec for a process marked not executable.
    ids = {process.get("id") for process in root.iter(f"{{{NS['bpmn']}}}process")
           if process.get("isExecutable", "true") == "true"}
    return [_at(None, f"Sơ đồ phải có quy trình thực thi được '{pid}' (engine khởi động nó)",
                f"The diagram must contain the executable process '{pid}' (the engine starts it)", "bpmn")
            for pid in REQUIRED_PROCESSES if pid not in ids]


# --- valid BPMN this engine cannot run -------------------------------------------------

_DATA_ELEMENTS = ("dataStore", "dataStoreReference", "dataInputAssociation", "dataOutputAssociation")


def _unsupported(root: etree._Element) -> list[tuple]:
    """(element, Problem) for each element that is valid BPMN but that this
    engine cannot run: SpiffWorkflow would refuse it with a programmer's
    message, or (data stores, associations, decision tables) run it outside
    what the app records and shows."""
    found = []
    for element in root.iter(*(f"{{{NS['bpmn']}}}{tag}" for tag in _DATA_ELEMENTS)):
        what_vi, what_en = (("kho dữ liệu", "a data store") if "Store" in element.tag
                            else ("liên kết dữ liệu", "a data association"))
        # An association is named by the task it belongs to.
        owner = element if "Store" in element.tag else element.getparent()
        found.append((element, _at(owner, f"Hệ thống này không chạy được {what_vi} ({_local(element)}): dữ liệu "
                                        "của quy trình là dữ liệu của biểu mẫu và các biến",
                                 f"{what_en[0].upper()}{what_en[1:]} ({_local(element)}) is not supported by "
                                 "this engine: a process's data are its forms and variables", "bpmn")))
    for scope in root.iter(*(f"{{{NS['bpmn']}}}{tag}" for tag in ("subProcess", "transaction"))):
        if scope.find(f"{{{NS['bpmn']}}}startEvent") is None:
            found.append((scope, _at(scope, "Quy trình con không có sự kiện bắt đầu: hệ thống này cần một sự "
                                            "kiện bắt đầu thông thường trong mỗi quy trình con",
                                     "A sub-process without a start event is not supported by this engine: "
                                     "put a (none) start event in it", "bpmn")))
    for task in root.iter(f"{{{NS['bpmn']}}}businessRuleTask"):
        found.append((task, _at(task, "Hệ thống này không chạy được tác vụ quy tắc nghiệp vụ (bảng quyết định DMN)",
                                "A business rule task (DMN decision table) is not supported by this engine",
                                "bpmn")))
    for element in root.iter(*(f"{{{NS['bpmn']}}}{tag}" for tag in FLOW_NODE_TAGS)):
        if not bpmn_parse.supports(element.tag):
            found.append((element, _at(element, f"Hệ thống này không chạy được loại phần tử {_local(element)}",
                                       f"A {_local(element)} is not supported by this engine", "bpmn")))
    return found


def _without_data(root: etree._Element) -> etree._Element:
    """The tree, or a copy of it without data stores and data associations."""
    tags = [f"{{{NS['bpmn']}}}{tag}" for tag in _DATA_ELEMENTS]
    if next(root.iter(*tags), None) is None:
        return root
    runnable = copy.deepcopy(root)
    for element in list(runnable.iter(*tags)):
        element.getparent().remove(element)
    return runnable


def lint(root: etree._Element) -> list[Problem]:
    problems: list[Problem] = []
    lanes = _lane_of_nodes(root)
    for tag in WAITING_TAGS:
        for task in root.iter(f"{{{NS['bpmn']}}}{tag}"):
            problems += _lint_lane(task, _lane_of(task, lanes))
    for tag in WAITING_TAGS:  # a manualTask or task may name a form too; a userTask must
        for task in root.iter(f"{{{NS['bpmn']}}}{tag}"):
            if tag == "userTask" or "formKey" in _properties(task):
                problems += _lint_user_task(task)
    for task in root.iter(f"{{{NS['bpmn']}}}serviceTask"):
        problems += _lint_service_task(task)
    for place in EVALUATED_PLACES:
        for node in root.xpath(place.xpath, namespaces=NS):
            problems += _lint_place(place, node)
    problems += lint_flows(root)[0]
    return problems


def lint_warnings(root: etree._Element) -> list[Problem]:
    """What looks risky but may be meant (they do not block a deploy)."""
    return lint_flows(root)[1] + _several_starts(root)


def _several_starts(root: etree._Element) -> list[Problem]:
    """SpiffWorkflow puts several start events of a process behind a split
    and a join that lets the first to happen through and cancels the rest:
    valid, but rarely what the author of two plain start events meant."""
    warnings = []
    for scope in root.iter(*(f"{{{NS['bpmn']}}}{tag}" for tag in SCOPE_TAGS)):
        starts = [child for child in scope if _local(child) == "startEvent"]
        if len(starts) > 1:
            ids = ", ".join(start.get("id") or "?" for start in starts)
            warnings.append(_at(scope, f"Có {len(starts)} sự kiện bắt đầu ({ids}): engine chỉ đi theo sự kiện "
                                       "xảy ra trước và bỏ các sự kiện còn lại; thường chỉ cần một",
                                f"{len(starts)} start events ({ids}): the engine follows whichever happens "
                                "first and drops the others; usually one is meant"))
    return warnings


def _lint_lane(task, lane: str | None) -> list[Problem]:
    """A task that waits for a person is offered to the officers of its
    lane's role; outside such a lane nobody could be offered it (and
    starting a product failed with a 500)."""
    if roles.role_for_lane(lane) is not None:
        return []
    known = ", ".join(role.label_vi for role in roles.LANE_ROLES)
    kind = _local(task)
    if not lane:
        return [_at(task, f"Tác vụ chờ người làm ({kind}) phải nằm trong một làn (lane) là một vai trò; "
                          f"nó không nằm trong làn nào (các vai trò: {known})",
                    f"This {kind} waits for a person, so it must be in a lane that is a role; it is in no lane "
                    f"(roles: {known})")]
    return [_at(task, f"Tác vụ chờ người làm ({kind}) nằm trong làn '{lane}', đây không phải một vai trò "
                      f"(các vai trò: {known})",
                f"{kind} is in lane '{lane}', which is not a role (known: {known})")]


def _lint_user_task(task) -> list[Problem]:
    problems = []
    props = _properties(task)
    form_key = props.get("formKey")
    if form_key not in forms.FORMS:
        registered = ", ".join(sorted(forms.FORMS))
        problems.append(_at(task, f"formKey '{form_key or '(thiếu)'}' không phải một biểu mẫu đã đăng ký "
                                  f"({registered})",
                            f"formKey '{form_key or '(missing)'}' is not a registered form ({registered})"))
    data_key = props.get("dataKey", "")
    if not data_key.isidentifier() or data_key.startswith("_"):
        problems.append(_at(task, f"dataKey '{data_key or '(thiếu)'}' phải là một tên biến",
                            f"dataKey '{data_key or '(missing)'}' must be a variable name"))
    for name in ("step", "dueDays", "dueWorkingDays"):
        if name in props and not props[name].isdigit():
            problems.append(_at(task, f"Thuộc tính {name} phải là một số nguyên, không phải '{props[name]}'",
                                f"property {name} must be a whole number, not '{props[name]}'"))
    if "assignee" in props:  # evaluated when the task becomes ready (execution.inbox_row)
        problems += _lint_code(expressions.check_expression, props["assignee"], task,
                               ("người được giao", "assignee"))
    return problems


def _lint_service_task(task) -> list[Problem]:
    operators = task.xpath("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", namespaces=NS)
    if not operators:
        return [_at(task, "Tác vụ dịch vụ không chỉ định bộ xử lý (spiffworkflow:serviceTaskOperator)",
                    "service task names no handler (spiffworkflow:serviceTaskOperator)")]
    operator = operators[0]
    handler = registry.get(operator.get("id", ""))
    if handler is None:
        known = ", ".join(sorted(registry.all_handlers()))
        return [_at(task, f"Bộ xử lý '{operator.get('id')}' chưa được đăng ký (các bộ xử lý: {known})",
                    f"handler '{operator.get('id')}' is not registered (known: {known})")]
    problems = []
    declared, required = handler.parameter_names()
    given = {}
    for param in operator.xpath(".//spiffworkflow:parameter", namespaces=NS):
        given[param.get("id")] = param.get("value")
    for name in sorted(set(given) - declared):
        problems.append(_at(task, f"Bộ xử lý '{handler.name}' không có tham số '{name}'",
                            f"handler '{handler.name}' has no parameter '{name}'"))
    for name in sorted(required - set(given)):
        problems.append(_at(task, f"Bộ xử lý '{handler.name}' cần tham số '{name}'",
                            f"handler '{handler.name}' needs parameter '{name}'"))
    fields = handler.params().fields
    for name, value in given.items():
        if value is None:
            problems.append(_at(task, f"Tham số '{name}' không có giá trị", f"parameter '{name}' has no value"))
            continue
        found = _lint_code(expressions.check_expression, value, task,
                           (f"tham số '{name}'", f"parameter '{name}'"))
        if not found and name in fields:
            found = _lint_constant(fields[name], value, name, handler.name, task)
        problems += found
    return problems


def _lint_constant(field, source: str, name: str, handler_name: str, task) -> list[Problem]:
    """A parameter given as a literal can be checked against the schema now."""
    try:
        value = ast.literal_eval(source.strip())
    except (ValueError, SyntaxError):
        return []  # depends on process variables: checked when it runs
    try:
        field.deserialize(value)
    except ValidationError as err:
        return [_at(task, f"Tham số '{name}' của '{handler_name}' không hợp lệ: {err.messages}",
                    f"parameter '{name}' of '{handler_name}' does not fit: {err.messages}")]
    return []


def _lint_place(place: Place, node) -> list[Problem]:
    """One evaluated text (an element's text, or an attribute's value)."""
    # An attribute's xpath gives its value (a str with getparent()).
    source, owner = (str(node) if isinstance(node, str) else node.text or ""), _owner(node)
    label = (place.label_vi, place.label_en)
    if place.kind == "expression":
        return _lint_code(expressions.check_expression, source, owner, label)
    if place.kind == "script":
        return _lint_code(expressions.check_script, source, owner, label)
    if place.kind == "timer":
        return _lint_timer(etree.QName(node).localname, source, owner)
    if place.kind == "whole number":
        if source.strip().isdigit():
            return []
        return [_at(owner, f"{place.label_vi.capitalize()} phải là một số nguyên, không phải '{source[:60]}'",
                    f"{place.label_en} must be a whole number, not '{source[:60]}'")]
    name = source.strip()
    if name.isidentifier() and not name.startswith("_"):
        return []
    return [_at(owner, f"{place.label_vi.capitalize()} phải là một tên biến (chữ, số, '_', không bắt đầu "
                       f"bằng '_'), không phải '{name[:60]}'",
                f"{place.label_en} must be a variable name (letters, digits, '_', not starting with '_'), "
                f"not '{name[:60]}'")]


def _lint_timer(kind: str, source: str, owner) -> list[Problem]:
    """A timer's expression is checked like any other; when it is a
    literal its value is checked now (timer_values), else it depends on
    process variables and is checked when the timer starts."""
    bare = source.strip()
    if _unquoted(bare) and (timer_values.problem(kind, bare) is None
                            or timer_values.problem("timeDuration", bare) is None):
        # `P1D` unquoted is the name of a variable nobody sets; a date
        # unquoted is not even an expression.
        return [_at(owner, f"Hẹn giờ ({kind}): '{bare}' phải được đặt trong dấu nháy ('{bare}'), nếu không "
                           "nó không phải một giá trị",
                    f"timer ({kind}): '{bare}' must be quoted ('{bare}'), else it is not a value")]
    found = _lint_code(expressions.check_expression, source, owner, (f"hẹn giờ ({kind})", f"timer ({kind})"))
    if found or _unquoted(bare):
        return found
    problem = timer_values.problem(kind, ast.literal_eval(bare))
    if problem is None:
        return []
    return [_at(owner, f"Hẹn giờ ({kind}): {problem[0]}", f"timer ({kind}): {problem[1]}")]


def _unquoted(source: str) -> bool:
    """Whether `source` is no literal (it reads variables, or is no expression)."""
    try:
        ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return True
    return False


def _owner(node):
    """The element a text belongs to, for the message: the nearest flow
    node or flow (a loop condition names its task and a timer its event,
    not the definitions between, which bpmn-js gives ids too), else the
    nearest element with an id (a message, a correlation property)."""
    element = node.getparent() if isinstance(node, str) else node
    fallback = None
    while element is not None:
        if _local(element) in FLOW_NODE_TAGS or _local(element) == "sequenceFlow":
            return element
        if fallback is None and element.get("id"):
            fallback = element
        element = element.getparent()
    return fallback


def _lint_code(checker, source: str, owner, label: tuple[str, str]) -> list[Problem]:
    label_vi, label_en = label
    if not source.strip():
        return [_at(owner, f"{label_vi.capitalize()} trống", f"empty {label_en}")]
    try:
        checker(source)
    except expressions.ExpressionError as err:
        return [_at(owner, f"{label_vi.capitalize()} không hợp lệ: {_one_line(expressions.vietnamese(err))}",
                    f"{label_en}: {_one_line(err)}")]
    return []


def _one_line(err) -> str:
    return " ".join(str(err).split())[:400]


def _properties(task) -> dict[str, str]:
    nodes = task.xpath("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property",
                       namespaces=NS)
    return {node.get("name"): node.get("value", "") for node in nodes}


def _lane_of_nodes(root) -> dict[str, str]:
    lanes = {}
    for lane in root.xpath("//bpmn:lane", namespaces=NS):
        for ref in lane.xpath("bpmn:flowNodeRef", namespaces=NS):
            lanes[(ref.text or "").strip()] = lane.get("name")
    return lanes


def _lane_of(node, lanes: dict[str, str]) -> str | None:
    """The lane SpiffWorkflow gives a node: inside a sub-process, the
    sub-process's own (its parser passes it down, over the node's own
    flowNodeRef); else the lane whose flowNodeRef names the node."""
    scopes = [ancestor for ancestor in node.iterancestors() if _local(ancestor) in SCOPE_TAGS[1:]]
    for scope in reversed(scopes):  # outermost first
        if lanes.get(scope.get("id")):
            return lanes[scope.get("id")]
    return lanes.get(node.get("id"))


def _element_at_line(root, line: int):
    for element in root.iter():
        if element.sourceline == line and isinstance(element.tag, str) and element.get("id"):
            return element
    return None


def user_task_properties(task_spec) -> dict[str, str]:
    """The spiff properties of a parsed user task spec (formKey, dataKey, ...)."""
    return dict((getattr(task_spec, "extensions", None) or {}).get("properties", {}))


def task_form(task_spec) -> tuple[str, str]:
    """The form a task waiting for a person opens, and the variable its
    answer goes to: its formKey and dataKey. A manualTask or plain task
    without a formKey (work done outside the system: the lint lets it pass
    in a role lane) asks only to confirm it is done, and stores nothing."""
    props = user_task_properties(task_spec)
    if "formKey" in props:
        return props["formKey"], props.get("dataKey", "")
    return forms.CONFIRM_DONE, ""
