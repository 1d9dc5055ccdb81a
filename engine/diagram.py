"""Reading and checking a BPMN diagram before it may be deployed.

Three layers, every problem collected and named by element and line:
1. xml:  hostile-input safe parse (no DTD, no entities, no network, size
         limit), then BPMN 2.0 + spiff extension XSD validation;
2. bpmn: SpiffWorkflow's own parser;
3. lint: what this engine needs: lanes that map to roles, known form keys,
         registered handlers with fitting parameters, every expression
         and script inside the allow-list language, and a sound flow graph
         (see `_lint_flows`: connected, reachable, gateways with defaults,
         loops bounded).

Problems block a deploy; warnings (`CheckedDiagram.warnings`,
`lint_warnings`) are shown but do not.
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
                   "loopCardinality", "completionCondition", "condition")  # condition: conditional events
# Other texts SpiffWorkflow evaluates: message correlation and payloads.
EXPRESSION_XPATHS = ("//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression",
                     "//bpmn:correlationPropertyRetrievalExpression/bpmn:messagePath",
                     "//spiffworkflow:messagePayload",
                     "//spiffworkflow:processVariableCorrelation/spiffworkflow:expression")
SCRIPT_XPATHS = ("//bpmn:scriptTask/bpmn:script", "//spiffworkflow:preScript", "//spiffworkflow:postScript")
XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")

# Processing instructions are kept so they can be refused (remove_pis would
# hide them, but the file is stored and served as uploaded).
_SAFE_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False,
                            dtd_validation=False, huge_tree=False, remove_pis=False)


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
        return None, [Problem(f"file is {len(xml)} bytes, the limit is {MAX_BPMN_BYTES}", layer="xml")]
    try:
        xml.decode("utf-8")  # stored and served as UTF-8 text, as bpmn-js writes it
    except UnicodeDecodeError as err:
        return None, [Problem(f"the file must be UTF-8 (byte {err.start} is not)", layer="xml")]
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        # Entity expansion and external entities both need a DTD; BPMN never does.
        return None, [Problem("a DOCTYPE or ENTITY declaration is not allowed in a BPMN file", layer="xml")]
    parser = etree.XMLParser(**_SAFE_PARSER_OPTIONS)
    try:
        root = etree.fromstring(xml, parser=parser)
    except etree.XMLSyntaxError as err:
        return None, [Problem(f"not well-formed XML: {err.msg}", line=err.lineno, layer="xml")]
    if root.getroottree().docinfo.doctype or root.getroottree().docinfo.internalDTD is not None:
        # The byte search above misses a DOCTYPE in UTF-16.
        return None, [Problem("a DOCTYPE or ENTITY declaration is not allowed in a BPMN file", layer="xml")]
    if etree.QName(root).namespace != NS["bpmn"] or etree.QName(root).localname != "definitions":
        return None, [Problem("the root element must be bpmn:definitions "
                              f"(namespace {NS['bpmn']})", line=root.sourceline, layer="xml")]
    problems = [Problem(f"a processing instruction (<?{pi.target} ...?>) is not allowed in a BPMN file",
                        line=pi.sourceline, layer="xml")
                for pi in [*root.itersiblings(preceding=True), *root.iter()]
                if isinstance(pi, etree._ProcessingInstruction)]
    problems += [Problem("XInclude is not allowed in a BPMN file", line=element.sourceline, layer="xml")
                 for element in root.iter() if isinstance(element.tag, str)
                 and etree.QName(element).namespace in XINCLUDE_NAMESPACES]
    return (None, problems) if problems else (root, [])


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
            problems += _lint_code(expressions.check_expression, node.text or "", _owner(node), tag)
    for xpath in EXPRESSION_XPATHS:
        for node in root.xpath(xpath, namespaces=NS):
            problems += _lint_code(expressions.check_expression, node.text or "", _owner(node),
                                   etree.QName(node).localname)
    for xpath in SCRIPT_XPATHS:
        for node in root.xpath(xpath, namespaces=NS):
            owner = node.getparent() if node.tag.endswith("}script") else node.getparent().getparent()
            problems += _lint_code(expressions.check_script, node.text or "", owner, "script")
    problems += _lint_flows(root)[0]
    return problems


def lint_warnings(root: etree._Element) -> list[Problem]:
    """What looks risky but may be meant (they do not block a deploy)."""
    return _lint_flows(root)[1]


# --- the flow graph ------------------------------------------------------------------

FLOW_NODE_TAGS = frozenset((
    "task", "userTask", "serviceTask", "scriptTask", "manualTask", "businessRuleTask", "sendTask",
    "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
))
_SCOPE_TAGS = ("process", "subProcess", "transaction", "adHocSubProcess")


def _lint_flows(root: etree._Element) -> tuple[list[Problem], list[Problem]]:
    """The sequence-flow graph of each process (and of each sub-process, on
    its own) must be sound. Errors:

    - "dangling flow": a sequence flow whose sourceRef/targetRef is not a
      flow node of the same process;
    - "not connected": a flow node without incoming flow (start events,
      boundary events and event sub-processes excepted) or without
      outgoing flow (end events excepted);
    - "not reachable from a start event" / "cannot reach an end event"
      (a boundary event counts as reached when the activity it is attached
      to is);
    - an exclusive gateway with more than one outgoing flow where a flow
      other than the default has no condition (with no default, every flow
      must have one); a default that is not one of its outgoing flows;
    - "loop without a bound": every cycle of the graph must pass through a
      *bounding* gateway: an exclusive gateway with an outgoing flow whose
      condition is a comparison involving a variable whose name contains
      "max" (e.g. `idea_returns > max_resubmissions`). Checked by removing
      the bounding gateways and looking for cycles in what is left (its
      strongly connected components); each one found is reported once, at
      its first exclusive gateway (else its first element) in document order. Whether the comparison truly
      ends the loop is not checked: the rule makes a bound visible, and the
      reviewer judges it.

    Warnings: an exclusive gateway whose outgoing flows all have conditions
    but none is the default ("conditions may not cover all cases").
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for scope in root.iter(*(f"{{{NS['bpmn']}}}{tag}" for tag in _SCOPE_TAGS)):
        found_errors, found_warnings = _lint_scope(scope)
        errors += found_errors
        warnings += found_warnings
    return errors, warnings


