"""Reading and checking a BPMN diagram before it may be deployed.

Three layers, every problem collected and named by element and line:
1. xml:  hostile-input safe parse (no DTD, no entities, no network, size
         limit), then BPMN 2.0 + spiff extension XSD validation;
2. bpmn: SpiffWorkflow's own parser;
3. lint: what this engine needs: lanes that map to roles, known form keys,
         registered handlers with fitting parameters, and every expression
         and script inside the allow-list language.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from lxml import etree
from marshmallow import ValidationError
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine import expressions, forms, roles
from engine.errors import DiagramError, Problem
from handlers import registry

MAX_BPMN_BYTES = 2 * 1024 * 1024
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
# Processes the engine starts; a deployable diagram must contain both.
PRODUCT_PROCESS = "ocop_product_cycle"
OUTREACH_PROCESS = "ocop_outreach"
REQUIRED_PROCESSES = (PRODUCT_PROCESS, OUTREACH_PROCESS)
# Elements whose text SpiffWorkflow hands to the script engine.
EXPRESSION_TAGS = ("conditionExpression", "timeDuration", "timeDate", "timeCycle",
                   "loopCardinality", "completionCondition")
SCRIPT_XPATHS = ("//bpmn:scriptTask/bpmn:script", "//spiffworkflow:preScript", "//spiffworkflow:postScript")

_SAFE_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False,
                            dtd_validation=False, huge_tree=False, remove_pis=True)


@dataclass
class CheckedDiagram:
    xml: bytes
    root: etree._Element | None = None
    specs: dict = field(default_factory=dict)  # process id -> (spec, subprocess_specs)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(xml: bytes, filename: str = "diagram.bpmn") -> CheckedDiagram:
    """Run all three layers. XML problems stop there (nothing else can be
    trusted); SpiffWorkflow's parse and the lint both read the valid tree,
    so their problems are reported together."""
    result = CheckedDiagram(xml)
    result.root, result.problems = read_xml(xml)
    if result.problems:
        return result
    result.problems = xsd_problems(result.root)
    if result.problems:
        return result
    result.specs, result.problems = parse_specs(result.root, filename)
    result.problems += lint(result.root)
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
        return None, [Problem(f"file is {len(xml)} bytes, the limit is {MAX_BPMN_BYTES}", layer="xml")]
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        # Entity expansion and external entities both need a DTD; BPMN never does.
        return None, [Problem("a DOCTYPE or ENTITY declaration is not allowed in a BPMN file", layer="xml")]
    parser = etree.XMLParser(**_SAFE_PARSER_OPTIONS)
    try:
        root = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError as err:
        return None, [Problem(f"not well-formed XML: {err.msg}", line=err.lineno, layer="xml")]
    if etree.QName(root).namespace != NS["bpmn"] or etree.QName(root).localname != "definitions":
        return None, [Problem("the root element must be bpmn:definitions "
                              f"(namespace {NS['bpmn']})", line=root.sourceline, layer="xml")]
    return root, []


def xsd_problems(root: etree._Element) -> list[Problem]:
    schema = VALIDATOR.validator
    VALIDATOR.preprocess(root)
    if schema.validate(root):
        return []
    problems = []
    for entry in schema.error_log:
        element_id = _element_id_at_line(root, entry.line)
        problems.append(Problem(f"XSD: {entry.message}", element_id, entry.line, layer="xml"))
    return problems[:50]


def parse_specs(root: etree._Element, filename: str) -> tuple[dict, list[Problem]]:
    # The tree is already validated, so the parser gets no validator of its own.
    parser = SpiffBpmnParser(validator=None)
    try:
        parser.add_bpmn_xml(root, filename)
        ids = parser.get_process_ids()
        missing = [pid for pid in REQUIRED_PROCESSES if pid not in ids]
        if missing:
            return {}, [Problem(f"the diagram must contain process '{pid}'", layer="bpmn") for pid in missing]
        specs = {pid: (parser.get_spec(pid), parser.get_subprocess_specs(pid)) for pid in ids}
    except ValidationException as err:
        line = err.line_number if isinstance(err.line_number, int) else None
        return {}, [Problem(str(err.args[0] if err.args else err), err.id or None, line, layer="bpmn")]
    except SpiffWorkflowException as err:
        return {}, [Problem(str(err), layer="bpmn")]
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        # The parser assumes well-formed spiff extensions; report, never crash.
        return {}, [Problem(f"SpiffWorkflow could not parse the diagram: {err!r}", layer="bpmn")]
    return specs, []


def lint(root: etree._Element) -> list[Problem]:
    problems: list[Problem] = []
    lanes = _lane_of_nodes(root)
    for task in root.xpath("//bpmn:userTask", namespaces=NS):
        problems += _lint_user_task(task, lanes.get(task.get("id")))
    for task in root.xpath("//bpmn:serviceTask", namespaces=NS):
        problems += _lint_service_task(task)
    for tag in EXPRESSION_TAGS:
        for node in root.xpath(f"//bpmn:{tag}", namespaces=NS):
            owner = node.getparent()
            problems += _lint_code(expressions.check_expression, node.text or "", owner, tag)
    for xpath in SCRIPT_XPATHS:
        for node in root.xpath(xpath, namespaces=NS):
            owner = node.getparent() if node.tag.endswith("}script") else node.getparent().getparent()
            problems += _lint_code(expressions.check_script, node.text or "", owner, "script")
    return problems


def _lint_user_task(task, lane: str | None) -> list[Problem]:
    problems = []
    where = dict(element_id=task.get("id"), line=task.sourceline)
    if roles.role_for_lane(lane) is None:
        known = ", ".join(role.label_vi for role in roles.LANE_ROLES)
        problems.append(Problem(f"user task is in lane '{lane or '(none)'}', which is not a role "
                                f"(known: {known})", **where))
    props = _properties(task)
    form_key = props.get("formKey")
    if form_key not in forms.FORMS:
        problems.append(Problem(f"formKey '{form_key or '(missing)'}' is not a registered form "
                                f"({', '.join(sorted(forms.FORMS))})", **where))
    data_key = props.get("dataKey", "")
    if not data_key.isidentifier() or data_key.startswith("_"):
        problems.append(Problem(f"dataKey '{data_key or '(missing)'}' must be a variable name", **where))
    for name in ("step", "dueDays"):
        if name in props and not props[name].isdigit():
            problems.append(Problem(f"property {name} must be a whole number, not '{props[name]}'", **where))
    return problems


def _lint_service_task(task) -> list[Problem]:
    where = dict(element_id=task.get("id"), line=task.sourceline)
    operators = task.xpath("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", namespaces=NS)
    if not operators:
        return [Problem("service task names no handler (spiffworkflow:serviceTaskOperator)", **where)]
    operator = operators[0]
    handler = registry.get(operator.get("id", ""))
    if handler is None:
        known = ", ".join(sorted(registry.all_handlers()))
        return [Problem(f"handler '{operator.get('id')}' is not registered (known: {known})", **where)]
    problems = []
    declared, required = handler.parameter_names()
    given = {}
    for param in operator.xpath(".//spiffworkflow:parameter", namespaces=NS):
        given[param.get("id")] = param.get("value")
    for name in sorted(set(given) - declared):
        problems.append(Problem(f"handler '{handler.name}' has no parameter '{name}'", **where))
    for name in sorted(required - set(given)):
        problems.append(Problem(f"handler '{handler.name}' needs parameter '{name}'", **where))
    fields = handler.params().fields
    for name, value in given.items():
        if value is None:
            problems.append(Problem(f"parameter '{name}' has no value", **where))
            continue
        found = _lint_code(expressions.check_expression, value, task, f"parameter '{name}'")
        if not found and name in fields:
            found = _lint_constant(fields[name], value, name, handler.name, where)
        problems += found
    return problems


def _lint_constant(field, source: str, name: str, handler_name: str, where: dict) -> list[Problem]:
    """A parameter given as a literal can be checked against the schema now."""
    try:
        value = ast.literal_eval(source.strip())
    except (ValueError, SyntaxError):
        return []  # depends on process variables: checked when it runs
    try:
        field.deserialize(value)
    except ValidationError as err:
        return [Problem(f"parameter '{name}' of '{handler_name}' does not fit: {err.messages}", **where)]
    return []


def _lint_code(checker, source: str, owner, what: str) -> list[Problem]:
    if not source.strip():
        return [Problem(f"empty {what}", owner.get("id"), owner.sourceline)]
    try:
        checker(source)
    except expressions.ExpressionError as err:
        return [Problem(f"{what}: {err}", owner.get("id"), owner.sourceline)]
    return []


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


def _element_id_at_line(root, line: int) -> str | None:
    for element in root.iter():
        if element.sourceline == line and isinstance(element.tag, str) and element.get("id"):
            return element.get("id")
    return None


def user_task_properties(task_spec) -> dict[str, str]:
    """The spiff properties of a parsed user task spec (formKey, dataKey, ...)."""
    return dict(task_spec.extensions.get("properties", {}))