def _local(element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _where(element) -> dict:
    return {"element_id": element.get("id"), "line": element.sourceline}


def _lint_scope(scope) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    nodes = {child.get("id"): child for child in scope
             if _local(child) in FLOW_NODE_TAGS and child.get("id")}
    flows = [child for child in scope if _local(child) == "sequenceFlow"]
    successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    predecessors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    outgoing: dict[str, list] = {node_id: [] for node_id in nodes}
    has_incoming: set[str] = set()
    for flow in flows:
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        bad = [f"{attr} '{ref or ''}'" for attr, ref in (("sourceRef", source), ("targetRef", target))
               if ref not in nodes]
        if bad:
            errors.append(Problem(f"dangling flow: {' and '.join(bad)} is not a flow node of "
                                  f"'{scope.get('id')}'", **_where(flow)))
            continue
        successors[source].append(target)
        predecessors[target].append(source)
        outgoing[source].append(flow)
        has_incoming.add(target)
    # A boundary event runs when its activity does: an edge for the graph walks.
    for node_id, node in nodes.items():
        attached = node.get("attachedToRef")
        if _local(node) == "boundaryEvent" and attached in nodes:
            successors[attached].append(node_id)
            predecessors[node_id].append(attached)

    for node_id, node in nodes.items():
        kind = _local(node)
        event_subprocess = kind in _SCOPE_TAGS and node.get("triggeredByEvent") == "true"
        if node_id not in has_incoming and kind not in ("startEvent", "boundaryEvent") and not event_subprocess:
            errors.append(Problem(f"{kind} '{node_id}' is not connected: no incoming sequence flow",
                                  **_where(node)))
        if not outgoing[node_id] and kind != "endEvent" and not event_subprocess:
            errors.append(Problem(f"{kind} '{node_id}' is not connected: no outgoing sequence flow",
                                  **_where(node)))

    starts = [n for n, node in nodes.items() if _local(node) == "startEvent"]
    ends = [n for n, node in nodes.items() if _local(node) == "endEvent"]
    reached = _walk(starts, successors)
    finishing = _walk(ends, predecessors)
    for node_id, node in nodes.items():
        kind = _local(node)
        if kind in _SCOPE_TAGS and node.get("triggeredByEvent") == "true":
            continue
        if node_id not in reached and (node_id in has_incoming or kind == "boundaryEvent"):
            errors.append(Problem(f"{kind} '{node_id}' is not reachable from a start event of "
                                  f"'{scope.get('id')}'", **_where(node)))
        if node_id not in finishing and outgoing[node_id]:
            errors.append(Problem(f"{kind} '{node_id}' cannot reach an end event of "
                                  f"'{scope.get('id')}'", **_where(node)))

    bounding: set[str] = set()
    for node_id, node in nodes.items():
        if _local(node) != "exclusiveGateway":
            continue
        found_errors, found_warnings = _lint_exclusive_gateway(node, outgoing[node_id])
        errors += found_errors
        warnings += found_warnings
        if any(_compares_a_max(_condition(flow)) for flow in outgoing[node_id]):
            bounding.add(node_id)

    order = list(nodes)
    for component in _cycles(order, successors, skip=bounding):
        members = [n for n in order if n in component]
        gateways = [n for n in members if _local(nodes[n]) == "exclusiveGateway"]
        first = nodes[(gateways or members)[0]]
        names = ", ".join(members)
        errors.append(Problem(
            f"loop without a bound: the cycle through {names} passes no exclusive gateway whose "
            "condition compares a 'max' variable (e.g. returns > max_resubmissions)", **_where(first)))
    return errors, warnings


def _lint_exclusive_gateway(gateway, flows: list) -> tuple[list[Problem], list[Problem]]:
    where = _where(gateway)
    default = gateway.get("default")
    flow_ids = [flow.get("id") for flow in flows]
    if default and default not in flow_ids:
        return [Problem(f"default flow '{default}' is not an outgoing flow of the gateway", **where)], []
    if len(flows) < 2:
        return [], []
    unconditional = [flow.get("id") for flow in flows
                     if flow.get("id") != default and not _condition(flow).strip()]
    if unconditional:
        if default:
            return [Problem(f"exclusive gateway: flow(s) {', '.join(unconditional)} have no condition "
                            f"and are not the default ('{default}')", **where)], []
        return [Problem("exclusive gateway with several outgoing flows has no default flow and "
                        f"flow(s) {', '.join(unconditional)} have no condition", **where)], []
    if not default:
        return [], [Problem("exclusive gateway has no default flow: conditions may not cover all cases",
                            **where)]
    return [], []


def _condition(flow) -> str:
    found = flow.find(f"{{{NS['bpmn']}}}conditionExpression")
    return (found.text or "") if found is not None else ""


def _compares_a_max(source: str) -> bool:
    """True when the expression holds a comparison one of whose sides names
    a variable containing "max" (the function max() does not count)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        called = {id(call.func) for call in ast.walk(node) if isinstance(call, ast.Call)}
        if any(isinstance(name, ast.Name) and "max" in name.id.lower() and id(name) not in called
               for name in ast.walk(node)):
            return True
    return False


def _walk(starts: list[str], edges: dict[str, list[str]]) -> set[str]:
    seen = set(starts)
    stack = list(starts)
    while stack:
        for following in edges.get(stack.pop(), ()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


def _cycles(order: list[str], successors: dict[str, list[str]], skip: set[str]) -> list[set[str]]:
    """Strongly connected components (Tarjan, iterative) of the graph
    without the `skip` nodes that hold a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    counter = 0
    for root_id in order:
        if root_id in skip or root_id in index:
            continue
        work = [(root_id, iter(successors[root_id]))]
        index[root_id] = low[root_id] = counter
        counter += 1
        stack.append(root_id)
        on_stack.add(root_id)
        while work:
            node_id, children = work[-1]
            advanced = False
            for child in children:
                if child in skip:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node_id] = min(low[node_id], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
            if low[node_id] == index[node_id]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node_id:
                        break
                if len(component) > 1 or node_id in successors[node_id]:
                    components.append(component)
    return components


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
    for name in ("step", "dueDays", "dueWorkingDays"):
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


def _owner(node):
    """The nearest element with an id (a conditional event's condition sits
    in an event definition that has none)."""
    owner = node.getparent()
    while owner is not None and not owner.get("id") and owner.getparent() is not None:
        owner = owner.getparent()
    return owner if owner is not None else node


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
